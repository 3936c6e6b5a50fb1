"""The HUD in a real X window (Xvfb, Mesa's software OpenGL), with TensorFlow loaded.

Every other HUD test uses SDL's dummy driver, which never touches X or OpenGL and so
never saw the crash this file guards against: SDL probing OpenGL when the window opens
loaded Mesa's llvmpipe, whose LLVM calls landed in TensorFlow's copy of LLVM (exit 139).

The drive runs in a subprocess (a crash must not take pytest down) on a private Xvfb
display. Xvfb comes from Debian's ``xvfb`` package, which ``.ci/run`` installs; on a
machine without it the tests are skipped, except under CI, where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


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


def test_drive_command_opens_its_window_and_exits_cleanly(x_display):
    """The README's main command, as a person on a desktop without a GPU runs it."""
    proc = subprocess.run([sys.executable, "-m", "carla_agent", "drive", "--duration", "1", "--json", "--close-at-end"],
                          cwd=ROOT,
                          env=_x_env(x_display), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-4000:]}"
    assert '"autonomy' in proc.stdout


# The drive command with its wall time: drive_scenario (the drive, not the model load) timed from inside.
TIMED_DRIVE = r"""
import sys, time
import carla_agent.drive.session as session
real = session.drive_scenario
def timed(*args, **kwargs):
    t0 = time.monotonic()
    try:
        return real(*args, **kwargs)
    finally:
        print(f"drive_wall_s {time.monotonic() - t0:.3f}", flush=True)
session.drive_scenario = timed
from carla_agent.cli import main
sys.exit(main(sys.argv[1:], prog="python -m carla_agent"))
"""


def _timed_drive(display: str, *args: str) -> float:
    proc = subprocess.run([sys.executable, "-c", TIMED_DRIVE, "drive", "--close-at-end", "--json", *args], cwd=ROOT,
                          env=_x_env(display), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    assert '"frames": 200' in proc.stdout, proc.stdout  # 10 s at 20 Hz: the scenario did not end early
    return float(proc.stdout.split("drive_wall_s ")[1].split()[0])


def test_the_window_runs_in_real_time_at_speed_1_and_far_faster_at_max(x_display):
    """A 10 s drive with the HUD window takes 10 s of wall time (within 10 %) at --speed 1, the
    default, and far less at --speed max."""
    small = ("--duration", "10", "--res", "640x360", "--camera-res", "320x180")
    real_time_s = _timed_drive(x_display, *small)
    max_s = _timed_drive(x_display, *small, "--speed", "max")
    print(f"wall time of a 10 s drive: {real_time_s:.2f} s at speed 1, {max_s:.2f} s at max")
    assert abs(real_time_s - 10.0) <= 1.0, f"speed 1: {real_time_s:.2f} s of wall time for 10 s simulated"
    assert max_s < 5.0, f"speed max: {max_s:.2f} s for 10 s simulated"


def _panel(shot: np.ndarray, rect) -> np.ndarray:
    return shot[rect.y:rect.bottom, rect.x:rect.right].astype(np.float64)


def check_screenshot(path: Path, window_wh, camera_wh, crop_rows, label: str) -> None:
    """A drawn camera and a drawn map: not black, not one colour; in the overlay panel, above the
    network's crop (rows ``crop_rows[0]`` of the image height) the camera as it is, and inside the
    crop something drawn on it. (While there is no map yet the whole panel is the camera dimmed.)"""
    import cv2

    from carla_agent.hud.layout import compute_layout, default_layout

    bgr = cv2.imread(str(path))
    assert bgr is not None, f"{label}: no screenshot {path}"
    shot = bgr[:, :, ::-1]
    assert shot.shape[:2] == window_wh[::-1], f"{label}: {shot.shape}"
    assert shot.mean() > 20, f"{label}: the window is nearly black"
    assert len(np.unique(shot.reshape(-1, 3), axis=0)) > 500, f"{label}: too few colours"
    rects = compute_layout(window_wh, camera_wh, default_layout(camera_wh))
    cam, ovl = _panel(shot, rects["camera"]), _panel(shot, rects["overlay"])
    assert cam.std() > 15 and ovl.std() > 15, f"{label}: a flat camera or overlay panel"
    h, w = cam.shape[:2]
    top, bottom = int(crop_rows[0] * h), int(crop_rows[1] * h)
    above = (slice(24, top - 3), slice(0, w))  # below the caption strip
    inside = (slice(top + 3, bottom - 3), slice(0, int(w * 0.6)))  # left of the colour legend
    above_diff = np.abs(cam[above] - ovl[above]).mean()
    inside_diff = np.abs(cam[inside] - ovl[inside]).mean()
    assert above_diff < 2.0, f"{label}: the overlay panel is not the camera's frame (diff {above_diff:.1f})"
    assert inside_diff > 2.0, f"{label}: no map drawn in the overlay panel (diff {inside_diff:.1f})"


def test_drive_screenshot_every_in_a_real_window_for_every_method(x_display, tmp_path):
    """``python -m carla_agent drive --screenshot-every`` for each registered method in a real X
    window: exit 0, an x11 window, and screenshots with a camera and a map (two drives at a time)."""
    from carla_agent.saliency.methods import METHODS
    from carla_agent.sim.scenario import DEFAULT_SCENARIO, load_scenario

    from carla_agent.resources import DEFAULT_MODEL

    camera = load_scenario(DEFAULT_SCENARIO).camera
    camera_wh, window_wh = (camera.image_size_x, camera.image_size_y), (960, 540)
    pre = json.loads(Path(DEFAULT_MODEL).with_suffix(".json").read_text())["preprocessing"]

    def drive(methods):
        # One process drives every method of its share in turn (TensorFlow loads once per process);
        # each drive opens and closes its own real window. Markers split the log per method.
        script = ("import sys\nfrom carla_agent.cli import main\nout, methods = sys.argv[1], sys.argv[2].split(',')\n"
                  "for m in methods:\n"
                  "    print('=== ' + m, file=sys.stderr, flush=True)\n"
                  "    rc = main(['drive', '-v', '--method', m, '--duration', '0.3', '--speed', 'max', '--close-at-end',\n"
                  "               '--res', '960x540', '--screenshot-every', '3', out + '/' + m, '--json'])\n"
                  "    print('=== rc %s %s' % (m, rc), file=sys.stderr, flush=True)\n")
        proc = subprocess.run([sys.executable, "-c", script, str(tmp_path), ",".join(methods)], cwd=ROOT,
                              env=_x_env(x_display), capture_output=True, text=True, timeout=400)
        sections = proc.stderr.split("=== ")[1:]
        by_method = {}
        for section in sections:
            head, _, body = section.partition("\n")
            if head.startswith("rc "):
                _, method, rc = head.split()
                by_method[method] = (by_method.get(method, ("", ""))[0], rc)
            else:
                by_method[head] = (body, None)
        return [(m, tmp_path / m, by_method.get(m, (proc.stderr[-4000:], f"none (exit {proc.returncode})")))
                for m in methods]

    names_all = METHODS.names()
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = [r for share in pool.map(drive, (names_all[0::2], names_all[1::2])) for r in share]
    assert sorted(m for m, _, _ in results) == sorted(names_all)
    for method, out, (log, rc) in results:
        assert rc == "0", f"{method}: returned {rc}\n{log[-4000:]}"
        assert "SDL video driver x11" in log, f"{method}: no real window\n{log[-2000:]}"
        names = sorted(p.name for p in out.glob("*.png"))
        assert names == ["frame_000000.png", "frame_000003.png", "frame_000006.png"], (method, names)
        for name in names:
            check_screenshot(out / name, window_wh, camera_wh, (pre["crop_top"], pre["crop_bottom"]),
                             f"{method} {name}")
