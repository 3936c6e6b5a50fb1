"""The vehicles a client spawns besides the ego: as many as the map has spawn points, each one the
embedded vehicle model (:func:`~carla_agent.sim.embedded.vehicle.step_vehicle`) under its own
sticky control, and the collisions between any two vehicles. Static props (:mod:`props`) live here
too, as vehicles that never move, with their own boxes; debris is in no collision.

The ego (``world.ego_id``) is the vehicle the embedded simulator tracks on its road or town
corridor (its state is ``world.sim.state``; its cameras draw from it). Every other vehicle is a
:class:`VehicleActor` in ``world.vehicles`` whose :class:`VehicleState` lives here, in OpenDRIVE's
frame (the wire mirrors y and yaw). Attaching a camera to one of them makes it the ego
(``actors.make_ego``): the camera then draws from it. Per tick the cost is O(n): one bicycle step per
vehicle and a uniform grid for the collision pairs.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Dict, Iterable, List, Optional, Tuple

from carla_agent.control import VehicleControl
from carla_agent.server import checks, props
from carla_agent.server.rpc import VOID, RpcError
from carla_agent.sim.embedded.collision import boxes_overlap
from carla_agent.sim.embedded.vehicle import VehicleParams, VehicleState, step_vehicle, stopped

#: Cell size of the collision grid, metres (more than a car's diagonal: neighbours are in the 3x3 cells).
GRID_M = 8.0
#: The fewest vehicles a map without many spawn points hosts.
MIN_VEHICLES = 12
PARAMS = VehicleParams()
ZERO_CONTROL = [0.0, 0.0, 0.0, False, False, False, 0]


def carla_error(function: str, actor_id, what: str = "Actor could not be found in the registry") -> RpcError:
    """CARLA 0.9.16's ``RespondError`` text: ``Responding error from function F: WHAT.  Actor Id: N``."""
    return RpcError(f"Responding error from function {function}: {what}.  Actor Id: {actor_id}")


def new_state(x_m: float, y_carla_m: float, yaw_carla_deg: float) -> VehicleState:
    """A standing vehicle at a CARLA-frame pose (metres, degrees), as an OpenDRIVE-frame state."""
    return VehicleState(float(x_m), -float(y_carla_m), -math.radians(float(yaw_carla_deg)), 0.0)


def max_vehicles(world) -> int:
    """As many vehicles as the map has spawn points (at least ``MIN_VEHICLES``)."""
    from carla_agent.server import town_world

    n = len(world.sim.town.spawn_points) if town_world.is_town(world) else 0
    return max(n, MIN_VEHICLES)


def check_room(world, x_m: float, y_carla_m: float, yaw_carla_deg: float, size_m=None) -> None:
    """CARLA's refusal of a spawn that would overlap a vehicle or prop, or one vehicle too many;
    ``size_m``: ``(length, width)`` of a prop (its count is not limited), None for a vehicle."""
    count = sum(not props.is_prop(v.type_id) for v in world.vehicles.values()) + (world.ego_id is not None)
    if size_m is None and count >= max_vehicles(world):
        raise RpcError(f"Spawn failed: the embedded server hosts at most {max_vehicles(world)} vehicles "
                       "(the map's spawn points); destroy one first")
    length, width = size_m or (PARAMS.length_m, PARAMS.width_m)
    box = (float(x_m), -float(y_carla_m), -math.radians(float(yaw_carla_deg)), length, width)
    for _, other in _boxes(world, traffic=world.ego_id is not None):  # the ego's spawn restarts the traffic
        if boxes_overlap(box, other):
            raise RpcError("Spawn failed because of collision at spawn position")


def state_of(world, actor_id: int) -> Optional[VehicleState]:
    """The OpenDRIVE-frame state of vehicle ``actor_id`` (the ego's or another's), None if none."""
    if actor_id == world.ego_id:
        return world.sim.state
    v = world.vehicles.get(actor_id)
    return None if v is None else v.state


def step_all(world, dt_s: float) -> None:
    """One bicycle step of every vehicle but the ego (which the simulator steps), each under its
    own sticky control; a vehicle with physics off stays where it was put."""
    for v in world.vehicles.values():
        if v.physics and not props.is_prop(v.type_id):
            v.state = step_vehicle(v.state, v.control, getattr(v, "params", None) or PARAMS, dt_s)


def _boxes(world, traffic: bool = False) -> Iterable[Tuple[int, tuple]]:
    """``(actor id, (x, y, yaw, length, width))`` of the ego, the other vehicles, the solid props
    (:mod:`props`) and, with ``traffic``, the scenario's vehicles on the map (OpenDRIVE frame)."""
    if world.ego_id is not None:
        st = world.sim.state
        yield world.ego_id, (st.x_m, st.y_m, st.yaw_rad, PARAMS.length_m, PARAMS.width_m)
    for v in world.vehicles.values():
        if props.solid(v):
            st = v.state
            length, width, _ = props.box_size(v, PARAMS.length_m, PARAMS.width_m, PARAMS.height_m)
            yield v.id, (st.x_m, st.y_m, st.yaw_rad, length, width)
    if traffic:
        road = world.sim.road
        for a in live_traffic(world):
            b = a.vehicle.box(road)
            yield a.id, (b.x_m, b.y_m, b.yaw_rad, b.length_m, b.width_m)


def live_traffic(world) -> list:
    """The scenario's traffic actors on the map now (a vehicle that drove off either end is gone, as
    CARLA destroys it; one that has not yet driven onto the map is not there yet)."""
    end = world.sim.road.length_m + 5.0
    return [a for a in world.traffic.values() if a.vehicle.active and -5.0 <= a.vehicle.s_m <= end]


def collisions(world) -> List[Tuple[int, int]]:
    """The new contacts of this tick, ``(a, b)`` actor ids, each pair once, where at least one of
    the two is a client's vehicle other than the ego (the simulator finds the ego's own contacts
    with the scenario's traffic). Vehicles in a new contact stop, as the ego does. O(n): a uniform
    grid of ``GRID_M`` cells; only boxes in neighbouring cells are tested."""
    if not world.vehicles:
        world.contacts = set()
        return []
    grid: Dict[Tuple[int, int], List[Tuple[int, tuple]]] = {}
    for item in _boxes(world, traffic=True):
        box = item[1]
        grid.setdefault((int(math.floor(box[0] / GRID_M)), int(math.floor(box[1] / GRID_M))), []).append(item)
    touching = set()
    for (cx, cy), items in grid.items():
        near = [it for dx in (-1, 0, 1) for dy in (-1, 0, 1) for it in grid.get((cx + dx, cy + dy), ())]
        for a, box_a in items:
            for b, box_b in near:
                if a < b and (a in world.vehicles or b in world.vehicles) and boxes_overlap(box_a, box_b):
                    touching.add((a, b))
    new = sorted(touching - world.contacts)
    world.contacts = touching
    for pair in new:
        for i in pair:
            if i in world.vehicles:
                world.vehicles[i].state = stopped(world.vehicles[i].state)
            elif i == world.ego_id:
                world.sim.state = stopped(world.sim.state)
    return new


def apply_control(world, actor_id: int, raw: list) -> bool:
    """Set the sticky control of a client's vehicle other than the ego; False if it is not one."""
    v = world.vehicles.get(actor_id)
    if v is None:
        return False
    v.control, v.raw_control = to_control(raw), raw
    return True


def to_control(raw: list) -> VehicleControl:
    throttle, steer, brake, hand_brake, reverse = raw[:5]
    return VehicleControl(steer=min(max(steer, -1.0), 1.0), throttle=min(max(throttle, 0.0), 1.0),
                          brake=min(max(brake, 0.0), 1.0), hand_brake=hand_brake, reverse=reverse)


def teleport(world, actor_id: int, x_m: float, y_carla_m: float, yaw_carla_deg: float) -> bool:
    """Put a client's vehicle (not the ego) at a CARLA-frame pose, keeping its speed (as CARLA)."""
    v = world.vehicles.get(actor_id)
    if v is None:
        return False
    v.state = replace(new_state(x_m, y_carla_m, yaw_carla_deg), speed_mps=v.state.speed_mps)
    return True


def set_speed(world, actor_id: int, speed_mps: float) -> bool:
    v = world.vehicles.get(actor_id)
    if v is None:
        return False
    v.state = replace(v.state, speed_mps=float(speed_mps))
    return True


def light_states(world) -> List[list]:
    """``[[id, VehicleLightState flags], ...]`` of every client vehicle (the ego's included)."""
    out = []
    for actor in world.actors.values():
        if actor.type_id.startswith("vehicle."):
            out.append([actor.id, int(getattr(actor, "light_state", 0))])
    return out


def boxes_in_view(world, range_m: float) -> list:
    """The other client vehicles within ``range_m`` of the ego, as the renderer's ``VehicleBox`` es."""
    from carla_agent.sim.embedded.world import VehicleBox

    ego = world.sim.state
    out = []
    for v in world.vehicles.values():
        st = v.state
        if (st.x_m - ego.x_m) ** 2 + (st.y_m - ego.y_m) ** 2 > range_m * range_m:
            continue
        color = props.color(v) if props.is_prop(v.type_id) else body_color(v)
        length, width, height = props.box_size(v, PARAMS.length_m, PARAMS.width_m, PARAMS.height_m)
        out.append(VehicleBox(st.x_m, st.y_m, st.yaw_rad, length, width, height,
                              color, world.sim.s,
                              kind=v.type_id if props.is_prop(v.type_id) else "vehicle.car"))
    return out


#: A vehicle's colour when its blueprint's ``color`` attribute gives none.
DEFAULT_COLOR = (200, 200, 200)


def body_color(actor) -> tuple:
    """The RGB of a vehicle actor's ``color`` attribute (``"R,G,B"``), or :data:`DEFAULT_COLOR`."""
    try:
        color = tuple(int(c) for c in (actor.attr.get("color", "") if actor is not None else "").split(","))[:3]
    except ValueError:
        color = ()
    return color if len(color) == 3 else DEFAULT_COLOR


def set_target_angular_velocity(world, actor_id, velocity, *a):
    """``actor.set_target_angular_velocity``: only a stop (0, 0, 0) is taken, which ScenarioRunner's
    ``ActorTransformSetter`` sends when it places a car; the embedded vehicles turn by their steering
    alone, so any other value is refused by name."""
    w = checks.velocity(velocity, "target angular velocity")
    if any(abs(c) > 1e-6 for c in w):
        raise RpcError(f"the embedded server cannot set an angular velocity ({w}) on actor {actor_id}: its "
                       "vehicles turn by their steering only; only (0, 0, 0) is taken")
    return VOID
