"""Scoring as the CARLA leaderboard scores (scenario_runner's atomic_criteria.py, leaderboard's
statistics_manager.py), and traffic lights, on the CARLA backend through ``carla_double``."""

from __future__ import annotations

import numpy as np
import pytest

carla = pytest.importorskip("carla")

from carla_double import FakeServer, make_double_simulator  # noqa: E402

from carla_agent.control import VehicleControl  # noqa: E402
from carla_agent.drive.agent import ExpertAgent  # noqa: E402
from carla_agent.drive.metrics import MetricsTracker  # noqa: E402
from carla_agent.drive.runner import Runner, RunnerHook  # noqa: E402
from carla_agent.sim import criteria  # noqa: E402
from carla_agent.sim.criteria import RouteCriteria  # noqa: E402
from carla_agent.sim.observation import CollisionEvent, GroundTruth, Observation, Pose  # noqa: E402
from carla_agent.sim.scenario import parse_scenario  # noqa: E402

#: The double's road: lane -1 (the route's) at y = 1.75, lane -2 (same way) at 5.25, oncoming -1.75.
LANE_Y = {"route": 1.75, "same_way": 5.25, "oncoming": -1.75}
LIGHT_X = 120.0


def scenario(**carla_block):
    return parse_scenario({"name": "scoring", "backend": "carla", "road": {"segments": [{"line": 100}]},
                           "camera": {"image_size_x": 64, "image_size_y": 48}, "duration_s": 40.0,
                           "ego": {"target_speed_kmh": 36},
                           "carla": {"route_length_m": 250, "settle_ticks": 0, "semantic_camera": False,
                                     "spectator": False, **carla_block}}, "scoring.yaml")


def hero(server):
    return next(a for a in server.alive() if a._attrs.get("role_name") == "hero")


class Track(RunnerHook):
    def __init__(self):
        self.obs = []

    def on_step(self, record):
        self.obs.append(record.obs)


# -- traffic lights ---------------------------------------------------------------------------------------

def test_the_expert_stops_at_a_red_light_and_goes_on_green():
    server = FakeServer()
    light = server.add_traffic_light(LIGHT_X, LANE_Y["route"])
    track = Track()
    sc = scenario()
    with make_double_simulator(server) as sim:
        m = Runner(sim, ExpertAgent(sc.target_speed_mps), sc, duration_s=20.0, hooks=[track]).run()
        ego = hero(server)
        front_x = ego._transform.location.x + ego.bounding_box.extent.x
        assert LIGHT_X - 4.0 < front_x < LIGHT_X, f"stopped with the front at x = {front_x:.1f}, the line at {LIGHT_X}"
        assert track.obs[-1].speed_mps < 0.1 and track.obs[-1].truth.red_light_distance_m < 4.0
        assert max(o.speed_mps for o in track.obs) > 8.0, "it drove up to the light at its target"
        assert m.red_lights == 0 and m.driving_score > 0
        light._state = carla.TrafficLightState.Green
        obs = track.obs[-1]
        for _ in range(100):
            obs = sim.step(ExpertAgent(sc.target_speed_mps).run_step(obs).control)
            assert not obs.infractions
        assert obs.pose.x_m > LIGHT_X + 10.0 and obs.truth.red_light_distance_m is None
    assert server.clean(), server.state()


def test_running_a_red_light_is_counted_once_with_the_leaderboards_penalty():
    server = FakeServer()
    server.add_traffic_light(LIGHT_X, LANE_Y["route"])
    server.add_traffic_light(LIGHT_X, LANE_Y["oncoming"])  # the other way's light: never "run" by us
    with make_double_simulator(server) as sim:
        obs = sim.reset(scenario(), seed=0)
        tracker = MetricsTracker("scoring", "carla")
        runs = []
        while obs.pose.x_m < LIGHT_X + 30.0:
            obs = sim.step(VehicleControl(throttle=0.5))  # a driver that ignores the light
            tracker.update(obs)
            runs += [(ev.kind, ev.frame, obs.pose.x_m) for ev in obs.infractions]
    assert len(runs) == 1 and runs[0][0] == "red_light"
    assert runs[0][2] - 2.4 == pytest.approx(LIGHT_X, abs=1.0), "counted when the rear crossed the line"
    result = tracker.criteria.result()
    assert result.infractions == {"red_light": 1} and result.penalty == pytest.approx(0.70)
    assert tracker.result().red_lights == 1


# -- collisions ---------------------------------------------------------------------------------------------

def _obs(frame: int, x: float, speed: float = 10.0, collisions=(), offset: float = 0.0, outside=None):
    truth = GroundTruth(offset, 0.0, x, 400.0, np.zeros((1, 2), np.float32), outside_route_lanes=outside)
    return Observation(frame, frame * 0.05, 0.05, np.zeros((1, 1, 3), np.uint8), speed, Pose(x, 0.0), truth,
                       tuple(collisions))


def test_collisions_are_told_apart_by_actor_id_not_by_type_name():
    crit = RouteCriteria()
    first = CollisionEvent(10, "vehicle.audi.tt", "vehicle", 500.0, other_id=201)
    other_car = CollisionEvent(40, "vehicle.audi.tt", "vehicle", 500.0, other_id=202)  # same model, 1.5 s later
    same_car = CollisionEvent(60, "vehicle.audi.tt", "vehicle", 500.0, other_id=202)  # 8 m on, 1 s later
    for f in range(0, 80):
        x = 0.4 * f
        evs = [e for e in (first, other_car, same_car) if e.frame == f]
        crit.update(_obs(f, x, collisions=evs))
    assert [e.other_id for e in crit.collisions] == [201, 202]
    assert crit.result().infractions == {"vehicle": 2}


def test_static_hits_with_id_0_curbs_and_standing_still():
    server = FakeServer()
    with make_double_simulator(server) as sim:
        obs = sim.reset(scenario(), seed=0)
        tracker = MetricsTracker("scoring", "carla")
        ev_kinds = []
        plan = {20: "static.pole", 60: "static.fence", 100: "static.sidewalk"}
        for tick in range(130):
            if tick in plan:
                server.inject_collision(plan[tick])
            obs = sim.step(VehicleControl(throttle=0.6))
            tracker.update(obs)
            ev_kinds += [(e.other, e.other_kind, e.other_id) for e in obs.collisions]
        assert ev_kinds == [("static.pole", "static", 0), ("static.fence", "static", 0),
                            ("static.sidewalk", "other", 0)]
        result = tracker.criteria.result()
        # Two statics 2 s and well over 5 m apart: two hits although both have id 0; the curb: none.
        assert result.infractions == {"static": 2}
        assert result.penalty == pytest.approx(0.65 ** 2)
        assert tracker.result().collisions == 2
    still = RouteCriteria()
    still.update(_obs(1, 0.0, speed=0.0, collisions=[CollisionEvent(1, "vehicle.audi.tt", "vehicle", 900.0, 7)]))
    assert still.result().infractions == {}, "hit while standing still: not the ego's fault"


def test_legacy_backends_without_ids_still_dedupe_by_name():
    ev = [CollisionEvent(0, "vehicle.a", "vehicle", 1.0), CollisionEvent(40, "vehicle.a", "vehicle", 1.0),
          CollisionEvent(50, "vehicle.b", "vehicle", 1.0)]
    assert [e.frame for e in criteria.dedupe_collisions(ev, 0.05)] == [0, 50]


# -- outside the route's lanes -----------------------------------------------------------------------------

@pytest.mark.parametrize("lane, outside", [("route", False), ("same_way", False), ("oncoming", True)])
def test_a_lane_change_the_routes_way_is_not_outside_the_route_lanes(lane, outside):
    server = FakeServer()
    with make_double_simulator(server) as sim:
        obs = sim.reset(scenario(), seed=0)
        ego = hero(server)
        crit = RouteCriteria()
        crit.update(obs)
        flags = []
        for k in range(1, 200):
            x = 10.0 + 0.5 * k
            y = LANE_Y[lane] if 40.0 < x < 80.0 else LANE_Y["route"]
            ego._transform = carla.Transform(carla.Location(x=x, y=y, z=0.5), carla.Rotation(yaw=0.0))
            obs = sim.step(VehicleControl())
            crit.update(obs)
            flags.append(obs.truth.outside_route_lanes)
        result = crit.result()
    assert any(flags) is outside
    if outside:  # 40 m of the 100 m driven along the route (the leaderboard's share)
        assert result.off_route_pct == pytest.approx(40.0, abs=1.5)
        assert result.penalty == pytest.approx(1 - result.off_route_pct / 100)
    else:
        assert result.off_route_pct == 0.0 and result.penalty == 1.0


# -- headlights --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("weather, on", [("night", True), ("night_rain", True), ("clear_noon", False), ("sunset", False)])
def test_headlights_are_on_at_night_for_the_ego_and_the_npcs(weather, on):
    server = FakeServer()
    sc = parse_scenario({"name": "lights", "backend": "carla", "road": {"segments": [{"line": 100}]},
                         "camera": {"image_size_x": 64, "image_size_y": 48}, "weather": {"preset": weather},
                         "carla": {"route_length_m": 100, "settle_ticks": 0, "semantic_camera": False,
                                   "traffic_manager": {"vehicles": 2}}}, "lights.yaml")
    with make_double_simulator(server) as sim:
        sim.reset(sc, seed=0)
        vehicles = [a for a in server.alive() if a._type_id.startswith("vehicle.")]
        assert len(vehicles) == 3
        want = int(carla.VehicleLightState.Position | carla.VehicleLightState.LowBeam) if on else 0
        assert [int(v.get_light_state()) for v in vehicles] == [want] * 3
    assert server.clean(), server.state()


def test_the_calls_for_lights_limits_and_lanes_exist_in_the_wheel_and_accept_their_arguments():
    from test_carla_backend import binds

    server = FakeServer()
    server.add_traffic_light(50.0, LANE_Y["route"])  # within 60 m of the ego: its state is read
    with make_double_simulator(server) as sim:
        sim.reset(scenario(weather="ClearNight", traffic_manager={"vehicles": 1}), seed=0)
        for _ in range(5):
            sim.step(VehicleControl(throttle=0.5))
    log = server.log
    missing = sorted(f"carla.{api}.{name}" for api, name in log.reads if not hasattr(getattr(carla, api), name))
    assert not missing, f"the backend uses attributes the wheel lacks: {missing}"
    problems = {f"carla.{api}.{name}: {why}" for api, name, args, kwargs in log.calls
                if (why := binds(getattr(getattr(carla, api), name), args, kwargs))}
    assert not problems, "\n".join(sorted(problems))
    called = {f"{api}.{name}" for api, name, *_ in log.calls}
    assert {"Vehicle.set_light_state", "TrafficLight.get_stop_waypoints", "TrafficLight.get_state",
            "Map.to_opendrive"} <= called
