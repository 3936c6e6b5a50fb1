"""The one compositor of a saliency map over its camera frame, fast: the live HUD and the
attention videos both draw with :func:`compose`. NumPy/OpenCV only.

These styles look the same as :mod:`carla_agent.saliency.overlay` (the same colour
tables, NVIDIA green, thresholds and blur), which holds the plain reference versions.
They are built from OpenCV's vectorised uint8 kernels (``cv2.LUT``, ``cv2.addWeighted``,
``cv2.blendLinear``) because the HUD composes one every frame inside a 4 ms budget; the
reference functions take about 3.5 ms for a 480x140 crop. ``tests/test_hud.py`` checks
that both agree.

Maps are composed only inside the network's crop (``region``): outside it the
network saw nothing, so the camera pixels stay untouched (``map`` style: black).

Styles (the HUD's O key cycles them, in this order; videos use ``heat``):

* ``heat``: jet colours at a uniform opacity (signed maps: the diverging map,
  opacity scaled by |map|, as :func:`~carla_agent.saliency.overlay.overlay`);
* ``strength``: the same colours, opacity scaled by |map| (cold pixels show the camera);
* ``green``: NVIDIA's display, salient pixels (|map| >= 0.5, dilated) tinted green;
* ``blur``: salient region sharp, the rest blurred;
* ``map``: the coloured map alone.
"""

from __future__ import annotations

from typing import Callable, Dict, Tuple

import cv2
import numpy as np

from carla_agent.saliency.overlay import COLORMAPS, NVIDIA_GREEN_RGB, default_cmap

Box = Tuple[int, int, int, int]  # top, bottom, left, right in pixels

OVERLAY_STYLES: Tuple[str, ...] = ("heat", "strength", "green", "blur", "map")
GREEN_THRESHOLD = 0.5  # |map| at or above which a pixel is salient (NVIDIA's display)
GREEN_DILATE_PX = 3
BLUR_THRESHOLD = 0.3
BLUR_SIGMA_PX = 6.0
BLUR_FEATHER_PX = 4.0

_LUTS: Dict[str, np.ndarray] = {name: COLORMAPS.get(name).reshape(1, 256, 3).copy() for name in COLORMAPS.names()}
_DILATE = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * GREEN_DILATE_PX + 1, 2 * GREEN_DILATE_PX + 1))


def colorize_fast(sal: np.ndarray, signed: bool) -> np.ndarray:
    """``(H, W)`` float32 normalised map ([0, 1], or [-1, 1] when signed) -> ``(H, W, 3)`` uint8 RGB.

    Jet for unsigned maps, the diverging map (blue left, orange-red right) for signed ones.
    """
    sal = np.ascontiguousarray(sal, np.float32)
    if signed:
        idx = cv2.convertScaleAbs(np.clip(sal, -1.0, 1.0), alpha=127.5, beta=127.5)
    else:
        idx = cv2.convertScaleAbs(np.clip(sal, 0.0, 1.0), alpha=255.0)
    return cv2.LUT(cv2.merge((idx, idx, idx)), _LUTS[default_cmap(signed)])


def _blend(image: np.ndarray, colour: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``image * (1 - w) + colour * w`` per pixel; ``weight`` ``(H, W)`` float32 in [0, 1]."""
    w = np.ascontiguousarray(weight, np.float32)
    return cv2.blendLinear(image, colour, 1.0 - w, w)


def _heat(image, sal, alpha, signed):
    colour = colorize_fast(sal, signed)
    if signed:
        return _blend(image, colour, np.abs(sal) * alpha)
    return cv2.addWeighted(image, 1.0 - alpha, colour, alpha, 0.0)


def _strength(image, sal, alpha, signed):
    return _blend(image, colorize_fast(sal, signed), np.clip(np.abs(sal), 0.0, 1.0) * alpha)


def _green(image, sal, alpha, signed):
    mask = (np.abs(sal) >= GREEN_THRESHOLD).astype(np.uint8)
    mask = cv2.dilate(mask, _DILATE)
    green = np.empty_like(image)
    green[:] = NVIDIA_GREEN_RGB
    return _blend(image, green, mask.astype(np.float32) * alpha)


def _half_blur(x: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur computed at half resolution (4x fewer pixels; the result is smooth anyway)."""
    h, w = x.shape[:2]
    if h < 16 or w < 16:
        return cv2.GaussianBlur(x, (0, 0), sigmaX=sigma_px)
    small = cv2.resize(x, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=0.5 * sigma_px)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _blur(image, sal, alpha, signed):
    blurred = _half_blur(image, BLUR_SIGMA_PX)
    mask = (np.abs(sal) >= BLUR_THRESHOLD).astype(np.float32)
    mask = np.clip(_half_blur(mask, BLUR_FEATHER_PX), 0.0, 1.0)
    return _blend(blurred, image, mask)


def _map(image, sal, alpha, signed):
    return colorize_fast(sal, signed)


_STYLES: Dict[str, Callable[[np.ndarray, np.ndarray, float, bool], np.ndarray]] = {
    "heat": _heat, "strength": _strength, "green": _green, "blur": _blur, "map": _map,
}


def compose(frame: np.ndarray, sal: np.ndarray, style: str = "heat", alpha: float = 0.5,
            signed: bool = False, region: Box | None = None) -> np.ndarray:
    """The map over its frame, inside ``region`` only.

    Args:
        frame: ``(H, W, 3)`` uint8 RGB, the frame the map was computed from.
        sal: ``(H, W)`` float32 normalised map on that frame (see
            :func:`carla_agent.saliency.result.project_maps`).
        style: one of :data:`OVERLAY_STYLES`.
        alpha: opacity of the colour where the map is strongest, in [0, 1].
        signed: the map keeps its sign ([-1, 1], diverging colours).
        region: ``(top, bottom, left, right)`` where the map is defined; the
            whole frame when None.

    Returns:
        A new ``(H, W, 3)`` uint8 RGB image.

    Raises:
        ValueError: unknown style (lists the known ones) or mismatched shapes.
    """
    if style not in _STYLES:
        raise ValueError(f"unknown overlay style {style!r}; known styles: {', '.join(OVERLAY_STYLES)}")
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {frame.dtype} {frame.shape}")
    if sal.shape != frame.shape[:2]:
        raise ValueError(f"map is {sal.shape} but the frame is {frame.shape[:2]}; project the map first")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    t, b, l, r = region if region is not None else (0, frame.shape[0], 0, frame.shape[1])
    out = np.zeros_like(frame) if style == "map" else frame.copy()
    if b > t and r > l:
        sub = np.ascontiguousarray(frame[t:b, l:r])
        out[t:b, l:r] = _STYLES[style](sub, np.ascontiguousarray(sal[t:b, l:r], np.float32), float(alpha), signed)
    return out
