"""Shadows of the embedded renderer: sun shadows of objects and cars, and the contact shadows under cars.

Shadows multiply a gain image over the ground rows they cover. Static
objects' sun shadows never change for a weather: their world outlines are
precomputed; cars' shadows are their boxes swept away from the sun. Functions
take the :class:`~carla_agent.sim.embedded.render.Renderer` ``ren`` whose
state they read and set.
"""

from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np

from carla_agent.sim.embedded.render.objects import BUILDING, POLE, SIGN, TREE
from carla_agent.sim.embedded.render.polygons import AA, BOX_LX, BOX_LY, NEAR_CLIP_M, SHIFT, clip_polys
from carla_agent.sim.embedded.render.vehicles import Vehicles

_NEXT4 = np.array([1, 2, 3, 0])
_PREV4 = np.array([3, 0, 1, 2])
_SLOT2 = np.array([0, 1])
_KIND01 = np.array([0, 1])
#: Outline of a crown's shadow (8 vertices).
_RING_COS = np.cos(np.arange(8) * (np.pi / 4.0))
_RING_SIN = np.sin(np.arange(8) * (np.pi / 4.0))


def swept_boxes(x, y, yaw, length, width, vx, vy) -> Tuple[np.ndarray, np.ndarray]:
    """Ground outlines of box footprints swept along ``(vx, vy)`` (a box's shadow), 8 vertices each.

    The sweep of a convex polygon along a vector is its outline with the
    vertices whose edges face the vector moved by it. Each corner emits two
    vertices: itself moved if its incoming edge faces the sweep, then itself
    moved if its outgoing edge does; where both agree the two coincide (a
    harmless repeat), where they differ the outline steps along the sweep.
    All arguments are ``(k,)`` arrays; returns ``(x, y)``, each ``(k, 8)``.
    """
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    lx = BOX_LX * (0.5 * length)[:, None]
    ly = BOX_LY * (0.5 * width)[:, None]
    px = x[:, None] + c * lx - s * ly  # (k, 4) counter-clockwise
    py = y[:, None] + s * lx + c * ly
    # Edge i runs from corner i to i + 1; its outward normal is the edge turned clockwise, (ey, -ex).
    ex, ey = px[:, _NEXT4] - px, py[:, _NEXT4] - py
    vx, vy = vx[:, None], vy[:, None]
    faces = ey * vx - ex * vy > 0
    prev = faces[:, _PREV4]
    out_x = np.empty((len(x), 4, 2))
    out_y = np.empty((len(x), 4, 2))
    out_x[:, :, 0] = px + vx * prev
    out_y[:, :, 0] = py + vy * prev
    out_x[:, :, 1] = px + vx * faces
    out_y[:, :, 1] = py + vy * faces
    return out_x.reshape(-1, 8), out_y.reshape(-1, 8)


def build_static_shadows(ren) -> None:
    """World outlines (8 vertices) of the static objects' sun shadows: two slots per object.

    Trees: the crown's shadow (an ellipse stretched away from the sun) and,
    where that does not cover the foot, the trunk's strip; poles and signs:
    a strip; buildings: the footprint swept along the shadow.
    """
    n = len(ren._objects)
    ren._static_shadow_x = np.zeros((2 * n, 8))
    ren._static_shadow_y = np.zeros((2 * n, 8))
    ren._static_shadow_ok = np.zeros(2 * n, bool)
    if n == 0 or ren._shadow_rgb is None:
        return
    dx, dy, reach = ren._shadow_dir
    ox, oy = ren._obj_xy[:, 0], ren._obj_xy[:, 1]
    L, Wd, Ht = ren._obj_dims.T
    kind = ren._obj_kind
    sx, sy, ok = ren._static_shadow_x, ren._static_shadow_y, ren._static_shadow_ok
    tree = kind == TREE
    rv, rh = 0.36 * Ht, 0.5 * Wd
    lc = (Ht - rv) * reach  # foot to the crown shadow's centre
    ra = rh + rv * reach  # its half-length
    along = ra[:, None] * _RING_COS
    across = rh[:, None] * _RING_SIN
    cx, cy = ox + dx * lc, oy + dy * lc
    sx[0::2][tree] = (cx[:, None] + dx * along - dy * across)[tree]
    sy[0::2][tree] = (cy[:, None] + dy * along + dx * across)[tree]
    ok[0::2][tree] = True
    # Strips from the foot along the shadow: trunks not covered by their crown's shadow, poles, signs.
    strip = ((kind == POLE) | (kind == SIGN)) | (tree & (lc - ra > 0.3))
    half = np.where(tree, 0.15, 0.08)
    length = np.where(tree, 0.7 * Ht, Ht) * reach
    px, py = -dy * half, dx * half
    qx = np.stack([ox + px, ox + px + dx * length, ox - px + dx * length, ox - px], 1).repeat(2, axis=1)
    qy = np.stack([oy + py, oy + py + dy * length, oy - py + dy * length, oy - py], 1).repeat(2, axis=1)
    slot = np.where(tree, 1, 0)
    for k in (0, 1):
        m = strip & (slot == k)
        sx[k::2][m] = qx[m]
        sy[k::2][m] = qy[m]
        ok[k::2][m] = True
    bld = kind == BUILDING
    if bld.any():
        hx, hy = swept_boxes(ox[bld], oy[bld], ren._obj_yaw[bld], L[bld], Wd[bld], dx * reach * Ht[bld],
                             dy * reach * Ht[bld])
        sx[0::2][bld] = hx
        sy[0::2][bld] = hy
        ok[0::2][bld] = True


def apply_shadows(ren, rgb: np.ndarray, row0: int, objs: np.ndarray, veh: Optional[Vehicles]) -> None:
    """Darken the ground under shadows: a gain image over the rows they cover, one multiply.

    Args:
        rgb: the ground part of the frame, starting at image row ``row0``.
        objs: static objects that may cast a shadow into view.
        veh: the vehicles in view.
    """
    xs, ys, kinds = [], [], []
    if len(objs) and ren._shadow_rgb is not None:
        # Static objects' shadows never change for a weather: precomputed, two slots per object.
        slots = (2 * objs[:, None] + _SLOT2).ravel()
        slots = slots[ren._static_shadow_ok[slots]]
        xs.append(ren._static_shadow_x[slots])
        ys.append(ren._static_shadow_y[slots])
        kinds.append(np.zeros(len(slots), np.int64))
    if veh is not None:
        # Cars: the sun shadow (their box swept away from the sun) and the darker contact shadow.
        L, Wd = veh.length + 0.2, veh.width + 0.15
        zero = 0.0 * veh.x
        if ren._shadow_rgb is not None:
            dx, dy, reach = ren._shadow_dir
            k = reach * 0.8 * veh.height
            two = lambda a: np.concatenate((a, a))  # noqa: E731
            hx, hy = swept_boxes(two(veh.x), two(veh.y), two(veh.yaw), two(L), two(Wd),
                                 np.concatenate((dx * k, zero)), np.concatenate((dy * k, zero)))
            kinds.append(np.repeat(_KIND01, len(zero)))
        else:
            hx, hy = swept_boxes(veh.x, veh.y, veh.yaw, L, Wd, zero, zero)
            kinds.append(np.ones(len(zero), np.int64))
        xs.append(hx)
        ys.append(hy)
    if not xs:
        return
    d, r, u = ren.camera.to_camera(np.concatenate(xs), np.concatenate(ys), 0.0)
    kind = np.concatenate(kinds)
    ok = d.max(axis=1) > NEAR_CLIP_M
    if not ok.all():
        d, r, u, kind = d[ok], r[ok], u[ok], kind[ok]
    n = len(kind)
    if n == 0:
        return
    nxt = np.arange(1, 8 * n + 1)
    nxt[7::8] -= 8
    out = clip_polys(ren.camera, d.ravel(), r.ravel(), u.ravel(), nxt, np.repeat(np.arange(n), 8), n, row0)
    live = [(p, k) for p, k in zip(out, kind.tolist()) if p is not None]
    if not live:
        return
    ys_ = np.concatenate([p[:, 1] for p, _ in live])
    vmin = max(0, int(ys_.min()) >> SHIFT)
    vmax = min(ren.height_px - row0, (int(ys_.max()) >> SHIFT) + 2)
    if vmax <= vmin:
        return
    mask = np.full((vmax - vmin, ren.width_px, 3), 255, np.uint8)
    off = np.array([0, vmin << SHIFT], np.int32)
    colours = (ren._shadow_rgb, ren._contact_rgb)
    fill = cv2.fillConvexPoly
    # One call per polygon: overlapping shadows must not cancel (fillPoly is even-odd).
    for p, k in live:
        fill(mask, p - off, colours[k], AA, SHIFT)
    roi = rgb[vmin:vmax]
    cv2.multiply(roi, mask, dst=roi, scale=1.0 / 255.0)
