"""Seeded random town routes: reproducible, turning, bounded, and drivable as town scenarios."""

from __future__ import annotations

import pytest

from carla_agent.errors import ScenarioError
from carla_agent.sim.embedded.roadnet.random_route import random_route, random_route_scenario
from carla_agent.sim.embedded.roadnet.town import load_town
from carla_agent.sim.embedded.simulator import EmbeddedSimulator
from carla_agent.sim.routing.road_option import RoadOption


@pytest.mark.parametrize("town_name", ["grid_small", "ring_multilane"])
def test_a_seed_gives_one_route_with_three_turns_or_more(town_name):
    town = load_town(town_name)
    routes = [random_route(town, seed) for seed in range(6)]
    assert routes == [random_route(town, seed) for seed in range(6)]  # the same on a second draw
    assert len({(r.start, r.end) for r in routes}) == len(routes)  # and another for another seed
    for r in routes:
        assert sum(c in (RoadOption.LEFT, RoadOption.RIGHT) for c in r.commands) >= 3 and r.turns >= 3
        assert 300.0 <= r.length_m <= 700.0
    longer = random_route(town, 0, min_turns=5, min_length_m=800.0, max_length_m=1200.0)
    assert longer.turns >= 5 and 800.0 <= longer.length_m <= 1200.0


def test_the_scenario_drives_the_drawn_route():
    r = random_route(load_town("grid_small"), 7)
    sc = random_route_scenario("grid_small", 7, camera={"image_size_x": 200, "image_size_y": 66})
    assert sc.town == "grid_small" and sc.route.start == r.start and sc.camera.image_size_x == 200
    sim = EmbeddedSimulator(render=False)
    obs = sim.reset(sc)
    assert tuple(sim.route.junction_commands()) == r.commands
    assert abs(sim.route.length_m - r.length_m) < 1.0
    assert obs.truth.route_length_m == pytest.approx(sim.corridor.end_s_m - sim.start_s, abs=0.5)


def test_impossible_asks_are_refused_in_one_line():
    with pytest.raises(ScenarioError, match="no random route with 40 turns"):
        random_route(load_town("grid_small"), 0, min_turns=40, min_length_m=300.0, max_length_m=320.0)
    with pytest.raises(ScenarioError, match="expected 0 < min_length_m <= max_length_m"):
        random_route(load_town("grid_small"), 0, min_length_m=500.0, max_length_m=100.0)
