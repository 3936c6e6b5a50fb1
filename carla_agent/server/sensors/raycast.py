"""Rays from one origin against the flat ground (z = 0) and a :class:`~.scene.Boxes` set, vectorised.

A ray is ``origin + t * dir``; ``t`` is in units of the direction's length (unit directions give
metres; a camera's rays with a forward component of 1 give the planar depth). The nearest hit
wins; a box that holds the origin is not hit (a sensor inside a box sees out of it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from carla_agent.server.sensors.scene import Boxes

GROUND = -2
MISS = -1
#: Rays x boxes per vectorised block (memory: ~40 float64 arrays of this size).
BLOCK = 1 << 18


@dataclass
class Hits:
    """Per ray: ``t`` ``(N,)`` float64 (``inf`` where nothing is hit within ``t_max``), ``index``
    ``(N,)`` int64 (the box hit, :data:`GROUND` or :data:`MISS`), ``normal`` ``(N, 3)`` float64 unit
    surface normal at the hit (world frame; zeros where nothing is hit)."""

    t: np.ndarray
    index: np.ndarray
    normal: np.ndarray


def cast(origin_m: np.ndarray, dirs: np.ndarray, boxes: Boxes, t_max) -> Hits:
    """Cast ``dirs`` (``(N, 3)``, world frame) from ``origin_m`` (``(3,)``, m) up to ``t_max``."""
    dirs = np.asarray(dirs, np.float64).reshape(-1, 3)
    n = len(dirs)
    t = np.full(n, np.inf)
    index = np.full(n, MISS, np.int64)
    normal = np.zeros((n, 3))
    oz = float(origin_m[2])
    dz = dirs[:, 2]
    if oz > 0.0:
        with np.errstate(divide="ignore", invalid="ignore"):
            tg = np.where(dz < 0.0, oz / -dz, np.inf)
        ok = tg <= t_max
        t[ok], index[ok] = tg[ok], GROUND
        normal[ok, 2] = 1.0
    m = len(boxes)
    if m and n:
        step = max(1, BLOCK // m)
        for a in range(0, n, step):
            boxes_into(origin_m, dirs[a:a + step], boxes, t_max if np.isscalar(t_max) else t_max[a:a + step],
                         t[a:a + step], index[a:a + step], normal[a:a + step])
    return Hits(t, index, normal)


def boxes_into(origin_m, dirs, boxes: Boxes, t_max, t, index, normal) -> None:
    """Slab test of ``dirs`` x every box, updating ``t``/``index``/``normal`` in place where a box is
    nearer (``index`` then holds the box's position in ``boxes``)."""
    c, s = np.cos(boxes.yaw_rad), np.sin(boxes.yaw_rad)  # (M,)
    rel = origin_m[None, :] - boxes.center_m  # (M, 3)
    ol = np.stack([rel[:, 0] * c + rel[:, 1] * s, -rel[:, 0] * s + rel[:, 1] * c, rel[:, 2]], 1)  # (M, 3)
    dx, dy, dz = dirs[:, 0:1], dirs[:, 1:2], dirs[:, 2:3]  # (N, 1)
    local = (dx * c + dy * s, -dx * s + dy * c, np.broadcast_to(dz, (len(dirs), len(boxes))))
    tnear = np.full((len(dirs), len(boxes)), -np.inf)
    tfar = np.full_like(tnear, np.inf)
    axis = np.zeros(tnear.shape, np.int8)
    with np.errstate(divide="ignore", invalid="ignore"):
        for k in range(3):
            d = local[k]
            inv = 1.0 / d
            t1 = (-boxes.half_m[:, k] - ol[:, k]) * inv
            t2 = (boxes.half_m[:, k] - ol[:, k]) * inv
            lo, hi = np.minimum(t1, t2), np.maximum(t1, t2)
            parallel = d == 0.0
            if parallel.any():  # a ray parallel to a slab: inside it always, or never
                inside = np.abs(ol[:, k])[None, :] <= boxes.half_m[:, k][None, :]
                lo = np.where(parallel, np.where(inside, -np.inf, np.inf), lo)
                hi = np.where(parallel, np.where(inside, np.inf, -np.inf), hi)
            upd = lo > tnear
            axis[upd] = k
            tnear = np.where(upd, lo, tnear)
            tfar = np.minimum(tfar, hi)
    tmax = t_max if np.isscalar(t_max) else np.asarray(t_max)[:, None]
    hit = (tnear <= tfar) & (tnear > 1e-9) & (tnear <= tmax)
    tnear = np.where(hit, tnear, np.inf)
    j = np.argmin(tnear, axis=1)
    rows = np.arange(len(dirs))
    best = tnear[rows, j]
    better = best < t
    if not better.any():
        return
    r, jb = rows[better], j[better]
    t[better], index[better] = best[better], jb
    ax = axis[r, jb]
    sign = -np.sign(np.stack(local, 0)[ax, r, jb])
    nl = np.zeros((len(r), 3))
    nl[np.arange(len(r)), ax] = sign
    cb, sb = c[jb], s[jb]
    normal[better] = np.stack([nl[:, 0] * cb - nl[:, 1] * sb, nl[:, 0] * sb + nl[:, 1] * cb, nl[:, 2]], 1)
