"""The speed a car may carry into the bends of its path ahead: a lateral-acceleration limit.

CARLA's agents hold one target speed through junctions; on a town's tight
junction turns (6 to 15 m radius) that speed throws the car wide of its lane.
:func:`curve_speed_mps` caps the target so that the lateral acceleration in
every bend ahead stays under ``max_lateral_mps2``, braking towards each bend at
no more than ``decel_mps2`` (so the cap falls smoothly as a bend nears). With
the default 3 m/s^2, bends of the single-road scenarios (radius 22 m and more at
their speeds) are never limited.
"""

from __future__ import annotations

import math

import numpy as np

#: Largest lateral acceleration held in a bend, m/s^2 (a comfortable town turn).
MAX_LATERAL_MPS2 = 3.0
#: Braking towards a bend, m/s^2.
CURVE_DECEL_MPS2 = 2.5


def curve_speed_mps(path_xy_m: np.ndarray, max_lateral_mps2: float = MAX_LATERAL_MPS2,
                    decel_mps2: float = CURVE_DECEL_MPS2) -> float:
    """The highest speed (m/s) from which every bend of ``path_xy_m`` can be taken.

    Args:
        path_xy_m: ``(N, 2)`` points ahead of the car in its frame (x forward, y right, metres), at
            increasing distance (``GroundTruth.route_ahead``). Fewer than 3 points: no limit.

    Returns:
        ``inf`` on a straight path; otherwise ``min_i sqrt(a_lat / |k_i| + 2 * decel * d_i)`` over the
        path's points ``i`` at distance ``d_i`` with curvature ``k_i``.
    """
    p = np.asarray(path_xy_m, dtype=np.float64).reshape(-1, 2)
    p = np.concatenate([np.zeros((1, 2)), p])  # from the car
    seg = np.diff(p, axis=0)
    length = np.hypot(seg[:, 0], seg[:, 1])
    keep = length > 1e-3
    seg, length = seg[keep], length[keep]
    if len(seg) < 3:
        return math.inf
    heading = np.unwrap(np.arctan2(seg[:, 1], seg[:, 0]))
    # Curvature at each inner point: the heading change over the mean of the two segments.
    k = np.abs(np.diff(heading)) / (0.5 * (length[1:] + length[:-1]))
    # The first segment runs from the car's centre to the path: no bend of its own. Distances are
    # counted from the path's first point (a bend the car is in is held now).
    k = k[1:]
    dist = np.cumsum(length)[1:-1] - length[0]
    with np.errstate(divide="ignore"):
        v2 = np.where(k > 1e-6, max_lateral_mps2 / np.maximum(k, 1e-12), np.inf) + 2.0 * decel_mps2 * dist
    return float(math.sqrt(float(np.min(v2)))) if len(v2) else math.inf
