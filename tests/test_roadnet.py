"""The towns' road networks in OpenDRIVE, checked through the real ``carla`` wheel's client-side map.

For every shipped town: ``carla.Map(name, xodr)`` parses it with nothing on
stderr; every spawn point's waypoint is on a Driving lane, the spawn point's
own road and lane; ``get_topology()`` chains into one strongly connected graph;
``waypoint.next()`` never runs dry; the reader reads back exactly what the
writer wrote; and what lies outside the subset gets a one-line error.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from carla_agent.errors import ScenarioError
from carla_agent.sim.embedded.roadnet.builder import EdgeSpec, NetworkSpec, NodeSpec, build_network
from carla_agent.sim.embedded.roadnet.catalog import shipped_towns
from carla_agent.sim.embedded.roadnet.reader import read_network_xodr
from carla_agent.sim.embedded.roadnet.town import load_town
from carla_agent.sim.embedded.roadnet.writer import write_network_xodr
from carla_agent.sim.routing.lane_graph import link_by_endpoints

carla = pytest.importorskip("carla")

TOWNS = shipped_towns().names()


def test_at_least_two_towns_are_shipped():
    assert {"grid_small", "ring_multilane"} <= set(TOWNS)


@pytest.fixture(scope="module", params=TOWNS)
def town_and_map(request):
    town = load_town(request.param)
    return town, carla.Map(town.name, town.xodr)


def test_the_wheel_parses_every_town_without_a_word_on_stderr(tmp_path):
    files = []
    for name in TOWNS:
        path = tmp_path / f"{name}.xodr"
        path.write_text(load_town(name).xodr)
        files.append(str(path))
    code = ("import sys, carla\n"
            "for p in sys.argv[1:]:\n"
            "    m = carla.Map('t', open(p).read())\n"
            "    assert len(m.get_topology()) > 0\n")
    out = subprocess.run([sys.executable, "-c", code, *files], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip() == ""


def test_every_spawn_point_lies_on_its_driving_lane(town_and_map):
    town, m = town_and_map
    points = town.spawn_points
    assert len(points) >= 36  # dozens
    lanes = {(p.road_id, p.lane_id) for p in points}
    driving = {k for k, s in town.lanes.segments.items() if not s.is_junction}
    assert lanes == driving  # every driving lane outside junctions, both directions
    for p in points:
        wp = m.get_waypoint(carla.Location(p.x_m, -p.y_m, 0.5))
        assert wp.lane_type == carla.LaneType.Driving
        assert (wp.road_id, wp.lane_id) == (p.road_id, p.lane_id)
        loc = wp.transform.location
        dx, dy = loc.x - p.x_m, -loc.y - p.y_m
        # on the lane centre (CARLA's projection is exact across the lane; along a bend it steps in s)
        assert abs(-dx * np.sin(p.yaw_rad) + dy * np.cos(p.yaw_rad)) < 0.02
        assert abs(dx * np.cos(p.yaw_rad) + dy * np.sin(p.yaw_rad)) < 0.5
        # facing the lane's driving direction (CARLA's yaw is OpenDRIVE's, negated)
        dyaw = (wp.transform.rotation.yaw + np.degrees(p.yaw_rad) + 180) % 360 - 180
        assert abs(dyaw) < 1.0


def test_the_topology_is_one_strongly_connected_graph(town_and_map):
    town, m = town_and_map
    topology = m.get_topology()
    items = {}
    for entry, _ in topology:
        wps = [entry] + entry.next_until_lane_end(1.0)
        pts = np.array([(w.transform.location.x, -w.transform.location.y) for w in wps])
        items[(entry.road_id, entry.section_id, entry.lane_id)] = (pts, entry.is_junction)
    graph = link_by_endpoints([(k, p, j) for k, (p, j) in items.items()], tolerance_m=0.3)
    assert len(graph.segments) == len(town.lanes.segments)
    assert graph.is_strongly_connected()
    assert town.lanes.is_strongly_connected()


def test_next_never_runs_dry(town_and_map):
    town, m = town_and_map
    for p in town.spawn_points[::max(1, len(town.spawn_points) // 6)]:
        wp = m.get_waypoint(carla.Location(p.x_m, -p.y_m, 0.5))
        travelled = 0.0
        while travelled < 2000.0:
            nxt = wp.next(2.0)
            assert nxt, f"waypoint.next ran dry after {travelled:.0f} m on road {wp.road_id}"
            assert nxt[0].transform.location.distance(wp.transform.location) < 2.5  # no jump at a junction
            wp, travelled = nxt[0], travelled + 2.0


def test_signals_and_crosswalks_reach_the_wheel(town_and_map):
    town, m = town_and_map
    lights = [s for r in town.network.roads.values() for s in r.signals if s.kind == "traffic_light"]
    landmarks = [lm for lm in m.get_all_landmarks() if lm.type == "1000001"]
    assert len(landmarks) == len(lights) > 0
    crosswalks = sum(len(r.crosswalks) for r in town.network.roads.values())
    assert len(m.get_crosswalks()) == 5 * crosswalks  # CARLA lists each outline's 5 corners


def test_the_reader_reads_back_what_the_writer_wrote(town_and_map, tmp_path):
    town, _ = town_and_map
    path = tmp_path / "town.xodr"
    path.write_text(town.xodr)
    again = read_network_xodr(path)
    assert write_network_xodr(again) == town.xodr
    assert set(again.junctions) == set(town.network.junctions)


def _square():
    nodes = (NodeSpec("a", 0, 0), NodeSpec("b", 100, 0), NodeSpec("c", 100, 100), NodeSpec("d", 0, 100))
    edges = (EdgeSpec("a", "b"), EdgeSpec("b", "c"), EdgeSpec("c", "d"), EdgeSpec("d", "a"))
    return write_network_xodr(build_network(NetworkSpec("square", nodes, edges)))


@pytest.mark.parametrize("old, new, message", [
    ('<laneSection s="0">', '<laneSection s="0" />\n<laneSection s="1">', "only one lane section"),
    ("<line />", '<paramPoly3 aU="0" />', "not a line, arc or spiral"),
    ('a="2" b="0" c="0"', 'a="2" b="0.1" c="0"',
     "one constant <width>"),
    ('elementType="junction" elementId="4"', 'elementType="junction" elementId="99"',
     "junction id=99, which the file does not define"),
    ('<laneOffset s="0" a="0"', '<laneOffset s="0" a="1.5"', "non-zero <laneOffset>"),
])
def test_what_lies_outside_the_subset_gets_one_line_naming_it(tmp_path, old, new, message):
    text = _square()
    assert old in text
    path = tmp_path / "bad.xodr"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ScenarioError) as err:
        read_network_xodr(path)
    assert message in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_dead_end_is_refused():
    nodes = (NodeSpec("a", 0, 0), NodeSpec("b", 100, 0), NodeSpec("c", 200, 0))
    with pytest.raises(ScenarioError, match="node 'c' has 1 road"):
        build_network(NetworkSpec("line", nodes, (EdgeSpec("a", "b"), EdgeSpec("b", "c"), EdgeSpec("a", "b"))))
