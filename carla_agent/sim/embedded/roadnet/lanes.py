"""A road network's driving lanes as a :class:`~carla_agent.sim.routing.lane_graph.LaneGraph`.

One segment per driving lane of every road, keyed ``(road_id, lane_id)``,
its centre line sampled about every ``step_m`` in driving direction (right
lanes along +s, left lanes against it). Successors follow OpenDRIVE's links:
a lane leaving into a junction continues on the connecting lanes the
junction's lane links name; a lane leaving into a road continues on its lane
link, or on the lane of the same rank when the file gives none.
"""

from __future__ import annotations

import math
from typing import Hashable, List, Optional, Tuple

import numpy as np

from carla_agent.sim.embedded.roadnet.model import Link, NetRoad, RoadNetwork
from carla_agent.sim.routing.lane_graph import LaneGraph, LaneSegment


def lane_points(r: NetRoad, lane_id: int, step_m: float = 1.0) -> np.ndarray:
    """``(N, 2)`` centre line of a lane in its driving direction, N >= 2."""
    n = max(2, int(math.ceil(r.length_m / step_m)) + 1)
    s = np.linspace(0.0, r.length_m, n)
    x, y = r.road.to_world(s, r.road.lane_center_t(lane_id))
    pts = np.stack([x, y], axis=1)
    return pts if lane_id < 0 else pts[::-1].copy()


def driving_lanes(r: NetRoad) -> List[int]:
    return [lane.id for lane in r.road.left_lanes + r.road.right_lanes if lane.type == "driving"]


def _exit(r: NetRoad, lane_id: int) -> Tuple[Optional[Link], int]:
    """The link a lane drives into, and the lane-link id there (0 when the file gives none)."""
    pred, succ = r.lane_links.get(lane_id, (None, None))
    if lane_id < 0:
        return r.successor, succ or 0
    return r.predecessor, pred or 0


def successors(net: RoadNetwork, r: NetRoad, lane_id: int) -> List[Hashable]:
    """Keys ``(road_id, lane_id)`` of the driving lanes that follow a lane's end."""
    link, lane_link = _exit(net.roads[r.id], lane_id)
    out: List[Hashable] = []
    if link is None:
        return out
    if link.element_type == "junction":
        junction = net.junctions.get(link.element_id)
        if junction is None:
            return out
        for c in junction.connections:
            if c.incoming_road != r.id:
                continue
            for a, b in c.lane_links:
                if a == lane_id:
                    out.append((c.connecting_road, b))
        return [k for k in out if k[0] in net.roads and k[1] in driving_lanes(net.roads[k[0]])]
    other = net.roads.get(link.element_id)
    if other is None:
        return out
    if lane_link == 0:
        # Lanes leave a road's start along +s (right lanes) and its end against it (left lanes).
        lane_link = -abs(lane_id) if link.contact_point == "start" else abs(lane_id)
    if lane_link in driving_lanes(other):
        out.append((other.id, lane_link))
    return out


def lane_graph(net: RoadNetwork, step_m: float = 1.0) -> LaneGraph:
    """Every driving lane of ``net`` as a segment with its successors."""
    segments = []
    for r in net.roads.values():
        for lane_id in driving_lanes(r):
            segments.append(LaneSegment((r.id, lane_id), lane_points(r, lane_id, step_m), r.junction_id >= 0,
                                        tuple(successors(net, r, lane_id))))
    return LaneGraph(segments)
