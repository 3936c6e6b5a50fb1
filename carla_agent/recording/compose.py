"""Attention video frames: camera | maps | telemetry, laid out in a grid of captioned tiles.

Layout of one video frame, a grid of equal tiles, each under a caption bar::

    +-----------+------------------+------------------+-------------+
    | camera    | visual_backprop  | gradcam          | telemetry   |
    | frame 120 | target right ... | target right ... | bars, chart |
    +-----------+------------------+------------------+-------------+

Tiles are ``tile_hw`` pixels; the camera frame is resized to it and every
map is projected onto it with the model's preprocessing, so overlays line up
with the crop the network saw. ``columns`` wraps the tiles into rows. The
telemetry tile (:class:`TelemetryStrip`) shows steering bars, speed, offset and
a rolling chart of the last seconds: steering on the left scale (the smallest of
:data:`STEER_RANGES` that holds the shown values, so small corrections are
visible), lateral offset on the right one, with a coloured legend.

Everything here is NumPy / OpenCV; no TensorFlow.
"""

from __future__ import annotations

import collections
import logging
import math
from dataclasses import dataclass
from typing import Deque, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from carla_agent.drive.telemetry import DriveTelemetry
from carla_agent.saliency.compose import compose as overlay

log = logging.getLogger(__name__)

BACKGROUND_RGB = (22, 22, 26)
CAPTION_RGB = (235, 235, 235)
PREDICTED_RGB = (255, 150, 30)   # orange: the network's steering
APPLIED_RGB = (235, 235, 235)    # white: the control applied
EXPERT_RGB = (80, 220, 110)      # green: the expert's steering
OFFSET_RGB = (90, 200, 255)      # cyan: lateral offset
GRID_RGB = (70, 70, 78)
AXIS_RGB = (120, 120, 132)       # the chart's zero line and frame
LABEL_RGB = (185, 185, 195)      # the chart's legend and scale labels
#: Steering ranges the chart picks from (the smallest that holds the last seconds).
STEER_RANGES = (0.05, 0.1, 0.2, 0.5, 1.0)
FONT = cv2.FONT_HERSHEY_SIMPLEX


# -- telemetry ----------------------------------------------------------------------------

class TelemetryStrip:
    """Draws the telemetry tile: steering bars, speed, offset and a rolling chart.

    Stateful: it keeps the last ``history_s`` seconds for the chart; call
    :meth:`reset` between videos.

    Args:
        tile_hw: ``(H, W)`` of the tile, pixels.
        history_s: [s] time span of the chart.
        offset_range_m: [m] chart range of the lateral offset (+-).
    """

    def __init__(self, tile_hw: Tuple[int, int], history_s: float = 6.0, offset_range_m: float = 1.5) -> None:
        self.h, self.w = int(tile_hw[0]), int(tile_hw[1])
        self.history_s = float(history_s)
        self.offset_range_m = float(offset_range_m)
        self._hist: Deque[DriveTelemetry] = collections.deque()
        self._scale = max(0.3, min(0.5, self.h / 540.0))
        self._line_h = int(round(26 * self._scale / 0.45))
        self._bars_top = 2 * self._line_h + 4
        self._bar_h = max(6, self._line_h - 8)
        self._chart_top = self._bars_top + 3 * self._line_h + 4
        self._chart = (self._chart_top, self.h - 4)  # rows of the chart area
        self._plot = (self._chart_top + self._line_h - 4, self.h - 7)  # rows of the curves, below the legend
        self._thick = 2 if self._plot[1] - self._plot[0] >= 50 else 1
        self._small = max(0.33, self._scale * 0.8)  # the chart's legend and scales: never below legible
        self._background = self._draw_background()

    def reset(self) -> None:
        self._hist.clear()

    def _text(self, img: np.ndarray, text: str, x: int, y: int, colour=CAPTION_RGB, scale: float = 1.0) -> None:
        cv2.putText(img, text, (x, y), FONT, self._scale * scale, colour, 1, cv2.LINE_AA)

    def _draw_background(self) -> np.ndarray:
        img = np.empty((self.h, self.w, 3), np.uint8)
        img[:] = BACKGROUND_RGB
        label_w = int(70 * self._scale / 0.45)
        self._bar_x0, self._bar_x1 = label_w, self.w - int(52 * self._scale / 0.45)
        for k, (name, colour) in enumerate((("pred", PREDICTED_RGB), ("applied", APPLIED_RGB),
                                            ("expert", EXPERT_RGB))):
            y = self._bars_top + k * self._line_h
            self._text(img, name, 6, y + self._bar_h, colour)
            cv2.rectangle(img, (self._bar_x0, y), (self._bar_x1, y + self._bar_h), GRID_RGB, 1)
            mid = (self._bar_x0 + self._bar_x1) // 2
            cv2.line(img, (mid, y - 1), (mid, y + self._bar_h + 1), CAPTION_RGB, 1)
        top, bottom = self._chart
        if bottom - top > 20:
            cv2.rectangle(img, (4, top), (self.w - 5, bottom), AXIS_RGB, 1)
            legend_y = top + self._line_h - 9
            x = 9
            for text, colour in ((f"last {self.history_s:g} s:", LABEL_RGB), ("pred", PREDICTED_RGB),
                                 ("applied", APPLIED_RGB), ("expert", EXPERT_RGB), ("offset", OFFSET_RGB)):
                cv2.putText(img, text, (x, legend_y), FONT, self._small, colour, 1, cv2.LINE_AA)
                x += cv2.getTextSize(text, FONT, self._small, 1)[0][0] + 7
            plot_top, plot_bottom = self._plot
            mid = (plot_top + plot_bottom) // 2
            cv2.line(img, (5, mid), (self.w - 6, mid), AXIS_RGB, 1)
            for y in (plot_top, plot_bottom):  # the range's ends, dotted
                for x0 in range(6, self.w - 8, 6):
                    cv2.line(img, (x0, y), (x0 + 2, y), GRID_RGB, 1)
        return img

    def draw(self, t: DriveTelemetry) -> np.ndarray:
        """The tile for ``t``: ``(H, W, 3)`` uint8 RGB. Appends ``t`` to the chart history."""
        self._hist.append(t)
        while self._hist and t.sim_time_s - self._hist[0].sim_time_s > self.history_s:
            self._hist.popleft()
        img = self._background.copy()
        self._text(img, f"t {t.sim_time_s:6.2f} s  frame {t.frame}  {t.command_name.lower()}", 6, self._line_h - 6)
        self._text(img, f"{t.speed_mps * 3.6:5.1f} km/h  offset {t.lateral_offset_m:+.2f} m  int {t.interventions}",
                   6, 2 * self._line_h - 6, OFFSET_RGB)
        mid = (self._bar_x0 + self._bar_x1) // 2
        half = (self._bar_x1 - self._bar_x0) // 2
        for k, (value, colour) in enumerate(((t.steer_predicted, PREDICTED_RGB), (t.steer_applied, APPLIED_RGB),
                                             (t.steer_expert, EXPERT_RGB))):
            y = self._bars_top + k * self._line_h
            if value is None:
                self._text(img, "n/a", self._bar_x1 + 4, y + self._bar_h, GRID_RGB)
                continue
            end = mid + int(round(float(np.clip(value, -1, 1)) * half))
            cv2.rectangle(img, (min(mid, end), y + 2), (max(mid, end), y + self._bar_h - 2), colour, -1)
            self._text(img, f"{value:+.2f}", self._bar_x1 + 4, y + self._bar_h, colour)
        self._draw_chart(img, t.sim_time_s)
        return img

    def _draw_chart(self, img: np.ndarray, now_s: float) -> None:
        """Steering (left scale, picked from :data:`STEER_RANGES`) and offset (right scale, fixed) over time."""
        top, bottom = self._chart
        if bottom - top <= 20:
            return
        plot_top, plot_bottom = self._plot
        steers = [v for h in self._hist for v in (h.steer_predicted, h.steer_applied, h.steer_expert)
                  if v is not None and math.isfinite(v)]
        peak = max((abs(v) for v in steers), default=0.0)
        steer_range = next((r for r in STEER_RANGES if peak <= r), STEER_RANGES[-1])
        if len(self._hist) >= 2:
            self._draw_curves(img, now_s, steer_range)
        # The scales last, on a dark box, so that no curve hides them.
        offset = f"{self.offset_range_m:g} m"
        for text, x_left, y, colour in ((f"+{steer_range:g}", True, plot_top, LABEL_RGB),
                                        (f"-{steer_range:g}", True, plot_bottom, LABEL_RGB),
                                        ("+" + offset, False, plot_top, OFFSET_RGB),
                                        ("-" + offset, False, plot_bottom, OFFSET_RGB)):
            (tw, th), _ = cv2.getTextSize(text, FONT, self._small, 1)
            x = 7 if x_left else self.w - 8 - tw
            base = y + th + 2 if y == plot_top else y - 2
            cv2.rectangle(img, (x - 2, base - th - 2), (x + tw + 1, base + 2), BACKGROUND_RGB, -1)
            cv2.putText(img, text, (x, base), FONT, self._small, colour, 1, cv2.LINE_AA)

    def _draw_curves(self, img: np.ndarray, now_s: float, steer_range: float) -> None:
        plot_top, plot_bottom = self._plot
        half_h = (plot_bottom - plot_top) / 2.0
        mid = (plot_top + plot_bottom) / 2.0
        x0, x1 = 5, self.w - 6
        ts = np.array([h.sim_time_s for h in self._hist])
        xs = x1 - (now_s - ts) / self.history_s * (x1 - x0)

        def line(values, colour, scale):
            v = np.array(values, np.float64)
            ok = np.isfinite(v)
            if ok.sum() < 2:
                return
            ys = mid - np.clip(v[ok] / scale, -1, 1) * half_h  # positive (right) up
            pts = np.stack([xs[ok], ys], axis=1).round().astype(np.int32)
            cv2.polylines(img, [pts], False, colour, self._thick, cv2.LINE_AA)

        line([h.lateral_offset_m for h in self._hist], OFFSET_RGB, self.offset_range_m)
        line([np.nan if h.steer_expert is None else h.steer_expert for h in self._hist], EXPERT_RGB, steer_range)
        line([h.steer_applied for h in self._hist], APPLIED_RGB, steer_range)
        line([np.nan if h.steer_predicted is None else h.steer_predicted for h in self._hist], PREDICTED_RGB,
             steer_range)


# -- maps on tiles ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class MapPanel:
    """One saliency tile.

    Attributes:
        map: ``(H, W)`` float32 normalised map on the tile (``[0, 1]``, or ``[-1, 1]`` when signed).
        signed: the map keeps its sign.
        method: method name for the caption.
        target: target for the caption (``right``, ``auto->left``, ...).
        steer: the steering this model predicted for the frame.
        label: optional prefix (the model, in an A/B video).
    """

    map: np.ndarray
    signed: bool
    method: str
    target: str
    steer: float
    label: str = ""

    def caption(self, frame: int) -> str:
        head = f"{self.label}: " if self.label else ""
        target = f" | {self.target}" if self.target and self.target != "-" else ""
        return f"{head}{self.method}{target} | frame {frame} | steer {self.steer:+.2f}"


@dataclass(frozen=True)
class LayoutSpec:
    """Geometry of an attention video frame.

    Attributes:
        tile_width_px: width of each tile; 0 = the camera width, capped at 480.
        columns: tiles per row; 0 = all tiles in one row.
        caption_px: height of each tile's caption bar.
        alpha: map opacity.
        telemetry: draw the telemetry tile.
        history_s: [s] span of the telemetry chart.
    """

    tile_width_px: int = 0
    columns: int = 0
    caption_px: int = 18
    alpha: float = 0.5
    telemetry: bool = True
    history_s: float = 6.0


class AttentionLayout:
    """Composes video frames: camera | map tiles | telemetry, in a grid with captions.

    Args:
        camera_hw: ``(H, W)`` of the camera frames.
        n_maps: number of map tiles per frame.
        spec: geometry.
        preprocessing: the model's :class:`~carla_agent.network.preprocess.Preprocessing`, to
            put model-size maps on the tiles (:meth:`project`) and draw maps only inside the crop.
    """

    def __init__(self, camera_hw: Tuple[int, int], n_maps: int, spec: LayoutSpec = LayoutSpec(),
                 preprocessing=None) -> None:
        ch, cw = int(camera_hw[0]), int(camera_hw[1])
        tw = spec.tile_width_px or min(cw, 480)
        th = max(16, int(round(ch * tw / cw)))
        self.spec = spec
        self.camera_hw = (ch, cw)
        self.tile_hw = (th, tw)
        self.n_maps = int(n_maps)
        self.preprocessing = preprocessing
        self.n_tiles = 1 + self.n_maps + int(spec.telemetry)
        self.columns = spec.columns or self.n_tiles
        self.rows = math.ceil(self.n_tiles / self.columns)
        cell_h = th + spec.caption_px
        height = self.rows * cell_h
        width = self.columns * tw
        self.size_wh = (width + width % 2, height + height % 2)  # even, for yuv420p
        self._region = preprocessing.crop_box(self.tile_hw) if preprocessing is not None else None
        self.strip = TelemetryStrip(self.tile_hw, spec.history_s) if spec.telemetry else None
        self._canvas = np.empty((self.size_wh[1], self.size_wh[0], 3), np.uint8)
        self._canvas[:] = BACKGROUND_RGB

    def reset(self) -> None:
        """Forget the telemetry history (a new video)."""
        if self.strip is not None:
            self.strip.reset()

    def project(self, model_map: np.ndarray) -> np.ndarray:
        """A ``(h, w)`` model-input-size map -> ``(H, W)`` on the tile (zero outside the crop)."""
        if self.preprocessing is None:
            return cv2.resize(np.asarray(model_map, np.float32), self.tile_hw[::-1], interpolation=cv2.INTER_LINEAR)
        return self.preprocessing.project_map(np.asarray(model_map, np.float32), self.tile_hw)

    def camera_tile(self, image: np.ndarray) -> np.ndarray:
        """Resize a camera frame to the tile size."""
        if image.shape[:2] == self.tile_hw:
            return image
        interp = cv2.INTER_AREA if image.shape[1] > self.tile_hw[1] else cv2.INTER_LINEAR
        return cv2.resize(image, self.tile_hw[::-1], interpolation=interp)

    def compose(self, image: np.ndarray, panels: Sequence[MapPanel], telemetry: DriveTelemetry,
                camera_caption: Optional[str] = None) -> np.ndarray:
        """One video frame: ``(size_wh[1], size_wh[0], 3)`` uint8 RGB.

        Args:
            image: ``(H, W, 3)`` uint8 RGB camera frame (any size; resized to the tile).
            panels: ``n_maps`` map tiles; their maps already on the tile (:meth:`project`) and normalised.
            telemetry: the frame's telemetry.
            camera_caption: default ``camera | t .. s | frame ..``.
        """
        if len(panels) != self.n_maps:
            raise ValueError(f"layout has {self.n_maps} map tile(s), got {len(panels)} panel(s)")
        out = self._canvas.copy()
        cam = self.camera_tile(image)
        tiles: List[Tuple[np.ndarray, str]] = [
            (cam, camera_caption or f"camera | t {telemetry.sim_time_s:.2f} s | frame {telemetry.frame}")]
        for p in panels:
            if p.map.shape != self.tile_hw:
                raise ValueError(f"panel map is {p.map.shape}, tiles are {self.tile_hw}; use layout.project()")
            overlaid = overlay(cam, p.map, "heat", self.spec.alpha, p.signed, region=self._region)
            tiles.append((overlaid, p.caption(telemetry.frame)))
        if self.strip is not None:
            tiles.append((self.strip.draw(telemetry), "telemetry"))
        th, tw = self.tile_hw
        cap = self.spec.caption_px
        scale = max(0.3, min(0.45, cap / 40.0))
        for k, (tile, caption) in enumerate(tiles):
            r, c = divmod(k, self.columns)
            y, x = r * (th + cap), c * tw
            out[y + cap:y + cap + th, x:x + tw] = tile
            if cap >= 8:
                text, s = _fit(caption, tw - 8, scale)
                cv2.putText(out, text, (x + 4, y + cap - 5), FONT, s, CAPTION_RGB, 1, cv2.LINE_AA)
        return out


def _fit(text: str, width_px: int, scale: float, min_scale: float = 0.3) -> Tuple[str, float]:
    """``(text, scale)`` that fit ``width_px``: a smaller font first, then an ellipsis."""
    (w, _), _ = cv2.getTextSize(text, FONT, scale, 1)
    if w <= width_px:
        return text, scale
    while w > width_px and scale > min_scale:
        scale = max(min_scale, scale * 0.93)
        (w, _), _ = cv2.getTextSize(text, FONT, scale, 1)
    while w > width_px and len(text) > 4:
        text = text[:-3] + ".."
        (w, _), _ = cv2.getTextSize(text, FONT, scale, 1)
    return text, scale
