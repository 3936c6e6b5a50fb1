"""The HUD's image panels and notices, drawn with a :class:`~carla_agent.hud.painter.Painter`.

Each panel is a function over the painter (drawing on ``painter.target``) and the
data it shows:

* overlay panel: the map over the frame it was computed from, with the crop box,
  a caption and a colour legend (:func:`draw_overlay`);
* network panel: the network's input, its map at native resolution and the
  feature grid of per-layer methods (:func:`draw_network`);
* captions, banners, the key toast and the help screen;
* :func:`static_layer`: what does not change between frames (panel backgrounds, labels,
  bar tracks, chart grid), drawn once per layout onto a cached layer (the gauges' static
  pass: :mod:`carla_agent.hud.gauges`); each frame blits it and draws only values, images
  and lines.

Sizes are pixels; images are ``(H, W, 3)`` uint8 RGB.
"""

from __future__ import annotations

import textwrap
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import pygame

from carla_agent.hud.controls import KEY_HELP
from carla_agent.hud.explainers import SaliencyKey
from carla_agent.hud.gauges import draw_chart_static, draw_telemetry_static
from carla_agent.hud.layout import Rect
from carla_agent.hud.images import feature_grid, resize_rgb
from carla_agent.saliency.compose import colorize_fast, compose
from carla_agent.hud.painter import Painter
from carla_agent.hud.strip_chart import StripChart
from carla_agent.hud.telemetry import PALETTE, Telemetry
from carla_agent.hud.worker import AttentionMap

TOAST_S = 2.5  # [s] how long a key's notification stays on screen
CAPTION_PX = 20  # [px] caption strip on top of the image panels
HELP_HINT = "H: help"  # always on screen (CARLA's manual_control shows "Press 'H' or '?' for help")


@dataclass(frozen=True)
class MapView:
    """How maps are drawn this frame.

    Attributes:
        preprocessing: the model's preprocessing (``crop_resize``, ``crop_box``, ``project_map``,
            ``width``, ``height``).
        normalized: ``AttentionMap -> (h, w) float32`` display map (the feed's running normaliser).
        style, alpha: overlay style and opacity.
    """

    preprocessing: Any
    normalized: Callable[[AttentionMap], np.ndarray]
    style: str
    alpha: float


@dataclass
class PanelCache:
    """What the panels keep between frames: the composed overlay of the map on screen
    (with its key), the legend bars, and the static background layer (with its key)."""

    overlay_key: tuple = ()
    overlay: Optional[np.ndarray] = None
    legends: Dict[tuple, pygame.Surface] = field(default_factory=dict)
    static_key: tuple = ()
    static: Optional[pygame.Surface] = None


# -- frames, captions, banners ---------------------------------------------------------------
def caption(p: Painter, rect: Rect, text: str, tel: Optional[Telemetry] = None, colour="text",
            hint: bool = False) -> None:
    """A strip on top of an image panel; with ``tel``, REC, MANUAL and AUTOPILOT marks at its right
    end; with ``hint``, :data:`HELP_HINT` at the very right."""
    p.shade(Rect(rect.x, rect.y, rect.w, CAPTION_PX), 150)
    y = rect.y + (CAPTION_PX - p.line_px) // 2 + 1
    right = rect.right - 6
    if hint:
        right -= p.put_right(HELP_HINT, right, y, "expert") + 12
    if tel is not None:
        if tel.recording:
            right -= p.put_right("REC", right, y, "alert") + 6
            pygame.draw.circle(p.target, PALETTE["alert"], (right - 2, rect.y + CAPTION_PX // 2), 5)
            right -= 16
        if tel.manual:
            right -= p.put_right("MANUAL", right, y, "offset") + 10
        if tel.autopilot:
            right -= p.put_right("AUTOPILOT", right, y, "expert") + 10
    p.put(text, (rect.x + 6, y), colour, max_w=right - rect.x - 12)


def banner(p: Painter, text: str, rect: Rect) -> None:
    """Big text in a box at the middle of ``rect``."""
    surf = p.text(text, "text", p.big)
    box = Rect(rect.x + (rect.w - surf.get_width()) // 2 - 12, rect.y + rect.h // 2 - surf.get_height() // 2 - 8,
               surf.get_width() + 24, surf.get_height() + 16)
    p.shade(box, 170)
    p.target.blit(surf, (box.x + 12, box.y + 8))


def wrap(p: Painter, text: str, rect: Rect, colour: str) -> None:
    """Text cut into lines of the panel's width (at most 8), centred vertically."""
    per_line = max(10, (rect.w - 20) // p.char_px)
    # At word boundaries; only a word longer than a line (a path) is cut inside.
    lines = textwrap.wrap(text, per_line, break_long_words=True, break_on_hyphens=False)[:8]
    y = rect.y + rect.h // 2 - len(lines) * p.line_px // 2
    for line in lines:
        p.put(line, (rect.x + 10, y), colour)
        y += p.line_px


def splash(p: Painter, size_wh: Tuple[int, int], text: str) -> None:
    """A background with one line of text: what the window shows while the first map's graph is
    built (seconds), so it is never a black window."""
    w, h = size_wh
    p.rect(Rect(0, 0, w, h), "background")
    p.put(text, (max(10, w // 2 - len(text) * p.char_px // 2), h // 2 - p.line_px // 2), "text")


# -- the static layer ------------------------------------------------------------------------
def static_layer(p: Painter, cache: PanelCache, size_wh: Tuple[int, int], convert: bool, rects: Dict[str, Rect],
                 rows, bars, lane_width_m: float, chart: StripChart, preprocessing: Any) -> pygame.Surface:
    """Everything that does not change between frames, drawn once per layout (kept in ``cache``).

    ``convert``: convert the layer to the window's pixel format (only when a window is open).
    """
    key = (tuple(sorted((k, v) for k, v in rects.items())), tuple(r.label for r in rows),
           tuple(b.label for b in bars), round(lane_width_m, 2))
    if key == cache.static_key and cache.static is not None:
        return cache.static
    surf = pygame.Surface(size_wh)
    if convert:
        surf = surf.convert()
    surf.fill(PALETTE["background"])
    screen = p.target
    p.target = surf
    try:
        if "telemetry" in rects:
            draw_telemetry_static(p, rects["telemetry"], rows, bars)
        if "chart" in rects:
            draw_chart_static(p, rects["chart"], chart, lane_width_m)
        if "network" in rects:
            pre = preprocessing
            p.panel(rects["network"], f"network input {pre.width}x{pre.height} ({pre.color_space})")
    finally:
        p.target = screen
    cache.static_key, cache.static = key, surf
    return surf


# -- overlay panel ---------------------------------------------------------------------------
def overlay_image(amap: AttentionMap, rect: Rect, view: MapView, cache: PanelCache) -> np.ndarray:
    """The map over its own frame at panel size, composed at min(frame, panel) resolution."""
    key = (id(amap), view.style, view.alpha, rect.w, rect.h)
    if cache.overlay_key == key:
        return cache.overlay
    norm = view.normalized(amap)
    fh, fw = amap.image.shape[:2]
    base = resize_rgb(amap.image, (rect.w, rect.h)) if rect.w * rect.h < fw * fh else amap.image
    hw = base.shape[:2]
    sal = view.preprocessing.project_map(norm, hw)
    out = compose(base, sal, view.style, view.alpha, bool(amap.result.signed), view.preprocessing.crop_box(hw))
    out = resize_rgb(out, (rect.w, rect.h))
    cache.overlay_key, cache.overlay = key, out
    return out


def draw_overlay(p: Painter, rect: Rect, frame: int, image: np.ndarray, amap: Optional[AttentionMap],
                 schedule: str, tel: Telemetry, key: SaliencyKey, view: MapView, cache: PanelCache,
                 hint: bool = False) -> None:
    """The map over its frame; without a map, the camera dimmed and why (building, computing, error).
    ``hint``: the caption carries :data:`HELP_HINT` (when no camera panel is shown)."""
    if amap is not None:
        p.rgb(overlay_image(amap, rect, view, cache), rect)
        t, b, l, r = view.preprocessing.crop_box((rect.h, rect.w))
        p.rect(Rect(rect.x + l, rect.y + t, r - l, b - t), "dim", 1)
        where = schedule if schedule != "done" else ""
        caption(p, rect, f"{amap.key.label}  frame {amap.frame}  age {frame - amap.frame}  "
                         f"{where} {amap.latency_ms:.0f} ms", hint=hint)
        legend(p, rect, bool(amap.result.signed), cache.legends)
        return
    p.rgb(image, rect)  # no map of this key yet: the camera, dimmed, and why
    p.shade(rect, 150)
    if schedule == "error":
        caption(p, rect, f"{key.label}: error", colour="alert", hint=hint)
        wrap(p, f"cannot compute {key.method}: {tel.message or 'failed'}. Press 1-9 for another method.",
             rect, "alert")
    else:
        caption(p, rect, f"{key.label}: {'building the graph' if schedule == 'building' else 'computing'}...",
                hint=hint)
        banner(p, f"{key.method}: first map...", rect)


def legend(p: Painter, rect: Rect, signed: bool, legends: Dict[tuple, pygame.Surface]) -> None:
    """A colour bar at the bottom-right of the overlay: what the colours mean (drawn once into
    ``legends``, then blitted)."""
    screen = p.target
    w, h = min(150, rect.w // 3), 8
    key = (w, signed)
    surf = legends.get(key)
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
            p.target = screen
        legends[key] = surf
    screen.blit(surf, (rect.right - w - 16, rect.bottom - surf.get_height() - 3))


# -- network panel ---------------------------------------------------------------------------
def draw_network(p: Painter, rect: Rect, frame: int, image: np.ndarray, amap: Optional[AttentionMap],
                 view: MapView) -> None:
    """The network's input and its map at native resolution (stacked, or side by side when
    that makes them larger), then the feature grid of per-layer methods."""
    pre = view.preprocessing
    inner = p.panel_inner(rect)
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
        native = compose(small, view.normalized(amap), view.style, view.alpha, bool(amap.result.signed))
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


# -- toast and help --------------------------------------------------------------------------
def draw_toast(p: Painter, rects: Dict[str, Rect], toast: Tuple[str, float]) -> Tuple[str, float]:
    """The last key's notification ``(text, time.monotonic() when shown)`` at the bottom of the
    camera (or overlay) panel; returns the toast to keep (cleared once older than :data:`TOAST_S`)."""
    text, since = toast
    if not text:
        return toast
    if time.monotonic() - since > TOAST_S:
        return ("", 0.0)
    area = rects.get("camera", rects["overlay"])
    surf = p.text(text, "text")
    w = min(surf.get_width(), area.w - 24)
    box = Rect(area.x + (area.w - w) // 2 - 8, area.bottom - surf.get_height() - 14, w + 16,
               surf.get_height() + 8)
    p.shade(box, 190)
    p.put(text, (box.x + 8, box.y + 4), "text", max_w=w)
    return toast


def draw_help(p: Painter, size_wh: Tuple[int, int], families: Sequence[Sequence[str]], now_label: str) -> None:
    """The H (or ``?``) screen: the keys, the method families on 1-9 and the saliency shown now."""
    w, h = size_wh
    p.shade(Rect(0, 0, w, h), 120)
    method_lines = [f"{i}  {' / '.join(fam)}" for i, fam in enumerate(families, start=1)]
    col = max(300, w // 2 - 40)
    x = max(10, (w - 2 * col) // 2)
    y = max(10, (h - (len(KEY_HELP) + 3) * p.line_px) // 2)
    box_h = p.big.get_linesize() + 12 + len(KEY_HELP) * p.line_px
    p.shade(Rect(max(0, x - 16), max(0, y - 12), min(w, 2 * col + 32), min(h, box_h + 24)), 235)
    p.put("keys", (x, y), "text", p.big)
    yy = y + p.big.get_linesize() + 6
    for keys, action in KEY_HELP:
        p.put(keys, (x, yy), "predicted")
        p.put(action, (x + p.char_px * 17, yy), "text" if keys else "dim", max_w=col - p.char_px * 17 - 10)
        yy += p.line_px
    x2 = x + col
    p.put("methods (1-9, again: next)", (x2, y), "text", p.big, max_w=w - x2 - 10)
    yy = y + p.big.get_linesize() + 6
    for line in method_lines:
        p.put(line, (x2, yy), "text", max_w=w - x2 - 10)
        yy += p.line_px
    yy += p.line_px
    p.put(f"now: {now_label}", (x2, yy), "expert", max_w=w - x2 - 10)
