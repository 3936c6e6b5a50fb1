"""Ground truth on the client-side map: lane-centre waypoints, lateral offset, heading error.

Everything here reads the map with ``map.get_waypoint`` and the waypoints' own
neighbours, so it is testable without a server on ``carla.Map(name, xodr_text)``.
Positions are in CARLA's world frame (metres; y right/south, yaw clockwise in degrees).
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

from carla_agent.sim.carla_backend.client import import_carla

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


def off_road(carla_map, location) -> bool:
    """True when ``location`` is on no driving lane."""
    carla = import_carla()
    return carla_map.get_waypoint(location, project_to_road=False, lane_type=carla.LaneType.Driving) is None

