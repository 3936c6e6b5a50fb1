"""The walkers' navigation mesh of a served map, as the ``carla`` wheel loads it.

CARLA's pedestrian navigation runs in the client (Recast/Detour inside the wheel): the client asks
``get_required_files("Nav")``, fetches the file by ``request_file`` and walks its ``controller.ai.walker``
agents on it, sending their poses back as ``ApplyWalkerState`` commands. This module writes that file
for the embedded map: CARLA's ``MSET`` tile set (``carla::nav::Navigation::Load``) holding one Detour
tile (``DNAV`` version 7, 32-bit poly refs, as the 0.9.16 wheel is built) whose polygons are

* the sidewalks: one quad per ~3 m of every sidewalk lane (area 1, flag ``CARLA_TYPE_SIDEWALK``);
* the crosswalks: a quad across the road from one sidewalk's inner edge to the other's (area 2,
  flag ``CARLA_TYPE_CROSSWALK``);
* the junction corners: a quad joining the sidewalk ends of two neighbouring arms (sidewalk).

Vertices are welded at 1 cm, so polygons that share an edge are neighbours (Detour links them).
Coordinates are Recast's ``(x, z_up, y)`` of CARLA's frame (``y_carla = -y`` of OpenDRIVE); the
ground is flat (height 0). Detail meshes are the polygons' fans, as ``dtCreateNavMeshData`` makes
them when none is given; no BV tree (Detour then scans every polygon of the tile).
"""

from __future__ import annotations

import hashlib
import math
import struct
from typing import Dict, List, Sequence, Tuple

import numpy as np

AREA_SIDEWALK, AREA_CROSSWALK = 1, 2
FLAG_SIDEWALK, FLAG_CROSSWALK = 0x02, 0x04
STEP_M = 3.0  # sidewalk quads along s, metres (finer on bends)
WALKABLE_HEIGHT_M, WALKABLE_RADIUS_M, WALKABLE_CLIMB_M = 1.8, 0.3, 0.5

Poly = Tuple[List[Tuple[float, float]], int, int]  # CARLA-frame (x, y) corners, area, flags


def _strip(road, t_in: float, t_out: float, s_cuts: Sequence[float]) -> List[Poly]:
    """Quads of the band ``t_in..t_out`` of ``road`` (OpenDRIVE t), cut at ``s_cuts`` (sorted)."""
    xi, yi = road.to_world(np.asarray(s_cuts), t_in)
    xo, yo = road.to_world(np.asarray(s_cuts), t_out)
    out = []
    for k in range(len(s_cuts) - 1):
        corners = [(xi[k], -yi[k]), (xi[k + 1], -yi[k + 1]), (xo[k + 1], -yo[k + 1]), (xo[k], -yo[k])]
        out.append(([(float(x), float(y)) for x, y in corners], AREA_SIDEWALK, FLAG_SIDEWALK))
    return out


def _sidewalk_bands(road) -> List[Tuple[float, float]]:
    """``(inner t, outer t)`` of each sidewalk lane of ``road``."""
    bands = []
    for lane in road.left_lanes + road.right_lanes:
        if lane.type == "sidewalk":
            t0 = road.lane_inner_t(lane.id)
            bands.append((t0, t0 + math.copysign(lane.width_m, t0 if t0 else lane.id)))
    return bands


def road_polys(road, crosswalks=()) -> Tuple[List[Poly], Dict[str, list]]:
    """The sidewalk and crosswalk polygons of one road, and its sidewalk end edges
    ``{"start"|"end": [(inner xy, outer xy), ...]}`` (for the junction corners)."""
    bands = _sidewalk_bands(road)
    ends: Dict[str, list] = {"start": [], "end": []}
    if not bands:
        return [], ends
    n = max(int(math.ceil(road.length_m / STEP_M)), 1)
    cuts = set(np.linspace(0.0, road.length_m, n + 1).round(3).tolist())
    for cw in crosswalks:
        cuts |= {round(cw.s_m, 3), round(cw.s_m + cw.length_m, 3)}
    s_cuts = sorted(c for c in cuts if 0.0 <= c <= road.length_m)
    polys: List[Poly] = []
    for t_in, t_out in bands:
        polys += _strip(road, t_in, t_out, s_cuts)
        for end, s in (("start", 0.0), ("end", road.length_m)):
            (x0, y0), (x1, y1) = road.to_world(s, t_in), road.to_world(s, t_out)
            ends[end].append(((float(x0), -float(y0)), (float(x1), -float(y1))))
    inner = sorted(t for t, _ in bands)
    if len(inner) == 2:
        for cw in crosswalks:
            a, b = round(cw.s_m, 3), round(cw.s_m + cw.length_m, 3)
            (xa, ya), (xb, yb) = road.to_world(np.array([a, b]), inner[0]), road.to_world(np.array([a, b]), inner[1])
            corners = [(xa[0], -ya[0]), (xa[1], -ya[1]), (xb[1], -yb[1]), (xb[0], -yb[0])]
            polys.append(([(float(x), float(y)) for x, y in corners], AREA_CROSSWALK, FLAG_CROSSWALK))
    return polys, ends


def _corner_polys(net) -> List[Poly]:
    """At each junction, a quad between the nearest sidewalk ends of each two neighbouring arms."""
    out: List[Poly] = []
    for j in net.junctions.values():
        cx, cy = j.center_xy_m
        arms = []
        for r in net.roads.values():
            for end, link in (("start", r.predecessor), ("end", r.successor)):
                if link is not None and link.element_type == "junction" and link.element_id == j.id:
                    edges = road_polys(r.road)[1][end]
                    if edges:
                        mx = np.mean([e[0][0] for e in edges]) - cx
                        my = np.mean([e[0][1] for e in edges]) + cy
                        arms.append((math.atan2(my, mx), edges))
        arms.sort(key=lambda a: a[0])
        used = set()
        for k in range(len(arms) if len(arms) > 2 else 1 if len(arms) == 2 else 0):
            a, b = arms[k][1], arms[(k + 1) % len(arms)][1]
            pairs = sorted(((math.dist(ea[0], eb[0]), i, m) for i, ea in enumerate(a) for m, eb in enumerate(b)
                            if (id(a), i) not in used and (id(b), m) not in used))
            count = 2 if len(arms) == 2 else 1
            for _, i, m in pairs[:count]:
                if (id(a), i) in used or (id(b), m) in used:
                    continue
                used |= {(id(a), i), (id(b), m)}
                (ai, ao), (bi, bo) = a[i], b[m]
                out.append(([ai, ao, bo, bi], AREA_SIDEWALK, FLAG_SIDEWALK))
    return out


def network_polys(net) -> List[Poly]:
    polys: List[Poly] = []
    for r in net.roads.values():
        if r.junction_id < 0:
            polys += road_polys(r.road, r.crosswalks)[0]
    return polys + _corner_polys(net)


def _convex_ccw(corners: List[Tuple[float, float]]):
    """The corners ordered for Detour (clockwise in CARLA's (x, y) = Recast's (x, z): ``dtTriArea2D``
    of each fan triangle positive), or None if the polygon is degenerate or not convex."""
    pts = np.asarray(corners, float)
    area = 0.5 * float(np.sum(pts[:, 0] * np.roll(pts[:, 1], -1) - np.roll(pts[:, 0], -1) * pts[:, 1]))
    if abs(area) < 1e-4:
        return None
    if area > 0:
        pts = pts[::-1]
    d1 = np.roll(pts, -1, axis=0) - pts
    d2 = np.roll(d1, -1, axis=0)
    if np.any(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0] > 1e-6):
        return None
    return [tuple(p) for p in pts]


def build(polys: List[Poly]) -> bytes:
    """The ``MSET`` file of ``polys`` (see the module docstring); empty polys -> an empty mesh."""
    verts: List[Tuple[float, float]] = []
    index: Dict[Tuple[int, int], int] = {}
    tile_polys = []
    for corners, area, flags in polys:
        ordered = _convex_ccw(corners)
        if ordered is None:
            continue
        ids = []
        for x, y in ordered:
            key = (int(round(x * 100)), int(round(y * 100)))
            if key not in index:
                index[key] = len(verts)
                verts.append((key[0] / 100.0, key[1] / 100.0))
            if not ids or ids[-1] != index[key]:
                ids.append(index[key])
        if len(ids) > 2 and ids[0] == ids[-1]:
            ids.pop()
        if len(set(ids)) >= 3:
            tile_polys.append((ids, area, flags))
    edges: Dict[Tuple[int, int], List[Tuple[int, int]]] = {}
    for p, (ids, _, _) in enumerate(tile_polys):
        for j in range(len(ids)):
            a, b = ids[j], ids[(j + 1) % len(ids)]
            edges.setdefault((min(a, b), max(a, b)), []).append((p, j))
    neis = [[0] * 6 for _ in tile_polys]
    for shared in edges.values():
        if len(shared) == 2:
            (p, j), (q, m) = shared
            neis[p][j], neis[q][m] = q + 1, p + 1
    return _pack(verts, tile_polys, neis)


def _pack(verts, tile_polys, neis) -> bytes:
    npoly, nvert = len(tile_polys), len(verts)
    xy = np.asarray(verts, float).reshape(-1, 2) if verts else np.zeros((1, 2))
    bmin = (float(xy[:, 0].min()) - 5.0, -2.0, float(xy[:, 1].min()) - 5.0)
    bmax = (float(xy[:, 0].max()) + 5.0, 2.0, float(xy[:, 1].max()) + 5.0)
    ntris = sum(len(ids) - 2 for ids, _, _ in tile_polys)
    max_links = sum(len(ids) for ids, _, _ in tile_polys)
    header = struct.pack("<iiiiiIiiiiiiiiifff3f3ff", _fourcc("DNAV"), 7, 0, 0, 0, 0, npoly, nvert, max_links,
                         npoly, 0, ntris, 0, 0, npoly, WALKABLE_HEIGHT_M, WALKABLE_RADIUS_M, WALKABLE_CLIMB_M,
                         *bmin, *bmax, 0.0)
    body = [header, b"".join(struct.pack("<fff", x, 0.0, y) for x, y in verts)]
    polys = []
    for (ids, area, flags), nei in zip(tile_polys, neis):
        vs = list(ids) + [0] * (6 - len(ids))
        polys.append(struct.pack("<I6H6HHBB", 0xFFFFFFFF, *vs, *nei, flags, len(ids), area & 0x3F))
    body.append(b"".join(polys))
    body.append(bytes(12 * max_links))  # dtLink slots, filled by addTile
    details, tris, tbase = [], [], 0
    for ids, _, _ in tile_polys:
        nv = len(ids)
        details.append(struct.pack("<IIBBxx", 0, tbase, 0, nv - 2))
        for j in range(2, nv):
            flags = (1 << 2) | ((1 << 0) if j == 2 else 0) | ((1 << 4) if j == nv - 1 else 0)
            tris.append(bytes([0, j - 1, j, flags]))
            tbase += 1
    body += [b"".join(details), b"".join(tris)]
    tile = b"".join(_align4(b) for b in body)
    poly_bits = max(int(math.ceil(math.log2(max(npoly, 1)))), 0)
    tile_ref = 1 << poly_bits  # salt 1, tile 0
    params = struct.pack("<3fffii", bmin[0], bmin[1], bmin[2], bmax[0] - bmin[0], bmax[2] - bmin[2], 1,
                         max(npoly, 1))
    head = struct.pack("<iii", _fourcc("MSET"), 1, 1) + params
    return head + struct.pack("<Ii", tile_ref, len(tile)) + tile


def _fourcc(s: str) -> int:
    return struct.unpack(">i", s.encode())[0]


def _align4(b: bytes) -> bytes:
    return b + bytes(-len(b) % 4)


def for_world(world) -> Tuple[str, bytes]:
    """``(file name, bytes)`` of the served map's navigation mesh (cached on the world per map)."""
    key = world.sim.scenario.name
    cached = getattr(world, "_navmesh", None)
    # keyed by the scenario too: two generated OpenDRIVE worlds share the name OpenDriveMap
    if cached is not None and cached[0] == (key, world.sim.scenario):
        return cached[1], cached[2]
    town = getattr(world.sim, "town", None)
    if town is not None:
        polys = network_polys(town.network)
    else:
        polys = road_polys(world.sim.road)[0]
    data = build(polys)
    name = f"{key}/Nav/{key}_{hashlib.sha1(data).hexdigest()[:10]}.bin"
    world._navmesh = ((key, world.sim.scenario), name, data)
    return name, data
