"""Static roadside objects of the embedded renderer as arrays, and which of them a frame draws.

Objects (trees, poles, buildings, signs) are sorted by s once, so a frame
finds its candidates by two binary searches and culls them against the view
in one vectorised test. Functions take the
:class:`~carla_agent.sim.embedded.render.Renderer` ``ren`` whose state they
read and set.
"""

from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np

from carla_agent.sim.embedded.render.ground import BEHIND_M
from carla_agent.sim.embedded.world import StaticObject

#: Objects are drawn up to this distance (they are specks and fogged beyond).
OBJECT_VIEW_M = 260.0
#: Object kinds, as stored in ``ren._obj_kind``.
TREE, POLE, BUILDING, SIGN = 0, 1, 2, 3


def build_objects(ren, objects: Sequence[StaticObject]) -> None:
    """The static objects as arrays sorted by s: kinds, places, sizes, colours, sides, tree shapes."""
    objs = sorted(objects, key=lambda o: o.s_m)
    ren._objects = objs
    ren._obj_s = np.array([o.s_m for o in objs], dtype=np.float64)
    ren._obj_xy = np.array([[o.x_m, o.y_m] for o in objs], dtype=np.float64).reshape(-1, 2)
    ren._obj_radius = np.array([0.5 * math.hypot(o.length_m, o.width_m) + 0.5 for o in objs])
    kinds = {"tree": TREE, "pole": POLE, "building": BUILDING, "sign": SIGN}
    ren._obj_kind = np.array([kinds.get(o.kind, POLE) for o in objs], dtype=np.int64)
    ren._obj_dims = np.array([[o.length_m, o.width_m, o.height_m] for o in objs], np.float64).reshape(-1, 3)
    ren._obj_yaw = np.array([o.yaw_rad for o in objs], np.float64)
    ren._obj_color = np.array([o.color for o in objs], np.float64).reshape(-1, 3)
    # Which side of the road each object stands on: lamp arms reach over the road, signs face its traffic.
    if objs:
        x, y, h = ren.road.pose_at(ren._obj_s)
        t = -(ren._obj_xy[:, 0] - x) * np.sin(h) + (ren._obj_xy[:, 1] - y) * np.cos(h)
        ren._obj_side = np.where(t > 0, 1.0, -1.0)
    else:
        ren._obj_side = np.zeros(0)
    # Shape variety (conifer or broadleaf), stable for the seed.
    ren._obj_conifer = np.random.default_rng((ren.seed, 104729)).random(len(objs)) < 0.3
    # Tree shapes (used for trees only): crown half-height rv and half-width, the height of the
    # crown's centre, where the trunk meets the crown, trunk half-width, and the heights of the
    # four points projected per tree (foot, trunk top, crown centre or cone apex, highlight).
    L, Wd, Ht = ren._obj_dims.T
    rv = 0.36 * Ht
    zc = Ht - rv
    zb = np.where(ren._obj_conifer, 0.18 * Ht, zc - rv)
    ren._tree_geo = np.stack([rv, 0.5 * Wd, zc, zb, 0.1 + 0.035 * Wd, np.zeros_like(Ht), zb,
                              np.where(ren._obj_conifer, Ht, zc), zc + 0.2 * rv], 1).reshape(-1, 9)
    # Lamp arms reach over the road; a sign faces the traffic on its side (right-hand signs face -s).
    c, s = np.cos(ren._obj_yaw), np.sin(ren._obj_yaw)
    toward = -ren._obj_side
    ren._obj_reach = np.stack([-s * toward, c * toward], 1).reshape(-1, 2)
    ren._obj_facing = np.stack([c * ren._obj_side, s * ren._obj_side], 1).reshape(-1, 2)


def frame_objects(ren, s_hint: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Static objects of this frame: ``(drawn, casting, depth_m, range_m)``.

    ``drawn`` are inside the view up to the object distance; ``casting`` are
    those whose shadow may reach the view (a margin wider, up to the shadow
    distance). ``depth_m``/``range_m`` belong to ``drawn``.
    """
    empty = np.zeros(0, np.int64)
    if len(ren._obj_s) == 0:
        return empty, empty, np.zeros(0), np.zeros(0)
    view = ren._object_view_m
    lo = int(np.searchsorted(ren._obj_s, s_hint - BEHIND_M))
    hi = int(np.searchsorted(ren._obj_s, s_hint + view + 30.0))
    if hi <= lo:
        return empty, empty, np.zeros(0), np.zeros(0)
    xy = ren._obj_xy[lo:hi]
    d, r, _ = ren.camera.to_camera(xy[:, 0], xy[:, 1], 0.0)
    rad = ren._obj_radius[lo:hi]
    ar = np.abs(r)
    dp = np.maximum(d, 0.0)
    drawn = (d > -rad) & (d < view + rad) & (ar - rad < (dp + rad) * ren._tan_half_fov)
    casting = empty
    if ren._shadow_rgb is not None:
        m = rad + ren._shadow_reach_m
        casting = lo + np.nonzero((d > -m) & (d < ren._shadow_view_m) & (ar - m < (dp + m) * ren._tan_half_fov))[0]
    idx = np.nonzero(drawn)[0]
    d = d[idx]
    return lo + idx, casting, d, np.hypot(d, r[idx])
