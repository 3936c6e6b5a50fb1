"""A CARLA 0.9.16-compatible server backed by the embedded simulator (issue 8).

``serve(scenario_name, host='127.0.0.1', port=2000)`` blocks; :class:`Server` is the
embeddable form (``start()``/``close()``, context manager). See docs/serve.md.
"""

import os

# OpenCV's thread pool busy-waits after each parallel call (up to ~2000 spins per worker): in the
# served tick that spinning lands on top of sending the frame, ~0.3 ms of CPU per 800x600 tick
# (bench/bench_serve.py). OpenCV reads these when cv2 is loaded, so they are set before the server's
# modules import it; a value already in the environment wins.
os.environ.setdefault("OPENCV_THREAD_POOL_ACTIVE_WAIT_WORKER", "0")
os.environ.setdefault("OPENCV_THREAD_POOL_ACTIVE_WAIT_MAIN", "0")

from carla_agent.server.server import ServeError, Server, serve  # noqa: E402 - after the settings above

__all__ = ["ServeError", "Server", "serve"]
