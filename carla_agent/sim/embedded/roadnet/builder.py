"""A :class:`RoadNetwork` from nodes and edges: the compact form towns are written in.

Every node is a junction (degree >= 2; a dead end is refused, so a car never
runs out of road). Every edge is a two-way road from node ``a`` to node ``b``
(its reference line runs a -> b, optionally through ``via`` points rounded
with arcs of ``fillet_radius_m``), trimmed ``junction_radius_m`` short of
both nodes. Inside a junction one connecting road joins each incoming road to
each other arm (no U-turns): a line when the arms are aligned, else the one arc
tangent to both. Through traffic (turns under ``LANE_MIX_DEG``) keeps its
lane: one connecting road of ``min(lanes in, lanes out)`` lanes, lane -k
linked to lane -k. Sharper turns between multi-lane roads get one single-lane
connecting road per (lane in, lane out) pair, so every lane reaches every
other through the junctions. Nodes with ``traffic_lights`` get a
light and a stop line on every incoming arm, the lights of opposite arms
sharing a controller (one phase); every arm of every junction gets a crosswalk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from carla_agent.errors import ScenarioError
from carla_agent.sim.embedded.road import Geometry, Lane, Road, RoadMark
from carla_agent.sim.embedded.roadnet.model import (Connection, Controller, Crosswalk, Junction, Link, NetRoad,
                                                    RoadNetwork, Signal)

#: Where the stop line sits, metres before the junction's border (the crosswalk lies in between).
STOP_LINE_BACK_M = 4.5
CROSSWALK_M = (0.5, 3.5)  # from, length: metres before the border
#: Smallest radius of a lane centre through a junction turn, metres.
MIN_TURN_RADIUS_M = 3.0
#: Turns sharper than this between multi-lane roads may change lanes (any lane to any lane), degrees.
LANE_MIX_DEG = 30.0


@dataclass(frozen=True)
class NodeSpec:
    """A junction at ``(x_m, y_m)`` (OpenDRIVE frame: x east, y north)."""

    name: str
    x_m: float
    y_m: float
    traffic_lights: bool = False


@dataclass(frozen=True)
class EdgeSpec:
    """A two-way road from node ``a`` to node ``b`` with ``lanes`` driving lanes each way."""

    a: str
    b: str
    lanes: int = 1
    via: Tuple[Tuple[float, float], ...] = ()
    fillet_radius_m: float = 20.0
    parking_m: float = 0.0  # a parking strip (a shoulder lane) each side, between lanes and sidewalk


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    nodes: Tuple[NodeSpec, ...]
    edges: Tuple[EdgeSpec, ...]
    lane_width_m: float = 3.5
    sidewalk_width_m: float = 2.0
    junction_radius_m: float = 12.0
    speed_limit_mps: float = 30 / 3.6
    source: str = "<town>"


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def chain_pieces(pieces: List[Tuple[str, float, float]], x: float, y: float, hdg: float) -> Tuple[Geometry, ...]:
    """Geometries for ``(kind, length, curvature)`` pieces laid end to end from ``(x, y, hdg)``."""
    out, s = [], 0.0
    for kind, length, k in pieces:
        if length <= 1e-6:
            continue
        g = Geometry(s, x, y, hdg, length, kind, k, k)
        out.append(g)
        ex, ey, eh = g.evaluate(np.array([length]))
        x, y, hdg, s = float(ex[0]), float(ey[0]), float(eh[0]), s + length
    return tuple(out)


def polyline_geometries(points: List[Tuple[float, float]], fillet_m: float, trim_start_m: float,
                        trim_end_m: float, where: str) -> Tuple[Geometry, ...]:
    """Lines through ``points`` with arcs of radius ``fillet_m`` at inner vertices, trimmed at both ends."""
    p = np.asarray(points, dtype=np.float64)
    seg = np.diff(p, axis=0)
    lengths = np.hypot(seg[:, 0], seg[:, 1])
    if np.any(lengths < 1e-6):
        raise ScenarioError(f"{where}: two points of the road coincide")
    angles = np.arctan2(seg[:, 1], seg[:, 0])
    deflect = [_wrap(float(angles[i + 1] - angles[i])) for i in range(len(angles) - 1)]
    if any(abs(d) > math.radians(150) for d in deflect):
        raise ScenarioError(f"{where}: the road turns back on itself at a via point (over 150 degrees)")
    tangents = [fillet_m * math.tan(abs(d) / 2) for d in deflect]
    pieces: List[Tuple[str, float, float]] = []
    for i, length in enumerate(lengths):
        cut_a = trim_start_m if i == 0 else tangents[i - 1]
        cut_b = trim_end_m if i == len(lengths) - 1 else tangents[i]
        straight = float(length) - cut_a - cut_b
        if straight < 0:
            raise ScenarioError(f"{where}: segment {i} is {length:.1f} m long, too short for the junctions and "
                                f"arcs at its ends ({cut_a + cut_b:.1f} m); move the points apart or lower "
                                "junction_radius_m / fillet_radius_m")
        pieces.append(("line", straight, 0.0))
        if i < len(deflect) and abs(deflect[i]) > 1e-9:
            pieces.append(("arc", fillet_m * abs(deflect[i]), math.copysign(1.0 / fillet_m, deflect[i])))
    start = p[0] + trim_start_m * seg[0] / lengths[0]
    return chain_pieces(pieces, float(start[0]), float(start[1]), float(angles[0]))


def _street_lanes(n: int, lane_w: float, walk_w: float, sign: int, parking_m: float = 0.0) -> Tuple[Lane, ...]:
    lanes = [Lane(sign * (k + 1), "driving", lane_w,
                  RoadMark("solid") if k == n - 1 else RoadMark("broken")) for k in range(n)]
    if parking_m > 0:
        lanes.append(Lane(sign * (len(lanes) + 1), "shoulder", parking_m, RoadMark("none")))
    if walk_w > 0:
        lanes.append(Lane(sign * (len(lanes) + 1), "sidewalk", walk_w, RoadMark("none")))
    return tuple(lanes)


@dataclass
class _Arm:
    road_id: int
    contact: str  # "start" or "end": which end of the road touches the node
    angle_rad: float  # direction from the node out along the arm
    lanes: int


def build_network(spec: NetworkSpec) -> RoadNetwork:
    """The network of ``spec``; raises ``ScenarioError`` naming ``spec.source`` on a bad layout."""
    nodes = {n.name: n for n in spec.nodes}
    R, w, walk = spec.junction_radius_m, spec.lane_width_m, spec.sidewalk_width_m
    arms: Dict[str, List[_Arm]] = {n.name: [] for n in spec.nodes}
    roads: Dict[int, NetRoad] = {}
    for rid, e in enumerate(spec.edges):
        where = f"{spec.source}: road {e.a}-{e.b}"
        for end in (e.a, e.b):
            if end not in nodes:
                raise ScenarioError(f"{where}: unknown node {end!r}; known nodes: {', '.join(sorted(nodes))}")
        pts = [(nodes[e.a].x_m, nodes[e.a].y_m), *e.via, (nodes[e.b].x_m, nodes[e.b].y_m)]
        geoms = polyline_geometries(pts, e.fillet_radius_m, R, R, where)
        road = Road(geoms, _street_lanes(e.lanes, w, walk, 1, e.parking_m), _street_lanes(e.lanes, w, walk, -1, e.parking_m),
                    RoadMark("solid solid", "yellow"), name=f"{e.a}-{e.b}", speed_limit_mps=spec.speed_limit_mps)
        roads[rid] = NetRoad(rid, road)
        out_a = math.atan2(pts[1][1] - pts[0][1], pts[1][0] - pts[0][0])
        out_b = math.atan2(pts[-2][1] - pts[-1][1], pts[-2][0] - pts[-1][0])
        arms[e.a].append(_Arm(rid, "start", out_a, e.lanes))
        arms[e.b].append(_Arm(rid, "end", out_b, e.lanes))
    net = RoadNetwork(spec.name, roads)
    # CARLA looks a road's successor id up among the roads first: junction ids must not be road ids.
    next_id = [len(spec.edges) + len(spec.nodes)]
    for index, node in enumerate(spec.nodes):
        jid = len(spec.edges) + index
        node_arms = arms[node.name]
        if len(node_arms) < 2:
            raise ScenarioError(f"{spec.source}: node {node.name!r} has {len(node_arms)} road(s); every node needs "
                                "at least 2 (no dead ends: a car must never run out of road)")
        _junction(net, jid, node, node_arms, spec, next_id)
    return net


def _end_pose(road: Road, contact: str, arriving: bool) -> Tuple[float, float, float]:
    s = road.length_m if contact == "end" else 0.0
    x, y, h = road.pose_at(s)
    # Right lanes run along +s: they arrive at the road's end and leave from its start.
    flip = (contact == "start") == arriving
    return float(x), float(y), float(h) + (math.pi if flip else 0.0)


def _junction(net: RoadNetwork, jid: int, node: NodeSpec, arms: List[_Arm], spec: NetworkSpec,
              next_id: List[int]) -> None:
    w, walk = spec.lane_width_m, spec.sidewalk_width_m
    connections: List[Connection] = []
    for arm in arms:
        r = net.roads[arm.road_id]
        link = Link("junction", jid)
        net.roads[arm.road_id] = NetRoad(r.id, r.road, link if arm.contact == "start" else r.predecessor,
                                         link if arm.contact == "end" else r.successor, r.junction_id, r.lane_links,
                                         r.signals, r.crosswalks)
    for a_in in arms:
        x0, y0, h0 = _end_pose(net.roads[a_in.road_id].road, a_in.contact, arriving=True)
        for a_out in arms:
            if a_out is a_in:
                continue
            x1, y1, h1 = _end_pose(net.roads[a_out.road_id].road, a_out.contact, arriving=False)
            turn = _wrap(h1 - h0)
            if abs(turn) > math.radians(170):
                continue  # a U-turn
            in_sign = -1 if a_in.contact == "end" else 1
            out_sign = -1 if a_out.contact == "start" else 1
            if abs(turn) < math.radians(LANE_MIX_DEG) or a_in.lanes == a_out.lanes == 1:
                # Through traffic keeps its lane: one road of m concentric lanes.
                m = min(a_in.lanes, a_out.lanes)
                pieces = _tangent_pieces(x0, y0, h0, x1, y1, h1)
                pairs = [(k + 1, k + 1) for k in range(m)]
                if pieces is None or _too_tight(pieces, m, w):
                    raise ScenarioError(f"{spec.source}: node {node.name!r}: junction_radius_m "
                                        f"{spec.junction_radius_m:g} is too small for a turn across {m} lane(s) "
                                        f"of {w:g} m; make it larger")
                _connecting(net, connections, jid, node, a_in, a_out, pieces, (x0, y0, h0), pairs, in_sign,
                            out_sign, w, spec, next_id)
                continue
            # A turn between multi-lane roads may end in any lane: one single-lane road per lane pair,
            # so that every lane can reach every other through the junctions (CARLA's topology).
            made = 0
            for i in range(1, a_in.lanes + 1):
                for j in range(1, a_out.lanes + 1):
                    # The connecting lane's reference line is its left edge.
                    ax, ay = x0 + (i - 1) * w * math.sin(h0), y0 - (i - 1) * w * math.cos(h0)
                    bx, by = x1 + (j - 1) * w * math.sin(h1), y1 - (j - 1) * w * math.cos(h1)
                    pieces = _tangent_pieces(ax, ay, h0, bx, by, h1)
                    if pieces is None or _too_tight(pieces, 1, w):
                        continue
                    _connecting(net, connections, jid, node, a_in, a_out, pieces, (ax, ay, h0), [(i, 1)],
                                in_sign, out_sign, w, spec, next_id, out_lane=j)
                    made += 1
            if not made:
                raise ScenarioError(f"{spec.source}: node {node.name!r}: no lane of road {a_in.road_id} can "
                                    f"turn into road {a_out.road_id}; make junction_radius_m larger")
    controller_ids = _signals(net, node, arms, spec, next_id) if node.traffic_lights else ()
    _crosswalks(net, arms, w, walk, next_id)
    net.junctions[jid] = Junction(jid, tuple(connections), controller_ids, (node.x_m, node.y_m),
                                  spec.junction_radius_m)


def _tangent_pieces(x0: float, y0: float, h0: float, x1: float, y1: float,
                    h1: float) -> Optional[List[Tuple[str, float, float]]]:
    """A line, an arc tangent to both headings, and a line, from pose 0 to pose 1; None if none fits."""
    turn = _wrap(h1 - h0)
    chord = math.hypot(x1 - x0, y1 - y0)
    if abs(turn) < 1e-6:
        ok = abs((x1 - x0) * math.sin(h0) - (y1 - y0) * math.cos(h0)) < 1e-6
        return [("line", chord, 0.0)] if ok else None
    u0, u1 = (math.cos(h0), math.sin(h0)), (math.cos(h1), math.sin(h1))
    # Where the two tangents meet: x0 + a*u0 = x1 - b*u1.
    det = u0[0] * u1[1] - u0[1] * u1[0]
    dx, dy = x1 - x0, y1 - y0
    a = (dx * u1[1] - dy * u1[0]) / det
    b = (u0[0] * dy - u0[1] * dx) / det
    if a <= 0 or b <= 0:
        return None
    tangent = min(a, b)
    radius = tangent / math.tan(abs(turn) / 2)
    return [("line", a - tangent, 0.0), ("arc", radius * abs(turn), math.copysign(1.0 / radius, turn)),
            ("line", b - tangent, 0.0)]


def _too_tight(pieces: List[Tuple[str, float, float]], lanes: int, w: float) -> bool:
    """Whether a right turn puts a lane centre (right of the reference line) inside MIN_TURN_RADIUS_M."""
    for kind, _, k in pieces:
        if kind == "arc" and k < 0 and 1.0 / abs(k) - (lanes - 0.5) * w < MIN_TURN_RADIUS_M:
            return True
    return False


def _connecting(net: RoadNetwork, connections: List[Connection], jid: int, node: NodeSpec, a_in: "_Arm",
                a_out: "_Arm", pieces, pose, pairs, in_sign: int, out_sign: int, w: float, spec: NetworkSpec,
                next_id: List[int], out_lane: Optional[int] = None) -> None:
    """Add one connecting road; ``pairs`` are (incoming lane rank, connecting lane rank)."""
    cid = next_id[0]
    next_id[0] += 1
    lanes = tuple(Lane(-c, "driving", w, RoadMark("none")) for _, c in pairs)
    road = Road(chain_pieces(pieces, *pose), (), lanes, RoadMark("none"),
                name=f"{node.name}:{a_in.road_id}->{a_out.road_id}", speed_limit_mps=spec.speed_limit_mps)
    lane_links = {-c: (in_sign * i, out_sign * (out_lane or c)) for i, c in pairs}
    net.roads[cid] = NetRoad(cid, road, Link("road", a_in.road_id, a_in.contact),
                             Link("road", a_out.road_id, a_out.contact), jid, lane_links)
    connections.append(Connection(len(connections), a_in.road_id, cid, "start",
                                  tuple((in_sign * i, -c) for i, c in pairs)))


def _near_node_s(road: Road, contact: str, back_m: float) -> float:
    return road.length_m - back_m if contact == "end" else back_m


def _signals(net: RoadNetwork, node: NodeSpec, arms: List[_Arm], spec: NetworkSpec,
             next_id: List[int]) -> Tuple[int, ...]:
    """A light and a stop line on every arm; arms within 30 degrees of opposite share a phase."""
    phases: List[List[_Arm]] = []
    for arm in arms:
        for phase in phases:
            if abs(abs(_wrap(phase[0].angle_rad - arm.angle_rad)) - math.pi) < math.radians(30):
                phase.append(arm)
                break
        else:
            phases.append([arm])
    w, walk = spec.lane_width_m, spec.sidewalk_width_m
    controller_ids = []
    for phase in phases:
        light_ids = []
        for arm in phase:
            r = net.roads[arm.road_id]
            side = -1.0 if arm.contact == "end" else 1.0  # the arriving lanes' side
            orientation = "+" if arm.contact == "end" else "-"
            s = _near_node_s(r.road, arm.contact, STOP_LINE_BACK_M)
            edge = arm.lanes * w + _parking(r)
            light = Signal(next_id[0], "traffic_light", s, side * (edge + 0.5 * max(walk, 1.0)),
                           orientation, 0.5, 5.0)
            stop = Signal(next_id[0] + 1, "stop_line", s, side * 0.5 * arm.lanes * w, orientation,
                          arm.lanes * w, 0.0)
            next_id[0] += 2
            light_ids.append(light.id)
            net.roads[arm.road_id] = NetRoad(r.id, r.road, r.predecessor, r.successor, r.junction_id, r.lane_links,
                                             r.signals + (light, stop), r.crosswalks)
        cid = next_id[0]
        next_id[0] += 1
        net.controllers[cid] = Controller(cid, tuple(light_ids))
        controller_ids.append(cid)
    return tuple(controller_ids)


def _parking(r: NetRoad) -> float:
    return sum(lane.width_m for lane in r.road.right_lanes if lane.type == "shoulder")


def _crosswalks(net: RoadNetwork, arms: List[_Arm], w: float, walk: float, next_id: List[int]) -> None:
    for arm in arms:
        r = net.roads[arm.road_id]
        start, length = CROSSWALK_M
        s = _near_node_s(r.road, arm.contact, start + 0.5 * length)
        half = arm.lanes * w
        cw = Crosswalk(next_id[0], s, length, -half, half)
        next_id[0] += 1
        net.roads[arm.road_id] = NetRoad(r.id, r.road, r.predecessor, r.successor, r.junction_id, r.lane_links,
                                         r.signals, r.crosswalks + (cw,))

