"""The ground of a whole town as world-frame polygons, built once per road network.

A town scenario's camera sees more than the route's corridor: cross streets,
junction surfaces, sidewalks with curbs, parking strips, the lane marks of
every road, stop lines and zebra crosswalks. Those never move, so they are
built here once per network (and cached): every surface as polygons in the
OpenDRIVE world frame (metres, flat ground), cut along each road into chunks
of at most ``SURFACE_CHUNK_M`` (marks: ``MARK_CHUNK_M``) so that a frame culls
what it cannot see and fades far marks chunk by chunk. Lines are sampled at
their ends only (a straight edge projects to a straight edge); arcs so that
a chord strays at most ``ARC_SAG_M`` from the arc.

A junction's asphalt is the convex hull of its arms' ends and of every
connecting lane's edges; its sidewalk is the hull of the arms' sidewalk
corners, with a curb ring between the two. Polygons of one layer never
overlap within a group (the renderer fills each group with one even-odd
``cv2.fillPoly`` call), so roads and junction hulls are separate groups.

Layers (drawing order) and their labels: ``sidewalk`` and ``curb``
(SIDEWALK), ``asphalt`` (ROAD; parking strips included), then the marks
(LANE_MARKING): ``solid`` lines, ``dash`` pieces of broken lines, ``faint``
continuous stand-ins for far dashes (not labelled), ``paint`` for stop lines
and crosswalk stripes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from carla_agent.sim.embedded.render.marks import DASH_M, DASH_PERIOD_M, DOUBLE_GAP_M
from carla_agent.sim.embedded.road import Road
from carla_agent.sim.embedded.roadnet.model import NetRoad, RoadNetwork
from carla_agent.sim.embedded.world import StaticObject

SURFACE_CHUNK_M = 30.0
MARK_CHUNK_M = 8.0
#: Arcs are sampled so a chord strays at most ARC_SAG_M from the arc, every 1 to 4 ARC_STEP_M.
ARC_STEP_M, ARC_SAG_M = 1.0, 0.01
CURB_M = 0.25
STOP_LINE_M = 0.4
#: Zebra stripes: width across the road and the gap between them, metres.
STRIPE_M, STRIPE_GAP_M = 0.5, 0.6
#: Surface layers in drawing order; mark kinds.
SURFACE_LAYERS = ("sidewalk", "curb", "asphalt")
SOLID, DASH, FAINT, PAINT = 0, 1, 2, 3


@dataclass
class PolySet:
    """Polygons as one flat vertex array: polygon i is ``x[start[i]:start[i] + count[i]]``.

    ``cx, cy, radius`` bound each polygon (metres) for culling; ``group`` is the
    polygon's layer/group index, ``width`` a mark's width (metres) along the unit
    ``normal`` (across the line), ``yellow`` its colour.
    """

    x: np.ndarray
    y: np.ndarray
    start: np.ndarray
    count: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    radius: np.ndarray
    group: np.ndarray
    width: np.ndarray
    yellow: np.ndarray
    normal: np.ndarray


class _Builder:
    def __init__(self) -> None:
        self.polys: List[np.ndarray] = []
        self.group: List[int] = []
        self.width: List[float] = []
        self.yellow: List[bool] = []

    def add(self, pts: np.ndarray, group: int, width: float = 0.0, yellow: bool = False) -> None:
        if len(pts) >= 3:
            self.polys.append(np.asarray(pts, np.float64))
            self.group.append(group)
            self.width.append(width)
            self.yellow.append(yellow)

    def done(self) -> PolySet:
        """The polygons, sorted by group (stable), so that a frame's selection comes out grouped."""
        order = np.argsort(np.array(self.group, np.int64), kind="stable").tolist()
        self.polys = [self.polys[i] for i in order]
        self.group = [self.group[i] for i in order]
        self.width = [self.width[i] for i in order]
        self.yellow = [self.yellow[i] for i in order]
        polys = self.polys or [np.zeros((0, 2))]
        count = np.array([len(p) for p in self.polys], np.int64)
        allp = np.concatenate(polys)
        start = np.cumsum(count) - count
        cx = np.array([p[:, 0].mean() for p in self.polys])
        cy = np.array([p[:, 1].mean() for p in self.polys])
        rad = np.array([np.hypot(p[:, 0] - a, p[:, 1] - b).max() for p, a, b in zip(self.polys, cx, cy)])
        # A strip's first half is its left edge, forward: the line's direction, and across it the normal.
        along = np.array([p[len(p) // 2 - 1] - p[0] for p in self.polys]).reshape(-1, 2)
        along /= np.maximum(np.hypot(along[:, 0], along[:, 1]), 1e-9)[:, None]
        normal = np.stack([-along[:, 1], along[:, 0]], 1)
        return PolySet(allp[:, 0].copy(), allp[:, 1].copy(), start, count, cx, cy, rad,
                       np.array(self.group, np.int64), np.array(self.width), np.array(self.yellow, bool), normal)


@dataclass
class TownGround:
    """A network's ground: ``surfaces`` (group = 2 * layer + (1 for junction hulls)), ``marks``
    (group = mark kind), and an occupancy grid of every road and sidewalk (``covered``)."""

    surfaces: PolySet
    marks: PolySet
    grid_origin: Tuple[float, float]
    grid_cell_m: float
    free_dist_m: np.ndarray  # per cell: distance to the nearest road or sidewalk, metres

    def clearance_m(self, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
        """Distance from each point to the nearest road or sidewalk surface, metres (0 on one)."""
        c = self.grid_cell_m
        i = np.floor((np.asarray(y_m) - self.grid_origin[1]) / c).astype(np.int64)
        j = np.floor((np.asarray(x_m) - self.grid_origin[0]) / c).astype(np.int64)
        h, w = self.free_dist_m.shape
        inside = (i >= 0) & (i < h) & (j >= 0) & (j < w)
        out = np.full(np.shape(i), 1e9)
        out[inside] = self.free_dist_m[i[inside], j[inside]]
        return out


def _stations(road: Road, s0: float, s1: float, chunk_m: float) -> List[np.ndarray]:
    """s values of each chunk of ``[s0, s1]``: chunk ends, geometry joints, and arc samples."""
    s = [s0, s1]
    for g in road.geometries:
        a, b = max(s0, g.s_m), min(s1, g.s_m + g.length_m)
        if b <= a:
            continue
        s += [a, b]
        if g.kind != "line":
            k = max(abs(g.curv_start), abs(g.curv_end), 1e-6)
            step = min(ARC_STEP_M * 4.0, max(ARC_STEP_M, float(np.sqrt(8.0 * ARC_SAG_M / k))))
            n = int(np.ceil((b - a) / step))
            s += list(np.linspace(a, b, n + 1))
    n_chunks = max(1, int(np.ceil((s1 - s0) / chunk_m - 1e-9)))
    cuts = np.linspace(s0, s1, n_chunks + 1)
    s = np.unique(np.round(np.concatenate([np.array(s), cuts]), 6))
    out = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        out.append(s[(s >= a - 1e-6) & (s <= b + 1e-6)])
    return out


def _strip(road: Road, s: np.ndarray, t_left: float, t_right: float) -> np.ndarray:
    xl, yl = road.to_world(s, t_left)
    xr, yr = road.to_world(s[::-1], t_right)
    return np.stack([np.concatenate([xl, xr]), np.concatenate([yl, yr])], 1)


def _bands(road: Road) -> Tuple[Tuple[float, float], List[Tuple[float, float]]]:
    """The asphalt band ``(t_left, t_right)`` (driving and parking lanes) and the sidewalk bands."""
    asphalt_l = asphalt_r = 0.0
    walks = []
    t = 0.0
    for lane in road.left_lanes:
        if lane.type == "sidewalk":
            walks.append((t + lane.width_m, t))
        elif asphalt_l == t:
            asphalt_l = t + lane.width_m
        t += lane.width_m
    t = 0.0
    for lane in road.right_lanes:
        if lane.type == "sidewalk":
            walks.append((t, t - lane.width_m))
        elif asphalt_r == t:
            asphalt_r = t - lane.width_m
        t -= lane.width_m
    return (asphalt_l, asphalt_r), walks


def _mark_lines(road: Road) -> List[Tuple[float, float, bool, bool]]:
    """``(t_m, width_m, yellow, broken)`` of the road's painted lines (a double mark is two)."""
    out = []
    for b in road.boundaries():
        m = b.mark
        if m.type == "none" or m.width_m <= 0:
            continue
        yellow = m.color == "yellow"
        if m.type == "solid solid":
            off = 0.5 * (DOUBLE_GAP_M + m.width_m)
            out += [(b.t_m + off, m.width_m, yellow, False), (b.t_m - off, m.width_m, yellow, False)]
        else:
            out.append((b.t_m, m.width_m, yellow, m.type == "broken"))
    return out


def _mark_span(r: NetRoad) -> Tuple[float, float]:
    """Where a road's lines run: they stop at the stop lines and crosswalks near its ends."""
    lo, hi = 0.0, r.length_m
    half = 0.5 * r.length_m
    ends = [(sig.s_m, 0.5 * STOP_LINE_M) for sig in r.signals if sig.kind == "stop_line"]
    ends += [(cw.s_m, 0.5 * cw.length_m) for cw in r.crosswalks]
    for s, reach in ends:
        if s < half:
            lo = max(lo, s + reach)
        else:
            hi = min(hi, s - reach)
    return lo, hi


def _road_ground(r: NetRoad, surf: _Builder, marks: _Builder) -> None:
    road = r.road
    (al, ar), walks = _bands(road)
    for s in _stations(road, 0.0, road.length_m, SURFACE_CHUNK_M):
        surf.add(_strip(road, s, al, ar), 4)
        for tl, tr in walks:  # the curb lies on the asphalt side of the sidewalk
            if tr >= 0:
                surf.add(_strip(road, s, tl, tr + CURB_M), 0)
                surf.add(_strip(road, s, tr + CURB_M, tr), 2)
            else:
                surf.add(_strip(road, s, tl - CURB_M, tr), 0)
                surf.add(_strip(road, s, tl, tl - CURB_M), 2)
    lo, hi = _mark_span(r)
    for t, w, yellow, broken in _mark_lines(road):
        for s in _stations(road, lo, hi, MARK_CHUNK_M):
            marks.add(_strip(road, s, t + 0.5 * w, t - 0.5 * w), FAINT if broken else SOLID, w, yellow)
        if broken:
            for k in range(int(road.length_m // DASH_PERIOD_M) + 1):
                a = k * DASH_PERIOD_M
                if a < lo:
                    continue
                if a + DASH_M > hi:
                    break
                s = np.linspace(a, a + DASH_M, 4)
                marks.add(_strip(road, s, t + 0.5 * w, t - 0.5 * w), DASH, w, yellow)
    for sig in r.signals:
        if sig.kind != "stop_line":
            continue
        s = np.array([sig.s_m - 0.5 * STOP_LINE_M, sig.s_m + 0.5 * STOP_LINE_M])
        marks.add(_strip(road, s, sig.t_m + 0.5 * sig.width_m, sig.t_m - 0.5 * sig.width_m), PAINT, STOP_LINE_M)
    for cw in r.crosswalks:
        s = np.array([cw.s_m - 0.5 * cw.length_m, cw.s_m + 0.5 * cw.length_m])
        span = cw.t_max_m - cw.t_min_m
        n = max(1, int((span + STRIPE_GAP_M) // (STRIPE_M + STRIPE_GAP_M)))
        t0 = cw.t_min_m + 0.5 * (span - (n * STRIPE_M + (n - 1) * STRIPE_GAP_M))
        for i in range(n):
            a = t0 + i * (STRIPE_M + STRIPE_GAP_M)
            marks.add(_strip(road, s, a + STRIPE_M, a), PAINT, STRIPE_M)


def _hull(points: Sequence[np.ndarray]) -> np.ndarray:
    pts = np.concatenate([np.asarray(p, np.float64).reshape(-1, 2) for p in points])
    return cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2).astype(np.float64)


def _grow(poly: np.ndarray, by_m: float) -> np.ndarray:
    """A convex polygon grown by ``by_m`` (the hull of its corners moved 16 ways)."""
    a = np.linspace(0.0, 2 * np.pi, 16, endpoint=False)
    ring = np.stack([np.cos(a), np.sin(a)], 1) * by_m
    return _hull([poly[:, None, :] + ring[None, :, :]])


def _junction_ground(net: RoadNetwork, jid: int, surf: _Builder) -> None:
    asphalt, walk = [], []
    for r in net.roads.values():
        ends = []
        if r.predecessor is not None and r.predecessor.element_type == "junction" and r.predecessor.element_id == jid:
            ends.append(0.0)
        if r.successor is not None and r.successor.element_type == "junction" and r.successor.element_id == jid:
            ends.append(r.road.length_m)
        if r.junction_id == jid:  # a connecting road: its lanes' edges
            s = np.concatenate(_stations(r.road, 0.0, r.road.length_m, 1e9))
            for t in (r.road.left_edge_t, r.road.right_edge_t):
                x, y = r.road.to_world(s, t)
                asphalt.append(np.stack([x, y], 1))
        for s0 in ends:
            (al, ar), _ = _bands(r.road)
            s = np.array([s0])
            for t in (al, ar):
                x, y = r.road.to_world(s, t)
                asphalt.append(np.stack([x, y], 1))
            for t in (r.road.left_edge_t, r.road.right_edge_t):
                x, y = r.road.to_world(s, t)
                walk.append(np.stack([x, y], 1))
    if not asphalt:
        return
    hull = _hull(asphalt)
    curb = _grow(hull, CURB_M)
    surf.add(_hull(walk + [curb]), 1)
    surf.add(curb, 3)
    surf.add(hull, 5)


def _occupancy(surfaces: PolySet, cell_m: float = 0.5, margin_m: float = 30.0):
    x0, y0 = surfaces.x.min() - margin_m, surfaces.y.min() - margin_m
    w = int(np.ceil((surfaces.x.max() + margin_m - x0) / cell_m))
    h = int(np.ceil((surfaces.y.max() + margin_m - y0) / cell_m))
    occ = np.full((h, w), 255, np.uint8)
    polys = []
    for a, n in zip(surfaces.start.tolist(), surfaces.count.tolist()):
        px = (surfaces.x[a:a + n] - x0) / cell_m
        py = (surfaces.y[a:a + n] - y0) / cell_m
        polys.append(np.round(np.stack([px, py], 1) * 16).astype(np.int32))
    for p in polys:  # one call each: hulls overlap road ends
        cv2.fillPoly(occ, [p], 0, cv2.LINE_8, 4)
    dist = cv2.distanceTransform(occ, cv2.DIST_L2, 5) * cell_m
    return (float(x0), float(y0)), cell_m, dist


def build_town_ground(net: RoadNetwork) -> TownGround:
    """The ground of every road and junction of ``net`` (a few tens of ms for the shipped towns)."""
    surf, marks = _Builder(), _Builder()
    for r in net.roads.values():
        if r.junction_id < 0:
            _road_ground(r, surf, marks)
    for jid in net.junctions:
        _junction_ground(net, jid, surf)
    surfaces = surf.done()
    origin, cell, dist = _occupancy(surfaces)
    return TownGround(surfaces, marks.done(), origin, cell, dist)


_CACHE: Dict[int, Tuple[RoadNetwork, TownGround]] = {}


def clear_of_town(objects: Sequence[StaticObject], net: RoadNetwork) -> List[StaticObject]:
    """The objects whose footprint (its box, 0.3 m wider) stays off every road, junction and sidewalk of ``net``."""
    if not objects:
        return list(objects)
    ground = town_ground(net)
    u = np.array([-1.0, 0.0, 1.0])
    gu, gv = (g.ravel() for g in np.meshgrid(u, u))  # the box's corners, edge midpoints and centre
    out = []
    for o in objects:
        c, s = np.cos(o.yaw_rad), np.sin(o.yaw_rad)
        a, b = 0.5 * o.length_m * gu, 0.5 * o.width_m * gv
        if ground.clearance_m(o.x_m + a * c - b * s, o.y_m + a * s + b * c).min() > 0.3:
            out.append(o)
    return out


def town_ground(net: RoadNetwork) -> TownGround:
    """:func:`build_town_ground`, cached per network object (towns are cached by name, so per town)."""
    hit = _CACHE.get(id(net))
    if hit is not None and hit[0] is net:
        return hit[1]
    if len(_CACHE) >= 8:
        _CACHE.clear()
    ground = build_town_ground(net)
    _CACHE[id(net)] = (net, ground)
    return ground
