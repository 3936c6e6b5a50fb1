"""What the telemetry panel says: one typed snapshot per frame, turned into rows. Pure Python.

:class:`Telemetry` gathers everything a person needs to judge the drive (issue 4,
"Telemetry panel"); :func:`text_rows` and :func:`bar_rows` turn it into rows
that :mod:`carla_agent.hud.gauges` draws without knowing what they mean. :data:`PALETTE` gives the
colours shared by the bars, the steering-wheel gauge and the strip chart, so a
signal has the same colour everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

from carla_agent.drive.pacing import format_speed
from carla_agent.drive.metrics import autonomy_formula, format_autonomy
from carla_agent.drive.telemetry import DriveTelemetry

RGB = Tuple[int, int, int]

PALETTE = {
    "predicted": (80, 200, 255),  # the network's steering
    "applied": (240, 240, 240),  # what the car got (manual, clipping)
    "expert": (110, 225, 110),  # what the expert would do
    "offset": (255, 170, 60),  # lateral offset
    "throttle": (90, 200, 90),
    "brake": (230, 70, 60),
    "text": (225, 225, 225),
    "dim": (150, 150, 155),
    "alert": (255, 95, 80),
    "ok": (120, 220, 120),
    "panel": (22, 24, 28),
    "track": (55, 58, 66),
    "background": (10, 10, 12),
}


@dataclass(frozen=True, kw_only=True)
class Telemetry(DriveTelemetry):
    """One frame's numbers for the panel: the drive's
    (:class:`~carla_agent.drive.telemetry.DriveTelemetry`, the same the videos show) and the HUD's own.

    Attributes:
        scenario, weather: names.
        lane_width_m: the lane's width, the scale of the offset bar.
        autonomy_pct, collisions, lane_invasions: so far this episode (autonomy over ``network_s``).
        method: saliency method name.
        target: its target (``auto``, ``left``...), ``signed`` for signed maps, ``-`` for none.
        layer: its conv layer (``default`` for the method's own, ``-`` or None for none).
        schedule: ``inline``, ``worker``, ``lock-step``, ``building`` or ``error``.
        style, alpha: overlay style and opacity.
        sim_fps, hud_fps: simulation ticks and HUD frames per wall-clock second.
        hud_ms: [ms] the HUD's own drawing time for the last frame.
        saliency_ms: [ms] compute time of the map on screen, or None.
        map_age_frames: frames between the map on screen and the camera frame, or None.
        map_frame: frame id of the map on screen, or None.
        dropped: frames the worker skipped because newer ones replaced them.
        speed_factor: simulated seconds per wall-clock second asked for (``math.inf``: max, as fast as it goes).
        speed_achieved: simulated seconds per wall-clock second over the last frames, or None.
        network_s: [s] simulated time the network drove so far (a person's (M) and the
            expert's (P) time is left out of autonomy).
        manual, autopilot, paused, recording: modes (a person drives; the expert drives; ...).
        message: an error or status line to show (empty for none).
    """

    scenario: str
    weather: str
    lane_width_m: float
    autonomy_pct: float
    collisions: int
    lane_invasions: int
    method: str
    target: str
    layer: Optional[str]
    schedule: str
    style: str
    alpha: float
    sim_fps: float
    hud_fps: float
    hud_ms: float
    saliency_ms: Optional[float]
    map_age_frames: Optional[int]
    map_frame: Optional[int]
    dropped: int = 0
    network_s: float = 0.0
    manual: bool = False
    autopilot: bool = False
    paused: bool = False
    recording: bool = False
    speed_factor: float = math.inf
    speed_achieved: Optional[float] = None
    message: str = ""


@dataclass(frozen=True)
class TextRow:
    """``label  value`` in the panel; ``colour`` is a :data:`PALETTE` name. A ``wide`` row
    (a continuation line, no label) uses the label's room too."""

    label: str
    value: str
    colour: str = "text"
    wide: bool = False


@dataclass(frozen=True)
class BarRow:
    """A labelled bar from ``lo`` to ``hi``; ``centred`` bars grow from zero both ways.

    ``value`` None draws an empty track with ``text`` (e.g. "n/a").
    """

    label: str
    value: Optional[float]
    lo: float
    hi: float
    colour: str
    text: str
    centred: bool = False


def _side(v: float, left: str = "L", right: str = "R", eps: float = 0.005) -> str:
    return "" if abs(v) < eps else (right if v > 0 else left)


def text_rows(t: Telemetry) -> List[TextRow]:
    """The text column, top to bottom."""
    age = "-" if t.map_age_frames is None else f"{t.map_age_frames} fr"
    lat = "-" if t.saliency_ms is None else f"{t.saliency_ms:.1f} ms"
    age_colour = "text" if t.map_age_frames is None or t.map_age_frames <= 2 else "offset"
    rows = [
        TextRow("scenario", t.scenario),
        TextRow("weather", t.weather),
        TextRow("command", t.command_name, "text" if t.command == 4 else "offset"),
        TextRow("sim time", f"{t.sim_time_s:6.2f} s fr {t.frame}"),
        TextRow("speed factor", speed_text(t)),
        TextRow("speed", f"{t.speed_mps * 3.6:5.1f} km/h"),
        TextRow("offset", f"{t.lateral_offset_m:+.2f} m {_side(t.lateral_offset_m)}",
                "alert" if abs(t.lateral_offset_m) > 0.5 * t.lane_width_m - 0.4 else "text"),
        *autonomy_rows(t),
        TextRow("interventions", str(t.interventions), "text" if t.interventions == 0 else "alert"),
        TextRow("collisions", str(t.collisions), "text" if t.collisions == 0 else "alert"),
        TextRow("lane invasions", str(t.lane_invasions), "text" if t.lane_invasions == 0 else "offset"),
        TextRow("method", t.method),
        TextRow("target", t.target),
        TextRow("layer", t.layer or "-"),  # its own row: a junction trunk's names are long
        TextRow("schedule", t.schedule, "alert" if t.schedule == "error" else "text"),
        TextRow("overlay", f"{t.style}, opacity {t.alpha:.1f}"),
        TextRow("latency, age", f"{lat}, {age}", age_colour),
        TextRow("FPS sim / HUD", f"{t.sim_fps:5.1f} / {t.hud_fps:5.1f}"),
        TextRow("HUD draw", f"{t.hud_ms:4.1f} ms"),
        TextRow("skipped", f"{t.dropped} frames", "dim" if t.dropped else "text"),
    ]
    return rows


def speed_text(t: Telemetry) -> str:
    """The speed factor asked for and the one achieved: ``1x real time``, ``2x (now 1.9x)``, ``max (now 7.3x)``."""
    asked = "1x real time" if t.speed_factor == 1.0 else format_speed(t.speed_factor)
    if t.speed_achieved is None or t.speed_factor == 1.0 and abs(t.speed_achieved - 1.0) < 0.05:
        return asked
    return f"{asked} (now {t.speed_achieved:.2g}x)"


def autonomy_rows(t: Telemetry) -> List[TextRow]:
    """Autonomy over the network's time (``100.0 % of 41.3 s`` once someone took over); below 0,
    the number and, on a second line, its formula: never a bare negative percent."""
    if t.autonomy_pct < 0 and t.network_s > 0:
        return [TextRow("autonomy", f"{t.autonomy_pct:.0f} %, below 0:", "alert"),
                TextRow("", "= " + autonomy_formula(t.interventions, t.network_s), "alert", wide=True)]
    text = format_autonomy(t.autonomy_pct, t.interventions, t.network_s, max(t.sim_time_s - t.network_s, 0.0),
                           compact=True)
    return [TextRow("autonomy", text, "text" if t.autonomy_pct >= 90 else "alert")]


def bar_rows(t: Telemetry) -> List[BarRow]:
    """The bars: steering (predicted, applied, expert), pedals, lateral offset."""
    half_lane = max(0.5 * t.lane_width_m, 0.5)
    expert_text = "n/a" if t.steer_expert is None else f"{t.steer_expert:+.2f}"
    return [
        BarRow("steer pred", t.steer_predicted, -1.0, 1.0, "predicted", f"{t.steer_predicted:+.2f}", True),
        BarRow("steer appl", t.steer_applied, -1.0, 1.0, "applied", f"{t.steer_applied:+.2f}", True),
        BarRow("steer exp", t.steer_expert, -1.0, 1.0, "expert", expert_text, True),
        BarRow("throttle", t.throttle, 0.0, 1.0, "throttle", f"{t.throttle:.2f}"),
        BarRow("brake", t.brake, 0.0, 1.0, "brake", f"{t.brake:.2f}"),
        BarRow("offset", t.lateral_offset_m, -half_lane, half_lane, "offset", f"{t.lateral_offset_m:+.2f} m", True),
    ]
