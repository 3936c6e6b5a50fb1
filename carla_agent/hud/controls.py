"""The HUD's keys: what each does, the state they change, and manual driving. Pure Python.

The key table (:data:`KEY_HELP`) is the single source of the help overlay (H or ``?``);
docs/hud/README.md's key table lists every row of it (a test checks). :mod:`carla_agent.hud.keys` maps pygame key codes to the action names
below and dispatches them; the state they change, cycling and manual driving live here
and are testable without pygame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import FrozenSet, Optional, Tuple

from carla_agent.control import VehicleControl
from carla_agent.hud.layout import LAYOUTS
from carla_agent.saliency.compose import OVERLAY_STYLES

#: ``(keys, action)`` rows of the help overlay, in the order shown. CARLA's
#: ``manual_control.py`` keys where it has them (driving, P, C, TAB, R, BACKSPACE, F1,
#: H / ?, ESC); the HUD's own where it has none.
KEY_HELP: Tuple[Tuple[str, str], ...] = (
    ("W / Up", "throttle (while you drive)"),
    ("S / Down", "brake"),
    ("A D / Left Right", "steer (ramps while held)"),
    ("Q", "toggle reverse"),
    ("Space", "hand brake"),
    ("M", "manual: you drive / give back"),
    ("P", "autopilot: the expert drives / back"),
    ("", "(M, P: not counted in autonomy)"),
    ("C / Shift+C", "next / previous weather"),
    ("TAB", "layout: " + " / ".join(LAYOUTS)),
    ("R", "start / stop recording"),
    ("BACKSPACE", "restart the scenario"),
    ("F1", "hide / show the panels"),
    ("H / ?", "this help"),
    ("ESC", "quit"),
    ("1-9", "method (again: next variant)"),
    ("T", "target: auto/left/right/straight"),
    ("O", "style: " + "/".join(OVERLAY_STYLES)),
    ("[ ]", "overlay opacity - / +"),
    ("L", "conv layer (per-layer methods)"),
    ("Pause / .", "pause"),
    ("N", "single step while paused"),
    ("-  =", "slower / faster: speed x1/2, x2"),
    ("F12", "screenshot (a PNG file)"),
)

#: Action names :data:`carla_agent.hud.keys.HANDLERS` dispatches (besides ``method:<digit>``).
ACTIONS = ("target", "overlay_style", "alpha_down", "alpha_up", "layer", "layout", "pause", "step",
           "record", "manual", "autopilot", "reverse", "weather", "weather_back", "restart", "toggle_panel",
           "help", "quit", "slower", "faster", "screenshot")

#: What the held driving keys mean to :class:`ManualDriver` (``manual_control.py``'s WASD and arrows).
DRIVE_NAMES = frozenset({"left", "right", "up", "down", "hand_brake"})

ALPHA_STEP = 0.1
ALPHA_RANGE = (0.1, 1.0)


def cycle(options: Tuple, current, step: int = 1):
    """The option after ``current`` (the first one when ``current`` is not among them)."""
    if current not in options:
        return options[0]
    return options[(options.index(current) + step) % len(options)]


@dataclass
class HudState:
    """What the keys changed. Mutable, owned by the HUD.

    Attributes:
        method, target, layer: the saliency asked for (layer None: the method's default).
        style: overlay style (:data:`~carla_agent.saliency.compose.OVERLAY_STYLES`).
        alpha: overlay opacity in :data:`ALPHA_RANGE`.
        layout: one of :data:`~carla_agent.hud.layout.LAYOUTS`.
        paused: the drive waits in the HUD until Pause (or ``.``) again, or one tick per N.
        step_once: N was pressed: let one tick through, then pause again.
        recording: R toggled recording on.
        manual: M handed the car to the keyboard (a person drives).
        autopilot: P handed the car to the expert (never together with ``manual``).
        panel_visible: F1 hides the info panels.
        help_visible: H shows the key table.
    """

    method: str
    target: str = "auto"
    layer: Optional[str] = None
    style: str = "heat"
    alpha: float = 0.5
    layout: str = "side"
    paused: bool = False
    step_once: bool = False
    recording: bool = False
    manual: bool = False
    autopilot: bool = False
    panel_visible: bool = True
    help_visible: bool = False

    def __post_init__(self) -> None:
        if self.style not in OVERLAY_STYLES:
            raise ValueError(f"unknown overlay style {self.style!r}; known: {', '.join(OVERLAY_STYLES)}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown layout {self.layout!r}; known: {', '.join(LAYOUTS)}")
        self.alpha = min(max(float(self.alpha), ALPHA_RANGE[0]), ALPHA_RANGE[1])

    def nudge_alpha(self, sign: int) -> float:
        """``[`` / ``]``: change the opacity by one step, clamped; returns the new value."""
        self.alpha = round(min(max(self.alpha + sign * ALPHA_STEP, ALPHA_RANGE[0]), ALPHA_RANGE[1]), 2)
        return self.alpha


@dataclass(frozen=True)
class ManualParams:
    """Keyboard driving, per tick (CARLA manual_control's feel at 20 Hz).

    Attributes:
        steer_step: steering added per tick while an arrow is held.
        steer_max: steering limit (CARLA: 0.7).
        throttle_step: throttle added per tick while UP is held.
        brake_step: brake added per tick while DOWN is held.
    """

    steer_step: float = 0.08
    steer_max: float = 0.7
    throttle_step: float = 0.1
    brake_step: float = 0.2


@dataclass
class ManualDriver:
    """Held keys -> :class:`VehicleControl`, as CARLA's ``KeyboardControl`` does it.

    Held keys are names (:data:`DRIVE_NAMES`): ``left``, ``right`` (A D or the arrows),
    ``up`` (W or Up: throttle), ``down`` (S or Down: brake), ``hand_brake`` (Space).
    Steering ramps while an arrow is held and re-centres when released; throttle and brake
    ramp while held and release at once. ``reverse`` is toggled by Q and kept until
    toggled again or :meth:`reset`.
    """

    params: ManualParams = ManualParams()
    steer: float = 0.0
    throttle: float = 0.0
    brake: float = 0.0
    reverse: bool = False

    def reset(self) -> None:
        self.steer = self.throttle = self.brake = 0.0
        self.reverse = False

    def toggle_reverse(self) -> bool:
        """Q: drive backwards (or forwards again); returns the new setting."""
        self.reverse = not self.reverse
        return self.reverse

    def step(self, held: FrozenSet[str]) -> VehicleControl:
        """One tick with the keys in ``held``."""
        p = self.params
        if "left" in held and "right" not in held:
            self.steer = max(-p.steer_max, min(self.steer, 0.0) - p.steer_step)
        elif "right" in held and "left" not in held:
            self.steer = min(p.steer_max, max(self.steer, 0.0) + p.steer_step)
        else:
            self.steer = 0.0
        self.throttle = min(1.0, self.throttle + p.throttle_step) if "up" in held else 0.0
        self.brake = min(1.0, self.brake + p.brake_step) if "down" in held else 0.0
        return VehicleControl(steer=self.steer, throttle=self.throttle, brake=self.brake,
                              hand_brake="hand_brake" in held, reverse=self.reverse)
