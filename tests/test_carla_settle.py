"""Spawn settling on CARLA (issue 19): a car spawned above the road falls, lands and bounces; the
first observation must come after it rests, however many ticks that takes (the double models the
fall: gravity, then damped bounces). Before, two fixed ticks left it in the air."""

from __future__ import annotations

import logging

import pytest

carla = pytest.importorskip("carla")

from carla_double import FakeServer  # noqa: E402
from test_carla_backend import make, scenario  # noqa: E402

from carla_agent.control import VehicleControl  # noqa: E402
from carla_agent.sim.carla_backend.settle import SETTLED_DZ_M, SETTLED_VZ_MPS  # noqa: E402


def hero(server):
    return next(a for a in server.alive() if a._type_id.startswith("vehicle.") and a._attrs.get("role_name") == "hero")


def ground_z(server, ego) -> float:
    return server.carla_map.get_waypoint(ego._transform.location).transform.location.z


@pytest.mark.parametrize("expert", ["pure_pursuit", "autopilot"])
def test_the_first_observation_comes_after_the_ego_has_landed(expert):
    server = FakeServer()
    with make(server) as sim:
        spawn_z = server._spawn_points[0].location.z
        obs = sim.reset(scenario({"settle_ticks": 2, "expert": expert}))
        ego = hero(server)
        assert spawn_z - ground_z(server, ego) >= 0.4, "the double spawns above the road"
        st = sim.settling
        assert st.settled and st.ticks > 2, st  # two fixed ticks were not enough for a 0.5 m drop
        assert abs(st.vz_mps) < SETTLED_VZ_MPS and abs(st.dz_m) < SETTLED_DZ_M
        assert obs.pose.z_m == pytest.approx(ground_z(server, ego), abs=0.01)
        assert ego.get_velocity().z == 0.0, "at rest on the road in the first observation"
        # Standing (the autopilot only takes it after landing: one tick of throttle at most).
        assert obs.speed_mps < (0.2 if expert == "autopilot" else 0.01)
        obs = sim.step(VehicleControl(throttle=0.5))
        assert obs.pose.z_m == pytest.approx(ground_z(server, ego), abs=0.01)
    assert server.clean(), server.state()


def test_a_drop_that_outlasts_the_cap_is_logged_and_the_drive_goes_on(caplog):
    server = FakeServer()
    p = server._spawn_points[2].location
    block = {"spawn_transform": {"x_m": p.x, "y_m": p.y, "z_m": 10.0, "yaw_deg": 0.0}, "settle_max_ticks": 10}
    with make(server) as sim, caplog.at_level(logging.WARNING):
        obs = sim.reset(scenario(block))
        assert sim.settling.ticks == 10 and not sim.settling.settled
        assert obs.pose.z_m > 5.0, "still falling"
        lines = [r.getMessage() for r in caplog.records if "had not settled" in r.getMessage()]
        assert len(lines) == 1 and "after 10 ticks" in lines[0] and "settle_max_ticks" in lines[0]
        for _ in range(120):
            obs = sim.step(VehicleControl())
        assert obs.pose.z_m == pytest.approx(ground_z(server, hero(server)), abs=0.01), "landed later"
    assert server.clean(), server.state()


def test_settle_max_ticks_zero_does_not_tick():
    server = FakeServer()
    with make(server) as sim:
        frame = server._frame
        sim.reset(scenario({"settle_ticks": 0, "settle_max_ticks": 0}))
        assert sim.settling.ticks == 0
        assert server._frame == frame + 1, "only the first observation's tick"
