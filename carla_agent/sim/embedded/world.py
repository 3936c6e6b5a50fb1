"""Things in the embedded world besides the road: static objects and vehicles.

All coordinates are OpenDRIVE's right-handed frame (metres, radians CCW).
Boxes stand on the ground (z = 0 at their base).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Literal, Tuple

import numpy as np

from carla_agent.sim.embedded.road import Road

RGB = Tuple[int, int, int]


@dataclass(frozen=True)
class StaticObject:
    """A roadside object.

    ``kind`` decides its look: ``tree`` (trunk + round canopy of diameter
    ``width_m``), ``pole`` (thin post), ``building`` (box), ``sign`` (post with a
    plate at the top). ``length_m`` runs along ``yaw_rad``.
    """

    kind: Literal["tree", "pole", "building", "sign"]
    x_m: float
    y_m: float
    yaw_rad: float
    length_m: float
    width_m: float
    height_m: float
    color: RGB
    s_m: float  # position along the road, for culling


@dataclass(frozen=True)
class VehicleBox:
    """A vehicle as an oriented box, for drawing and collisions."""

    x_m: float
    y_m: float
    yaw_rad: float
    length_m: float
    width_m: float
    height_m: float
    color: RGB
    s_m: float
    kind: str = "vehicle"


TREE_COLORS = ((46, 98, 40), (60, 110, 45), (38, 84, 44), (72, 104, 38))
BUILDING_COLORS = ((170, 160, 150), (150, 120, 100), (190, 185, 170), (120, 110, 115), (160, 90, 70))
CAR_COLORS = ((200, 30, 30), (30, 60, 160), (220, 220, 220), (40, 40, 40), (230, 190, 40), (90, 90, 100))


def place_static(road: Road, roadside, rng: np.random.Generator) -> List[StaticObject]:
    """Place the scenario's roadside objects, deterministically from ``rng``.

    Offsets in the spec are measured outward from the road's outer edges.
    """
    out: List[StaticObject] = []
    kinds = ("trees", "poles", "buildings", "signs")
    for kind in kinds:
        spec = getattr(roadside, kind)
        if spec.every_m <= 0:
            continue
        sides = (+1, -1) if spec.side == "both" else ((+1,) if spec.side == "left" else (-1,))
        for side in sides:
            s = float(rng.uniform(0.2, 1.0) * spec.every_m)
            while s < road.length_m:
                lo, hi = spec.offset_m
                off = float(rng.uniform(lo, hi))
                edge = road.left_edge_t if side > 0 else road.right_edge_t
                obj = _make(kind, 0.0, 0.0, 0.0, s, rng)
                # The offset is to the object's near side, so wide objects never reach the road.
                t = edge + side * (off + 0.5 * obj.width_m)
                x, y = road.to_world(s, t)
                hdg = road.heading_at(s)
                out.append(replace(obj, x_m=float(x), y_m=float(y), yaw_rad=hdg))
                s += float(spec.every_m * rng.uniform(0.6, 1.4))
    return out


def _make(kind: str, x: float, y: float, hdg: float, s: float, rng: np.random.Generator) -> StaticObject:
    if kind == "trees":
        h = float(rng.uniform(5.0, 10.0))
        d = float(rng.uniform(2.5, 5.0))
        return StaticObject("tree", x, y, hdg, d, d, h, TREE_COLORS[int(rng.integers(len(TREE_COLORS)))], s)
    if kind == "poles":
        return StaticObject("pole", x, y, hdg, 0.25, 0.25, float(rng.uniform(6.0, 9.0)), (120, 120, 125), s)
    if kind == "buildings":
        length = float(rng.uniform(10.0, 25.0))
        return StaticObject("building", x, y, hdg, length, float(rng.uniform(8.0, 15.0)),
                            float(rng.uniform(5.0, 18.0)), BUILDING_COLORS[int(rng.integers(len(BUILDING_COLORS)))], s)
    return StaticObject("sign", x, y, hdg, 0.1, 0.9, 2.6, (200, 200, 210), s)
