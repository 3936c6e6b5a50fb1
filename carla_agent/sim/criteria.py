"""Leaderboard-style route criteria: route completion, infractions and the driving score.

The CARLA leaderboard scores a route as ``route completion x penalty``, where
the penalty multiplies one factor per infraction (a collision with a vehicle
0.60, with a static object 0.65, with a pedestrian 0.50, a red light 0.70, a
stop sign 0.80) and the share of the route driven off its lanes. Both backends
feed the same :class:`RouteCriteria` from their observations, so a score means
the same thing on the embedded simulator and on CARLA. Plain Python: no
``carla`` import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from carla_agent.sim.observation import CollisionEvent, Observation

#: The CARLA leaderboard's penalty per infraction, by kind.
INFRACTION_PENALTIES = {"pedestrian": 0.50, "vehicle": 0.60, "static": 0.65, "red_light": 0.70, "stop_sign": 0.80}


def route_completion_pct(route_s_m: float, route_length_m: float) -> float:
    """Route completion in percent; 100 when within 10 m of the end and above 99 % (leaderboard)."""
    if route_length_m <= 0:
        return 100.0
    pct = 100.0 * min(max(route_s_m / route_length_m, 0.0), 1.0)
    if pct > 99.0 and route_length_m - route_s_m <= 10.0:
        return 100.0
    return pct


def dedupe_collisions(events: Iterable[CollisionEvent], dt_s: float, window_s: float = 5.0,
                      positions: Optional[Sequence[Tuple[float, float]]] = None,
                      radius_m: float = 5.0) -> List[CollisionEvent]:
    """Collisions counted once: hits of the same thing within ``window_s``, or (when
    ``positions`` are given, one per event) within ``radius_m`` of a counted hit."""
    kept: List[Tuple[CollisionEvent, Optional[Tuple[float, float]]]] = []
    events = list(events)
    pos = list(positions) if positions is not None else [None] * len(events)
    for ev, p in sorted(zip(events, pos), key=lambda e: e[0].frame):
        t = ev.frame * dt_s
        dup = False
        for k, kp in kept:
            if k.other == ev.other and t - k.frame * dt_s <= window_s:
                dup = True
            elif p is not None and kp is not None and math.hypot(p[0] - kp[0], p[1] - kp[1]) <= radius_m:
                dup = True
        if not dup:
            kept.append((ev, p))
    return [k for k, _ in kept]


@dataclass(frozen=True)
class DrivingScore:
    """The leaderboard's score: ``route_completion_pct x penalty``.

    Attributes:
        score_pct: driving score in [0, 100].
        route_completion_pct: in [0, 100].
        penalty: the product of the infraction penalties, in [0, 1].
        infractions: counts by kind (``vehicle``, ``static``, ``pedestrian``, ``red_light``, ``stop_sign``).
        off_route_pct: share of the route driven outside the route's lanes.
    """

    score_pct: float
    route_completion_pct: float
    penalty: float
    infractions: Dict[str, int]
    off_route_pct: float = 0.0


def driving_score(route_completion: float, infractions: Optional[Dict[str, int]] = None,
                  off_route_pct: float = 0.0) -> DrivingScore:
    """Driving score from route completion (percent) and infraction counts.

    ``penalty = prod(INFRACTION_PENALTIES[k] ** n) * (1 - off_route_pct / 100)``.
    """
    counts = {k: int(v) for k, v in (infractions or {}).items() if v}
    unknown = sorted(set(counts) - set(INFRACTION_PENALTIES))
    if unknown:
        raise ValueError(f"unknown infraction(s) {unknown}; known: {', '.join(INFRACTION_PENALTIES)}")
    penalty = 1.0
    for kind, n in counts.items():
        penalty *= INFRACTION_PENALTIES[kind] ** n
    penalty *= 1.0 - min(max(off_route_pct, 0.0), 100.0) / 100.0
    rc = min(max(float(route_completion), 0.0), 100.0)
    return DrivingScore(rc * penalty, rc, penalty, counts, float(off_route_pct))


class RouteCriteria:
    """Collects the criteria of one episode from observations of any backend.

    ``update(obs)`` each tick; ``result()`` gives the :class:`DrivingScore`.
    Collisions are de-duplicated (the same thing within 5 s, or anything within
    5 m of a counted hit); lane invasions are counted per event; the car counts as off its route lanes when its centre
    is more than half a lane width from the lane centre (or ``off_route`` says so).
    """

    def __init__(self) -> None:
        self.collisions: List[CollisionEvent] = []
        self.positions: List[Tuple[float, float]] = []
        self.lane_invasions = 0
        self.off_route_m = 0.0
        self.off_road_ticks = 0
        self.route_s_m = 0.0
        self.route_length_m = 0.0
        self.dt_s = 0.05

    def update(self, obs: Observation, off_route: Optional[bool] = None, off_road: Optional[bool] = None) -> None:
        t = obs.truth
        self.dt_s = obs.dt_s
        for ev in obs.collisions:
            self.collisions.append(ev)
            self.positions.append((obs.pose.x_m, obs.pose.y_m))
        self.lane_invasions += len(obs.lane_invasions)
        if off_route is None:
            off_route = abs(t.lateral_offset_m) > 0.5 * t.lane_width_m
        if off_route:
            self.off_route_m += obs.speed_mps * obs.dt_s
        if off_road:
            self.off_road_ticks += 1
        self.route_s_m = max(self.route_s_m, t.route_s_m)
        self.route_length_m = t.route_length_m

    def result(self) -> DrivingScore:
        counts: Dict[str, int] = {}
        for ev in dedupe_collisions(self.collisions, self.dt_s, positions=self.positions):
            # A kind the leaderboard has no penalty for counts as a static object (the mildest collision).
            kind = ev.other_kind if ev.other_kind in INFRACTION_PENALTIES else "static"
            counts[kind] = counts.get(kind, 0) + 1
        rc = route_completion_pct(self.route_s_m, self.route_length_m)
        off_pct = 100.0 * self.off_route_m / self.route_length_m if self.route_length_m > 0 else 0.0
        return driving_score(rc, counts, min(off_pct, 100.0))
