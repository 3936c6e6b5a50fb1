"""Where the car is along the Leaderboard's global plan, and the command it gives there.

The evaluator hands the agent its route densely (a point every metre, from CARLA's
``GlobalRoutePlanner``), each point with its ``RoadOption``: the points inside a
junction carry the turn (``LEFT``, ``RIGHT``, ``STRAIGHT``), the others
``LANEFOLLOW`` or a lane change. The follower keeps an index of progress along it,
moved forward by each position fix (GNSS through :mod:`~carla_agent.leaderboard.geo`)
or, between fixes, by the distance the speedometer says was driven; it never moves
back, so a route that passes the same place twice is followed in order.

The command the network gets is the first junction command within
:data:`COMMAND_AHEAD_M` ahead (CARLA's local planner gives the command of the
waypoint it targets, a few metres to a few tens ahead), ``LANEFOLLOW`` otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from carla_agent.sim.routing.road_option import RoadOption

#: [m] a junction's command is given from this far before its first point.
COMMAND_AHEAD_M = 20.0
#: [m] how far ahead of the current index a position fix is matched (and how far back).
SEARCH_AHEAD_M, SEARCH_BACK_M = 40.0, 5.0
JUNCTION_OPTIONS = (RoadOption.LEFT, RoadOption.RIGHT, RoadOption.STRAIGHT)


@dataclass(frozen=True)
class RouteFix:
    """The car on the route.

    Attributes:
        index: index of the nearest route point (never decreases).
        s_m: [m] distance along the route to it.
        lateral_offset_m: [m] signed distance from the route's centre line, positive right
            (CARLA's right vector), or NaN without a position fix.
        command: the :class:`RoadOption` for the network.
    """

    index: int
    s_m: float
    lateral_offset_m: float
    command: RoadOption


class RouteFollower:
    """Progress along a dense route.

    Args:
        points_xy_m: ``(N, 2)`` route points in CARLA's frame (x east, y south), metres, N >= 2.
        options: ``(N,)`` the :class:`RoadOption` (or its int value) of each point.
    """

    def __init__(self, points_xy_m: np.ndarray, options: Sequence) -> None:
        pts = np.asarray(points_xy_m, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 2:
            raise ValueError(f"a route needs (N >= 2, 2) points, got shape {pts.shape}")
        if len(options) != len(pts):
            raise ValueError(f"{len(options)} road options for {len(pts)} route points")
        self.points_xy_m = pts
        self.options = np.array([int(getattr(o, "value", o)) for o in options], dtype=np.int16)
        seg = np.hypot(*np.diff(pts, axis=0).T)
        self.s_m = np.concatenate([[0.0], np.cumsum(seg)])
        self.length_m = float(self.s_m[-1])
        self.index = 0
        self._s_now = 0.0
        junction = np.isin(self.options, [int(o) for o in JUNCTION_OPTIONS])
        # For every point, the s of the next junction point at or after it (inf when none).
        nxt = np.full(len(pts), np.inf)
        upcoming = np.inf
        for i in range(len(pts) - 1, -1, -1):
            if junction[i]:
                upcoming = self.s_m[i]
            nxt[i] = upcoming
        self._next_junction_s = nxt
        self._junction = junction

    def reset(self) -> None:
        self.index = 0
        self._s_now = 0.0

    def update(self, xy_m: Optional[Tuple[float, float]] = None, travelled_m: float = 0.0) -> RouteFix:
        """Move along the route: to the nearest point to ``xy_m`` when given (searched from a
        little behind the current index to :data:`SEARCH_AHEAD_M` ahead), else by ``travelled_m``."""
        offset = float("nan")
        if xy_m is not None:
            k = self._nearest(xy_m)
            self.index = max(self.index, k)
            self._s_now = max(self._s_now, float(self.s_m[k]))
            offset = self._signed_offset(xy_m, k)
        else:
            self._s_now = min(self._s_now + max(float(travelled_m), 0.0), self.length_m)
            self.index = max(self.index, int(np.searchsorted(self.s_m, self._s_now, side="right")) - 1)
        return RouteFix(self.index, self._s_now, offset, self.command())

    def offset_of(self, xy_m: Tuple[float, float]) -> float:
        """[m] signed distance of ``xy_m`` from the route near the current progress, positive right;
        the progress does not move (the drive log's true offset, beside the sensed one)."""
        return self._signed_offset(xy_m, self._nearest(xy_m))

    def _nearest(self, xy_m: Tuple[float, float]) -> int:
        """Index of the route point nearest ``xy_m``, from a little behind the progress to
        :data:`SEARCH_AHEAD_M` ahead."""
        lo = int(np.searchsorted(self.s_m, self._s_now - SEARCH_BACK_M))
        hi = int(np.searchsorted(self.s_m, self._s_now + SEARCH_AHEAD_M)) + 1
        window = self.points_xy_m[lo:hi]
        return lo + int(np.argmin(np.hypot(window[:, 0] - xy_m[0], window[:, 1] - xy_m[1])))

    def command(self) -> RoadOption:
        """The junction command within :data:`COMMAND_AHEAD_M` ahead (the one being driven inside a
        junction), else ``LANEFOLLOW``."""
        i = self.index
        if self._junction[i]:
            return RoadOption(int(self.options[i]))
        s_next = self._next_junction_s[i]
        if s_next - self._s_now <= COMMAND_AHEAD_M:
            j = int(np.searchsorted(self.s_m, s_next))
            return RoadOption(int(self.options[min(j, len(self.options) - 1)]))
        return RoadOption.LANEFOLLOW

    @property
    def s_now_m(self) -> float:
        """[m] progress along the route."""
        return self._s_now

    def position_at(self, s_m: float) -> Tuple[float, float]:
        """The route's point ``s_m`` metres from its start (clamped to the route)."""
        s = float(np.clip(s_m, 0.0, self.length_m))
        return (float(np.interp(s, self.s_m, self.points_xy_m[:, 0])),
                float(np.interp(s, self.s_m, self.points_xy_m[:, 1])))

    def ahead(self, x_m: float, y_m: float, yaw_deg: float, distances_m: np.ndarray) -> np.ndarray:
        """``(K, 2)`` float32 route points at ``distances_m`` ahead of the current progress, in the
        vehicle frame (x forward, y right, metres), for the drive log and the HUD."""
        s = np.clip(self._s_now + np.asarray(distances_m, dtype=np.float64), 0.0, self.length_m)
        px = np.interp(s, self.s_m, self.points_xy_m[:, 0]) - x_m
        py = np.interp(s, self.s_m, self.points_xy_m[:, 1]) - y_m
        c, sn = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
        # CARLA's frame is left-handed with yaw clockwise: forward (c, sn), right (-sn, c).
        return np.stack([px * c + py * sn, -px * sn + py * c], axis=1).astype(np.float32)

    def _signed_offset(self, xy_m: Tuple[float, float], k: int) -> float:
        a = self.points_xy_m[min(k, len(self.points_xy_m) - 2)]
        b = self.points_xy_m[min(k, len(self.points_xy_m) - 2) + 1]
        t = b - a
        n = float(np.hypot(*t)) or 1.0
        # Right of the direction of travel in CARLA's left-handed frame: (-t_y, t_x).
        return float(((xy_m[0] - a[0]) * -t[1] + (xy_m[1] - a[1]) * t[0]) / n)


__all__ = ["COMMAND_AHEAD_M", "RouteFix", "RouteFollower"]
