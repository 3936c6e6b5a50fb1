import math

import pytest

from carla_agent.control import VehicleControl
from carla_agent.sim.embedded.vehicle import VehicleParams, VehicleState, step_vehicle


def drive(control, steps, state=None, params=VehicleParams(), dt=0.05):
    state = state or VehicleState(0.0, 0.0, 0.0, 10.0)
    for _ in range(steps):
        state = step_vehicle(state, control, params, dt)
    return state


def test_positive_steer_turns_right_in_carla_terms():
    st = drive(VehicleControl(steer=0.3, throttle=0.3), 20)
    assert st.yaw_rad < 0 and st.y_m < 0  # clockwise in OpenDRIVE's frame = right


def test_steady_state_turn_radius_matches_bicycle_model():
    p = VehicleParams()
    st = drive(VehicleControl(steer=0.2), 200, VehicleState(0, 0, 0, 5.0))
    wheel = math.radians(p.max_steer_deg) * 0.2
    assert abs(st.wheel_angle_rad) == pytest.approx(wheel, rel=1e-3)


def test_actuator_lag():
    st = drive(VehicleControl(steer=1.0), 1)
    assert 0 < abs(st.wheel_angle_rad) < math.radians(VehicleParams().max_steer_deg) * 0.7


def test_throttle_and_brake():
    fast = drive(VehicleControl(throttle=1.0), 40, VehicleState(0, 0, 0, 0.0))
    assert fast.speed_mps > 4.0
    stopped = drive(VehicleControl(brake=1.0), 40, fast)
    assert stopped.speed_mps == 0.0


def test_control_ranges_clamped_and_nan_rejected():
    c = VehicleControl(steer=3, throttle=-1, brake=2)
    assert (c.steer, c.throttle, c.brake) == (1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="steer"):
        VehicleControl(steer=float("nan"))
