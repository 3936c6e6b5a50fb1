"""Flip equivariance: a steering network should satisfy f(flip x) = -f(x), and its map map(flip x) = flip(map(x))."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from carla_agent.faithfulness.baseline import batched
from carla_agent.faithfulness.similarity import spearman, ssim


@dataclass(frozen=True)
class FlipResult:
    """Attributes:
        output_error: mean |f(flip x) + f(x)| (0 = equivariant output).
        output_scale: mean |f(x)|, to read ``output_error`` against.
        map_spearman: mean Spearman correlation of map(flip x) and flip(map(x)).
        map_ssim: mean SSIM of map(flip x) and flip(map(x)).
    """

    output_error: float
    output_scale: float
    map_spearman: float
    map_ssim: float


def maps_of(explain: Callable, images: np.ndarray) -> np.ndarray:
    """Maps from an explainer returning a ``SaliencyResult`` or an ``(N, H, W)`` array."""
    res = explain(np.asarray(images, np.float32))
    return np.asarray(getattr(res, "maps", res))


def flip_equivariance(f: Callable[[np.ndarray], np.ndarray], explain: Callable | None,
                      images: np.ndarray, maps: np.ndarray | None = None) -> FlipResult:
    """Flip test. ``explain`` may be ``None`` (output only); ``maps`` reuses already computed maps of ``images``."""
    images = np.asarray(images, np.float32)
    flipped = images[:, :, ::-1].copy()
    y = batched(f, np.concatenate([images, flipped]))
    n = len(images)
    err = float(np.mean(np.abs(y[n:] + y[:n])))
    scale = float(np.mean(np.abs(y[:n])))
    if explain is None:
        return FlipResult(err, scale, float("nan"), float("nan"))
    if maps is None:
        both = maps_of(explain, np.concatenate([images, flipped]))
        maps, maps_f = both[:n], both[n:]
    else:
        maps_f = maps_of(explain, flipped)
    back = np.asarray(maps_f)[:, :, ::-1]
    rho = np.mean([spearman(a, b) for a, b in zip(maps, back)])
    s = np.mean([ssim(a, b) for a, b in zip(maps, back)])
    return FlipResult(err, scale, float(rho), float(s))
