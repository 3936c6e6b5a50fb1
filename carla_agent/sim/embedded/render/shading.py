"""Light and fog of the embedded renderer: the ground's per-pixel light and haze, objects' light and fog.

The ground's transform (headlight pool, fog, wet sheen) is precomputed per
camera and weather and applied to the ground rows with one multiply-add;
objects and vehicles are lit per face by :func:`ambient_at` and the sun, then
fogged by :func:`finish`. Functions take the
:class:`~carla_agent.sim.embedded.render.Renderer` ``ren`` whose state they
read and set.
"""

from __future__ import annotations

from typing import List

import cv2
import numpy as np

from carla_agent.sim.embedded.camera import Camera
from carla_agent.sim.embedded.render.palette import L_ROAD, L_SHOULDER

#: Ego headlamps: metres ahead of the vehicle centre, half the spacing, height.
LAMP_FORWARD_M, LAMP_HALF_SPACING_M = 2.3, 0.75
#: Colour of the ego's headlights (warm white), as a light multiplier.
_HEADLIGHT_RGB = np.array([1.0, 0.97, 0.9])


def headlight_light(cam: Camera, fwd_m: np.ndarray, left_m: np.ndarray) -> np.ndarray:
    """Ego headlight illuminance (0..~1) at ground offsets from the camera (forward, left; metres).

    Per lamp: a beam that spreads wide close to the car and narrows with
    distance, rising within the first metres and fading past ~45 m (the low
    beam's cut-off), aimed slightly right (the kerb side in right-hand traffic).
    """
    x = fwd_m + cam.mount_forward_m - LAMP_FORWARD_M
    total = np.zeros(np.shape(x))
    for lamp_left in (LAMP_HALF_SPACING_M, -LAMP_HALF_SPACING_M):
        y = left_m + cam.mount_left_m - lamp_left
        r = np.hypot(x, y)
        phi = np.arctan2(y, np.maximum(x, 1e-3)) + 0.05
        spread = 0.32 + 0.5 * np.exp(-r / 7.0) + np.where(phi < 0, 0.08, 0.0)
        cone = np.exp(-(phi / spread) ** 2) * (x > 0)
        reach = (1.0 - 0.7 * np.exp(-(r / 1.5) ** 2)) * np.exp(-(r / 45.0) ** 2)
        total = total + 0.55 * cone * reach
    return total


def build_post(ren) -> None:
    """Per-pixel ground light and fog: ``out = img * G / 255 + A`` on rows ``[r0, r1)``."""
    cam, w = ren.camera, ren.weather
    H, W = ren.height_px, ren.width_px
    hr = cam.horizon_row
    fwd, left, rng_m = cam.pixel_rays()
    fwd, left, rng_m = fwd[hr:], left[hr:], rng_m[hr:]
    finite = np.isfinite(rng_m)
    d = np.where(finite, rng_m, 1e9)
    f = np.minimum(np.where(finite, w.fog_fraction(d), 1.0), ren._ground_fog_cap)
    if w.headlights:
        e = headlight_light(cam, np.where(finite, fwd, 1e9), np.where(finite, left, 0.0))
        light = np.array(w.ambient_rgb)[None, None, :] + (w.headlight_gain * e)[..., None] * \
            np.array([1.0, 0.97, 0.9])
        gain = np.clip(light / np.array(ren._palette_light), 0.0, 1.0)
    else:
        gain = np.ones((H - hr, W, 3))
    G = gain * (1.0 - f[..., None])
    A = np.array(w.fog_rgb, np.float64) * f[..., None]
    # Only rows where the transform changes something are processed each frame.
    changes = (np.abs(G - 1.0) > 0.5 / 255.0).any(axis=(1, 2)) | (A > 0.5).any(axis=(1, 2))
    rows = np.nonzero(changes)[0]
    r0 = hr + (int(rows.min()) if rows.size else 0)
    r1 = hr + (int(rows.max()) + 1 if rows.size else 0)
    ren._post_rows = (r0, max(r0, r1))
    sl = slice(r0 - hr, r1 - hr)
    ren._post_G = np.clip(np.rint(G[sl] * 255.0), 0, 255).astype(np.uint8)
    ren._post_A = np.clip(np.rint(A[sl]), 0, 255).astype(np.uint8)
    # Wet asphalt mirrors the sky, more at grazing angles (Schlick's Fresnel term).
    ren._sheen = None
    if w.wetness > 0.05:
        cos_i = np.clip(np.where(finite, cam.height_m / np.maximum(d, 1e-6), 1.0), 0.0, 1.0)
        fres = 0.04 + 0.96 * (1.0 - cos_i) ** 5
        refl = np.array(w.sky_horizon_rgb, np.float64) * 0.5 * w.wetness
        sheen = fres[..., None] * refl * (1.0 - f[..., None])
        ren._sheen = np.clip(np.rint(sheen), 0, 255).astype(np.uint8)


def apply_post(ren, rgb: np.ndarray, sem: np.ndarray, row0: int) -> None:
    """Wet sheen, then ground light and fog (``rgb``/``sem`` are the ground rows from ``row0``)."""
    if ren._sheen is not None:
        mask = cv2.inRange(sem, L_ROAD, L_SHOULDER)
        cv2.add(rgb, ren._sheen, dst=rgb, mask=mask)
    r0, r1 = ren._post_rows
    if r1 > r0:
        roi = rgb[r0 - row0:r1 - row0]
        cv2.multiply(roi, ren._post_G, dst=roi, scale=1.0 / 255.0)
        cv2.add(roi, ren._post_A, dst=roi)


def ambient_at(ren, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Light other than direct sun at world points: ambient plus the ego's headlights, ``(n, 3)``."""
    w = ren.weather
    amb = ren._amb_obj[None, :]
    if not w.headlights or len(x) == 0:
        return np.repeat(amb, len(x), axis=0)
    cam = ren.camera
    c, s = -cam._r[1], cam._r[0]  # heading from the camera's right vector (sin, -cos)
    dx, dy = x - cam._o[0], y - cam._o[1]
    e = headlight_light(cam, dx * c + dy * s, -dx * s + dy * c)
    return amb + (w.headlight_gain * e)[:, None] * _HEADLIGHT_RGB


def finish(ren, albedo: np.ndarray, light: np.ndarray, fog: np.ndarray) -> List[List[int]]:
    """Colours ``albedo * light`` (``(n, 3)`` each) blended toward the fog by ``fog`` ``(n,)``."""
    c = albedo * light
    c += (ren._fog_rgb - c) * fog[:, None]
    return np.minimum(np.maximum(c + 0.5, 0.0), 255.0).astype(np.int64).tolist()
