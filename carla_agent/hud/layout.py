"""Where each HUD panel goes in the window. Pure Python, no pygame.

Panels (names used everywhere in the HUD and its tests):

* ``camera``: the live camera frame;
* ``overlay``: the saliency map over the frame it was computed from;
* ``network``: the network's own input (crop, resize) with its map at native
  resolution, and a feature grid when the method returns one;
* ``telemetry``: text, bars and the steering-wheel gauge;
* ``chart``: the scrolling strip chart.

Layouts (TAB cycles them):

* ``side``: camera | overlay on top, the info panels in a row below;
* ``stacked``: camera above overlay on the left, the info panels in a column
  on the right (the default for wide images, aspect > :data:`WIDE_ASPECT`);
* ``focus``: the overlay large with the chart under it; the camera small on
  top of the info column.

With the panel hidden (F1) only the images are drawn, as large as they fit.
Every image rectangle keeps the camera's aspect ratio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

LAYOUTS: Tuple[str, ...] = ("side", "stacked", "focus")
WIDE_ASPECT = 2.0  # width / height above which images are stacked by default
PAD_PX = 4  # [px] gap between panels
INFO_COLUMN_PX = 420  # [px] width of the info column in the stacked and focus layouts
MIN_INFO_ROW_PX = 300  # [px] smallest height of the info row in the side layout


@dataclass(frozen=True)
class Rect:
    """A pixel rectangle: top-left ``(x, y)``, size ``w`` x ``h``."""

    x: int
    y: int
    w: int
    h: int

    @property
    def right(self) -> int:
        return self.x + self.w

    @property
    def bottom(self) -> int:
        return self.y + self.h

    def as_tuple(self) -> Tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)

    def inset(self, px: int) -> "Rect":
        return Rect(self.x + px, self.y + px, max(1, self.w - 2 * px), max(1, self.h - 2 * px))

    def contains(self, other: "Rect") -> bool:
        return (self.x <= other.x and self.y <= other.y and other.right <= self.right
                and other.bottom <= self.bottom)

    def overlaps(self, other: "Rect") -> bool:
        return not (other.x >= self.right or other.right <= self.x or other.y >= self.bottom
                    or other.bottom <= self.y)


def fit(image_wh: Tuple[int, int], box: Rect) -> Rect:
    """The largest rectangle of the image's aspect ratio inside ``box``, centred."""
    iw, ih = image_wh
    if iw <= 0 or ih <= 0:
        raise ValueError(f"image size must be positive, got {image_wh}")
    scale = min(box.w / iw, box.h / ih)
    w, h = max(1, int(iw * scale)), max(1, int(ih * scale))
    return Rect(box.x + (box.w - w) // 2, box.y + (box.h - h) // 2, w, h)


def default_layout(image_wh: Tuple[int, int]) -> str:
    """``stacked`` for wide images, ``side`` otherwise."""
    return "stacked" if image_wh[0] / max(image_wh[1], 1) > WIDE_ASPECT else "side"


def _images_only(window: Rect, image_wh: Tuple[int, int], mode: str) -> Dict[str, Rect]:
    if mode == "focus":
        return {"overlay": fit(image_wh, window)}
    p = PAD_PX
    half_w = Rect(window.x, window.y, (window.w - p) // 2, window.h)
    row = (fit(image_wh, half_w), fit(image_wh, Rect(half_w.right + p, window.y, half_w.w, window.h)))
    half_h = Rect(window.x, window.y, window.w, (window.h - p) // 2)
    col = (fit(image_wh, half_h), fit(image_wh, Rect(window.x, half_h.bottom + p, window.w, half_h.h)))
    cam, ovl = row if row[0].w * row[0].h >= col[0].w * col[0].h else col
    return {"camera": cam, "overlay": ovl}


def _info_column(col: Rect, shares: Tuple[Tuple[str, float], ...],
                 camera_wh: Tuple[int, int] | None = None) -> Dict[str, Rect]:
    """Panels stacked in a column, heights by ``shares``; a camera on top when ``camera_wh`` is given."""
    p = PAD_PX
    out: Dict[str, Rect] = {}
    y = col.y
    if camera_wh is not None:
        cam = fit(camera_wh, Rect(col.x, y, col.w, int(col.h * 0.24)))
        out["camera"] = Rect(col.x + (col.w - cam.w) // 2, y, cam.w, cam.h)
        y += cam.h + p
    rest = col.bottom - y - p * (len(shares) - 1)
    for i, (name, share) in enumerate(shares):
        h = col.bottom - y if i == len(shares) - 1 else int(rest * share)
        out[name] = Rect(col.x, y, col.w, h)
        y += h + p
    return out


def compute_layout(window_wh: Tuple[int, int], image_wh: Tuple[int, int], mode: str = "side",
                   panel_visible: bool = True) -> Dict[str, Rect]:
    """Rectangles of the visible panels.

    Args:
        window_wh: ``(width, height)`` of the HUD in pixels.
        image_wh: ``(width, height)`` of the camera frames (for the aspect ratio).
        mode: one of :data:`LAYOUTS`.
        panel_visible: False when F1 hid the info panels.

    Returns:
        ``{panel name: Rect}``; ``camera`` and ``overlay`` are always there
        except ``camera`` with the panel hidden in ``focus``.

    Raises:
        ValueError: unknown mode (lists the known ones) or a window too small.
    """
    if mode not in LAYOUTS:
        raise ValueError(f"unknown layout {mode!r}; known layouts: {', '.join(LAYOUTS)}")
    ww, wh = window_wh
    if ww < 320 or wh < 240:
        raise ValueError(f"HUD window {ww}x{wh} is too small; use at least 320x240")
    p = PAD_PX
    window = Rect(p, p, ww - 2 * p, wh - 2 * p)
    if not panel_visible:
        return _images_only(window, image_wh, mode)
    if mode == "side":
        img_w = (window.w - p) // 2
        img_h = min(int(img_w * image_wh[1] / image_wh[0]), window.h - MIN_INFO_ROW_PX - p)
        size = fit(image_wh, Rect(0, 0, img_w, img_h))
        x0 = window.x + (window.w - (2 * size.w + p)) // 2  # the pair centred when height-limited
        cam = Rect(x0, window.y, size.w, size.h)
        ovl = Rect(cam.right + p, window.y, size.w, size.h)
        top = cam.bottom
        row = Rect(window.x, top + p, window.w, window.bottom - top - p)
        tel_w = int(row.w * 0.40)
        net_w = int(row.w * 0.25)
        chart_w = row.w - tel_w - net_w - 2 * p
        return {
            "camera": cam, "overlay": ovl,
            "telemetry": Rect(row.x, row.y, tel_w, row.h),
            "chart": Rect(row.x + tel_w + p, row.y, chart_w, row.h),
            "network": Rect(row.right - net_w, row.y, net_w, row.h),
        }
    col_w = min(INFO_COLUMN_PX, window.w // 2)
    left = Rect(window.x, window.y, window.w - col_w - p, window.h)
    col = Rect(left.right + p, window.y, col_w, window.h)
    if mode == "stacked":
        half = (left.h - p) // 2
        cam = fit(image_wh, Rect(left.x, left.y, left.w, half))
        ovl = fit(image_wh, Rect(left.x, left.y + half + p, left.w, half))
        # Pull the pair together vertically so they read as one column.
        gap = ovl.y - cam.bottom - p
        cam = Rect(cam.x, cam.y + gap // 2, cam.w, cam.h)
        ovl = Rect(ovl.x, ovl.y - (gap - gap // 2), ovl.w, ovl.h)
        shares = (("telemetry", 0.56), ("chart", 0.24), ("network", 0.20))
        return {"camera": cam, "overlay": ovl, **_info_column(col, shares)}
    chart_h = max(150, int(window.h * 0.28))
    ovl = fit(image_wh, Rect(left.x, left.y, left.w, left.h - chart_h - p))
    chart = Rect(left.x, ovl.bottom + p, left.w, left.bottom - ovl.bottom - p)
    shares = (("telemetry", 0.74), ("network", 0.26))
    return {"overlay": ovl, "chart": chart, **_info_column(col, shares, image_wh)}
