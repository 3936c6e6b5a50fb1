"""The car ahead, from a forward radar: what the SENSORS track gives an agent instead of
the simulator's lead-car truth.

The Leaderboard hands a ``sensor.other.radar`` reading over as an ``(N, 4)`` float array,
CARLA's detection layout (velocity, azimuth, altitude, depth) reversed by its callback:
columns ``depth`` [m], ``altitude`` [rad], ``azimuth`` [rad], ``velocity`` [m/s, positive
when the target moves away from the sensor].
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np

#: [m] a detection counts as in the lane when within this of the radar's axis, sideways ...
LANE_HALF_WIDTH_M = 1.4
#: ... and at least this far above the radar's horizon (the road surface returns below it).
MIN_ALTITUDE_RAD = -0.03
#: [m] detections nearer than this are the car's own body.
MIN_DEPTH_M = 0.5


def lead_from_radar(points: Optional[np.ndarray], ego_speed_mps: float,
                    sensor_ahead_m: float = 0.0) -> Tuple[Optional[float], Optional[float]]:
    """``(gap_m, lead_speed_mps)`` of the nearest detection in the lane ahead, or ``(None, None)``.

    Args:
        points: ``(N, 4)`` the Leaderboard's radar array (see the module docstring), or None.
        ego_speed_mps: [m/s] the car's own speed (a detection's velocity is relative to it).
        sensor_ahead_m: [m] how far the radar sits ahead of the front bumper (negative: behind it);
            the gap is measured from the bumper.
    """
    if points is None or len(points) == 0:
        return None, None
    p = np.asarray(points, dtype=np.float64).reshape(-1, 4)
    depth, alt, az, vel = p[:, 0], p[:, 1], p[:, 2], p[:, 3]
    lateral = depth * np.abs(np.sin(az))
    ahead = (depth > MIN_DEPTH_M) & (lateral <= LANE_HALF_WIDTH_M) & (alt >= MIN_ALTITUDE_RAD)
    if not ahead.any():
        return None, None
    k = int(np.flatnonzero(ahead)[np.argmin(depth[ahead])])
    gap = float(depth[k] * math.cos(az[k])) + sensor_ahead_m
    return max(gap, 0.0), max(float(ego_speed_mps + vel[k]), 0.0)


__all__ = ["lead_from_radar"]
