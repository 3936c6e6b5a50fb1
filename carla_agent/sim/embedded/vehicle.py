"""Kinematic bicycle model with actuator lag and simple longitudinal dynamics.

Plain NumPy-free float math: one vehicle, one step, no allocation. Angles in
radians in OpenDRIVE's frame (counter-clockwise positive), so CARLA's positive
(rightward) steer turns the car clockwise: a negative wheel angle here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from carla_agent.control import VehicleControl


@dataclass(frozen=True)
class VehicleParams:
    """Vehicle constants, roughly a Lincoln MKZ (CARLA's default hero)."""

    wheelbase_m: float = 2.87
    length_m: float = 4.9
    width_m: float = 2.0
    height_m: float = 1.5
    max_steer_deg: float = 30.0  # steer = 1.0 maps to this front-wheel angle
    steer_time_constant_s: float = 0.08  # first-order lag of the steering actuator
    max_steer_rate_deg_s: float = 300.0
    max_accel_mps2: float = 3.5
    max_brake_mps2: float = 8.0
    drag_per_m: float = 0.0004  # aerodynamic deceleration = drag * v^2
    rolling_mps2: float = 0.12
    max_speed_mps: float = 50.0


@dataclass(frozen=True)
class VehicleState:
    """The car's centre, heading, speed and actual front-wheel angle."""

    x_m: float
    y_m: float
    yaw_rad: float
    speed_mps: float = 0.0
    wheel_angle_rad: float = 0.0
    accel_mps2: float = 0.0


def step_vehicle(state: VehicleState, control: VehicleControl, params: VehicleParams, dt_s: float) -> VehicleState:
    """Advance one step of ``dt_s`` seconds under ``control``."""
    max_steer = math.radians(params.max_steer_deg)
    target = -control.steer * max_steer
    # First-order lag, then a rate limit: a real steering rack cannot jump.
    alpha = 1.0 - math.exp(-dt_s / params.steer_time_constant_s)
    delta = (target - state.wheel_angle_rad) * alpha
    max_delta = math.radians(params.max_steer_rate_deg_s) * dt_s
    wheel = state.wheel_angle_rad + max(-max_delta, min(max_delta, delta))

    v = state.speed_mps
    if control.hand_brake:
        brake = 1.0
    else:
        brake = control.brake
    accel = control.throttle * params.max_accel_mps2 * max(0.0, 1.0 - v / params.max_speed_mps)
    resist = brake * params.max_brake_mps2 + params.drag_per_m * v * v + (params.rolling_mps2 if v > 0 else 0.0)
    accel -= resist
    v_new = max(0.0, v + accel * dt_s)
    if control.reverse:
        v_new = min(v_new, 3.0)
    v_mid = 0.5 * (v + v_new)
    direction = -1.0 if control.reverse else 1.0
    # Kinematic bicycle about the car's centre (slip angle beta), midpoint integration.
    beta = math.atan(0.5 * math.tan(wheel))
    yaw_rate = direction * v_mid * math.cos(beta) * math.tan(wheel) / params.wheelbase_m
    yaw_mid = state.yaw_rad + 0.5 * yaw_rate * dt_s
    x = state.x_m + direction * v_mid * math.cos(yaw_mid + beta) * dt_s
    y = state.y_m + direction * v_mid * math.sin(yaw_mid + beta) * dt_s
    return VehicleState(x, y, state.yaw_rad + yaw_rate * dt_s, v_new, wheel, (v_new - v) / dt_s)


def stopped(state: VehicleState) -> VehicleState:
    """The same state with zero speed (after a collision)."""
    return replace(state, speed_mps=0.0, accel_mps2=0.0)
