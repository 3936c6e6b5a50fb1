"""Towns in scenarios: the ``town:``/``route:`` fields, the embedded drive along a planned route,
and the traffic lights' timer."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from carla_agent.control import VehicleControl
from carla_agent.drive.expert import Expert
from carla_agent.errors import ScenarioError, UnknownNameError
from carla_agent.sim.embedded.roadnet.catalog import shipped_towns
from carla_agent.sim.embedded.roadnet.town import load_town, load_town_file, parse_town
from carla_agent.sim.embedded.roadnet.traffic_lights import GREEN, RED, YELLOW, light_states
from carla_agent.sim.embedded.simulator import EmbeddedSimulator
from carla_agent.sim.routing.road_option import RoadOption
from carla_agent.sim.scenario import load_scenario, parse_scenario, shipped_scenarios

L, R, S = RoadOption.LEFT, RoadOption.RIGHT, RoadOption.STRAIGHT


def test_towns_are_found_by_name_and_a_typo_lists_them():
    assert load_town("grid_small").name == "grid_small"
    with pytest.raises(UnknownNameError, match="known towns: grid_small, ring_multilane"):
        shipped_towns().get("grid_smal")


def test_every_shipped_town_has_a_shipped_scenario():
    towns_used = {load_scenario(n).town for n in shipped_scenarios().names()}
    assert set(shipped_towns().names()) <= towns_used


TOWN_SCENARIO = {"name": "t", "town": "grid_small", "route": {"start": [-100, -1.75], "end": [1.75, 80]}}


@pytest.mark.parametrize("change, message", [
    ({"town": "nowhere"}, "field 'town': unknown town 'nowhere'; known towns: grid_small"),
    ({"town": None}, "field 'route': a route needs a town"),
    ({"route": {"start": [-100, -1.75]}}, "field 'route': a town scenario needs"),
    ({"route": {"start": [float("nan"), 0], "end": [1.75, 80]}}, "field 'route.start[0]': nan is not a finite"),
    ({"route": {"start": [-1e6, 0], "end": [1.75, 80]}}, "field 'route.start[0]': -1000000.0 is out of range; "
                                                         "expected a number in [-5000.0, 5000.0]"),
    ({"road": {"segments": [{"line": 100}]}}, "field 'road': give either 'road' or 'town', not both"),
    ({"backend": "carla"}, "field 'backend': towns run on the embedded backend"),
])
def test_bad_town_fields_get_one_line_naming_file_field_and_value(change, message):
    data = {k: v for k, v in dict(TOWN_SCENARIO, **change).items() if v is not None}
    with pytest.raises(ScenarioError) as err:
        parse_scenario(data, "scen.yaml")
    assert str(err.value).startswith("scen.yaml: ") and message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_route_point_off_the_roads_is_refused_when_the_town_is_built():
    sc = parse_scenario(dict(TOWN_SCENARIO, route={"start": [-100, -1.75], "via": [[60, 60]], "end": [1.75, 80]}),
                        "scen.yaml")
    with pytest.raises(ScenarioError, match=r"scen.yaml: field 'route.via\[0\]': \[60.0, 60.0\] is not within 10 m"):
        EmbeddedSimulator(render=False).reset(sc)


def test_bad_town_files_name_the_field():
    with pytest.raises(ScenarioError, match="town.yaml: field 'roads\\[0\\].between\\[1\\]': 'Q' is not a node"):
        parse_town({"nodes": [{"name": "A", "at": [0, 0]}, {"name": "B", "at": [100, 0]}],
                    "roads": [{"between": ["A", "Q"]}]}, "town.yaml")
    with pytest.raises(ScenarioError,
                       match=r"field 'junction_radius_m': 2.0 is out of range; expected a number in \[6.0, 40.0\]"):
        parse_town({"junction_radius_m": 2, "nodes": [], "roads": []}, "town.yaml")
    with pytest.raises(ScenarioError, match="town.yaml: node 'A' has 1 road"):
        parse_town({"nodes": [{"name": "A", "at": [0, 0]}, {"name": "B", "at": [100, 0]}],
                    "roads": [{"between": ["A", "B"]}]}, "town.yaml")


def test_a_town_file_reads_exponent_numbers_as_numbers(tmp_path):
    # PyYAML alone reads ``4e0`` as a string; the town reader shares the scenario reader's YAML loader.
    base = load_town("grid_small").spec
    text = (shipped_towns().get("grid_small")).read_text()
    f = tmp_path / "town.yaml"
    f.write_text(text.replace("lane_width_m: 3.5", "lane_width_m: 4e0").replace("speed_limit_kmh: 30",
                                                                                "speed_limit_kmh: 3e1"))
    spec = load_town_file(f).spec
    assert spec.lane_width_m == 4.0 and base.lane_width_m == 3.5 and spec.speed_limit_kmh == 30.0
    f.write_text(text.replace("lane_width_m: 3.5", "lane_width_m: [1, 2"))
    with pytest.raises(ScenarioError, match=r"town.yaml: not valid YAML at line \d+, column \d+"):
        load_town_file(f)


def _grid_small_data(**change):
    import yaml

    data = yaml.safe_load(shipped_towns().get("grid_small").read_text())
    data.update(change)
    return data


@pytest.mark.parametrize("every_m", [0.001, 1e-9, 1.99, -1.0])
def test_parked_cars_closer_than_2_m_are_refused_with_one_line(every_m):
    with pytest.raises(ScenarioError) as err:
        parse_town(_grid_small_data(parked_cars={"every_m": every_m}), "town.yaml")
    msg = str(err.value)
    assert msg.startswith("town.yaml: field 'parked_cars.every_m': ") and "\n" not in msg
    assert repr(every_m) in msg or str(every_m) in msg


def test_parked_cars_are_capped_per_town_and_the_cap_bounds_what_is_placed():
    # A 2 m spacing on grid_small's parking strips places far fewer than the cap: accepted, and the
    # check's worst-case estimate is never exceeded by the seeded placement.
    town = parse_town(_grid_small_data(parked_cars={"every_m": 2.0, "side": "both"}), "town.yaml")
    placed = len(town.parked_cars(np.random.default_rng(0)))
    assert 0 < placed <= 5000
    # A big triangle of long parking streets at 2 m would hold more than 5,000 cars.
    park = {"fillet_radius_m": 50, "parking_m": 2.5}
    big = {"name": "big", "nodes": [{"name": "A", "at": [-4000, 0]}, {"name": "B", "at": [4000, 0]},
                                    {"name": "C", "at": [0, 4000]}],
           "roads": [dict(park, between=["A", "B"]), dict(park, between=["B", "C"]), dict(park, between=["C", "A"])],
           "parked_cars": {"every_m": 2.0}}
    with pytest.raises(ScenarioError) as err:
        parse_town(big, "big.yaml")
    msg = str(err.value)
    assert msg.startswith("big.yaml: field 'parked_cars.every_m': 2.0 m gives up to ") and "at most 5000" in msg
    assert "\n" not in msg
    low = float(msg.split("spacing in [")[1].split(",")[0])
    ok = parse_town(dict(big, parked_cars={"every_m": low + 0.1}), "big.yaml")
    assert 1000 < len(ok.parked_cars(np.random.default_rng(1))) <= 5000


@pytest.mark.parametrize("name, commands", [
    ("town_grid_small", [S, R, R, S]),       # as the scenario's comments say
    ("town_ring_multilane", [L, S, L, S]),
])
def test_the_expert_drives_each_town_route_to_its_end(name, commands):
    sc = load_scenario(name)
    sim = EmbeddedSimulator(render=False)
    obs = sim.reset(sc, seed=0)
    assert sim.route.junction_commands() == commands
    expert, offsets, collisions = Expert(), [], 0
    for _ in range(int(sc.duration_s / sc.dt_s)):
        steer, _ = expert.run_step(obs)
        throttle = 0.6 if obs.speed_mps < sc.target_speed_mps else 0.0
        obs = sim.step(VehicleControl(throttle=throttle, steer=steer))
        offsets.append(abs(obs.truth.lateral_offset_m))
        collisions += len(obs.collisions)
        if obs.done:
            break
    assert obs.done and obs.truth.route_s_m >= obs.truth.route_length_m - 1.0
    assert collisions == 0
    assert np.mean(offsets) < 0.15 and max(offsets) < 1.0
    # the ego ended where the route ends (the scenario's end point, on its lane)
    end = np.array(sc.route.end)
    assert math.hypot(obs.pose.x_m - end[0], -obs.pose.y_m - end[1]) < 10.0


def test_parked_cars_stand_beside_the_route_not_on_it():
    sim = EmbeddedSimulator(render=False)
    sim.reset(load_scenario("town_grid_small"), seed=3)
    parked = [v for v in sim.traffic if v.name.startswith("parked_town")]
    assert len(parked) >= 5
    for v in parked:
        assert abs(v.t_m) > sim.lane_width  # on the parking strip, outside both lanes


def test_traffic_lights_take_turns_on_a_timer():
    town = load_town("grid_small")
    cycle = town.spec.traffic_light_cycle_s
    signalled = [j for j in town.network.junctions.values() if j.controller_ids]
    assert signalled
    period = len(signalled[0].controller_ids) * sum(cycle)
    seen = {cid: set() for j in signalled for cid in j.controller_ids}
    for t in np.arange(0.0, period, 0.25):
        states = light_states(town.network, float(t), cycle)
        for j in signalled:
            per_phase = [{states[s] for s in town.network.controllers[c].signal_ids} for c in j.controller_ids]
            assert all(len(p) == 1 for p in per_phase)  # a phase's lights agree
            lit = [p for p in per_phase if p != {RED}]
            assert len(lit) <= 1  # never two phases at once
            for c, p in zip(j.controller_ids, per_phase):
                seen[c] |= p
    assert all(s == {GREEN, YELLOW, RED} for s in seen.values())


def test_the_town_map_is_what_a_client_gets():
    sim = EmbeddedSimulator(render=False)
    sim.reset(load_scenario("town_grid_small"))
    assert sim.xodr() == load_town("grid_small").xodr
    sim.reset(replace(load_scenario("straight_clear")))
    assert "<junction" not in sim.xodr()
