"""The route the ego drives: lane-centre waypoints planned along ``waypoint.next``,
and the projection of a position onto it.

The route is the lane the ego is meant to be in, followed across lane sections and
junctions by the map's own successor links. Ground truth (lateral offset, lane
heading, lane width) is measured against it, never by looking a ``(road, lane)``
id up again: lane ids renumber between lane sections (Town03) and a junction's
connectors overlap, so an id names a different lane a metre further on.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from carla_agent.errors import BackendError
from carla_agent.sim.carla_backend.truth import waypoint_lanes_same_way, wrap_pi
from carla_agent.sim.routing.road_option import RoadOption

log = logging.getLogger(__name__)

#: Spacing of the planned route's waypoints, metres. Chord error at r = 10 m: 1.25 cm.
ROUTE_STEP_M = 1.0
#: A junction's command is given from this far before its entry, metres (as the embedded towns').
COMMAND_AHEAD_M = 20.0


@dataclass(frozen=True)
class RouteProjection:
    """A position projected onto the route.

    Attributes:
        s_m: distance along the route, metres.
        index: the route segment ``[index, index + 1]`` the point projects onto.
        lateral_m: signed distance from the lane centre, metres, positive right (CARLA's right vector).
        yaw_deg: the lane's heading there (the waypoints' own yaw, interpolated), degrees clockwise.
        lane_width_m: the lane's width there, metres.
    """

    s_m: float
    index: int
    lateral_m: float
    yaw_deg: float
    lane_width_m: float = 3.5


class Route:
    """Lane-centre waypoints from a start waypoint, following ``waypoint.next(step)``.

    Positions are in CARLA's world frame. ``s`` is the distance along the route.
    """

    def __init__(self, waypoints: Sequence) -> None:
        if len(waypoints) < 2:
            raise BackendError("the route has fewer than 2 waypoints: no driving lane continues from the spawn point")
        self.waypoints = list(waypoints)
        locs = [w.transform.location for w in self.waypoints]
        self.xy = np.array([(p.x, p.y) for p in locs], dtype=np.float64)
        self.z = np.array([p.z for p in locs], dtype=np.float64)
        # (road_id, lane_id) per waypoint: for display; not unique across lane sections, so never looked up again.
        self.keys = [(w.road_id, w.lane_id) for w in self.waypoints]
        self.lane_width = np.array([w.lane_width for w in self.waypoints], dtype=np.float64)
        self._yaw_rad = np.unwrap(np.radians([w.transform.rotation.yaw for w in self.waypoints]))
        seg = np.hypot(*np.diff(self.xy, axis=0).T)
        self.s = np.concatenate([[0.0], np.cumsum(seg)])
        self.length_m = float(self.s[-1])
        self.junctions = _junction_commands(self.waypoints, self.s, self._yaw_rad, self.xy)

    def command_at(self, s_m: float, ahead_m: float = COMMAND_AHEAD_M) -> int:
        """The route's command at ``s_m`` (a RoadOption value): a junction's LEFT, RIGHT or STRAIGHT from
        ``ahead_m`` before its entry until its exit, LANEFOLLOW (4) elsewhere, as on the embedded towns."""
        for s_in, s_out, option in self.junctions:
            if s_in - ahead_m <= s_m < s_out:
                return option
        return int(RoadOption.LANEFOLLOW)

    @classmethod
    def plan(cls, start, length_m: float, step_m: float = ROUTE_STEP_M, junctions: Any = "straight",
             rng: Optional[np.random.Generator] = None) -> "Route":
        """Follow ``start.next(step_m)`` for ``length_m`` metres, choosing branches by ``junctions``: a policy
        name (``straight``, ``left``, ``right``, ``random``) or a callable ``(wp, options) -> option``."""
        rng = rng if rng is not None else np.random.default_rng(0)
        wps = [start]
        wp = start
        for _ in range(int(math.ceil(length_m / step_m))):
            options = wp.next(step_m)
            if not options:
                # A single road's normal end (serve's single roads end): the drive ends there, as asked.
                log.info("the route ends after %.0f m of the %.0f m asked (the lane leads nowhere further)",
                         (len(wps) - 1) * step_m, length_m)
                break
            wp = options[0] if len(options) == 1 else _choose(wp, options, junctions, rng)
            wps.append(wp)
        return cls(wps)

    def project(self, x: float, y: float, hint: Optional[int] = None, window_m: float = 30.0) -> RouteProjection:
        """The closest point of the route to ``(x, y)``, searched near ``hint`` when given."""
        n = len(self.s)
        if hint is None:
            lo, hi = 0, n
        else:
            k = int(window_m / max(self.s[-1] / (n - 1), 1e-6)) + 1
            lo, hi = max(0, hint - k), min(n, hint + k + 1)
        d2 = (self.xy[lo:hi, 0] - x) ** 2 + (self.xy[lo:hi, 1] - y) ** 2
        i = lo + int(np.argmin(d2))
        best = None
        for j in (i - 1, i):
            if 0 <= j < n - 1:
                p0 = self.xy[j]
                seg = self.xy[j + 1] - p0
                length = float(math.hypot(seg[0], seg[1])) or 1e-9
                fx, fy = seg / length
                ex, ey = x - p0[0], y - p0[1]
                u = min(max(ex * fx + ey * fy, 0.0), length)
                dist = math.hypot(ex - u * fx, ey - u * fy)
                if best is None or dist < best[0]:
                    lateral = ex * -fy + ey * fx  # CARLA's right vector is (-sin yaw, cos yaw)
                    f = u / length
                    yaw = self._yaw_rad[j] + f * (self._yaw_rad[j + 1] - self._yaw_rad[j])
                    width = self.lane_width[j] + f * (self.lane_width[j + 1] - self.lane_width[j])
                    best = (dist, RouteProjection(float(self.s[j] + u), j, float(lateral),
                                                  math.degrees(wrap_pi(float(yaw))), float(width)))
        return best[1]

    def point_at(self, s_m: float) -> Tuple[float, float, float, float]:
        """``(x, y, z, yaw_deg)`` of the route at distance ``s_m`` (clamped)."""
        s = min(max(float(s_m), 0.0), self.length_m)
        j = min(int(np.searchsorted(self.s, s, side="right")) - 1, len(self.s) - 2)
        f = (s - self.s[j]) / max(self.s[j + 1] - self.s[j], 1e-9)
        p = self.xy[j] + f * (self.xy[j + 1] - self.xy[j])
        d = self.xy[j + 1] - self.xy[j]
        z = self.z[j] + f * (self.z[j + 1] - self.z[j])
        return float(p[0]), float(p[1]), float(z), math.degrees(math.atan2(d[1], d[0]))

    def ahead(self, x: float, y: float, yaw_deg: float, s_m: float, distances_m: np.ndarray) -> np.ndarray:
        """``(N, 2)`` float32 route points at ``s + distances`` in the vehicle frame (x forward, y right).

        Cut where the distance from the car stops growing (a hairpin), so the
        points stay ordered by distance.
        """
        s = np.minimum(s_m + np.asarray(distances_m, dtype=np.float64), self.length_m)
        px = np.interp(s, self.s, self.xy[:, 0]) - x
        py = np.interp(s, self.s, self.xy[:, 1]) - y
        c, sn = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
        pts = np.stack([px * c + py * sn, -px * sn + py * c], axis=1)
        dist = np.hypot(pts[:, 0], pts[:, 1])
        falling = np.nonzero(np.diff(dist) < -1e-3)[0]
        if len(falling):
            pts = pts[:falling[0] + 1]
        return pts.astype(np.float32)


def _junction_commands(waypoints, s: np.ndarray, yaw_rad: np.ndarray, xy: np.ndarray):
    """``[(s_in, s_out, RoadOption value)]`` of each run of junction waypoints: STRAIGHT when the chord
    through it is within 33 degrees of the heading entering it (as the global route planner), else
    LEFT or RIGHT by its side (CARLA's yaw is clockwise: positive turns right)."""
    flags = [bool(getattr(w, "is_junction", False)) for w in waypoints]
    out, i = [], 1
    while i < len(flags):
        if not flags[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(flags) and flags[j + 1]:
            j += 1
        chord = xy[min(j + 1, len(xy) - 1)] - xy[i - 1]
        turn = wrap_pi(math.atan2(chord[1], chord[0]) - float(yaw_rad[i - 1]))
        option = (RoadOption.STRAIGHT if abs(turn) < math.radians(33.0) else
                  RoadOption.RIGHT if turn > 0 else RoadOption.LEFT)
        out.append((float(s[i - 1]), float(s[min(j + 1, len(s) - 1)]), int(option)))
        i = j + 1
    return out


#: Options within this many degrees of the straightest one count as going straight on.
STRAIGHT_SPREAD_DEG = 30.0
#: How far an option is followed to judge it: through its junction, then this much further.
JUDGE_AFTER_M = 20.0


def _leave_junction(option, step_m: float = 2.0, limit_m: float = 150.0):
    """The first waypoint after ``option``'s junction (following the first successor), or the last reached."""
    wp, travelled = option, 0.0
    while wp.is_junction and travelled < limit_m:
        nxt = wp.next(step_m)
        if not nxt:
            break
        wp, travelled = nxt[0], travelled + step_m
    return wp


def _choose(wp, options, junctions: Any, rng: np.random.Generator):
    """The branch a route takes where ``wp.next`` offers several.

    ``left`` / ``right``: the sharpest turn that way; ``random``: any (seeded). ``straight``
    stays on the road's class unless no option does: among the options within
    :data:`STRAIGHT_SPREAD_DEG` of the straightest, it prefers one that stays on the same
    road (a lane split inside a road), then one whose road after the junction has no fewer
    lanes going its way (a highway goes on; its exit ramp has fewer), then the smallest
    heading change, measured :data:`JUDGE_AFTER_M` past the junction (a ramp can leave a
    curving highway straighter than the highway itself).
    """
    if callable(junctions):  # a planned route's own choice (town_plan.TownPlan.choose)
        return junctions(wp, options)
    if junctions == "random":
        return options[int(rng.integers(len(options)))]
    yaw0 = wp.transform.rotation.yaw

    def turn(option, after_m: float) -> float:  # positive: turns right (CARLA's yaw is clockwise)
        far = option.next(after_m)
        yaw = (far[0] if far else option).transform.rotation.yaw
        return math.degrees(wrap_pi(math.radians(yaw - yaw0)))

    if junctions in ("left", "right"):
        turns = [turn(o, 10.0) for o in options]
        return options[int(np.argmin(turns) if junctions == "left" else np.argmax(turns))]
    lanes_here = waypoint_lanes_same_way(wp)
    judged = []
    for k, option in enumerate(options):
        out = _leave_junction(option)
        far = out.next(JUDGE_AFTER_M)
        end = far[0] if far else out
        heading = abs(math.degrees(wrap_pi(math.radians(end.transform.rotation.yaw - yaw0))))
        same_road = option.road_id == wp.road_id and not option.is_junction
        fewer_lanes = waypoint_lanes_same_way(out) < lanes_here
        judged.append((heading, not same_road, fewer_lanes, k))
    straightest = min(h for h, _, _, _ in judged)
    candidates = [j for j in judged if j[0] <= straightest + STRAIGHT_SPREAD_DEG]
    best = min(candidates, key=lambda j: (j[1], j[2], j[0]))
    return options[best[3]]
