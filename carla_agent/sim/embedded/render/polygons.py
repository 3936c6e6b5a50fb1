"""Polygon plumbing of the embedded renderer: flat layouts, near-plane clipping, projection, quad batches.

Polygons go to OpenCV as fixed-point vertices (:data:`SHIFT` bits). A frame's
polygons are held as one flat layout (all vertex indices, each vertex's
successor, its polygon id) so that clipping and projection are one vectorised
pass however many polygons there are.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from carla_agent.sim.embedded.camera import Camera

#: Fixed-point bits of the vertices handed to OpenCV (1/16 pixel).
SHIFT = 4
ONE = float(1 << SHIFT)
AA, HARD = cv2.LINE_AA, cv2.LINE_8
#: Near clipping plane, metres along the optical axis. Visible ground is always
#: farther (the lowest image row sees ground > 1 m away), so clipping is never
#: seen; it only keeps projected coordinates bounded.
NEAR_CLIP_M = 0.3
# Corner patterns of upright quads: across (x), up (z), a bar along its axis.
QX = np.array([-1.0, 1.0, 1.0, -1.0])
QZ = np.array([0.0, 0.0, 1.0, 1.0])
BX = np.array([0.0, 1.0, 1.0, 0.0])
#: Box footprint corners (counter-clockwise) in units of half length / half width.
BOX_LX = np.array([1.0, 1.0, -1.0, -1.0])
BOX_LY = np.array([-1.0, 1.0, 1.0, -1.0])


def layout(polys: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Flat layout of polygons given as vertex-index arrays.

    Returns ``(vidx, nxt, pid, n)``: all vertex indices in order, the position of
    each vertex's successor (cyclic within its polygon), its polygon id, and the
    number of polygons.
    """
    n = len(polys)
    if n == 0:
        z = np.zeros(0, np.int64)
        return z, z, z, 0
    counts = np.fromiter((len(p) for p in polys), np.int64, n)
    vidx = np.concatenate(polys).astype(np.int64)
    ends = np.cumsum(counts)
    nxt = np.arange(1, len(vidx) + 1)
    nxt[ends - 1] = ends - counts
    return vidx, nxt, np.repeat(np.arange(n), counts), n


def append_block(blk: np.ndarray, first_id: int, vidx: list, nxt: list, pid: list) -> None:
    """Append ``(m, k)`` polygons of k vertices each to a flat layout (see :func:`layout`)."""
    m, k = blk.shape
    start = sum(len(v) for v in vidx)
    vidx.append(blk.ravel())
    nx_ = np.arange(start + 1, start + m * k + 1)
    nx_[k - 1::k] -= k
    nxt.append(nx_)
    pid.append(np.repeat(np.arange(first_id, first_id + m), k))


def clip_polys(cam: Camera, d: np.ndarray, r: np.ndarray, u: np.ndarray, nxt: np.ndarray, pid: np.ndarray,
               n: int, row0: int = 0) -> List[Optional[np.ndarray]]:
    """Clip polygons against the near plane and project them.

    Args:
        cam: the camera, posed for the frame.
        d, r, u: ``(V,)`` camera coordinates (depth, right, up; metres) of the
            vertices of all polygons, laid out as by :func:`layout`.
        nxt, pid, n: the layout's successor positions, polygon ids and count.
        row0: the target image starts at this image row (a sub-image).

    Returns:
        For each polygon, an ``(k, 2)`` int32 array of fixed-point vertices
        (``SHIFT`` bits), or None when it is behind the camera or degenerate.
        (Polygons off screen are left to OpenCV, which rejects them quickly.)
    """
    if n == 0:
        return []
    near = NEAR_CLIP_M
    inside = d > near
    if inside.all():
        D, R, U, P = d, r, u, pid
    else:
        # Sutherland-Hodgman, vectorised: each edge emits its start vertex when
        # inside and its crossing with the near plane when it crosses.
        dn = d[nxt]
        cross = inside != (dn > near)
        k = (near - d) / np.where(cross, dn - d, 1.0)
        V = len(d)
        D = np.empty((V, 2))
        R = np.empty((V, 2))
        U = np.empty((V, 2))
        D[:, 0], D[:, 1] = d, near
        R[:, 0], R[:, 1] = r, r + k * (r[nxt] - r)
        U[:, 0], U[:, 1] = u, u + k * (u[nxt] - u)
        valid = np.empty((V, 2), bool)
        valid[:, 0], valid[:, 1] = inside, cross
        valid = valid.ravel()
        D, R, U = D.ravel()[valid], R.ravel()[valid], U.ravel()[valid]
        P = pid.repeat(2)[valid]
    inv = cam.focal_px / D
    x = (cam.cx_px - 0.5) + R * inv
    y = (cam.cy_px - 0.5 - row0) - U * inv
    counts = np.bincount(P, minlength=n)
    ends = counts.cumsum()
    starts = ends - counts
    good = counts >= 3
    pts = np.empty((len(x), 2), np.int32)
    pts[:, 0] = np.rint(x * ONE)
    pts[:, 1] = np.rint(y * ONE)
    out = [pts[a:b] for a, b in zip(starts.tolist(), ends.tolist())]
    if not good.all():
        for i in np.flatnonzero(~good).tolist():
            out[i] = None
    return out


class Batch:
    """World-space quads of the frame's objects, clipped and projected together.

    Every polygon has 4 vertices (a triangle repeats its apex). Each call
    returns the index of its (first) polygon; :meth:`project` returns the
    projected polygons in that order.
    """

    def __init__(self) -> None:
        self._chunks: List[Tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._count = 0

    def many(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> int:
        """Add ``(n, 4)`` quads (world metres); returns the index of the first."""
        self._chunks.append((x, y, z))
        first = self._count
        self._count += len(x)
        return first

    def project(self, cam: Camera) -> List[Optional[np.ndarray]]:
        if not self._chunks:
            return []
        X = np.concatenate([c[0] for c in self._chunks]).ravel()
        Y = np.concatenate([c[1] for c in self._chunks]).ravel()
        Z = np.concatenate([c[2] for c in self._chunks]).ravel()
        n = len(X) // 4
        d, rr, u = cam.to_camera(X, Y, Z)
        nxt = np.arange(1, 4 * n + 1)
        nxt[3::4] -= 4
        return clip_polys(cam, d, rr, u, nxt, np.repeat(np.arange(n), 4), n)
