"""Driving from the HUD as in CARLA's manual_control.py, headless (SDL dummy driver).

Keys are injected as pygame events. While a person (M) or the expert (P) has the wheel the
runner counts no intervention and never puts the car back on the lane, and autonomy covers
the network's ticks only; autonomy below zero is always shown with its formula.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pygame
import pytest

from carla_agent.drive.agent import ExpertAgent, NetworkAgent
from carla_agent.drive.metrics import MetricsTracker, autonomy_pct
from carla_agent.drive.runner import Runner, RunnerHook
from carla_agent.hud import make_hud
from carla_agent.hud.controls import KEY_HELP, ManualParams
from carla_agent.hud.keys import KEYMAP
from carla_agent.hud.panels import CAPTION_PX
from carla_agent.hud.telemetry import PALETTE, text_rows
from carla_agent.network.pilotnet import build_pilotnet
from carla_agent.network.preprocess import Preprocessing
from carla_agent.network.steering_model import SteeringModel
from carla_agent.sim.scenario import WEATHER_PRESETS, load_scenario
from test_hud import FRAME_WH, CodeExplainer, KeyScript, SynthSim, Ticker

ROOT = Path(__file__).resolve().parents[1]
DOWN, UP = pygame.KEYDOWN, pygame.KEYUP


class LaneSim(SynthSim):
    """SynthSim whose ground truth has a lane centre ahead (so the expert can drive it back)."""

    def _obs(self):
        obs = super()._obs()
        xs = np.linspace(1.0, 30.0, 30)
        ahead = np.stack([xs, np.full_like(xs, -self.offset_m)], axis=1).astype(np.float32)
        truth = type(obs.truth)(**{**vars(obs.truth), "route_ahead": ahead})
        return type(obs)(**{**vars(obs), "truth": truth})


class Spy(RunnerHook):
    """After the HUD: every record the runner handed the hooks."""

    def __init__(self):
        self.records = []

    def on_step(self, record):
        self.records.append(record)


@pytest.fixture(scope="module")
def model():
    return SteeringModel(build_pilotnet(), preprocessing=Preprocessing(height=66, width=200, color_space="rgb"))


@pytest.fixture(scope="module")
def scenario():
    return load_scenario("straight_clear")


def quick_hud(model, **kw):
    """A HUD whose maps come from a cheap fake explainer (its prediction, steer 0, drives straight)."""
    factory = lambda key: CodeExplainer(model.preprocessing, FRAME_WH[::-1], 0.0, key.method)  # noqa: E731
    kw.setdefault("pause_timeout_s", 5.0)
    return make_hud(model, load_scenario("straight_clear"), explainer_factory=factory, **kw)


def post(typ, key, mod=0, unicode=""):
    pygame.event.post(pygame.event.Event(typ, key=key, mod=mod, unicode=unicode, scancode=0))


def drive(model, scenario, hud, ticks, script, sim=None):
    spy = Spy()
    runner = Runner(sim or LaneSim(), NetworkAgent(model, scenario.target_speed_mps), scenario,
                    duration_s=ticks * scenario.dt_s, hooks=[KeyScript(script), hud, spy])
    return runner.run(), spy.records


def test_a_person_driving_off_the_lane_counts_nothing_and_is_not_put_back(model, scenario):
    script = {2: [(DOWN, pygame.K_m), (DOWN, pygame.K_a), (DOWN, pygame.K_w)],
              30: [(UP, pygame.K_a), (UP, pygame.K_w), (DOWN, pygame.K_m)]}
    with quick_hud(model) as hud:
        metrics, recs = drive(model, scenario, hud, 40, script)
        assert [r.tick for r in recs if r.taken_over] == list(range(2, 30))
        assert all(r.control.steer < 0 and r.control.throttle > 0 for r in recs[2:30])
        offsets = [abs(r.obs.truth.lateral_offset_m) for r in recs]
        # The person drove the car more than 1 m off its lane, and it was never teleported back.
        assert max(offsets[:31]) > 1.0 + 0.2
        assert all(b > a for a, b in zip(offsets[3:30], offsets[4:31]))
        assert metrics.interventions == 0 and all(r.interventions == 0 for r in recs)
        # Handed back off the lane: the first network tick puts the car back, without counting.
        assert offsets[32] < 1e-9
        dt = scenario.dt_s
        assert metrics.takeover_s == pytest.approx(28 * dt)
        assert metrics.network_s == pytest.approx(metrics.elapsed_s - 28 * dt)
        assert metrics.autonomy_pct == pytest.approx(autonomy_pct(0, metrics.network_s)) and metrics.autonomy_pct >= 0
        row = {r.label: r.value for r in text_rows(hud.telemetry(recs[-1], hud.current_map, "inline"))}
        assert not row["autonomy"].lstrip().startswith("-")
        assert row["autonomy"].endswith(f"of {metrics.network_s:.1f} s")  # says what it covers
        assert "taken over" in metrics.table() and not hud.state.manual


def test_wasd_arrows_q_space_make_carla_controls(model, scenario):
    p = ManualParams()
    with quick_hud(model) as hud:
        t = Ticker(hud, model, scenario)
        t.step()
        assert not t.step().taken_over  # the network drives until M
        rec = t.step(pygame.K_m)
        assert rec.taken_over and hud.state.manual
        for throttle_key, brake_key, left_key, right_key in ((pygame.K_w, pygame.K_s, pygame.K_a, pygame.K_d),
                                                             (pygame.K_UP, pygame.K_DOWN, pygame.K_LEFT,
                                                              pygame.K_RIGHT)):
            post(DOWN, throttle_key)
            c = [t.step().control for _ in range(3)]
            assert [x.throttle for x in c] == pytest.approx([p.throttle_step * n for n in (1, 2, 3)])
            assert all(x.brake == 0 and x.steer == 0 for x in c)
            post(UP, throttle_key)
            post(DOWN, brake_key)
            c = t.step().control
            assert c.throttle == 0 and c.brake == pytest.approx(p.brake_step)
            post(UP, brake_key)
            post(DOWN, left_key)
            c = [t.step().control for _ in range(20)]
            assert c[0].steer == pytest.approx(-p.steer_step) and c[1].steer == pytest.approx(-2 * p.steer_step)
            assert c[-1].steer == pytest.approx(-p.steer_max)  # ramps while held, up to CARLA's 0.7
            post(UP, left_key)
            post(DOWN, right_key)
            assert t.step().control.steer == pytest.approx(p.steer_step)  # from the centre, not from -0.7
            post(UP, right_key)
            assert t.step().control.steer == 0  # released: the wheel re-centres
        rec = t.step(pygame.K_q)
        assert rec.control.reverse and not rec.control.hand_brake
        post(DOWN, pygame.K_SPACE)
        c = t.step().control
        assert c.hand_brake and c.reverse
        post(UP, pygame.K_SPACE)
        assert not t.step().control.hand_brake
        assert not t.step(pygame.K_q).control.reverse
        rec = t.step(pygame.K_m)
        assert not rec.taken_over and rec.control == rec.decision.control  # M again: the network's wheel


def test_c_changes_the_weather_and_w_no_longer_does(model, scenario):
    with quick_hud(model) as hud:
        t = Ticker(hud, model, scenario)
        t.step()
        t.step(pygame.K_w)  # W is throttle now; while the network drives it only says how to take over
        assert t.sim.weather_calls == [] and "M" in hud._toast[0]
        t.step(pygame.K_c)
        t.step(pygame.K_c)
        post(DOWN, pygame.K_c, mod=pygame.KMOD_LSHIFT, unicode="C")
        t.step()
        i = WEATHER_PRESETS.index(scenario.weather.preset)
        n = len(WEATHER_PRESETS)
        assert t.sim.weather_calls == [WEATHER_PRESETS[(i + 1) % n], WEATHER_PRESETS[(i + 2) % n],
                                       WEATHER_PRESETS[(i + 1) % n]]  # Shift+C: back, as in CARLA


def test_p_gives_the_expert_the_wheel(model, scenario):
    script = {1: [(DOWN, pygame.K_m), (DOWN, pygame.K_d)], 25: [(UP, pygame.K_d), (DOWN, pygame.K_p)],
              70: [(DOWN, pygame.K_p)]}
    with quick_hud(model) as hud:
        metrics, recs = drive(model, scenario, hud, 80, script)
        autopilot = recs[25:70]
        assert all(r.taken_over for r in recs[1:70]) and not any(r.taken_over for r in recs[70:])
        # The expert drives: the very controls a fresh ExpertAgent gives on the same observations.
        expert = ExpertAgent(scenario.target_speed_mps)
        assert [r.control for r in autopilot] == [expert.run_step(r.obs).control for r in autopilot]
        off = [r.obs.truth.lateral_offset_m for r in autopilot]
        assert off[0] > 1.0 and abs(off[-1]) < 0.5 * off[0]  # it brings the car back to the centre
        assert metrics.interventions == 0
        assert metrics.takeover_s == pytest.approx(69 * scenario.dt_s)  # manual and autopilot alike
        assert recs[-1].control == recs[-1].decision.control and not hud.state.autopilot


def test_negative_autonomy_is_shown_with_its_formula_everywhere():
    tracker = MetricsTracker("s", "synth")
    tracker.interventions = 25
    tracker.elapsed_s = 50.0
    m = tracker.result()
    assert m.autonomy_pct == pytest.approx(autonomy_pct(25, 50.0)) and m.autonomy_pct < 0
    assert m.to_dict()["autonomy_pct"] == pytest.approx(m.autonomy_pct, abs=1e-4)  # JSON: the number itself
    line = next(ln for ln in m.table().splitlines() if ln.startswith("autonomy"))
    value = f"{m.autonomy_pct:.1f} %"
    assert value in line and "= (1 - 6 s * 25 interventions / 50.0 s) * 100" in line
    # never a bare negative percent: every negative number in the line is followed by its formula
    assert all(line[mt.end():].startswith(" = (1 - 6 s") for mt in re.finditer(r"-\d+(\.\d+)? %", line))
    from carla_agent.hud.telemetry import Telemetry

    tel = Telemetry(frame=1000, sim_time_s=50.0, speed_mps=10.0, steer_predicted=0.0, steer_applied=0.0,
                    interventions=25, scenario="s", weather="clear_noon", lane_width_m=3.5,
                    autonomy_pct=m.autonomy_pct, collisions=0, lane_invasions=0, method="gradcam", target="auto",
                    layer=None, schedule="inline", style="heat", alpha=0.5, sim_fps=20.0, hud_fps=20.0,
                    hud_ms=1.0, saliency_ms=None, map_age_frames=None, map_frame=None, network_s=50.0)
    rows = text_rows(tel)
    i = [r.label for r in rows].index("autonomy")
    assert rows[i].value == f"{m.autonomy_pct:.0f} %, below 0:" and rows[i].colour == "alert"
    assert rows[i + 1].wide and rows[i + 1].value == "= (1 - 6 s * 25 / 50.0 s) * 100"


def test_help_hint_is_drawn_and_keys_are_carlas(model, scenario):
    with quick_hud(model) as hud:
        t = Ticker(hud, model, scenario)
        for f1 in (False, True):
            if f1:
                t.step(pygame.K_F1)
            t.step()
            rgb = hud.frame_rgb().astype(int)
            rects = hud.layout(FRAME_WH)
            cam = rects.get("camera", rects["overlay"])
            strip = rgb[cam.y:cam.y + CAPTION_PX, cam.right - 90:cam.right]
            near = np.abs(strip - np.array(PALETTE["expert"])).sum(axis=2) < 60
            assert near.sum() > 15, "no 'H: help' hint in the camera caption"
            left = rgb[cam.y:cam.y + CAPTION_PX, cam.x:cam.x + 90]
            assert (np.abs(left - np.array(PALETTE["expert"])).sum(axis=2) < 60).sum() == 0
    carla = {pygame.K_p: "autopilot", pygame.K_c: "weather", pygame.K_TAB: "layout", pygame.K_r: "record",
             pygame.K_BACKSPACE: "restart", pygame.K_F1: "toggle_panel", pygame.K_h: "help",
             pygame.K_ESCAPE: "quit", pygame.K_q: "reverse"}
    assert {k: KEYMAP[k] for k in carla} == carla
    for driving in (pygame.K_w, pygame.K_a, pygame.K_s, pygame.K_d, pygame.K_SPACE):
        assert driving not in KEYMAP  # WASD and Space drive, as in manual_control.py: no other action
    assert (KEYMAP[pygame.K_MINUS], KEYMAP[pygame.K_EQUALS], KEYMAP[pygame.K_F12]) == ("slower", "faster", "screenshot")


def test_the_docs_list_every_key_of_the_help():
    docs = (ROOT / "docs" / "hud" / "README.md").read_text()
    table = docs[docs.index("## Keys"):]
    for keys, _ in KEY_HELP:
        if keys:
            assert f"| {keys} |" in table, keys
