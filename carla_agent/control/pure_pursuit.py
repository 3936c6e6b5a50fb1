"""Pure pursuit: the steering that reaches a point of the lane centre one look-ahead away.

Plain NumPy on points in the vehicle frame, so both simulators (for ground truth's
``expert_steer``) and the expert driver use the same law without importing each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PurePursuitParams:
    wheelbase_m: float = 2.87
    max_steer_deg: float = 30.0
    lookahead_min_m: float = 4.0
    lookahead_s: float = 0.55  # lookahead grows with speed: L = max(min, k * v)
    lookahead_max_m: float = 20.0


def pure_pursuit_steer(route_ahead: np.ndarray, speed_mps: float,
                       params: PurePursuitParams = PurePursuitParams()) -> float:
    """Normalised steer in [-1, 1] (positive right) toward the lane centre.

    Args:
        route_ahead: ``(N, 2)`` lane-centre points in the vehicle frame
            (x forward, y right, metres), ordered by distance.
        speed_mps: current speed.
    """
    pts = np.asarray(route_ahead, dtype=np.float64)
    if pts.size == 0:
        return 0.0
    lookahead = min(params.lookahead_max_m, max(params.lookahead_min_m, params.lookahead_s * speed_mps))
    dist = np.hypot(pts[:, 0], pts[:, 1])
    idx = int(np.searchsorted(dist, lookahead))
    if idx >= len(pts):
        target = pts[-1]
    elif idx == 0:
        target = pts[0]
    else:  # interpolate to exactly the lookahead distance
        d0, d1 = dist[idx - 1], dist[idx]
        f = (lookahead - d0) / max(d1 - d0, 1e-6)
        target = pts[idx - 1] + f * (pts[idx] - pts[idx - 1])
    ld2 = float(target[0] ** 2 + target[1] ** 2)
    if ld2 < 1e-6:
        return 0.0
    curvature = 2.0 * float(target[1]) / ld2  # positive: turn right
    angle = math.atan(params.wheelbase_m * curvature)
    return float(np.clip(angle / math.radians(params.max_steer_deg), -1.0, 1.0))
