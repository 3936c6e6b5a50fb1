"""What the ego touches and what drives ahead of it on a CARLA server: collision events counted
once per contact, and the nearest vehicle on the route ahead (the speed controller's lead car).

Plain Python on the ``carla`` objects the session hands in (sensor events, actors); no
``carla`` import. Positions are CARLA world metres.
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from carla_agent.sim.carla_backend.sensors import collision_kind
from carla_agent.sim.observation import CollisionEvent

#: Vehicles further ahead than this along the route are not a lead car, metres.
LEAD_RANGE_M = 100.0


class ContactTracker:
    """Turns the collision sensor's events into one :class:`CollisionEvent` per thing hit: a contact
    that goes on over consecutive ticks counts once. Things are told apart by actor id, and the map's
    static objects (all id 0, as CARLA reports them) by type."""

    def __init__(self) -> None:
        self._contacts: set = set()

    def reset(self) -> None:
        self._contacts = set()

    def update(self, events: Iterable, frame: int) -> List[CollisionEvent]:
        """The new contacts among this tick's ``events`` (``carla.CollisionEvent``), stamped ``frame``."""
        now: Dict[object, CollisionEvent] = {}
        for ev in events:
            other = ev.other_actor
            type_id = str(getattr(other, "type_id", "") or "static.unknown")
            other_id = int(getattr(other, "id", 0) or 0)
            imp = ev.normal_impulse
            impulse = math.sqrt(imp.x * imp.x + imp.y * imp.y + imp.z * imp.z)
            key = other_id if other_id else (0, type_id)
            prev = now.get(key)
            if prev is None or impulse > prev.impulse_ns:
                now[key] = CollisionEvent(frame, type_id, collision_kind(type_id), impulse, other_id)
        new = [ev for key, ev in now.items() if key not in self._contacts]
        self._contacts = set(now)
        return new


def lead_vehicle(vehicles: Iterable, ego_id: int, ego_half_length_m: float, loc, route, index: int, s_m: float,
                 lane_width_m: float) -> Tuple[Optional[float], Optional[float]]:
    """The nearest other vehicle on the route ahead, within half a lane of it.

    Args:
        vehicles: the world's vehicle actors (the ego among them is skipped by ``ego_id``).
        loc: the ego's location; ``route`` its :class:`~carla_agent.sim.carla_backend.route.Route`,
            ``index`` and ``s_m`` its projection there (route point, metres along).

    Returns:
        ``(gap_m, speed_mps)``: bumper-to-bumper gap (>= 0) and its speed, or ``(None, None)``.
    """
    hi = int(np.searchsorted(route.s, s_m + LEAD_RANGE_M + 10.0)) + 1
    pts, ss = route.xy[index:hi], route.s[index:hi]
    best = None
    for actor in vehicles:
        if actor.id == ego_id:
            continue
        p = actor.get_transform().location
        if abs(p.x - loc.x) > LEAD_RANGE_M + 10 or abs(p.y - loc.y) > LEAD_RANGE_M + 10:
            continue
        d2 = (pts[:, 0] - p.x) ** 2 + (pts[:, 1] - p.y) ** 2
        j = int(np.argmin(d2))
        if math.sqrt(d2[j]) > 0.5 * lane_width_m:
            continue
        half = float(actor.bounding_box.extent.x)
        gap = float(ss[j]) - s_m - half - ego_half_length_m
        if -half < gap < LEAD_RANGE_M and (best is None or gap < best[0]):
            v = actor.get_velocity()
            best = (max(0.0, gap), math.sqrt(v.x * v.x + v.y * v.y + v.z * v.z))
    return (None, None) if best is None else best
