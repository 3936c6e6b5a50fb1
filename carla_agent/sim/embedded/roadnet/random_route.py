"""Seeded random routes through a town, as town scenarios (start, via points, end).

A route is a random walk on the town's lane graph from a random spawn point,
taking a random way out of every junction, until its length reaches a random
target in ``[min_length_m, max_length_m]``; walks with fewer than
``min_turns`` LEFT/RIGHT junction commands are drawn again. The walk is
written down as points the global route planner cannot route around: the
start (the spawn point, with its heading), the middle of every lane stretch
between junctions (a via point) and the end; the planned route is checked to
follow the walk lane for lane. Everything comes from ``np.random.default_rng(seed)``
and the town's fixed lane order, so one seed gives one route on every run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Hashable, List, Tuple

import numpy as np

from carla_agent.errors import ScenarioError
from carla_agent.sim.embedded.roadnet.town import Town, load_town
from carla_agent.sim.routing.lane_graph import RoutingError
from carla_agent.sim.routing.road_option import RoadOption
from carla_agent.sim.routing.route_planner import GlobalRoutePlanner

#: Walks drawn per seed before giving up.
MAX_TRIES = 500
TURNS = (RoadOption.LEFT, RoadOption.RIGHT)


@dataclass(frozen=True)
class RandomRoute:
    """A route drawn from a seed.

    Attributes:
        start, end: ``(x_m, y_m)`` in the town's frame (x east, y north), on lane centres.
        via: ``(x_m, y_m)`` points between, one per lane stretch between two junctions.
        start_heading_deg: the start lane's direction (counter-clockwise from east).
        commands: the command of each junction crossed, in order.
        length_m: the route's length from start to end.
    """

    start: Tuple[float, float]
    via: Tuple[Tuple[float, float], ...]
    end: Tuple[float, float]
    start_heading_deg: float
    commands: Tuple[RoadOption, ...]
    length_m: float

    @property
    def turns(self) -> int:
        """How many junctions it turns LEFT or RIGHT at."""
        return sum(c in TURNS for c in self.commands)


def _xy(p: np.ndarray) -> Tuple[float, float]:
    return (round(float(p[0]), 3), round(float(p[1]), 3))


def _walk(town: Town, rng: np.random.Generator, target_m: float) -> Tuple[List[Hashable], int, int]:
    """Lane keys of a random walk of about ``target_m`` from a random spawn point, with the start and
    end point indices (the end in the middle of a lane stretch outside the junctions)."""
    lanes = town.lanes
    sp = town.spawn_points[int(rng.integers(len(town.spawn_points)))]
    key, start_idx = lanes.locate(sp.x_m, sp.y_m, sp.yaw_rad, max_distance_m=1.0)
    pts = lanes.segments[key].points_xy_m
    total = float(np.hypot(*np.diff(pts[start_idx:], axis=0).T).sum()) if start_idx < len(pts) - 1 else 0.0
    keys = [key]
    while True:
        successors = lanes.segments[keys[-1]].successors
        nxt = successors[int(rng.integers(len(successors)))]
        keys.append(nxt)
        seg = lanes.segments[nxt]
        if not seg.is_junction and total + 0.5 * seg.length_m >= target_m:
            return keys, start_idx, len(seg.points_xy_m) // 2
        total += seg.length_m


def random_route(town: Town, seed: int, min_turns: int = 3, min_length_m: float = 300.0,
                 max_length_m: float = 700.0) -> RandomRoute:
    """A reproducible random route on ``town`` from ``seed``, with at least ``min_turns`` LEFT/RIGHT
    junction commands and a length (start to end) in ``[min_length_m, max_length_m]`` metres.

    Raises ``ScenarioError`` when no walk of :data:`MAX_TRIES` qualifies (too many turns asked
    for that length on that town).
    """
    if not 0 < min_length_m <= max_length_m:
        raise ScenarioError(f"random route: min_length_m {min_length_m} and max_length_m {max_length_m}: "
                            "expected 0 < min_length_m <= max_length_m")
    rng = np.random.default_rng(seed)
    lanes = town.lanes
    planner = GlobalRoutePlanner(lanes)
    for _ in range(MAX_TRIES):
        keys, start_idx, end_idx = _walk(town, rng, float(rng.uniform(min_length_m, max_length_m)))
        commands = [c for c in _junction_commands(planner, keys)]
        if sum(c in TURNS for c in commands) < min_turns:
            continue
        first = lanes.segments[keys[0]].points_xy_m
        start = _xy(first[start_idx])
        heading = math.degrees(math.atan2(*(first[min(start_idx + 1, len(first) - 1)] - first[start_idx])[::-1]))
        via = tuple(_xy(lanes.segments[k].points_xy_m[len(lanes.segments[k].points_xy_m) // 2])
                    for k in keys[1:-1] if not lanes.segments[k].is_junction)
        end = _xy(lanes.segments[keys[-1]].points_xy_m[end_idx])
        try:
            route = planner.plan([start, *via, end], math.radians(heading))
        except RoutingError:
            continue
        if [leg.key for leg in route.legs] != keys or not min_length_m <= route.length_m <= max_length_m:
            continue  # the planner found a shorter way between two points: draw again
        return RandomRoute(start, via, end, round(heading, 3), tuple(route.junction_commands()), route.length_m)
    raise ScenarioError(f"town '{town.name}': no random route with {min_turns} turns in "
                        f"{min_length_m:g}..{max_length_m:g} m after {MAX_TRIES} tries (seed {seed}); "
                        "ask for fewer turns or a longer route")


def _junction_commands(planner: GlobalRoutePlanner, keys: List[Hashable]) -> List[RoadOption]:
    out, previous = [], RoadOption.LANEFOLLOW
    for option in planner.commands(keys):
        if option != RoadOption.LANEFOLLOW and (previous == RoadOption.LANEFOLLOW or option != previous):
            out.append(option)
        previous = option
    return out


def random_route_scenario(town_name: str, seed: int, *, min_turns: int = 3, min_length_m: float = 300.0,
                          max_length_m: float = 700.0, target_speed_kmh: float | None = None,
                          camera: dict | None = None, weather: str = "clear_noon", lead: dict | None = None):
    """:func:`random_route` on the town ``town_name`` as a :class:`~carla_agent.sim.scenario.Scenario`
    (named ``random_<town>_<seed>``) that the embedded simulator drives like a shipped town scenario.

    ``target_speed_kmh`` defaults to 5 km/h under the town's speed limit; ``duration_s`` leaves
    time for the drive at half that speed plus a red light at every junction. ``lead`` is the
    scenario's ``traffic.lead`` (``{gap_m, speed_kmh}``): a car ahead on the route that drives it
    by the same rules (``town_traffic``).
    """
    from carla_agent.sim.scenario import parse_scenario

    town = load_town(town_name)
    r = random_route(town, seed, min_turns, min_length_m, max_length_m)
    speed_kmh = target_speed_kmh if target_speed_kmh is not None else max(town.spec.speed_limit_kmh - 5.0, 5.0)
    duration_s = min(3600.0, r.length_m / (0.5 * speed_kmh / 3.6) + 20.0 * len(r.commands) + 20.0)
    data = {
        "name": f"random_{town.name}_{seed}",
        "description": f"seeded random route {seed} on {town.name}: {r.length_m:.0f} m, "
                       f"{' '.join(c.name for c in r.commands)}",
        "town": town_name,
        "route": {"start": list(r.start), "via": [list(p) for p in r.via], "end": list(r.end),
                  "start_heading_deg": r.start_heading_deg},
        "weather": weather, "ego": {"target_speed_kmh": speed_kmh}, "duration_s": round(duration_s, 1),
    }
    if lead is not None:
        data["traffic"] = {"lead": dict(lead)}
    if camera is not None:
        data["camera"] = dict(camera)
    return parse_scenario(data, f"<random route {seed} on {town.name}>")
