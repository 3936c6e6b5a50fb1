"""Temporal stability: SSIM between maps of consecutive frames whose steering barely changes."""

from __future__ import annotations

import numpy as np

from carla_agent.faithfulness.similarity import ssim


def temporal_stability(maps: np.ndarray, steer: np.ndarray, max_delta: float = 0.02) -> tuple:
    """``(mean SSIM, pairs used)`` over consecutive pairs with |steer[t+1] - steer[t]| <= ``max_delta``.

    ``maps`` ``(T, H, W)`` in frame order; ``steer`` ``(T,)`` the model output. ``nan`` when no pair qualifies.
    """
    steer = np.asarray(steer, np.float64).reshape(-1)
    pairs = [t for t in range(len(maps) - 1) if abs(steer[t + 1] - steer[t]) <= max_delta]
    if not pairs:
        return float("nan"), 0
    return float(np.mean([ssim(maps[t], maps[t + 1]) for t in pairs])), len(pairs)
