"""Deletion and insertion curves on |delta f| with a blurred baseline (RISE, Petsiuk et al. 2018).

For a regression output there is no class probability to watch fall, so the
score at step k is |f(x_k) - f(x)|, the change of the output (steering):

- *deletion*: the top-k most salient pixels of ``x`` are replaced by the
  blurred image. A faithful map moves the output early: a **high** AUC.
- *insertion*: start from the blurred image and put back the top-k pixels. A
  faithful map brings the output back early: a **low** AUC.

Compare a method with :func:`random_maps` and :func:`sobel_maps` (an edge
detector: "looks at edges" is not an explanation of the network).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from carla_agent.faithfulness.baseline import batched, blur_baseline

Model = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, eq=False)
class CurveResult:
    """Mean curves over frames.

    Attributes:
        fractions: ``(S,)`` share of pixels deleted / inserted, 0 .. 1.
        deletion: ``(S,)`` mean |f(x_k) - f(x)| with the top pixels blurred.
        insertion: ``(S,)`` mean |f(x_k) - f(x)| with only the top pixels kept sharp.
        deletion_auc: area under ``deletion`` (higher = more faithful).
        insertion_auc: area under ``insertion`` (lower = more faithful).
    """

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    deletion_auc: float
    insertion_auc: float

    @property
    def score(self) -> float:
        """``deletion_auc - insertion_auc``: higher = more faithful."""
        return self.deletion_auc - self.insertion_auc


def _auc(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0)


def pixel_order(maps: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """``(N, H*W)`` pixel indices, most salient (by |map|) first; ties broken at random (seeded)."""
    rng = rng or np.random.default_rng(0)
    flat = np.abs(np.asarray(maps, np.float64)).reshape(len(maps), -1)
    jitter = rng.random(flat.shape)  # secondary key only
    return np.lexsort((jitter, -flat), axis=-1)


def deletion_insertion(f: Model, images: np.ndarray, maps: np.ndarray, steps: int = 20,
                       baseline: np.ndarray | None = None, batch: int = 256,
                       rng: np.random.Generator | None = None) -> CurveResult:
    """Deletion and insertion curves of ``maps`` for ``f`` on ``images``.

    Args:
        f: model callable, ``(N, H, W, C) float32 -> (N,)`` (the explained output).
        images: ``(N, H, W, C)`` model inputs.
        maps: ``(N, H, W)`` saliency maps at input size (|map| is ranked).
        steps: number of intervals; the curves have ``steps + 1`` points.
        baseline: ``(N, H, W, C)`` replacement images; default :func:`blur_baseline`.
        batch: forward-pass batch size.
    """
    images = np.asarray(images, np.float32)
    maps = np.asarray(maps)
    n, h, w = maps.shape
    if images.shape[:3] != (n, h, w):
        raise ValueError(f"images {images.shape} and maps {maps.shape} disagree on (N, H, W)")
    base = blur_baseline(images) if baseline is None else np.asarray(baseline, np.float32)
    fractions = np.linspace(0.0, 1.0, steps + 1)
    counts = np.round(fractions * h * w).astype(int)
    order = pixel_order(maps, rng)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(h * w)[None, :].repeat(n, 0), axis=1)
    rank = rank.reshape(n, h, w)

    y0 = batched(f, images, batch)
    dele = np.zeros((n, steps + 1))
    ins = np.zeros((n, steps + 1))
    per = max(1, batch // (steps + 1))
    for s in range(0, n, per):
        e = min(n, s + per)
        keep = rank[s:e, None, :, :, None] < counts[None, :, None, None, None]  # (b, S, H, W, 1) top-k mask
        x = images[s:e, None]
        b = base[s:e, None]
        d_imgs = np.where(keep, b, x).reshape(-1, *images.shape[1:])
        i_imgs = np.where(keep, x, b).reshape(-1, *images.shape[1:])
        out = batched(f, np.concatenate([d_imgs, i_imgs]), batch).reshape(2, e - s, steps + 1)
        dele[s:e] = np.abs(out[0] - y0[s:e, None])
        ins[s:e] = np.abs(out[1] - y0[s:e, None])
    d, i = dele.mean(0), ins.mean(0)
    return CurveResult(fractions, d, i, _auc(fractions, d), _auc(fractions, i))


def random_maps(shape, rng: np.random.Generator | None = None, smooth_px: float = 4.0) -> np.ndarray:
    """``(N, H, W)`` random maps: smoothed uniform noise (blobs, like a real map, but meaningless)."""
    rng = rng or np.random.default_rng(0)
    noise = rng.random(tuple(shape)).astype(np.float32)
    if smooth_px > 0:
        noise = np.stack([cv2.GaussianBlur(m, (0, 0), smooth_px) for m in noise])
    return noise


def sobel_maps(images: np.ndarray) -> np.ndarray:
    """``(N, H, W)`` gradient-magnitude (Sobel) maps of the images' grey level: an edge detector."""
    images = np.asarray(images, np.float32)
    grey = images.mean(axis=-1)
    out = np.empty(grey.shape, np.float32)
    for i, g in enumerate(grey):
        gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
        out[i] = np.hypot(gx, gy)
    return out
