"""HUD settings and what the HUD reports: :class:`HudConfig`, :class:`HudError`,
:class:`RestartEpisode` and the per-frame record :class:`ShownFrame`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

from carla_agent.drive.runner import StopDrive
from carla_agent.errors import CarlaAgentError
from carla_agent.hud.explainers import TARGETS, SaliencyKey
from carla_agent.hud.layout import LAYOUTS
from carla_agent.saliency.compose import OVERLAY_STYLES


class HudError(CarlaAgentError, ValueError):
    """A bad HUD setting (size, style, layout, target, layer) or no window could open.
    The command line prints it as one line."""


class RestartEpisode(StopDrive):
    """Raised by the HUD on BACKSPACE. It is a :class:`~carla_agent.drive.runner.StopDrive`, so the
    runner ends the episode cleanly; :func:`~carla_agent.drive.session.drive_scenario` then starts a new one."""


@dataclass(frozen=True)
class HudConfig:
    """HUD settings. Sizes in pixels.

    Attributes:
        size_wh: window (or offscreen surface) size.
        headless: draw offscreen: no window, no keys (for recording).
        method, target, layer: the saliency shown first.
        style, alpha: overlay style (:data:`~carla_agent.saliency.compose.OVERLAY_STYLES`) and opacity.
        layout: one of :data:`~carla_agent.hud.layout.LAYOUTS`, or None to pick by the image aspect.
        chart_window_s: [s] span of the strip chart.
        lockstep: every frame waits for its own map (offline renders, screenshots).
        lockstep_when_recording: lock-step while recording (R).
        lockstep_timeout_s: [s] longest wait for one lock-step map.
        inline_budget_ms: [ms] cheap methods slower than this move to the worker (None: only the
            registry's slow methods run there; see :data:`~carla_agent.hud.explainers.SLOW_METHODS`).
        font_px: text size.
        pause_timeout_s: [s] give up a pause after this long (None: wait for P or N).
        hold_at_end: when the scenario ends by itself, keep the window with the episode's summary
            until BACKSPACE (restart) or ESC / the close button (quit); see :mod:`carla_agent.hud.end_screen`.
        speed: simulated seconds per wall-clock second with a window (1 = real time, as ``drive``
            uses); ``math.inf`` (the default, for scripts and tests): as fast as it goes. A headless
            HUD never waits. See :class:`~carla_agent.drive.pacing.Pacer`.
        screenshot_dir: folder of the screenshot key's PNGs.
        screenshot_every: save the HUD every this many frames (0: never) into ``screenshot_every_dir``.
        screenshot_every_dir: folder of those PNGs (``frame_000123.png``).
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
    speed: float = math.inf
    screenshot_dir: str = "."
    screenshot_every: int = 0
    screenshot_every_dir: Optional[str] = None
    title: str = "carla_agent - where the network looks"

    def __post_init__(self) -> None:
        w, h = self.size_wh
        if w < 320 or h < 240:
            raise HudError(f"HUD size {w}x{h} is too small; use at least 320x240")
        if self.style not in OVERLAY_STYLES:
            raise HudError(f"unknown overlay style {self.style!r}; known: {', '.join(OVERLAY_STYLES)}")
        if self.layout is not None and self.layout not in LAYOUTS:
            raise HudError(f"unknown layout {self.layout!r}; known: {', '.join(LAYOUTS)}")
        if not self.speed > 0:
            raise HudError(f"speed factor {self.speed!r}: use a number > 0 (1 = real time) or math.inf (max)")
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
