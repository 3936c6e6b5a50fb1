"""A sensor's pose in CARLA's world frame, as the ray casts and the frame conversions need it.

CARLA's frame is left-handed: x forward, y right, z up; ``yaw`` turns x toward y. The rotation
matrix is :func:`rotation`'s, the one of ``carla.Transform.get_matrix()`` (LibCarla
``geom/Transform.h``): its columns are the sensor's forward, right and up axes in the world.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def rotation(pitch_deg: float, yaw_deg: float, roll_deg: float) -> np.ndarray:
    """``(3, 3)`` float64 rotation of a CARLA ``Rotation`` (degrees): sensor axes -> world."""
    p, y, r = (math.radians(v) for v in (pitch_deg, yaw_deg, roll_deg))
    cp, sp, cy, sy, cr, sr = math.cos(p), math.sin(p), math.cos(y), math.sin(y), math.cos(r), math.sin(r)
    return np.array([[cp * cy, cy * sp * sr - sy * cr, -cy * sp * cr - sy * sr],
                     [cp * sy, sy * sp * sr + cy * cr, -sy * sp * cr + cy * sr],
                     [sp, -cp * sr, cp * cr]])


@dataclass(frozen=True)
class SensorPose:
    """``origin_m``: ``(3,)`` float64 world position (m); ``rot``: ``(3, 3)`` float64 sensor -> world;
    ``transform``: ``(x, y, z, pitch, yaw, roll)`` as the sensor header carries it (m, degrees)."""

    origin_m: np.ndarray
    rot: np.ndarray
    transform: tuple

    @staticmethod
    def of(transform: tuple) -> "SensorPose":
        x, y, z, pitch, yaw, roll = (float(v) for v in transform)
        return SensorPose(np.array([x, y, z]), rotation(pitch, yaw, roll), (x, y, z, pitch, yaw, roll))

    def to_world(self, dirs: np.ndarray) -> np.ndarray:
        """``(N, 3)`` directions in the sensor's frame -> the world's (same dtype)."""
        return dirs @ self.rot.T.astype(dirs.dtype)
