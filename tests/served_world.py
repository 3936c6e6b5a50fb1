"""Starting and stopping ``python -m carla_agent.server`` in a subprocess, for the serve tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
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


@contextmanager
def served_client(scenario: str = "gentle_curves", town: str | None = None, timeout_s: float = 20.0):
    """A ``carla.Client`` on a fresh ``serve`` (its port as ``client.port``: the wheel's Client does
    not tell it); the server stops when the block ends."""
    import carla

    proc, port = start_server(scenario, town=town)
    try:
        client = carla.Client("127.0.0.1", port)
        client.set_timeout(timeout_s)
        client.port = port
        yield client
    finally:
        stop_server(proc)


def set_sync(world, on: bool, dt_s: float = 0.05) -> None:
    """Synchronous mode on (fixed ``dt_s``) or off (variable step), as the tests' clients ask for it."""
    s = world.get_settings()
    s.synchronous_mode, s.fixed_delta_seconds = on, (dt_s if on else None)
    world.apply_settings(s)


def run_client_script(script: str, town: str | None = None, scenario: str = "gentle_curves",
                      timeout_s: float = 120.0, tries: int = 2, retry_on_signal: bool = False
                      ) -> subprocess.CompletedProcess:
    """Run ``python -c script PORT`` against a fresh ``serve`` that this process owns (a client killed
    by a signal or a timeout leaves no server behind).

    A client with a synchronous Traffic Manager now and then hangs in ``world.tick()`` (the wheel's
    lost wake-up, docs/serve.md "Known issue"): a try that runs past ``timeout_s`` is killed and the
    next one runs on a fresh server; the last one's ``TimeoutExpired`` propagates. With
    ``retry_on_signal``, a client killed by a signal (the wheel's rarer ``load_world`` race beside a
    synchronous Traffic Manager, measured by tests/test_serve_load_world_tm.py) is tried again too.
    A real regression fails every try."""
    for attempt in range(tries):
        proc, port = start_server(scenario, town=town)
        try:
            out = subprocess.run([sys.executable, "-c", script, str(port)], cwd=str(ROOT), capture_output=True,
                                 text=True, timeout=timeout_s)
            if not (retry_on_signal and out.returncode < 0 and attempt < tries - 1):
                return out
        except subprocess.TimeoutExpired:
            if attempt == tries - 1:
                raise
        finally:
            stop_server(proc)
    raise AssertionError("no try ran")


class RecordingStreams:
    """In-process stand-in for the server's stream hub: every stream has a listener, payloads are kept."""

    def __init__(self):
        self.sent: list = []

    def has_subscribers(self, stream_id) -> bool:
        return True

    def publish(self, stream_id, payload) -> None:
        self.sent.append(payload)

    def register(self, stream_id) -> None:
        pass

    unregister = register


def episode_flags(world):
    """A function that publishes ``world``'s episode state once and returns the set of
    ``simulation_state`` flags the listeners got (``{MAP_CHANGE}`` right after a map load)."""
    from carla_agent.server.publish import publish_episode
    from carla_agent.server.streams import SENSOR_HEADER
    from carla_agent.server.wire import EPISODE_HEADER

    world.streams = RecordingStreams()

    def flags():
        world.streams.sent.clear()
        publish_episode(world)
        return {EPISODE_HEADER.unpack_from(p, SENSOR_HEADER.size)[-1] for p in world.streams.sent}

    return flags
