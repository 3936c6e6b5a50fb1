"""A pinhole camera mounted on a car, configured like CARLA's ``sensor.camera.rgb``.

Intrinsics follow CARLA: ``focal = W / (2 tan(fov / 2))`` pixels with the
principal point at the image centre ``(W / 2, H / 2)``. Image coordinates are
continuous with pixel ``(row i, column j)`` covering ``[j, j + 1) x [i, i + 1)``,
so a point projected to ``(u, v)`` lands in pixel ``(int(v), int(u))`` exactly as
with CARLA's ``K`` matrix, and pixel centres sit at half-integers.

Extrinsics come from the vehicle pose in OpenDRIVE's right-handed frame (x, y
in metres, yaw in radians counter-clockwise) on flat ground (z = 0) and the
mount of the :class:`~carla_agent.sim.scenario.CameraSpec`: ``x_m`` forward,
``y_m`` to the right (CARLA's left-handed vehicle frame), ``z_m`` up, and
``pitch_deg`` positive nose-up as in CARLA. Roll and camera yaw are zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Tuple

import numpy as np

#: Points nearer than this along the optical axis are "behind" the camera, metres.
NEAR_M = 0.05


@dataclass(frozen=True)
class CameraPose:
    """Camera position and axes in the world frame for one vehicle pose.

    Attributes:
        origin_m: ``(3,)`` float64 camera centre, metres.
        forward: ``(3,)`` unit optical axis.
        right: ``(3,)`` unit image-right axis (+u).
        up: ``(3,)`` unit image-up axis (-v).
    """

    origin_m: np.ndarray
    forward: np.ndarray
    right: np.ndarray
    up: np.ndarray


class Camera:
    """Projection for one :class:`~carla_agent.sim.scenario.CameraSpec`.

    Call :meth:`set_pose` with the vehicle pose each frame, then :meth:`project`.
    Everything that depends only on the spec (intrinsics, horizon row, ground
    distance of each row) is computed once here.
    """

    def __init__(self, spec) -> None:
        self.spec = spec
        self.width_px = int(spec.image_size_x)
        self.height_px = int(spec.image_size_y)
        self.fov_rad = math.radians(float(spec.fov))
        self.focal_px = self.width_px / (2.0 * math.tan(0.5 * self.fov_rad))
        self.cx_px = 0.5 * self.width_px
        self.cy_px = 0.5 * self.height_px
        self.height_m = float(spec.z_m)
        self.pitch_rad = math.radians(float(spec.pitch_deg))
        self.mount_forward_m = float(spec.x_m)
        self.mount_left_m = -float(spec.y_m)  # CARLA's +y is right; OpenDRIVE's +y is left
        self.pose: CameraPose | None = None
        self.set_pose(0.0, 0.0, 0.0)

    # -- intrinsics ----------------------------------------------------------
    @property
    def intrinsics(self) -> np.ndarray:
        """``(3, 3)`` float64 CARLA-style ``K`` matrix."""
        return np.array([[self.focal_px, 0.0, self.cx_px], [0.0, self.focal_px, self.cy_px], [0.0, 0.0, 1.0]])

    @property
    def horizon_v_px(self) -> float:
        """Image ``v`` of the horizon of the flat ground plane (continuous, may lie outside the image).

        A horizontal direction has camera up-component ``-sin(pitch)`` and depth
        ``cos(pitch)``, so it projects to ``cy + focal * tan(pitch)``.
        """
        return self.cy_px + self.focal_px * math.tan(self.pitch_rad)

    @property
    def horizon_row(self) -> int:
        """First image row whose pixel centre lies below the horizon (clamped to ``[0, H]``).

        Rows ``< horizon_row`` see sky (on flat ground), rows ``>= horizon_row`` see ground.
        """
        return int(min(max(math.floor(self.horizon_v_px + 0.5), 0), self.height_px))

    def row_ground_distance_m(self) -> np.ndarray:
        """Forward horizontal distance from the camera to the ground seen at each row's centre.

        Returns:
            ``(H,)`` float64 metres, along the camera's horizontal heading, measured
            at the principal column; ``inf`` for rows at or above the horizon.
        """
        v = np.arange(self.height_px, dtype=np.float64) + 0.5
        a = (self.cy_px - v) / self.focal_px  # ray = forward + a * up (camera frame)
        cp, sp = math.cos(self.pitch_rad), math.sin(self.pitch_rad)
        ray_fwd = cp - sp * a  # horizontal component along the heading
        ray_up = sp + cp * a  # world vertical component
        with np.errstate(divide="ignore", invalid="ignore"):
            dist = np.where(ray_up < -1e-12, self.height_m * ray_fwd / -ray_up, np.inf)
        return dist

    def pixel_rays(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ground hit of every pixel centre in the vehicle-aligned camera frame.

        Returns:
            ``(forward_m, left_m, range_m)``, each ``(H, W)`` float64: the ground
            point's horizontal offsets from the camera (forward along the heading,
            left) and the straight-line distance from the camera to it; ``inf``
            where the pixel sees no ground.
        """
        v = np.arange(self.height_px, dtype=np.float64)[:, None] + 0.5
        u = np.arange(self.width_px, dtype=np.float64)[None, :] + 0.5
        a = (self.cy_px - v) / self.focal_px
        b = (u - self.cx_px) / self.focal_px
        cp, sp = math.cos(self.pitch_rad), math.sin(self.pitch_rad)
        ray_fwd = np.broadcast_to(cp - sp * a, (self.height_px, self.width_px))
        ray_up = np.broadcast_to(sp + cp * a, (self.height_px, self.width_px))
        ray_right = np.broadcast_to(b, (self.height_px, self.width_px))
        with np.errstate(divide="ignore", invalid="ignore"):
            k = np.where(ray_up < -1e-12, self.height_m / -ray_up, np.inf)
            fwd = np.where(np.isfinite(k), k * ray_fwd, np.inf)
            left = np.where(np.isfinite(k), -k * ray_right, np.inf)
            rng = k * np.sqrt(ray_fwd ** 2 + ray_up ** 2 + ray_right ** 2)
        return fwd, left, rng

    # -- extrinsics ----------------------------------------------------------
    def set_pose(self, vehicle_x_m: float, vehicle_y_m: float, vehicle_yaw_rad: float) -> CameraPose:
        """Place the camera for a vehicle pose (OpenDRIVE frame, flat ground)."""
        c, s = math.cos(vehicle_yaw_rad), math.sin(vehicle_yaw_rad)
        ox = vehicle_x_m + c * self.mount_forward_m - s * self.mount_left_m
        oy = vehicle_y_m + s * self.mount_forward_m + c * self.mount_left_m
        cp, sp = math.cos(self.pitch_rad), math.sin(self.pitch_rad)
        self.pose = CameraPose(
            origin_m=np.array([ox, oy, self.height_m]),
            forward=np.array([cp * c, cp * s, sp]),
            right=np.array([s, -c, 0.0]),
            up=np.array([-sp * c, -sp * s, cp]),
        )
        # Scalars for the hot path: plain floats beat tiny-array indexing.
        self._o = (ox, oy, self.height_m)
        self._f = (cp * c, cp * s, sp)
        self._r = (s, -c)
        self._u = (-sp * c, -sp * s, cp)
        oz = self.height_m
        self._c = (-(ox * cp * c + oy * cp * s + oz * sp), -(ox * s - oy * c), -(-ox * sp * c - oy * sp * s + oz * cp))
        return self.pose

    def to_camera(self, x_m: np.ndarray, y_m: np.ndarray, z_m) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World points to camera coordinates ``(depth, right, up)`` in metres (arrays broadcast)."""
        # Affine in (x, y, z) with the origin folded into constants: fewer temporaries on the hot path.
        f0, f1, f2 = self._f
        r0, r1 = self._r
        u0, u1, u2 = self._u
        cd, cr, cu = self._c
        depth = x_m * f0 + y_m * f1 + (z_m * f2 + cd)
        right = x_m * r0 + y_m * r1 + cr
        up = x_m * u0 + y_m * u1 + (z_m * u2 + cu)
        return depth, right, up

    def image_from_camera(self, depth: np.ndarray, right: np.ndarray, up: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Camera coordinates to continuous image ``(u, v)``; ``depth`` must be positive."""
        inv = self.focal_px / depth
        return self.cx_px + right * inv, self.cy_px - up * inv

    def project(self, points_world: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Project world points with the current pose.

        Args:
            points_world: ``(N, 3)`` float, metres, OpenDRIVE frame.

        Returns:
            ``(uv, depth)``: ``(N, 2)`` float64 continuous image coordinates (see
            module docstring) and ``(N,)`` float64 depth along the optical axis in
            metres. Points with ``depth <= NEAR_M`` get ``uv = nan``.
        """
        pts = np.asarray(points_world, dtype=np.float64)
        depth, right, up = self.to_camera(pts[:, 0], pts[:, 1], pts[:, 2])
        ok = depth > NEAR_M
        safe = np.where(ok, depth, 1.0)
        u, v = self.image_from_camera(safe, right, up)
        uv = np.stack([np.where(ok, u, np.nan), np.where(ok, v, np.nan)], axis=1)
        return uv, depth
