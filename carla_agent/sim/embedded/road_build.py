"""Building a :class:`~carla_agent.sim.embedded.road.Road` from a scenario's road spec,
or from an OpenDRIVE file the spec names.

Kept apart from ``road.py`` (the types) so that the types and the OpenDRIVE reader
and writer do not import each other.
"""

from __future__ import annotations

import math
from typing import List, Tuple

import numpy as np

from carla_agent.sim.embedded.road import Geometry, Lane, Road, RoadMark
from carla_agent.sim.embedded.xodr import read_xodr


def _mark(style: str) -> RoadMark:
    return {
        "solid": RoadMark("solid", "standard"),
        "dashed": RoadMark("broken", "standard"),
        "double_yellow": RoadMark("solid solid", "yellow"),
        "solid_yellow": RoadMark("solid", "yellow"),
        "dashed_yellow": RoadMark("broken", "yellow"),
        "double_solid": RoadMark("solid solid", "standard"),
        "none": RoadMark("none", "standard"),
    }[style]


def _pieces(seg) -> List[Tuple[str, float, float, float]]:
    """Expand a segment spec into ``(kind, length, curv_start, curv_end)`` pieces."""
    sign = 1.0 if seg.turn == "left" else -1.0
    k = sign / seg.radius_m
    if seg.kind == "line":
        return [("line", seg.length_m, 0.0, 0.0)]
    if seg.kind == "arc":
        length = seg.length_m if seg.length_m > 0 else math.radians(seg.angle_deg) * seg.radius_m
        return [("arc", length, k, k)]
    angle = 180.0 if seg.kind == "hairpin" else seg.angle_deg
    trans = seg.transition_m
    # Each spiral turns by L * k / 2; the arc takes the rest of the angle.
    arc_len = math.radians(angle) * seg.radius_m - trans
    one = []
    if trans > 0:
        one.append(("spiral", trans, 0.0, k))
    if arc_len > 1e-6:
        one.append(("arc", arc_len, k, k))
    if trans > 0:
        one.append(("spiral", trans, k, 0.0))
    if seg.kind == "s_curve":
        other = [(kind, length, -a, -b) for kind, length, a, b in one]
        return one + other
    return one


def build_road(spec, name: str = "road") -> Road:
    """Build a :class:`Road` from a :class:`~carla_agent.sim.scenario.RoadSpec`."""
    if spec.xodr is not None:
        return read_xodr(spec.xodr, speed_limit_mps=spec.speed_limit_kmh / 3.6)
    geoms: List[Geometry] = []
    s = x = y = hdg = 0.0
    for seg in spec.segments:
        for kind, length, k0, k1 in _pieces(seg):
            if kind == "arc" and abs(k0) < 1e-12:
                kind = "line"
            g = Geometry(s, x, y, hdg, length, kind, k0, k1)
            geoms.append(g)
            ex, ey, eh = g.evaluate(np.array([length]))
            x, y, hdg, s = float(ex[0]), float(ey[0]), float(eh[0]), s + length
    lanes = spec.lanes

    def side(sign: int, count: int, center_is_left: bool) -> Tuple[Lane, ...]:
        out = []
        for i in range(1, count + 1):
            mark = _mark(lanes.edge_mark if i == count else lanes.lane_mark)
            out.append(Lane(sign * i, "driving", lanes.width_m, mark))
        n = count
        if lanes.shoulder_m > 0:
            n += 1
            out.append(Lane(sign * n, "shoulder", lanes.shoulder_m, RoadMark("none")))
        if lanes.curb:
            n += 1
            out.append(Lane(sign * n, "border", 0.3, RoadMark("none")))
        return tuple(out)

    right = side(-1, lanes.driving, False)
    left = side(+1, lanes.oncoming, True) if lanes.oncoming > 0 else side(+1, 0, True)
    center = _mark(lanes.center_mark) if lanes.oncoming > 0 else _mark(lanes.edge_mark)
    return Road(tuple(geoms), left, right, center, name=name,
                speed_limit_mps=spec.speed_limit_kmh / 3.6, verge=lanes.verge)
