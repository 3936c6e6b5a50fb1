"""A route through a town as one junction-free road: the corridor the ego drives.

The embedded simulator tracks, scores and steers the ego on a single
:class:`~carla_agent.sim.embedded.road.Road`. For a town route that road is
made from the route's lanes: each leg's lane centre is an exact offset of its
road's lines and arcs (an arc of curvature k offset by t stays an arc, of
curvature k / (1 - k t)), so the corridor's reference line is the route lane's
left edge, laid end to end through the junctions, with the ego's lane (-1)
right of it and the lane beside it (+1) left of it. Where the route starts,
ends and each junction begins and ends are kept as distances along it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from carla_agent.errors import ScenarioError
from carla_agent.sim.embedded.road import Lane, Road, RoadMark
from carla_agent.sim.embedded.roadnet.builder import chain_pieces
from carla_agent.sim.embedded.roadnet.model import RoadNetwork
from carla_agent.sim.routing.road_option import RoadOption
from carla_agent.sim.routing.route_planner import Route

#: The command of a junction is given from this far before its entry until its exit, metres
#: (as CARLA's local planner hands on the command of the route's waypoints ahead).
COMMAND_AHEAD_M = 20.0


@dataclass(frozen=True)
class Corridor:
    """The route as a road.

    Attributes:
        road: reference line = the route lane's left edge; lane -1 is the route lane.
        start_s_m, end_s_m: where the route's start and end points lie along it.
        legs: ``(s_from_m, s_to_m, road_id, lane_id, option)`` of each leg, in order.
    """

    road: Road
    start_s_m: float
    end_s_m: float
    legs: Tuple[Tuple[float, float, int, int, RoadOption], ...]

    def leg_at(self, s_m: float) -> Tuple[float, float, int, int, RoadOption]:
        """The leg under distance ``s_m`` along the corridor (the last one past its end)."""
        for leg in self.legs:
            if s_m < leg[1]:
                return leg
        return self.legs[-1]

    def command_at(self, s_m: float, ahead_m: float = COMMAND_AHEAD_M) -> RoadOption:
        """The high-level command at ``s_m``: a junction's (LEFT, RIGHT, STRAIGHT) from ``ahead_m``
        before its first leg until the end of its last, LANEFOLLOW elsewhere."""
        for s_from, s_to, _road, _lane, option in self.legs:
            if s_from > s_m + ahead_m:
                break
            if option != RoadOption.LANEFOLLOW and s_from - ahead_m <= s_m < s_to:
                return RoadOption(option)
        return RoadOption.LANEFOLLOW


def _leg_pieces(net: RoadNetwork, road_id: int, lane_id: int, source: str) -> List[Tuple[str, float, float]]:
    r = net.roads[road_id].road
    w = r.lane(lane_id).width_m
    edge_t = -abs(r.lane_center_t(lane_id)) + 0.5 * w  # the lane's left edge, in its driving direction
    geoms = r.geometries if lane_id < 0 else tuple(reversed(r.geometries))
    out = []
    for g in geoms:
        if g.kind == "spiral":
            raise ScenarioError(f"{source}: road {road_id} has a spiral; routes run on lines and arcs only")
        k = g.curv_start if lane_id < 0 else -g.curv_start  # driven backwards, a left bend is a right one
        scale = 1.0 - k * edge_t
        out.append(("line" if k == 0 else "arc", g.length_m * scale, k / scale if k else 0.0))
    return out


def _cut(pieces: List[Tuple[str, float, float]], length_m: float) -> List[Tuple[str, float, float]]:
    """``pieces`` cut (or lengthened with a line) to ``length_m`` in all."""
    out, s = [], 0.0
    for kind, length, k in pieces:
        if s + length >= length_m:
            out.append((kind, length_m - s, k))
            return out
        out.append((kind, length, k))
        s += length
    out.append(("line", length_m - s, 0.0))
    return out


def build_corridor(net: RoadNetwork, route: Route, source: str = "<town>", run_out_m: float = 8.0) -> Corridor:
    """The corridor of ``route`` (legs keyed ``(road_id, lane_id)``) on ``net``.

    It ends ``run_out_m`` past the route's end point (a line where the lanes end sooner).
    """
    first_key = route.legs[0].key
    r0 = net.roads[first_key[0]]
    lane0 = r0.road.lane(first_key[1])
    pts0 = route.points_xy_m
    pieces, legs, s = [], [], 0.0
    for leg in route.legs:
        leg_pieces = _leg_pieces(net, leg.key[0], leg.key[1], source)
        length = sum(p[1] for p in leg_pieces)
        legs.append((s, s + length, leg.key[0], leg.key[1], leg.option))
        pieces.extend(leg_pieces)
        s += length
    # Start from the first leg's lane start, on its left edge.
    road0 = r0.road
    s_start = 0.0 if first_key[1] < 0 else road0.length_m
    x, y, h = (float(v) for v in road0.pose_at(s_start))
    if first_key[1] > 0:
        h += math.pi
    edge_t = -abs(road0.lane_center_t(first_key[1])) + 0.5 * lane0.width_m
    x, y = x - edge_t * math.sin(h), y + edge_t * math.cos(h)
    merged: List[Tuple[str, float, float]] = []
    for p in pieces:  # join consecutive lines and equal arcs: fewer, longer geometries
        if merged and merged[-1][0] == p[0] and abs(merged[-1][2] - p[2]) < 1e-12:
            merged[-1] = (p[0], merged[-1][1] + p[1], p[2])
        else:
            merged.append(p)
    w = lane0.width_m
    end_s = _project_end(merged, x, y, h, legs, pts0)
    merged = _cut(merged, end_s + run_out_m)
    beside = "solid solid" if abs(first_key[1]) == 1 else "broken"
    road = Road(chain_pieces(merged, x, y, h), (Lane(1, "driving", w, RoadMark("solid")),),
                (Lane(-1, "driving", w, RoadMark("solid")),),
                RoadMark(beside, "yellow" if beside == "solid solid" else "standard"),
                name=f"{net.name}:route", speed_limit_mps=r0.road.speed_limit_mps)
    start_s = road.project(float(pts0[0, 0]), float(pts0[0, 1]), s_hint=legs[0][0] + 1.0,
                           window_m=legs[0][1] - legs[0][0] + 2.0)[0]
    return Corridor(road, float(start_s), float(end_s), tuple(legs))


def _project_end(pieces, x: float, y: float, h: float, legs, pts: np.ndarray) -> float:
    """Distance along the uncut corridor of the route's last point, measured on the last leg."""
    s0, s1 = legs[-1][0], legs[-1][1]
    probe = Road(chain_pieces(pieces, x, y, h), (), (Lane(-1, "driving", 1.0),), RoadMark("none"))
    return float(probe.project(float(pts[-1, 0]), float(pts[-1, 1]), s_hint=0.5 * (s0 + s1),
                               window_m=0.5 * (s1 - s0) + 2.0)[0])


def corridor_points(corridor: Corridor, step_m: float = 1.0) -> np.ndarray:
    """``(N, 2)`` lane-centre points of the corridor from its start to its end."""
    s = np.arange(corridor.start_s_m, corridor.end_s_m, step_m)
    x, y = corridor.road.to_world(s, corridor.road.lane_center_t(-1))
    return np.stack([x, y], axis=1)
