"""Spawn points on every driving lane of a road network, in both directions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List

from carla_agent.sim.embedded.road import SAMPLE_DS_M
from carla_agent.sim.embedded.roadnet.lanes import driving_lanes
from carla_agent.sim.embedded.roadnet.model import RoadNetwork


MAX_CURVATURE = 1 / 50.0


@dataclass(frozen=True)
class SpawnPoint:
    """A place to put a car: lane centre, facing the lane's driving direction.

    ``x_m``/``y_m`` and ``yaw_rad`` are OpenDRIVE's (x east, y north,
    counter-clockwise); CARLA's transform is ``(x, -y)`` and ``-yaw`` in degrees.
    ``s_m`` is the distance along the road's reference line.
    """

    x_m: float
    y_m: float
    yaw_rad: float
    road_id: int
    lane_id: int
    s_m: float


def spawn_points(net: RoadNetwork, spacing_m: float = 25.0, end_margin_m: float = 8.0) -> List[SpawnPoint]:
    """Points every ``spacing_m`` along every driving lane outside junctions.

    None closer than ``end_margin_m`` to a road's ends (the stop lines and
    crosswalks lie there), none on a bend sharper than 50 m radius (a car
    placed there would start across its lane). Ordered by road, lane, then along the lane.
    """
    out: List[SpawnPoint] = []
    for rid in sorted(net.roads):
        r = net.roads[rid]
        if r.junction_id >= 0 or r.length_m < 2 * end_margin_m:
            continue
        usable = r.length_m - 2 * end_margin_m
        count = max(1, int(usable // spacing_m) + 1)
        offsets = [end_margin_m + (usable * (i + 0.5) / count) for i in range(count)]
        for lane_id in sorted(driving_lanes(r)):
            t = r.road.lane_center_t(lane_id)
            ss = offsets if lane_id < 0 else offsets[::-1]
            for s in ss:
                if abs(float(r.road.curvature[min(int(s / SAMPLE_DS_M), len(r.road.s) - 1)])) > MAX_CURVATURE:
                    continue
                x, y = r.road.to_world(s, t)
                h = r.road.heading_at(s) + (0.0 if lane_id < 0 else math.pi)
                out.append(SpawnPoint(float(x), float(y), math.atan2(math.sin(h), math.cos(h)), rid, lane_id, s))
    return out
