"""The ground of the embedded renderer: road surfaces, texture patches and lane marks below the horizon.

Sample the reference line from behind the car to the view distance (spacing
grows with distance and shrinks with the focal length), offset every lane,
mark and texture edge at once, and build each surface as ONE strip polygon
(left edge forward, right edge back). Flat ground maps one-to-one onto the
image below the horizon, so a strip that is simple on the ground is simple on
screen and OpenCV's even-odd fill needs no triangulation; long polygons also
cost far less than quads, whose every edge would be an anti-aliased line. All
polygons of the frame are clipped against the near plane and projected in one
vectorised pass, then each colour is one ``cv2.fillPoly`` call.

Functions take the :class:`~carla_agent.sim.embedded.render.Renderer` ``ren``
whose state they read and set.
"""

from __future__ import annotations

import math
from operator import itemgetter
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from carla_agent.sim.embedded.render.marks import (DASH_PERIOD_M, DASH_PIECES, MARK_LEVELS, MARK_SOFTNESS_PX,
                                                   dash_indices, mark_lines, mark_run_layout)
from carla_agent.sim.embedded.render.palette import L_MARK, L_ROAD, L_SHOULDER, smoothstep
from carla_agent.sim.embedded.render.polygons import AA, HARD, NEAR_CLIP_M, SHIFT, append_block, clip_polys, layout
from carla_agent.sim.embedded.render.town_draw import fill_town_marks, fill_town_surfaces, project_town

#: Reference-line sampling at a 400 px focal length; steps scale with
#: sqrt(400 / focal) so the chord error stays about half a pixel.
NEAR_STEP_M = 0.5  # within NEAR_RANGE_M of the car
NEAR_RANGE_M = 6.0
GROWTH = 0.1  # farther, each step is this fraction of its distance ...
MAX_STEP_M = 10.0  # ... up to this
BEHIND_M = 80.0  # how far back the road is sampled (a hairpin's other leg can be in view)
#: The road is drawn until it is this many pixels below the horizon.
END_GAP_PX = 0.75
MIN_VIEW_M, MAX_VIEW_M = 120.0, 500.0
#: Tyre tracks: distance from the lane centre, width, how far ahead they are drawn.
TRACK_OFFSET_M, TRACK_WIDTH_M, TRACK_VIEW_M = 0.82, 0.55, 70.0
#: Texture patches are drawn this far ahead.
PATCH_VIEW_M = 90.0
#: Width of the gravel strip between the road edge and the verge, metres.
GRAVEL_M = 0.45


def build_sampling(ren) -> None:
    """Offsets along s (relative to the car) where the reference line is sampled."""
    k = float(np.clip(math.sqrt(400.0 / ren.camera.focal_px), 0.5, 3.0))
    step, growth, top = NEAR_STEP_M * k, GROWTH * k, MAX_STEP_M * k
    near = list(np.arange(-NEAR_RANGE_M, NEAR_RANGE_M + 1e-9, step))
    far = [near[-1]]
    while far[-1] < ren.view_m:
        far.append(far[-1] + min(top, max(step, growth * far[-1])))
    behind = [near[0]]
    while behind[-1] > -BEHIND_M:
        behind.append(behind[-1] - min(top, max(step, 2.0 * growth * -behind[-1])))
    ren._s_offsets_m = np.array(behind[:0:-1] + near + far[1:], dtype=np.float64)
    ren._n_samples = len(ren._s_offsets_m)


def build_cross_section(ren) -> None:
    """Lateral offsets of every edge that is drawn, and the strip polygons joining them."""
    road = ren.road
    bands = []  # (t_left, t_right, lane), left to right
    t = 0.0
    for lane in road.left_lanes:
        bands.append((t + lane.width_m, t, lane))
        t += lane.width_m
    t = 0.0
    for lane in road.right_lanes:
        bands.append((t, t - lane.width_m, lane))
        t -= lane.width_m
    bands.sort(key=lambda b: -b[0])
    ren._left_edge_t, ren._right_edge_t = road.left_edge_t, road.right_edge_t

    def runs(types) -> List[Tuple[float, float, float]]:
        """Contiguous lanes of the given types merged into strips ``(t_left, t_right, max_ahead)``."""
        out: List[Tuple[float, float, float]] = []
        for tl, tr, lane in bands:
            if lane.type not in types:
                continue
            if out and abs(out[-1][1] - tl) < 1e-6:
                out[-1] = (out[-1][0], tr, math.inf)
            else:
                out.append((tl, tr, math.inf))
        return out

    ren._driving_bands = [(tl, tr) for tl, tr, lane in bands if lane.type == "driving"]
    tracks = []
    for tl, tr in ren._driving_bands:
        c = 0.5 * (tl + tr)
        for side in (-1.0, 1.0):
            m = c + side * TRACK_OFFSET_M
            tracks.append((m + 0.5 * TRACK_WIDTH_M, m - 0.5 * TRACK_WIDTH_M, TRACK_VIEW_M))
    # Surfaces in drawing order: (name, strips, anti-aliased, label).
    surfaces = [
        ("gravel", [(ren._left_edge_t + GRAVEL_M, ren._left_edge_t, math.inf),
                    (ren._right_edge_t, ren._right_edge_t - GRAVEL_M, math.inf)], False, None),
        ("shoulder", [(ren._left_edge_t, ren._right_edge_t, math.inf)], True, L_SHOULDER),
        ("asphalt", runs(("driving",)), True, L_ROAD),
        ("curb", runs(("border",)), True, None),
        ("sidewalk", runs(("sidewalk",)), True, None),
        ("track", tracks, False, None),
    ]
    lines = mark_lines(road)
    if ren._town is not None:
        # A town's corridor lies on its roads: no verge beside it, and the town paints every mark.
        surfaces = [sf for sf in surfaces if sf[0] not in ("gravel", "shoulder")]
        lines = []
    ren._lines = lines
    ts: List[float] = []

    def idx(t_m: float) -> int:
        for i, v in enumerate(ts):
            if abs(v - t_m) < 1e-9:
                return i
        ts.append(t_m)
        return len(ts) - 1

    n = ren._n_samples
    ahead = ren._s_offsets_m
    polys: List[np.ndarray] = []
    ren._surfaces: List[Tuple[str, List[int], bool, Optional[int]]] = []
    for name, strips, aa, label in surfaces:
        ids = []
        for tl, tr, max_ahead in strips:
            a, b = idx(tl), idx(tr)
            last = int(np.searchsorted(ahead, max_ahead)) if math.isfinite(max_ahead) else n
            i = np.arange(min(n, max(last, 2)))
            ids.append(len(polys))
            polys.append(np.concatenate([a * n + i, b * n + i[::-1]]))
        ren._surfaces.append((name, ids, aa, label))
    # The strips never change: their flat layout (see layout) is built once.
    ren._static_vidx, ren._static_nxt, ren._static_pid, ren._n_static = layout(polys)
    # Each mark line's two edges on the grid: runs of samples become polygons per frame.
    ren._line_edges = np.array([[idx(ln.t_m + 0.5 * ln.width_m), idx(ln.t_m - 0.5 * ln.width_m)]
                                for ln in lines], np.int64).reshape(-1, 2)
    ren._line_width = np.array([ln.width_m for ln in lines])
    ren._line_yellow = np.array([ln.yellow for ln in lines], bool)
    ren._line_broken = np.array([ln.broken for ln in lines], bool)
    ren._any_broken = bool(ren._line_broken.any())
    ren._t_m = np.array(ts, dtype=np.float64)  # lateral offsets of the grid lines
    broken = [ln for ln in lines if ln.broken]
    # Edges of the broken lines, in the order (line, edge): dash points are laid out the same way.
    ren._dash_t = np.array([[ln.t_m + 0.5 * ln.width_m, ln.t_m - 0.5 * ln.width_m] for ln in broken]).reshape(-1)
    ren._dash_width = np.array([ln.width_m for ln in broken])
    ren._dash_yellow = np.array([ln.yellow for ln in broken], bool)


def build_textures(ren) -> None:
    """World-fixed patches on the asphalt and the verges, from the seed.

    One patch per slot along s, shorter than the slot, so patches of one
    colour never overlap (they share one even-odd ``fillPoly``).
    """
    rng = np.random.default_rng((ren.seed, 7919))
    length = ren.road.length_m
    patches = []  # (s0, s1, t_left, t_right, kind) kind: 0/1 asphalt, 2/3 verge
    slot = 9.0
    for s0 in np.arange(0.0, length, slot):
        if ren._driving_bands and rng.random() < 0.55:
            tl, tr = ren._driving_bands[int(rng.integers(len(ren._driving_bands)))]
            w = float(rng.uniform(0.6, min(2.6, tl - tr)))
            t0 = float(rng.uniform(tr, tl - w))
            a = float(s0 + rng.uniform(0.0, slot - 5.5))
            patches.append((a, a + float(rng.uniform(0.8, 5.0)), t0 + w, t0, int(rng.integers(2))))
    gslot = 7.0
    for side in (1.0, -1.0):
        edge = ren._left_edge_t if side > 0 else ren._right_edge_t
        for s0 in np.arange(0.0, length, gslot):
            if rng.random() < 0.8:
                inner = edge + side * float(rng.uniform(GRAVEL_M + 0.2, 4.0))
                outer = inner + side * float(rng.uniform(1.5, 9.0))
                a = float(s0 + rng.uniform(0.0, 2.0))
                b = a + float(rng.uniform(2.0, gslot - 2.2))
                tl, tr = (outer, inner) if side > 0 else (inner, outer)
                patches.append((a, b, tl, tr, 2 + int(rng.integers(2))))
    arr = np.array(patches, dtype=np.float64).reshape(-1, 5)
    ren._patches = arr[np.argsort(arr[:, 0], kind="stable")]


def draw_ground(ren, rgb: np.ndarray, sem: np.ndarray, s_hint: float, row0: int) -> None:
    """Road surfaces, textures and marks into the ground rows (``rgb``/``sem`` start at ``row0``).

    Every polygon of the ground (strips, mark runs, dashes, patches) goes
    through one clipping and projection call; the per-frame Python work is a
    fixed number of vectorised steps, whatever the number of polygons.
    """
    cam = ren.camera
    n = ren._n_samples
    # All reference-line lookups of the frame in one call: grid samples, dash ends, patch corners.
    s_grid = s_hint + ren._s_offsets_m  # np.interp clamps to the road's ends
    dash_k = dash_indices(ren, s_hint)
    s_dash = (dash_k[:, None] * DASH_PERIOD_M + DASH_PIECES).ravel()
    patches = ren._patches[np.searchsorted(ren._patches[:, 0], s_hint - 10.0):
                           np.searchsorted(ren._patches[:, 0], s_hint + ren._patch_view_m)]
    s_patch = patches[:, [0, 1, 1, 0]].ravel()
    s_all = np.concatenate([s_grid, s_dash, s_patch])
    x, y, cs, sn = (np.interp(s_all, ren._ref_s, ren._ref_x), np.interp(s_all, ren._ref_s, ren._ref_y),
                    np.interp(s_all, ren._ref_s, ren._ref_cos), np.interp(s_all, ren._ref_s, ren._ref_sin))
    n_dash_s, n_patch = len(s_dash), len(patches)
    # Lateral offsets: grid lines x samples, dash edges x dash samples, patch corners.
    g = slice(0, n)
    t = ren._t_m[:, None]
    parts_x = [(x[g] - t * sn[g]).ravel()]
    parts_y = [(y[g] + t * cs[g]).ravel()]
    if n_dash_s:
        dsl = slice(n, n + n_dash_s)
        td = ren._dash_t[:, None]
        parts_x.append((x[dsl] - td * sn[dsl]).ravel())
        parts_y.append((y[dsl] + td * cs[dsl]).ravel())
    if n_patch:
        psl = slice(n + n_dash_s, None)
        tp = patches[:, [2, 2, 3, 3]].ravel()
        parts_x.append(x[psl] - tp * sn[psl])
        parts_y.append(y[psl] + tp * cs[psl])
    X, Y = np.concatenate(parts_x), np.concatenate(parts_y)
    D, R, U = cam.to_camera(X, Y, 0.0)
    # Polygon layouts: the static strips, then mark runs, dashes and patches.
    vidx, nxt, pid = [ren._static_vidx], [ren._static_nxt], [ren._static_pid]
    n_poly = ren._n_static
    marks = mark_run_layout(ren, D[:ren._t_m.size * n], n, n_poly)
    if marks is not None:
        vidx.append(marks[0])
        nxt.append(marks[1])
        pid.append(marks[2])
        first_mark, n_mark = n_poly, len(marks[3])
        n_poly += n_mark
    base = ren._t_m.size * n
    n_lines = len(ren._dash_width)
    n_dash = len(dash_k)
    first_dash = n_poly
    if n_dash_s:
        # Each dash: its left edge forward, its right edge back (8 vertices).
        ids = base + np.arange(2 * n_lines * n_dash_s).reshape(n_lines, 2, n_dash, 4)
        blk = np.concatenate([ids[:, 0], ids[:, 1, :, ::-1]], axis=2).reshape(-1, 8)
        append_block(blk, n_poly, vidx, nxt, pid)
        n_poly += len(blk)
        base += 2 * n_lines * n_dash_s
    first_patch = n_poly
    if n_patch:
        blk = base + np.arange(4 * n_patch).reshape(-1, 4)
        append_block(blk, n_poly, vidx, nxt, pid)
        n_poly += n_patch
    vi = np.concatenate(vidx)
    out = clip_polys(ren.camera, D[vi], R[vi], U[vi], np.concatenate(nxt), np.concatenate(pid), n_poly, row0)
    col = ren._col
    if n_patch:
        kinds = patches[:, 4].astype(np.int64).tolist()
        pp = out[first_patch:first_patch + n_patch]
        by_kind: Dict[int, List[np.ndarray]] = {}
        for p, k in zip(pp, kinds):
            if p is not None:
                by_kind.setdefault(k, []).append(p)
    # Verge patches lie under everything else; asphalt patches go right on the asphalt.
    for k, name in ((2, "tpatch0"), (3, "tpatch1")):
        if n_patch and k in by_kind:
            cv2.fillPoly(rgb, by_kind[k], col[name], HARD, SHIFT)
    town = project_town(ren, row0) if ren._town_ground is not None else None
    fill_town_surfaces(ren, rgb, sem, town)
    for name, ids_, aa, label in ren._surfaces:
        sel = [out[i] for i in ids_ if out[i] is not None]
        if not sel:
            continue
        cv2.fillPoly(rgb, sel, col[name], AA if aa else HARD, SHIFT)
        if label is not None:
            cv2.fillPoly(sem, sel, label, HARD, SHIFT)
        if name == "asphalt" and n_patch:
            for k, pname in ((0, "patch0"), (1, "patch1")):
                if k in by_kind:
                    cv2.fillPoly(rgb, by_kind[k], col[pname], HARD, SHIFT)
    fill_town_marks(ren, rgb, sem, town)
    # Marks: labels for every painted piece, colours by fade level.
    labelled: List[np.ndarray] = []
    by_colour: Dict[Tuple[bool, int], List[np.ndarray]] = {}
    if marks is not None:
        for p, yellow, level, lab in zip(out[first_mark:first_mark + n_mark], marks[3], marks[4], marks[5]):
            if p is None:
                continue
            if lab:
                labelled.append(p)
            if level > 0:
                by_colour.setdefault((yellow, level), []).append(p)
    if n_dash_s:
        dd = D[ren._t_m.size * n:ren._t_m.size * n + 2 * n_lines * n_dash_s].reshape(n_lines, 2, n_dash, 4)
        depth = np.maximum(dd.mean(axis=(1, 3)), NEAR_CLIP_M)  # (lines, dashes)
        wpx = cam.focal_px * ren._dash_width[:, None] / depth
        d1, d2 = ren._dash_fade_m
        alpha = wpx / (wpx + MARK_SOFTNESS_PX) * (1.0 - smoothstep((depth - d1) / (d2 - d1)))
        levels = np.minimum(np.rint(alpha * MARK_LEVELS).astype(np.int64), MARK_LEVELS).ravel().tolist()
        yellow = np.repeat(ren._dash_yellow, n_dash).tolist()
        for p, lv, yl in zip(out[first_dash:first_dash + n_lines * n_dash], levels, yellow):
            if p is None:
                continue
            labelled.append(p)
            if lv > 0:
                by_colour.setdefault((yl, lv), []).append(p)
    for (yellow, level), sel in sorted(by_colour.items(), key=itemgetter(0)):
        cv2.fillPoly(rgb, sel, ren._mark_levels[yellow][level], AA, SHIFT)
    if labelled:
        cv2.fillPoly(sem, labelled, L_MARK, HARD, SHIFT)
