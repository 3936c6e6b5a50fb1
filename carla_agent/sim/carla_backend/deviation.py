"""Route deviation on a CARLA server, as the leaderboard finds it (scenario_runner's ``InRouteTest``).

The leaderboard attaches ``InRouteTest(offroad_max=30, terminate_on_failure=True)`` to every
route (``leaderboard/scenarios/route_scenario.py``): each tick the ego is matched to the nearest
route point in a small window ahead of the last one matched (``WINDOWS_SIZE`` = 5 points, 1 m
apart); the route is failed, and ends, when

- that nearest point is :data:`OFFROAD_MAX_M` (30 m) or more away, or
- the route distance advanced while more than :data:`OFFROAD_MIN_M` (15 m) away exceeds
  :data:`MAX_ROUTE_PCT` (30 %) of the route.

``ROUTE_DEVIATION`` has no penalty factor (``statistics_manager.py``): the route ends there, so
the score keeps the route completion reached. Here the backend reports it once as an
:class:`~carla_agent.sim.observation.InfractionEvent` ``route_deviation`` and ends the episode
(``Observation.done``); :class:`~carla_agent.sim.criteria.RouteCriteria` stops counting.
"""

from __future__ import annotations

import logging
import math
from typing import Optional

import numpy as np

from carla_agent.sim.observation import InfractionEvent

log = logging.getLogger(__name__)

#: The leaderboard's ``offroad_max``: this far from the route (m) fails it at once.
OFFROAD_MAX_M = 30.0
#: ``offroad_min`` (half of ``offroad_max``): progress made further away than this counts as outside.
OFFROAD_MIN_M = OFFROAD_MAX_M / 2
#: ``MAX_ROUTE_PERCENTAGE``: more than this share of the route (%) driven outside fails it.
MAX_ROUTE_PCT = 30.0
#: ``WINDOWS_SIZE`` route points of 1 m ahead of the last match are searched: in metres.
WINDOW_M = 5.0


class RouteDeviation:
    """``InRouteTest`` over one route.

    Args:
        xy: route points, CARLA's world frame, metres, float64 of shape (N, 2), N >= 1.
        s: distance along the route of each point, metres, shape (N,), increasing.
    """

    def __init__(self, xy: np.ndarray, s: np.ndarray) -> None:
        self.xy = np.asarray(xy, np.float64).reshape(-1, 2)
        self.s = np.asarray(s, np.float64).reshape(-1)
        step = float(self.s[-1]) / max(len(self.s) - 1, 1)
        self._window = max(1, int(math.ceil(WINDOW_M / max(step, 1e-6))))
        self._index = 0
        self._in_safe_route = True
        self.out_route_m = 0.0
        self.failed = False

    def update(self, x_m: float, y_m: float, frame: int) -> Optional[InfractionEvent]:
        """The ``route_deviation`` event of this tick (once per route), or None; the ego at ``(x_m, y_m)``."""
        if self.failed:
            return None
        lo, hi = self._index, min(self._index + self._window + 1, len(self.s))
        d = np.hypot(self.xy[lo:hi, 0] - x_m, self.xy[lo:hi, 1] - y_m)
        j = len(d) - 1 - int(np.argmin(d[::-1]))  # the leaderboard keeps the last of equal distances
        nearest, distance = lo + j, float(d[j])
        off_route = distance >= OFFROAD_MAX_M
        if not off_route:
            self._in_safe_route = distance < OFFROAD_MIN_M
        if nearest != self._index:
            if not self._in_safe_route:
                self.out_route_m += float(self.s[nearest] - self.s[self._index])
                if 100.0 * self.out_route_m / max(float(self.s[-1]), 1e-9) > MAX_ROUTE_PCT:
                    off_route = True
            self._index = nearest
        if not off_route:
            return None
        self.failed = True
        log.warning("the ego deviated from the route at (%.1f, %.1f), %.1f m from it: the route ends here "
                    "(the leaderboard's InRouteTest)", x_m, y_m, distance)
        return InfractionEvent(frame, "route_deviation")

    def reset_position(self, route_s_m: float) -> None:
        """The ego was put back on the route at ``route_s_m`` (an intervention): match it from there."""
        self._index = int(min(np.searchsorted(self.s, route_s_m), len(self.s) - 1))
        self._in_safe_route = True
