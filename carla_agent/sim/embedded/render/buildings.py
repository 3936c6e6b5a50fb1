"""Buildings of the embedded renderer: boxes with window grids, lit windows at night.

Buildings never move: their faces, normals, wall centres and window grids are
built once (:func:`build_buildings`); a frame only works out which faces are
seen, their light, and which walls are near enough for windows
(:func:`building_prims`). Functions take the
:class:`~carla_agent.sim.embedded.render.Renderer` ``ren`` whose state they
read and set.
"""

from __future__ import annotations

from typing import List, Optional

import numpy as np

from carla_agent.sim.embedded.render.objects import BUILDING
from carla_agent.sim.embedded.render.palette import L_OBJECT, WINDOW_F, mix_rgb
from carla_agent.sim.embedded.render.polygons import BOX_LX, BOX_LY, QX, QZ, Batch
from carla_agent.sim.embedded.render.shading import finish


def build_buildings(ren) -> None:
    """Buildings never move: their faces, normals, wall centres and window grids, once.

    Faces are front (+x), back, left (+y), right and top; each is an
    upright (or, for the top, flat) quad. Window grids are per wall, with
    the lit windows of the night fixed by the seed.
    """
    bi = np.nonzero(ren._obj_kind == BUILDING)[0]
    nb = len(bi)
    ren._bld_row = np.full(len(ren._objects), -1, np.int64)
    ren._bld_row[bi] = np.arange(nb)
    x, y = ren._obj_xy[bi, 0], ren._obj_xy[bi, 1]
    L, Wd, Ht = ren._obj_dims[bi].T
    z0, z1 = np.zeros(nb), Ht
    c, s = np.cos(ren._obj_yaw[bi]), np.sin(ren._obj_yaw[bi])
    zero = np.zeros_like(c)
    nx = np.stack([c, -c, -s, s, zero], 1)
    ny = np.stack([s, -s, c, -c, zero], 1)
    ren._bld_nx, ren._bld_ny = nx, ny
    ren._bld_nz = np.array([0.0, 0.0, 0.0, 0.0, 1.0])
    ext = np.stack([0.5 * L, 0.5 * L, 0.5 * Wd, 0.5 * Wd, zero], 1)
    ren._bld_px, ren._bld_py = x[:, None] + nx * ext, y[:, None] + ny * ext
    ren._bld_pz = np.where(ren._bld_nz > 0, z1[:, None], 0.5 * (z0 + z1)[:, None])
    hl, hw = 0.5 * L, 0.5 * Wd
    ren._bld_qx = np.empty((nb, 5, 4))
    ren._bld_qy = np.empty((nb, 5, 4))
    ren._bld_qz = np.empty((nb, 5, 4))
    ren._bld_wall_c = np.empty((nb, 4, 3))
    ren._bld_win_n = np.zeros((nb, 4), np.int64)
    ren._bld_windows: List[List[Optional[tuple]]] = [[None] * 4 for _ in range(nb)]
    for f in range(4):
        fx, fy = nx[:, f], ny[:, f]
        tx, ty = -fy, fx
        et, en = (hw, hl) if f < 2 else (hl, hw)
        ren._bld_qx[:, f] = (x + fx * en)[:, None] + tx[:, None] * et[:, None] * QX
        ren._bld_qy[:, f] = (y + fy * en)[:, None] + ty[:, None] * et[:, None] * QX
        ren._bld_qz[:, f] = z0[:, None] + (z1 - z0)[:, None] * QZ
        for r in range(nb):
            x0, y0 = float(ren._bld_qx[r, f, 0]), float(ren._bld_qy[r, f, 0])
            t_x, t_y, n_x, n_y = float(tx[r]), float(ty[r]), float(fx[r]), float(fy[r])
            width, za, zb = 2.0 * float(et[r]), float(z0[r]), float(z1[r])
            ren._bld_wall_c[r, f] = (x0 + t_x * 0.5 * width, y0 + t_y * 0.5 * width, 0.5 * (za + zb))
            cols = int((width - 1.0) // 2.6)
            rows = int((zb - za - 1.2) // 3.0)
            if cols < 1 or rows < 1:
                continue
            a = 0.5 * width + (np.arange(cols) - 0.5 * (cols - 1)) * 2.6
            A, Z = np.meshgrid(a, za + 1.0 + np.arange(rows) * 3.0)
            A, Z = A.ravel(), Z.ravel()
            ox, oy = x0 + n_x * 0.03, y0 + n_y * 0.03  # just in front of the wall
            da = A[:, None] + 0.6 * QX
            lit = np.random.default_rng((ren.seed, int(bi[r]) * 8 + f)).random(len(A)) < 0.3
            ren._bld_windows[r][f] = (ox + t_x * da, oy + t_y * da, Z[:, None] + 1.4 * QZ, lit)
            ren._bld_win_n[r, f] = len(A)
    lx, ly = BOX_LX[None, :] * hl[:, None], BOX_LY[None, :] * hw[:, None]
    ren._bld_qx[:, 4] = x[:, None] + c[:, None] * lx - s[:, None] * ly
    ren._bld_qy[:, 4] = y[:, None] + s[:, None] * lx + c[:, None] * ly
    ren._bld_qz[:, 4] = z1[:, None]


def building_prims(ren, b: Batch, j: np.ndarray, ambient: np.ndarray, fog: np.ndarray) -> List[list]:
    """Primitives of the visible faces (and the windows on them) of buildings ``j``.

    The geometry is precomputed by :func:`build_buildings`; per frame only
    the visibility, the light and the window level of detail are worked out,
    for all buildings at once. A convex box's faces never overlap.

    Args:
        j: ``(k,)`` object indices of buildings.
        ambient: ``(k, 3)`` light besides the sun at each building.
        fog: ``(k,)`` fog fraction at each building.

    Returns:
        One list of primitives per building.
    """
    cam, w = ren.camera, ren.weather
    rows = ren._bld_row[j]
    nx, ny, nz = ren._bld_nx[rows], ren._bld_ny[rows], ren._bld_nz
    o = cam._o
    visible = ((o[0] - ren._bld_px[rows]) * nx + (o[1] - ren._bld_py[rows]) * ny
               + (o[2] - ren._bld_pz[rows]) * nz > 1e-6)
    out: List[list] = [[] for _ in range(len(j))]
    if not visible.any():
        return out
    cos_sun = ren._bld_cos_sun[rows]
    amb = ambient[:, None, :]
    light = np.where((nz > 0)[..., None], amb / 0.85, amb) + cos_sun[..., None] * ren._sun_rgb
    kk, ff = np.nonzero(visible)
    cols = finish(ren, ren._obj_color[j[kk]], light[kk, ff], fog[kk])
    rk = rows[kk]
    first = b.many(ren._bld_qx[rk, ff], ren._bld_qy[rk, ff], ren._bld_qz[rk, ff])
    kl, fl = kk.tolist(), ff.tolist()
    for i, (k, f) in enumerate(zip(kl, fl)):
        out[k].append((0, first + i, cols[i], L_OBJECT))
    # Windows on the visible walls near enough for them to be over ~4 px tall.
    wall = ff < 4
    if not wall.any():
        return out
    wk, wf, wr = kk[wall], ff[wall], rk[wall]
    c = ren._bld_wall_c[wr, wf]
    d, _, _ = cam.to_camera(c[:, 0], c[:, 1], c[:, 2])
    near = (d >= 1.0) & (cam.focal_px * 1.4 / np.maximum(d, 1.0) >= 4.0) & (ren._bld_win_n[wr, wf] > 0)
    if not near.any():
        return out
    wk, wf, wr = wk[near], wf[near], wr[near]
    cs = cos_sun[wk, wf]
    # Glass reflects the sky: brighter than its albedo suggests.
    glass = finish(ren, np.broadcast_to(WINDOW_F, (len(wk), 3)),
                   ambient[wk] + (0.3 * cs)[:, None] * ren._sun_rgb + 0.2, fog[wk])
    dark = w.is_dark
    for i, (k, f, r) in enumerate(zip(wk.tolist(), wf.tolist(), wr.tolist())):
        wx, wy, wz, lit = ren._bld_windows[r][f]
        first = b.many(wx, wy, wz)
        idx = list(range(first, first + len(wx)))
        out[k].append((2, idx, glass[i]))
        if dark and lit.any():
            # A few lit windows at night, the same ones every frame.
            out[k].append((2, [q for q, on in zip(idx, lit.tolist()) if on],
                           mix_rgb((255, 208, 130), w.fog_rgb, 0.7 * float(fog[k]))))
    return out
