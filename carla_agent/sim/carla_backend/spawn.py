"""Spawning on a CARLA server: the ego at the scenario's spawn point, Traffic Manager NPCs,
and their lights.

Every actor spawned is recorded in the :class:`~carla_agent.sim.carla_backend.session.Session`,
which destroys it when the session ends.
"""

from __future__ import annotations

import logging
from typing import Sequence, Tuple

import numpy as np

from carla_agent.errors import BackendError, ScenarioError
from carla_agent.sim.carla_backend.client import import_carla
from carla_agent.sim.carla_backend.session import ROLE_PREFIX, Session
from carla_agent.sim.carla_backend.spec import CarlaSpec, TrafficManagerSpec
from carla_agent.sim.carla_backend.truth import lanes_same_way

log = logging.getLogger(__name__)


def spawn_ego(session: Session, scenario, spec: CarlaSpec,
              transform_field: str = "carla.spawn_transform") -> Tuple[object, int, object, list]:
    """The ego (``role_name`` hero) at ``spec``'s spawn transform or first free spawn point.

    ``transform_field`` names where the spawn transform came from, for the error when its spot is taken.

    Returns ``(ego, spawn_index, spawn_transform, spawn_points)``: the index is -1 for
    an explicit ``carla.spawn_transform``; ``spawn_points`` are the map's
    (``map.get_spawn_points()``). The ego is recorded in ``session``.
    """
    carla = import_carla()
    pattern = spec.blueprint or scenario.ego.blueprint
    blueprints = sorted(session.world.get_blueprint_library().filter(pattern), key=lambda b: b.id)
    if not blueprints:
        raise ScenarioError(f"{scenario.source}: field 'carla.blueprint' (or 'ego.blueprint'): no blueprint "
                            f"matches {pattern!r} on this server; e.g. vehicle.lincoln.mkz_2020, vehicle.tesla.model3")
    bp = blueprints[0]
    bp.set_attribute("role_name", "hero")
    spawn_points = session.map.get_spawn_points()
    if spec.spawn_transform is not None:
        t = spec.spawn_transform
        transform = carla.Transform(carla.Location(x=t.x_m, y=t.y_m, z=t.z_m),
                                    carla.Rotation(pitch=t.pitch_deg, yaw=t.yaw_deg, roll=t.roll_deg))
        ego = session.world.try_spawn_actor(bp, transform)
        if ego is None:
            raise BackendError(f"{scenario.source}: field {transform_field!r}: the spot is occupied or "
                               "collides with the map; move it or use carla.spawn_point")
        session.vehicles.append(ego)
        session.ego = ego
        return ego, -1, transform, spawn_points
    points = spawn_points
    if not points:
        raise BackendError("the map has no spawn points; give carla.spawn_transform")
    first = spec.spawn_point if spec.spawn_point is not None else 0
    if first >= len(points):
        raise ScenarioError(f"{scenario.source}: field 'carla.spawn_point': {first} is out of range; "
                            f"this map has spawn points 0..{len(points) - 1}")
    for k in range(len(points)):
        index = (first + k) % len(points)
        if spec.spawn_min_lanes > 1 and lanes_same_way(session.map, points[index].location) < spec.spawn_min_lanes:
            continue
        ego = session.world.try_spawn_actor(bp, points[index])
        if ego is not None:
            session.vehicles.append(ego)
            session.ego = ego
            if k:
                log.info("spawn point %d was occupied; spawned at %d", first, index)
            return ego, index, points[index], spawn_points
    if spec.spawn_min_lanes > 1:
        raise BackendError(f"no free spawn point on a road with {spec.spawn_min_lanes}+ lanes in one direction; "
                           "lower carla.spawn_min_lanes or pick another map")
    raise BackendError(f"every one of the {len(points)} spawn points is occupied; remove some vehicles")


def spawn_traffic(session: Session, tm_spec: TrafficManagerSpec, spawn_points: Sequence, ego_index: int,
                  rng: np.random.Generator) -> None:
    """``tm_spec.vehicles`` NPCs on the Traffic Manager's autopilot, at free spawn points other than
    the ego's (``ego_index``), in an order drawn from ``rng``. Recorded in ``session``."""
    if tm_spec.vehicles <= 0:
        return
    bps = sorted(session.world.get_blueprint_library().filter(tm_spec.vehicle_filter), key=lambda b: b.id)
    bps = [b for b in bps if not b.has_attribute("number_of_wheels")
           or b.get_attribute("number_of_wheels").as_int() == 4] or bps
    if not bps:
        raise BackendError(f"no blueprint matches carla.traffic_manager.vehicle_filter {tm_spec.vehicle_filter!r}")
    order = [int(i) for i in rng.permutation(len(spawn_points)) if int(i) != ego_index]
    spawned = 0
    for index in order:
        if spawned >= tm_spec.vehicles:
            break
        bp = bps[int(rng.integers(len(bps)))]
        bp.set_attribute("role_name", ROLE_PREFIX + "autopilot")  # a later run knows them as ours
        npc = session.world.try_spawn_actor(bp, spawn_points[index])
        if npc is None:
            continue
        session.vehicles.insert(0, npc)  # destroyed last-in first-out: the ego first, then the NPCs
        npc.set_autopilot(True, session.tm.get_port())
        spawned += 1
    if spawned < tm_spec.vehicles:
        log.warning("spawned %d of %d NPC vehicles (spawn points occupied)", spawned, tm_spec.vehicles)


def switch_lights(session: Session, state) -> None:
    """Set every vehicle of ``session`` (ego and NPCs) to the ``carla.VehicleLightState`` ``state``
    (:func:`~carla_agent.sim.carla_backend.weather.vehicle_lights`); CARLA switches none on by itself."""
    for vehicle in session.vehicles:
        vehicle.set_light_state(state)
    log.info("headlights on for %d vehicles", len(session.vehicles))
