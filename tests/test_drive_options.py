"""``drive``'s window options: ``--res`` is the window (as in CARLA's examples), ``--camera-res`` the
camera, ``--hud-res`` a hidden old name of ``--res``; ``--speed``, ``--close-at-end`` and the
screenshot options, parsed and checked."""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from pathlib import Path

import pytest

from carla_agent.cli import build_parser, parse_args

ROOT = Path(__file__).resolve().parents[1]


def drive_args(*argv):
    return parse_args(["drive", *argv])


def test_defaults_real_time_window_1280x720_the_scenarios_camera_and_hold_at_the_end():
    args = drive_args()
    assert args.res == (1280, 720) and args.camera_res is None
    assert args.speed == 1.0 and not args.close_at_end
    assert args.screenshot_every is None and args.screenshot_dir == "."


def test_res_is_the_window_and_camera_res_the_camera():
    args = drive_args("--res", "960x540", "--camera-res", "400x300")
    assert args.res == (960, 540) and args.camera_res == (400, 300)
    assert drive_args("--hud-res", "800x600").res == (800, 600)  # the old name still works


def test_camera_res_resizes_the_scenarios_camera_and_res_does_not():
    from carla_agent.cli.drive import _load_scenario

    sc = _load_scenario(drive_args("--scenario", "straight_clear", "--camera-res", "320x200", "--res", "960x540"))
    assert (sc.camera.image_size_x, sc.camera.image_size_y) == (320, 200)
    plain = _load_scenario(drive_args("--scenario", "straight_clear", "--res", "960x540"))
    from carla_agent.sim.scenario import load_scenario

    shipped = load_scenario("straight_clear").camera
    assert (plain.camera.image_size_x, plain.camera.image_size_y) == (shipped.image_size_x, shipped.image_size_y)


def test_hud_res_is_hidden_from_the_help_and_the_help_names_the_new_options():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    text = sub.choices["drive"].format_help()
    assert "--hud-res" not in text
    for option in ("--res", "--camera-res", "--speed", "--close-at-end", "--screenshot-every", "--screenshot-dir"):
        assert option in text, option


@pytest.mark.parametrize("text, expected", [("1", 1.0), ("0.25", 0.25), ("8", 8.0), ("max", math.inf)])
def test_speed(text, expected):
    assert drive_args("--speed", text).speed == expected


def test_close_at_end_and_screenshots():
    args = drive_args("--close-at-end", "--screenshot-every", "5", "shots", "--screenshot-dir", "pics")
    assert args.close_at_end and args.screenshot_every == (5, "shots") and args.screenshot_dir == "pics"


@pytest.mark.parametrize("argv, needle", [
    (["--speed", "0"], "max"), (["--speed", "fast"], "max"), (["--speed", "-2"], "max"),
    (["--res", "200x100"], "320x240"), (["--res", "big"], "WIDTHxHEIGHT"), (["--camera-res", "8x8"], "32x32"),
    (["--hud-res", "wide"], "WIDTHxHEIGHT"), (["--screenshot-every", "0", "d"], ">= 1"),
    (["--screenshot-every", "x", "d"], ">= 1"), (["--screenshot-every", "3"], "expected 2 arguments"),
])
def test_bad_values_end_in_one_error_line(argv, needle, capsys):
    with pytest.raises(SystemExit) as exit_info:
        drive_args(*argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and needle in lines[0], err
    assert argv[0] in lines[0], err  # names the option


def test_screenshot_every_headless_writes_the_offscreen_hud(tmp_path):
    """No display (SDL's dummy driver, as in the tests): the HUD is drawn offscreen for the pictures."""
    out = tmp_path / "frames"
    proc = subprocess.run([sys.executable, "-m", "carla_agent", "drive", "--headless", "--quiet", "--duration", "0.2",
                           "--screenshot-every", "2", str(out), "--res", "640x360", "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in out.glob("*.png")) == ["frame_000000.png", "frame_000002.png", "frame_000004.png"]
    import cv2

    img = cv2.imread(str(out / "frame_000004.png"))
    assert img.shape[:2] == (360, 640) and img.std() > 20
