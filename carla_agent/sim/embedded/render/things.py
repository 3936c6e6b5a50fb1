"""The far-to-near painter of the embedded renderer: objects and vehicles over the ground.

Objects and vehicles are drawn far to near (painter's algorithm), lit by the
sun and fogged by their distance; all their world polygons are clipped and
projected in one call. Each thing is a list of primitives, drawn in order:

* ``(0, index, colour, label or None)``: a convex polygon of the batch;
* ``(3, points, colour, label or None)``: a convex polygon already projected;
* ``(1, centre, axes, colour, label or None)``: a filled ellipse (fixed-point);
* ``(2, indices, colour)``: many disjoint polygons of the batch in one colour;
* ``(4, refs, label)``: labels of disjoint polygons (batch indices or points) in one call;
* ``(5, points list, label)``: labels of disjoint projected polygons in one call.
"""

from __future__ import annotations

from operator import itemgetter
from typing import List, Mapping, Optional, Tuple

import cv2
import numpy as np

from carla_agent.sim.embedded.render.lights import gather_lights
from carla_agent.sim.embedded.render.polygons import AA, HARD, SHIFT, Batch
from carla_agent.sim.embedded.render.roadside import gather_statics
from carla_agent.sim.embedded.render.vehicles import Vehicles, gather_vehicles


def draw_things(ren, rgb: np.ndarray, sem: np.ndarray, objs: np.ndarray, depth: np.ndarray,
                rng_m: np.ndarray, veh: Optional[Vehicles], light_states: Optional[Mapping[int, str]] = None) -> None:
    """Objects, traffic lights (in ``light_states``) and vehicles, far to near; all their polygons
    are clipped and projected in one call."""
    b = Batch()
    items: List[Tuple[float, list]] = []  # (range, primitives), drawn far to near
    if len(objs):
        gather_statics(ren, objs, depth, rng_m, b, items)
    if light_states is not None:
        gather_lights(ren, b, items, light_states)
    if veh is not None:
        gather_vehicles(ren, veh, b, items)
    if not items:
        return
    polys = b.project(ren.camera)
    items.sort(key=itemgetter(0), reverse=True)
    fill = cv2.fillConvexPoly
    ellipse = cv2.ellipse
    for _, prims in items:
        for p in prims:
            tag = p[0]
            if tag == 0:  # convex polygon: (0, index, colour, label or None)
                pts = polys[p[1]]
                if pts is not None:
                    fill(rgb, pts, p[2], AA, SHIFT)
                    if p[3] is not None:
                        fill(sem, pts, p[3], HARD, SHIFT)
            elif tag == 3:  # projected convex polygon: (3, points, colour, label or None)
                fill(rgb, p[1], p[2], AA, SHIFT)
                if p[3] is not None:
                    fill(sem, p[1], p[3], HARD, SHIFT)
            elif tag == 1:  # ellipse: (1, centre, axes, colour, label or None)
                ellipse(rgb, p[1], p[2], 0.0, 0.0, 360.0, p[3], -1, AA, SHIFT)
                if p[4] is not None:
                    ellipse(sem, p[1], p[2], 0.0, 0.0, 360.0, p[4], -1, HARD, SHIFT)
            elif tag == 5:  # labels of disjoint projected polygons in one call: (5, points list, label)
                cv2.fillPoly(sem, p[1], p[2], HARD, SHIFT)
            elif tag == 4:  # labels of disjoint polygons in one call: (4, refs, label)
                sel = [polys[i] if i.__class__ is int else i for i in p[1]]
                sel = [q for q in sel if q is not None]
                if sel:
                    cv2.fillPoly(sem, sel, p[2], HARD, SHIFT)
            else:  # many disjoint polygons of one colour: (2, indices, colour)
                sel = [polys[i] for i in p[1] if polys[i] is not None]
                if sel:
                    cv2.fillPoly(rgb, sel, p[2], AA, SHIFT)
