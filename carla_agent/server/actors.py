"""The actor calls of the served world (spawn, destroy, look-ups, transforms, control), the blueprint
library it offers and the actors it serves: the ego, its sensors and the scenario's traffic.

Each call is a function of the :class:`~carla_agent.server.world_service.WorldService` ``world``
(its lock held), with the call's arguments as :mod:`rpc` passes them. Poses are in CARLA's frame:
y and yaw are the embedded world's mirrored (``y_carla = -y``, ``yaw_carla = -yaw`` in degrees).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Optional

import numpy as np

from carla_agent.control import VehicleControl
from carla_agent.server import catalogue, checks, props, town_world, traffic_lights, vehicles, walkers
from carla_agent.server import sensors as sensor_types
from carla_agent.server.rpc import VOID, RpcError
from carla_agent.server.vehicles import live_traffic  # noqa: F401 - also served from here
from carla_agent.server.wire import A_BOOL, A_FLOAT, A_INT, A_RGB, A_STRING, actor_wire, attr

VEHICLE_EXTENT = catalogue.DEFAULT_EXTENT  # bounding-box half sizes, metres (each blueprint has its own)
#: Actor id of the scenario's k-th traffic vehicle (``EmbeddedSimulator.traffic[k]``) in episode 1,
#: far above the ids of spawned actors (which count up from 101); episode e uses
#: ``TRAFFIC_ID0 + TRAFFIC_IDS_PER_EPISODE * (e - 1) + k``: new ids after ``load_world``, as CARLA's.
TRAFFIC_ID0 = 1_000_000
TRAFFIC_IDS_PER_EPISODE = 10_000
#: The id a collision event gives a static thing of the map (tree, pole, sign...): CARLA reports
#: every one with id 0 (they are not actors; ``other_actor.type_id`` still says ``static.<kind>``).
STATIC_ID = 0
#: The recorder's ids of static things hit, ``STATIC_ID0 + k`` for the tick's k-th collision.
STATIC_ID0 = 90_000


def blueprints() -> list:
    """The blueprint library: ``ActorDefinition`` ``[uid, id, tags, attributes]`` of each servable type."""
    defs = catalogue.definitions(1)  # CARLA 0.9.16's vehicles
    uid = len(defs) + 1
    for name in ("sensor.camera.rgb", "sensor.camera.semantic_segmentation"):
        defs.append([uid, name, "sensor,camera," + name.split(".")[-1], [
            attr("role_name", A_STRING, "front", (), True),
            attr("image_size_x", A_INT, "800", (), True),
            attr("image_size_y", A_INT, "600", (), True),
            attr("fov", A_FLOAT, "90", (), True),
            attr("sensor_tick", A_FLOAT, "0.0", (), True),
            attr("gamma", A_FLOAT, "2.2", (), True),
            attr("enable_postprocess_effects", A_BOOL, "true", (), True),
            attr("lens_circle_falloff", A_FLOAT, "5.0", (), True),
            attr("lens_circle_multiplier", A_FLOAT, "0.0", (), True),
            attr("lens_k", A_FLOAT, "-1.0", (), True),
            attr("lens_kcube", A_FLOAT, "0.0", (), True),
            attr("lens_x_size", A_FLOAT, "0.08", (), True),
            attr("lens_y_size", A_FLOAT, "0.08", (), True),
        ] + (catalogue.rgb_camera_extra() if name == "sensor.camera.rgb" else [])])
        uid += 1
    for name in ("sensor.other.collision", "sensor.other.lane_invasion"):
        defs.append([uid, name, "sensor,other," + name.split(".")[-1], [
            attr("role_name", A_STRING, "", (), True)]])
        uid += 1
    defs += sensor_types.blueprints(uid)  # depth, lidar, radar, GNSS, IMU, ...
    defs += walkers.blueprints(max(d[0] for d in defs) + 1)
    return defs + props.definitions(max(d[0] for d in defs) + 1)


class Actor:
    """A served actor. ``mount``: ((x, y, z) m, (pitch, yaw, roll) deg) relative to the parent, in
    CARLA's frame; ``extent``: bounding-box half sizes in metres (vehicles); ``vehicle``: the
    embedded ``TrafficVehicle`` behind a traffic actor (None for the ego and sensors)."""

    def __init__(self, id_: int, uid: int, type_id: str, attributes: list, parent: int = 0,
                 mount=((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)), extent=VEHICLE_EXTENT, vehicle=None) -> None:
        self.id, self.uid, self.type_id, self.attributes, self.parent = id_, uid, type_id, attributes, parent
        self.mount = mount
        self.extent = extent
        self.vehicle = vehicle
        self.attr = {a[0]: a[2] for a in attributes}
        self.renderer = None
        self.camera_spec = None  # a camera's CameraSpec, made (and so checked) when it is spawned
        self.failed: Optional[str] = None  # why a sensor stopped (it failed in a tick)
        self.bgra: Optional[np.ndarray] = None  # the camera's image buffer, reused every frame
        self.sensor: Optional[sensor_types.Sensor] = None  # the state of a sensor of :mod:`sensors`
        # a client's vehicle other than the ego (see :mod:`vehicles`): its state, sticky control, flags
        self.state = None
        self.control = VehicleControl()
        self.raw_control = list(vehicles.ZERO_CONTROL)
        self.physics = True
        self.light_state = 0

    @property
    def is_sensor(self) -> bool:
        return self.type_id.startswith("sensor.")


def spectator(world) -> Actor:
    """The spectator: a fresh placeholder each time (it has no state to keep)."""
    return Actor(world.spectator_id, 0, "spectator", [])


def actor_id(value) -> int:
    """An actor id as a client sends it (an unsigned 32-bit integer)."""
    return checks.integer(value, "actor id", 0, 2 ** 32 - 1)


def _find(world, actor_id_) -> Actor:
    actor = world.actors.get(actor_id(actor_id_))
    if actor is None:
        raise RpcError(f"actor {actor_id_} not found")
    return actor


def spawn_actor(world, description, transform, *a) -> list:
    return _spawn(world, description, transform, 0)


def spawn_actor_with_parent(world, description, transform, parent_id, *a) -> list:
    _find(world, parent_id)
    return _spawn(world, description, transform, int(parent_id))


def _spawn(world, description, transform, parent: int) -> list:
    """Every value is checked before anything changes (see :mod:`checks`)."""
    uid, type_id, attributes = checks.actor_description(description)
    if type_id.startswith("vehicle."):
        (x, y, _), (_, yaw, _) = checks.transform(transform, "spawn transform")
        vehicles.check_room(world, x, y, yaw)
        actor = Actor(_new_id(world), uid, type_id, attributes, extent=catalogue.extent_of(type_id))
        if world.ego_id is None:  # the first vehicle is the ego: the scenario starts afresh under it
            world.ego_id = actor.id
            _start_episode(world, (x, y, yaw))
            world.control = VehicleControl()
            world.raw_control = list(vehicles.ZERO_CONTROL)
        else:
            actor.state = vehicles.new_state(x, y, yaw)
            world.vehicles[actor.id] = actor
    elif type_id.startswith("sensor."):
        (x, y, z), (pitch, yaw, roll) = checks.transform(transform, "sensor transform", checks.MAX_MOUNT_M)
        sensors = [a for a in world.actors.values() if a.is_sensor]
        if len(sensors) >= checks.MAX_SENSORS:
            raise RpcError(f"the world has {len(sensors)} sensors, the most it serves; destroy one first")
        # float32 on the wire: round back to the decimals the client wrote (0.8f -> 0.8)
        r = lambda v: round(float(v), 5)  # noqa: E731
        actor = Actor(world.next_id + 1, uid, type_id, attributes, parent,
                      ((r(x), r(y), r(z)), (r(pitch), r(yaw), r(roll))))
        if type_id in checks.CAMERAS:
            others = sum(checks.camera_cost(s.camera_spec.image_size_x, s.camera_spec.image_size_y,
                                            s.camera_spec.fov) for s in sensors if s.camera_spec is not None)
            actor.camera_spec = _camera_spec(actor, *checks.camera(type_id, actor.attr, others))
        actor.sensor = sensor_types.make(type_id, actor.attr)  # checks its attributes; dvs etc. are refused
        _new_id(world)
        world.streams.register(actor.id)
        if actor.camera_spec is not None and parent in world.vehicles and props.solid(world.vehicles[parent]):
            make_ego(world, parent)  # a camera draws from the ego: its vehicle becomes the ego
    elif props.is_prop(type_id):  # a client vehicle that never moves (see props)
        m = props.model(type_id)
        (x, y, _), (_, yaw, _) = checks.transform(transform, "spawn transform")
        if m.solid:
            vehicles.check_room(world, x, y, yaw, (2 * m.extent[0], 2 * m.extent[1]))
        actor = Actor(_new_id(world), uid, type_id, attributes, extent=m.extent)
        actor.state, actor.physics = vehicles.new_state(x, y, yaw), False
        world.vehicles[actor.id] = actor
    elif walkers.is_walker(type_id) or type_id == walkers.CONTROLLER:
        actor = Actor(world.next_id + 1, uid, type_id, attributes, parent)
        walkers.spawn(world, actor, transform)  # checked before anything changes
        _new_id(world)
    else:
        raise RpcError(f"the embedded server cannot spawn {type_id}")
    world.actors[actor.id] = actor
    return actor_wire(actor, world.token)


def _camera_spec(actor: Actor, w: int, h: int, fov: float):
    """The renderer's CameraSpec of a camera actor (its size, fov and mount)."""
    from carla_agent.sim.scenario import CameraSpec

    (mx, my, mz), (mp, _, _) = actor.mount
    try:
        return CameraSpec(image_size_x=w, image_size_y=h, fov=fov, x_m=float(mx), y_m=-float(my),
                          z_m=float(mz) if mz > 0.3 else 1.5, pitch_deg=float(mp))
    except (TypeError, ValueError) as e:
        raise RpcError(f"the embedded renderer cannot draw this {actor.type_id}: {e}") from None


def restart_episode(world) -> None:
    """The scenario afresh from its start (the ego, if any, stays spawned; its control is cleared)."""
    _start_episode(world, None)
    world.control = VehicleControl()
    world.raw_control = [0.0, 0.0, 0.0, False, False, False, 0]


def _start_episode(world, pose) -> None:
    """Spawning the ego starts the scenario afresh (same seed: same traffic, same frames as the
    direct backend) with the ego at ``pose`` (x, y m, yaw deg in CARLA's frame; None: the scenario's
    start). A pose within 5 cm / 0.5 deg of the scenario's start snaps to it exactly."""
    from carla_agent.sim.embedded.vehicle import VehicleState

    sim = world.sim
    dt, weather = sim.scenario.dt_s, sim._weather_spec
    sim.reset(world.scenario, world.seed)
    if world.weather_params is not None:
        sim.set_weather(weather)
    if dt != sim.scenario.dt_s:
        sim.scenario = replace(sim.scenario, dt_s=dt)
    st = sim.state
    x, y, yaw_deg = pose if pose is not None else (st.x_m, -st.y_m, -math.degrees(st.yaw_rad))
    yaw = -math.radians(yaw_deg)
    dyaw = abs((yaw - st.yaw_rad + math.pi) % (2 * math.pi) - math.pi)
    if math.hypot(x - st.x_m, -y - st.y_m) > 0.05 or dyaw > math.radians(0.5):
        sim.state = VehicleState(x, -y, yaw, 0.0)
        if not town_world.relay(world, force=True):  # in a town: a corridor from the spawn point
            sim.s, _ = sim.road.project(sim.state.x_m, sim.state.y_m, s_hint=sim.s)
            sim._marks_inside = sim._marks_under_car(sim._footprint_t())
    for actor in world.actors.values():
        actor.renderer = None
    make_traffic_actors(world)


def _new_id(world) -> int:
    world.next_id += 1
    return world.next_id


def destroy_actor(world, actor_id_, *a) -> bool:
    traffic = world.traffic.get(actor_id(actor_id_))
    if traffic is not None:  # gone from the world: no longer drawn, hit or published
        was = traffic.vehicle.active
        traffic.vehicle.active = False
        return was
    actor = world.actors.pop(actor_id(actor_id_), None)
    if actor is None:
        return False
    if actor.is_sensor:
        world.streams.unregister(actor.id)
    world.vehicles.pop(actor.id, None)
    world.walkers.pop(actor.id, None)
    if actor.id == world.ego_id:
        world.ego_id = None
        world.control = VehicleControl()
        for child in [c for c in world.actors.values() if c.parent == actor.id]:
            child.parent = 0
    return True


def set_actor_transform(world, actor_id_, transform, *a):
    """Teleport a vehicle (speed kept, as CARLA does); the spectator and sensors ignore it."""
    (x, y, z), (_, yaw, _) = checks.transform(transform)
    i = actor_id(actor_id_)
    if walkers.teleport(world, i, x, y, z, yaw):
        return VOID
    if i == world.ego_id:
        place_ego(world, x, y, yaw, world.sim.state.speed_mps)
    elif not vehicles.teleport(world, i, x, y, yaw) and i not in world.actors and i != world.spectator_id:
        raise vehicles.carla_error("set_actor_transform", i)
    return VOID


def set_actor_location(world, actor_id_, location, *a):
    """``actor.set_location``: a teleport keeping the vehicle's heading (ScenarioRunner moves actors so)."""
    i = actor_id(actor_id_)
    st, w = vehicles.state_of(world, i), world.walkers.get(i)
    yaw = -math.degrees(st.yaw_rad) if st is not None else w.walker.yaw_deg if w is not None else 0.0
    return set_actor_transform(world, actor_id_, [location, [0.0, yaw, 0.0]])


def place_ego(world, x, y, yaw, speed_mps: float) -> None:
    """Put the ego at a CARLA-frame pose (m, deg) at ``speed_mps``; in a town, off its corridor, a
    corridor is laid from there."""
    from carla_agent.sim.embedded.vehicle import VehicleState

    sim = world.sim
    st = sim.state
    dyaw = abs((-math.radians(float(yaw)) - st.yaw_rad + math.pi) % (2 * math.pi) - math.pi)
    if math.hypot(float(x) - st.x_m, -float(y) - st.y_m) < 1e-3 and dyaw < 1e-4 and speed_mps == st.speed_mps:
        return  # float32 echo of where it already is: keep the exact state
    sim.state = VehicleState(float(x), -float(y), -math.radians(float(yaw)), float(speed_mps))
    sim.s, t = sim.road.project(sim.state.x_m, sim.state.y_m, s_hint=sim.s)
    sim._marks_inside = sim._marks_under_car(sim._footprint_t())
    sim._contacts = set()
    if town_world.is_town(world):
        sim._t = t
    if town_world.relay(world):  # teleported off its corridor: lay one from there
        corridor_changed(world)


def make_ego(world, actor_id: int) -> None:
    """Make vehicle ``actor_id`` the ego (a camera was attached to it): the former ego becomes a
    vehicle of its own with its state and control; the simulator tracks the new one from its pose
    (in a town, on a corridor laid from there)."""
    new = world.vehicles.pop(actor_id)
    old_id = world.ego_id
    if old_id is not None and old_id in world.actors:
        old = world.actors[old_id]
        old.state, old.control, old.raw_control = world.sim.state, world.control, world.raw_control
        world.vehicles[old_id] = old
    world.ego_id = actor_id
    world.control, world.raw_control = new.control, new.raw_control
    st = new.state
    place_ego(world, st.x_m, -st.y_m, -math.degrees(st.yaw_rad), st.speed_mps)


def corridor_changed(world) -> None:
    """The town corridor under the ego was laid anew: cameras redraw it, its parked cars are the traffic."""
    for actor in world.actors.values():
        actor.renderer = None
    make_traffic_actors(world)


def get_actors_by_id(world, ids, *a) -> list:
    if not isinstance(ids, (list, tuple)):
        raise RpcError(f"get_actors_by_id takes a list of actor ids, not {ids!r:.40}")
    out = []
    for i in map(actor_id, ids):
        if i == world.spectator_id:
            out.append(actor_wire(spectator(world), world.token))
        elif i in world.actors:
            out.append(actor_wire(world.actors[i], world.token))
        elif i in world.traffic:
            out.append(actor_wire(world.traffic[i], world.token))
        elif i >= traffic_lights.LIGHT_ID0:
            out += [actor_wire(a, world.token) for a in traffic_lights.actors(world, Actor) if a.id == i]
    return out


def get_actor_bounding_box(world, actor_id_, *a) -> list:
    # Lenient: the client-side Traffic Manager asks from its own thread, where an error aborts
    # the client process; a destroyed actor gets an empty box instead.
    actor = world.actors.get(actor_id(actor_id_)) or world.traffic.get(actor_id(actor_id_))
    if actor is None:
        return [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    return actor_wire(actor, world.token)[3]


def make_traffic_actors(world) -> None:
    """One ``vehicle.<kind>`` actor per scenario vehicle (``vehicle.lead``, ``vehicle.parked``,
    ``vehicle.oncoming``: the embedded kinds, so collision events name the same thing on both
    backends), ids ``TRAFFIC_ID0 + k`` in the first episode. Each episode has its own ids (the
    wheel's Traffic Manager keeps actors by id: an old episode's actor under a new episode's id
    is a dangling one, and it segfaults reading it after ``load_world``)."""
    world.traffic = {}
    if town_world.is_town(world) and world.ego_id is None:
        # A town's traffic (parked cars along the ego's corridor) comes with the ego. Before it, the
        # world has no actors, as a CARLA town after load_world: a Traffic Manager made then (async at
        # first, as the Leaderboard's) has nothing to look up, so its first update cannot still be
        # under way in the wheel's load_world, when the wheel has no episode (segfault, see towns.md).
        return
    road = world.sim.road
    for k, v in enumerate(world.sim.traffic):
        kind = v.box(road).kind
        attributes = [
            attr("role_name", A_STRING, v.name),
            attr("color", A_RGB, ",".join(str(int(c)) for c in v.color)),
            attr("number_of_wheels", A_INT, "4"),
            attr("base_type", A_STRING, "car"),
        ]
        first = TRAFFIC_ID0 + TRAFFIC_IDS_PER_EPISODE * ((world.episode_id - 1) % 100)
        actor = Actor(first + k, 0, kind, attributes,
                      extent=(0.5 * v.length_m, 0.5 * v.width_m, 0.5 * v.height_m), vehicle=v)
        world.traffic[actor.id] = actor


def ego_pose(world):
    """The ego's ``(x m, y m, yaw deg)`` in CARLA's frame."""
    st = world.sim.state
    return st.x_m, -st.y_m, -math.degrees(st.yaw_rad)


def world_transform(world, actor: Actor) -> tuple:
    """``actor``'s ``(x, y, z m, pitch, yaw, roll deg)`` in CARLA's world frame (a mount on a
    vehicle follows it; any other mount is taken as world coordinates)."""
    (mx, my, mz), (mp, myaw, mr) = actor.mount
    w = walkers.state_of(world, actor.id)
    if w is not None:
        return (w.x_m, w.y_m, w.z_m, 0.0, w.yaw_deg, 0.0)
    parent = vehicles.state_of(world, actor.parent) if actor.parent else None
    if parent is not None:
        x, y, yaw = parent.x_m, -parent.y_m, -math.degrees(parent.yaw_rad)
        r = math.radians(yaw)
        return (x + mx * math.cos(r) - my * math.sin(r), y + mx * math.sin(r) + my * math.cos(r), mz,
                mp, yaw + myaw, mr)
    return (mx, my, mz, mp, myaw, mr)
