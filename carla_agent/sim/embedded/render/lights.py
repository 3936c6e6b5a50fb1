"""Traffic lights of a town for the embedded renderer: poles with an arm and a head, lit in their state.

Every ``traffic_light`` signal of the network (at the stop line of a
signalled junction's arm, on the sidewalk beside the arriving lanes) becomes a
pole, an arm reaching over the arriving lanes, and a head facing their
traffic with three lamps: the one of the light's state (``Red``, ``Yellow``,
``Green``; :mod:`~carla_agent.sim.embedded.roadnet.traffic_lights`) glows,
the others are dark. Seen from behind, the head is a plain box. All of it is
labelled TRAFFIC_LIGHT. Primitives are those of
:func:`~carla_agent.sim.embedded.render.things.draw_things`; functions take the
:class:`~carla_agent.sim.embedded.render.Renderer` ``ren``.
"""

from __future__ import annotations

from typing import Dict, Mapping

import numpy as np

from carla_agent.sim.embedded.render.palette import L_TRAFFIC_LIGHT
from carla_agent.sim.embedded.render.polygons import BX, QX, QZ, Batch
from carla_agent.sim.embedded.render.roadside import ellipse_params
from carla_agent.sim.embedded.render.shading import ambient_at, finish
from carla_agent.sim.embedded.roadnet.model import RoadNetwork
from carla_agent.sim.embedded.roadnet.traffic_lights import light_states

POLE_W_M, HEAD_W_M, HEAD_H_M, LAMP_R_M = 0.2, 0.45, 1.2, 0.15
#: Albedos: the pole and arm, the head's housing, and each lamp dark and lit (lit ones glow).
POLE_RGB = np.array((92.0, 96.0, 100.0))
HOUSING_RGB = np.array((34.0, 36.0, 38.0))
LAMP_DARK = {"Red": (70.0, 30.0, 28.0), "Yellow": (70.0, 58.0, 26.0), "Green": (26.0, 62.0, 40.0)}
LAMP_LIT = {"Red": (255.0, 46.0, 32.0), "Yellow": (255.0, 196.0, 40.0), "Green": (70.0, 255.0, 140.0)}
LAMP_ORDER = ("Red", "Yellow", "Green")  # top to bottom


def build_lights(ren, net: RoadNetwork) -> None:
    """The network's traffic lights as arrays: signal ids, feet, arm vectors, head normals, heights."""
    ids, feet, arms, normals, heights = [], [], [], [], []
    for r in net.roads.values():
        for sig in r.signals:
            if sig.kind != "traffic_light":
                continue
            x, y, h = (float(v[0]) for v in r.road.pose_at(np.array([sig.s_m])))
            c, s = np.cos(h), np.sin(h)
            fx, fy = x - sig.t_m * s, y + sig.t_m * c
            # The arm reaches from the sidewalk toward the road's centre, over the middle of the arriving lanes.
            side = 1.0 if sig.t_m > 0 else -1.0
            reach = max(0.5, abs(sig.t_m) - 0.5 * _arriving_width(r.road, side))
            arms.append((side * s * reach, -side * c * reach))
            # Right lanes (t < 0) arrive along +s: the head faces -s; left lanes arrive along -s.
            normals.append((side * c, side * s))
            ids.append(sig.id)
            feet.append((fx, fy))
            heights.append(max(sig.height_m, 4.0))
    ren._tl_ids = ids
    ren._tl_xy = np.array(feet, np.float64).reshape(-1, 2)
    ren._tl_arm = np.array(arms, np.float64).reshape(-1, 2)
    ren._tl_normal = np.array(normals, np.float64).reshape(-1, 2)
    ren._tl_h = np.array(heights, np.float64)


def _arriving_width(road, side: float) -> float:
    lanes = road.left_lanes if side > 0 else road.right_lanes
    return sum(lane.width_m for lane in lanes if lane.type == "driving")


def gather_lights(ren, b: Batch, items: list, states: Mapping[int, str]) -> None:
    """Primitives of the traffic lights in view, appended to ``items`` as ``(range_m, primitives)``."""
    if len(ren._tl_ids) == 0:
        return
    cam, w = ren.camera, ren.weather
    arm = ren._tl_arm
    hx, hy = ren._tl_xy[:, 0] + arm[:, 0], ren._tl_xy[:, 1] + arm[:, 1]
    mx, my = ren._tl_xy[:, 0] + 0.5 * arm[:, 0], ren._tl_xy[:, 1] + 0.5 * arm[:, 1]
    d, r, _ = cam.to_camera(mx, my, 0.0)
    rad = 0.5 * np.hypot(arm[:, 0], arm[:, 1]) + 1.0
    view = ren._object_view_m
    vis = np.flatnonzero((d > -rad) & (d < view + rad) & (np.abs(r) - rad < (np.maximum(d, 0.0) + rad) *
                                                           ren._tan_half_fov))
    if len(vis) == 0:
        return
    n = len(vis)
    fx, fy = ren._tl_xy[vis, 0], ren._tl_xy[vis, 1]
    hx, hy, H = hx[vis], hy[vis], ren._tl_h[vis]
    ax, ay = arm[vis, 0], arm[vis, 1]
    nx, ny = ren._tl_normal[vis, 0], ren._tl_normal[vis, 1]
    rng_m = np.hypot(d[vis], r[vis])
    fog = w.fog_fraction(rng_m)
    amb = ambient_at(ren, fx, fy)
    sun = ren._sun_rgb[None, :]
    rx, ry = cam._r
    cols = finish(ren, np.concatenate([np.broadcast_to(POLE_RGB, (n, 3)), np.broadcast_to(HOUSING_RGB, (n, 3))]),
                  np.concatenate([amb + 0.5 * sun] * 2), np.concatenate([fog] * 2))
    z_top = H - 0.2
    z_bot = z_top - HEAD_H_M
    tx, ty = -ny, nx  # across the head's face
    ones = np.ones(n)
    pole = b.many(fx[:, None] + (rx * 0.5 * POLE_W_M) * QX[None, :], fy[:, None] + (ry * 0.5 * POLE_W_M) * QX[None, :],
                  H[:, None] * QZ[None, :])
    arm_i = b.many(fx[:, None] + ax[:, None] * BX, fy[:, None] + ay[:, None] * BX,
                   (H - 0.12)[:, None] + 0.12 * QZ[None, :] * ones[:, None])
    head = b.many(hx[:, None] + (tx * 0.5 * HEAD_W_M)[:, None] * QX, hy[:, None] + (ty * 0.5 * HEAD_W_M)[:, None] * QX,
                  z_bot[:, None] + HEAD_H_M * QZ[None, :] * ones[:, None])
    o = cam._o
    front = ((o[0] - hx) * nx + (o[1] - hy) * ny > 0).tolist()
    # The lamps: discs just in front of the face, top to bottom red, yellow, green.
    lamp_z = np.stack([z_top - 0.2 - k * 0.4 for k in range(3)])  # (3, n)
    px, py = hx + 0.03 * nx, hy + 0.03 * ny
    ok, ctr, axes = ellipse_params(ren, np.tile(px, 3), np.tile(py, 3), lamp_z.ravel(),
                                   np.full(3 * n, LAMP_R_M), np.full(3 * n, LAMP_R_M))
    state = [states.get(ren._tl_ids[k], "Red") for k in vis.tolist()]
    lit_light = np.ones((n, 3))
    rng_list = rng_m.tolist()
    for i in range(n):
        prims = [(0, pole + i, cols[i], L_TRAFFIC_LIGHT), (0, arm_i + i, cols[i], L_TRAFFIC_LIGHT),
                 (0, head + i, cols[n + i], L_TRAFFIC_LIGHT)]
        if front[i]:
            for k, name in enumerate(LAMP_ORDER):
                j = k * n + i
                if not ok[j]:
                    continue
                lit = state[i] == name
                albedo = np.array([LAMP_LIT[name] if lit else LAMP_DARK[name]])
                light = lit_light[i:i + 1] if lit else (amb[i:i + 1] + 0.3 * sun)
                c = finish(ren, albedo, light, fog[i:i + 1] * (0.6 if lit else 1.0))[0]
                prims.append((1, ctr[j], axes[j], c, None))
        items.append((rng_list[i], prims))


def light_states_at(ren, time_s: float) -> Dict[int, str]:
    """Signal id -> state of every light at ``time_s`` (the town's fixed timer)."""
    return light_states(ren._town.network, time_s, ren._town.cycle_s)
