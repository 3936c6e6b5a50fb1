"""The live HUD, headless (SDL dummy driver): layout, every method, each key, worker timing, map <-> frame ids.

Frames come from a tiny synthetic simulator that paints each frame's id into its
pixels twice: once above the network's crop (so the tests can read, from the
HUD's own pixels, which frame a panel shows) and once inside the crop (so a fake
explainer can tell which frame it was given). Screenshots of every method go to
``$HUD_SCREENSHOT_DIR`` when set, else to pytest's tmp dir.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import cv2
import numpy as np
import pygame
import pytest

from carla_agent.drive.agent import NetworkAgent
from carla_agent.errors import CarlaAgentError
from carla_agent.drive.session import drive_scenario
from carla_agent.hud import HudConfig, HudError, HudHook, RestartEpisode, hud_available, make_hud
from carla_agent.hud.controls import KEY_HELP, ManualDriver
from carla_agent.hud.explainers import MethodMenu, make_key
from carla_agent.hud.layout import LAYOUTS, compute_layout, default_layout
from carla_agent.saliency.compose import OVERLAY_STYLES, compose
from carla_agent.sim.observation import CollisionEvent, GroundTruth, LaneInvasionEvent, Observation, Pose
from carla_agent.network.pilotnet import build_pilotnet
from carla_agent.network.preprocess import Preprocessing
from carla_agent.drive.runner import Runner, RunnerHook, StepRecord, StopDrive
from carla_agent.saliency.methods import METHODS
from carla_agent.saliency.overlay import blur_background, green_mask, overlay
from carla_agent.saliency.result import SaliencyResult
from carla_agent.sim.scenario import load_scenario
from carla_agent.sim.simulator import Simulator
from carla_agent.network.steering_model import SteeringModel
from carla_agent.hud.strip_chart import StripChart
from hud_fixtures import _shared_explainers, real_factory  # noqa: F401 (fixtures)

FRAME_WH = (480, 270)
HUD_WH = (1280, 720)
CODE_OUT = (0.14, 0.05)  # (row, col) fraction of the id block above the crop
CODE_IN = (0.86, 0.04)  # (row, col) fraction of the id block inside the crop


# -- synthetic world -------------------------------------------------------------------------------
def paint_id(img: np.ndarray, frame: int, at: tuple, half_px: int = 10) -> None:
    h, w = img.shape[:2]
    r, c = int(at[0] * h), int(at[1] * w)
    img[r - half_px:r + half_px, max(0, c - half_px):c + half_px] = (frame % 256, frame // 256, 200)


def read_id(img: np.ndarray, rect=None, at: tuple = CODE_OUT) -> int:
    """The frame id painted at ``at`` of an image, or of the panel ``rect`` of a HUD frame."""
    if rect is not None:
        img = img[rect.y:rect.bottom, rect.x:rect.right]
    h, w = img.shape[:2]
    px = img[int(at[0] * h), int(at[1] * w)].astype(int)
    return int(px[0]) + 256 * int(px[1])


def synth_frame(frame: int, offset_m: float, wh=FRAME_WH) -> np.ndarray:
    w, h = wh
    img = np.empty((h, w, 3), np.uint8)
    hor = int(h * 0.40)
    img[:hor] = (110, 160, 220)
    img[hor:] = (70, 130, 60)
    cx = w / 2 - offset_m * w * 0.12
    road = np.array([[cx - w * 0.03, hor], [cx + w * 0.03, hor], [cx + w * 0.6, h], [cx - w * 0.6, h]], np.int32)
    cv2.fillPoly(img, [road], (90, 90, 95))
    for side in (-1, 1):
        cv2.line(img, (int(cx + side * w * 0.025), hor), (int(cx + side * w * 0.55), h), (240, 240, 240), 3)
    for y0 in range(hor + (frame * 5) % 30, h, 30):
        cv2.line(img, (int(cx), y0), (int(cx), min(h - 1, y0 + 12)), (230, 200, 40), 2)
    paint_id(img, frame, CODE_OUT)
    paint_id(img, frame, CODE_IN)
    return img


class SynthSim(Simulator):
    """A minimal backend: frames carry their id; one collision at frame 5, a lane invasion at frame 6."""

    name = "synth"

    def __init__(self, wh=FRAME_WH) -> None:
        self.wh = wh
        self.weather_calls = []
        self.closed = False

    def reset(self, scenario, seed: int = 0) -> Observation:
        self.frame, self.offset_m, self.dt_s = 0, 0.0, scenario.dt_s
        self.weather = scenario.weather.preset
        return self._obs()

    def step(self, control) -> Observation:
        self.frame += 1
        self.offset_m += 8.0 * self.dt_s * control.steer * 0.3
        return self._obs()

    def recover(self) -> None:
        self.offset_m = 0.0

    def close(self) -> None:
        self.closed = True

    def set_weather(self, spec) -> None:
        self.weather_calls.append(spec.preset)
        self.weather = spec.preset

    def _obs(self) -> Observation:
        f = self.frame
        truth = GroundTruth(lateral_offset_m=self.offset_m, heading_error_rad=0.0, route_s_m=f * 0.4,
                            route_length_m=500.0, route_ahead=np.zeros((20, 2), np.float32),
                            expert_steer=float(np.clip(-0.3 * self.offset_m, -1, 1)))
        collisions = (CollisionEvent(f, "static.pole", "static", 900.0),) if f == 5 else ()
        invasions = (LaneInvasionEvent(f, ("Solid",)),) if f == 6 else ()
        return Observation(frame=f, sim_time_s=f * self.dt_s, dt_s=self.dt_s, image=synth_frame(f, self.offset_m, self.wh),
                           speed_mps=8.0, pose=Pose(0.0, 0.0), truth=truth, collisions=collisions,
                           lane_invasions=invasions, weather=self.weather)


GATE_S = 60.0


class CodeExplainer:
    """A fake (optionally slow) explainer: its map is a hot blob at column ``20 * (id % 10) + 10``,
    where ``id`` is the frame id it reads from the input pixels. So a map proves which frame it came from."""

    def __init__(self, preprocessing: Preprocessing, frame_hw, delay_s: float = 0.0, method: str = "occlusion",
                 gate: Optional[threading.Event] = None):
        self.delay_s = delay_s
        self.gate = gate  # while cleared, every call waits (at most GATE_S)
        self.gate_timeouts = 0
        self.method = method
        t, b, l, r = preprocessing.crop_box(frame_hw)
        h, w = frame_hw
        self.rc = (int(round((CODE_IN[0] * h - t) / (b - t) * preprocessing.height)),
                   int(round((CODE_IN[1] * w - l) / (r - l) * preprocessing.width)))
        self.shape = (preprocessing.height, preprocessing.width)
        self.threads = set()

    def __call__(self, x):
        self.threads.add(threading.current_thread().name)
        if self.gate is not None and not self.gate.wait(GATE_S):
            self.gate_timeouts += 1
            raise RuntimeError("the test never opened the gate")
        if self.delay_s:
            time.sleep(self.delay_s)
        frame = int(round(x[0, self.rc[0], self.rc[1], 0])) + 256 * int(round(x[0, self.rc[0], self.rc[1], 1]))
        maps = np.zeros((1, *self.shape), np.float32)
        col = 20 * (frame % 10) + 10
        maps[0, 8:40, col - 6:col + 6] = 1.0
        return SaliencyResult(prediction=np.zeros((1, 1), np.float32), maps=maps, signed=False, method=self.method,
                              target="auto", layer=None)

    @staticmethod
    def frame_mod10(maps: np.ndarray) -> int:
        col = int(np.argmax(maps.max(axis=0)))
        return (col + 6 - 10) // 20


# -- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model():
    return SteeringModel(build_pilotnet(), preprocessing=Preprocessing(height=66, width=200, color_space="rgb"))


@pytest.fixture(scope="module")
def scenario():
    return load_scenario("straight_clear")


@pytest.fixture
def shots(tmp_path) -> Path:
    out = Path(os.environ.get("HUD_SCREENSHOT_DIR", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    return out


def fake_factory(model, delay_s=0.0, slow=("occlusion",), gate=None):
    """Real explainers, except the ``slow`` methods, which become a slow CodeExplainer."""
    from carla_agent.hud import attention as hud_attention

    real = hud_attention.model_explainer_factory(model)

    def factory(key):
        if key.method in slow:
            return CodeExplainer(model.preprocessing, FRAME_WH[::-1], delay_s, key.method, gate)
        return real(key)

    return factory


def hud_for(model, scenario, **kw) -> HudHook:
    kw.setdefault("pause_timeout_s", 5.0)
    return make_hud(model, scenario, **kw)


class KeyScript(RunnerHook):
    """Posts key events at given ticks; placed before the HUD, which reads them in its own override."""

    def __init__(self, script):
        self.script = script

    def override(self, record):
        for typ, key in self.script.get(record.tick, ()):
            pygame.event.post(pygame.event.Event(typ, key=key, mod=0, unicode="", scancode=0))
        return None


class Probe(RunnerHook):
    """After the HUD: what it drew each tick (its pixels, map and bookkeeping)."""

    def __init__(self, hud, pixels=False):
        self.hud, self.pixels, self.ticks = hud, pixels, []

    def on_step(self, record):
        self.ticks.append(SimpleNamespace(
            frame=record.obs.frame, control=record.control, shown=self.hud.shown[-1], amap=self.hud.current_map,
            step_ms=self.hud.step_ms, rgb=self.hud.frame_rgb() if self.pixels else None,
            rects=self.hud.layout(FRAME_WH)))


def drive(model, scenario, hud, ticks, hooks_before=(), probe_pixels=False, sim=None):
    probe = Probe(hud, probe_pixels)
    agent = NetworkAgent(model, scenario.target_speed_mps)
    runner = Runner(sim or SynthSim(), agent, scenario, duration_s=ticks * scenario.dt_s,
                    hooks=[*hooks_before, hud, probe])
    metrics = runner.run()
    return metrics, probe.ticks, agent, runner


def press(key, typ=pygame.KEYDOWN):
    pygame.event.post(pygame.event.Event(typ, key=key, mod=0, unicode="", scancode=0))


class Ticker:
    """Drives the HUD tick by tick without a runner, for key tests."""

    def __init__(self, hud, model, scenario):
        self.hud, self.sim = hud, SynthSim()
        self.agent = NetworkAgent(model, scenario.target_speed_mps)
        self.runner = SimpleNamespace(agent=self.agent, sim=self.sim, scenario=scenario, interventions=0)
        self.obs = self.sim.reset(scenario)
        hud.on_start(self.runner, self.obs)
        self.tick = 0

    def until_ready(self, timeout_s: float = 20.0):
        """Tick until the method on screen has its map (its graph was built on the worker thread)."""
        deadline = time.monotonic() + timeout_s
        while self.hud.shown[-1].schedule == "building" and time.monotonic() < deadline:
            time.sleep(0.02)
            self.step()
        assert self.hud.shown[-1].map_frame is not None, self.hud.shown[-1]

    def step(self, *keys):
        for k in keys:
            press(k)
        d = self.agent.run_step(self.obs)
        rec = StepRecord(self.obs, d, d.control, self.tick, self.runner.interventions, 100.0, 20.0,
                         self.obs.sim_time_s)
        control = self.hud.override(rec)
        if control is not None:
            rec = StepRecord(self.obs, d, control, self.tick, self.runner.interventions, 100.0, 20.0,
                             self.obs.sim_time_s, taken_over=True)
        self.hud.on_step(rec)
        self.obs = self.sim.step(rec.control)
        self.tick += 1
        return rec


# -- pure helpers -------------------------------------------------------------------------------------
@pytest.mark.parametrize("image_wh", [(480, 270), (800, 600), (960, 240)])
def test_layout_every_panel_present_inside_and_apart(image_wh):
    for mode in LAYOUTS:
        rects = compute_layout(HUD_WH, image_wh, mode, True)
        assert set(rects) == {"camera", "overlay", "telemetry", "chart", "network"}, mode
        names = list(rects)
        for i, a in enumerate(names):
            r = rects[a]
            assert r.x >= 0 and r.y >= 0 and r.right <= HUD_WH[0] and r.bottom <= HUD_WH[1], (mode, a, r)
            for b in names[i + 1:]:
                assert not r.overlaps(rects[b]), (mode, a, b)
        for img in ("camera", "overlay"):  # aspect kept within a pixel
            r = rects[img]
            assert abs(r.w / r.h - image_wh[0] / image_wh[1]) < 2.0 / r.h
        hidden = compute_layout(HUD_WH, image_wh, mode, False)
        assert set(hidden) <= {"camera", "overlay"} and "overlay" in hidden
        assert hidden["overlay"].w >= rects["overlay"].w
    assert default_layout((480, 270)) == "side" and default_layout((960, 240)) == "stacked"
    with pytest.raises(ValueError, match="known layouts"):
        compute_layout(HUD_WH, image_wh, "grid")


def test_strip_chart_window_gaps_and_pixels():
    chart = StripChart(("a", "b"), window_s=2.0)
    for i in range(100):
        t = i * 0.05
        chart.add(t, {"a": np.sin(t), "b": None if 40 <= i < 50 else 0.5})
    t, v = chart.window()
    assert t[0] == pytest.approx(4.95 - 2.0) and t[-1] == pytest.approx(4.95)
    lines = chart.polylines((10, 20, 200, 100), {"a": (-1, 1), "b": (0, 1)})
    assert len(lines["a"]) == 1 and lines["a"][0][-1, 0] == 209  # newest at the right edge
    assert lines["a"][0][:, 1].min() >= 20 and lines["a"][0][:, 1].max() <= 119
    assert len(lines["b"]) == 1  # the gap (frames 40-49) is older than the 2 s window
    chart.add(0.0, {"a": 0.0})  # time went back: a new episode
    assert len(chart) == 1
    with pytest.raises(KeyError, match="known"):
        chart.add(1.0, {"c": 1.0})


def test_fast_overlay_looks_like_the_reference():
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 255, (140, 480, 3), dtype=np.uint8), (0, 0), 2)
    sal = cv2.GaussianBlur(rng.random((140, 480)).astype(np.float32), (0, 0), 6)
    sal = (sal - sal.min()) / (sal.max() - sal.min())
    signed = sal * 2 - 1
    refs = {("heat", False): overlay(img, sal, "jet", 0.5), ("heat", True): overlay(img, signed, "diverging", 0.5),
            ("strength", False): overlay(img, sal, "jet", 0.5, by_strength=True),
            ("green", False): green_mask(img, sal, alpha=0.5), ("blur", False): blur_background(img, sal)}
    for (style, is_signed), ref in refs.items():
        out = compose(img, signed if is_signed else sal, style, 0.5, is_signed)
        diff = np.abs(out.astype(int) - ref.astype(int))
        assert diff.mean() < 0.5 and diff.max() <= (3 if style == "blur" else 1), style
    region = compose(img, sal, "heat", 0.5, False, region=(20, 100, 0, 480))
    assert np.array_equal(region[:20], img[:20]) and np.array_equal(region[100:], img[100:])
    assert set(OVERLAY_STYLES) == {"heat", "strength", "green", "blur", "map"}


def test_every_method_is_on_a_number_key():
    menu = MethodMenu()
    reachable = set()
    for digit in range(1, 10):
        method = menu.select(digit, "")
        for _ in range(len(METHODS)):
            reachable.add(method)
            method = menu.select(digit, method)
    assert reachable == set(METHODS.names())
    assert menu.select(1, "") == "visual_backprop"
    assert menu.select(3, "gradient") == "gradient_signed"  # again: the next variant


def test_manual_driver_ramps_and_recentres():
    m = ManualDriver()
    c = [m.step(frozenset({"left", "up"})) for _ in range(3)][-1]
    assert c.steer == pytest.approx(-0.24) and c.throttle == pytest.approx(0.3) and c.brake == 0
    c = m.step(frozenset({"down"}))
    assert c.steer == 0 and c.throttle == 0 and c.brake == pytest.approx(0.2)
    assert max(abs(m.step(frozenset({"right"})).steer) for _ in range(20)) <= m.params.steer_max


def test_hud_available_follows_the_display(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    assert not hud_available()
    monkeypatch.setenv("SDL_VIDEODRIVER", "x11")
    monkeypatch.setenv("DISPLAY", ":0")
    assert hud_available() or os.name != "posix"
    monkeypatch.delenv("DISPLAY")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    import sys

    assert hud_available() == (sys.platform in ("win32", "darwin"))


# -- every method, headless, with screenshots --------------------------------------------------------------
def check_frame(rgb, rects, hud, amap, camera_frame):
    """Every panel drawn; overlay = camera where the map is absent, differs where it is high."""
    try:
        _check_frame(rgb, rects, hud, amap, camera_frame)
    except AssertionError as exc:
        raise AssertionError(f"{amap.key.label}, frame {camera_frame}: {exc}") from None


def _check_frame(rgb, rects, hud, amap, camera_frame):
    for name, r in rects.items():
        panel = rgb[r.y:r.bottom, r.x:r.right].reshape(-1, 3)
        assert panel.std(axis=0).max() > 5, f"panel {name} is blank"
    cam, ovl = rects["camera"], rects["overlay"]
    assert (cam.w, cam.h) == (ovl.w, ovl.h)
    assert read_id(rgb, cam) == camera_frame
    assert read_id(rgb, ovl) == amap.frame, "the map is drawn on another frame than its own"
    a = rgb[cam.y:cam.bottom, cam.x:cam.right].astype(int)
    b = rgb[ovl.y:ovl.bottom, ovl.x:ovl.right].astype(int)
    norm = hud.feed.normalized(amap)
    sal = np.abs(hud.preprocessing.project_map(norm, (ovl.h, ovl.w)))
    high = sal >= 0.8 * sal.max()  # the running normaliser may keep a weak frame below 1
    high[: 30] = False  # caption
    assert sal.max() > 0.3 and high.sum() > 30, "no high saliency anywhere"
    assert np.abs(a - b)[high].mean() > 20, "the overlay does not show the map where it is high"
    t, _, _, _ = hud.preprocessing.crop_box((ovl.h, ovl.w))
    above = (slice(26, t - 2), slice(0, ovl.w))  # outside the crop, below the caption: the plain camera
    if amap.frame == camera_frame:
        assert np.abs(a[above] - b[above]).mean() < 2.0, "overlay does not line up with the camera"


def test_every_method_renders_headless_and_lines_up(model, scenario, shots):
    hud = hud_for(model, scenario, lockstep=True, res=HUD_WH)
    try:
        for method in METHODS.names():
            hud.set_saliency(method)
            _, ticks, _, _ = drive(model, scenario, hud, ticks=2, probe_pixels=True)
            last = ticks[-1]
            assert last.shown.schedule in ("inline", "lock-step"), (method, hud.feed.failure())
            assert last.amap is not None and last.amap.key == hud.key and last.amap.result.method == method
            assert all(t.shown.map_frame == t.frame == t.amap.frame for t in ticks), method
            check_frame(last.rgb, last.rects, hud, last.amap, last.frame)
            path = shots / f"hud_{method}.png"
            assert cv2.imwrite(str(path), cv2.cvtColor(last.rgb, cv2.COLOR_RGB2BGR)), path
            # Read back what this run wrote: $HUD_SCREENSHOT_DIR may be shared with other runs and
            # other tests (hud_headless.png), so counting the folder's hud_*.png was not a check of this run.
            assert np.array_equal(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB), last.rgb), path
    finally:
        hud.close()


def test_inline_method_rides_in_the_agents_graph_call(model, scenario):
    with hud_for(model, scenario, method="visual_backprop", inline_budget_ms=None) as hud:
        assert hud.feed.cache.ready(hud.key).schedule == "inline"  # by name: never moved off the frame
        seen = []

        class Spy(RunnerHook):
            def on_step(self, record):
                seen.append((record.decision.attention is not None, record.decision.frame, record.obs.frame))

        metrics, ticks, agent, _ = drive(model, scenario, hud, ticks=6, hooks_before=(Spy(),))
        assert all(has and df == of for has, df, of in seen)  # the agent made every map, same frame
        assert all(t.shown.schedule == "inline" and t.shown.age_frames == 0 for t in ticks)
        assert agent.explainer is None  # the agent's own (none) is handed back at the end of the episode
        own = object()
        agent = NetworkAgent(model, scenario.target_speed_mps, explainer=own)
        Runner(SynthSim(), agent, scenario, duration_s=2 * scenario.dt_s, hooks=[hud]).run()
        assert agent.explainer is own


def test_worker_never_blocks_a_step_and_every_map_matches_its_frame(model, scenario):
    gate = threading.Event()
    gate.set()
    factory = fake_factory(model, delay_s=0.3, gate=gate)
    with hud_for(model, scenario, method="occlusion", explainer_factory=factory) as hud:
        explainer = hud.feed.cache.ready(hud.key).explainer
        explainer.threads.clear()  # make_hud's warm-up call ran here; during the drive only the worker may call
        probe = Probe(hud, pixels=True)
        gate.clear()  # the worker's first map waits until the drive has gone 20 steps without it
        stuck_steps = []

        class UntilMaps(RunnerHook):
            def on_step(self, record):
                if not gate.is_set():
                    stuck_steps.append(all(t.amap is None for t in probe.ticks))
                    if len(stuck_steps) == 20:
                        gate.set()
                if len({t.amap.frame for t in probe.ticks if t.amap is not None}) >= 4:
                    raise StopDrive("enough maps")

        agent = NetworkAgent(model, scenario.target_speed_mps)
        Runner(SynthSim(), agent, scenario, duration_s=60.0, hooks=[hud, probe, UntilMaps()]).run()
        ticks = probe.ticks
        # A step never waits for a map: 20 steps went by while the worker could not finish one.
        assert stuck_steps == [True] * 20 and explainer.gate_timeouts == 0
        assert len(ticks) >= 20 + 4, "the drive went at the worker's pace"
        with_map = [t for t in ticks if t.amap is not None]
        assert max(t.shown.age_frames for t in with_map) >= 2
        for t in with_map:
            assert t.shown.map_frame == t.amap.frame <= t.frame
            assert t.shown.age_frames == t.frame - t.amap.frame
            assert CodeExplainer.frame_mod10(t.amap.map) == t.amap.frame % 10  # computed from its own frame
            assert read_id(t.amap.image) == t.amap.frame  # carries its own image
            assert read_id(t.rgb, t.rects["overlay"]) == t.amap.frame  # and is drawn on it
            assert read_id(t.rgb, t.rects["camera"]) == t.frame
        assert all(t.shown.schedule == "worker" for t in ticks)
        assert explainer.threads == {"attention-worker"}
        assert hud.feed.dropped > 0  # newest frame wins


def test_lockstep_waits_for_each_frames_own_map(model, scenario):
    factory = fake_factory(model, delay_s=0.03)
    with hud_for(model, scenario, method="occlusion", explainer_factory=factory, lockstep=True) as hud:
        _, ticks, _, _ = drive(model, scenario, hud, ticks=8, probe_pixels=True)
        for t in ticks:
            assert t.shown.schedule == "lock-step" and t.amap.frame == t.frame and t.shown.age_frames == 0
            assert CodeExplainer.frame_mod10(t.amap.map) == t.frame % 10
            assert read_id(t.rgb, t.rects["overlay"]) == t.frame


def test_failing_method_is_shown_and_the_drive_goes_on(model, scenario):
    def factory(key):
        raise ValueError("no gradient flows to the input")

    with hud_for(model, scenario, method="gradient", explainer_factory=factory) as hud:
        metrics, ticks, _, _ = drive(model, scenario, hud, ticks=4)
        assert metrics.frames == 4
        assert all(t.shown.schedule == "error" and t.amap is None for t in ticks)
        assert "no gradient flows" in hud.feed.failure()


def test_headless_draws_offscreen(model, scenario, shots):
    with hud_for(model, scenario, headless=True) as hud:
        assert hud.window is None
        _, ticks, _, _ = drive(model, scenario, hud, ticks=3)
        rgb = hud.frame_rgb()
        assert rgb.shape == (HUD_WH[1], HUD_WH[0], 3) and rgb.std() > 10
        hud.save_screenshot(shots / "hud_headless.png")
        assert ticks[-1].shown.map_frame == ticks[-1].frame
        # No window: no keys, and a pause cannot hang the drive.
        hud.handle_action("pause")
        d = NetworkAgent(model, scenario.target_speed_mps).run_step(SynthSim().reset(scenario))
        t0 = time.perf_counter()
        hud.on_step(StepRecord(SynthSim().reset(scenario), d, d.control, 0, 0, 100.0, 20.0))
        assert time.perf_counter() - t0 < 2.0 and not hud.state.paused


# -- keys -------------------------------------------------------------------------------------------------------
def test_keys_change_method_target_style_alpha_layer_layout_panel_help(model, scenario):
    with hud_for(model, scenario, res=HUD_WH) as hud:
        t = Ticker(hud, model, scenario)
        t.step()
        fam = hud.menu.families
        t.step(pygame.K_3)
        assert hud.state.method == fam[2][0] and hud.key.method == fam[2][0]
        t.step(pygame.K_3)
        assert hud.state.method == fam[2][1]  # same key again: the next variant
        t.step(pygame.K_2)  # gradcam: uses target and layer
        assert hud.key.method == "gradcam"
        t.step(pygame.K_t)
        assert hud.state.target == "left" and hud.key.target == "left"
        t.step(pygame.K_l)
        assert hud.key.layer == model.conv_layer_names[0]
        t.step(pygame.K_l)
        assert hud.key.layer == model.conv_layer_names[1]
        t.step(pygame.K_1)  # visual_backprop: no target
        assert hud.key.target == "-" and hud.key.method == "visual_backprop"
        t.step(pygame.K_t)
        assert hud.state.target == "right" and hud.key.target == "-"
        t.until_ready()
        before = hud.frame_rgb()
        t.step(pygame.K_o)
        assert hud.state.style == OVERLAY_STYLES[1]
        t.step(pygame.K_RIGHTBRACKET)
        assert hud.state.alpha == pytest.approx(0.6)
        t.step(pygame.K_LEFTBRACKET, pygame.K_LEFTBRACKET)
        assert hud.state.alpha == pytest.approx(0.4)
        assert hud.shown[-1].schedule == "inline"
        ovl = hud.layout(FRAME_WH)["overlay"]
        after = hud.frame_rgb()
        assert np.abs(before[ovl.y + 30:ovl.bottom, ovl.x:ovl.right].astype(int)
                      - after[ovl.y + 30:ovl.bottom, ovl.x:ovl.right]).mean() > 1.0
        for mode in LAYOUTS[1:] + LAYOUTS[:1]:
            t.step(pygame.K_TAB)
            assert hud.state.layout == mode
        t.step(pygame.K_F1)
        assert not hud.state.panel_visible and set(hud.layout(FRAME_WH)) == {"camera", "overlay"}
        t.step(pygame.K_F1)
        assert hud.state.panel_visible
        plain = hud.frame_rgb()
        t.step(pygame.K_h)
        assert hud.state.help_visible and hud.frame_rgb().mean() < plain.mean() * 0.8
        t.step(pygame.K_h)
        assert not hud.state.help_visible
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_SLASH, mod=pygame.KMOD_LSHIFT,
                                             unicode="?", scancode=0))
        t.step()
        assert hud.state.help_visible  # ? too, as in CARLA's manual_control
        assert len(KEY_HELP) >= 15


def test_pause_step_and_recompute_while_paused(model, scenario):
    with hud_for(model, scenario) as hud:
        t = Ticker(hud, model, scenario)
        t.step()
        press(pygame.K_PAUSE)
        press(pygame.K_n)  # one step, then pause again
        rec = t.step()
        assert hud.state.paused and hud.shown[-1].camera_frame == rec.obs.frame
        # Keys pressed while the HUD waits in the pause: the same frame is recomputed with the new method.
        timers = [threading.Timer(0.3, press, (pygame.K_2,)), threading.Timer(0.8, press, (pygame.K_n,))]
        for timer in timers:
            timer.start()
        t0 = time.perf_counter()
        rec = t.step()
        assert time.perf_counter() - t0 >= 0.75  # it waited in the pause until N
        assert hud.key.method == "gradcam"
        redrawn = [s for s in hud.shown if s.camera_frame == rec.obs.frame]
        assert redrawn[-1].key.method == "gradcam" and redrawn[-1].map_frame == rec.obs.frame
        assert redrawn[0].key.method == "visual_backprop"
        press(pygame.K_3)  # switched on a stepped frame: it waits for its own (new) map too
        press(pygame.K_n)
        rec = t.step()
        assert hud.shown[-1].key.method == hud.key.method and hud.shown[-1].map_frame == rec.obs.frame
        press(pygame.K_PERIOD)  # "." pauses and resumes too (P is CARLA's autopilot)
        t0 = time.perf_counter()
        t.step()
        assert not hud.state.paused and time.perf_counter() - t0 < 2.0


def test_record_toggles_the_recorder_and_lockstep(model, scenario):
    calls = []
    factory = fake_factory(model, delay_s=0.02)
    with hud_for(model, scenario, method="occlusion", explainer_factory=factory,
                 on_record_toggle=calls.append) as hud:
        t = Ticker(hud, model, scenario)
        t.step(pygame.K_r)
        rec = t.step()
        assert calls == [True] and hud.state.recording
        assert hud.shown[-1].schedule == "lock-step" and hud.shown[-1].map_frame == rec.obs.frame
        assert hud.current_map.frame == rec.obs.frame
        t.step(pygame.K_r)
        t.step()
        assert calls == [True, False] and hud.shown[-1].schedule == "worker"


def test_escape_quits_and_backspace_restarts(model, scenario):
    with hud_for(model, scenario) as hud:
        metrics, ticks, _, _ = drive(model, scenario, hud, ticks=20,
                                     hooks_before=(KeyScript({3: [(pygame.KEYDOWN, pygame.K_ESCAPE)]}),))
        assert metrics.frames == 3 and len(ticks) == 3  # ESC in tick 3's override: that tick never steps
        class BackspaceInFirstEpisode(KeyScript):
            episodes = 0

            def on_start(self, context, obs):
                BackspaceInFirstEpisode.episodes += 1
                self.script = {4: [(pygame.KEYDOWN, pygame.K_BACKSPACE)]} if self.episodes == 1 else {}

        result = drive_scenario(scenario, NetworkAgent(model, scenario.target_speed_mps), sim=SynthSim(),
                                duration_s=6 * scenario.dt_s, hooks=[BackspaceInFirstEpisode({}), hud],
                                restart=hud.consume_restart)
        assert result.episodes == 2 and BackspaceInFirstEpisode.episodes == 2
        assert result.metrics.frames == 6 and not hud.consume_restart()
        assert issubclass(RestartEpisode, StopDrive)


def test_telemetry_counts_and_window_close(model, scenario):
    with hud_for(model, scenario) as hud:
        t = Ticker(hud, model, scenario)
        for _ in range(8):
            rec = t.step()
        tel = hud.telemetry(rec, hud.current_map, "inline")
        assert tel.collisions == 1 and tel.lane_invasions == 1 and tel.frame == 7
        assert tel.steer_expert is not None and tel.map_age_frames == 0
        pygame.event.post(pygame.event.Event(pygame.QUIT))
        with pytest.raises(StopDrive):
            t.step()
    with pytest.raises(ValueError, match="known"):
        HudConfig(style="sepia")
    with pytest.raises(ValueError, match="conv layer"):
        make_hud(model, scenario, layer="conv9", prebuild=False, headless=True)
    assert make_key("visual_backprop", "left").target == "-"


def test_bad_settings_and_no_display_are_one_line_errors(model, scenario, monkeypatch):
    for kwargs in ({"layer": "conv9"}, {"target": "up"}, {"style": "sepia"}, {"res": (100, 100)}):
        with pytest.raises(HudError) as info:
            make_hud(model, scenario, prebuild=False, headless=True, **kwargs)
        assert isinstance(info.value, CarlaAgentError) and "\n" not in str(info.value)

    def no_display(*args, **kwargs):
        raise pygame.error("No available video device")

    monkeypatch.setattr(pygame.display, "set_mode", no_display)
    with pytest.raises(HudError, match="--headless"):
        make_hud(model, scenario, prebuild=False)
