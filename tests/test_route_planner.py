"""The global route planner on a small hand-made town: path and junction commands.

The network (OpenDRIVE frame, x east, y north; right-hand traffic, 1 lane each way,
3.5 m lanes, so an eastbound lane centre lies at y = -1.75 on a road along y = 0)::

    n01 ---- n11 ---- n21        y = 120
     |        |        |
    n00 ---- n10 ---- n20        y = 0
    x=0     x=150    x=300

The expected commands are written down by hand from this drawing, as
CARLA's GlobalRoutePlanner decides them: a junction crossed without turning
is STRAIGHT, a turn towards the driver's left is LEFT.
"""

from __future__ import annotations

import numpy as np
import pytest

from carla_agent.sim.embedded.roadnet.builder import EdgeSpec, NetworkSpec, NodeSpec, build_network
from carla_agent.sim.embedded.roadnet.lanes import lane_graph
from carla_agent.sim.routing.lane_graph import RoutingError, link_by_endpoints
from carla_agent.sim.routing.road_option import RoadOption
from carla_agent.sim.routing.route_planner import GlobalRoutePlanner

L, R, S = RoadOption.LEFT, RoadOption.RIGHT, RoadOption.STRAIGHT


def small_town():
    nodes = tuple(NodeSpec(f"n{i}{j}", 150.0 * i, 120.0 * j, traffic_lights=(i, j) == (1, 0))
                  for i in range(3) for j in range(2))
    edges = (EdgeSpec("n00", "n10"), EdgeSpec("n10", "n20"), EdgeSpec("n01", "n11"), EdgeSpec("n11", "n21"),
             EdgeSpec("n00", "n01"), EdgeSpec("n10", "n11"), EdgeSpec("n20", "n21"))
    return build_network(NetworkSpec("small", nodes, edges))


@pytest.fixture(scope="module")
def planner():
    return GlobalRoutePlanner(lane_graph(small_town()))


@pytest.mark.parametrize("points, expected", [
    # eastbound on n00-n10, then north on n10-n11: a left turn at n10
    ([(50, -1.75), (151.75, 60)], [L]),
    # eastbound through n10 to n10-n20: straight on
    ([(50, -1.75), (250, -1.75)], [S]),
    # westbound on n10-n20, then north at n10 (the driver's right)
    ([(250, 1.75), (151.75, 60)], [R]),
    # eastbound, left at n10 (north), right at n11 (east) to n11-n21
    ([(50, -1.75), (250, 118.25)], [L, R]),
    # westbound on n11-n21 towards n01, through n11 and then left at n01 (south) onto n00-n01
    ([(250, 121.75), (-1.75, 60)], [S, L]),
    # a via point: eastbound to n20, left (north) up n20-n21, left (west) at n21, straight through n11
    ([(50, -1.75), (301.75, 60), (75, 121.75)], [S, L, L, S]),
])
def test_commands_at_junctions_match_the_hand_written_route(planner, points, expected):
    route = planner.plan(points)
    assert route.junction_commands() == expected
    # the route starts and ends on the points given (lane centres), within the 1 m sampling
    assert np.hypot(*(route.points_xy_m[0] - points[0])) < 1.0
    assert np.hypot(*(route.points_xy_m[-1] - points[-1])) < 1.0
    # and is continuous: no step longer than the sampling
    steps = np.hypot(*np.diff(route.points_xy_m, axis=0).T)
    assert steps.max() < 1.5
    assert route.options.shape == (len(route.points_xy_m),)


def test_the_shortest_way_is_taken(planner):
    # n00-n10 eastbound to n00-n01 southbound: around the western block (left, left, left) is
    # 150 + 120 + 150 = about 420 m; any other way is longer.
    route = planner.plan([(50, -1.75), (-1.75, 100)])
    assert route.junction_commands() == [L, L, L]
    assert 380 < route.length_m < 460


def test_a_goal_behind_the_start_loops_round_the_block(planner):
    route = planner.plan([(100, -1.75), (50, -1.75)], start_heading_rad=0.0)
    assert route.length_m > 400  # round a block, not 50 m backwards
    assert len(route.junction_commands()) >= 3


def test_a_point_off_the_roads_is_refused(planner):
    with pytest.raises(RoutingError, match="no driving lane within"):
        planner.plan([(75, 60), (50, -1.75)])


def test_the_planner_runs_on_carla_maps_topology():
    """The same planner fed by the real wheel's carla.Map (y negated) gives the same commands."""
    carla = pytest.importorskip("carla")
    from carla_agent.sim.embedded.roadnet.writer import write_network_xodr

    m = carla.Map("small", write_network_xodr(small_town()))
    items = []
    for entry, _ in m.get_topology():
        wps = [entry] + entry.next_until_lane_end(1.0)
        pts = np.array([(w.transform.location.x, -w.transform.location.y) for w in wps])
        items.append(((entry.road_id, entry.section_id, entry.lane_id), pts, entry.is_junction))
    graph = link_by_endpoints(items, tolerance_m=0.3)
    assert graph.is_strongly_connected()
    planner = GlobalRoutePlanner(graph)
    assert planner.plan([(50, -1.75), (250, 118.25)]).junction_commands() == [L, R]
    assert planner.plan([(250, 121.75), (-1.75, 60)]).junction_commands() == [S, L]
