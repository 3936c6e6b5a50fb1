"""2-D oriented-box overlap (separating axis test), for collisions."""

from __future__ import annotations

import math
from typing import Tuple

Box = Tuple[float, float, float, float, float]  # x_m, y_m, yaw_rad, length_m, width_m


def boxes_overlap(a: Box, b: Box) -> bool:
    """True when two oriented rectangles on the ground overlap."""
    ax, ay, ayaw, al, aw = a
    bx, by, byaw, bl, bw = b
    dx, dy = bx - ax, by - ay
    # Cheap reject on bounding circles first: most pairs are far apart.
    ra = 0.5 * math.hypot(al, aw)
    rb = 0.5 * math.hypot(bl, bw)
    if dx * dx + dy * dy > (ra + rb) ** 2:
        return False
    axes = ((math.cos(ayaw), math.sin(ayaw)), (-math.sin(ayaw), math.cos(ayaw)),
            (math.cos(byaw), math.sin(byaw)), (-math.sin(byaw), math.cos(byaw)))
    a_half = ((math.cos(ayaw) * al / 2, math.sin(ayaw) * al / 2), (-math.sin(ayaw) * aw / 2, math.cos(ayaw) * aw / 2))
    b_half = ((math.cos(byaw) * bl / 2, math.sin(byaw) * bl / 2), (-math.sin(byaw) * bw / 2, math.cos(byaw) * bw / 2))
    for ux, uy in axes:
        dist = abs(dx * ux + dy * uy)
        pa = sum(abs(hx * ux + hy * uy) for hx, hy in a_half)
        pb = sum(abs(hx * ux + hy * uy) for hx, hy in b_half)
        if dist > pa + pb:
            return False
    return True
