"""The global route planner: shortest lane path, and the command at each junction.

Learned from CARLA's ``agents.navigation.global_route_planner`` (not copied):
the path is the shortest chain of lane segments by length; every segment in a
junction gets the high-level command of the turn it is part of, judged from
the tangent where the car enters the junction and the chord through the whole
run of junction segments: within ``straight_threshold_deg`` (33 as CARLA's)
of straight ahead it is STRAIGHT; otherwise LEFT or RIGHT, by comparing the
turn's cross product with those of the other ways out of the same lane (so
that, of two right turns, the sharper one is RIGHT and the gentler one,
where a sharper one exists, still gets its own side). Segments outside
junctions are LANEFOLLOW. Left is counter-clockwise in the graph's
right-handed frame (CARLA's own frame is mirrored; see :mod:`.lane_graph`).
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass
from typing import Dict, Hashable, List, Optional, Sequence, Tuple

import numpy as np

from carla_agent.sim.routing.lane_graph import LaneGraph, RoutingError
from carla_agent.sim.routing.road_option import RoadOption

_START = object()


@dataclass(frozen=True)
class RouteLeg:
    """One lane segment of a route with its command."""

    key: Hashable
    option: RoadOption


@dataclass(frozen=True)
class Route:
    """A planned route.

    Attributes:
        legs: the segments in driving order, each with its command.
        points_xy_m: ``(M, 2)`` float64 centre line from start to end.
        options: ``(M,)`` int8, the :class:`RoadOption` value at each point.
        length_m: length of ``points_xy_m``.
    """

    legs: Tuple[RouteLeg, ...]
    points_xy_m: np.ndarray
    options: np.ndarray
    length_m: float

    def junction_commands(self) -> List[RoadOption]:
        """The command of each junction crossed, in order (one per run of junction segments)."""
        out, previous = [], RoadOption.LANEFOLLOW
        for leg in self.legs:
            if leg.option != RoadOption.LANEFOLLOW and (previous == RoadOption.LANEFOLLOW or leg.option != previous):
                out.append(leg.option)
            previous = leg.option
        return out


def _cross(a: np.ndarray, b: np.ndarray) -> float:
    return float(a[0] * b[1] - a[1] * b[0])


class GlobalRoutePlanner:
    """Plans routes on a :class:`LaneGraph`.

    Args:
        graph: the lanes.
        straight_threshold_deg: turns gentler than this are STRAIGHT, degrees.
    """

    def __init__(self, graph: LaneGraph, straight_threshold_deg: float = 33.0) -> None:
        self.graph = graph
        self.threshold_rad = math.radians(straight_threshold_deg)

    # -- search --------------------------------------------------------------
    def shortest_path(self, start: Hashable, end: Hashable) -> List[Hashable]:
        """Segment keys from ``start`` to ``end`` (both included), shortest by length.

        ``start == end`` gives the shortest loop back to it. Raises ``RoutingError`` when unreachable.
        """
        lengths, segments = self.graph.lengths_m, self.graph.segments
        parent: Dict[Hashable, object] = {}
        counter = itertools.count()
        heap = [(lengths[start], next(counter), nxt, _START) for nxt in segments[start].successors]
        heapq.heapify(heap)
        while heap:
            cost, _, key, prev = heapq.heappop(heap)
            if key in parent:
                continue
            parent[key] = prev
            if key == end:
                chain = [key]
                while parent[chain[-1]] is not _START:
                    chain.append(parent[chain[-1]])
                return [start] + chain[::-1]
            for nxt in segments[key].successors:
                if nxt not in parent:
                    heapq.heappush(heap, (cost + lengths[key], next(counter), nxt, key))
        raise RoutingError(f"no route from lane {start!r} to lane {end!r}")

    # -- commands ------------------------------------------------------------
    def commands(self, path: Sequence[Hashable]) -> List[RoadOption]:
        """The command of each segment of ``path`` (a chain of successive segments)."""
        seg = self.graph.segments
        out: List[RoadOption] = []
        i = 0
        while i < len(path):
            if not seg[path[i]].is_junction or i == 0:
                out.append(RoadOption.LANEFOLLOW)
                i += 1
                continue
            j = i
            while j + 1 < len(path) and seg[path[j + 1]].is_junction:
                j += 1
            decision = self._turn(path[i - 1], path[i], path[j])
            out.extend([decision] * (j - i + 1))
            i = j + 1
        return out

    def _turn(self, before: Hashable, first: Hashable, last: Hashable) -> RoadOption:
        seg = self.graph.segments
        cv = seg[before].exit_vector
        chord = seg[last].points_xy_m[-1] - seg[first].points_xy_m[0]
        nv = chord / max(float(np.hypot(*chord)), 1e-9)
        others = [self._net(k) for k in seg[before].successors if k != first]
        crosses = [_cross(cv, v) for v in others] or [0.0]
        deviation = math.acos(max(-1.0, min(1.0, float(cv @ nv))))
        turn = _cross(cv, nv)
        if deviation < self.threshold_rad:
            return RoadOption.STRAIGHT
        if turn > max(crosses):
            return RoadOption.LEFT
        if turn < min(crosses):
            return RoadOption.RIGHT
        return RoadOption.LEFT if turn > 0 else RoadOption.RIGHT

    def _net(self, key: Hashable) -> np.ndarray:
        p = self.graph.segments[key].points_xy_m
        v = p[-1] - p[0]
        return v / max(float(np.hypot(*v)), 1e-9)

    # -- routes --------------------------------------------------------------
    def _candidates(self, xy: Tuple[float, float], heading_rad: Optional[float]) -> List[Tuple[Hashable, int]]:
        """The nearest point of the nearest lane, and of lanes within 2 m more (the other direction)."""
        best = self.graph.locate(xy[0], xy[1], heading_rad)
        out = [best]
        if heading_rad is None:
            p = self.graph.segments[best[0]].points_xy_m[best[1]]
            d0 = math.hypot(p[0] - xy[0], p[1] - xy[1])
            for key, s in self.graph.segments.items():
                if key == best[0] or s.is_junction:
                    continue
                d = np.hypot(s.points_xy_m[:, 0] - xy[0], s.points_xy_m[:, 1] - xy[1])
                if float(d.min()) <= d0 + 2.0:
                    out.append((key, int(np.argmin(d))))
        return out

    def _leg_path(self, a: Tuple[Hashable, int], b: Tuple[Hashable, int]) -> Tuple[List[Hashable], float]:
        if a[0] == b[0] and b[1] >= a[1]:
            return [a[0]], 0.0
        path = self.shortest_path(a[0], b[0])
        return path, sum(self.graph.lengths_m[k] for k in path[:-1])

    def plan(self, points_xy_m: Sequence[Tuple[float, float]], start_heading_rad: Optional[float] = None) -> Route:
        """The shortest route through ``points_xy_m`` (start, via..., end) in order.

        ``start_heading_rad`` picks the start lane's direction; without it, and
        at via and end points, the lane direction giving the shorter route is used.
        """
        if len(points_xy_m) < 2:
            raise RoutingError("a route needs a start and an end point")
        starts = self._candidates(points_xy_m[0], start_heading_rad)
        best = None
        for start in starts:
            at, keys, pieces, total = start, [start[0]], [], 0.0
            try:
                for xy in points_xy_m[1:]:
                    options = []
                    for cand in self._candidates(xy, None):
                        path, cost = self._leg_path(at, cand)
                        options.append((cost, path, cand))
                    cost, path, cand = min(options, key=lambda o: o[0])
                    pieces.append((at, path, cand))
                    keys.extend(path[1:])
                    total += cost
                    at = cand
            except RoutingError:
                continue
            if best is None or total < best[0]:
                best = (total, keys, pieces)
        if best is None:
            raise RoutingError(f"no route through {list(points_xy_m)}")
        return self.assemble(best[1], best[2])

    def assemble(self, keys: List[Hashable], pieces) -> Route:
        """The :class:`Route` along ``keys``; ``pieces[0][0]`` is the (key, point index) it starts at,
        ``pieces[-1][2]`` the one it ends at."""
        opts = self.commands(keys)
        pts: List[np.ndarray] = []
        codes: List[np.ndarray] = []
        start_idx, end_idx = pieces[0][0][1], pieces[-1][2][1]
        for n, (key, opt) in enumerate(zip(keys, opts)):
            p = self.graph.segments[key].points_xy_m
            lo = start_idx if n == 0 else 0
            hi = end_idx + 1 if n == len(keys) - 1 else len(p)
            if n == len(keys) - 1 and n == 0:
                lo, hi = start_idx, end_idx + 1
            chunk = p[lo:hi]
            if pts and len(chunk) and np.hypot(*(chunk[0] - pts[-1][-1])) < 0.05:
                chunk = chunk[1:]
            pts.append(chunk)
            codes.append(np.full(len(chunk), int(opt), dtype=np.int8))
        points = np.concatenate(pts) if pts else np.zeros((0, 2))
        d = np.diff(points, axis=0)
        return Route(tuple(RouteLeg(k, o) for k, o in zip(keys, opts)), points, np.concatenate(codes),
                     float(np.hypot(d[:, 0], d[:, 1]).sum()) if len(points) > 1 else 0.0)
