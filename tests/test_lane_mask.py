"""The pixels of a stretch of the route's lane: what tools/turn_attention.py compares saliency maps with."""

from __future__ import annotations

import numpy as np
import pytest

from carla_agent.drive.agent import ExpertAgent
from carla_agent.errors import BackendError
from carla_agent.sim.embedded.simulator import EmbeddedSimulator
from carla_agent.sim.observation import SemanticClass
from carla_agent.sim.routing.road_option import RoadOption
from carla_agent.sim.scenario import load_scenario

ROADWAY = (int(SemanticClass.ROAD), int(SemanticClass.LANE_MARKING))


def test_the_lane_turned_into_is_road_in_the_image_and_on_the_side_of_the_turn():
    sc = load_scenario("town_grid_small")  # straight at C, then right at E
    with EmbeddedSimulator() as sim:
        obs = sim.reset(sc)
        agent = ExpertAgent(sc.target_speed_mps)
        entry, exit_s, option = sim.junction_leg_ahead([RoadOption.RIGHT])
        first = sim.junction_leg_ahead([RoadOption.LEFT, RoadOption.RIGHT, RoadOption.STRAIGHT])
        assert option == RoadOption.RIGHT and first[2] == RoadOption.STRAIGHT and first[1] <= entry
        ahead = sim.route_lane_mask(sim.s + 10.0, sim.s + 30.0)  # the car's own lane, straight ahead
        h, w = ahead.shape
        assert ahead.sum() > 0.01 * h * w and abs(np.nonzero(ahead)[1].mean() - w / 2) < w / 10
        assert np.isin(obs.truth.semantic[ahead], ROADWAY).mean() > 0.95
        assert not sim.route_lane_mask(0.0, sim.s - 5.0).any()  # behind the camera: nothing
        while sim.s < 0.5 * (entry + exit_s):
            obs = sim.step(agent.run_step(obs).control)
        turned_into = sim.route_lane_mask(exit_s, exit_s + 30.0)
        later = sim.junction_leg_ahead([RoadOption.STRAIGHT])  # C is behind the car now: only a later one
        assert later is None or later[0] >= exit_s
    assert turned_into.sum() > 0.01 * h * w
    assert np.isin(obs.truth.semantic[turned_into], ROADWAY).mean() > 0.95
    cols = np.nonzero(turned_into)[1]
    assert np.mean(cols > w / 2) > 0.8  # mid-turn right, the lane turned into is on the right
    assert np.isin(obs.truth.semantic[~turned_into], ROADWAY).mean() < 0.6  # and not the whole road


def test_without_a_renderer_it_says_so():
    with EmbeddedSimulator(render=False) as sim:
        sim.reset(load_scenario("town_grid_small"))
        with pytest.raises(BackendError, match="render=True"):
            sim.route_lane_mask(10.0, 20.0)
