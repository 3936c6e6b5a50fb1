"""scenarios/leaderboard/routes_towns.xml, read by the Leaderboard 2.0's own rules, on the towns as served.

The Leaderboard is not needed: the file is read as ``leaderboard/utils/route_parser.py`` reads it
(``<routes>/<route id town>/<weathers>, <waypoints>/<position x y z>, <scenarios>/<scenario name
type>/<trigger_point x y z yaw>``), each town must be one ``serve`` serves under that map name (the
evaluator compares ``get_map().name.split('/')[-1]`` with the route's town), every position must lie
within 2 m of a driving lane of the town through the real wheel's ``carla.Map``, and every trigger
point within 2 m and 10 degrees of a lane centre of the route (``RouteParser.is_scenario_at_route``
drops a scenario that is not, silently but for a warning).
"""

from __future__ import annotations

import importlib.util
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from carla_agent.sim.embedded.roadnet.catalog import shipped_towns
from carla_agent.sim.embedded.roadnet.town import load_town
from carla_agent.sim.embedded.town_route import served_town_scenario
from carla_agent.sim.routing.route_planner import GlobalRoutePlanner

carla = pytest.importorskip("carla")

ROOT = Path(__file__).resolve().parents[1]
ROUTES = ROOT / "scenarios" / "leaderboard" / "routes_towns.xml"
DIST_THRESHOLD_M = 2.0  # leaderboard/utils/route_parser.py
ANGLE_THRESHOLD_DEG = 10.0
#: The kinds issue 20 asks for on every route (following a leading car, a hard brake, a parked
#: obstacle, control loss, a crossing pedestrian), by their ScenarioRunner class names.
REQUIRED_KINDS = {"FollowLeadingVehicle", "HardBreakRoute", "ParkedObstacle", "ControlLoss", "DynamicObjectCrossing"}
WEATHER_FIELDS = {"cloudiness", "precipitation", "precipitation_deposits", "wetness", "wind_intensity",
                  "sun_azimuth_angle", "sun_altitude_angle", "fog_density", "route_percentage"}


def _routes():
    root = ET.parse(ROUTES).getroot()
    assert root.tag == "routes"
    return list(root.iter("route"))


def _xyz(elem) -> tuple:
    return tuple(float(elem.attrib[k]) for k in ("x", "y", "z"))


def _yaw_diff_deg(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def test_every_shipped_town_has_a_route_under_its_served_map_name():
    towns = [r.attrib["town"] for r in _routes()]
    ids = [r.attrib["id"] for r in _routes()]
    assert len(set(ids)) == len(ids)
    assert set(towns) == set(shipped_towns().names())
    for town in towns:
        # serve --town NAME and load_world(NAME) serve this scenario; its name is the map's name
        assert served_town_scenario(town).name == town


def test_the_file_is_what_the_tool_writes(tmp_path):
    spec = importlib.util.spec_from_file_location("leaderboard_routes", ROOT / "tools" / "leaderboard_routes.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    for route in _routes():
        written = tool.route_xml(int(route.attrib["id"]), route.attrib["town"])
        route.tail = None
        assert ET.canonicalize(written, strip_text=True) == ET.canonicalize(ET.tostring(route), strip_text=True)


@pytest.mark.parametrize("route", _routes(), ids=lambda r: r.attrib["town"])
def test_route_parses_and_lies_on_the_served_town(route):
    town = load_town(route.attrib["town"])
    m = carla.Map(town.name, town.xodr)
    weathers = route.find("weathers")
    assert weathers is not None and len(weathers)
    for w in weathers.iter("weather"):
        assert set(w.attrib) <= WEATHER_FIELDS and 0.0 <= float(w.attrib["route_percentage"]) <= 100.0
    positions = [_xyz(p) for p in route.find("waypoints").iter("position")]
    assert len(positions) >= 2
    for x, y, z in positions:
        wp = m.get_waypoint(carla.Location(x, y, z), project_to_road=True, lane_type=carla.LaneType.Driving)
        assert wp is not None and wp.transform.location.distance(carla.Location(x, y, z)) < DIST_THRESHOLD_M
    # the route as our planner takes it through the same keypoints (town frame: y mirrored)
    planned = GlobalRoutePlanner(town.lanes).plan([(x, -y) for x, y, _ in positions]).points_xy_m
    kinds = set()
    for sc in route.find("scenarios").iter("scenario"):
        name, kind = sc.attrib["name"], sc.attrib["type"]
        assert name and kind
        triggers = [c for c in sc if c.tag == "trigger_point"]
        assert len(triggers) == 1, name
        x, y, z = _xyz(triggers[0])
        yaw = float(triggers[0].attrib["yaw"])
        wp = m.get_waypoint(carla.Location(x, y, z))
        assert wp.lane_type == carla.LaneType.Driving and not wp.is_junction, name
        assert wp.transform.location.distance(carla.Location(x, y, z)) < DIST_THRESHOLD_M, name
        assert _yaw_diff_deg(wp.transform.rotation.yaw, yaw) < ANGLE_THRESHOLD_DEG, name
        assert abs(z - wp.transform.location.z) < DIST_THRESHOLD_M, name
        d = np.hypot(planned[:, 0] - x, planned[:, 1] + y)
        assert d.min() < DIST_THRESHOLD_M, f"{name} is {d.min():.1f} m off the route"
        i = int(np.argmin(d))
        j = min(i + 1, len(planned) - 1)
        heading = math.degrees(math.atan2(planned[j, 1] - planned[i, 1], planned[j, 0] - planned[i, 0]))
        assert _yaw_diff_deg(-heading, yaw) < ANGLE_THRESHOLD_DEG, f"{name} faces against the route"
        kinds.add(kind)
    assert kinds >= REQUIRED_KINDS
