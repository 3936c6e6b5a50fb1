"""``sensor.lidar.ray_cast`` and ``sensor.lidar.ray_cast_semantic``: CARLA's rotating lidar, its rays
cast against the served world (:mod:`.scene`, :mod:`.raycast`).

The ray pattern is CARLA's (``RayCastSemanticLidar.cpp``): per tick each of ``channels`` lasers
fires ``round(points_per_second * dt / channels)`` rays, spread over the ``rotation_frequency *
horizontal_fov * dt`` degrees the head turns in the tick; laser ``i`` points ``upper_fov - i (upper_fov -
lower_fov) / (channels - 1)`` degrees up; a ray's yaw is ``fmod(start + step j, horizontal_fov) -
horizontal_fov / 2``. Hits beyond ``range`` (m) are no points. Points are in the sensor's frame
(x forward, y right, z up; metres).

Wire (``LidarData.h`` / ``SemanticLidarData.h``): a header of uint32 ``[horizontal angle (float32
bits, radians), channel count, points of channel 0, ...]``, then per point float32 ``x, y, z,
intensity`` (lidar) or ``x, y, z, cos(incidence)`` + uint32 ``object id, CityObjectLabel tag``
(semantic). The lidar's intensity is ``exp(-atmosphere_attenuation_rate * distance)`` and its points
drop as CARLA's: each ray with probability ``dropoff_general_rate``, and a point whose intensity is
below ``dropoff_intensity_limit`` unless a uniform draw is below ``(1 - dropoff_zero_intensity) /
limit * intensity + dropoff_zero_intensity``; ``noise_stddev`` moves a point along its ray.
"""

from __future__ import annotations

import math
from typing import List

import numpy as np

from carla_agent.server.sensors import raycast, scene
from carla_agent.server.sensors.base import TYPE_LIDAR, TYPE_SEMANTIC_LIDAR, Sensor
from carla_agent.server.wire import A_FLOAT, A_INT

#: Rays per tick at most (points_per_second * dt): bounds the time and memory of one cast.
MAX_RAYS_PER_TICK = 2_000_000
SEMANTIC_POINT = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("cos", "<f4"), ("idx", "<u4"), ("tag", "<u4")])


class SemanticLidar(Sensor):
    TYPE_ID = "sensor.lidar.ray_cast_semantic"
    SENSOR_TYPE = TYPE_SEMANTIC_LIDAR
    TAGS = "sensor,lidar,ray_cast_semantic"
    ATTRIBUTES = (("channels", A_INT, "32"), ("range", A_FLOAT, "10.0"), ("points_per_second", A_INT, "56000"),
                  ("rotation_frequency", A_FLOAT, "10.0"), ("upper_fov", A_FLOAT, "10.0"),
                  ("lower_fov", A_FLOAT, "-30.0"), ("horizontal_fov", A_FLOAT, "360.0"))

    def __init__(self, attrs) -> None:
        super().__init__(attrs)
        self.channels = self.integer("channels", 1, 1024)
        self.range_m = self.number("range", 0.0, 10_000.0, lo_open=True, unit=" m")
        self.points_per_second = self.integer("points_per_second", 1, 100_000_000)
        self.rotation_frequency_hz = self.number("rotation_frequency", 0.0, 10_000.0, lo_open=True, unit=" Hz")
        self.upper_fov_deg = self.number("upper_fov", -90.0, 90.0, unit=" deg")
        self.lower_fov_deg = self.number("lower_fov", -90.0, 90.0, unit=" deg")
        if self.lower_fov_deg > self.upper_fov_deg:
            raise self._bad("lower_fov", self._raw("lower_fov"), f"at most upper_fov ({self.upper_fov_deg:g})")
        self.horizontal_fov_deg = self.number("horizontal_fov", 0.0, 360.0, lo_open=True, unit=" deg")
        self.angle_deg = 0.0  # where the head points at the start of the next tick
        self.rng = np.random.default_rng(0)

    def rays(self, dt_s: float) -> np.ndarray:
        """This tick's ray directions, ``(channels * per_laser, 3)`` float64 unit vectors, sensor frame,
        laser by laser (and advances the head)."""
        per_laser = int(math.floor(self.points_per_second * dt_s / self.channels + 0.5))  # RoundHalfFromZero
        if per_laser * self.channels > MAX_RAYS_PER_TICK:
            raise ValueError(f"{self.TYPE_ID}: {per_laser * self.channels} rays in one tick; at most "
                             f"{MAX_RAYS_PER_TICK} (points_per_second * dt)")
        tick_deg = self.rotation_frequency_hz * self.horizontal_fov_deg * dt_s
        step = tick_deg / per_laser if per_laser else 0.0
        n = self.channels
        delta = 0.0 if n == 1 else (self.upper_fov_deg - self.lower_fov_deg) / (n - 1)
        vert = np.radians(self.upper_fov_deg - delta * np.arange(n))
        horiz = np.radians(np.fmod(self.angle_deg + step * np.arange(per_laser), self.horizontal_fov_deg)
                           - 0.5 * self.horizontal_fov_deg)
        self.angle_deg = math.fmod(self.angle_deg + tick_deg, self.horizontal_fov_deg)
        v, h = vert[:, None], horiz[None, :]
        return np.stack(np.broadcast_arrays(np.cos(v) * np.cos(h), np.cos(v) * np.sin(h), np.sin(v)), -1).reshape(-1, 3)

    def cast(self, world, actor, view, dt_s: float):
        """``(local dirs, hits, boxes, channel of each ray)`` of this tick."""
        local = self.rays(dt_s)
        pose = view.pose
        boxes = scene.scene_boxes(world, view.traffic, pose.origin_m, self.range_m, exclude=actor.parent)
        hits = raycast.cast(pose.origin_m, pose.to_world(local), boxes, self.range_m)
        per = len(local) // self.channels if self.channels else 0
        return local, hits, boxes, np.repeat(np.arange(self.channels), per)

    def header(self, channel: np.ndarray, keep: np.ndarray) -> bytes:
        counts = np.bincount(channel[keep], minlength=self.channels).astype("<u4")
        head = np.empty(2 + self.channels, "<u4")
        head[0] = np.array([math.radians(self.angle_deg)], "<f4").view("<u4")[0]
        head[1] = self.channels
        head[2:] = counts
        return head.tobytes()

    def measure(self, world, actor, view, dt_s: float) -> List[bytes]:
        local, hits, boxes, channel = self.cast(world, actor, view, dt_s)
        pose = view.pose
        keep = np.isfinite(hits.t)
        pts = np.zeros(int(keep.sum()), SEMANTIC_POINT)
        xyz = local[keep] * hits.t[keep, None]
        pts["x"], pts["y"], pts["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
        dw = pose.to_world(local[keep])
        pts["cos"] = -np.einsum("ij,ij->i", dw, hits.normal[keep])
        idx = hits.index[keep]
        on_box = idx >= 0
        pts["idx"][on_box] = boxes.ids[idx[on_box]]
        pts["tag"][on_box] = boxes.tags[idx[on_box]]
        ground = idx == raycast.GROUND
        if ground.any():
            wp = pose.origin_m + dw[ground] * hits.t[keep][ground, None]
            pts["tag"][ground] = scene.ground_tags(world, wp[:, 0], wp[:, 1])
        return [self.header(channel, keep), pts.tobytes()]


class Lidar(SemanticLidar):
    TYPE_ID = "sensor.lidar.ray_cast"
    SENSOR_TYPE = TYPE_LIDAR
    TAGS = "sensor,lidar,ray_cast"
    ATTRIBUTES = SemanticLidar.ATTRIBUTES + (
        ("atmosphere_attenuation_rate", A_FLOAT, "0.004"), ("dropoff_general_rate", A_FLOAT, "0.45"),
        ("dropoff_intensity_limit", A_FLOAT, "0.8"), ("dropoff_zero_intensity", A_FLOAT, "0.4"),
        ("noise_stddev", A_FLOAT, "0.0"))

    def __init__(self, attrs) -> None:
        super().__init__(attrs)
        self.attenuation = self.number("atmosphere_attenuation_rate", 0.0, 10.0, unit=" 1/m")
        self.drop_general = self.number("dropoff_general_rate", 0.0, 1.0)
        self.drop_limit = self.number("dropoff_intensity_limit", 0.0, 1.0)
        self.drop_zero = self.number("dropoff_zero_intensity", 0.0, 1.0)
        self.noise_m = self.number("noise_stddev", 0.0, 100.0, unit=" m")

    def measure(self, world, actor, view, dt_s: float) -> List[bytes]:
        local, hits, _, channel = self.cast(world, actor, view, dt_s)
        t = hits.t
        if self.noise_m > 0.0:
            t = t + self.rng.normal(0.0, self.noise_m, len(t))
        intensity = np.exp(-self.attenuation * t)
        keep = np.isfinite(t)
        if self.drop_general > 0.0:
            keep &= self.rng.random(len(t)) > self.drop_general
        weak = keep & (intensity <= self.drop_limit)
        if weak.any():
            alpha = (1.0 - self.drop_zero) / self.drop_limit if self.drop_limit > 0 else 0.0
            keep[weak] = self.rng.random(int(weak.sum())) < alpha * intensity[weak] + self.drop_zero
        pts = np.empty((int(keep.sum()), 4), "<f4")
        pts[:, :3] = local[keep] * t[keep, None]
        pts[:, 3] = intensity[keep]
        return [self.header(channel, keep), pts.tobytes()]
