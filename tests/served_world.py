"""Starting and stopping ``python -m carla_agent.server`` in a subprocess, for the serve tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start_server(scenario: str = "gentle_curves", host: str = "127.0.0.1", env: dict | None = None,
                 town: str | None = None):
    """``(process, rpc_port)`` once the server prints that it is listening (port 0: any free one).

    With ``town``, it serves that town (``--town``) instead of the scenario."""
    env = dict(env or os.environ)
    # the recorder's plain file names go here, not into the checkout (serve's cwd)
    env.setdefault("CARLA_AGENT_RECORDER_DIR", os.path.join(tempfile.gettempdir(), "carla_agent_test_recordings"))
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    what = ["--town", town] if town else ["--scenario", scenario]
    proc = subprocess.Popen([sys.executable, "-u", "-m", "carla_agent.server", *what,
                             "--port", "0", "--host", host], cwd=str(ROOT), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 30
    line = ""
    while time.time() < deadline:
        line = proc.stdout.readline()
        m = re.search(r" on [\d.]+:(\d+)", line)
        if m:
            # Keep draining its output: a full pipe would block the server mid-tick.
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, int(m.group(1))
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"server did not start: {line!r}")


def stop_server(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
