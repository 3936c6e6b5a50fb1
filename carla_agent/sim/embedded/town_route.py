"""A town scenario's route, planned and laid out as the corridor the embedded simulator drives.

The town is built from its YAML (cached by :func:`~.roadnet.town.load_town`),
the route planned through the scenario's start, via and end points with the
global route planner, and turned into a :class:`~.roadnet.corridor.Corridor`.
The town's parked cars that stand beside the corridor become parked
:class:`~.traffic.TrafficVehicle` s on it (those elsewhere are out of the ego's way).
"""

from __future__ import annotations

import functools
import math
from typing import List, Tuple

import numpy as np

from carla_agent.errors import ScenarioError
from carla_agent.sim.embedded.roadnet.corridor import Corridor, build_corridor
from carla_agent.sim.embedded.roadnet.town import Town, load_town
from carla_agent.sim.embedded.traffic import TrafficVehicle
from carla_agent.sim.routing.lane_graph import RoutingError
from carla_agent.sim.routing.route_planner import GlobalRoutePlanner, Route

#: A route point farther than this from every driving lane is refused, metres.
MAX_POINT_OFF_LANE_M = 10.0


def _check_points(town: Town, scenario) -> None:
    rs = scenario.route
    named = [("route.start", rs.start)] + [(f"route.via[{i}]", p) for i, p in enumerate(rs.via)] + [("route.end", rs.end)]
    for field_name, (x, y) in named:
        try:
            town.lanes.locate(x, y, max_distance_m=MAX_POINT_OFF_LANE_M)
        except RoutingError:
            raise ScenarioError(f"{scenario.source}: field '{field_name}': [{x}, {y}] is not within "
                                f"{MAX_POINT_OFF_LANE_M:g} m of a driving lane outside the junctions of town "
                                f"'{town.name}'; pick a point on a road") \
                from None


@functools.lru_cache(maxsize=8)
def _plan(town_name: str, route_spec, source: str, run_out_m: float) -> Tuple[Route, Corridor]:
    town = load_town(town_name)
    points = [route_spec.start, *route_spec.via, route_spec.end]
    heading = None if route_spec.start_heading_deg is None else math.radians(route_spec.start_heading_deg)
    try:
        route = GlobalRoutePlanner(town.lanes).plan(points, heading)
    except RoutingError as exc:
        raise ScenarioError(f"{source}: field 'route': {exc}") from None
    return route, build_corridor(town.network, route, source, run_out_m)


def town_corridor(scenario, run_out_m: float) -> Tuple[Town, Route, Corridor]:
    """The scenario's town, planned route and corridor (raises ``ScenarioError`` naming the field)."""
    town = load_town(scenario.town)
    _check_points(town, scenario)
    route, corridor = _plan(scenario.town, scenario.route, scenario.source, run_out_m)
    return town, route, corridor


def parked_on_corridor(town: Town, corridor: Corridor, rng: np.random.Generator,
                       colors: List[tuple]) -> List[TrafficVehicle]:
    """The town's parked cars within 8 m of the corridor's reference line, as parked vehicles on it."""
    out = []
    road = corridor.road
    for i, (x, y, yaw) in enumerate(town.parked_cars(rng)):
        d2 = (road.x - x) ** 2 + (road.y - y) ** 2
        j = int(np.argmin(d2))
        if d2[j] > 8.0 ** 2:
            continue
        s, t = road.project(x, y, s_hint=float(road.s[j]), window_m=5.0)
        along = math.cos(yaw - road.heading_at(s))
        if 0.0 < s < road.length_m and abs(t) < 8.0 and abs(along) > 0.9:
            out.append(TrafficVehicle(f"parked_town_{i}", float(s), float(t), 0.0,
                                      colors[int(rng.integers(len(colors)))]))
    return out
