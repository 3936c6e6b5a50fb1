"""The HUD in time and at the end (SDL dummy driver, the embedded simulator, an untrained PilotNet):
the speed keys, the pacing glue on a fake clock, the summary held at the end until BACKSPACE or
ESC (or not at all with hold_at_end off, as ``drive --close-at-end``), the screenshot key and
``screenshot_every``."""

from __future__ import annotations

import math
from dataclasses import replace

import cv2
import numpy as np
import pygame
import pytest

from carla_agent.drive.agent import NetworkAgent
from carla_agent.drive.runner import Runner, RunnerHook
from carla_agent.drive.session import drive_scenario
from carla_agent.hud import end_screen, make_hud, realtime
from carla_agent.hud.controls import KEY_HELP
from carla_agent.hud.keys import KEYMAP
from carla_agent.hud.telemetry import text_rows
from carla_agent.network.pilotnet import build_pilotnet
from carla_agent.network.preprocess import Preprocessing
from carla_agent.network.steering_model import SteeringModel
from carla_agent.sim.scenario import load_scenario
from carla_agent.sim.simulator import make_simulator
from hud_fixtures import _shared_explainers, real_factory  # noqa: F401 (fixtures)

WINDOW_WH = (960, 540)


@pytest.fixture(scope="module")
def model():
    return SteeringModel(build_pilotnet(), preprocessing=Preprocessing(height=66, width=200, color_space="rgb"))


@pytest.fixture(scope="module")
def scenario():
    sc = load_scenario("straight_clear")
    return replace(sc, camera=replace(sc.camera, image_size_x=320, image_size_y=180))


@pytest.fixture
def sim():
    with make_simulator("embedded") as s:
        yield s


def press(key, typ=pygame.KEYDOWN):
    pygame.event.post(pygame.event.Event(typ, key=key, mod=0, unicode="", scancode=0))


class KeyScript(RunnerHook):
    """Posts keys at given ticks, before the HUD reads them in its own override."""

    def __init__(self, script):
        self.script = script

    def override(self, record):
        for key in self.script.get(record.tick, ()):
            press(key)


class Probe(RunnerHook):
    """After the HUD: the speed factor and the telemetry row it showed, per tick."""

    def __init__(self, hud):
        self.hud, self.speeds, self.rows = hud, [], []

    def on_step(self, record):
        self.speeds.append(self.hud.pacer.speed)
        rows = {r.label: r.value for r in text_rows(self.hud.telemetry(record, None, "inline"))}
        self.rows.append(rows["speed factor"])


class FakeClock:
    """``time.monotonic`` and ``time.sleep`` for the pacing glue: time moves only when it sleeps."""

    def __init__(self):
        self.now, self.slept = 1000.0, []

    def monotonic(self):
        return self.now

    def sleep(self, s):
        self.slept.append(s)
        self.now += s


def run(sim, model, scenario, hud, ticks, hooks_before=(), hooks_after=()):
    agent = NetworkAgent(model, scenario.target_speed_mps)
    return Runner(sim, agent, scenario, duration_s=ticks * scenario.dt_s,
                  hooks=[*hooks_before, hud, *hooks_after]).run()


# -- speed -----------------------------------------------------------------------------------------
def test_speed_keys_halve_and_double_and_the_panel_shows_the_factor(sim, model, scenario, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(realtime, "time", clock)
    with make_hud(model, scenario, method="gradient", res=WINDOW_WH, speed=1.0) as hud:
        probe = Probe(hud)
        script = {2: [pygame.K_MINUS], 3: [pygame.K_MINUS], 4: [pygame.K_EQUALS, pygame.K_PLUS],
                  5: [pygame.K_EQUALS] * 4, 6: [pygame.K_KP_PLUS], 7: [pygame.K_KP_MINUS], 8: [pygame.K_EQUALS]}
        run(sim, model, scenario, hud, 9, hooks_before=[KeyScript(script)], hooks_after=[probe])
    assert probe.speeds == [1.0, 1.0, 0.5, 0.25, 1.0, 16.0, math.inf, 16.0, math.inf, math.inf]
    assert probe.rows[0] == "1x real time" and probe.rows[2].startswith("0.5x")
    assert probe.rows[6].startswith("max") and probe.rows[7].startswith("16x")


def test_the_hud_shows_each_frame_when_it_is_due(sim, model, scenario, monkeypatch):
    """On a fake clock that moves only when the HUD sleeps: 20 steps at half speed wait 20 * 0.05 / 0.5 s."""
    clock = FakeClock()
    monkeypatch.setattr(realtime, "time", clock)
    with make_hud(model, scenario, method="gradient", res=WINDOW_WH, speed=0.5) as hud:
        run(sim, model, scenario, hud, 20)
        assert sum(clock.slept) == pytest.approx(20 * scenario.dt_s / 0.5)
        assert max(clock.slept) <= realtime.SLICE_S + 1e-9  # short slices: keys answer while it waits
        assert hud.pacer.resyncs == 0
        slept_before = sum(clock.slept)
        hud.handle_action("faster")
        hud.handle_action("faster")
        hud.handle_action("faster")  # 0.5 -> 4
        run(sim, model, scenario, hud, 20)
        assert sum(clock.slept) - slept_before == pytest.approx(20 * scenario.dt_s / 4.0)


def test_max_and_headless_never_wait(sim, model, scenario, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(realtime, "time", clock)
    with make_hud(model, scenario, method="gradient", res=WINDOW_WH) as hud:  # the library's default: max
        assert hud.pacer.unlimited
        run(sim, model, scenario, hud, 10)
    with make_hud(model, scenario, method="gradient", res=WINDOW_WH, headless=True, speed=1.0) as hud:
        assert hud.pacer.unlimited
        run(sim, model, scenario, hud, 10)
        hud.handle_action("slower")
        assert hud.pacer.unlimited
    assert clock.slept == []


def test_the_help_names_the_new_keys_and_they_are_not_carlas():
    keys = dict(KEY_HELP)
    assert "F12" in keys and "screenshot" in keys["F12"]
    assert any("-" in k and "=" in k and "faster" in v for k, v in KEY_HELP)
    assert KEYMAP[pygame.K_F12] == "screenshot"
    assert KEYMAP[pygame.K_MINUS] == "slower" and KEYMAP[pygame.K_EQUALS] == "faster"


# -- the end of a scenario ---------------------------------------------------------------------------
class HoldSpy:
    """Stands in for end_screen's idle wait: records what the held window showed and, on the n-th
    wait of an episode, presses that episode's key."""

    def __init__(self, hud, keys_per_episode, after_waits=2):
        self.hud, self.keys, self.after = hud, list(keys_per_episode), after_waits
        self.waits, self.frames, self.summaries = 0, [], []

    def __call__(self):
        self.waits += 1
        self.frames.append(self.hud.frame_rgb())
        if self.waits % self.after == 0:
            key = self.keys.pop(0)
            if key == "close":
                pygame.event.post(pygame.event.Event(pygame.QUIT))
            else:
                press(key)


def spy_on_summaries(monkeypatch, spy):
    real = end_screen.draw_summary

    def draw_summary(p, size_wh, title, lines, *args):
        box = real(p, size_wh, title, lines, *args)
        spy.summaries.append((title, list(lines), box))
        return box

    monkeypatch.setattr(end_screen, "draw_summary", draw_summary)
    monkeypatch.setattr(end_screen, "_idle", spy)


def test_the_window_holds_the_summary_until_backspace_restarts_and_escape_quits(sim, model, scenario, monkeypatch):
    with make_hud(model, scenario, method="gradient", res=WINDOW_WH, hold_at_end=True) as hud:
        spy = HoldSpy(hud, [pygame.K_BACKSPACE, pygame.K_ESCAPE])
        spy_on_summaries(monkeypatch, spy)
        seen_metrics = []

        class Metrics(RunnerHook):
            def on_end(self, metrics, interrupted):
                seen_metrics.append(metrics)

        result = drive_scenario(scenario, NetworkAgent(model, scenario.target_speed_mps), sim=sim,
                                duration_s=8 * scenario.dt_s, hooks=[hud, Metrics()], restart=hud.consume_restart)
    assert result.episodes == 2  # BACKSPACE in the first hold drove again; ESC in the second ended it
    assert spy.waits == 4  # each hold waited (twice) before its key: it did not end by itself
    assert spy.keys == []
    assert len(spy.summaries) == 2
    for (title, lines, box), metrics in zip(spy.summaries, seen_metrics):
        assert title.startswith(scenario.name) and lines == metrics.table().splitlines()
        assert 0 < box.w <= WINDOW_WH[0] and 0 < box.h <= WINDOW_WH[1]
    # What the window showed while held: the summary box, darker than the frame around it.
    shown = spy.frames[0]
    box = spy.summaries[0][2]
    inside = shown[box.y + 2:box.bottom - 2, box.x + 2:box.right - 2]
    assert inside.mean() < 60 and inside.std() > 10  # a dark box with text on it


@pytest.mark.parametrize("key", [pygame.K_ESCAPE, "close"])
def test_escape_or_the_close_button_in_the_hold_quits(sim, model, scenario, monkeypatch, key):
    with make_hud(model, scenario, method="gradient", res=WINDOW_WH, hold_at_end=True) as hud:
        spy = HoldSpy(hud, [key], after_waits=1)
        spy_on_summaries(monkeypatch, spy)
        result = drive_scenario(scenario, NetworkAgent(model, scenario.target_speed_mps), sim=sim,
                                duration_s=4 * scenario.dt_s, hooks=[hud], restart=hud.consume_restart)
    assert result.episodes == 1 and spy.waits == 1 and len(spy.summaries) == 1


def test_close_at_end_does_not_hold_and_a_quit_mid_drive_does_not_either(sim, model, scenario, monkeypatch):
    def never():
        raise AssertionError("the window held")

    monkeypatch.setattr(end_screen, "_idle", never)
    with make_hud(model, scenario, method="gradient", res=WINDOW_WH, hold_at_end=False) as hud:
        metrics = run(sim, model, scenario, hud, 4)
        assert metrics.frames == 4
    with make_hud(model, scenario, method="gradient", res=WINDOW_WH, hold_at_end=True) as hud:
        metrics = run(sim, model, scenario, hud, 20, hooks_before=[KeyScript({3: [pygame.K_ESCAPE]})])
        assert metrics.frames == 3  # ESC ended the drive: the person quit, nothing to hold


# -- screenshots -------------------------------------------------------------------------------------
def test_the_screenshot_key_saves_the_window_also_while_the_summary_is_held(sim, model, scenario, monkeypatch,
                                                                            tmp_path):
    with make_hud(model, scenario, method="gradient", res=WINDOW_WH, hold_at_end=True,
                  screenshot_dir=str(tmp_path / "shots")) as hud:
        spy = HoldSpy(hud, [pygame.K_F12, pygame.K_ESCAPE], after_waits=1)
        spy_on_summaries(monkeypatch, spy)
        run(sim, model, scenario, hud, 6, hooks_before=[KeyScript({2: [pygame.K_F12]})])
    shots = sorted((tmp_path / "shots").glob("*.png"))
    assert len(shots) == 2, shots
    # F12 read in tick 2's override saves the window as drawn then: frame 1.
    assert "frame_000001" in shots[0].name or "frame_000001" in shots[1].name
    held = [s for s in shots if "frame_000006" in s.name]
    assert len(held) == 1  # the one taken in the hold, of the last frame with the summary on it
    for s in shots:
        img = cv2.imread(str(s))
        assert img.shape[:2] == WINDOW_WH[::-1] and img.std() > 20
    assert len(spy.summaries) == 2  # the summary was drawn again after the screenshot's notice


def test_screenshot_every_saves_each_nth_frame_with_its_own_map(sim, model, scenario, tmp_path):
    out = tmp_path / "every"
    with make_hud(model, scenario, method="occlusion", res=WINDOW_WH, screenshot_every=3,
                  screenshot_every_dir=str(out)) as hud:
        run(sim, model, scenario, hud, 10)
        shown = {s.camera_frame: s for s in hud.shown}
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == [f"frame_{f:06d}.png" for f in (0, 3, 6, 9)]
    for f in (0, 3, 6, 9):  # a slow (worker) method, yet every saved frame shows its own map
        assert shown[f].map_frame == f and shown[f].age_frames == 0
    img = cv2.imread(str(out / "frame_000009.png"))
    assert img.shape[:2] == WINDOW_WH[::-1] and len(np.unique(img.reshape(-1, 3), axis=0)) > 500


def test_screenshot_every_needs_a_folder_it_can_make(model, scenario, tmp_path):
    from carla_agent.hud import HudError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(HudError, match="--screenshot-every"):
        make_hud(model, scenario, prebuild=False, headless=True, screenshot_every=2,
                 screenshot_every_dir=str(blocker / "sub"))
    with pytest.raises(HudError, match="DIR"):
        make_hud(model, scenario, prebuild=False, headless=True, screenshot_every=2)
