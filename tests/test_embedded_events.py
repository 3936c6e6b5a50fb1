"""Collisions and lane invasions of the embedded simulator."""

import pytest

from carla_agent.control import VehicleControl
from carla_agent.sim.embedded.simulator import EmbeddedSimulator
from carla_agent.sim.scenario import parse_scenario


def drive(scenario, steer_after=40, steer=0.15, steps=200):
    sim = EmbeddedSimulator(render=False)
    obs = sim.reset(scenario, 0)
    collisions, invasions = [], []
    for i in range(steps):
        obs = sim.step(VehicleControl(throttle=0.5, steer=steer if i > steer_after else 0.0))
        collisions += obs.collisions
        invasions += obs.lane_invasions
    return obs, collisions, invasions


def test_hitting_a_roadside_tree_stops_the_car_once():
    sc = parse_scenario({"road": {"segments": [{"line": 300}], "lanes": {"shoulder_m": 0.0}},
                         "roadside": {"trees": {"every_m": 3, "side": "right", "offset_m": [0.0, 0.0]}}}, "t.yaml")
    obs, collisions, invasions = drive(sc)
    assert len(collisions) == 1 and collisions[0].other == "static.tree" and collisions[0].other_kind == "static"
    assert obs.speed_mps == 0.0
    assert any("Solid" in ev.markings for ev in invasions)  # it crossed the edge line first


def test_drifting_left_crosses_the_centre_line():
    sc = parse_scenario({"road": {"segments": [{"line": 300}]}}, "t.yaml")
    _, collisions, invasions = drive(sc, steer=-0.05, steps=120)
    assert not collisions
    assert invasions and invasions[0].markings == ("SolidSolid",)


def test_straight_driving_has_no_events():
    sc = parse_scenario({"road": {"segments": [{"line": 300}]}}, "t.yaml")
    _, collisions, invasions = drive(sc, steer=0.0)
    assert not collisions and not invasions


def test_a_hit_counts_in_the_driving_score_with_the_leaderboard_penalty():
    from carla_agent.sim.criteria import INFRACTION_PENALTIES, RouteCriteria

    sc = parse_scenario({"road": {"segments": [{"line": 300}], "lanes": {"shoulder_m": 0.0}},
                         "roadside": {"trees": {"every_m": 3, "side": "right", "offset_m": [0.0, 0.0]}}}, "t.yaml")
    sim = EmbeddedSimulator(render=False)
    obs = sim.reset(sc, 0)
    criteria = RouteCriteria()
    hit_speeds = []
    for i in range(200):
        obs = sim.step(VehicleControl(throttle=0.5, steer=0.15 if i > 40 else 0.0))
        criteria.update(obs)
        hit_speeds += [obs.speed_mps] * len(obs.collisions)
    assert len(hit_speeds) == 1 and hit_speeds[0] > 1.0  # the tick of the hit reports the speed it hit at
    assert obs.speed_mps == 0.0  # and the car stands after it
    result = criteria.result()
    assert result.infractions == {"static": 1}
    assert result.penalty == pytest.approx(INFRACTION_PENALTIES["static"] * (1 - result.off_route_pct / 100))
