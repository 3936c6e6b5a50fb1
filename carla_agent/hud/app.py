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

Drawing cost: what does not change between frames (panel backgrounds, labels,
bar tracks, chart grid) is drawn once per layout onto a cached surface; each
frame blits it and draws only values, images and lines. Images go to the screen
through ``pygame.image.frombuffer`` (no per-frame ``surfarray.make_surface``).

This is the only module of the package that imports pygame. Lifetime: build with
:func:`make_hud`, pass it to ``Runner(hooks=[...])``, then :meth:`HudHook.close`
(or use it as a context manager). BACKSPACE raises :class:`RestartEpisode`;
:func:`drive_episodes` runs episodes until one ends without a restart.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, FrozenSet, Optional, Tuple

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402  (the one place pygame is imported)

from carla_agent.hud.worker import AttentionMap  # noqa: E402
from carla_agent.control import VehicleControl  # noqa: E402
from carla_agent.errors import CarlaAgentError  # noqa: E402
from carla_agent.hud.attention import AttentionFeed  # noqa: E402
from carla_agent.hud.controls import KEY_HELP, HudState, ManualDriver, cycle  # noqa: E402
from carla_agent.hud.explainers import (NO_TARGET, TARGETS, ExplainerFactory, MethodMenu, SaliencyKey,  # noqa: E402
                                        make_key, uses_layer, uses_target)
from carla_agent.hud.layout import LAYOUTS, Rect, compute_layout, default_layout  # noqa: E402
from carla_agent.hud.overlay import OVERLAY_STYLES, colorize_fast, compose, feature_grid, resize_rgb  # noqa: E402
from carla_agent.hud.telemetry import PALETTE, BarRow, Telemetry, bar_rows, text_rows  # noqa: E402
from carla_agent.drive.runner import RunnerHook, StepRecord, StopDrive  # noqa: E402
from carla_agent.saliency.methods import METHODS  # noqa: E402
from carla_agent.hud.strip_chart import StripChart  # noqa: E402

log = logging.getLogger(__name__)

WHEEL_DEG_PER_STEER = 135.0  # [deg] the gauge's wheel turns this far at steer 1.0 (full lock never looks straight)
TOAST_S = 2.5  # [s] how long a key's notification stays on screen
CAPTION_PX = 20  # [px] caption strip on top of the image panels
CHART_GRID_S = 2.0  # [s] vertical grid step of the strip chart


class HudError(CarlaAgentError, ValueError):
    """A bad HUD setting (size, style, layout, target, layer) or no window could open.
    The command line prints it as one line."""


class RestartEpisode(StopDrive):
    """Raised by the HUD on BACKSPACE. It is a :class:`~carla_agent.drive.runner.StopDrive`, so the
    runner ends the episode cleanly; :func:`drive_episodes` then starts a new one."""


@dataclass(frozen=True)
class HudConfig:
    """HUD settings. Sizes in pixels.

    Attributes:
        size_wh: window (or offscreen surface) size.
        headless: draw offscreen: no window, no keys (for recording).
        method, target, layer: the saliency shown first.
        style, alpha: overlay style (:data:`~carla_agent.hud.overlay.OVERLAY_STYLES`) and opacity.
        layout: one of :data:`~carla_agent.hud.layout.LAYOUTS`, or None to pick by the image aspect.
        chart_window_s: [s] span of the strip chart.
        lockstep: every frame waits for its own map (offline renders, screenshots).
        lockstep_when_recording: lock-step while recording (R).
        lockstep_timeout_s: [s] longest wait for one lock-step map.
        inline_budget_ms: [ms] cheap methods slower than this move to the worker (None: only the
            registry's slow methods run there; see :data:`~carla_agent.hud.explainers.SLOW_METHODS`).
        font_px: text size.
        pause_timeout_s: [s] give up a pause after this long (None: wait for P or N).
        hold_at_end: after the episode, keep the window until a key is pressed.
        title: window title.
    """

    size_wh: Tuple[int, int] = (1280, 720)
    headless: bool = False
    method: str = "visual_backprop"
    target: str = "auto"
    layer: Optional[str] = None
    style: str = "heat"
    alpha: float = 0.5
    layout: Optional[str] = None
    chart_window_s: float = 10.0
    lockstep: bool = False
    lockstep_when_recording: bool = True
    lockstep_timeout_s: float = 60.0
    inline_budget_ms: Optional[float] = None
    font_px: int = 13
    pause_timeout_s: Optional[float] = None
    hold_at_end: bool = False
    title: str = "carla_agent - where the network looks"

    def __post_init__(self) -> None:
        w, h = self.size_wh
        if w < 320 or h < 240:
            raise HudError(f"HUD size {w}x{h} is too small; use at least 320x240")
        if self.style not in OVERLAY_STYLES:
            raise HudError(f"unknown overlay style {self.style!r}; known: {', '.join(OVERLAY_STYLES)}")
        if self.layout is not None and self.layout not in LAYOUTS:
            raise HudError(f"unknown layout {self.layout!r}; known: {', '.join(LAYOUTS)}")
        if self.target not in TARGETS:
            raise HudError(f"unknown target {self.target!r}; known: {', '.join(TARGETS)}")


@dataclass(frozen=True)
class ShownFrame:
    """What one drawn HUD frame showed: the map <-> frame bookkeeping, kept for tests and logs.

    Attributes:
        camera_frame: frame id in the camera panel.
        map_frame: frame id the map on screen was computed from, and of the image drawn
            under it (the map's own frame, not the camera's); None: no map.
        key: the saliency on screen, or None.
        age_frames: ``camera_frame - map_frame``, or None.
        schedule: ``inline``, ``worker``, ``lock-step``, ``building``, ``error`` or ``done``.
    """

    camera_frame: int
    map_frame: Optional[int]
    key: Optional[SaliencyKey]
    age_frames: Optional[int]
    schedule: str


def hud_available() -> bool:
    """Whether a real window can open: a display is there, and SDL is not on its dummy/offscreen driver."""
    if os.environ.get("SDL_VIDEODRIVER", "").lower() in ("dummy", "offscreen"):
        return False
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _no_gl_probe() -> None:
    """Keep SDL from opening an OpenGL context just to pick how to present the window.

    On Linux, SDL 2 decides between an OpenGL texture and an X11 shared-memory image
    for the window surface by creating a hidden GL window and reading the GL vendor
    (``ShouldUseTextureFramebuffer`` in SDL's ``SDL_video.c``). On a machine without a
    GPU driver that loads Mesa's llvmpipe, whose calls into LLVM resolve into the copy
    of LLVM that TensorFlow loaded with ``RTLD_GLOBAL``: a segmentation fault the moment
    the window opens (seen in a gdb backtrace under Xvfb). The HUD blits plain surfaces
    and needs no GL, so the shared-memory path is as fast. A user's own setting wins.
    """
    os.environ.setdefault("SDL_FRAMEBUFFER_ACCELERATION", "0")


KEYMAP: Dict[int, str] = {
    pygame.K_t: "target", pygame.K_o: "overlay_style", pygame.K_LEFTBRACKET: "alpha_down",
    pygame.K_RIGHTBRACKET: "alpha_up", pygame.K_l: "layer", pygame.K_TAB: "layout", pygame.K_p: "pause",
    pygame.K_n: "step", pygame.K_r: "record", pygame.K_m: "manual", pygame.K_w: "weather",
    pygame.K_BACKSPACE: "restart", pygame.K_F1: "toggle_panel", pygame.K_h: "help", pygame.K_ESCAPE: "quit",
    **{getattr(pygame, f"K_{d}"): f"method:{d}" for d in range(1, 10)},
    **{getattr(pygame, f"K_KP{d}"): f"method:{d}" for d in range(1, 10)},
}
ARROWS: Dict[int, str] = {pygame.K_LEFT: "left", pygame.K_RIGHT: "right", pygame.K_UP: "up", pygame.K_DOWN: "down"}


class _Painter:
    """Drawing primitives on one target surface: cached text, translucent boxes, RGB arrays."""

    def __init__(self, font_px: int) -> None:
        mono = pygame.font.match_font("dejavusansmono,ubuntumono,liberationmono,couriernew,mono")
        self.font = pygame.font.Font(mono, font_px)
        self.small = pygame.font.Font(mono, max(9, font_px - 2))
        self.big = pygame.font.Font(mono, font_px * 2)
        self.big.set_bold(True)
        self.line_px = self.font.get_linesize()
        self.small_px = self.small.get_linesize()
        self.char_px = self.font.size("M")[0]
        self.small_char_px = self.small.size("M")[0]
        self.target: Optional[pygame.Surface] = None
        self._text: Dict[tuple, pygame.Surface] = {}
        self._shades: Dict[tuple, pygame.Surface] = {}

    def text(self, text: str, colour, font=None) -> pygame.Surface:
        rgb = PALETTE[colour] if isinstance(colour, str) else colour
        font = font or self.font
        key = (text, rgb, id(font))
        surf = self._text.get(key)
        if surf is None:
            if len(self._text) > 2048:
                self._text.clear()
            surf = font.render(text, True, rgb)
            self._text[key] = surf
        return surf

    def put(self, text: str, xy: Tuple[int, int], colour="text", font=None, max_w: Optional[int] = None) -> int:
        """Draw text at ``xy``, shortened with '..' to ``max_w`` pixels; returns its width."""
        surf = self.text(text, colour, font)
        if max_w is not None and surf.get_width() > max_w and len(text) > 3:
            keep = max(1, int(len(text) * max_w / surf.get_width()) - 2)
            surf = self.text(text[:keep] + "..", colour, font)
        self.target.blit(surf, xy)
        return surf.get_width()

    def put_right(self, text: str, right_x: int, y: int, colour="text", font=None) -> int:
        surf = self.text(text, colour, font)
        self.target.blit(surf, (right_x - surf.get_width(), y))
        return surf.get_width()

    def shade(self, rect: Rect, alpha: int = 160) -> None:
        key = (rect.w, rect.h, alpha)
        surf = self._shades.get(key)
        if surf is None:
            if len(self._shades) > 64:
                self._shades.clear()
            surf = pygame.Surface((rect.w, rect.h), pygame.SRCALPHA)
            surf.fill((0, 0, 0, alpha))
            self._shades[key] = surf
        self.target.blit(surf, (rect.x, rect.y))

    def rgb(self, image: np.ndarray, rect: Rect, nearest: bool = False) -> None:
        """Scale an ``(H, W, 3)`` uint8 RGB image into ``rect`` and blit it."""
        arr = resize_rgb(image, (rect.w, rect.h), nearest)
        self.target.blit(pygame.image.frombuffer(arr, (rect.w, rect.h), "RGB"), (rect.x, rect.y))

    def rect(self, rect: Rect, colour, width: int = 0) -> None:
        pygame.draw.rect(self.target, PALETTE[colour] if isinstance(colour, str) else colour, rect.as_tuple(), width)


@dataclass(frozen=True)
class _TelemetryGeometry:
    """Where each telemetry element goes inside the panel (same for the static and dynamic passes)."""

    inner: Rect
    value_x: int
    value_w: int
    row_ys: Tuple[int, ...]
    bars: Tuple[Rect, ...]
    wheel: Rect
    message_y: int


@dataclass(frozen=True)
class _ChartGeometry:
    inner: Rect
    steer: Rect
    offset: Rect


class HudHook(RunnerHook):
    """The live HUD as a runner hook. Build it with :func:`make_hud`.

    In ``on_start`` it takes over ``runner.agent.explainer`` (when the agent has one):
    the inline explainer for cheap methods, None for worker methods; the agent's own
    explainer is put back in ``on_end``.

    Args:
        model: the :class:`~carla_agent.network.steering_model.SteeringModel` that steers
            (its ``preprocessing``, ``input_shape`` and ``conv_layer_names`` are used).
        config: settings.
        explainer_factory: ``SaliencyKey -> explainer``; default ``make_explainer`` on the model.
        on_record_toggle: called with True / False when R starts / stops recording.
        weather_presets: the names W cycles through (default: the scenario presets).

    Attributes:
        state: what the keys changed (:class:`~carla_agent.hud.controls.HudState`).
        feed: where the maps come from (:class:`~carla_agent.hud.attention.AttentionFeed`).
        shown: the last 4096 :class:`ShownFrame` records, oldest first.
        restart_requested: BACKSPACE was pressed (see :meth:`consume_restart`).
        draw_ms: [ms] drawing time of the last frame (panels and present; no saliency).
        step_ms: [ms] the whole ``on_step`` of the last frame (saliency bookkeeping included).
        metrics: the last episode's metrics (set in ``on_end``).
    """

    def __init__(self, model: Any, config: HudConfig = HudConfig(),
                 explainer_factory: Optional[ExplainerFactory] = None,
                 on_record_toggle: Optional[Callable[[bool], None]] = None,
                 weather_presets: Optional[Tuple[str, ...]] = None) -> None:
        from carla_agent.sim.scenario import WEATHER_PRESETS

        self.config = config
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
        self.chart = StripChart(("predicted", "applied", "expert", "offset"), config.chart_window_s)
        self.shown: Deque[ShownFrame] = deque(maxlen=4096)
        self.restart_requested = False
        self.metrics = None
        self.draw_ms = 0.0
        self.step_ms = 0.0
        self._layout_auto = config.layout is None
        self._closed = False
        self._runner = None
        self._held: FrozenSet[str] = frozenset()
        self._weather: Optional[str] = None  # the preset W asked for last (frames show it one tick later)
        self._pending: Optional[SaliencyKey] = None  # picked, still building
        self._toast: Tuple[str, float] = ("", 0.0)
        self._hud_fps = 0.0
        self._last_step_t: Optional[float] = None
        self._collisions = 0
        self._invasions = 0
        self._last: Optional[Tuple[StepRecord, Optional[AttentionMap], str]] = None
        self._overlay_cache: Tuple[tuple, Optional[np.ndarray]] = ((), None)
        self._static_key: tuple = ()
        self._static: Optional[pygame.Surface] = None
        self._legends: Dict[tuple, pygame.Surface] = {}
        pygame.font.init()
        self.window: Optional[pygame.Surface] = None
        if config.headless:
            self.screen = pygame.Surface(config.size_wh)
        else:
            try:
                _no_gl_probe()
                pygame.display.init()
                self.window = pygame.display.set_mode(config.size_wh)
            except pygame.error as exc:
                self.feed.close()
                raise HudError(f"cannot open the HUD window ({exc}); run with --headless, "
                               "or check DISPLAY / WAYLAND_DISPLAY") from None
            pygame.display.set_caption(config.title)
            self.screen = self.window
        self.paint = _Painter(config.font_px)
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

    # -- runner hook -----------------------------------------------------------------------
    def on_start(self, runner, obs) -> None:
        if self._closed:
            raise RuntimeError("the HUD was closed; build a new one with make_hud()")
        self._runner = runner
        self.restart_requested = False
        self.metrics = None
        self.chart.clear()
        self._collisions = self._invasions = 0
        self._last_step_t = None
        self._last = None
        self.state.manual = False
        self.state.step_once = False
        self.manual.reset()
        self._held = frozenset()
        self._weather = None
        if self._layout_auto:
            self.state.layout = default_layout((obs.image.shape[1], obs.image.shape[0]))
        self.feed.attach(runner.agent)

    def override(self, record: StepRecord) -> Optional[VehicleControl]:
        self._process_events()
        if self.state.manual:
            return self.manual.step(self._held)
        return None

    def on_step(self, record: StepRecord) -> None:
        t0 = time.perf_counter()
        if self._last_step_t is not None:
            dt = max(t0 - self._last_step_t, 1e-6)
            self._hud_fps = 1.0 / dt if not self._hud_fps else 0.9 * self._hud_fps + 0.1 / dt
        self._last_step_t = t0
        self._track(record)
        # While paused (stepping with N) each frame waits for its own map, like lock-step.
        amap, schedule = self.feed.for_record(record, lockstep=self._lockstep_now() or self.state.paused)
        self._announce_ready(schedule)
        t1 = time.perf_counter()
        self._draw(record, amap, schedule)
        self._present()
        t2 = time.perf_counter()
        self.draw_ms = (t2 - t1) * 1e3
        self.step_ms = (t2 - t0) * 1e3
        if self.state.paused and not self.state.step_once:
            self._pause_loop(record)
        self.state.step_once = False

    def on_end(self, metrics, interrupted: bool) -> None:
        self.metrics = metrics
        if self._last is not None and not self._closed:
            what = "restarting" if self.restart_requested else "interrupted" if interrupted else "episode finished"
            self._toast = (f"{what}: autonomy {metrics.autonomy_pct:.1f} %, {metrics.interventions} interventions",
                           time.monotonic())
            record, amap, _ = self._last
            self._draw(record, amap, "done")
            self._present()
            if self.config.hold_at_end and self.window is not None and not self.restart_requested:
                self._wait_any_key()
        self.feed.detach()

    # -- keys --------------------------------------------------------------------------------
    def _process_events(self) -> bool:
        """Handle pending window events; True when a key changed something."""
        if self.window is None:
            return False
        changed = False
        held = set(self._held)
        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                raise StopDrive("window closed")
            if event.type == pygame.KEYUP and event.key in ARROWS:
                held.discard(ARROWS[event.key])
            elif event.type == pygame.KEYDOWN:
                if event.key in ARROWS:
                    held.add(ARROWS[event.key])
                elif event.key in KEYMAP:
                    self._held = frozenset(held)
                    self.handle_action(KEYMAP[event.key])
                    changed = True
        self._held = frozenset(held)
        return changed

    def handle_action(self, action: str) -> None:
        """Do what a key does: an action of :data:`~carla_agent.hud.controls.ACTIONS` or ``method:<1-9>``.

        Raises:
            StopDrive: ``quit`` (ESC).
            RestartEpisode: ``restart`` (BACKSPACE).
            ValueError: an unknown action.
        """
        s = self.state
        if action.startswith("method:"):
            digit = int(action.split(":")[1])
            method = self.menu.select(digit, s.method)
            if method is None:
                self._notify(f"no method on key {digit}")
                return
            s.method = method
            if not uses_layer(method):
                s.layer = None
            self._select()
        elif action == "target":
            s.target = cycle(TARGETS, s.target)
            if uses_target(s.method):
                self._select()
            else:
                self._notify(f"target {s.target} (not used by {s.method})")
        elif action == "overlay_style":
            s.style = cycle(OVERLAY_STYLES, s.style)
            self._notify(f"overlay style: {s.style}")
        elif action in ("alpha_down", "alpha_up"):
            self._notify(f"overlay opacity {s.nudge_alpha(1 if action == 'alpha_up' else -1):.1f}")
        elif action == "layer":
            if not uses_layer(s.method) or not self.conv_layers:
                self._notify(f"{s.method} takes no conv layer")
                return
            s.layer = cycle((None,) + self.conv_layers, s.layer)
            self._select()
        elif action == "layout":
            s.layout = cycle(LAYOUTS, s.layout)
            self._layout_auto = False
            self._notify(f"layout: {s.layout}")
        elif action == "pause":
            s.paused = not s.paused
            s.step_once = False
            self._notify("paused: N steps one frame, P resumes" if s.paused else "resumed")
        elif action == "step":
            if s.paused:
                s.step_once = True
            else:
                self._notify("N steps one frame while paused (P pauses)")
        elif action == "record":
            self._toggle_record()
        elif action == "manual":
            self._toggle_manual()
        elif action == "weather":
            self._cycle_weather()
        elif action == "restart":
            self.restart_requested = True
            self._notify("restarting the scenario")
            raise RestartEpisode("BACKSPACE")
        elif action == "toggle_panel":
            s.panel_visible = not s.panel_visible
        elif action == "help":
            s.help_visible = not s.help_visible
        elif action == "quit":
            raise StopDrive("ESC")
        else:
            raise ValueError(f"unknown HUD action {action!r}")

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
        self._select()

    def _select(self) -> None:
        s = self.state
        built = self.feed.select_names(s.method, s.target, s.layer)
        digit = self.menu.digit_of(s.method)
        status = "" if built else " (failed)" if self.feed.failure() else " (building the graph...)"
        self._pending = None if built or self.feed.failure() else self.feed.key
        self._notify(f"[{digit}] {self.feed.key.label}{status}")

    def _announce_ready(self, schedule: str) -> None:
        """Tell the user when the method they picked has finished building."""
        if self._pending is None or self._pending != self.feed.key or schedule == "building":
            return
        built = self.feed.cache.ready(self._pending)
        if built is not None:
            self._notify(f"{self._pending.label} ready: {built.schedule}, {built.warm_ms:.0f} ms a map")
        elif schedule == "error":
            self._notify(f"{self._pending.label} failed: {self.feed.failure()}")
        self._pending = None

    def _toggle_record(self) -> None:
        s = self.state
        s.recording = not s.recording
        if self.on_record_toggle is not None:
            try:
                self.on_record_toggle(s.recording)
            except Exception as exc:  # the recorder is someone else's: report, keep driving
                log.exception("record toggle failed")
                s.recording = not s.recording
                self._notify(f"recording failed: {exc}")
                return
        elif s.recording:
            log.warning("R pressed but no recorder is attached (make_hud(on_record_toggle=...))")
        lock = " (each frame waits for its map)" if s.recording and self.config.lockstep_when_recording else ""
        self._notify(f"recording{lock}" if s.recording else "recording stopped")

    def _toggle_manual(self) -> None:
        s = self.state
        s.manual = not s.manual
        self.manual.reset()
        if s.manual:
            if self._runner is not None:
                self._runner.add_intervention()
            self._notify("manual takeover: arrows drive (counted as an intervention)")
        else:
            self._notify("the network drives again")

    def _cycle_weather(self) -> None:
        sim = getattr(self._runner, "sim", None)
        if sim is None or not hasattr(sim, "set_weather"):
            self._notify("this backend cannot change the weather")
            return
        from carla_agent.sim.scenario import WeatherSpec

        current = self._weather or (self._last[0].obs.weather if self._last is not None else None)
        name = cycle(self.weather_presets, current)
        try:
            sim.set_weather(WeatherSpec(preset=name))
        except Exception as exc:  # a backend refusing a preset must not stop the drive
            log.exception("set_weather(%s) failed", name)
            self._notify(f"weather {name} failed: {exc}")
            return
        self._weather = name
        self._notify(f"weather: {name} (from the next frame)")

    def _notify(self, text: str) -> None:
        log.info("HUD: %s", text)
        self._toast = (text, time.monotonic())

    def _lockstep_now(self) -> bool:
        return self.config.lockstep or (self.state.recording and self.config.lockstep_when_recording)

    # -- pause -----------------------------------------------------------------------------
    def _pause_loop(self, record: StepRecord) -> None:
        started = time.monotonic()
        while self.state.paused and not self.state.step_once:
            if self.window is None:
                log.warning("paused without a window: no key can resume it; resuming")
                self.state.paused = False
                break
            if self._process_events():
                # A key changed the view: recompute this very frame (blocking is fine while paused).
                amap, schedule = self.feed.for_record(record, wait=True)
                self._draw(record, amap, schedule)
                self._present()
            timeout = self.config.pause_timeout_s
            if timeout is not None and time.monotonic() - started > timeout:
                log.warning("pause timed out after %.1f s; resuming", timeout)
                self.state.paused = False
                break
            time.sleep(0.02)

    def _wait_any_key(self) -> None:
        while True:
            for event in pygame.event.get():
                if event.type in (pygame.QUIT, pygame.KEYDOWN):
                    return
            time.sleep(0.05)

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
        runner = self._runner
        return Telemetry(
            scenario=runner.scenario.name if runner is not None else "-",
            weather=obs.weather, sim_time_s=obs.sim_time_s, frame=obs.frame, speed_mps=obs.speed_mps,
            steer_predicted=record.decision.predicted_steer, steer_applied=record.control.steer,
            steer_expert=obs.truth.expert_steer, throttle=record.control.throttle, brake=record.control.brake,
            lateral_offset_m=obs.truth.lateral_offset_m, lane_width_m=obs.truth.lane_width_m,
            autonomy_pct=record.autonomy_pct, interventions=record.interventions,
            collisions=self._collisions, lane_invasions=self._invasions,
            method=key.method, target=key.target if key.target != NO_TARGET else (
                "signed" if METHODS.get(key.method).signed else NO_TARGET),
            layer=key.layer or ("default" if uses_layer(key.method) else NO_TARGET), schedule=schedule, style=self.state.style, alpha=self.state.alpha,
            sim_fps=record.sim_fps, hud_fps=self._hud_fps, hud_ms=self.draw_ms,
            saliency_ms=None if amap is None else amap.latency_ms,
            map_age_frames=None if amap is None else obs.frame - amap.frame,
            map_frame=None if amap is None else amap.frame, dropped=self.feed.dropped,
            manual=self.state.manual, paused=self.state.paused, recording=self.state.recording,
            message=(self.feed.failure() or "") if schedule == "error" else "")

    # -- drawing ---------------------------------------------------------------------------------
    def _present(self) -> None:
        if self.window is not None:
            pygame.display.flip()

    def layout(self, image_wh: Tuple[int, int]) -> Dict[str, Rect]:
        """The panel rectangles for the current layout and F1 state."""
        return compute_layout(self.config.size_wh, image_wh, self.state.layout, self.state.panel_visible)

    def _draw(self, record: StepRecord, amap: Optional[AttentionMap], schedule: str) -> None:
        obs = record.obs
        self._last = (record, amap, schedule)
        rects = self.layout((obs.image.shape[1], obs.image.shape[0]))
        tel = self.telemetry(record, amap, schedule)
        rows, bars = text_rows(tel), bar_rows(tel)
        self.screen.blit(self._static_layer(rects, rows, bars, tel.lane_width_m), (0, 0))
        p = self.paint
        if "camera" in rects:
            p.rgb(obs.image, rects["camera"])
            self._caption(rects["camera"], f"camera  frame {obs.frame}  t {obs.sim_time_s:.2f} s", tel)
        self._draw_overlay(rects["overlay"], obs.frame, obs.image, amap, schedule, tel)
        if "telemetry" in rects:
            self._draw_telemetry(rects["telemetry"], tel, rows, bars)
        if "chart" in rects:
            self._draw_chart(rects["chart"], tel.lane_width_m)
        if "network" in rects:
            self._draw_network(rects["network"], obs.frame, obs.image, amap)
        self._draw_toast(rects)
        if self.state.paused:
            self._banner("PAUSED  N: step  P: resume", rects.get("camera", rects["overlay"]))
        if self.state.help_visible:
            self._draw_help()
        self.shown.append(ShownFrame(obs.frame, None if amap is None else amap.frame,
                                     None if amap is None else amap.key,
                                     None if amap is None else obs.frame - amap.frame, schedule))

    def _static_layer(self, rects: Dict[str, Rect], rows, bars, lane_width_m: float) -> pygame.Surface:
        """Everything that does not change between frames, drawn once per layout."""
        key = (tuple(sorted((k, v) for k, v in rects.items())), tuple(r.label for r in rows),
               tuple(b.label for b in bars), round(lane_width_m, 2))
        if key == self._static_key and self._static is not None:
            return self._static
        surf = pygame.Surface(self.config.size_wh)
        if self.window is not None:
            surf = surf.convert()
        surf.fill(PALETTE["background"])
        self.paint.target = surf
        try:
            if "telemetry" in rects:
                g = self._telemetry_geometry(rects["telemetry"], len(rows), len(bars))
                self._panel(rects["telemetry"], "telemetry")
                for row, y in zip(rows, g.row_ys):
                    self.paint.put(row.label, (g.inner.x, y), "dim")
                for bar, r in zip(bars, g.bars):
                    self._bar_static(r, bar)
                self._wheel_static(g.wheel)
            if "chart" in rects:
                self._chart_static(rects["chart"], lane_width_m)
            if "network" in rects:
                p = self.preprocessing
                self._panel(rects["network"], f"network input {p.width}x{p.height} ({p.color_space})")
        finally:
            self.paint.target = self.screen
        self._static_key, self._static = key, surf
        return surf

    def _panel(self, rect: Rect, title: str) -> Rect:
        self.paint.rect(rect, "panel")
        self.paint.put(title, (rect.x + 8, rect.y + 4), "dim", self.paint.small, max_w=rect.w - 16)
        return self._panel_inner(rect)

    def _panel_inner(self, rect: Rect) -> Rect:
        top = rect.y + 6 + self.paint.small_px
        return Rect(rect.x + 8, top, rect.w - 16, rect.bottom - top - 4)

    def _caption(self, rect: Rect, text: str, tel: Optional[Telemetry] = None, colour="text") -> None:
        p = self.paint
        p.shade(Rect(rect.x, rect.y, rect.w, CAPTION_PX), 150)
        y = rect.y + (CAPTION_PX - p.line_px) // 2 + 1
        right = rect.right - 6
        if tel is not None:
            if tel.recording:
                right -= p.put_right("REC", right, y, "alert") + 6
                pygame.draw.circle(self.screen, PALETTE["alert"], (right - 2, rect.y + CAPTION_PX // 2), 5)
                right -= 16
            if tel.manual:
                right -= p.put_right("MANUAL", right, y, "offset") + 10
        p.put(text, (rect.x + 6, y), colour, max_w=right - rect.x - 12)

    def _banner(self, text: str, rect: Rect) -> None:
        surf = self.paint.text(text, "text", self.paint.big)
        box = Rect(rect.x + (rect.w - surf.get_width()) // 2 - 12, rect.y + rect.h // 2 - surf.get_height() // 2 - 8,
                   surf.get_width() + 24, surf.get_height() + 16)
        self.paint.shade(box, 170)
        self.screen.blit(surf, (box.x + 12, box.y + 8))

    # overlay panel
    def _overlay_image(self, amap: AttentionMap, rect: Rect) -> np.ndarray:
        """The map over its own frame at panel size, composed at min(frame, panel) resolution."""
        key = (id(amap), self.state.style, self.state.alpha, rect.w, rect.h)
        if self._overlay_cache[0] == key:
            return self._overlay_cache[1]
        norm = self.feed.normalized(amap)
        fh, fw = amap.image.shape[:2]
        base = resize_rgb(amap.image, (rect.w, rect.h)) if rect.w * rect.h < fw * fh else amap.image
        hw = base.shape[:2]
        sal = self.preprocessing.project_map(norm, hw)
        out = compose(base, sal, self.state.style, self.state.alpha, bool(amap.result.signed),
                      self.preprocessing.crop_box(hw))
        out = resize_rgb(out, (rect.w, rect.h))
        self._overlay_cache = (key, out)
        return out

    def _draw_overlay(self, rect: Rect, frame: int, image: np.ndarray, amap: Optional[AttentionMap],
                      schedule: str, tel: Telemetry) -> None:
        p, key = self.paint, self.feed.key
        if amap is not None:
            p.rgb(self._overlay_image(amap, rect), rect)
            t, b, l, r = self.preprocessing.crop_box((rect.h, rect.w))
            p.rect(Rect(rect.x + l, rect.y + t, r - l, b - t), "dim", 1)
            where = schedule if schedule != "done" else ""
            self._caption(rect, f"{amap.key.label}  frame {amap.frame}  age {frame - amap.frame}  "
                                f"{where} {amap.latency_ms:.0f} ms")
            self._legend(rect, bool(amap.result.signed))
            return
        p.rgb(image, rect)  # no map of this key yet: the camera, dimmed, and why
        p.shade(rect, 150)
        if schedule == "error":
            self._caption(rect, f"{key.label}: error", colour="alert")
            self._wrap(f"cannot compute {key.method}: {tel.message or 'failed'}. Press 1-9 for another method.",
                       rect, "alert")
        else:
            self._caption(rect, f"{key.label}: {'building the graph' if schedule == 'building' else 'computing'}...")
            self._banner(f"{key.method}: first map...", rect)

    def _wrap(self, text: str, rect: Rect, colour: str) -> None:
        per_line = max(10, (rect.w - 20) // self.paint.char_px)
        lines = [text[i:i + per_line] for i in range(0, len(text), per_line)][:8]
        y = rect.y + rect.h // 2 - len(lines) * self.paint.line_px // 2
        for line in lines:
            self.paint.put(line, (rect.x + 10, y), colour)
            y += self.paint.line_px

    def _legend(self, rect: Rect, signed: bool) -> None:
        """A colour bar at the bottom-right of the overlay: what the colours mean (drawn once, then cached)."""
        p = self.paint
        w, h = min(150, rect.w // 3), 8
        key = (w, signed)
        surf = self._legends.get(key)
        if surf is None:
            box = Rect(0, 0, w + 12, h + p.small_px + 9)
            surf = pygame.Surface((box.w, box.h), pygame.SRCALPHA)
            surf.fill((0, 0, 0, 140))
            p.target = surf
            try:
                ramp = np.linspace(-1.0 if signed else 0.0, 1.0, w, dtype=np.float32)[None].repeat(h, 0)
                p.rgb(colorize_fast(ramp, signed), Rect(6, 5, w, h))
                lo, hi = ("pushes left", "right") if signed else ("low", "high")
                p.put(lo, (6, 5 + h + 1), "dim", p.small)
                p.put_right(hi, 6 + w, 5 + h + 1, "dim", p.small)
            finally:
                p.target = self.screen
            self._legends[key] = surf
        self.screen.blit(surf, (rect.right - w - 16, rect.bottom - surf.get_height() - 3))

    # telemetry panel
    def _telemetry_geometry(self, rect: Rect, n_rows: int, n_bars: int) -> _TelemetryGeometry:
        p = self.paint
        inner = self._panel_inner(rect)
        lh = p.line_px
        bar_h = p.small_px + 3
        two_cols = inner.w >= 440
        text_w = int(inner.w * 0.56) if two_cols else inner.w
        value_x = inner.x + p.char_px * 15
        row_ys = tuple(inner.y + i * lh for i in range(n_rows))
        message_y = inner.y + n_rows * lh
        if two_cols:
            bx, by, bw = inner.x + text_w + 8, inner.y, inner.w - text_w - 8
            wheel_y = by + n_bars * bar_h + 6
            wheel = Rect(bx, wheel_y, bw, inner.bottom - wheel_y)
        else:
            bx, by, bw = inner.x, message_y + 4, int(inner.w * 0.66)
            wheel = Rect(bx + bw + 6, by, inner.w - bw - 6, inner.bottom - by)
        bars = tuple(Rect(bx, by + i * bar_h, bw, bar_h - 2) for i in range(n_bars))
        return _TelemetryGeometry(inner, value_x, inner.x + text_w - value_x - 4, row_ys, bars, wheel, message_y)

    def _bar_track(self, rect: Rect) -> Rect:
        label_w = self.paint.small_char_px * 11
        value_w = self.paint.small_char_px * 8
        return Rect(rect.x + label_w, rect.y + 3, max(10, rect.w - label_w - value_w - 4), max(4, rect.h - 6))

    def _bar_static(self, rect: Rect, bar: BarRow) -> None:
        self.paint.put(bar.label, (rect.x, rect.y), "dim", self.paint.small)
        track = self._bar_track(rect)
        self.paint.rect(track, "track")
        if bar.centred:
            zero = track.x + int(round((0.0 - bar.lo) / (bar.hi - bar.lo) * (track.w - 1)))
            pygame.draw.line(self.paint.target, PALETTE["dim"], (zero, track.y - 2), (zero, track.bottom + 1))

    def _draw_telemetry(self, rect: Rect, tel: Telemetry, rows, bars) -> None:
        p = self.paint
        g = self._telemetry_geometry(rect, len(rows), len(bars))
        for row, y in zip(rows, g.row_ys):
            p.put(row.value, (g.value_x, y), row.colour, max_w=g.value_w)
        if tel.message:
            p.put(tel.message, (g.inner.x, g.message_y), "alert", p.small, max_w=g.inner.w)
        for bar, r in zip(bars, g.bars):
            track = self._bar_track(r)
            if bar.value is not None and math.isfinite(bar.value):
                frac = (min(max(bar.value, bar.lo), bar.hi) - bar.lo) / (bar.hi - bar.lo)
                x = track.x + int(round(frac * (track.w - 1)))
                if bar.centred:
                    zero = track.x + int(round((0.0 - bar.lo) / (bar.hi - bar.lo) * (track.w - 1)))
                    a, b = sorted((zero, x))
                    pygame.draw.rect(self.screen, PALETTE[bar.colour], (a, track.y, max(2, b - a), track.h))
                else:
                    pygame.draw.rect(self.screen, PALETTE[bar.colour], (track.x, track.y, x - track.x, track.h))
            p.put(bar.text, (track.right + 4, r.y), "text" if bar.value is not None else "dim", p.small)
        self._wheel_dynamic(g.wheel, tel)

    def _wheel_geometry(self, box: Rect) -> Tuple[int, int, int]:
        r = int(min(box.w, box.h - self.paint.small_px - 6) / 2) - 4
        return box.x + box.w // 2, box.y + r + 4, r

    def _wheel_static(self, box: Rect) -> None:
        cx, cy, r = self._wheel_geometry(box)
        if r < 14:
            return
        p = self.paint
        pygame.draw.circle(p.target, PALETTE["track"], (cx, cy), r, max(3, r // 8))
        pygame.draw.line(p.target, PALETTE["dim"], (cx, cy - r - 4), (cx, cy - r + max(3, r // 8) + 2), 1)
        items = (("predicted", "pred"), ("expert", "expert"), ("applied", "applied"))
        widths = [p.text(label, "dim", p.small).get_width() + 16 for _, label in items]
        if sum(widths) > box.w:
            return  # no room for the legend: the bars beside it carry the same colours and names
        x, y = cx - sum(widths) // 2, cy + r + 6
        for (colour, label), w in zip(items, widths):
            pygame.draw.circle(p.target, PALETTE[colour], (x + 4, y + p.small_px // 2), 4)
            p.put(label, (x + 11, y), "dim", p.small)
            x += w

    def _wheel_dynamic(self, box: Rect, tel: Telemetry) -> None:
        """Spokes at the applied steering; dots on the rim for predicted (filled) and expert (ring)."""
        cx, cy, r = self._wheel_geometry(box)
        if r < 14:
            return
        scr = self.screen

        def at(steer: float, radius: float) -> Tuple[int, int]:
            a = math.radians(steer * WHEEL_DEG_PER_STEER)  # 0 = top, clockwise = right
            return int(round(cx + radius * math.sin(a))), int(round(cy - radius * math.cos(a)))

        for spoke_deg in (90.0, 180.0, 270.0):
            pygame.draw.line(scr, PALETTE["applied"], (cx, cy),
                             at(tel.steer_applied + spoke_deg / WHEEL_DEG_PER_STEER, r - 2), max(2, r // 12))
        pygame.draw.circle(scr, PALETTE["applied"], (cx, cy), max(3, r // 6))
        pygame.draw.circle(scr, PALETTE["applied"], at(tel.steer_applied, r), max(3, r // 9))
        pygame.draw.circle(scr, PALETTE["predicted"], at(tel.steer_predicted, r), max(3, r // 10))
        if tel.steer_expert is not None:
            pygame.draw.circle(scr, PALETTE["expert"], at(tel.steer_expert, r), max(4, r // 9), 2)

    # strip chart
    def _chart_geometry(self, rect: Rect) -> _ChartGeometry:
        p = self.paint
        inner = self._panel_inner(rect)
        top = inner.y + p.small_px + 4
        usable = inner.bottom - top - p.small_px - 2
        steer_h = int(usable * 0.58)
        axis_w = p.small_char_px * 5
        steer = Rect(inner.x + axis_w, top, inner.w - axis_w, steer_h)
        offset = Rect(inner.x + axis_w, top + steer_h + 8, inner.w - axis_w, usable - steer_h - 8)
        return _ChartGeometry(inner, steer, offset)

    def _chart_static(self, rect: Rect, lane_width_m: float) -> None:
        p = self.paint
        g = self._chart_geometry(rect)
        self._panel(rect, f"steering and lateral offset, last {self.chart.window_s:.0f} s")
        x = g.inner.x
        for name in ("predicted", "applied", "expert", "offset"):
            mid = g.inner.y + p.small_px // 2
            pygame.draw.line(p.target, PALETTE[name], (x, mid), (x + 14, mid), 2)
            x += 18 + p.put(name, (x + 18, g.inner.y), "dim", p.small) + 10
        half_lane = max(0.5 * lane_width_m, 0.5)
        ticks = self.chart.time_ticks(CHART_GRID_S)
        for sub, labels in ((g.steer, ("R +1", "0", "L -1")),
                            (g.offset, (f"+{half_lane:.1f}", "0 m", f"-{half_lane:.1f}"))):
            p.rect(sub, (30, 32, 38))
            mid = sub.y + sub.h // 2
            for s in ticks:
                gx = sub.x + int((sub.w - 1) * (1.0 - s / self.chart.window_s))
                pygame.draw.line(p.target, (44, 47, 55), (gx, sub.y), (gx, sub.bottom - 1))
            pygame.draw.line(p.target, PALETTE["track"], (sub.x, mid), (sub.right - 1, mid))
            for label, ly in zip(labels, (sub.y, mid - p.small_px // 2, sub.bottom - p.small_px)):
                p.put(label, (g.inner.x, ly), "dim", p.small)
        for s in ticks:
            gx = g.steer.x + int((g.steer.w - 1) * (1.0 - s / self.chart.window_s))
            label = "now" if s == 0 else f"-{s:.0f}s"
            w = p.text(label, "dim", p.small).get_width()
            p.put(label, (min(max(gx - w // 2, g.steer.x), g.steer.right - w), g.inner.bottom - p.small_px),
                  "dim", p.small)
        p.put("+ = right of the lane centre", (g.offset.x + 4, g.offset.y + 1), "dim", p.small)

    def _draw_chart(self, rect: Rect, lane_width_m: float) -> None:
        g = self._chart_geometry(rect)
        half_lane = max(0.5 * lane_width_m, 0.5)
        lines = self.chart.polylines(g.steer.as_tuple(), {"expert": (-1.0, 1.0), "applied": (-1.0, 1.0),
                                                          "predicted": (-1.0, 1.0)})
        lines.update(self.chart.polylines(g.offset.as_tuple(), {"offset": (-half_lane, half_lane)}))
        for name in ("expert", "applied", "predicted", "offset"):
            for pts in lines.get(name, ()):
                pygame.draw.lines(self.screen, PALETTE[name], False, pts.tolist(), 2)

    # network panel
    def _draw_network(self, rect: Rect, frame: int, image: np.ndarray, amap: Optional[AttentionMap]) -> None:
        """The network's input and its map at native resolution (stacked, or side by side when
        that makes them larger), then the feature grid of per-layer methods."""
        p, pre = self.paint, self.preprocessing
        inner = self._panel_inner(rect)
        small = pre.crop_resize(amap.image if amap is not None else image)
        features = None
        if amap is not None and "features" in amap.result.extras:
            features = np.asarray(amap.result.extras["features"])[0]
        n = 2 if amap is not None else 1
        label_h = p.small_px + 1
        room_h = inner.h - (inner.h // 3 if features is not None else 0)
        stacked = min(inner.w / pre.width, (room_h - n * label_h) / (n * pre.height))
        side = min((inner.w - (n - 1) * 8) / (n * pre.width), (room_h - label_h) / pre.height)
        scale = max(stacked, side)
        if scale < 0.3:
            return
        w, h = int(pre.width * scale), int(pre.height * scale)
        if side >= stacked:
            xs = [inner.x + (inner.w - n * w - (n - 1) * 8) // 2 + i * (w + 8) for i in range(n)]
            ys = [inner.y] * n
        else:
            xs = [inner.x + (inner.w - w) // 2] * n
            ys = [inner.y + i * (label_h + h + 2) for i in range(n)]
        p.put(f"input, frame {amap.frame if amap is not None else frame}", (xs[0], ys[0]), "dim", p.small, max_w=w)
        p.rgb(small, Rect(xs[0], ys[0] + label_h, w, h), nearest=True)
        if amap is not None:
            native = compose(small, self.feed.normalized(amap), self.state.style, self.state.alpha,
                             bool(amap.result.signed))
            p.put(f"map {amap.map.shape[1]}x{amap.map.shape[0]}", (xs[1], ys[1]), "dim", p.small, max_w=w)
            p.rgb(native, Rect(xs[1], ys[1] + label_h, w, h), nearest=True)
        y = ys[-1] + label_h + h + 4
        if features is not None and inner.bottom - y > p.small_px + 12:
            box = (inner.w, inner.bottom - y - label_h)
            grid = feature_grid(features, box)
            gs = min(box[0] / grid.shape[1], box[1] / grid.shape[0])
            gw, gh = int(grid.shape[1] * gs), int(grid.shape[0] * gs)
            if gw > 8 and gh > 8:
                p.put(f"{amap.result.layer}: {features.shape[2]} channels, most active first", (inner.x, y),
                      "dim", p.small, max_w=inner.w)
                p.rgb(grid, Rect(inner.x + (inner.w - gw) // 2, y + label_h, gw, gh), nearest=True)

    # toast and help
    def _draw_toast(self, rects: Dict[str, Rect]) -> None:
        text, since = self._toast
        if not text:
            return
        if time.monotonic() - since > TOAST_S:
            self._toast = ("", 0.0)
            return
        area = rects.get("camera", rects["overlay"])
        surf = self.paint.text(text, "text")
        w = min(surf.get_width(), area.w - 24)
        box = Rect(area.x + (area.w - w) // 2 - 8, area.bottom - surf.get_height() - 14, w + 16,
                   surf.get_height() + 8)
        self.paint.shade(box, 190)
        self.paint.put(text, (box.x + 8, box.y + 4), "text", max_w=w)

    def _draw_help(self) -> None:
        p = self.paint
        w, h = self.config.size_wh
        p.shade(Rect(0, 0, w, h), 120)
        families = [f"{i}  {' / '.join(fam)}" for i, fam in enumerate(self.menu.families, start=1)]
        col = max(300, w // 2 - 40)
        x = max(10, (w - 2 * col) // 2)
        y = max(10, (h - (len(KEY_HELP) + 3) * p.line_px) // 2)
        box_h = p.big.get_linesize() + 12 + len(KEY_HELP) * p.line_px
        p.shade(Rect(max(0, x - 16), max(0, y - 12), min(w, 2 * col + 32), min(h, box_h + 24)), 235)
        p.put("keys", (x, y), "text", p.big)
        yy = y + p.big.get_linesize() + 6
        for keys, action in KEY_HELP:
            p.put(keys, (x, yy), "predicted")
            p.put(action, (x + p.char_px * 12, yy), "text", max_w=col - p.char_px * 12 - 10)
            yy += p.line_px
        x2 = x + col
        p.put("methods (1-9, again: next)", (x2, y), "text", p.big, max_w=w - x2 - 10)
        yy = y + p.big.get_linesize() + 6
        for line in families:
            p.put(line, (x2, yy), "text", max_w=w - x2 - 10)
            yy += p.line_px
        yy += p.line_px
        p.put(f"now: {self.feed.key.label}", (x2, yy), "expert", max_w=w - x2 - 10)

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
        **options: other :class:`HudConfig` fields (``lockstep``, ``style``, ``alpha``, ``layout`` ...).

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
        error = hud.feed.prebuild()
        if error:
            log.warning("saliency %s is not available: %s (press 1-9 for another method)", hud.key.label, error)
    return hud


def drive_episodes(make_runner: Callable[[], Any], hud: HudHook, max_restarts: int = 1000):
    """Run episodes until one ends without BACKSPACE; returns the last episode's metrics.

    Args:
        make_runner: builds a fresh :class:`~carla_agent.drive.runner.Runner` with ``hud`` among its hooks.
        hud: the HUD whose restart requests are honoured.
        max_restarts: a safety limit.
    """
    metrics = None
    for _ in range(max_restarts + 1):
        runner = make_runner()
        metrics = runner.run()
        if not hud.consume_restart():
            return metrics
        log.info("restarting %s", runner.scenario.name)
    return metrics
