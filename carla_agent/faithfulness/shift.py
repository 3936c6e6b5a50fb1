"""NVIDIA's shift test (Bojarski et al. 2017, arXiv 1704.07911, section 4).

Shift laterally (1) only the salient region (map thresholded, then dilated),
(2) only the rest of the image, (3) the whole image, and compare the change
of the output. A faithful map: salient/whole near 1, rest/whole near 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from carla_agent.faithfulness.baseline import batched


@dataclass(frozen=True)
class ShiftResult:
    """Mean |delta f| per shift kind, and the two ratios.

    Attributes:
        salient: mean |f(shift salient only) - f(x)|.
        rest: mean |f(shift rest only) - f(x)|.
        whole: mean |f(shift whole image) - f(x)|.
        salient_ratio: ``salient / whole`` (near 1 = faithful).
        rest_ratio: ``rest / whole`` (near 0 = faithful).
        salient_area: mean share of pixels in the salient mask.
    """

    salient: float
    rest: float
    whole: float
    salient_ratio: float
    rest_ratio: float
    salient_area: float


def salient_masks(maps: np.ndarray, top_fraction: float = 0.1, dilate_px: int = 2) -> np.ndarray:
    """``(N, H, W)`` float32 masks: the ``top_fraction`` most salient pixels (|map|), dilated."""
    maps = np.abs(np.asarray(maps, np.float32))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate_px + 1, 2 * dilate_px + 1))
    out = np.empty(maps.shape, np.float32)
    for i, m in enumerate(maps):
        thr = np.quantile(m, 1.0 - top_fraction)
        mask = (m >= thr) if m.max() > m.min() else np.zeros(m.shape, bool)
        out[i] = cv2.dilate(mask.astype(np.uint8), kernel) if dilate_px > 0 else mask
    return out


def shift_images(images: np.ndarray, shift_px: float) -> np.ndarray:
    """Images shifted right by ``shift_px`` (negative: left); edges replicated."""
    images = np.asarray(images, np.float32)
    h, w = images.shape[1:3]
    mat = np.float32([[1, 0, shift_px], [0, 1, 0]])
    return np.stack([cv2.warpAffine(im, mat, (w, h), borderMode=cv2.BORDER_REPLICATE).reshape(im.shape)
                     for im in images])


def shift_test(f: Callable[[np.ndarray], np.ndarray], images: np.ndarray, maps: np.ndarray,
               shift_px: float = 10.0, top_fraction: float = 0.1, dilate_px: int = 2,
               batch: int = 256) -> ShiftResult:
    """Shift test of ``maps`` for ``f``. Each image is shifted both ways (+/- ``shift_px``); the mask stays put."""
    images = np.asarray(images, np.float32)
    masks = salient_masks(maps, top_fraction, dilate_px)[..., None]
    n = len(images)
    variants = []
    for sign in (1.0, -1.0):
        moved = shift_images(images, sign * shift_px)
        variants += [masks * moved + (1 - masks) * images, masks * images + (1 - masks) * moved, moved]
    y0 = batched(f, images, batch)
    out = batched(f, np.concatenate([images[:0]] + variants), batch).reshape(2, 3, n)
    delta = np.abs(out - y0[None, None, :]).mean(axis=(0, 2))  # (3,) salient, rest, whole
    whole = float(delta[2])
    safe = whole if whole > 0 else np.inf
    return ShiftResult(float(delta[0]), float(delta[1]), whole, float(delta[0] / safe), float(delta[1] / safe),
                       float(masks.mean()))
