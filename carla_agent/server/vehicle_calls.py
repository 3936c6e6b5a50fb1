"""The vehicle calls of the served world: control, light state, physics, autopilot and target speed.

Each call is a function of the :class:`~carla_agent.server.world_service.WorldService` ``world``
(its lock held), with the call's arguments as :mod:`rpc` passes them; an id that is not a vehicle
gets CARLA's own error text (:func:`carla_agent.server.vehicles.carla_error`).
"""

from __future__ import annotations

import math
from dataclasses import replace

from carla_agent.server import checks, props, vehicles
from carla_agent.server.actors import Actor, actor_id
from carla_agent.server.rpc import VOID, RpcError
from carla_agent.server.vehicles import live_traffic


def get_vehicle_light_states(world, *a) -> list:
    return vehicles.light_states(world) + [[t.id, 0] for t in live_traffic(world)]


def vehicle_actor(world, function: str, actor_id_) -> Actor:
    """The client's vehicle ``actor_id_`` (the ego or another), or CARLA's error for ``function``."""
    i = actor_id(actor_id_)
    actor = world.actors.get(i)
    if actor is None:
        raise vehicles.carla_error(function, i)
    if not actor.type_id.startswith("vehicle."):
        raise vehicles.carla_error(function, i, "Actor is not a vehicle")
    return actor


def set_vehicle_light_state(world, actor_id_, light_state, *a):
    """``light_state`` is ``rpc::VehicleLightState`` (``[flags]`` on the wire) or the bare flags."""
    if isinstance(light_state, (list, tuple)) and len(light_state) == 1:
        light_state = light_state[0]
    vehicle_actor(world, "set_vehicle_light_state", actor_id_).light_state = checks.integer(
        light_state, "VehicleLightState", 0, 2 ** 32 - 1)
    return VOID


def get_vehicle_light_state(world, actor_id_, *a) -> list:
    """``rpc::VehicleLightState``: ``[flags]``."""
    if actor_id(actor_id_) in world.traffic:
        return [0]
    return [int(vehicle_actor(world, "get_vehicle_light_state", actor_id_).light_state)]


def set_actor_simulate_physics(world, actor_id_, enabled, *a):
    """Off: the vehicle stays where it is put (CARLA's TM turns it off for hybrid physics). A prop
    takes either and never moves (ScenarioRunner turns its props' physics off)."""
    i = actor_id(actor_id_)
    if i in world.traffic or i in world.walkers or props.is_prop(getattr(world.actors.get(i), "type_id", "")):
        return VOID
    actor = vehicle_actor(world, "set_actor_simulate_physics", actor_id_)
    actor.physics = checks.flag(enabled, "enabled")
    if not actor.physics and actor.state is not None:
        actor.state = replace(actor.state, speed_mps=0.0)
    return VOID


def set_actor_autopilot(world, actor_id_, enabled=True, *a):
    """The server-side autopilot flag (CARLA's Traffic Manager runs in the client): a vehicle's."""
    if actor_id(actor_id_) not in world.traffic:
        vehicle_actor(world, "set_actor_autopilot", actor_id_)
    return VOID


def set_actor_target_velocity(world, actor_id_, velocity, *a):
    """A vehicle's speed becomes the vector's length (m/s; the embedded car moves along its heading)."""
    vx, vy, vz = checks.velocity(velocity, "target velocity")
    speed, i = math.sqrt(vx * vx + vy * vy + vz * vz), actor_id(actor_id_)
    if i == world.ego_id:
        world.sim.state = replace(world.sim.state, speed_mps=speed)
    elif not vehicles.set_speed(world, i, speed) and i not in world.actors and i not in world.traffic:
        raise vehicles.carla_error("set_actor_target_velocity", i)
    return VOID


def apply_control_to_vehicle(world, actor_id_, c, *a):
    i = actor_id(actor_id_)
    if i in world.traffic:
        raise RpcError(f"vehicle {actor_id_} is driven by the embedded scenario and takes no control")
    vehicle_actor(world, "apply_control_to_vehicle", i)
    raw = checks.vehicle_control(c)
    if i == world.ego_id:
        world.control = vehicles.to_control(raw)
        world.raw_control = raw
    else:
        vehicles.apply_control(world, i, raw)
    return VOID


__all__ = ["apply_control_to_vehicle", "vehicle_actor", "get_vehicle_light_state", "get_vehicle_light_states",
           "set_actor_autopilot", "set_actor_simulate_physics", "set_actor_target_velocity",
           "set_vehicle_light_state"]
