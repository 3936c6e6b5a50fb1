"""What the served world sends on its streams each tick: the episode state (every actor's
transform, velocity and control), the collision events and the camera frames.

Each function takes the :class:`~carla_agent.server.world_service.WorldService` ``world`` (its lock
held) and publishes through ``world.streams``; layouts are those of :mod:`wire`.
"""

from __future__ import annotations

import logging
import math
import struct
import time
from typing import Dict, List, Set

import cv2
import numpy as np

from carla_agent.server import sensors as sensor_types
from carla_agent.server import tick_profile, traffic_lights, vehicles, walkers
from carla_agent.server.actors import STATIC_ID, Actor, ego_pose, live_traffic, world_transform
from carla_agent.server.checks import CAMERAS
from carla_agent.server.streams import sensor_header
from carla_agent.server.wire import (ACTOR_RECORD, EPISODE_HEADER, SEMANTIC_TO_CARLA,
                                     SENSOR_TYPE_COLLISION, SENSOR_TYPE_EPISODE, SENSOR_TYPE_RGB, UNION_BYTES,
                                     TRAFFIC_LIGHT_DATA, VEHICLE_DATA, WALKER_DATA, actor_wire)

log = logging.getLogger(__name__)


def publish_tick(world, obs) -> List[str]:
    """Everything a tick sends: the episode state, the collision events, the camera frames. Each
    part is on its own: one that fails does not keep the others from going out; a sensor that
    fails is stopped (``actor.failed``). Returns what failed, one line each (empty: all went)."""
    failures: List[str] = []
    try:
        with tick_profile.phase("episode"):
            publish_episode(world)
    except Exception as e:  # noqa: BLE001
        log.warning("the episode state could not be sent", exc_info=True)
        failures.append(f"the episode state could not be sent ({type(e).__name__}: {e})")
    sensors = [a for a in world.actors.values() if a.is_sensor and a.failed is None]
    world.streams.wait_expected([a.id for a in sensors])
    for actor in sensors:
        try:
            if actor.sensor is not None:  # depth, lidar, radar, GNSS, IMU, ... (carla_agent/server/sensors/)
                if world.streams.has_subscribers(actor.id) and not (actor.sensor.IS_CAMERA and world.no_rendering):
                    sensor_types.publish(world, actor, sensor_view(world, actor), float(world.sim.scenario.dt_s))
            elif actor.type_id == "sensor.other.collision":
                if obs.collisions and world.ego_id is not None and actor.parent == world.ego_id:
                    publish_collisions(world, actor, obs.collisions)
                if world.vehicle_hits and actor.parent:
                    publish_vehicle_hits(world, actor, world.vehicle_hits)
            elif actor.type_id in CAMERAS and world.streams.has_subscribers(actor.id) and not world.no_rendering:
                # no_rendering_mode: nothing is drawn, so cameras send nothing (as in CARLA)
                _publish_camera(world, actor)
        except Exception as e:  # noqa: BLE001 - the world goes on without this sensor
            actor.failed = f"{type(e).__name__}: {e}"
            log.warning("%s %d failed and was stopped", actor.type_id, actor.id, exc_info=True)
            failures.append(f"{actor.type_id} {actor.id} failed and was stopped ({actor.failed})")
    return failures


def sensor_view(world, actor: Actor) -> sensor_types.TickView:
    """What a sensor of :mod:`carla_agent.server.sensors` is told of the world at this tick."""
    from carla_agent.server.sensors.pose import SensorPose

    velocity = (0.0, 0.0, 0.0)
    if actor.parent and actor.parent == world.ego_id:
        st = world.sim.state
        velocity = (st.speed_mps * math.cos(st.yaw_rad), -st.speed_mps * math.sin(st.yaw_rad), 0.0)

    def wire(actor_id: int):
        other = world.actors.get(actor_id) or world.traffic.get(actor_id)
        return actor_wire(other, world.token) if other is not None else None

    return sensor_types.TickView(SensorPose.of(world_transform(world, actor)),
                            [(a.id, a.vehicle) for a in live_traffic(world)], velocity, wire, world.elapsed_s)


#: The episode header's ``simulation_state`` bit that tells the wheel the map changed: without it the
#: wheel keeps the map it cached (``Simulator::GetCurrentMap`` re-reads the map only then), and a
#: client that had read the old map gets it again from ``load_world(...).get_map()``.
MAP_CHANGE = 0x1


def publish_episode(world) -> None:
    """Sensor header (type 17) + the 36-byte episode header + one 119-byte record per actor: the
    spawned actors, then the traffic on the map (CARLA's frame, m, m/s, m/s^2, deg)."""
    if world.streams is None:
        return
    parts = [sensor_header(SENSOR_TYPE_EPISODE, world.frame, world.elapsed_s),
             EPISODE_HEADER.pack(world.episode_id, time.time(), float(world.sim.scenario.dt_s), 0, 0, 0,
                                 MAP_CHANGE if world.map_changed else 0)]
    limit_kmh = float(world.sim.road.speed_limit_mps) * 3.6
    for actor in world.actors.values():
        st = vehicles.state_of(world, actor.id)
        if st is not None:  # a vehicle: the ego (the simulator's state) or another client's
            x, y, yaw = st.x_m, -st.y_m, -math.degrees(st.yaw_rad)
            c, s = math.cos(st.yaw_rad), -math.sin(st.yaw_rad)
            rc = world.raw_control if actor.id == world.ego_id else actor.raw_control
            union = VEHICLE_DATA.pack(float(rc[0]), float(rc[1]), float(rc[2]), bool(rc[3]), bool(rc[4]),
                                      bool(rc[5]), int(rc[6]), limit_kmh, 4, False, 0, 0)
            parts.append(ACTOR_RECORD.pack(actor.id, 1, x, y, 0.0, 0.0, yaw, 0.0, st.speed_mps * c,
                                           st.speed_mps * s, 0.0, 0.0, 0.0, 0.0, st.accel_mps2 * c,
                                           st.accel_mps2 * s, 0.0))
            parts.append(union + bytes(UNION_BYTES - len(union)))
        elif actor.id in world.walkers:
            w = actor.walker
            parts.append(ACTOR_RECORD.pack(actor.id, 1, w.x_m, w.y_m, w.z_m, 0.0, w.yaw_deg, 0.0, *w.velocity,
                                           0.0, 0.0, 0.0, 0.0, 0.0, 0.0))
            union = WALKER_DATA.pack(*w.direction, w.control_speed_mps, w.jump)
            parts.append(union + bytes(UNION_BYTES - len(union)))
        else:
            tf = world_transform(world, actor)
            parts.append(ACTOR_RECORD.pack(actor.id, 1, *tf, 0, 0, 0, 0, 0, 0, 0, 0, 0))
            parts.append(bytes(UNION_BYTES))
    if world.traffic:
        road = world.sim.road
        traffic_union = VEHICLE_DATA.pack(0.0, 0.0, 0.0, False, False, False, 0, limit_kmh, 4, False, 0, 0)
        traffic_union += bytes(UNION_BYTES - len(traffic_union))
        for actor in live_traffic(world):
            v = actor.vehicle
            b = v.box(road)
            h = road.heading_at(min(max(v.s_m, 0.0), road.length_m))  # the direction of +s
            vx, vy = v.speed_mps * math.cos(h), -v.speed_mps * math.sin(h)
            parts.append(ACTOR_RECORD.pack(actor.id, 1, b.x_m, -b.y_m, 0.0, 0.0, -math.degrees(b.yaw_rad), 0.0,
                                           vx, vy, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0))
            parts.append(traffic_union)
    for actor in traffic_lights.actors(world, Actor):
        x, y, z, yaw = actor.light.pose
        state, green, yellow, red, elapsed, frozen = traffic_lights.record(world, actor.light)
        parts.append(ACTOR_RECORD.pack(actor.id, 1, x, y, z, 0.0, yaw, 0.0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
        parts.append(TRAFFIC_LIGHT_DATA.pack(str(actor.light.signal.id).encode(), green, yellow, red, elapsed,
                                             actor.light.pole_index, frozen, state))
    payload = b"".join(parts)
    streams = (*world.old_episode_streams, world.episode_stream)
    if world.map_changed and any(world.streams.has_subscribers(s) for s in streams):
        world.map_changed = False  # said once, as CARLA does, to a client that listens
    for stream_id in streams:
        world.streams.publish(stream_id, payload)
    world.reported_episode_id = world.episode_id


def publish_collisions(world, sensor: Actor, events) -> None:
    """To the collision sensor ``sensor`` on the ego: per event, sensor header (type 0) + msgpack
    ``[self_actor, other_actor, [ix, iy, iz]]``."""
    import msgpack

    if not world.streams.has_subscribers(sensor.id):
        return
    ego = world.actors[world.ego_id]
    yaw = math.radians(ego_pose(world)[2])
    hit = _traffic_hit(world, events)
    for k, ev in enumerate(events):
        # A static thing of the map (tree, pole, sign) is no actor: CARLA reports every one with id 0.
        other = hit.get(k) or Actor(STATIC_ID, 0, ev.other, [])
        impulse = [-ev.impulse_ns * math.cos(yaw), -ev.impulse_ns * math.sin(yaw), 0.0]
        body = msgpack.packb([actor_wire(ego, world.token), actor_wire(other, world.token), impulse],
                             use_bin_type=True)
        world.streams.publish(sensor.id, sensor_header(SENSOR_TYPE_COLLISION, world.frame, world.elapsed_s,
                                                      world_transform(world, sensor)), body)


def publish_vehicle_hits(world, sensor: Actor, hits) -> None:
    """The new vehicle-vehicle contacts (``vehicles.collisions``) of the vehicle ``sensor`` is on,
    as :func:`publish_collisions` sends them; the impulse is the other's mass times the closing speed."""
    import msgpack

    if not world.streams.has_subscribers(sensor.id):
        return
    me = world.actors.get(sensor.parent)
    for a, b in hits:
        if sensor.parent not in (a, b) or me is None:
            continue
        other_id = b if a == sensor.parent else a
        other = world.actors.get(other_id) or world.traffic.get(other_id) or Actor(other_id, 0, "vehicle", [])
        mine, theirs = vehicles.state_of(world, me.id), vehicles.state_of(world, other_id)
        closing = (mine.speed_mps if mine else 0.0) + (theirs.speed_mps if theirs else 0.0)
        yaw = mine.yaw_rad if mine else 0.0
        impulse = [-1800.0 * max(closing, 0.1) * math.cos(yaw), 1800.0 * max(closing, 0.1) * math.sin(yaw), 0.0]
        body = msgpack.packb([actor_wire(me, world.token), actor_wire(other, world.token), impulse],
                             use_bin_type=True)
        world.streams.publish(sensor.id, sensor_header(SENSOR_TYPE_COLLISION, world.frame, world.elapsed_s,
                                                      world_transform(world, sensor)), body)


def _traffic_hit(world, events) -> Dict[int, Actor]:
    """``{index in events: traffic actor}`` for the events whose other party is a traffic vehicle
    (the one of that kind whose box overlaps the ego's, as ``EmbeddedSimulator`` found it)."""
    from carla_agent.sim.embedded.collision import boxes_overlap

    sim = world.sim
    st, params = sim.state, sim.params
    ego_box = (st.x_m, st.y_m, st.yaw_rad, params.length_m, params.width_m)
    out: Dict[int, Actor] = {}
    taken: Set[int] = set()
    for k, ev in enumerate(events):
        if not ev.other.startswith("vehicle."):
            continue
        for actor in world.traffic.values():
            v = actor.vehicle
            if actor.id in taken or not v.active or abs(v.s_m - sim.s) > 10.0:
                continue
            b = v.box(sim.road)
            if b.kind == ev.other and boxes_overlap(ego_box, (b.x_m, b.y_m, b.yaw_rad, b.length_m, b.width_m)):
                out[k] = actor
                taken.add(actor.id)
                break
    return out


def _visible_boxes(world) -> list:
    """The traffic boxes exactly as EmbeddedSimulator._observe passes them to its renderer."""
    from carla_agent.sim.embedded import simulator as emb

    sim = world.sim
    behind, ahead = getattr(emb, "VIEW_BEHIND_M", math.inf), getattr(emb, "VIEW_AHEAD_M", math.inf)
    boxes = [v.box(sim.road) for v in sim.traffic if v.active and -behind < v.s_m - sim.s < ahead]
    return boxes + vehicles.boxes_in_view(world, ahead) + walkers.boxes_in_view(world, ahead)


def _ego_box(world, camera: Actor):
    """The ego's own body, for a camera on it mounted outside it (manual_control.py's chase camera;
    CARLA draws the car there), else None: a camera inside the car (the dash camera) never saw the
    body in the embedded world and still does not."""
    from carla_agent.sim.embedded.world import VehicleBox

    spec, p = camera.camera_spec, vehicles.PARAMS
    if camera.parent != world.ego_id or world.ego_id is None:
        return None
    if abs(spec.x_m) < 0.5 * p.length_m and abs(spec.y_m) < 0.5 * p.width_m and spec.z_m < p.height_m + 0.3:
        return None
    st = world.sim.state
    return VehicleBox(st.x_m, st.y_m, st.yaw_rad, p.length_m, p.width_m, p.height_m,
                      vehicles.body_color(world.actors.get(world.ego_id)), world.sim.s, kind="vehicle.car")


def _publish_camera(world, actor: Actor) -> None:
    """Sensor header (type 13) + ``<IIf`` width, height, fov + the BGRA image (uint8, h x w x 4)."""
    from carla_agent.sim.embedded.render import Renderer
    from carla_agent.sim.embedded.weather import resolve_weather

    spec = actor.camera_spec  # made and checked when the camera was spawned (actors._spawn)
    w, h, fov = spec.image_size_x, spec.image_size_y, float(spec.fov)
    if actor.renderer is None:
        actor.renderer = Renderer(world.sim.road, spec, resolve_weather(world.sim._weather_spec),
                                  world.sim.statics, world.seed, world.sim.town_view())
    st = world.sim.state
    boxes = _visible_boxes(world)
    ego = _ego_box(world, actor)
    if ego is not None:
        boxes = boxes + [ego]
    with tick_profile.phase("render"):
        rgb, sem = actor.renderer.render(st.x_m, st.y_m, st.yaw_rad, world.sim.s, boxes, world.sim.frame,
                                         light_states=traffic_lights.drawn(world))
    bgra = actor.bgra
    if bgra is None or bgra.shape != (h, w, 4):
        bgra = actor.bgra = np.zeros((h, w, 4), np.uint8)  # publish() sends it before returning
    with tick_profile.phase("encode"):
        if actor.type_id == "sensor.camera.semantic_segmentation":
            np.take(SEMANTIC_TO_CARLA, sem, out=bgra[..., 2])  # CARLA: the tag in the red channel
            bgra[..., 3] = 255
        else:
            cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA, dst=bgra)
        head = (sensor_header(SENSOR_TYPE_RGB, world.frame, world.elapsed_s, world_transform(world, actor))
                + struct.pack("<IIf", w, h, fov))
    with tick_profile.phase("send"):
        world.streams.publish(actor.id, head, memoryview(bgra).cast("B"))
