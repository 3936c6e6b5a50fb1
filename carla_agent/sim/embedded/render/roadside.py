"""Roadside objects of the embedded renderer: each kind's primitives for the far-to-near painter.

Poles (with a lamp arm over the road and, in the dark, a glowing lamp) and
signs are drawn here; trees and buildings have their own modules. Primitives
are the tuples that :func:`~carla_agent.sim.embedded.render.things.draw_things`
draws. Functions take the :class:`~carla_agent.sim.embedded.render.Renderer`
``ren`` whose state they read.
"""

from __future__ import annotations

import numpy as np

from carla_agent.sim.embedded.render.buildings import building_prims
from carla_agent.sim.embedded.render.objects import BUILDING, POLE, SIGN, TREE
from carla_agent.sim.embedded.render.palette import L_OBJECT, LAMP_GLOW_F, LAMP_HEAD_F, POST, SIGN_BORDER
from carla_agent.sim.embedded.render.polygons import BX, ONE, QX, QZ, Batch
from carla_agent.sim.embedded.render.shading import ambient_at, finish
from carla_agent.sim.embedded.render.trees import gather_trees


def gather_statics(ren, objs: np.ndarray, depth: np.ndarray, rng_m: np.ndarray, b: Batch,
                   items: list) -> None:
    """Primitives of the frame's static objects, appended to ``items`` as ``(range_m, primitives)``.

    Args:
        objs: object indices in view; depth, rng_m: their depth and range (metres).
        b: the frame's quad batch (their quads are added to it).
    """
    cam, w = ren.camera, ren.weather
    kind = ren._obj_kind[objs]
    ox, oy = ren._obj_xy[objs, 0], ren._obj_xy[objs, 1]
    fog = w.fog_fraction(rng_m)
    amb = ambient_at(ren, ox, oy)
    sun = ren._sun_rgb[None, :]
    sx, sy, _ = w.sun_direction
    rx, ry = cam._r  # camera right (horizontal): billboards face the camera
    toward_sun = max(-1.0, min(1.0, sx * rx + sy * ry))  # + when the sun is to the right
    albedo = ren._obj_color[objs]
    rng_list = rng_m.tolist()
    f_px = cam.focal_px / np.maximum(depth, 0.5)  # pixels per metre at each object
    by_kind = [np.nonzero(kind == k)[0] for k in range(4)]

    sel = by_kind[TREE]
    if len(sel):
        gather_trees(ren, objs[sel], sel, amb[sel], fog[sel], rng_list, toward_sun, items)

    sel = by_kind[POLE]
    if len(sel):
        j = objs[sel]
        L, Wd, Ht = ren._obj_dims[j].T
        x, y = ox[sel], oy[sel]
        ax_, ay_ = ren._obj_reach[j].T  # toward the road
        n = len(sel)
        cols = finish(ren, np.concatenate([albedo[sel], np.broadcast_to(LAMP_HEAD_F, (n, 3))]),
                      np.concatenate([amb[sel] + 0.5 * sun] * 2), np.concatenate([fog[sel]] * 2))
        half = 0.5 * Wd
        za, zh = Ht - 0.35, Ht - 0.47
        # The post faces the camera; the arm and the lamp head are thin bars over the road, end to end.
        first = b.many(np.concatenate([x[:, None] + (rx * half)[:, None] * QX,
                                       x[:, None] + (ax_ * 1.35)[:, None] * BX,
                                       (x + ax_ * 1.35)[:, None] + (ax_ * 0.6)[:, None] * BX]),
                       np.concatenate([y[:, None] + (ry * half)[:, None] * QX,
                                       y[:, None] + (ay_ * 1.35)[:, None] * BX,
                                       (y + ay_ * 1.35)[:, None] + (ay_ * 0.6)[:, None] * BX]),
                       np.concatenate([Ht[:, None] * QZ, (za - 0.05)[:, None] + 0.1 * QZ,
                                       (zh - 0.07)[:, None] + 0.14 * QZ]))
        detail = (Ht * f_px[sel] >= 12.0).tolist()
        glow = None
        if w.is_dark:
            # Lit lamps: a warm glow that fog cannot hide completely.
            glow = ellipse_params(ren, x + ax_ * 1.65, y + ay_ * 1.65, Ht - 0.55, np.full(n, 0.45),
                                  np.full(n, 0.25))
            gcol = finish(ren, np.broadcast_to(LAMP_GLOW_F, (n, 3)), np.ones((n, 3)), 0.6 * fog[sel])
        for i, k in enumerate(sel.tolist()):
            prims = [(0, first + i, cols[i], L_OBJECT)]
            if detail[i]:
                # The arm and the head touch but do not overlap: one label call for both.
                prims += [(0, first + n + i, cols[i], None), (0, first + 2 * n + i, cols[n + i], None),
                          (4, (first + n + i, first + 2 * n + i), L_OBJECT)]
            if glow is not None and glow[0][i]:
                prims.append((1, glow[1][i], glow[2][i], gcol[i], None))
            items.append((rng_list[k], prims))

    sel = by_kind[SIGN]
    if len(sel):
        gather_signs(ren, objs[sel], sel, ox[sel], oy[sel], amb[sel], fog[sel], rng_list, b, items)

    sel = by_kind[BUILDING]
    if len(sel):
        per_box = building_prims(ren, b, objs[sel], amb[sel], fog[sel])
        for k, prims in zip(sel.tolist(), per_box):
            items.append((rng_list[k], prims))


def gather_signs(ren, j: np.ndarray, where: np.ndarray, x: np.ndarray, y: np.ndarray, amb: np.ndarray,
                 fog: np.ndarray, rng_list: list, b: Batch, items: list) -> None:
    """Signs: a post facing the camera and a plate facing the traffic (with a border seen from the front).

    Args:
        j: object indices; where: their positions in the frame's object list
        (for ``rng_list``); x, y: their feet (metres); amb, fog: their light and fog.
    """
    cam = ren.camera
    n = len(j)
    Ht = ren._obj_dims[j, 2]
    nx, ny = ren._obj_facing[j].T
    tx, ty = -ny, nx
    sx, sy, _ = ren.weather.sun_direction
    rx, ry = cam._r
    o = cam._o
    front = ((o[0] - x) * nx + (o[1] - y) * ny > 0).tolist()
    face_sun = np.maximum(0.0, sx * nx + sy * ny)
    sun = ren._sun_rgb
    lit = amb + (0.2 + face_sun)[:, None] * sun + 0.2
    albedo = np.empty((n, 3, 3))
    albedo[:, 0], albedo[:, 1], albedo[:, 2] = POST, ren._obj_color[j], SIGN_BORDER
    light = np.empty((n, 3, 3))
    light[:, 0], light[:, 1], light[:, 2] = amb + 0.5 * sun, lit, lit
    cols = finish(ren, albedo.reshape(-1, 3), light.reshape(-1, 3), np.repeat(fog, 3))
    z0 = Ht - 0.75

    def quads(cx, cy, ax, ay, za, zb):
        Z = np.empty((n, 4))
        Z[:, :2], Z[:, 2:] = za[:, None], zb[:, None]
        return b.many(cx[:, None] + ax[:, None] * QX, cy[:, None] + ay[:, None] * QX, Z)

    # The post ends where the plate begins: one label call for both.
    post = quads(x, y, np.full(n, rx * 0.04), np.full(n, ry * 0.04), np.zeros(n), z0)
    plate = quads(x, y, tx * 0.42, ty * 0.42, z0, Ht)
    inner = quads(x + 0.01 * nx, y + 0.01 * ny, tx * 0.31, ty * 0.31, z0 + 0.11, Ht - 0.11)
    for i, k in enumerate(where.tolist()):
        c_post, c_plate, c_border = cols[3 * i:3 * i + 3]
        prims = [(0, post + i, c_post, None), (0, plate + i, c_border if front[i] else c_post, None),
                 (4, (post + i, plate + i), L_OBJECT)]
        if front[i]:
            prims.append((0, inner + i, c_plate, None))
        items.append((rng_list[k], prims))


def ellipse_params(ren, x: np.ndarray, y: np.ndarray, z: np.ndarray, rx_m: np.ndarray, ry_m: np.ndarray):
    """Screen ellipses of upright discs facing the camera: ``(ok, centres, axes)`` as Python lists."""
    cam = ren.camera
    d, r, u = cam.to_camera(x, y, z)
    ok = d > 0.5
    dd = np.where(ok, d, 1.0)
    f = cam.focal_px / dd
    # Giant ellipses of objects beside the camera only cost time: they are off screen or fill it.
    ok &= np.maximum(rx_m, ry_m) * f < 8.0 * (ren.width_px + ren.height_px)
    ctr = np.empty((len(d), 2))
    ctr[:, 0] = (cam.cx_px - 0.5) + r * f
    ctr[:, 1] = (cam.cy_px - 0.5) - u * f
    axes = np.empty((len(d), 2))
    axes[:, 0] = rx_m * f
    axes[:, 1] = ry_m * f
    ctr = (ctr * ONE + 0.5).astype(np.int64).tolist()
    axes = np.maximum((axes * ONE + 0.5).astype(np.int64), 1).tolist()
    return ok.tolist(), ctr, axes
