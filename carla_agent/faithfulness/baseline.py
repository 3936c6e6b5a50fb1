"""The blurred baseline: removes the detail a pixel carries without inventing edges (unlike black)."""

from __future__ import annotations

import cv2
import numpy as np

DEFAULT_SIGMA_PX = 8.0  # [px] at model input size


def blur_baseline(images: np.ndarray, sigma_px: float = DEFAULT_SIGMA_PX) -> np.ndarray:
    """Gaussian-blurred copy of each image ``(N, H, W, C)`` float32."""
    images = np.asarray(images, np.float32)
    out = np.empty_like(images)
    for i, im in enumerate(images):
        b = cv2.GaussianBlur(im, (0, 0), sigmaX=sigma_px, borderType=cv2.BORDER_REFLECT)
        out[i] = b.reshape(im.shape)
    return out


def batched(f, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """``f`` on ``images`` in chunks of ``batch``; concatenated ``(N,)`` float64."""
    if len(images) == 0:
        return np.zeros(0)
    return np.concatenate([np.asarray(f(images[i:i + batch]), np.float64).reshape(-1)
                           for i in range(0, len(images), batch)])
