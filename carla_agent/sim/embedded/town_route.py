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


def free_corridor(town: Town, x_m: float, y_m: float, yaw_rad: float, length_m: float, seed: int,
                  run_out_m: float) -> Tuple[Route, Corridor]:
    """A corridor of about ``length_m`` from the lane under ``(x_m, y_m)`` driven towards ``yaw_rad``,
    taking a seeded random way out of each junction (as CARLA's Traffic Manager does): what a served
    town lays under an ego that its client drives wherever it likes.

    Raises ``RoutingError`` when no lane runs near the point in that direction.
    """
    lanes = town.lanes
    key, index = lanes.locate(x_m, y_m, yaw_rad, max_distance_m=6.0, junctions=True)
    rng = np.random.default_rng([seed, int(abs(x_m) * 10), int(abs(y_m) * 10)])
    keys = [key]
    first = lanes.segments[key].points_xy_m[index:]
    total = float(np.hypot(*np.diff(first, axis=0).T).sum()) if len(first) > 1 else 0.0
    while total < length_m:
        successors = lanes.segments[keys[-1]].successors
        if not successors:
            break
        keys.append(successors[int(rng.integers(len(successors)))])
        total += lanes.lengths_m[keys[-1]]
    planner = GlobalRoutePlanner(lanes)
    pieces = [((key, index), keys, (keys[-1], len(lanes.segments[keys[-1]].points_xy_m) - 1))]
    route = planner.assemble(keys, pieces)
    return route, build_corridor(town.network, route, "<served town>", run_out_m)


def _served_route_ends(town: Town, tries: int = 24):
    """The start and end spawn points of a served town's scenario route: the first spawn point and the
    middle one where a route of at least 50 m joins them (always so in the YAML towns, whose roads all
    meet in junctions), else the first pair of the first ``tries`` points that has one (an OpenDRIVE
    map may have dead ends and one-way roads)."""
    points = town.spawn_points
    order = [(0, len(points) // 2)] + [(i, j) for i in range(min(tries, len(points)))
                                       for j in range(len(points) - 1, -1, -1) if i != j]
    planner = GlobalRoutePlanner(town.lanes)
    for i, j in order[:tries * tries]:
        a, b = points[i], points[j]
        try:
            if planner.plan([(a.x_m, a.y_m), (b.x_m, b.y_m)], a.yaw_rad).length_m >= 50.0:
                return a, b
        except RoutingError:
            continue
    raise ScenarioError(f"{town.spec.source}: no two spawn points are joined by a route of 50 m or more; "
                        "the map needs a longer road (or a loop) to drive")


def served_town_scenario(name: str):
    """A scenario that serves town ``name`` (``serve --town``, ``load_world``): the ego starts on the
    first spawn point; its client then drives it anywhere (the corridor follows, see ``reroute``)."""
    from carla_agent.sim.scenario import parse_scenario

    town = load_town(name)
    start, end = _served_route_ends(town)
    return parse_scenario({
        "name": town.name, "description": f"the town {town.name}, served", "town": name,
        "route": {"start": [start.x_m, start.y_m], "end": [end.x_m, end.y_m],
                  "start_heading_deg": math.degrees(start.yaw_rad)},
        "ego": {"target_speed_kmh": town.spec.speed_limit_kmh}, "duration_s": 3600,
    }, f"town {town.spec.source}")
