"""Trees of the embedded renderer, drawn straight in screen space: trunk, crown and a sunlit highlight.

A broadleaf crown is an ellipse (a polygon with a flat bottom on the trunk
top), a conifer's a cone; their shapes are fixed per object by the seed
(``ren._tree_geo``, built with the objects). Functions take the
:class:`~carla_agent.sim.embedded.render.Renderer` ``ren`` whose state they
read.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from carla_agent.sim.embedded.render.palette import L_TERRAIN, TRUNK_F
from carla_agent.sim.embedded.render.polygons import ONE


def crown_outline(width_px: int) -> Tuple[np.ndarray, float]:
    """Unit outline of a crown, ``(K + 1, 2)`` from the bottom round and back, and its widest flat bottom.

    16-gons on small images, 32-gons on large ones (the polygon error stays
    under a pixel); the flat bottom is the widest that keeps it convex.
    """
    k_crown = 16 if width_px <= 320 else 32
    ang = np.pi / 2 + np.arange(k_crown) * (2.0 * np.pi / k_crown)
    unit = np.stack([np.cos(ang), np.sin(ang)], 1)[np.r_[0:k_crown, 0]]
    return unit, (0.25 if k_crown == 16 else 0.12)


def gather_trees(ren, j: np.ndarray, where: np.ndarray, amb: np.ndarray, fog: np.ndarray, rng_list: list,
                 toward_sun: float, items: list) -> None:
    """Trees drawn straight in screen space: trunk, crown (an ellipse or a cone) and a sunlit highlight.

    The trunk ends exactly where the crown begins (the ellipse gets a flat
    bottom there), so the two never overlap and one even-odd ``fillPoly``
    labels both. Everything is computed for all trees at once.

    Args:
        j: object indices; where: their positions in the frame's object list
        (for ``rng_list``); amb, fog: their light and fog.
    """
    cam, w = ren.camera, ren.weather
    n = len(j)
    g = ren._tree_geo[j]
    rv, cw, half = g[:, 0], g[:, 1], g[:, 4]
    xy = ren._obj_xy[j]
    rx, ry = cam._r
    # Points per tree: foot, trunk top, crown centre (a cone's apex), highlight centre.
    X = np.empty((4, n))
    Y = np.empty((4, n))
    X[:3] = xy[:, 0]
    Y[:3] = xy[:, 1]
    sh = (toward_sun * 0.25) * cw
    X[3] = xy[:, 0] + rx * sh
    Y[3] = xy[:, 1] + ry * sh
    d, r, u = cam.to_camera(X, Y, g[:, 5:9].T)
    k = cam.focal_px / np.maximum(d, 1.0)
    su = (cam.cx_px - 0.5) + r * k
    sv = (cam.cy_px - 0.5) - u * k
    ax, ay = cw * k[2], rv * k[2]
    # Behind the camera, or giant beside it (off screen or filling it): skip.
    ok = ((d[0] > 1.0) & (d[2] > 1.0) & (ax < 8.0 * (ren.width_px + ren.height_px))).tolist()
    unit = ren._crown_unit
    K = len(unit)
    # All outlines in one array: trunk (4), crown (K), highlight (K), cone (4), sunny flank (4).
    F = np.empty((n, 12 + 2 * K, 2))
    tr, cr, hl = F[:, 0:4], F[:, 4:4 + K], F[:, 4 + K:4 + 2 * K]
    co, fl = F[:, 4 + 2 * K:8 + 2 * K], F[:, 8 + 2 * K:]
    hf, ht = half * k[0], half * k[1]
    tr[:, 0, 0] = su[0] - hf
    tr[:, 1, 0] = su[0] + hf
    tr[:, 2, 0] = su[1] + ht
    tr[:, 3, 0] = su[1] - ht
    tr[:, :2, 1] = sv[0][:, None]
    tr[:, 2:, 1] = sv[1][:, None]
    cr[..., 0] = su[2][:, None] + ax[:, None] * unit[:, 0]
    cr[..., 1] = sv[2][:, None] + ay[:, None] * unit[:, 1]
    # The flat bottom: as wide as the trunk top, within what keeps the polygon convex.
    bw = np.minimum(ht, ren._crown_flat * ax)
    cr[:, 0, 0] = su[2] - bw
    cr[:, -1, 0] = su[2] + bw
    cr[:, 0, 1] = sv[1]
    cr[:, -1, 1] = sv[1]
    hl[..., 0] = su[3][:, None] + (0.66 * ax)[:, None] * unit[:, 0]
    hl[..., 1] = sv[3][:, None] + (0.68 * ay)[:, None] * unit[:, 1]
    # Cones: the base on the trunk top, the apex above; the sunny flank a narrower cone beside it.
    wb = cw * k[1]
    co[:, 0, 0] = su[1] - wb
    co[:, 1, 0] = su[1] + wb
    co[:, :2, 1] = sv[1][:, None]
    co[:, 2:, 0] = su[2][:, None]
    co[:, 2:, 1] = sv[2][:, None]
    off = su[1] + (toward_sun * 0.3) * wb
    height = sv[1] - sv[2]
    fl[:, 0, 0] = off - 0.5 * wb
    fl[:, 1, 0] = off + 0.5 * wb
    fl[:, :2, 1] = (sv[1] - 0.12 * height)[:, None]
    fl[:, 2:, 0] = (su[2] + (toward_sun * 0.3) * wb)[:, None]
    fl[:, 2:, 1] = (sv[2] + 0.07 * height)[:, None]
    P = np.rint(F * ONE).astype(np.int32)
    # Colours: trunk, crown, sunlit crown; crowns are high, so the low beams light them half as much.
    sun = ren._sun_rgb
    a = 0.5 * (amb + ren._amb_obj) if w.headlights else amb
    light = np.empty((3, n, 3))
    light[0] = amb + 0.4 * sun
    light[1] = a + 0.3 * sun
    light[2] = a + 0.85 * sun
    albedo = np.empty((3, n, 3))
    albedo[0] = TRUNK_F
    albedo[1:] = ren._obj_color[j]
    c = (albedo * light).reshape(-1, 3)
    f3 = np.concatenate((fog, fog, fog))[:, None]
    cols = (c + (ren._fog_rgb - c) * f3 + 0.5).clip(0.0, 255.0).astype(np.int64).tolist()
    # Level of detail: a crown under 4 px is drawn without trunk, under 8 px without highlight.
    crown_px = 2.0 * ay
    detail = (crown_px >= 4.0).tolist()
    shaded = (crown_px >= 8.0).tolist() if ren._sunny else [False] * n
    conifer = ren._obj_conifer[j].tolist()
    e1, e2, e3 = 4 + K, 4 + 2 * K, 8 + 2 * K
    for i, kk in enumerate(where.tolist()):
        if not ok[i]:
            continue
        q = P[i]
        top = q[e2:e3] if conifer[i] else q[4:e1]
        if detail[i]:
            trunk = q[:4]
            prims = [(3, trunk, cols[i], None), (3, top, cols[n + i], None), (5, [trunk, top], L_TERRAIN)]
        else:
            prims = [(3, top, cols[n + i], L_TERRAIN)]
        if shaded[i]:
            prims.append((3, q[e3:] if conifer[i] else q[e1:e2], cols[2 * n + i], None))
        items.append((rng_list[kk], prims))
