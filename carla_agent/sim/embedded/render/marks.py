"""Lane marks of the embedded renderer: painted lines, their distance fade, and broken lines' dashes.

Marks fade toward the asphalt as their projected width drops below a pixel
(keeping their average brightness instead of aliasing); dashes whose 12 m
period would shrink below a few pixels become a faint continuous line of the
same average brightness, so far marks never flicker. Functions take the
:class:`~carla_agent.sim.embedded.render.Renderer` ``ren`` whose state they read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List

import numpy as np

from carla_agent.sim.embedded.render.palette import smoothstep
from carla_agent.sim.embedded.render.polygons import NEAR_CLIP_M
from carla_agent.sim.embedded.road import Road

#: CARLA-like broken lines: 3 m dashes every 12 m, phase fixed to s.
DASH_M, DASH_PERIOD_M = 3.0, 12.0
#: Gap between the two lines of a double mark, metres.
DOUBLE_GAP_M = 0.12
#: Brightness levels of distance-faded marks.
MARK_LEVELS = 6
#: A mark w px wide is drawn with alpha w / (w + this): OpenCV's anti-aliased
#: edges add about a pixel of coverage, so this keeps the mark's total light.
MARK_SOFTNESS_PX = 0.7
#: A dash is sampled at 4 points (3 pieces) so it follows curves.
DASH_PIECES = np.array([0.0, 1.0, 2.0, 3.0]) * (DASH_M / 3.0)


@dataclass(frozen=True)
class MarkLine:
    """One painted line (a double mark is two) centred at ``t_m``."""

    t_m: float
    width_m: float
    yellow: bool
    broken: bool


def mark_lines(road: Road) -> List[MarkLine]:
    """The road's painted lines: OpenDRIVE centres a mark on its lane edge; a double mark is two lines."""
    lines: List[MarkLine] = []
    for b in road.boundaries():
        mark = b.mark
        if mark.type == "none" or mark.width_m <= 0:
            continue
        yellow = mark.color == "yellow"
        if mark.type == "solid solid":
            off = 0.5 * (DOUBLE_GAP_M + mark.width_m)
            lines += [MarkLine(b.t_m + off, mark.width_m, yellow, False),
                      MarkLine(b.t_m - off, mark.width_m, yellow, False)]
        else:
            lines.append(MarkLine(b.t_m, mark.width_m, yellow, mark.type == "broken"))
    return lines


def mark_run_layout(ren, D: np.ndarray, n: int, first_id: int):
    """Polygons for every run of equal fade level along every mark line, vectorised.

    Solid lines fade with their projected width; broken lines get, beyond the
    distance where dashes would flicker, a faint continuous line of the
    dashes' average brightness (no label: the dashes carry the labels).

    Args:
        D: ``(offsets * n,)`` depths of the grid points.
        first_id: polygon id of the first run.

    Returns:
        None, or ``(vidx, nxt, pid, yellow, level, labelled)``: the runs' layout
        (positions continue after the static strips) and per-run attribute lists.
    """
    if len(ren._line_edges) == 0:
        return None
    cam = ren.camera
    d = D.reshape(-1, n)[ren._line_edges[:, 0]]
    seg_depth = np.maximum(0.5 * (d[:, 1:] + d[:, :-1]), NEAR_CLIP_M)  # (lines, n - 1)
    wpx = cam.focal_px * ren._line_width[:, None] / seg_depth
    alpha = wpx / (wpx + MARK_SOFTNESS_PX)
    if ren._any_broken:
        d1, d2 = ren._dash_fade_m
        faint = (DASH_M / DASH_PERIOD_M) * smoothstep((seg_depth - d1) / (d2 - d1))
        alpha = np.where(ren._line_broken[:, None], alpha * faint, alpha)
    levels = np.minimum(np.rint(alpha * MARK_LEVELS).astype(np.int64), MARK_LEVELS)
    n_lines, n_seg = levels.shape
    # Run starts: segment 0 of every line, and every segment whose level differs from the previous.
    change = np.ones((n_lines, n_seg), bool)
    change[:, 1:] = levels[:, 1:] != levels[:, :-1]
    line, i0 = np.nonzero(change)
    i1 = np.empty_like(i0)  # last segment of each run
    i1[:-1] = i0[1:] - 1
    i1[-1] = n_seg - 1
    i1[:-1][line[1:] != line[:-1]] = n_seg - 1  # a line's last run ends at its last segment
    level = levels[line, i0]
    keep = ~(ren._line_broken[line] & (level == 0))  # a faint line at level 0 draws nothing
    line, i0, i1, level = line[keep], i0[keep], i1[keep], level[keep]
    if len(line) == 0:
        return None
    # Run r covers samples i0..i1+1: edge a forward, edge b back.
    length = i1 - i0 + 2
    a = ren._line_edges[line, 0] * n + i0
    b = ren._line_edges[line, 1] * n + i1 + 1
    total = 2 * length
    ends = total.cumsum()
    starts = ends - total
    pos = np.arange(int(ends[-1]))
    run = np.repeat(np.arange(len(line)), total)
    off = pos - starts[run]
    first_half = off < length[run]
    vidx = np.where(first_half, a[run] + off, b[run] - (off - length[run]))
    base = ren._static_vidx.size
    nxt = base + pos + 1
    nxt[ends - 1] = base + starts
    pid = first_id + run
    return (vidx, nxt, pid, ren._line_yellow[line].tolist(), level.tolist(),
            (~ren._line_broken[line]).tolist())


def dash_indices(ren, s_hint: float) -> np.ndarray:
    """Numbers k of the dashes (at s = 12 k .. 12 k + 3) that can cover a pixel.

    Candidates lie between the sampled range's ends; of those only dashes
    in front of the camera and within twice the fade distance of it are
    kept (farther, a dash is under a pixel and the faint continuous line
    stands for it). The test is by straight-line distance, so the far leg
    of a hairpin keeps its dashes.
    """
    if len(ren._dash_t) == 0:
        return np.zeros(0)
    lo = s_hint + ren._s_offsets_m[0]
    hi = s_hint + ren.view_m
    k = np.arange(math.ceil((lo - DASH_M) / DASH_PERIOD_M), math.floor(hi / DASH_PERIOD_M) + 1, dtype=np.float64)
    k = k[(k * DASH_PERIOD_M >= 0.0) & (k * DASH_PERIOD_M + DASH_M <= ren.road.length_m)]
    mid = k * DASH_PERIOD_M + 0.5 * DASH_M
    o = ren.camera._o
    dx = np.interp(mid, ren._ref_s, ren._ref_x) - o[0]
    dy = np.interp(mid, ren._ref_s, ren._ref_y) - o[1]
    reach = ren._dash_reach_m
    f = ren.camera._f
    # In front of the camera (a dash half behind it still shows its front half) and near enough.
    keep = (dx * dx + dy * dy < reach * reach) & (dx * f[0] + dy * f[1] > -DASH_M)
    return k[keep]
