"""World and vehicle calls beyond spawning and driving: physics control, impulses, constant velocity,
``project_point`` / ``ground_projection`` / ``cast_ray``, environment objects and debug drawing.

The embedded world is flat ground (height 0) with boxes on it: rays meet the ground plane and the
vehicles' and walkers' boxes. ``VehiclePhysicsControl`` (0.9.16 wire layout, below) is kept per
vehicle and returned as applied; its ``max_steer_angle`` of the front wheels, ``mass`` and
``drag_coefficient`` are mapped onto :class:`~carla_agent.sim.embedded.vehicle.VehicleParams`
of a client's vehicle other than the ego (the ego keeps the scenario's model). Forces and
torques are accepted and have no effect; an impulse changes the speed along the heading by
impulse / mass.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Dict, List, Optional

from carla_agent.server import checks, vehicles, walkers
from carla_agent.server.rpc import VOID
from carla_agent.server.vehicle_calls import vehicle_actor

#: CityObjectLabel values used (0.9.16): Roads, Sidewalks, Terrain, Pedestrians, Car.
ROADS, SIDEWALKS, TERRAIN, PEDESTRIANS, CAR = 1, 2, 10, 12, 14
MASS_KG = 1845.0
NONE = [False, [[0.0, 0.0, 0.0], 0]]  # std::pair<bool, LabelledPoint> with no point


def default_physics() -> list:
    """A ``VehiclePhysicsControl`` ``[torque_curve, max_rpm, moi, damping x3, use_gear_autobox,
    gear_switch_time, clutch_strength, final_ratio, forward_gears, mass, drag_coefficient,
    center_of_mass, steering_curve, wheels, use_sweep_wheel_collision]`` of a Lincoln-like car."""
    wheel = lambda steer, y, x: [3.5, 0.25, steer, 0.36, 1500.0, 3000.0 if x < 0 else 0.0,  # noqa: E731
                                 3.0, 17.0, 3000.0, [x, y, 0.3]]
    return [[[0.0, 500.0], [5000.0, 500.0]], 5000.0, 1.0, 0.15, 2.0, 0.35, True, 0.5, 10.0, 4.0,
            [[2.85, 0.15, 0.65], [1.85, 0.15, 0.65], [1.28, 0.15, 0.65], [1.0, 0.15, 0.65]],
            MASS_KG, 0.3, [0.0, 0.0, -0.3], [[0.0, 1.0], [20.0, 0.9], [60.0, 0.8], [120.0, 0.7]],
            [wheel(70.0, -0.8, 1.4), wheel(70.0, 0.8, 1.4), wheel(0.0, -0.8, -1.4), wheel(0.0, 0.8, -1.4)], True]


def get_physics_control(world, actor_id_, *a) -> list:
    actor = vehicle_actor(world, "get_physics_control", actor_id_)
    return getattr(actor, "physics_control", None) or default_physics()


def apply_physics_control(world, actor_id_, control, *a):
    actor = vehicle_actor(world, "apply_physics_control", actor_id_)
    if not isinstance(control, (list, tuple)) or len(control) < 16:
        raise checks.RpcError(f"VehiclePhysicsControl is {control!r:.60}; it must have 17 fields (0.9.16)")
    mass = checks.number(control[11], "VehiclePhysicsControl.mass", 1.0, 1e6, unit=" kg")
    drag = checks.number(control[12], "VehiclePhysicsControl.drag_coefficient", 0.0, 100.0)
    wheels = control[15]
    if not isinstance(wheels, (list, tuple)) or not all(isinstance(w, (list, tuple)) and len(w) >= 10
                                                        for w in wheels):
        raise checks.RpcError("VehiclePhysicsControl.wheels: each wheel needs 10 fields (0.9.16)")
    steer = max([checks.number(w[2], "WheelPhysicsControl.max_steer_angle", 0.0, 90.0, unit=" deg")
                 for w in wheels] or [vehicles.PARAMS.max_steer_deg])
    actor.physics_control = list(control)
    actor.params = replace(vehicles.PARAMS, max_steer_deg=min(steer, 89.0),
                           drag_per_m=vehicles.PARAMS.drag_per_m * drag / 0.3,
                           max_accel_mps2=vehicles.PARAMS.max_accel_mps2 * MASS_KG / mass)
    return VOID


def add_impulse(world, actor_id_, impulse, *a):
    ix, iy, _ = checks.vector3(impulse, "impulse", 1e9, " N s")
    i = checks.integer(actor_id_, "actor id", 0, 2 ** 32 - 1)
    st = vehicles.state_of(world, i)
    if st is None:
        vehicle_actor(world, "add_actor_impulse", i)
        return VOID
    mass = (getattr(world.actors.get(i), "physics_control", None) or default_physics())[11]
    dv = (ix * math.cos(st.yaw_rad) - iy * math.sin(st.yaw_rad)) / mass  # along the heading (CARLA y mirrored)
    _set_speed(world, i, max(st.speed_mps + dv, 0.0))
    return VOID


def accepted(function: str):
    """A call serve accepts and ignores for an existing actor (forces, torques)."""
    def run(world, actor_id_, *a):
        i = checks.integer(actor_id_, "actor id", 0, 2 ** 32 - 1)
        if i not in world.actors and i not in world.traffic:
            raise vehicles.carla_error(function, i)
        return VOID
    return run


def _set_speed(world, i: int, speed: float) -> None:
    if i == world.ego_id:
        world.sim.state = replace(world.sim.state, speed_mps=speed)
    else:
        vehicles.set_speed(world, i, speed)


def enable_constant_velocity(world, actor_id_, velocity, *a):
    actor = vehicle_actor(world, "enable_actor_constant_velocity", actor_id_)
    vx, vy, vz = checks.velocity(velocity, "constant velocity")
    actor.constant_speed_mps = math.sqrt(vx * vx + vy * vy + vz * vz)  # along the heading (a local vector)
    world.constant_velocity[actor.id] = actor.constant_speed_mps
    return VOID


def disable_constant_velocity(world, actor_id_, *a):
    actor = vehicle_actor(world, "disable_actor_constant_velocity", actor_id_)
    world.constant_velocity.pop(actor.id, None)
    return VOID


def hold_constant_velocities(world) -> None:
    """Before each step: every vehicle with a constant velocity moves at it."""
    for i, speed in list(world.constant_velocity.items()):
        if i not in world.actors:
            world.constant_velocity.pop(i)
        else:
            _set_speed(world, i, speed)


def _label_at(world, x: float, y: float) -> int:
    """What the ground is at CARLA-frame ``(x, y)``: road, sidewalk or terrain."""
    road = world.sim.road
    try:
        s, t = road.project(x, -y)
    except Exception:  # noqa: BLE001 - off the road's reach
        return TERRAIN
    if not 0.0 <= s <= road.length_m:
        return TERRAIN
    rx, ry = road.to_world(s, t)
    if math.hypot(float(rx) - x, float(ry) + y) > 0.5:
        return TERRAIN
    lane = road.lane_at(t)
    if lane == 0:
        return TERRAIN
    return SIDEWALKS if road.lane(lane).type == "sidewalk" else ROADS


def _boxes(world) -> List[tuple]:
    """``(cx, cy, yaw rad, half length, half width, height, label)`` of vehicles and walkers, CARLA frame."""
    out = []
    for _, (x, y, yaw, length, width) in vehicles._boxes(world, traffic=True):
        out.append((x, -y, -yaw, 0.5 * length, 0.5 * width, 1.5, CAR))
    for a in world.walkers.values():
        w = a.walker
        if not walkers.in_reach(w):
            continue
        out.append((w.x_m, w.y_m, math.radians(w.yaw_deg), walkers.EXTENT[0], walkers.EXTENT[1],
                    2 * walkers.EXTENT[2], PEDESTRIANS))
    return out


def _hits(world, start, end) -> List[tuple]:
    """``(distance along the ray, [x, y, z], label)`` of every surface between ``start`` and ``end``."""
    (x0, y0, z0), (x1, y1, z1) = start, end
    dx, dy, dz = x1 - x0, y1 - y0, z1 - z0
    length = math.sqrt(dx * dx + dy * dy + dz * dz)
    out = []
    if dz != 0.0:
        t = -z0 / dz
        if 0.0 <= t <= 1.0:
            gx, gy = x0 + t * dx, y0 + t * dy
            out.append((t * length, [gx, gy, 0.0], _label_at(world, gx, gy)))
    for cx, cy, yaw, hl, hw, h, label in _boxes(world):
        c, s = math.cos(yaw), math.sin(yaw)
        p0 = ((x0 - cx) * c + (y0 - cy) * s, -(x0 - cx) * s + (y0 - cy) * c, z0)
        d = (dx * c + dy * s, -dx * s + dy * c, dz)
        lo, hi = 0.0, 1.0
        for k, (a, b) in enumerate(((-hl, hl), (-hw, hw), (0.0, h))):
            if abs(d[k]) < 1e-12:
                if not a <= p0[k] <= b:
                    lo, hi = 1.0, 0.0
                    break
                continue
            t1, t2 = sorted(((a - p0[k]) / d[k], (b - p0[k]) / d[k]))
            lo, hi = max(lo, t1), min(hi, t2)
        if lo <= hi:
            out.append((lo * length, [x0 + lo * dx, y0 + lo * dy, z0 + lo * dz], label))
    return sorted(out, key=lambda h: h[0])


def cast_ray(world, start, end, *a) -> list:
    """Every ``LabelledPoint`` ``[[x, y, z], label]`` on the segment, nearest first."""
    p = checks.vector3(start, "start location", checks.MAX_COORD_M, " m")
    q = checks.vector3(end, "end location", checks.MAX_COORD_M, " m")
    return [[loc, label] for _, loc, label in _hits(world, p, q)]


def project_point(world, location, direction, search_distance, *a) -> list:
    """``[found, LabelledPoint]``: the first point along ``direction`` within ``search_distance``."""
    p = checks.vector3(location, "location", checks.MAX_COORD_M, " m")
    d = checks.vector3(direction, "direction", 1e6)
    dist = checks.number(search_distance, "search_distance", 0.0, 1e6, unit=" m")
    n = math.sqrt(sum(v * v for v in d))
    if n == 0.0:
        return NONE
    q = tuple(p[k] + d[k] / n * dist for k in range(3))
    hits = _hits(world, p, q)
    return [True, [hits[0][1], hits[0][2]]] if hits else NONE


def ground_projection(world, location, search_distance, *a) -> list:
    return project_point(world, location, [0.0, 0.0, -1.0], search_distance)


def handlers(world) -> Dict[str, object]:
    from functools import partial

    world.constant_velocity = {}
    calls = {
        "get_physics_control": get_physics_control, "apply_physics_control": apply_physics_control,
        "add_actor_impulse": add_impulse,
        "enable_actor_constant_velocity": enable_constant_velocity,
        "disable_actor_constant_velocity": disable_constant_velocity,
        "cast_ray": cast_ray, "project_point": project_point, "ground_projection": ground_projection,
    }
    for name in ("add_actor_force", "add_actor_force_at_location", "add_actor_impulse_at_location",
                 "add_actor_torque", "add_actor_angular_impulse", "set_actor_enable_gravity",
                 "set_actor_target_angular_velocity"):
        calls[name] = accepted(name)
    out: Dict[str, object] = {k: partial(v, world) for k, v in calls.items()}
    out.update({
        "get_environment_objects": lambda *a: [],
        "enable_environment_objects": lambda *a: VOID,
        "get_all_level_BBs": lambda *a: [],
        "draw_debug_shape": lambda *a: VOID,
        "get_names_of_all_objects": lambda *a: [],
    })
    return out


def vehicle_params(world, actor_id: int) -> Optional[object]:
    """The mapped :class:`VehicleParams` of a client's vehicle, if its physics control was applied."""
    a = world.actors.get(actor_id)
    return getattr(a, "params", None) if a is not None else None
