"""An abstract lane graph: driving-lane segments and which follows which.

A :class:`LaneSegment` is one stretch of one driving lane, in its driving
direction, between branch points (in OpenDRIVE: a lane of a road, or of a
junction's connecting road). The graph knows nothing of OpenDRIVE or CARLA;
any map that can list its lanes' centre lines and successors can feed it.

Frame: right-handed, x east and y north, metres (OpenDRIVE's). A CARLA map's
locations have y pointing the other way: negate y when feeding one in.
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from typing import Dict, Hashable, Iterable, List, Optional, Set, Tuple

import numpy as np

from carla_agent.errors import CarlaAgentError


class RoutingError(CarlaAgentError):
    """A route cannot be planned (no lane near a point, or no path)."""


@dataclass(frozen=True)
class LaneSegment:
    """One driving-lane stretch.

    Attributes:
        key: any hashable id, e.g. ``(road_id, lane_id)``.
        points_xy_m: ``(N, 2)`` float64 centre line in driving order, N >= 2.
        is_junction: whether it lies inside a junction.
        successors: keys of the segments a car may drive into from its end.
    """

    key: Hashable
    points_xy_m: np.ndarray
    is_junction: bool
    successors: Tuple[Hashable, ...]

    @property
    def length_m(self) -> float:
        d = np.diff(self.points_xy_m, axis=0)
        return float(np.hypot(d[:, 0], d[:, 1]).sum())

    @property
    def entry_vector(self) -> np.ndarray:
        """Unit tangent at the start, shape (2,)."""
        return _unit(self.points_xy_m[1] - self.points_xy_m[0])

    @property
    def exit_vector(self) -> np.ndarray:
        """Unit tangent at the end, shape (2,)."""
        return _unit(self.points_xy_m[-1] - self.points_xy_m[-2])


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.hypot(v[0], v[1]))
    return v / n if n > 0 else v


class LaneGraph:
    """The segments by key, with their successors checked to exist.

    Raises ``RoutingError`` for a successor key that names no segment.
    """

    def __init__(self, segments: Iterable[LaneSegment]) -> None:
        self.segments: Dict[Hashable, LaneSegment] = {}
        for seg in segments:
            pts = np.asarray(seg.points_xy_m, dtype=np.float64)
            if pts.ndim == 2 and len(pts) > 1:
                # Repeated points (a CARLA lane's last waypoint twice) would give no direction.
                keep = np.concatenate([[True], np.hypot(*np.diff(pts, axis=0).T) > 1e-3])
                pts = pts[keep]
            if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 2:
                raise RoutingError(f"lane segment {seg.key!r}: points_xy_m must be (N>=2, 2) distinct points, "
                                   f"got {pts.shape}")
            self.segments[seg.key] = LaneSegment(seg.key, pts, seg.is_junction, tuple(seg.successors))
        for seg in self.segments.values():
            for nxt in seg.successors:
                if nxt not in self.segments:
                    raise RoutingError(f"lane segment {seg.key!r} names successor {nxt!r}, which is not in the graph")
        self.lengths_m = {k: s.length_m for k, s in self.segments.items()}
        keys = list(self.segments)
        self._owner = np.concatenate([np.full(len(self.segments[k].points_xy_m), i) for i, k in enumerate(keys)])
        self._index = np.concatenate([np.arange(len(self.segments[k].points_xy_m)) for k in keys])
        self._points = np.concatenate([self.segments[k].points_xy_m for k in keys])
        self._keys = keys

    def predecessors(self, key: Hashable) -> List[Hashable]:
        return [k for k, s in self.segments.items() if key in s.successors]

    def reachable(self, start: Hashable) -> Set[Hashable]:
        """Every segment reachable by driving from ``start`` (``start`` included)."""
        seen, todo = {start}, [start]
        while todo:
            for nxt in self.segments[todo.pop()].successors:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    def is_strongly_connected(self) -> bool:
        """Whether every segment is reachable from every other."""
        if not self.segments:
            return True
        first = next(iter(self.segments))
        if len(self.reachable(first)) != len(self.segments):
            return False
        reverse: Dict[Hashable, List[Hashable]] = {k: [] for k in self.segments}
        for k, s in self.segments.items():
            for nxt in s.successors:
                reverse[nxt].append(k)
        seen, todo = {first}, [first]
        while todo:
            for prev in reverse[todo.pop()]:
                if prev not in seen:
                    seen.add(prev)
                    todo.append(prev)
        return len(seen) == len(self.segments)

    def locate(self, x_m: float, y_m: float, heading_rad: Optional[float] = None,
               max_distance_m: float = 10.0, junctions: bool = False) -> Tuple[Hashable, int]:
        """The segment and point index nearest ``(x_m, y_m)``.

        Junction segments are skipped unless ``junctions``; with ``heading_rad``
        only points whose lane runs within 90 degrees of it count (so a point
        between two opposite lanes picks the one driven that way).
        """
        d2 = (self._points[:, 0] - x_m) ** 2 + (self._points[:, 1] - y_m) ** 2
        if not junctions:
            d2 = np.where([self.segments[self._keys[o]].is_junction for o in self._owner], np.inf, d2)
        if heading_rad is not None:
            d2 = np.where(self._directions() @ np.array([np.cos(heading_rad), np.sin(heading_rad)]) > 0, d2, np.inf)
        i = int(np.argmin(d2))
        if not np.isfinite(d2[i]) or d2[i] > max_distance_m ** 2:
            raise RoutingError(f"no driving lane within {max_distance_m:g} m of ({x_m:.1f}, {y_m:.1f})")
        return self._keys[int(self._owner[i])], int(self._index[i])

    def nearest_lane(self, x_m: float, y_m: float) -> Tuple[float, float, bool]:
        """The lane nearest ``(x_m, y_m)``, of any direction, junctions included: the distance [m]
        from the point to its centre line (across the lane), the lane's heading [rad] there and
        whether it is a junction's lane. A graph with no segments gives ``(inf, 0, False)``."""
        if not len(self._points):
            return math.inf, 0.0, False
        d2 = (self._points[:, 0] - x_m) ** 2 + (self._points[:, 1] - y_m) ** 2
        i = int(np.argmin(d2))
        dx, dy = self._directions()[i]
        px, py = x_m - self._points[i, 0], y_m - self._points[i, 1]
        # Across the lane, not to the sample point: the points are 1 m apart along it.
        across = abs(dx * py - dy * px)
        return float(across), math.atan2(dy, dx), bool(self.segments[self._keys[int(self._owner[i])]].is_junction)

    def _directions(self) -> np.ndarray:
        if not hasattr(self, "_dirs"):
            dirs = []
            for k in self._keys:
                p = self.segments[k].points_xy_m
                d = np.diff(p, axis=0)
                d = np.vstack([d, d[-1:]])
                dirs.append(d / np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-9)[:, None])
            self._dirs = np.concatenate(dirs)
        return self._dirs


def link_by_endpoints(items: Iterable[Tuple[Hashable, np.ndarray, bool]], tolerance_m: float = 0.05) -> LaneGraph:
    """A graph from ``(key, points_xy_m, is_junction)`` items with no successor lists.

    A segment follows another when its first point lies within ``tolerance_m``
    of the other's last point: how a CARLA map's ``get_topology()`` segments
    (entry and exit waypoints; y negated into this frame) chain together.
    """
    items = [(k, np.asarray(p, dtype=np.float64), bool(j)) for k, p, j in items]
    starts = np.array([p[0] for _, p, _ in items]) if items else np.zeros((0, 2))
    segments = []
    for key, pts, junction in items:
        d = np.hypot(starts[:, 0] - pts[-1, 0], starts[:, 1] - pts[-1, 1])
        nxt = tuple(items[i][0] for i in np.flatnonzero(d <= tolerance_m) if items[i][0] != key)
        segments.append(LaneSegment(key, pts, junction, nxt))
    return LaneGraph(segments)
