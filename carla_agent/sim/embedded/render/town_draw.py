"""A frame of a town's ground: cull the precomputed world polygons, project them once, fill by layer.

The town's surfaces (sidewalks, curbs, asphalt and junctions; see
:mod:`~carla_agent.sim.embedded.render.town_ground`) go under the corridor's
own road, which the renderer draws as on a single road; the town's marks (every
road's lines, stop lines, crosswalks) go over it, so the route's road keeps
its look and the paint lies on top. Both are culled against the view (a
polygon's bounding circle against the distance and the horizontal frustum),
clipped and projected in one vectorised pass, and filled one ``cv2.fillPoly``
call per colour. Marks fade with their projected width like the corridor's;
broken lines' dashes give way, far off, to a faint continuous line of the
same average brightness. Functions take the
:class:`~carla_agent.sim.embedded.render.Renderer` ``ren``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from carla_agent.sim.embedded.render.marks import DASH_M, DASH_PERIOD_M, MARK_LEVELS, MARK_SOFTNESS_PX
from carla_agent.sim.embedded.render.palette import L_MARK, L_ROAD, L_SIDEWALK, smoothstep
from carla_agent.sim.embedded.render.polygons import AA, HARD, SHIFT, clip_polys
from carla_agent.sim.embedded.roadnet.model import RoadNetwork
from carla_agent.sim.embedded.render.town_ground import DASH, FAINT, PAINT, SURFACE_LAYERS, PolySet

#: Marks are labelled from this fade level up (their paint covers half a pixel's width or more).
LABEL_LEVEL = MARK_LEVELS // 2
#: Colour name and label of each surface layer.
_LAYER_STYLE = {"sidewalk": ("sidewalk", L_SIDEWALK), "curb": ("curb", L_SIDEWALK), "asphalt": ("asphalt", L_ROAD)}


@dataclass(frozen=True)
class TownView:
    """What the renderer needs of a town: its network, the lights' timer (green, yellow, all-red
    seconds) and the simulation step (``frame * dt_s`` is the time the lights show)."""

    network: RoadNetwork
    cycle_s: Tuple[float, float, float]
    dt_s: float


@dataclass
class TownFrame:
    """The frame's projected town polygons: per surface group, and the marks with their fade levels."""

    surfaces: Dict[int, List[np.ndarray]]  # surface group -> polygons
    marks: Dict[int, List[np.ndarray]]  # key (kind group, yellow, level; see project_town) -> polygons
    labelled: Dict[int, List[np.ndarray]]  # kind group -> polygons


_KG, _LEVELS = 2 * (MARK_LEVELS + 1), MARK_LEVELS + 1  # mark keys: kind group * _KG + yellow * _LEVELS + level


def _runs(polys: List[Optional[np.ndarray]], keys: np.ndarray):
    """``(key, polygons)`` for each run of equal keys (projected polygons; None ones dropped)."""
    if len(keys) == 0:
        return []
    cut = (np.flatnonzero(np.diff(keys)) + 1).tolist()
    out = []
    for a, b in zip([0] + cut, cut + [len(keys)]):
        sel = [p for p in polys[a:b] if p is not None]
        if sel:
            out.append((int(keys[a]), sel))
    return out


def _visible(ren, ps: PolySet, view_m: float) -> Tuple[np.ndarray, np.ndarray]:
    """Which polygons may be in view (a bounding circle against distance and frustum), and their depths."""
    d, r, _ = ren.camera.to_camera(ps.cx, ps.cy, 0.0)
    rad = ps.radius
    return (d > -rad) & (d < view_m + rad) & (np.abs(r) - rad < (np.maximum(d, 0.0) + rad) * ren._tan_half_fov), d


def _layout(ps: PolySet, sel: np.ndarray, first_id: int, first_pos: int):
    """Flat layout (vertex positions, successors, polygon ids) of the selected polygons."""
    c = ps.count[sel]
    ends = np.cumsum(c)
    first = ends - c
    total = int(ends[-1]) if len(c) else 0
    vidx = np.arange(total) + np.repeat(ps.start[sel] - first, c)
    nxt = np.arange(1, total + 1)
    nxt[ends - 1] = first
    return vidx, nxt + first_pos, np.repeat(np.arange(first_id, first_id + len(sel)), c)


def project_town(ren, row0: int) -> Optional[TownFrame]:
    """Cull, clip and project the town's ground for the camera's current pose (rows from ``row0``)."""
    g = ren._town_ground
    cam = ren.camera
    s_vis, _ = _visible(ren, g.surfaces, ren.view_m)
    s_sel = np.flatnonzero(s_vis)
    m_vis, m_depth = _visible(ren, g.marks, ren.view_m)
    mk = g.marks
    # Fade level of every visible mark from its projected width at its centre's depth: across the
    # view it shrinks as 1 / depth, along the view (a line seen edge-on) as height / depth^2.
    depth = np.maximum(m_depth, 1.0)
    f, r = cam._f, cam._r
    across = np.abs(mk.normal[:, 0] * r[0] + mk.normal[:, 1] * r[1]) / depth
    along = np.abs(mk.normal[:, 0] * f[0] + mk.normal[:, 1] * f[1]) * cam.height_m / (depth * depth)
    wpx = cam.focal_px * mk.width * np.sqrt(across * across + along * along)
    alpha = wpx / (wpx + MARK_SOFTNESS_PX)
    d1, d2 = ren._dash_fade_m
    fade = smoothstep((depth - d1) / (d2 - d1))
    alpha = np.where(mk.group == DASH, alpha * (1.0 - fade),
                     np.where(mk.group == FAINT, alpha * (DASH_M / DASH_PERIOD_M) * fade, alpha))
    level = np.minimum(np.rint(alpha * MARK_LEVELS).astype(np.int64), MARK_LEVELS)
    m_sel = np.flatnonzero(m_vis & (level > 0))
    # Marks that may overlap go to different fill calls (even-odd fills would cut holes): lines and
    # dashes (kind group 0), the faint stand-ins of dashes (1), stop lines and crosswalks (2).
    kind = mk.group[m_sel]
    m_key = (np.where(kind == FAINT, 1, np.where(kind == PAINT, 2, 0)) * _KG + mk.yellow[m_sel] * _LEVELS +
             level[m_sel])
    order = np.argsort(m_key, kind="stable")
    m_sel, m_key = m_sel[order], m_key[order]
    if len(s_sel) == 0 and len(m_sel) == 0:
        return None
    sv, sn, sp = _layout(g.surfaces, s_sel, 0, 0)
    mv, mn, mp = _layout(mk, m_sel, len(s_sel), len(sv))
    X = np.concatenate([g.surfaces.x[sv], mk.x[mv]])
    Y = np.concatenate([g.surfaces.y[sv], mk.y[mv]])
    D, R, U = cam.to_camera(X, Y, 0.0)
    out = clip_polys(cam, D, R, U, np.concatenate([sn, mn]), np.concatenate([sp, mp]),
                     len(s_sel) + len(m_sel), row0)
    # The selections come out sorted by key: each run of equal keys is one fill call.
    surfaces = dict(_runs(out[:len(s_sel)], g.surfaces.group[s_sel]))
    marks: Dict[int, List[np.ndarray]] = {}
    labelled: Dict[int, List[np.ndarray]] = {}
    for k, polys in _runs(out[len(s_sel):], m_key):
        marks[k] = polys
        kg = k // _KG
        # Labels where a mark covers at least half its pixels (the faint stand-ins of dashes carry none).
        if kg != 1 and k % _LEVELS >= LABEL_LEVEL:
            labelled.setdefault(kg, []).extend(polys)
    return TownFrame(surfaces, marks, labelled)


def fill_town_surfaces(ren, rgb: np.ndarray, sem: np.ndarray, tf: Optional[TownFrame]) -> None:
    """Sidewalks, curbs and asphalt: roads' strips, then the junctions' hulls, layer by layer."""
    if tf is None:
        return
    col = ren._col
    for k, layer in enumerate(SURFACE_LAYERS):
        name, label = _LAYER_STYLE[layer]
        for grp in (2 * k, 2 * k + 1):  # strips of the roads, then the junctions (they overlap road ends)
            sel = tf.surfaces.get(grp)
            if sel:
                cv2.fillPoly(rgb, sel, col[name], AA, SHIFT)
                cv2.fillPoly(sem, sel, label, HARD, SHIFT)


def fill_town_marks(ren, rgb: np.ndarray, sem: np.ndarray, tf: Optional[TownFrame]) -> None:
    """Every road's lines, stop lines and crosswalk stripes, by colour and fade level."""
    if tf is None:
        return
    for key, sel in tf.marks.items():
        yellow, level = (key % _KG) // _LEVELS, key % _LEVELS
        cv2.fillPoly(rgb, sel, ren._mark_levels[bool(yellow)][level], AA, SHIFT)
    for sel in tf.labelled.values():
        cv2.fillPoly(sem, sel, L_MARK, HARD, SHIFT)
