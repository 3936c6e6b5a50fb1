"""The live HUD: the camera and where the network looks, side by side, while the car drives.

:class:`HudHook` is a :class:`~carla_agent.drive.runner.RunnerHook` that owns a pygame
window (or an offscreen surface when headless) and draws, every tick:

* the camera frame and, beside it, the saliency map over *the frame it was
  computed from* (captioned with that frame id and its age in frames);
* the network's own input (crop, resize) with its map at native resolution,
  and a feature grid for per-layer methods (``activations``);
* telemetry (scenario, weather, time, speed, steering predicted / applied /
  expert as bars and a steering-wheel gauge, pedals, lateral offset, autonomy,
  interventions, collisions, lane invasions, method and target, FPS, saliency
  latency and map age) and a strip chart of steering and lateral offset.

Keys: :data:`carla_agent.hud.controls.KEY_HELP` (H shows them on screen).

Timing (:mod:`carla_agent.hud.attention`): cheap methods run inline in the agent;
slow ones in a worker thread that never blocks a step; while recording (or with
``lockstep=True``) each frame waits for its own map.

Drawing: :mod:`carla_agent.hud.panels` and :mod:`carla_agent.hud.gauges` (what does
not change between frames is drawn once per layout onto a cached layer); keys:
:mod:`carla_agent.hud.keys`. pygame is imported only in this package. Lifetime: build with
:func:`make_hud`, pass it to ``Runner(hooks=[...])``, then :meth:`HudHook.close`
(or use it as a context manager). BACKSPACE raises :class:`~carla_agent.hud.config.RestartEpisode`;
:func:`carla_agent.drive.session.drive_scenario` with ``restart=hud.consume_restart``
runs episodes until one ends without a restart.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, FrozenSet, Optional, Tuple

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402  (pygame is imported only in this package)

from carla_agent.control import VehicleControl  # noqa: E402
from carla_agent.drive.agent import ExpertAgent  # noqa: E402
from carla_agent.drive.metrics import format_autonomy  # noqa: E402
from carla_agent.drive.pacing import Pacer  # noqa: E402
from carla_agent.drive.runner import DriveContext, RunnerHook, StepRecord  # noqa: E402
from carla_agent.drive.telemetry import DriveTelemetry  # noqa: E402
from carla_agent.hud.attention import AttentionFeed  # noqa: E402
from carla_agent.hud import end_screen  # noqa: E402
from carla_agent.hud.display import open_window  # noqa: E402
from carla_agent.hud.config import HudConfig, HudError, ShownFrame  # noqa: E402
from carla_agent.hud.controls import HudState, ManualDriver  # noqa: E402
from carla_agent.hud.explainers import (NO_TARGET, TARGETS, ExplainerFactory, MethodMenu, SaliencyKey,  # noqa: E402
                                        layer_shown, make_key, uses_layer)
from carla_agent.hud.gauges import draw_chart, draw_telemetry  # noqa: E402
from carla_agent.hud.keys import handle_action, pause_loop, poll_keys  # noqa: E402
from carla_agent.hud.layout import Rect, compute_layout, default_layout  # noqa: E402
from carla_agent.hud.painter import Painter  # noqa: E402
from carla_agent.hud.realtime import wait_until_due  # noqa: E402
from carla_agent.hud.screenshots import Screenshots  # noqa: E402
from carla_agent.hud.panels import (MapView, PanelCache, banner, caption, draw_help, draw_network, splash,  # noqa: E402
                                    draw_overlay, draw_toast, static_layer)
from carla_agent.hud.strip_chart import StripChart  # noqa: E402
from carla_agent.hud.telemetry import Telemetry, bar_rows, text_rows  # noqa: E402
from carla_agent.hud.worker import AttentionMap  # noqa: E402
from carla_agent.saliency.methods import METHODS  # noqa: E402

log = logging.getLogger(__name__)


class HudHook(RunnerHook):
    """The live HUD as a runner hook. Build it with :func:`make_hud`.

    In ``on_start`` it takes over ``context.agent.explainer`` (when the agent has one):
    the inline explainer for cheap methods, None for worker methods; the agent's own
    explainer is put back in ``on_end``.

    Args:
        model: the :class:`~carla_agent.network.steering_model.SteeringModel` that steers
            (its ``preprocessing``, ``input_shape`` and ``conv_layer_names`` are used).
        config: settings.
        explainer_factory: ``SaliencyKey -> explainer``; default ``make_explainer`` on the model.
        on_record_toggle: called with True / False when R starts / stops recording.
        weather_presets: the names C cycles through (default: the scenario presets).

    Attributes:
        state: what the keys changed (:class:`~carla_agent.hud.controls.HudState`).
        feed: where the maps come from (:class:`~carla_agent.hud.attention.AttentionFeed`).
        shown: the last 4096 :class:`ShownFrame` records, oldest first.
        restart_requested: BACKSPACE was pressed (see :meth:`consume_restart`).
        draw_ms: [ms] drawing time of the last frame (panels and present; no saliency).
        step_ms: [ms] the whole ``on_step`` of the last frame (saliency bookkeeping included).
        metrics: the last episode's metrics (set in ``on_end``).
        context: the :class:`~carla_agent.drive.runner.DriveContext` of the episode on now (None before ``on_start``).
        held, held_keys: the driving keys held now, by name (``left``, ``up``, ``hand_brake`` ...) and code.
        manual, expert: who drives on a takeover: the keyboard (M) and the expert (P).
        layout_auto: the layout follows the image aspect (until TAB picks one).
        weather_asked: the preset C asked for last (frames show it one tick later), or None.
        pacer: when each frame is shown (:class:`~carla_agent.drive.pacing.Pacer`; never waits headless).
        shots: the screenshot key's and ``screenshot_every``'s PNGs (:class:`~carla_agent.hud.screenshots.Screenshots`).
    """

    def __init__(self, model: Any, config: HudConfig = HudConfig(),
                 explainer_factory: Optional[ExplainerFactory] = None,
                 on_record_toggle: Optional[Callable[[bool], None]] = None,
                 weather_presets: Optional[Tuple[str, ...]] = None) -> None:
        from carla_agent.sim.scenario import WEATHER_PRESETS

        self.config = config
        self.shots = Screenshots(config.screenshot_dir, config.screenshot_every, config.screenshot_every_dir)
        self.pacer = Pacer(float("inf") if config.headless else config.speed)
        self.preprocessing = model.preprocessing
        self.on_record_toggle = on_record_toggle
        self.weather_presets = tuple(weather_presets or WEATHER_PRESETS)
        self.conv_layers: Tuple[str, ...] = tuple(getattr(model, "conv_layer_names", ()) or ())
        self.menu = MethodMenu()
        self.state = HudState(method=config.method, target=config.target, layer=config.layer,
                              style=config.style, alpha=config.alpha, layout=config.layout or "side")
        self.feed = AttentionFeed(model, make_key(config.method, config.target, config.layer), explainer_factory,
                                  config.inline_budget_ms, config.lockstep_timeout_s)
        self.manual = ManualDriver()
        self.expert = ExpertAgent(10.0)  # its cruise speed is the scenario's, set in on_start
        self.chart = StripChart(("predicted", "applied", "expert", "offset"), config.chart_window_s)
        self.shown: Deque[ShownFrame] = deque(maxlen=4096)
        self.restart_requested = False
        self.metrics = None
        self.draw_ms = 0.0
        self.step_ms = 0.0
        self.layout_auto = config.layout is None
        self._closed = False
        self.context: Optional[DriveContext] = None
        self.held: FrozenSet[str] = frozenset()
        self.held_keys: FrozenSet[int] = frozenset()
        self.weather_asked: Optional[str] = None
        self._pending: Optional[SaliencyKey] = None  # picked, still building
        self._toast: Tuple[str, float] = ("", 0.0)
        self._hud_fps = 0.0
        self._last_step_t: Optional[float] = None
        self._collisions = 0
        self._invasions = 0
        self._last: Optional[Tuple[StepRecord, Optional[AttentionMap], str]] = None
        self._panels = PanelCache()
        pygame.font.init()
        self.window: Optional[pygame.Surface] = None
        if config.headless:
            self.screen = pygame.Surface(config.size_wh)
        else:
            try:
                self.window = open_window(config.size_wh, config.title)
            except HudError:
                self.feed.close()
                raise
            self.screen = self.window
        self.paint = Painter(config.font_px)
        self.paint.target = self.screen

    # -- lifetime ----------------------------------------------------------------------
    def close(self) -> None:
        """Stop the worker, give the agent its explainer slot back, close the window. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.feed.close()
        if self.window is not None:
            pygame.display.quit()
            self.window = None

    def __enter__(self) -> "HudHook":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def consume_restart(self) -> bool:
        """True once after BACKSPACE asked for a restart (clears the request)."""
        requested, self.restart_requested = self.restart_requested, False
        return requested

    @property
    def key(self) -> SaliencyKey:
        """The saliency the HUD shows now."""
        return self.feed.key

    @property
    def current_map(self) -> Optional[AttentionMap]:
        """The map on screen now, tied to its frame (``.frame``, ``.image``, ``.result``), or None.

        In lock-step (recording) it is the map of the frame just drawn, so a recorder hook
        placed after the HUD can store it with that frame.
        """
        return None if self._last is None else self._last[1]

    @property
    def current_record(self) -> Optional[StepRecord]:
        """The step record of the frame on screen now, or None."""
        return None if self._last is None else self._last[0]

    # -- runner hook -----------------------------------------------------------------------
    def on_start(self, context: DriveContext, obs) -> None:
        if self._closed:
            raise RuntimeError("the HUD was closed; build a new one with make_hud()")
        self.context = context
        self.restart_requested = False
        self.metrics = None
        self.chart.clear()
        self._collisions = self._invasions = 0
        self._last_step_t = None
        self._last = None
        self.state.manual = self.state.autopilot = self.state.step_once = False
        self.manual.reset()
        self.expert = ExpertAgent(context.scenario.target_speed_mps)
        self.held, self.held_keys = frozenset(), frozenset()
        self.weather_asked = None
        self.pacer.reset()
        if self.layout_auto:
            self.state.layout = default_layout((obs.image.shape[1], obs.image.shape[0]))
        self.feed.attach(context.agent)

    def override(self, record: StepRecord) -> Optional[VehicleControl]:
        """Read the keys; a control returned (M: the keyboard's, P: the expert's) is a takeover for the runner."""
        poll_keys(self)
        if self.state.manual:
            return self.manual.step(self.held)
        return self.expert.run_step(record.obs).control if self.state.autopilot else None

    def on_step(self, record: StepRecord) -> None:
        t0 = time.perf_counter()
        if self._last_step_t is not None:
            dt = max(t0 - self._last_step_t, 1e-6)
            self._hud_fps = 1.0 / dt if not self._hud_fps else 0.9 * self._hud_fps + 0.1 / dt
        self._last_step_t = t0
        self._track(record)
        # While paused (stepping with N) each frame waits for its own map, like lock-step; so does
        # a frame saved by screenshot_every, so every picture shows its own frame's map.
        capture = self.shots.due(record.tick)
        amap, schedule = self.feed.for_record(record, lockstep=self._lockstep_now() or self.state.paused or capture)
        self._announce_ready(schedule)
        t1 = time.perf_counter()
        self._draw(record, amap, schedule)
        waited_s = wait_until_due(self, record, amap, schedule, poll_keys)  # show the frame when it is due
        self._present()
        t2 = time.perf_counter()
        self.draw_ms = (t2 - t1 - waited_s) * 1e3
        self.step_ms = (t2 - t0 - waited_s) * 1e3
        if capture:
            self.shots.capture(self.screen, record.obs.frame)
        if self.state.paused and not self.state.step_once:
            pause_loop(self, record)
            self.pacer.reset()  # simulated time goes on from the resumed frame, not from before the pause
        self.state.step_once = False

    def on_end(self, metrics, interrupted: bool) -> None:
        self.metrics = metrics
        if self._last is not None and not self._closed:
            what = "restarting" if self.restart_requested else "interrupted" if interrupted else "episode finished"
            autonomy = format_autonomy(metrics.autonomy_pct, metrics.interventions, metrics.network_s,
                                       metrics.takeover_s)
            self._toast = (f"{what}: autonomy {autonomy}", time.monotonic())
            record, amap, _ = self._last
            self.redraw(record, amap, "done")
            if (self.config.hold_at_end and self.window is not None and not interrupted
                    and not self.restart_requested and end_screen.ended_by_itself(record, self.context)):
                end_screen.hold(self, metrics)
        self.feed.detach()

    # -- keys --------------------------------------------------------------------------------
    def handle_action(self, action: str) -> None:
        """Do what a key does: an action of :data:`~carla_agent.hud.controls.ACTIONS` or ``method:<1-9>``
        (the handlers: :data:`carla_agent.hud.keys.HANDLERS`).

        Raises:
            StopDrive: ``quit`` (ESC).
            RestartEpisode: ``restart`` (BACKSPACE).
            ValueError: an unknown action.
        """
        handle_action(self, action)

    def set_saliency(self, method: str, target: Optional[str] = None, layer: Optional[str] = None) -> None:
        """Show another saliency, as the number keys, T and L do (for scripts and the CLI).

        Raises:
            UnknownNameError: unknown method. HudError: unknown target or layer.
        """
        METHODS.get(method)
        if target is not None and target not in TARGETS:
            raise HudError(f"unknown target {target!r}; known: {', '.join(TARGETS)}")
        if layer is not None and layer not in self.conv_layers:
            raise HudError(f"unknown conv layer {layer!r}; the model's: {', '.join(self.conv_layers) or '(none)'}")
        s = self.state
        s.method = method
        s.target = target or s.target
        s.layer = layer if uses_layer(method) else None
        self.show_selected()

    def show_selected(self) -> None:
        """Switch the map to the method, target and layer in ``state``, and say so."""
        s = self.state
        built = self.feed.select_names(s.method, s.target, s.layer)
        digit = self.menu.digit_of(s.method)
        status = "" if built else " (failed)" if self.feed.failure() else " (building the graph...)"
        self._pending = None if built or self.feed.failure() else self.feed.key
        self.notify(f"[{digit}] {self.feed.key.label}{status}")

    def _announce_ready(self, schedule: str) -> None:
        """Tell the user when the method they picked has finished building."""
        if self._pending is None or self._pending != self.feed.key or schedule == "building":
            return
        built = self.feed.cache.ready(self._pending)
        if built is not None:
            self.notify(f"{self._pending.label} ready: {built.schedule}, {built.warm_ms:.0f} ms a map")
        elif schedule == "error":
            self.notify(f"{self._pending.label} failed: {self.feed.failure()}")
        self._pending = None

    def notify(self, text: str) -> None:
        """Show ``text`` as a toast for :data:`~carla_agent.hud.panels.TOAST_S` seconds (and log it)."""
        log.info("HUD: %s", text)
        self._toast = (text, time.monotonic())

    def _lockstep_now(self) -> bool:
        return self.config.lockstep or (self.state.recording and self.config.lockstep_when_recording)

    # -- bookkeeping --------------------------------------------------------------------------
    def _track(self, record: StepRecord) -> None:
        obs = record.obs
        self._collisions += len(obs.collisions)
        self._invasions += len(obs.lane_invasions)
        self.chart.add(obs.sim_time_s, {
            "predicted": record.decision.predicted_steer, "applied": record.control.steer,
            "expert": obs.truth.expert_steer, "offset": obs.truth.lateral_offset_m})

    def telemetry(self, record: StepRecord, amap: Optional[AttentionMap], schedule: str) -> Telemetry:
        """The panel's numbers for ``record`` with ``amap`` on screen."""
        obs, key = record.obs, self.feed.key
        context = self.context
        return Telemetry(
            **vars(DriveTelemetry.from_record(record)),
            scenario=context.scenario.name if context is not None else "-",
            weather=obs.weather, lane_width_m=obs.truth.lane_width_m, autonomy_pct=record.autonomy_pct,
            collisions=self._collisions, lane_invasions=self._invasions,
            method=key.method, target=key.target if key.target != NO_TARGET else (
                "signed" if METHODS.get(key.method).signed else NO_TARGET),
            layer=layer_shown(key, amap.layer_name if amap is not None else None),
            schedule=schedule, style=self.state.style, alpha=self.state.alpha,
            sim_fps=record.sim_fps, hud_fps=self._hud_fps, hud_ms=self.draw_ms,
            saliency_ms=None if amap is None else amap.latency_ms,
            map_age_frames=None if amap is None else obs.frame - amap.frame,
            map_frame=None if amap is None else amap.frame, dropped=self.feed.dropped,
            network_s=record.network_s, manual=self.state.manual, autopilot=self.state.autopilot,
            paused=self.state.paused, recording=self.state.recording,
            speed_factor=self.pacer.speed, speed_achieved=record.sim_fps * obs.dt_s if record.sim_fps else None,
            message=(self.feed.failure() or "") if schedule == "error" else "")

    # -- drawing ---------------------------------------------------------------------------------
    def _present(self) -> None:
        if self.window is not None:
            pygame.display.flip()

    def redraw(self, record: StepRecord, amap: Optional[AttentionMap], schedule: str, present: bool = True) -> None:
        """Draw ``record``'s frame with ``amap`` (``schedule`` as in :class:`ShownFrame`) and show it
        (``present`` False: only draw, for something drawn on top before it is shown)."""
        self._draw(record, amap, schedule)
        if present:
            self._present()

    def layout(self, image_wh: Tuple[int, int]) -> Dict[str, Rect]:
        """The panel rectangles for the current layout and F1 state."""
        return compute_layout(self.config.size_wh, image_wh, self.state.layout, self.state.panel_visible)

    def _draw(self, record: StepRecord, amap: Optional[AttentionMap], schedule: str) -> None:
        """One HUD frame, back to front: the static layer, camera, overlay, telemetry, chart,
        network panel, toast, the PAUSED banner and help."""
        obs = record.obs
        self._last = (record, amap, schedule)
        rects = self.layout((obs.image.shape[1], obs.image.shape[0]))
        tel = self.telemetry(record, amap, schedule)
        rows, bars = text_rows(tel), bar_rows(tel)
        p = self.paint
        self.screen.blit(static_layer(p, self._panels, self.config.size_wh, self.window is not None, rects, rows,
                                      bars, tel.lane_width_m, self.chart, self.preprocessing), (0, 0))
        view = MapView(self.preprocessing, self.feed.normalized, self.state.style, self.state.alpha)
        if "camera" in rects:
            p.rgb(obs.image, rects["camera"])
            caption(p, rects["camera"], f"camera  frame {obs.frame}  t {obs.sim_time_s:.2f} s", tel, hint=True)
        draw_overlay(p, rects["overlay"], obs.frame, obs.image, amap, schedule, tel, self.feed.key, view,
                     self._panels, hint="camera" not in rects)
        if "telemetry" in rects:
            draw_telemetry(p, rects["telemetry"], tel, rows, bars)
        if "chart" in rects:
            draw_chart(p, rects["chart"], self.chart, tel.lane_width_m)
        if "network" in rects:
            draw_network(p, rects["network"], obs.frame, obs.image, amap, view)
        self._toast = draw_toast(p, rects, self._toast)
        if self.state.paused:
            banner(p, "PAUSED  N: step  Pause or .: resume", rects.get("camera", rects["overlay"]))
        if self.state.help_visible:
            draw_help(p, self.config.size_wh, self.menu.families, self.feed.key.label)
        self.shown.append(ShownFrame(obs.frame, None if amap is None else amap.frame,
                                     None if amap is None else amap.key,
                                     None if amap is None else obs.frame - amap.frame, schedule))

    # -- for recorders and screenshots --------------------------------------------------------------
    def frame_rgb(self) -> np.ndarray:
        """The HUD as drawn now: ``(H, W, 3)`` uint8 RGB (a copy)."""
        w, h = self.screen.get_size()
        return np.frombuffer(pygame.image.tobytes(self.screen, "RGB"), np.uint8).reshape(h, w, 3).copy()

    def save_screenshot(self, path) -> None:
        """Write the HUD as drawn now to an image file (PNG by extension)."""
        pygame.image.save(self.screen, str(path))


def make_hud(model: Any, scenario: Any = None, method: str = "visual_backprop", target: str = "auto",
             layer: Optional[str] = None, res: Tuple[int, int] = (1280, 720), headless: bool = False,
             on_record_toggle: Optional[Callable[[bool], None]] = None,
             explainer_factory: Optional[ExplainerFactory] = None, prebuild: bool = True,
             **options: Any) -> HudHook:
    """Build the HUD for ``python -m carla_agent drive``.

    Args:
        model: the steering model that drives (``SteeringModel``).
        scenario: the scenario (its camera size picks the default layout); optional.
        method, target, layer: ``--method``, ``--target``, ``--layer``.
        res: ``(width, height)`` of the HUD window in pixels.
        headless: ``--headless``: draw offscreen (for recording), no window, no keys.
        on_record_toggle: the recorder's callback for R (True = start).
        explainer_factory: ``SaliencyKey -> explainer`` (tests inject slow or fake ones).
        prebuild: build the first method now (tracing takes up to a few seconds), so the
            first frames have a map. A method that fails is reported and the drive goes on.
        **options: other :class:`HudConfig` fields (``speed``, ``hold_at_end``, ``screenshot_every``, ``lockstep`` ...).

    Raises:
        UnknownNameError: unknown method (lists the known ones).
        HudError: bad target, layer, style, layout or size, or no window could open.
    """
    METHODS.get(method)
    convs = tuple(getattr(model, "conv_layer_names", ()) or ())
    if layer is not None and layer not in convs:
        raise HudError(f"unknown conv layer {layer!r}; the model's conv layers: {', '.join(convs) or '(none)'}")
    config = HudConfig(size_wh=tuple(res), headless=headless, method=method, target=target, layer=layer, **options)
    hud = HudHook(model, config, explainer_factory=explainer_factory, on_record_toggle=on_record_toggle)
    if scenario is not None and config.layout is None:
        hud.state.layout = default_layout((scenario.camera.image_size_x, scenario.camera.image_size_y))
    if prebuild:
        if hud.window is not None:
            splash(hud.paint, config.size_wh, f"building {hud.key.label}: the first map takes a few seconds ...")
            pygame.display.flip()
        error = hud.feed.prebuild()
        if error:
            log.warning("saliency %s is not available: %s (press 1-9 for another method)", hud.key.label, error)
    return hud
