"""The served world as ray-cast primitives in CARLA's frame: the flat ground (z = 0) and boxes.

Boxes are the vehicles (the ego, the live traffic and the clients' vehicles, each its bounding
box), the solid props, the walkers and the roadside
objects of the embedded world (see ``carla_agent/sim/embedded/render/roadside.py`` for how they are
drawn): a tree is a trunk and a square crown, a pole a thin post, a building its box, a sign a post
and a plate. Each box carries an actor id (0 for things that are not actors, as CARLA's ground and
buildings) and a ``CityObjectLabel`` tag. Everything is in CARLA's left-handed frame (the embedded
world's y and yaw mirrored).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from carla_agent.server import props, vehicles, walkers

# CityObjectLabel (CARLA 0.9.16)
TAG_NONE, TAG_ROAD, TAG_SIDEWALK, TAG_BUILDING, TAG_POLE = 0, 1, 2, 3, 6
TAG_SIGN, TAG_VEGETATION, TAG_TERRAIN, TAG_SKY, TAG_PEDESTRIAN, TAG_CAR, TAG_STATIC = 8, 9, 10, 11, 12, 14, 20
#: Ground samples of the road for tagging hits, metres apart.
GROUND_SAMPLE_M = 1.0


@dataclass
class Boxes:
    """``M`` yaw-only oriented boxes. ``center_m``, ``half_m``, ``velocity_mps``: ``(M, 3)`` float64;
    ``yaw_rad``: ``(M,)`` (CARLA's, x toward y); ``ids``: ``(M,)`` uint32 actor ids (0: not an actor);
    ``tags``: ``(M,)`` uint32 CityObjectLabel."""

    center_m: np.ndarray
    half_m: np.ndarray
    yaw_rad: np.ndarray
    ids: np.ndarray
    tags: np.ndarray
    velocity_mps: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def select(self, keep) -> "Boxes":
        return Boxes(self.center_m[keep], self.half_m[keep], self.yaw_rad[keep], self.ids[keep],
                     self.tags[keep], self.velocity_mps[keep])

    @staticmethod
    def join(parts) -> "Boxes":
        parts = [p for p in parts if len(p)]
        if not parts:
            return _boxes([], [], [], [], [], [])
        return Boxes(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                       ("center_m", "half_m", "yaw_rad", "ids", "tags", "velocity_mps")))


def _boxes(center, half, yaw, ids, tags, vel) -> Boxes:
    return Boxes(np.asarray(center, np.float64).reshape(-1, 3), np.asarray(half, np.float64).reshape(-1, 3),
                 np.asarray(yaw, np.float64).reshape(-1), np.asarray(ids, np.uint32).reshape(-1),
                 np.asarray(tags, np.uint32).reshape(-1), np.asarray(vel, np.float64).reshape(-1, 3))


def static_boxes(statics) -> Boxes:
    """The roadside objects (``StaticObject`` list, embedded frame) as boxes in CARLA's frame."""
    c, h, yaw, tags = [], [], [], []
    for o in statics:
        x, y, a = o.x_m, -o.y_m, -o.yaw_rad
        L, W, H = o.length_m, o.width_m, o.height_m
        if o.kind == "tree":
            base = 0.28 * H  # where the crown starts (the renderer's broadleaf shape)
            c += [(x, y, 0.5 * base), (x, y, 0.5 * (base + H))]
            h += [(0.15, 0.15, 0.5 * base), (0.4 * W, 0.4 * W, 0.5 * (H - base))]
            yaw += [a, a]
            tags += [TAG_VEGETATION, TAG_VEGETATION]
        elif o.kind == "sign":
            c += [(x, y, 0.85), (x, y, 2.15)]
            h += [(0.04, 0.04, 0.85), (0.5 * L, 0.5 * W, 0.45)]
            yaw += [a, a]
            tags += [TAG_SIGN, TAG_SIGN]
        else:
            c.append((x, y, 0.5 * H))
            h.append((0.5 * L, 0.5 * W, 0.5 * H))
            yaw.append(a)
            tags.append(TAG_BUILDING if o.kind == "building" else TAG_POLE)
    n = len(tags)
    return _boxes(c, h, yaw, np.zeros(n), tags, np.zeros((n, 3)))


def vehicle_boxes(world, traffic, exclude: int = 0) -> Boxes:
    """The ego (unless it is ``exclude``), ``traffic`` (``(actor id, TrafficVehicle)``), the clients'
    vehicles and solid props (``world.vehicles``) and the walkers as boxes with their velocities."""
    c, h, yaw, ids, vel = [], [], [], [], []
    sim = world.sim
    if world.ego_id is not None and world.ego_id != exclude:
        st, p = sim.state, sim.params
        c.append((st.x_m, -st.y_m, 0.75))
        h.append((0.5 * p.length_m, 0.5 * p.width_m, 0.75))
        yaw.append(-st.yaw_rad)
        ids.append(world.ego_id)
        vel.append((st.speed_mps * math.cos(st.yaw_rad), -st.speed_mps * math.sin(st.yaw_rad), 0.0))
    road = sim.road
    for tid, v in traffic:
        b = v.box(road)
        c.append((b.x_m, -b.y_m, 0.5 * b.height_m))
        h.append((0.5 * b.length_m, 0.5 * b.width_m, 0.5 * b.height_m))
        yaw.append(-b.yaw_rad)
        ids.append(tid)
        hd = road.heading_at(min(max(v.s_m, 0.0), road.length_m))
        vel.append((v.speed_mps * math.cos(hd), -v.speed_mps * math.sin(hd), 0.0))
    tags = [TAG_CAR] * len(ids)
    for a in world.vehicles.values():  # the clients' vehicles and solid props
        if a.id == exclude or not props.solid(a):
            continue
        st = a.state
        length, width, height = props.box_size(a, vehicles.PARAMS.length_m, vehicles.PARAMS.width_m,
                                               vehicles.PARAMS.height_m)
        c.append((st.x_m, -st.y_m, 0.5 * height))
        h.append((0.5 * length, 0.5 * width, 0.5 * height))
        yaw.append(-st.yaw_rad)
        ids.append(a.id)
        tags.append(TAG_STATIC if props.is_prop(a.type_id) else TAG_CAR)
        vel.append((st.speed_mps * math.cos(st.yaw_rad), -st.speed_mps * math.sin(st.yaw_rad), 0.0))
    for a in world.walkers.values():  # CARLA's frame already
        w = a.walker
        c.append((w.x_m, w.y_m, w.z_m))  # a walker's location is its centre
        h.append(tuple(walkers.EXTENT))
        yaw.append(math.radians(w.yaw_deg))
        ids.append(a.id)
        tags.append(TAG_PEDESTRIAN)
        vel.append(tuple(w.velocity))
    return _boxes(c, h, yaw, ids, tags, vel)


def scene_boxes(world, traffic, origin_m: np.ndarray, radius_m: float, exclude: int = 0) -> Boxes:
    """Every box whose bounding circle comes within ``radius_m`` of ``origin_m`` (horizontally).
    The roadside boxes are made once per list of statics and kept on ``world``."""
    statics = world.sim.statics
    cache = getattr(world, "_sensor_static_boxes", None)
    if cache is None or cache[0] is not statics:
        cache = (statics, static_boxes(statics))
        world._sensor_static_boxes = cache
    both = Boxes.join([cache[1], vehicle_boxes(world, traffic, exclude)])
    reach = np.hypot(both.half_m[:, 0], both.half_m[:, 1])
    d = np.hypot(both.center_m[:, 0] - origin_m[0], both.center_m[:, 1] - origin_m[1])
    return both.select(d - reach <= radius_m)


def ground_tags(world, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
    """CityObjectLabel of ground points (CARLA frame, ``(N,)`` each): Roads on a driving, shoulder or
    border lane, Sidewalks on a sidewalk, Terrain off the road (``(N,)`` uint32)."""
    road = world.sim.road
    n = len(x_m)
    out = np.full(n, TAG_TERRAIN, np.uint32)
    if n == 0:
        return out
    ex_, ey_ = x_m, -y_m  # embedded frame
    span = float(max(np.ptp(ex_), np.ptp(ey_))) + 10.0
    step = max(1, int(round(GROUND_SAMPLE_M / max(road.s[1] - road.s[0], 1e-6))))
    s0 = world.sim.s
    sel = np.nonzero(np.abs(road.s - s0) <= span + 10.0)[0][::step]
    if len(sel) == 0:
        return out
    rx, ry, rh = road.x[sel], road.y[sel], road.hdg[sel]
    d2 = (ex_[:, None] - rx[None, :]) ** 2 + (ey_[:, None] - ry[None, :]) ** 2
    k = np.argmin(d2, axis=1)
    dx, dy, h = ex_ - rx[k], ey_ - ry[k], rh[k]
    along = dx * np.cos(h) + dy * np.sin(h)
    t = -dx * np.sin(h) + dy * np.cos(h)
    ends = (sel[k] == 0) | (sel[k] >= len(road.s) - step)
    on = ~(ends & (np.abs(along) > GROUND_SAMPLE_M))
    for lanes, sign in ((road.left_lanes, 1.0), (road.right_lanes, -1.0)):
        edge = 0.0
        for lane in lanes:
            lo, edge = edge, edge + lane.width_m
            inside = on & (sign * t >= lo) & (sign * t <= edge)
            out[inside] = TAG_SIDEWALK if lane.type == "sidewalk" else TAG_ROAD
    return out
