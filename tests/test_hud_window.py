"""The HUD in a real X window (Xvfb, Mesa's software OpenGL), with TensorFlow loaded.

Every other HUD test uses SDL's dummy driver, which never touches X or OpenGL and so
never saw the crash this file guards against: SDL probing OpenGL when the window opens
loaded Mesa's llvmpipe, whose LLVM calls landed in TensorFlow's copy of LLVM (exit 139).

The drive runs in a subprocess (a crash must not take pytest down) on a private Xvfb
display. Xvfb comes from Debian's ``xvfb`` package, which ``.ci/run`` installs; on a
machine without it the tests are skipped, except under CI, where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import sys
from pathlib import Path
import pygame
from carla_agent.drive.agent import NetworkAgent
from carla_agent.hud import make_hud
from carla_agent.drive.runner import Runner
from carla_agent.saliency.methods import METHODS
from carla_agent.sim.scenario import load_scenario
from carla_agent.sim.simulator import make_simulator
from carla_agent.network.steering_model import SteeringModel

out = Path(sys.argv[1])
methods = sys.argv[2].split(",")
scenario = load_scenario("gentle_curves")
model = SteeringModel.load("carla_agent/models/pilotnet.keras")   # TensorFlow is loaded before the window opens
with make_simulator("embedded") as sim:
    agent = NetworkAgent(model, scenario.target_speed_mps)
    hud = make_hud(model, scenario, method=methods[0], res=(960, 540), lockstep=True)
    with hud:
        assert hud.window is not None, "no real window opened"
        print("driver", pygame.display.get_driver(), flush=True)
        for method in methods:
            hud.set_saliency(method)
            Runner(sim, agent, scenario, seed=0, duration_s=0.4, hooks=[hud]).run()
            pygame.image.save(pygame.display.get_surface(), str(out / f"{method}.png"))
print("ok", flush=True)
"""


def _xvfb_or_skip() -> str:
    exe = shutil.which("Xvfb")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("Xvfb is not installed; .ci/run installs Debian's xvfb")
        pytest.skip("Xvfb is not installed (apt-get install xvfb)")
    return exe


@pytest.fixture(scope="module")
def x_display():
    """A private Xvfb server; yields its DISPLAY string."""
    exe = _xvfb_or_skip()
    for number in range(140, 200):
        if Path(f"/tmp/.X11-unix/X{number}").exists() or Path(f"/tmp/.X{number}-lock").exists():
            continue
        proc = subprocess.Popen([exe, f":{number}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if Path(f"/tmp/.X11-unix/X{number}").exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        if proc.poll() is None:
            break
    else:
        pytest.fail("no free X display number for Xvfb")
    try:
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _x_env(display: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("SDL_VIDEODRIVER", "SDL_FRAMEBUFFER_ACCELERATION")}
    env.update(DISPLAY=display, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    return env


def test_every_method_renders_in_a_real_x_window(x_display, tmp_path):
    from carla_agent.saliency.methods import METHODS

    methods = list(METHODS.names())
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), ",".join(methods)], cwd=ROOT,
                          env=_x_env(x_display), capture_output=True, text=True, timeout=500)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    assert "driver x11" in proc.stdout, proc.stdout
    import cv2

    for method in methods:
        shot = cv2.imread(str(tmp_path / f"{method}.png"))
        assert shot is not None, f"no screenshot for {method}"
        assert shot.shape[:2] == (540, 960)
        # Not black, not one colour: a camera and a map were drawn.
        assert shot.mean() > 20, f"{method}: the window is nearly black"
        assert len(np.unique(shot.reshape(-1, 3), axis=0)) > 500, f"{method}: too few colours"
        left, right = shot[:, :480], shot[:, 480:]
        assert left.std() > 15 and right.std() > 15, f"{method}: a half of the window is flat"


def test_drive_command_opens_its_window_and_exits_cleanly(x_display):
    """The README's main command, as a person on a desktop without a GPU runs it."""
    proc = subprocess.run([sys.executable, "-m", "carla_agent", "drive", "--duration", "1", "--json"], cwd=ROOT,
                          env=_x_env(x_display), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-4000:]}"
    assert '"autonomy' in proc.stdout
