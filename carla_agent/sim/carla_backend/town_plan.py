"""A town scenario's own route on a CARLA map: planned by the project's global route planner.

A scenario with ``town:`` and ``route:`` (start, via, end in the town's frame: x east,
y north) names its route; on the CARLA backend (a served town, or any CARLA map with
the same geometry) the route is planned over the map's ``get_topology()`` by
:class:`~carla_agent.sim.routing.route_planner.GlobalRoutePlanner`, as on the embedded
towns, and the backend then walks ``waypoint.next`` choosing, at each junction, the
branch whose lane is on the plan (:meth:`TownPlan.choose`). The ego spawns at the
start, on its lane, heading along it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import FrozenSet, Hashable

import numpy as np

from carla_agent.errors import ScenarioError
from carla_agent.sim.carla_backend.spec import TransformSpec
from carla_agent.sim.routing.lane_graph import RoutingError, link_by_endpoints
from carla_agent.sim.routing.route_planner import GlobalRoutePlanner

#: [m] spacing of the points each topology segment is sampled at.
SAMPLE_M = 1.0
#: [m] how near a segment's first point must lie to another's last to follow it.
LINK_TOLERANCE_M = 0.3
#: [m] the ego spawns this far above its lane (as CARLA's spawn points).
SPAWN_LIFT_M = 0.5


@dataclass(frozen=True)
class TownPlan:
    """The planned route.

    Attributes:
        spawn: where the ego spawns (CARLA's frame).
        keys: ``(road_id, section_id, lane_id)`` of every lane segment on the route.
        length_m: [m] the route's length, start to end.
        commands: the junction commands in order (names), for the log.
    """

    spawn: TransformSpec
    keys: FrozenSet[Hashable]
    length_m: float
    commands: tuple

    def choose(self, wp, options):
        """The branch of ``options`` (``wp.next``'s) on the plan, else the first (past the route's end)."""
        for option in options:
            if (option.road_id, option.section_id, option.lane_id) in self.keys:
                return option
        return options[0]


def plan_town_route(carla_map, scenario, carla) -> TownPlan:
    """Plan ``scenario.route`` on ``carla_map``.

    Raises:
        ScenarioError: the route's points are on no lane of the map, or no lane path joins them.
    """
    items = []
    for entry, _ in carla_map.get_topology():
        wps = [entry] + list(entry.next_until_lane_end(SAMPLE_M))
        pts = np.array([(w.transform.location.x, -w.transform.location.y) for w in wps])
        items.append(((entry.road_id, entry.section_id, entry.lane_id), pts, bool(entry.is_junction)))
    r = scenario.route
    points = [tuple(r.start)] + [tuple(p) for p in r.via] + [tuple(r.end)]
    heading = None if r.start_heading_deg is None else math.radians(r.start_heading_deg)
    try:
        route = GlobalRoutePlanner(link_by_endpoints(items, LINK_TOLERANCE_M)).plan(points, heading)
    except RoutingError as exc:
        raise ScenarioError(f"{scenario.source}: field 'route': on map {carla_map.name}: {exc}") from None
    x, y = route.points_xy_m[0]
    d = route.points_xy_m[min(2, len(route.points_xy_m) - 1)] - route.points_xy_m[0]
    wp = carla_map.get_waypoint(carla.Location(x=float(x), y=float(-y), z=0.0), project_to_road=True)
    z = (wp.transform.location.z if wp is not None else 0.0) + SPAWN_LIFT_M
    # The planner's frame has y north; CARLA's yaw turns clockwise from x with y south.
    yaw_deg = -math.degrees(math.atan2(float(d[1]), float(d[0])))
    return TownPlan(TransformSpec(x_m=float(x), y_m=float(-y), z_m=z, yaw_deg=yaw_deg),
                    frozenset(leg.key for leg in route.legs), float(route.length_m),
                    tuple(c.name for c in route.junction_commands()))


def town_plan_for(scenario, spec, carla_map, carla):
    """The plan of a town scenario's route on its (served) town, or None: not a town scenario, or one whose
    ``carla:`` fields choose the map or the spawn themselves (those drive as any CARLA scenario)."""
    if (getattr(scenario, "town", None) is None or getattr(scenario, "route", None) is None or spec.map
            or spec.spawn_point is not None or spec.spawn_transform is not None):
        return None
    return plan_town_route(carla_map, scenario, carla)
