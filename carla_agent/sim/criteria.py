"""Leaderboard-style route criteria: route completion, infractions and the driving score.

The CARLA leaderboard scores a route as ``route completion x penalty``, where
the penalty multiplies one factor per infraction (a collision with a vehicle
0.60, with a static object 0.65, with a pedestrian 0.50, a red light 0.70, a
stop sign 0.80) and ``1 - share of the route driven outside its lanes``
(leaderboard/utils/statistics_manager.py; the tests in scenario_runner's
atomic_criteria.py; docs/carla.md, "Scoring", lists each rule). Both backends
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
#: Infractions with no penalty factor that end the route (the leaderboard's ``ROUTE_DEVIATION``):
#: the score keeps the route completion reached until then.
ROUTE_ENDING = ("route_deviation",)

#: The leaderboard's allowance beyond half a lane before the ego is outside its lanes (the
#: mini-shoulder between lanes and sidewalks).
ALLOWED_OUT_M = 0.5
#: A lane whose heading differs from the route's by more than this goes the other way (leaderboard: 120).
WRONG_WAY_DEG = 120.0


def outside_lanes(distance_m: float, lane_width_m: float, lane_heading_rad: float, route_heading_rad: float,
                  any_direction: bool) -> bool:
    """The leaderboard's ``OutsideRouteLanesTest`` from the ego's nearest lane: its centre is more
    than half the lane's width + :data:`ALLOWED_OUT_M` away, or the lane goes against the route
    (headings more than :data:`WRONG_WAY_DEG` apart) where direction counts (``any_direction``
    False: not in a junction, not a parking lane). A lane change the route's way is not outside.
    Both backends answer through this rule."""
    if distance_m > 0.5 * lane_width_m + ALLOWED_OUT_M:
        return True
    if any_direction:
        return False
    diff = math.atan2(math.sin(lane_heading_rad - route_heading_rad), math.cos(lane_heading_rad - route_heading_rad))
    return abs(math.degrees(diff)) > WRONG_WAY_DEG


def route_completion_pct(route_s_m: float, route_length_m: float) -> float:
    """Route completion in percent; 100 when within 10 m of the end and above 99 % (leaderboard)."""
    if route_length_m <= 0:
        return 100.0
    pct = 100.0 * min(max(route_s_m / route_length_m, 0.0), 1.0)
    if pct > 99.0 and route_length_m - route_s_m <= 10.0:
        return 100.0
    return pct


def leaderboard_kind(type_id: str) -> str:
    """The leaderboard's class of a thing hit, from its CARLA ``type_id`` (scenario_runner's
    ``CollisionTest``): ``static`` (``static.*``, ``traffic.*``) but a sidewalk or curb
    (``static.sidewalk``) is ``other``; ``vehicle``; ``pedestrian`` (``walker.*``); anything
    else ``other``, which carries no penalty."""
    if ("static" in type_id or "traffic" in type_id) and "sidewalk" not in type_id:
        return "static"
    if "vehicle" in type_id:
        return "vehicle"
    if "walker" in type_id:
        return "pedestrian"
    return "other"


class CollisionCounter:
    """The leaderboard's collision count (scenario_runner's ``CollisionTest``), tick by tick.

    A hit is not counted when it is the same actor as the last counted hit within
    :attr:`SAME_ACTOR_S` seconds (actors told apart by id; the map's static objects all
    have id 0, so they are never "the same actor"; a backend without ids, id -1, is told
    apart by type name), when the ego is still within :attr:`RADIUS_M` metres of where the
    last hit was counted, or when the ego is slower than :attr:`MIN_SPEED_MPS` (not its
    fault). Hits of kind ``other`` (curbs, sidewalks) still arm those rules, as in the
    leaderboard, but carry no penalty.
    """

    RADIUS_M = 5.0
    SAME_ACTOR_S = 5.0
    MIN_SPEED_MPS = 0.1

    def __init__(self) -> None:
        self.counted: List[CollisionEvent] = []
        self._last_key = None
        self._last_time_s = 0.0
        self._last_xy: Optional[Tuple[float, float]] = None

    @staticmethod
    def _key(ev: CollisionEvent):
        if ev.other_id > 0:
            return ("id", ev.other_id)
        return None if ev.other_id == 0 else ("name", ev.other)

    def tick(self, time_s: float, xy: Optional[Tuple[float, float]], speed_mps: float,
             events: Iterable[CollisionEvent]) -> List[CollisionEvent]:
        """One tick at ``time_s`` with the ego at ``xy`` (None: unknown) and ``speed_mps``;
        returns the events of this tick that count."""
        if self._last_xy is not None and xy is not None and math.dist(xy, self._last_xy) > self.RADIUS_M:
            self._last_xy = None
        if self._last_key is not None and time_s - self._last_time_s > self.SAME_ACTOR_S:
            self._last_key = None
        new = []
        for ev in events:
            key = self._key(ev)
            if key is not None and key == self._last_key:
                continue
            if self._last_xy is not None and xy is not None and math.dist(xy, self._last_xy) <= self.RADIUS_M:
                continue
            if speed_mps < self.MIN_SPEED_MPS:
                continue
            self._last_time_s, self._last_xy = time_s, xy
            if key is not None:
                self._last_key = key
            if ev.other_kind in INFRACTION_PENALTIES:
                new.append(ev)
        self.counted.extend(new)
        return new


def dedupe_collisions(events: Iterable[CollisionEvent], dt_s: float,
                      positions: Optional[Sequence[Tuple[float, float]]] = None) -> List[CollisionEvent]:
    """:class:`CollisionCounter` over a list of hits (the ego taken as moving, at ``positions``,
    one per event, when given): the hits that count, in frame order."""
    events = list(events)
    pos = list(positions) if positions is not None else [None] * len(events)
    counter = CollisionCounter()
    for ev, p in sorted(zip(events, pos), key=lambda e: e[0].frame):
        counter.tick(ev.frame * dt_s, p, math.inf, [ev])
    return counter.counted


@dataclass(frozen=True)
class DrivingScore:
    """The leaderboard's score: ``route_completion_pct x penalty``.

    Attributes:
        score_pct: driving score in [0, 100].
        route_completion_pct: in [0, 100].
        penalty: the product of the infraction penalties, in [0, 1].
        infractions: counts by kind (``vehicle``, ``static``, ``pedestrian``, ``red_light``, ``stop_sign``,
            and ``route_deviation``, which has no penalty and ends the route).
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
    unknown = sorted(set(counts) - set(INFRACTION_PENALTIES) - set(ROUTE_ENDING))
    if unknown:
        raise ValueError(f"unknown infraction(s) {unknown}; known: {', '.join((*INFRACTION_PENALTIES, *ROUTE_ENDING))}")
    penalty = 1.0
    for kind, n in counts.items():
        penalty *= INFRACTION_PENALTIES.get(kind, 1.0) ** n
    penalty *= 1.0 - min(max(off_route_pct, 0.0), 100.0) / 100.0
    rc = min(max(float(route_completion), 0.0), 100.0)
    return DrivingScore(rc * penalty, rc, penalty, counts, float(off_route_pct))


class RouteCriteria:
    """Collects the criteria of one episode from observations of any backend.

    ``update(obs)`` each tick; ``result()`` gives the :class:`DrivingScore`. As the
    leaderboard counts them (docs/carla.md, "Scoring"): collisions by
    :class:`CollisionCounter`; red lights and stop signs from ``obs.infractions``; the
    share of the route driven outside the route's lanes is the route progress made
    while ``truth.outside_route_lanes`` (or, when the backend cannot tell, while more
    than half a lane width off the lane centre) over the progress made in all.
    """

    def __init__(self) -> None:
        self.counter = CollisionCounter()
        self.infractions: Dict[str, int] = {}
        self.lane_invasions = 0
        self.off_route_m = 0.0
        self.off_road_ticks = 0
        self.route_s_m = 0.0
        self.route_length_m = 0.0
        self.dt_s = 0.05

    @property
    def collisions(self) -> List[CollisionEvent]:
        """The collisions that count, in order."""
        return self.counter.counted

    def update(self, obs: Observation, off_route: Optional[bool] = None, off_road: Optional[bool] = None) -> None:
        if any(self.infractions.get(kind) for kind in ROUTE_ENDING):
            return  # the route ended there (the leaderboard stops the route on a deviation)
        t = obs.truth
        self.dt_s = obs.dt_s
        self.counter.tick(obs.sim_time_s, (obs.pose.x_m, obs.pose.y_m), obs.speed_mps, obs.collisions)
        for ev in obs.infractions:
            self.infractions[ev.kind] = self.infractions.get(ev.kind, 0) + 1
        self.lane_invasions += len(obs.lane_invasions)
        if off_route is None:
            off_route = t.outside_route_lanes
        if off_route is None:
            off_route = abs(t.lateral_offset_m) > 0.5 * t.lane_width_m
        progress_m = max(t.route_s_m - self.route_s_m, 0.0)
        if off_route:
            self.off_route_m += progress_m
        if off_road:
            self.off_road_ticks += 1
        self.route_s_m = max(self.route_s_m, t.route_s_m)
        self.route_length_m = t.route_length_m

    def result(self) -> DrivingScore:
        counts: Dict[str, int] = dict(self.infractions)
        for ev in self.counter.counted:
            counts[ev.other_kind] = counts.get(ev.other_kind, 0) + 1
        rc = route_completion_pct(self.route_s_m, self.route_length_m)
        off_pct = 100.0 * self.off_route_m / self.route_s_m if self.route_s_m > 0 else 0.0
        return driving_score(rc, counts, min(off_pct, 100.0))
