"""Ground truth and routes of the CARLA backend on town-like geometry: hand-made OpenDRIVE
networks (``xodr_roads``) read by the real wheel's client-side ``carla.Map``, driven through
``carla_double.FakeServer``."""

from __future__ import annotations


import numpy as np
import pytest

carla = pytest.importorskip("carla")

import xodr_roads  # noqa: E402
from carla_double import FakeServer, make_double_simulator  # noqa: E402

from carla_agent.control import VehicleControl  # noqa: E402
from carla_agent.sim.carla_backend import Route  # noqa: E402
from carla_agent.sim.scenario import parse_scenario  # noqa: E402


def scenario(carla_block=None, **top):
    data = {"name": "town_like", "backend": "carla", "road": {"segments": [{"line": 100}]},
            "camera": {"image_size_x": 64, "image_size_y": 48}, "duration_s": 60.0,
            "carla": {"settle_ticks": 0, "semantic_camera": False, "spectator": False, **(carla_block or {})}}
    data.update(top)
    return parse_scenario(data, "town_like.yaml")


def hero(server):
    return next(a for a in server.alive() if a._attrs.get("role_name") == "hero")


def drive_centred(sim, server, sc, step_m: float = 0.45):
    """Put the ego on its route's lane centre, ``step_m`` further each tick, heading along the
    lane; returns the observations (the double leaves a car at speed 0 where it was put)."""
    obs = sim.reset(sc, seed=0)
    ego = hero(server)
    s = sim.route.project(obs.pose.x_m, obs.pose.y_m).s_m
    seen = []
    while not obs.done:
        s += step_m
        x, y, z, _ = sim.route.point_at(s)
        # The lane's own heading there, from the map (the route's chords are 1 m long).
        lane = server.carla_map.get_waypoint(carla.Location(x=x, y=y, z=z))
        yaw = _nearest_route_yaw(sim.route, s, lane)
        ego._transform = carla.Transform(carla.Location(x=x, y=y, z=z), carla.Rotation(yaw=yaw))
        obs = sim.step(VehicleControl())
        seen.append(obs)
    return seen


def _nearest_route_yaw(route, s, lane) -> float:
    j = int(np.clip(np.searchsorted(route.s, s) - 1, 0, len(route.waypoints) - 2))
    a, b = route.waypoints[j].transform.rotation.yaw, route.waypoints[j + 1].transform.rotation.yaw
    f = (s - route.s[j]) / max(route.s[j + 1] - route.s[j], 1e-9)
    return a + f * ((b - a + 180.0) % 360.0 - 180.0)


# -- defect 2: lanes renumbered between lane sections, and junction connectors -----------------------

def test_the_network_renumbers_its_lanes_and_overlaps_its_connectors():
    m = carla.Map("renumbering", xodr_roads.renumbering_network())
    before = m.get_waypoint(carla.Location(x=99.0, y=1.75))
    after = m.get_waypoint(carla.Location(x=101.0, y=1.75))
    assert (before.road_id, before.section_id, before.lane_id) == (1, 0, -1)
    assert (after.road_id, after.section_id, after.lane_id) == (1, 1, -2), "the same lane is numbered -2 after s = 100"
    other = m.get_waypoint(carla.Location(x=101.0, y=-1.75))
    assert other.lane_id == -1, "lane -1 of the second section is the new inside lane"
    assert sorted({w.road_id for w in m.get_waypoint(carla.Location(x=199.0, y=1.75)).next(2.0)}) == [10, 11]


@pytest.mark.parametrize("junctions", ["straight", "right"])
def test_a_centred_car_gets_no_offset_across_lane_sections_and_junctions(junctions):
    server = FakeServer(xodr=xodr_roads.renumbering_network())
    with make_double_simulator(server) as sim:
        seen = drive_centred(sim, server, scenario({"route_length_m": 230, "junctions": junctions}))
        roads = {w.road_id for w in sim.route.waypoints}
        assert roads >= ({1, 10, 3} if junctions == "straight" else {1, 11, 4})
        offsets = np.array([o.truth.lateral_offset_m for o in seen])
        headings = np.array([o.truth.heading_error_rad for o in seen])
        worst = int(np.argmax(np.abs(offsets)))
        assert np.abs(offsets).max() < 0.5, (
            f"a centred car measured {offsets[worst]:.2f} m off its lane at x = {seen[worst].pose.x_m:.1f}")
        assert np.abs(headings).max() < 0.05
        assert sim.info.on_route_lane
        assert len(seen) > 400
    assert server.clean(), server.state()


# -- defect 8: a highway route keeps to the highway; the target speed follows the map's limits ----------

def test_a_straight_route_stays_on_the_highway_and_turns_off_only_when_asked():
    m = carla.Map("highway", xodr_roads.highway_with_exit())
    outer = m.get_waypoint(carla.Location(x=10.0, y=5.25))
    assert outer.lane_id == -2
    straight = {w.road_id for w in Route.plan(outer, 360.0, junctions="straight").waypoints}
    assert 3 not in straight and 22 not in straight and 2 in straight, \
        f"the straight route took the exit ramp: roads {sorted(straight)}"
    right = {w.road_id for w in Route.plan(outer, 360.0, junctions="right").waypoints}
    assert 3 in right, "junctions: right takes the ramp"


def test_speed_limits_are_read_from_the_maps_roads():
    from carla_agent.sim.carla_backend.truth import road_speed_limits, speed_limit_at

    limits = road_speed_limits(xodr_roads.highway_with_exit())
    assert speed_limit_at(limits, 1, 20.0) == pytest.approx(xodr_roads.HIGHWAY_KMH / 3.6)
    assert speed_limit_at(limits, 3, 20.0) == pytest.approx(xodr_roads.RAMP_KMH / 3.6)
    assert speed_limit_at(limits, 99, 0.0) is None
    mixed = road_speed_limits('<OpenDRIVE><road id="5" length="100"><type s="0" type="town"><speed max="30" unit="mph"/>'
                              '</type><type s="50" type="motorway"><speed max="25"/></type></road>'
                              '<road id="6" length="9"><type s="0" type="town"/></road></OpenDRIVE>')
    assert speed_limit_at(mixed, 5, 10.0) == pytest.approx(30 * 0.44704)
    assert speed_limit_at(mixed, 5, 60.0) == pytest.approx(25.0), "no unit: m/s, OpenDRIVE's default"
    assert 6 not in mixed


def test_the_expert_slows_to_the_ramps_limit_on_the_exit_it_was_routed_onto():
    from carla_agent.drive.agent import ExpertAgent
    from carla_agent.drive.runner import Runner, RunnerHook

    class Watch(RunnerHook):
        rows: list = []

        def on_step(self, record):
            Watch.rows.append((record.obs.truth.speed_limit_mps, record.obs.speed_mps, record.obs.pose.x_m))

    server = FakeServer(xodr=xodr_roads.highway_with_exit())
    # On the outer lane 60 m along the highway's left arc (radius 600 m; CARLA's y points south).
    sc = scenario({"spawn_transform": {"x_m": 60.0, "y_m": 5.25 - 60.0 ** 2 / 1200, "yaw_deg": -5.73},
                   "route_length_m": 230, "junctions": "right"}, ego={"target_speed_kmh": 80})
    with make_double_simulator(server) as sim:
        metrics = Runner(sim, ExpertAgent(80 / 3.6), sc, duration_s=25.0, hooks=[Watch()]).run()
        assert 3 in {w.road_id for w in sim.route.waypoints}
    limits = np.array([r[0] for r in Watch.rows])
    speeds = np.array([r[1] for r in Watch.rows])
    assert limits[0] == pytest.approx(90 / 3.6)
    on_ramp = np.abs(limits - 40 / 3.6) < 1e-6
    assert on_ramp.sum() > 40, "the route reached the ramp and the truth says 40 km/h there"
    late = np.nonzero(on_ramp)[0][-20:]
    assert speeds[late].max() < 40 / 3.6 * 1.1, f"still {speeds[late].max() * 3.6:.0f} km/h on a 40 km/h ramp"
    assert speeds.max() > 60 / 3.6, "on the highway the expert drove at its target"
    assert metrics.interventions == 0
