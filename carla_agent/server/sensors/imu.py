"""``sensor.other.imu``: accelerometer (m/s^2, gravity included: 9.81 up at rest), gyroscope (rad/s)
and compass (rad), in the sensor's frame, as CARLA's ``InertialMeasurementUnit``.

The acceleration is the change of the parent's velocity over the time since the last measurement
(none at the first) plus gravity, turned into the sensor's axes; the angular velocity is the change
of the sensor's yaw (the embedded world is flat: no pitch or roll rates). The compass is CARLA's:
the angle from north (CARLA's -y) to the sensor's forward axis, clockwise seen from above, in
[0, 2 pi). Noise as CARLA's: ``normal(0, noise_accel_stddev_*)`` and ``noise_gyro_bias_* +
normal(0, noise_gyro_stddev_*)``. Wire (``IMUSerializer``): msgpack ``[[ax, ay, az], [gx, gy, gz], compass]``.
"""

from __future__ import annotations

import math
from typing import List

import msgpack
import numpy as np

from carla_agent.server.sensors.base import TYPE_IMU, Sensor
from carla_agent.server.wire import A_FLOAT, A_INT

GRAVITY_MPS2 = 9.81


class Imu(Sensor):
    TYPE_ID = "sensor.other.imu"
    SENSOR_TYPE = TYPE_IMU
    TAGS = "sensor,other,imu"
    ATTRIBUTES = tuple((f"noise_{k}_{a}", A_FLOAT, "0.0") for k in ("accel_stddev", "gyro_bias", "gyro_stddev")
                       for a in "xyz") + (("noise_seed", A_INT, "0"),)

    def __init__(self, attrs) -> None:
        super().__init__(attrs)
        self.accel_std = np.array([self.number(f"noise_accel_stddev_{a}", 0.0, 1e3) for a in "xyz"])
        self.gyro_bias = np.array([self.number(f"noise_gyro_bias_{a}", -1e3, 1e3) for a in "xyz"])
        self.gyro_std = np.array([self.number(f"noise_gyro_stddev_{a}", 0.0, 1e3) for a in "xyz"])
        self.rng = np.random.default_rng(self.integer("noise_seed", -2 ** 31, 2 ** 31 - 1) & 0xFFFFFFFF)
        self.prev = None  # (velocity (3,), yaw deg) at the last measurement

    def measure(self, world, actor, view, dt_s: float) -> List[bytes]:
        pose = view.pose
        vel = np.array(view.parent_velocity_mps, np.float64)
        yaw = pose.transform[4]
        acc_w, rate = np.zeros(3), 0.0
        if self.prev is not None and dt_s > 0.0:
            acc_w = (vel - self.prev[0]) / dt_s
            rate = math.radians((yaw - self.prev[1] + 180.0) % 360.0 - 180.0) / dt_s
        self.prev = (vel, yaw)
        acc_w = acc_w + np.array([0.0, 0.0, GRAVITY_MPS2])
        accel = pose.rot.T @ acc_w
        gyro = pose.rot.T @ np.array([0.0, 0.0, rate])
        if self.accel_std.any():
            accel = accel + self.rng.normal(0.0, 1.0, 3) * self.accel_std
        gyro = gyro + self.gyro_bias + (self.rng.normal(0.0, 1.0, 3) * self.gyro_std if self.gyro_std.any() else 0.0)
        fx, fy = pose.rot[0, 0], pose.rot[1, 0]  # the forward axis, horizontally
        compass = math.atan2(fx, -fy) % (2.0 * math.pi)  # from north (0, -1) toward east (+x)
        return [msgpack.packb([[float(v) for v in accel], [float(v) for v in gyro], float(compass)])]
