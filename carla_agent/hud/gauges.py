"""The HUD's gauges: the telemetry panel (text rows, bars, the steering-wheel gauge) and the
strip chart of steering and lateral offset, drawn with a :class:`~carla_agent.hud.painter.Painter`.

Each has a static pass (``draw_*_static``: titles, labels, bar tracks, the wheel's rim,
the chart grid, drawn once onto the cached background layer) and a dynamic pass that draws
the values on ``painter.target``. Sizes are pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Tuple

import pygame

from carla_agent.hud.layout import Rect
from carla_agent.hud.painter import Painter
from carla_agent.hud.strip_chart import StripChart
from carla_agent.hud.telemetry import PALETTE, BarRow, Telemetry

WHEEL_DEG_PER_STEER = 135.0  # [deg] the gauge's wheel turns this far at steer 1.0 (full lock never looks straight)
CHART_GRID_S = 2.0  # [s] vertical grid step of the strip chart


@dataclass(frozen=True)
class TelemetryGeometry:
    """Where each telemetry element goes inside the panel (same for the static and dynamic passes)."""

    inner: Rect
    value_x: int
    value_w: int
    row_ys: Tuple[int, ...]
    bars: Tuple[Rect, ...]
    wheel: Rect
    message_y: int


@dataclass(frozen=True)
class ChartGeometry:
    inner: Rect
    steer: Rect
    offset: Rect


# -- telemetry panel -------------------------------------------------------------------------
def draw_telemetry_static(p: Painter, rect: Rect, rows, bars: Sequence[BarRow]) -> None:
    """Title, row labels, bar tracks and the wheel's rim and legend of the telemetry panel."""
    g = telemetry_geometry(p, rect, len(rows), len(bars))
    p.panel(rect, "telemetry")
    for row, y in zip(rows, g.row_ys):
        p.put(row.label, (g.inner.x, y), "dim")
    for bar, r in zip(bars, g.bars):
        draw_bar_static(p, r, bar)
    draw_wheel_static(p, g.wheel)


def telemetry_geometry(p: Painter, rect: Rect, n_rows: int, n_bars: int) -> TelemetryGeometry:
    inner = p.panel_inner(rect)
    lh = p.line_px
    bar_h = p.small_px + 3
    two_cols = inner.w >= 440
    text_w = int(inner.w * 0.56) if two_cols else inner.w
    value_x = inner.x + p.char_px * 15
    if not two_cols:
        # Text above the bars in a short panel (960x540): tighten the line pitch down to the
        # small font's; rows that still do not fit are left off from the bottom (HUD timings first).
        room = inner.h - 4 - n_bars * bar_h - p.line_px
        if n_rows * lh > room:
            lh = max(p.small_px + 1, room // max(n_rows, 1))
            n_rows = max(0, min(n_rows, room // lh))
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
    return TelemetryGeometry(inner, value_x, inner.x + text_w - value_x - 4, row_ys, bars, wheel, message_y)


def bar_track(p: Painter, rect: Rect) -> Rect:
    label_w = p.small_char_px * 11
    value_w = p.small_char_px * 8
    return Rect(rect.x + label_w, rect.y + 3, max(10, rect.w - label_w - value_w - 4), max(4, rect.h - 6))


def draw_bar_static(p: Painter, rect: Rect, bar: BarRow) -> None:
    p.put(bar.label, (rect.x, rect.y), "dim", p.small)
    track = bar_track(p, rect)
    p.rect(track, "track")
    if bar.centred:
        zero = track.x + int(round((0.0 - bar.lo) / (bar.hi - bar.lo) * (track.w - 1)))
        pygame.draw.line(p.target, PALETTE["dim"], (zero, track.y - 2), (zero, track.bottom + 1))


def draw_telemetry(p: Painter, rect: Rect, tel: Telemetry, rows, bars: Sequence[BarRow]) -> None:
    """The values of the telemetry panel: text rows, the message, bars and the wheel."""
    g = telemetry_geometry(p, rect, len(rows), len(bars))
    for row, y in zip(rows, g.row_ys):
        x = g.inner.x + 2 * p.char_px if row.wide else g.value_x
        p.put(row.value, (x, y), row.colour, max_w=g.value_x + g.value_w - x)
    if tel.message:
        p.put(tel.message, (g.inner.x, g.message_y), "alert", p.small, max_w=g.inner.w)
    for bar, r in zip(bars, g.bars):
        track = bar_track(p, r)
        if bar.value is not None and math.isfinite(bar.value):
            frac = (min(max(bar.value, bar.lo), bar.hi) - bar.lo) / (bar.hi - bar.lo)
            x = track.x + int(round(frac * (track.w - 1)))
            if bar.centred:
                zero = track.x + int(round((0.0 - bar.lo) / (bar.hi - bar.lo) * (track.w - 1)))
                a, b = sorted((zero, x))
                pygame.draw.rect(p.target, PALETTE[bar.colour], (a, track.y, max(2, b - a), track.h))
            else:
                pygame.draw.rect(p.target, PALETTE[bar.colour], (track.x, track.y, x - track.x, track.h))
        p.put(bar.text, (track.right + 4, r.y), "text" if bar.value is not None else "dim", p.small)
    draw_wheel(p, g.wheel, tel)


def wheel_geometry(p: Painter, box: Rect) -> Tuple[int, int, int]:
    """The wheel's centre x, y and radius in ``box`` [px]."""
    r = int(min(box.w, box.h - p.small_px - 6) / 2) - 4
    return box.x + box.w // 2, box.y + r + 4, r


def draw_wheel_static(p: Painter, box: Rect) -> None:
    cx, cy, r = wheel_geometry(p, box)
    if r < 14:
        return
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


def draw_wheel(p: Painter, box: Rect, tel: Telemetry) -> None:
    """Spokes at the applied steering; dots on the rim for predicted (filled) and expert (ring)."""
    cx, cy, r = wheel_geometry(p, box)
    if r < 14:
        return
    scr = p.target

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


# -- strip chart -----------------------------------------------------------------------------
def chart_geometry(p: Painter, rect: Rect) -> ChartGeometry:
    inner = p.panel_inner(rect)
    top = inner.y + p.small_px + 4
    usable = inner.bottom - top - p.small_px - 2
    steer_h = int(usable * 0.58)
    axis_w = p.small_char_px * 5
    steer = Rect(inner.x + axis_w, top, inner.w - axis_w, steer_h)
    offset = Rect(inner.x + axis_w, top + steer_h + 8, inner.w - axis_w, usable - steer_h - 8)
    return ChartGeometry(inner, steer, offset)


def draw_chart_static(p: Painter, rect: Rect, chart: StripChart, lane_width_m: float) -> None:
    """Title, legend, axes, grid and labels of the strip chart; the offset axis spans half a lane [m]."""
    g = chart_geometry(p, rect)
    p.panel(rect, f"steering and lateral offset, last {chart.window_s:.0f} s")
    x = g.inner.x
    for name in ("predicted", "applied", "expert", "offset"):
        mid = g.inner.y + p.small_px // 2
        pygame.draw.line(p.target, PALETTE[name], (x, mid), (x + 14, mid), 2)
        x += 18 + p.put(name, (x + 18, g.inner.y), "dim", p.small) + 10
    half_lane = max(0.5 * lane_width_m, 0.5)
    ticks = chart.time_ticks(CHART_GRID_S)
    for sub, labels in ((g.steer, ("R +1", "0", "L -1")),
                        (g.offset, (f"+{half_lane:.1f}", "0 m", f"-{half_lane:.1f}"))):
        p.rect(sub, (30, 32, 38))
        mid = sub.y + sub.h // 2
        for s in ticks:
            gx = sub.x + int((sub.w - 1) * (1.0 - s / chart.window_s))
            pygame.draw.line(p.target, (44, 47, 55), (gx, sub.y), (gx, sub.bottom - 1))
        pygame.draw.line(p.target, PALETTE["track"], (sub.x, mid), (sub.right - 1, mid))
        for label, ly in zip(labels, (sub.y, mid - p.small_px // 2, sub.bottom - p.small_px)):
            p.put(label, (g.inner.x, ly), "dim", p.small)
    for s in ticks:
        gx = g.steer.x + int((g.steer.w - 1) * (1.0 - s / chart.window_s))
        label = "now" if s == 0 else f"-{s:.0f}s"
        w = p.text(label, "dim", p.small).get_width()
        p.put(label, (min(max(gx - w // 2, g.steer.x), g.steer.right - w), g.inner.bottom - p.small_px),
              "dim", p.small)
    p.put("+ = right of the lane centre", (g.offset.x + 4, g.offset.y + 1), "dim", p.small)


def draw_chart(p: Painter, rect: Rect, chart: StripChart, lane_width_m: float) -> None:
    """The chart's lines: steering (expert, applied, predicted) and lateral offset [m]."""
    g = chart_geometry(p, rect)
    half_lane = max(0.5 * lane_width_m, 0.5)
    lines = chart.polylines(g.steer.as_tuple(), {"expert": (-1.0, 1.0), "applied": (-1.0, 1.0),
                                                 "predicted": (-1.0, 1.0)})
    lines.update(chart.polylines(g.offset.as_tuple(), {"offset": (-half_lane, half_lane)}))
    for name in ("expert", "applied", "predicted", "offset"):
        for pts in lines.get(name, ()):
            pygame.draw.lines(p.target, PALETTE[name], False, pts.tolist(), 2)
