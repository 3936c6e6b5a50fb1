"""SIGTERM handled as Ctrl-C, for every entry point (the command line and ``python -m carla_agent.server``).

``kill``, a job scheduler or ``docker stop`` send SIGTERM; turned into :class:`KeyboardInterrupt`
it gets the same cleanup as Ctrl-C (a CARLA server left asynchronous, our actors destroyed, logs
closed, a server's staged files removed) and the same exit code, 130.
"""

from __future__ import annotations

import signal
import threading


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def sigterm_as_ctrl_c():
    """Make SIGTERM raise :class:`KeyboardInterrupt` in the main thread.

    Returns the handler it replaced (to put back with ``signal.signal(signal.SIGTERM, previous)``),
    or None where none can be set (not the main thread).
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _interrupt)


__all__ = ["sigterm_as_ctrl_c"]
