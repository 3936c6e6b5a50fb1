"""Ground truth on the client-side map: lane-centre waypoints, lateral offset, heading error,
lanes going one way (a road's class) and the speed limits the map's OpenDRIVE gives its roads.

Everything here reads the map with ``map.get_waypoint`` and the waypoints' own
neighbours, so it is testable without a server on ``carla.Map(name, xodr_text)``.
Positions are in CARLA's world frame (metres; y right/south, yaw clockwise in degrees).
"""

from __future__ import annotations

import io
import logging
import math
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional, Tuple

import numpy as np

from carla_agent.sim.carla_backend.client import import_carla
from carla_agent.sim.criteria import outside_lanes

log = logging.getLogger(__name__)


#: OpenDRIVE's speed units, in m/s per unit (the standard's default unit is m/s).
_SPEED_UNITS = {"m/s": 1.0, "km/h": 1.0 / 3.6, "mph": 0.44704}

def wrap_pi(a: float) -> float:
    return (a + math.pi) % (2.0 * math.pi) - math.pi


def signed_offset(x: float, y: float, transform) -> float:
    """Distance of ``(x, y)`` from ``transform``'s location along its right vector (positive right)."""
    right = transform.get_right_vector()
    loc = transform.location
    norm = math.hypot(right.x, right.y) or 1.0
    return ((x - loc.x) * right.x + (y - loc.y) * right.y) / norm


def heading_error(vehicle_yaw_deg: float, lane_yaw_deg: float) -> float:
    """Vehicle yaw minus lane yaw in radians, wrapped to [-pi, pi]; positive: pointing right."""
    return wrap_pi(math.radians(vehicle_yaw_deg - lane_yaw_deg))


def lane_waypoint(carla_map, location, lane_key: Optional[Tuple[int, int]] = None):
    """The lane-centre waypoint beside ``location``: ``map.get_waypoint(loc, project_to_road=True,
    lane_type=Driving)``, moved sideways to the lane ``(road_id, lane_id)`` when given.

    Returns None when that lane is not within four lanes of the nearest one. A lane id
    names one lane only within one lane section (roads renumber their lanes between
    sections), so the backend's ground truth measures against its
    :class:`~carla_agent.sim.carla_backend.route.Route` instead.
    """
    carla = import_carla()
    wp = carla_map.get_waypoint(location, project_to_road=True, lane_type=carla.LaneType.Driving)
    if wp is None or lane_key is None or (wp.road_id, wp.lane_id) == lane_key:
        return wp
    for step in ("get_left_lane", "get_right_lane"):
        other = wp
        for _ in range(4):
            other = getattr(other, step)()
            if other is None:
                break
            if (other.road_id, other.lane_id) == lane_key:
                return other
    return None


def lanes_same_way(carla_map, location) -> int:
    """Driving lanes going the same way as the lane at ``location`` (0 in a junction or off road)."""
    carla = import_carla()
    wp = carla_map.get_waypoint(location, project_to_road=True, lane_type=carla.LaneType.Driving)
    if wp is None or wp.is_junction:
        return 0
    return waypoint_lanes_same_way(wp)


def waypoint_lanes_same_way(wp) -> int:
    """Driving lanes beside ``wp`` (itself included) going its way, within its lane section: the road's class."""
    carla = import_carla()
    count = 1
    for step in ("get_left_lane", "get_right_lane"):
        other = getattr(wp, step)()
        for _ in range(8):
            if other is None or other.lane_id * wp.lane_id <= 0:
                break
            if other.lane_type == carla.LaneType.Driving:
                count += 1
            other = getattr(other, step)()
    return count


def outside_route_lanes(carla_map, location, route_yaw_deg: float) -> bool:
    """The leaderboard's ``OutsideRouteLanesTest`` at ``location``: its nearest driving (or
    parking) lane centre is more than half that lane's width + ``criteria.ALLOWED_OUT_M`` away, or,
    outside junctions, that lane goes against the route (heading more than
    ``criteria.WRONG_WAY_DEG`` from ``route_yaw_deg``). A lane change the route's way is not outside."""
    carla = import_carla()
    nearest = None
    for lane_type in (carla.LaneType.Driving, carla.LaneType.Parking):
        wp = carla_map.get_waypoint(location, project_to_road=True, lane_type=lane_type)
        if wp is not None:
            c = wp.transform.location
            d = math.hypot(location.x - c.x, location.y - c.y)
            if nearest is None or d < nearest[0]:
                nearest = (d, wp)
    if nearest is None:
        return True
    d, wp = nearest
    return outside_lanes(d, wp.lane_width, math.radians(wp.transform.rotation.yaw), math.radians(route_yaw_deg),
                         wp.lane_type != carla.LaneType.Driving or wp.is_junction)


def off_road(carla_map, location) -> bool:
    """True when ``location`` is on no driving lane."""
    carla = import_carla()
    return carla_map.get_waypoint(location, project_to_road=False, lane_type=carla.LaneType.Driving) is None



def map_speed_limits(carla_map) -> Dict[int, List[Tuple[float, float]]]:
    """:func:`road_speed_limits` of ``carla_map.to_opendrive()``; empty (with a warning) when unreadable."""
    try:
        return road_speed_limits(carla_map.to_opendrive())
    except ET.ParseError as exc:
        log.warning("no speed limits from the map's OpenDRIVE: %s", exc)
        return {}


def route_speed_limits(limits: Dict[int, List[Tuple[float, float]]], waypoints) -> np.ndarray:
    """``(N,)`` float64 speed limit in m/s at each of ``waypoints`` (by road id and ``s``); NaN where
    the map gives none."""
    return np.array([speed_limit_at(limits, w.road_id, w.s) or math.nan for w in waypoints], dtype=np.float64)


def road_speed_limits(xodr_text: str) -> Dict[int, List[Tuple[float, float]]]:
    """The speed limits an OpenDRIVE map gives its roads: ``road_id -> [(s_m, limit_mps), ...]``
    sorted by ``s_m``, from each road's ``<type s=...><speed max=... unit=.../></type>``.

    Roads with no ``<speed>`` (or ``max="no limit"``) are left out. ``xodr_text`` is
    ``carla.Map.to_opendrive()``.
    """
    limits: Dict[int, List[Tuple[float, float]]] = {}
    for _, el in ET.iterparse(io.StringIO(xodr_text), events=("end",)):
        if el.tag != "road":
            continue
        for rtype in el.findall("type"):
            speed = rtype.find("speed")
            if speed is None:
                continue
            try:
                value = float(speed.get("max", "")) * _SPEED_UNITS.get(speed.get("unit", "m/s"), 1.0)
                road_id, s = int(el.get("id", "")), float(rtype.get("s", "0"))
            except ValueError:
                continue
            if math.isfinite(value) and value > 0:
                limits.setdefault(road_id, []).append((s, value))
        el.clear()
    return {k: sorted(v) for k, v in limits.items()}


def speed_limit_at(limits: Dict[int, List[Tuple[float, float]]], road_id: int, s_m: float) -> Optional[float]:
    """The limit (m/s) in force at ``s_m`` on road ``road_id`` from :func:`road_speed_limits`, or None."""
    records = limits.get(road_id)
    if not records:
        return None
    found = records[0][1]  # before the first record: the road's first limit
    for start, value in records:
        if start > s_m + 1e-6:
            break
        found = value
    return found
