"""``sensor.other.radar``: CARLA's radar, its rays cast against the served world.

As CARLA's ``Radar.cpp``: per tick ``int(points_per_second * dt)`` rays toward random points of the
ellipse ``range`` metres ahead whose half axes are ``range tan(horizontal_fov / 2)`` and ``range
tan(vertical_fov / 2)`` (radius uniform in [0, 1), angle uniform); each hit is a detection of
``velocity`` (the hit thing's velocity relative to the sensor's, along the ray: m/s, negative when
it comes closer), ``azimuth`` and ``altitude`` (rad, in the sensor's frame) and ``depth`` (m).
Wire (``RadarSerializer``): float32 ``velocity, azimuth, altitude, depth`` per detection.
"""

from __future__ import annotations

import math
from typing import List

import numpy as np

from carla_agent.server.sensors import raycast, scene
from carla_agent.server.sensors.base import TYPE_RADAR, Sensor
from carla_agent.server.wire import A_FLOAT, A_INT

#: Rays per tick at most.
MAX_RAYS_PER_TICK = 1_000_000


class Radar(Sensor):
    TYPE_ID = "sensor.other.radar"
    SENSOR_TYPE = TYPE_RADAR
    TAGS = "sensor,other,radar"
    ATTRIBUTES = (("horizontal_fov", A_FLOAT, "30"), ("vertical_fov", A_FLOAT, "30"), ("range", A_FLOAT, "100"),
                  ("points_per_second", A_INT, "1500"))

    def __init__(self, attrs) -> None:
        super().__init__(attrs)
        self.hfov_deg = self.number("horizontal_fov", 0.0, 180.0, lo_open=True, unit=" deg")
        self.vfov_deg = self.number("vertical_fov", 0.0, 180.0, lo_open=True, unit=" deg")
        if self.hfov_deg >= 180.0 or self.vfov_deg >= 180.0:
            bad = "horizontal_fov" if self.hfov_deg >= 180.0 else "vertical_fov"
            raise self._bad(bad, self._raw(bad), "a number in (0, 180) deg")
        self.range_m = self.number("range", 0.0, 10_000.0, lo_open=True, unit=" m")
        self.points_per_second = self.integer("points_per_second", 0, 100_000_000)
        self.rng = np.random.default_rng(0)

    def measure(self, world, actor, view, dt_s: float) -> List[bytes]:
        pose = view.pose
        n = int(self.points_per_second * dt_s)
        if n > MAX_RAYS_PER_TICK:
            raise ValueError(f"{self.TYPE_ID}: {n} rays in one tick; at most {MAX_RAYS_PER_TICK}")
        rad = self.rng.random(n)
        ang = self.rng.uniform(0.0, 2.0 * math.pi, n)
        mx = math.tan(math.radians(0.5 * self.hfov_deg)) * self.range_m
        my = math.tan(math.radians(0.5 * self.vfov_deg)) * self.range_m
        local = np.stack([np.full(n, self.range_m), mx * rad * np.cos(ang), my * rad * np.sin(ang)], 1)
        local /= np.linalg.norm(local, axis=1, keepdims=True)
        boxes = scene.scene_boxes(world, view.traffic, pose.origin_m, self.range_m, exclude=actor.parent)
        dw = pose.to_world(local)
        hits = raycast.cast(pose.origin_m, dw, boxes, self.range_m)
        keep = np.isfinite(hits.t)
        idx = hits.index[keep]
        target_v = np.zeros((int(keep.sum()), 3))
        on_box = idx >= 0
        target_v[on_box] = boxes.velocity_mps[idx[on_box]]
        rel = target_v - np.asarray(view.parent_velocity_mps, np.float64)[None, :]
        out = np.empty((len(idx), 4), "<f4")
        out[:, 0] = np.einsum("ij,ij->i", rel, dw[keep])
        lk = local[keep]
        out[:, 1] = np.arctan2(lk[:, 1], lk[:, 0])
        out[:, 2] = np.arctan2(lk[:, 2], np.hypot(lk[:, 0], lk[:, 1]))
        out[:, 3] = hits.t[keep]
        return [out.tobytes()]
