"""Colour maps and overlays for saliency maps. NumPy and OpenCV only.

Images in and out are ``(H, W, 3)`` uint8 RGB. Maps are ``(H, W)`` float, already
normalised (:mod:`carla_agent.saliency.normalize`): unsigned maps in [0, 1],
signed maps in [-1, 1]. A map at the model's input size is put on a camera
frame first with :func:`carla_agent.saliency.result.project_maps`.
"""

from __future__ import annotations

import cv2
import numpy as np

from carla_agent.registry import Registry

PUSHES_LEFT_RGB = (40, 110, 255)  # blue: the pixel pushes the output down (steer left)
PUSHES_RIGHT_RGB = (255, 90, 20)  # orange-red: pushes the output up (steer right)
NEUTRAL_RGB = (245, 245, 245)  # zero in the diverging map
NVIDIA_GREEN_RGB = (0, 255, 0)  # salient-pixel colour in NVIDIA's PilotNet figures


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.dtype} {image.shape}")
    return image


def _check_map(sal: np.ndarray, hw: tuple[int, int] | None = None) -> np.ndarray:
    sal = np.asarray(sal, np.float32)
    if sal.ndim != 2:
        raise ValueError(f"expected an (H, W) map, got shape {sal.shape}")
    if hw is not None and sal.shape != tuple(hw):
        raise ValueError(f"map is {sal.shape[0]}x{sal.shape[1]} but the image is {hw[0]}x{hw[1]}; "
                         "project the map onto the frame first (project_maps)")
    return sal


def _cv2_lut(code: int) -> np.ndarray:
    ramp = np.arange(256, dtype=np.uint8)[:, None]
    return cv2.applyColorMap(ramp, code)[:, 0, ::-1].copy()  # BGR -> RGB, (256, 3)


def _diverging_lut() -> np.ndarray:
    t = np.linspace(-1.0, 1.0, 256)[:, None]
    left, mid, right = (np.array(c, np.float64) for c in (PUSHES_LEFT_RGB, NEUTRAL_RGB, PUSHES_RIGHT_RGB))
    lut = np.where(t < 0, mid + (left - mid) * -t, mid + (right - mid) * t)
    return np.round(lut).astype(np.uint8)


COLORMAPS: Registry[np.ndarray] = Registry("colour map")
COLORMAPS.register("jet", _cv2_lut(cv2.COLORMAP_JET))
COLORMAPS.register("inferno", _cv2_lut(cv2.COLORMAP_INFERNO))
COLORMAPS.register("diverging", _diverging_lut())
SIGNED_COLORMAPS = frozenset({"diverging"})


def colorize(sal: np.ndarray, cmap: str = "jet") -> np.ndarray:
    """``(H, W)`` map -> ``(H, W, 3)`` uint8 RGB.

    ``jet`` and ``inferno`` take [0, 1]; ``diverging`` takes [-1, 1] (blue = pushes
    left, white = no effect, orange-red = pushes right). Values outside are clipped.
    """
    sal = _check_map(sal)
    lut = COLORMAPS.get(cmap)
    if cmap in SIGNED_COLORMAPS:
        idx = np.round((np.clip(sal, -1.0, 1.0) + 1.0) * 127.5)
    else:
        idx = np.round(np.clip(sal, 0.0, 1.0) * 255.0)
    return lut[idx.astype(np.intp)]


def blend(image: np.ndarray, colour: np.ndarray, alpha: float = 0.5,
          weight: np.ndarray | None = None) -> np.ndarray:
    """Alpha-blend ``colour`` over ``image``: ``(1 - a) * image + a * colour``.

    ``a = alpha`` everywhere, or ``alpha * weight`` per pixel when a ``(H, W)``
    weight in [0, 1] is given (so cold pixels show the camera image).
    """
    image = _check_image(image)
    colour = _check_image(colour)
    if colour.shape != image.shape:
        raise ValueError(f"colour image {colour.shape} does not match image {image.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    a = np.full(image.shape[:2], alpha, np.float32)
    if weight is not None:
        a = a * np.clip(_check_map(weight, image.shape[:2]), 0.0, 1.0)
    out = image.astype(np.float32) * (1.0 - a[..., None]) + colour.astype(np.float32) * a[..., None]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def overlay(image: np.ndarray, sal: np.ndarray, cmap: str = "jet", alpha: float = 0.5,
            by_strength: bool | None = None) -> np.ndarray:
    """Heat map over the camera image.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        sal: ``(H, W)`` normalised map ([0, 1], or [-1, 1] for ``diverging``).
        cmap: ``jet``, ``inferno`` or ``diverging`` (for signed maps).
        alpha: opacity of the colour where the map is strongest.
        by_strength: scale the opacity by |map| so the image shows where the map
            is weak. Default: on for ``diverging``, off for heat maps.
    """
    image = _check_image(image)
    sal = _check_map(sal, image.shape[:2])
    if by_strength is None:
        by_strength = cmap in SIGNED_COLORMAPS
    weight = np.abs(sal) if by_strength else None
    return blend(image, colorize(sal, cmap), alpha, weight)


def salient_mask(sal: np.ndarray, threshold: float = 0.5, dilate_px: int = 3) -> np.ndarray:
    """NVIDIA's salient region: ``map >= threshold``, dilated by ``dilate_px`` pixels. ``(H, W)`` bool."""
    sal = _check_map(sal)
    mask = (np.abs(sal) >= threshold).astype(np.uint8)
    if dilate_px > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate_px + 1, 2 * dilate_px + 1))
        mask = cv2.dilate(mask, k)
    return mask.astype(bool)


def green_mask(image: np.ndarray, sal: np.ndarray, threshold: float = 0.5, dilate_px: int = 3,
               alpha: float = 0.6) -> np.ndarray:
    """NVIDIA's display (arXiv 1704.07911): salient pixels tinted green over the camera image."""
    image = _check_image(image)
    mask = salient_mask(_check_map(sal, image.shape[:2]), threshold, dilate_px)
    green = np.empty_like(image)
    green[:] = NVIDIA_GREEN_RGB
    return blend(image, green, alpha, mask.astype(np.float32))


def blur_background(image: np.ndarray, sal: np.ndarray, threshold: float = 0.3,
                    sigma_px: float = 6.0, feather_px: float = 4.0) -> np.ndarray:
    """Keep the salient region sharp and blur the rest (as in occlusion-map figures).

    Args:
        threshold: |map| at or above which a pixel counts as salient.
        sigma_px: [px] Gaussian blur of the background.
        feather_px: [px] softening of the mask edge.
    """
    image = _check_image(image)
    sal = _check_map(sal, image.shape[:2])
    blurred = cv2.GaussianBlur(image, (0, 0), sigmaX=max(sigma_px, 0.1))
    mask = (np.abs(sal) >= threshold).astype(np.float32)
    if feather_px > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=feather_px)
    mask = np.clip(mask, 0.0, 1.0)[..., None]
    out = image.astype(np.float32) * mask + blurred.astype(np.float32) * (1.0 - mask)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def default_cmap(signed: bool) -> str:
    """``diverging`` for signed maps, ``jet`` otherwise."""
    return "diverging" if signed else "jet"
