"""Traffic of the embedded renderer: cars built from one template of boxes and lamps, lit per face.

Every face of every car in view is transformed, tested for facing the camera
and lit at once; far cars are one box without lamps. In the dark the lamps
glow instead (and smear on a wet road). Functions take the
:class:`~carla_agent.sim.embedded.render.Renderer` ``ren`` whose state they
read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from carla_agent.sim.embedded.render.palette import GLASS, HEAD_LIGHT, L_VEHICLE, TAIL_LIGHT, TYRES, mix_rgb
from carla_agent.sim.embedded.render.polygons import ONE, Batch
from carla_agent.sim.embedded.render.shading import ambient_at, finish
from carla_agent.sim.embedded.world import VehicleBox


@dataclass(frozen=True)
class _CarTemplate:
    """Faces of a car in its own frame, in drawing order, in units of (length, width, height).

    Attributes (F faces):
        corners: ``(F, 4, 3)`` face corners; centre: ``(F, 3)`` face centres; normal: ``(F, 3)``.
        albedo: ``(F, 3)`` colours of unpainted faces; paint: ``(F,)`` takes the car's colour.
        glow: ``(F,)`` extra light of lamps; lamp / lamp_l: ``(F,)`` is a lamp (array / list).
        lod: ``(F,)`` belongs to the one-box stand-in for far cars.
        box_l: ``(F,)`` the box a face belongs to (its faces never overlap: one label call per box); 0 for lamps.
    """

    corners: np.ndarray
    centre: np.ndarray
    normal: np.ndarray
    albedo: np.ndarray
    paint: np.ndarray
    glow: np.ndarray
    lamp: np.ndarray
    lamp_l: Tuple[bool, ...]
    lod: np.ndarray
    box_l: Tuple[int, ...]


def _car_template() -> _CarTemplate:
    faces = []  # (corners (4, 3), normal, albedo or None for paint, glow, lamp, lod, box)
    boxes = [0]

    def box(cx, hl, hw, z0, z1, sides_rgb, top_rgb, lod=False, top=True):
        boxes[0] += 1
        # front (+x), back, left (+y), right: each (corner order) and normal.
        walls = (((cx + hl, -hw), (cx + hl, hw), (1.0, 0.0)), ((cx - hl, hw), (cx - hl, -hw), (-1.0, 0.0)),
                 ((cx + hl, hw), (cx - hl, hw), (0.0, 1.0)), ((cx - hl, -hw), (cx + hl, -hw), (0.0, -1.0)))
        for (ax, ay), (bx, by), (nx, ny) in walls:
            faces.append((((ax, ay, z0), (bx, by, z0), (bx, by, z1), (ax, ay, z1)), (nx, ny, 0.0), sides_rgb, 0.0,
                          False, lod, boxes[0]))
        if top:
            faces.append((((cx + hl, -hw, z1), (cx + hl, hw, z1), (cx - hl, hw, z1), (cx - hl, -hw, z1)),
                          (0.0, 0.0, 1.0), top_rgb, 0.0, False, lod, boxes[0]))

    # Wheels and underbody, the painted body, the glasshouse with a painted roof.
    box(0.0, 0.45, 0.475, 0.0, 0.24, TYRES, TYRES, top=False)
    box(0.0, 0.5, 0.5, 0.2, 0.62, None, None)
    box(-0.08, 0.25, 0.42, 0.62, 1.0, GLASS, None)
    # Lamps just outside the body's ends: tail lights at the back, headlights at the front.
    for end, rgb in ((-1.0, TAIL_LIGHT), (1.0, HEAD_LIGHT)):
        x = end * 0.502
        for side in (-1.0, 1.0):
            y0, y1 = side * 0.24, side * 0.48
            if end * side > 0:
                y0, y1 = y1, y0
            faces.append((((x, y0, 0.45), (x, y1, 0.45), (x, y1, 0.55), (x, y0, 0.55)), (end, 0.0, 0.0), rgb,
                          0.3, True, False, 0))
    box(0.0, 0.5, 0.5, 0.0, 1.0, None, None, lod=True)
    corners = np.array([f[0] for f in faces], np.float64)
    return _CarTemplate(
        corners=corners, centre=corners.mean(axis=1), normal=np.array([f[1] for f in faces], np.float64),
        albedo=np.array([f[2] if f[2] is not None else (0, 0, 0) for f in faces], np.float64),
        paint=np.array([f[2] is None for f in faces]), glow=np.array([f[3] for f in faces]),
        lamp=np.array([f[4] for f in faces]), lamp_l=tuple(bool(f[4]) for f in faces),
        lod=np.array([f[5] for f in faces]), box_l=tuple(int(f[6]) for f in faces))


_CAR = _car_template()


class Vehicles:
    """The frame's vehicles in view as arrays (OpenDRIVE frame, metres, radians)."""

    def __init__(self, boxes: Sequence[VehicleBox]) -> None:
        self.x = np.array([v.x_m for v in boxes], np.float64)
        self.y = np.array([v.y_m for v in boxes], np.float64)
        self.yaw = np.array([v.yaw_rad for v in boxes], np.float64)
        self.length = np.array([v.length_m for v in boxes], np.float64)
        self.width = np.array([v.width_m for v in boxes], np.float64)
        self.height = np.array([v.height_m for v in boxes], np.float64)
        self.color = np.array([v.color for v in boxes], np.float64).reshape(-1, 3)


def vehicles_in_view(ren, vehicles: Sequence[VehicleBox]) -> Optional[Vehicles]:
    """The vehicles whose box (or contact shadow) can be in view, as arrays; None when none."""
    if not vehicles:
        return None
    cam = ren.camera
    keep = []
    for v in vehicles:
        d, r, _ = cam.to_camera(v.x_m, v.y_m, 0.0)
        rad = 0.5 * (v.length_m + v.width_m)
        if -rad < d < ren._object_view_m + rad and abs(r) - rad < (max(d, 0.0) + rad) * ren._tan_half_fov:
            keep.append(v)
    return Vehicles(keep) if keep else None


def gather_vehicles(ren, veh: Vehicles, b: Batch, items: list) -> None:
    """Cars from the template :data:`_CAR`: every face of every car transformed, tested and lit at once."""
    cam, w = ren.camera, ren.weather
    n = len(veh.x)
    d0, r0, _ = cam.to_camera(veh.x, veh.y, 0.0)
    rng_m = np.hypot(d0, r0)
    fog = w.fog_fraction(rng_m)
    amb = ambient_at(ren, veh.x, veh.y)
    c, s = np.cos(veh.yaw), np.sin(veh.yaw)
    dims = np.stack([veh.length, veh.width, veh.height], 1)[:, None, :]  # (n, 1, 3)
    # Level of detail: a car under 6 px tall is one box without lamps.
    small = veh.height * cam.focal_px / np.maximum(d0, 0.5) < 6.0
    use = np.where(small[:, None], _CAR.lod[None, :], ~_CAR.lod[None, :])  # (n, F)
    # Face centres and normals in the world frame; a face is seen from its outer side.
    ctr = _CAR.centre[None, :, :] * dims  # (n, F, 3), vehicle frame
    wx = veh.x[:, None] + c[:, None] * ctr[..., 0] - s[:, None] * ctr[..., 1]
    wy = veh.y[:, None] + s[:, None] * ctr[..., 0] + c[:, None] * ctr[..., 1]
    nl = _CAR.normal
    nx = c[:, None] * nl[None, :, 0] - s[:, None] * nl[None, :, 1]
    ny = s[:, None] * nl[None, :, 0] + c[:, None] * nl[None, :, 1]
    nz = nl[:, 2]
    o = cam._o
    vis = use & ((o[0] - wx) * nx + (o[1] - wy) * ny + (o[2] - ctr[..., 2]) * nz > 1e-6)
    dark = w.is_dark
    if dark:
        vis &= ~_CAR.lamp[None, :]  # lamps glow instead (below)
    vi, fi = np.nonzero(vis)
    if len(vi):
        # Corners of the visible faces.
        loc = _CAR.corners[fi] * dims[vi]  # (k, 4, 3)
        cv_, sv_ = c[vi][:, None], s[vi][:, None]
        qx = veh.x[vi][:, None] + cv_ * loc[..., 0] - sv_ * loc[..., 1]
        qy = veh.y[vi][:, None] + sv_ * loc[..., 0] + cv_ * loc[..., 1]
        first = b.many(qx, qy, loc[..., 2])
        # Light: sky (more on the roof), sun by the face's angle; lamps shine a little on their own.
        sx, sy, sz = w.sun_direction
        top = nz[fi] > 0.5
        cos_sun = np.where(top, max(0.0, sz), np.maximum(0.0, nx[vi, fi] * sx + ny[vi, fi] * sy))
        light = np.where(top[:, None], amb[vi] / 0.85, amb[vi]) + cos_sun[:, None] * ren._sun_rgb
        light = light + _CAR.glow[fi][:, None]
        albedo = np.where(_CAR.paint[fi][:, None], veh.color[vi], _CAR.albedo[fi])
        cols = finish(ren, albedo, light, fog[vi])
        per_vehicle: List[list] = [[] for _ in range(n)]
        # Faces are in drawing order; after a box's faces comes one label call for all of them.
        boxes = _CAR.box_l
        refs: list = []
        for k, (v, f) in enumerate(zip(vi.tolist(), fi.tolist())):
            prims = per_vehicle[v]
            prims.append((0, first + k, cols[k], None))
            if boxes[f]:
                refs.append(first + k)
                nk = k + 1
                if nk == len(vi) or vi[nk] != v or boxes[fi[nk]] != boxes[f]:
                    prims.append((4, refs, L_VEHICLE))
                    refs = []
    else:
        per_vehicle = [[] for _ in range(n)]
    if dark:
        lamp_glows(ren, veh, small, c, s, fog, per_vehicle)
    for v in range(n):
        items.append((float(rng_m[v]), per_vehicle[v]))


def lamp_glows(ren, veh: Vehicles, small: np.ndarray, c: np.ndarray, s: np.ndarray, fog: np.ndarray,
               per_vehicle: List[list]) -> None:
    """Glowing lamps of cars in the dark (and their smears on a wet road), for the ends facing the camera."""
    cam, w = ren.camera, ren.weather
    o = cam._o
    for v in np.nonzero(~small)[0].tolist():
        ci, si, fi = float(c[v]), float(s[v]), float(fog[v])
        vx, vy = float(veh.x[v]), float(veh.y[v])
        vl, vw, vh = float(veh.length[v]), float(veh.width[v]), float(veh.height[v])
        z = 0.5 * vh
        prims = per_vehicle[v]
        for end in (-1.0, 1.0):
            fx, fy = vx + end * 0.5 * vl * ci, vy + end * 0.5 * vl * si
            if (o[0] - fx) * end * ci + (o[1] - fy) * end * si <= 0:
                continue  # that end faces away
            glow = mix_rgb((255, 60, 40) if end < 0 else (255, 250, 235), w.fog_rgb, 0.5 * fi)
            smear = mix_rgb(glow, (14, 14, 18), 0.72)
            for side in (-1.0, 1.0):
                lx = fx - side * 0.36 * vw * si
                ly = fy + side * 0.36 * vw * ci
                dc, rc, uc = cam.to_camera(lx, ly, z)
                if dc <= 0.5:
                    continue
                cu, cv = cam.image_from_camera(dc, rc, uc)
                rad = max(1.0, cam.focal_px * (0.16 if end < 0 else 0.22) / dc)
                if w.wetness > 0.3:
                    # The wet road mirrors the lamp: a dim streak from the car's foot toward the
                    # viewer, drawn first so the car hides its top.
                    dg, rg, ug = cam.to_camera(lx, ly, -z)
                    if dg > 0.5:
                        gu, gv = cam.image_from_camera(dg, rg, ug)
                        reach = gv - cv
                        prims.insert(0, (1, (int(round((gu - 0.5) * ONE)),
                                             int(round((gv - 0.5 - 0.1 * reach) * ONE))),
                                         (int(max(0.6, 0.35 * rad) * ONE), int(max(1.0, 0.55 * reach) * ONE)),
                                         smear, None))
                prims.append((1, (int(round((cu - 0.5) * ONE)), int(round((cv - 0.5) * ONE))),
                              (int(rad * ONE), int(0.7 * rad * ONE)), glow, None))
