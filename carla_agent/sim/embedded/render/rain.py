"""Rain of the embedded renderer: streaks drawn over the finished frame, slanted by the wind.

Deterministic: the streaks come from the seed (``np.random.default_rng((seed,
4242))``) and repeat after :data:`RAIN_FRAMES` frames. Functions take the
:class:`~carla_agent.sim.embedded.render.Renderer` ``ren`` whose state they
read and set.
"""

from __future__ import annotations

import cv2
import numpy as np

from carla_agent.sim.embedded.render.palette import mix_rgb
from carla_agent.sim.embedded.render.polygons import AA, ONE, SHIFT

#: Rain streak patterns repeat after this many frames.
RAIN_FRAMES = 512


def build_rain(ren) -> None:
    """Streaks of :data:`RAIN_FRAMES` frames, from the seed: a faint many and a brighter few per frame.

    Drawn in frame order and repeating after RAIN_FRAMES frames (25.6 s at
    20 Hz), so a frame costs two ``polylines`` calls and no random draws.
    """
    w = ren.weather
    ren._rain_segs = None
    if w.rain <= 0.0:
        return
    H, W = ren.height_px, ren.width_px
    rng = np.random.default_rng((ren.seed, 4242))
    n = int(w.rain * W * H / 2500.0) + 2
    shape = (RAIN_FRAMES, n)
    x0 = rng.uniform(0.0, W, shape)
    y0 = rng.uniform(-0.1 * H, H, shape)
    length = rng.uniform(0.025, 0.07, shape) * H
    slant = 0.1 + rng.normal(0.0, 0.02, shape)
    segs = np.stack([np.stack([x0, y0], -1), np.stack([x0 + slant * length, y0 + length], -1)], axis=2)
    ren._rain_segs = np.rint((segs - 0.5) * ONE).astype(np.int32)  # (frames, n, 2, 2)
    light = (215, 220, 230) if not w.headlights else (120, 124, 132)
    ren._rain_rgb = (mix_rgb(w.fog_rgb, light, 0.22), mix_rgb(w.fog_rgb, light, 0.45))
    ren._rain_few = max(1, n // 5)


def draw_rain(ren, rgb: np.ndarray, frame: int) -> None:
    """This frame's streaks, slanted by the wind."""
    segs = ren._rain_segs[int(frame) % RAIN_FRAMES]
    few = ren._rain_few
    cv2.polylines(rgb, segs[few:], False, ren._rain_rgb[0], 1, AA, SHIFT)
    cv2.polylines(rgb, segs[:few], False, ren._rain_rgb[1], 1, AA, SHIFT)
