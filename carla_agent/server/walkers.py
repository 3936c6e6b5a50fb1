"""Walkers: ``walker.pedestrian.*`` actors, their ``controller.ai.walker`` and the walking itself.

As in CARLA 0.9.16, the AI of a walker runs in the client: ``controller.start()`` adds the walker to
the wheel's Recast/Detour crowd on the navigation mesh the server hands out (:mod:`navmesh`:
sidewalks, crosswalks, junction corners), and every tick the wheel sends each walker's new pose as an
``ApplyWalkerState`` command. The server keeps each walker's pose, speed and control: a walker under
``apply_control`` (``WalkerControl``: a direction, a speed, jump) walks that way each tick, one under
its AI controller is where the crowd put it. Walkers are drawn by the cameras as upright boxes
(semantic tag Pedestrian) and hit by vehicles (a collision event for the vehicle's sensor).
Poses are CARLA's frame (metres, degrees).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from carla_agent.server import checks, navmesh
from carla_agent.server.rpc import VOID, RpcError
from carla_agent.server.wire import A_BOOL, A_FLOAT, A_INT, A_STRING, attr

#: The pedestrian blueprints served: ``(number, gender, age)``; speeds are CARLA's recommended
#: values (still, walking, running), m/s.
PEDESTRIANS = tuple((k, "female" if k % 2 == 0 else "male", "child" if k in (9, 10, 11) else "adult")
                    for k in range(1, 13))
ADULT_SPEEDS, CHILD_SPEEDS = ("0.0", "1.4", "3.0"), ("0.0", "0.9", "1.8")
EXTENT = (0.187, 0.187, 0.92)  # a walker's bounding-box half sizes, metres (CARLA's adult)
#: A walker put more than this below the ground stays there (hidden: the Leaderboard keeps its
#: crossing pedestrians 50-200 m under the ego until their scenario starts); one put nearer the
#: ground stands on it (its centre EXTENT[2] up).
HIDDEN_BELOW_M = 5.0
#: Walkers whose box reaches below this height (m) meet the vehicles, are drawn and hit by rays.
VEHICLE_TOP_M = 4.0
CONTROLLER = "controller.ai.walker"
COLOR = (230, 120, 40)  # drawn as a box of this colour


def blueprints(uid0: int) -> list:
    defs = []
    for k, (n, gender, age) in enumerate(PEDESTRIANS):
        speeds = CHILD_SPEEDS if age == "child" else ADULT_SPEEDS
        defs.append([uid0 + k, f"walker.pedestrian.{n:04d}", "walker,pedestrian," + f"{n:04d}", [
            attr("role_name", A_STRING, "pedestrian", (), True),
            attr("is_invincible", A_BOOL, "true", ("true", "false"), True),
            attr("speed", A_FLOAT, speeds[1], speeds, True),
            attr("gender", A_STRING, gender),
            attr("age", A_STRING, age),
            attr("generation", A_INT, "2"),
            attr("can_use_wheelchair", A_BOOL, "false"),
            attr("use_wheelchair", A_BOOL, "false", ("false",), True),
        ]])
    defs.append([uid0 + len(PEDESTRIANS), CONTROLLER, "controller,ai,walker",
                 [attr("role_name", A_STRING, "", (), True)]])
    return defs


@dataclass
class WalkerState:
    """Pose (CARLA frame: m, deg), speed (m/s) and the last ``WalkerControl``."""

    x_m: float
    y_m: float
    z_m: float
    yaw_deg: float
    speed_mps: float = 0.0
    direction: Tuple[float, float, float] = (1.0, 0.0, 0.0)
    control_speed_mps: float = 0.0
    jump: bool = False
    controlled: bool = False  # by apply_control (else by ApplyWalkerState or standing)
    velocity: Tuple[float, float, float] = field(default=(0.0, 0.0, 0.0))


def is_walker(type_id: str) -> bool:
    return type_id.startswith("walker.")


def check_blueprint(type_id: str, attrs: dict) -> None:
    names = [f"walker.pedestrian.{n:04d}" for n, _, _ in PEDESTRIANS]
    if type_id not in names:
        raise RpcError(f"unknown walker blueprint {type_id!r}; serve has {names[0]} .. {names[-1]}")
    speed = attrs.get("speed", "1.4")
    try:
        ok = 0.0 <= float(speed) <= 10.0
    except ValueError:
        ok = False
    if not ok:
        raise RpcError(f"{type_id}: attribute 'speed' is {speed!r:.30}; it must be a number of m/s in [0, 10]")
    if attrs.get("is_invincible", "true") not in ("true", "false", "True", "False", "1", "0"):
        raise RpcError(f"{type_id}: attribute 'is_invincible' is {attrs['is_invincible']!r:.30}; "
                       "it must be true or false")


def spawn(world, actor, transform) -> None:
    """Put walker ``actor`` at the spawn ``transform`` (its feet on the ground: z at least its half
    height), or check that a ``controller.ai.walker`` is attached to a walker."""
    (x, y, z), (_, yaw, _) = checks.transform(transform, "spawn transform")
    if actor.type_id == CONTROLLER:
        if actor.parent not in world.walkers:
            raise RpcError(f"{CONTROLLER} must be spawned attached to a walker (attach_to=walker); "
                           f"actor {actor.parent} is not one")
        return
    check_blueprint(actor.type_id, actor.attr)
    actor.extent = EXTENT
    actor.walker = WalkerState(x, y, stand_z(z), yaw)
    world.walkers[actor.id] = actor


def stand_z(z_m: float) -> float:
    """The centre height (m) of a walker put at ``z_m``: on the ground, or hidden far below it."""
    z_m = float(z_m)
    return z_m if z_m < -HIDDEN_BELOW_M else max(z_m, EXTENT[2])


def in_reach(w) -> bool:
    """Whether walker state ``w`` is where vehicles, cameras and rays meet it (not hidden below the
    ground or high above it)."""
    return w.z_m + EXTENT[2] > 0.0 and w.z_m - EXTENT[2] < VEHICLE_TOP_M


def _walker(world, function: str, actor_id):
    from carla_agent.server.vehicles import carla_error

    a = world.walkers.get(actor_id)
    if a is None:
        if actor_id in world.actors:
            raise carla_error(function, actor_id, "Actor is not a walker")
        raise carla_error(function, actor_id)
    return a


def walker_control(c) -> Tuple[Tuple[float, float, float], float, bool]:
    """``WalkerControl`` ``[[dx, dy, dz], speed, jump]`` checked."""
    if not isinstance(c, (list, tuple)) or len(c) < 3:
        raise RpcError(f"WalkerControl is {c!r:.60}; it must be [direction, speed, jump]")
    d = checks.vector3(c[0], "WalkerControl.direction", 1e3)
    speed = checks.number(c[1], "WalkerControl.speed", 0.0, 100.0, unit=" m/s")
    return d, speed, checks.flag(c[2], "WalkerControl.jump")


def apply_control_to_walker(world, actor_id, control, *a):
    w = _walker(world, "apply_control_to_walker", checks.integer(actor_id, "actor id", 0, 2 ** 32 - 1)).walker
    (dx, dy, dz), speed, jump = walker_control(control)
    n = math.hypot(dx, dy)
    w.direction = (dx / n, dy / n, 0.0) if n > 1e-6 else w.direction
    w.control_speed_mps, w.jump, w.controlled = speed, jump, True
    return VOID


def apply_walker_state(world, actor_id, transform, speed, *a):
    """``ApplyWalkerState``: the pose the client's crowd gives a walker, and its speed."""
    w = _walker(world, "apply_walker_state", actor_id).walker
    (x, y, z), (_, yaw, _) = checks.transform(transform)
    speed = checks.number(speed, "speed", 0.0, 100.0, unit=" m/s")
    dt = max(float(world.sim.scenario.dt_s), 1e-3)
    w.velocity = ((x - w.x_m) / dt, (y - w.y_m) / dt, 0.0) if speed > 0 else (0.0, 0.0, 0.0)
    w.x_m, w.y_m, w.z_m, w.yaw_deg, w.speed_mps, w.controlled = x, y, stand_z(z), yaw, speed, False
    return VOID


def step_all(world, dt_s: float) -> None:
    """Walkers under ``apply_control`` walk their direction at their speed for ``dt_s`` seconds."""
    for a in world.walkers.values():
        w = a.walker
        if not w.controlled:
            continue
        v = w.control_speed_mps
        w.velocity = (w.direction[0] * v, w.direction[1] * v, 0.0)
        w.x_m += w.velocity[0] * dt_s
        w.y_m += w.velocity[1] * dt_s
        w.speed_mps = v
        if v > 0:
            w.yaw_deg = math.degrees(math.atan2(w.direction[1], w.direction[0]))


def teleport(world, actor_id: int, x: float, y: float, z: float, yaw: float) -> bool:
    a = world.walkers.get(actor_id)
    if a is None:
        return False
    a.walker.x_m, a.walker.y_m, a.walker.z_m, a.walker.yaw_deg = x, y, stand_z(z), yaw
    return True


def boxes_in_view(world, range_m: float) -> list:
    """The walkers within ``range_m`` of the ego as the renderer's ``VehicleBox`` es (OpenDRIVE frame)."""
    from carla_agent.sim.embedded.world import VehicleBox

    ego = world.sim.state
    out = []
    for a in world.walkers.values():
        w = a.walker
        if not in_reach(w) or (w.x_m - ego.x_m) ** 2 + (-w.y_m - ego.y_m) ** 2 > range_m * range_m:
            continue
        out.append(VehicleBox(w.x_m, -w.y_m, -math.radians(w.yaw_deg), 2 * EXTENT[0], 2 * EXTENT[1],
                              2 * EXTENT[2], COLOR, world.sim.s, kind="walker.pedestrian"))
    return out


def hits(world) -> List[Tuple[int, int]]:
    """New contacts ``(vehicle id, walker id)`` between a client's vehicle and a walker this tick."""
    from carla_agent.server.vehicles import _boxes
    from carla_agent.sim.embedded.collision import boxes_overlap

    if not world.walkers:
        world.walker_contacts = set()
        return []
    touching = set()
    for vid, box in _boxes(world):
        for wid, a in world.walkers.items():
            w = a.walker
            if abs(w.x_m - box[0]) > 4 or abs(-w.y_m - box[1]) > 4 or not in_reach(w):
                continue
            if boxes_overlap(box, (w.x_m, -w.y_m, -math.radians(w.yaw_deg), 2 * EXTENT[0], 2 * EXTENT[1])):
                touching.add((vid, wid))
    new = sorted(touching - world.walker_contacts)
    world.walker_contacts = touching
    return new


def get_required_files(world, folder="", download=True, *a) -> List[str]:
    """``Nav``: the navigation mesh's file name (the client then asks ``request_file``); none for a
    generated OpenDRIVE world with ``enable_pedestrian_navigation`` off (as CARLA builds none)."""
    if not world.map_parameters.enable_pedestrian_navigation:
        return []
    if isinstance(folder, str) and folder.strip("/").lower() == "nav":
        return [navmesh.for_world(world)[0]]
    return []


def request_file(world, name, *a) -> bytes:
    nav_name, data = navmesh.for_world(world)
    if name != nav_name:
        raise RpcError(f"request_file: no file {name!r:.80}; serve has only {nav_name}")
    return data


def state_of(world, actor_id: int) -> Optional[WalkerState]:
    a = world.walkers.get(actor_id)
    return None if a is None else a.walker
