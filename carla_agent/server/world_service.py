"""The CARLA calls, answered from an :class:`EmbeddedSimulator`.

Every handler takes the call's real arguments (the metadata array already
stripped) and returns the raw value; :mod:`rpc` wraps it as ``Response<T>``.
Wire layouts are those of the carla 0.9.16 wheel (see docs/serve.md).
"""

from __future__ import annotations

import logging
import math
import struct
import threading
import time
from dataclasses import replace
from typing import Any, Callable, Dict, List, Optional, Set

import cv2
import numpy as np

from carla_agent.control import VehicleControl
from carla_agent.server.rpc import VOID, Raw, RpcError
from carla_agent.server.streams import StreamServer, sensor_header

log = logging.getLogger(__name__)

VERSION = "0.9.16"
EPISODE_STREAM = 1
SENSOR_TYPE_COLLISION = 0
SENSOR_TYPE_RGB = 13
SENSOR_TYPE_EPISODE = 17
# ActorAttributeType
A_BOOL, A_INT, A_FLOAT, A_STRING, A_RGB = 1, 2, 3, 4, 5
TAG_CAR = 14  # CityObjectLabel::Car in 0.9.16
# SemanticClass (carla_agent.sim.observation) -> CityObjectLabel (the red channel of CARLA's semantic camera)
SEMANTIC_TO_CARLA = np.array([0, 1, 24, 2, 10, 11, 14, 20] + [0] * 248, np.uint8)
CMD_APPLY_VEHICLE_CONTROL = 2  # index in carla::rpc::Command's variant (0.9.16)

EPISODE_HEADER = struct.Struct("<QdfiiiI")  # 36 bytes, packed
ACTOR_RECORD = struct.Struct("<IB6f3f3f3f")  # 65 bytes; + 54-byte union = 119
UNION_BYTES = 54
# VehicleData (30 bytes at the union's start): PackedVehicleControl (19), speed_limit km/h,
# traffic_light_state, has_traffic_light, traffic_light_id, failure_state
VEHICLE_DATA = struct.Struct("<fffBBBifBBIB")
assert EPISODE_HEADER.size == 36 and ACTOR_RECORD.size + UNION_BYTES == 119

VEHICLES = ("vehicle.lincoln.mkz_2020", "vehicle.tesla.model3", "vehicle.audi.a2", "vehicle.toyota.prius")
VEHICLE_EXTENT = (2.45, 1.05, 0.75)  # the ego's bounding-box half sizes, metres
#: Actor id of the scenario's k-th traffic vehicle (``EmbeddedSimulator.traffic[k]``); stable across
#: episodes, far above the ids of spawned actors (which count up from 101).
TRAFFIC_ID0 = 1_000_000
#: Synthetic ids of static things hit (trees, poles...): they are not actors.
STATIC_ID0 = 90_000


def _attr(id_: str, type_: int, value: str, recommended=(), modifiable=False) -> list:
    return [id_, type_, value, list(recommended), bool(modifiable), False]


def _blueprints() -> list:
    defs = []
    uid = 1
    for name in VEHICLES:
        defs.append([uid, name, "vehicle,car," + name.split(".")[1], [
            _attr("role_name", A_STRING, "autopilot", ("autopilot", "scenario", "ego_vehicle", "hero"), True),
            _attr("color", A_RGB, "255,255,255", ("255,255,255", "0,0,0", "200,20,20"), True),
            _attr("number_of_wheels", A_INT, "4"),
            _attr("generation", A_INT, "2"),
            _attr("base_type", A_STRING, "car"),
            _attr("special_type", A_STRING, ""),
            _attr("has_dynamic_doors", A_BOOL, "false"),
            _attr("has_lights", A_BOOL, "true"),
            _attr("sticky_control", A_BOOL, "true", ("true", "false"), True),
            _attr("terramechanics", A_BOOL, "false", ("true", "false"), True),
        ]])
        uid += 1
    for name in ("sensor.camera.rgb", "sensor.camera.semantic_segmentation"):
        defs.append([uid, name, "sensor,camera," + name.split(".")[-1], [
            _attr("role_name", A_STRING, "front", (), True),
            _attr("image_size_x", A_INT, "800", (), True),
            _attr("image_size_y", A_INT, "600", (), True),
            _attr("fov", A_FLOAT, "90", (), True),
            _attr("sensor_tick", A_FLOAT, "0.0", (), True),
            _attr("gamma", A_FLOAT, "2.2", (), True),
            _attr("enable_postprocess_effects", A_BOOL, "true", (), True),
            _attr("lens_circle_falloff", A_FLOAT, "5.0", (), True),
            _attr("lens_circle_multiplier", A_FLOAT, "0.0", (), True),
            _attr("lens_k", A_FLOAT, "-1.0", (), True),
            _attr("lens_kcube", A_FLOAT, "0.0", (), True),
            _attr("lens_x_size", A_FLOAT, "0.08", (), True),
            _attr("lens_y_size", A_FLOAT, "0.08", (), True),
        ]])
        uid += 1
    for name in ("sensor.other.collision", "sensor.other.lane_invasion"):
        defs.append([uid, name, "sensor,other," + name.split(".")[-1], [
            _attr("role_name", A_STRING, "", (), True)]])
        uid += 1
    return defs


# carla::rpc::WeatherParameters in declaration (wire) order, 0.9.16
WEATHER_FIELDS = ("cloudiness", "precipitation", "precipitation_deposits", "wind_intensity", "sun_azimuth_angle",
                  "sun_altitude_angle", "fog_density", "fog_distance", "fog_falloff", "wetness",
                  "scattering_intensity", "mie_scattering_scale", "rayleigh_scattering_scale", "dust_storm")


def _weather_key(params) -> tuple:
    return tuple(round(float(v), 3) for v in params[:14])


_PRESET_INVERSE: Optional[Dict[tuple, str]] = None


def _carla_preset_inverse() -> Dict[tuple, str]:
    """CARLA WeatherParameters (as carla_backend maps each embedded preset) -> embedded preset name.

    Needs the carla wheel (for the presets' values); without it, empty."""
    global _PRESET_INVERSE
    if _PRESET_INVERSE is None:
        table: Dict[tuple, str] = {}
        try:
            import carla

            from carla_agent.sim.carla_backend.simulator import _WEATHER_OF_PRESET
        except ImportError:
            _PRESET_INVERSE = table
            return table
        fields = WEATHER_FIELDS
        for preset, (name, overrides) in _WEATHER_OF_PRESET.items():
            w = getattr(carla.WeatherParameters, name)
            values = {f: float(getattr(w, f)) for f in fields}
            values.update(overrides)
            key = _weather_key([values[f] for f in fields])
            table.setdefault(key, preset)
        _PRESET_INVERSE = table
    return _PRESET_INVERSE


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
        self.bgra: Optional[np.ndarray] = None  # the camera's image buffer, reused every frame

    @property
    def is_sensor(self) -> bool:
        return self.type_id.startswith("sensor.")


class WorldService:
    """The embedded world behind the RPC calls. All state is guarded by ``lock``."""

    def __init__(self, scenario, seed: int = 0, async_period_s: float = 0.05, sync_grace_s: float = 2.0) -> None:
        from carla_agent.sim.embedded.simulator import EmbeddedSimulator

        self.lock = threading.RLock()
        self.scenario = scenario
        self.sim = EmbeddedSimulator(render=False)
        self.sim.reset(scenario, seed)
        self.seed = seed
        self.streams: Optional[StreamServer] = None
        self.episode_id = 1
        self.frame = 0
        self.elapsed_s = 0.0
        self.sync = False
        self.sync_owner: Optional[int] = None  # the RPC connection that turned synchronous mode on
        self._live: Set[int] = set()  # RPC connections still open
        self.no_rendering = False
        self.fixed_delta: Optional[float] = None
        self.actors: Dict[int, Actor] = {}
        self.ego_id: Optional[int] = None
        self.control = VehicleControl()
        self._raw_control = [0.0, 0.0, 0.0, False, False, False, 0]
        self._next_id = 100
        self.spectator_id = 2
        self._warned: Set[str] = set()
        self._async_period_s = async_period_s
        self._sync_grace_s = sync_grace_s
        self._stop = threading.Event()
        self._ticker: Optional[threading.Thread] = None
        self._blueprints = _blueprints()
        self._weather_params: Optional[list] = None
        self._tms: Dict[int, tuple] = {}
        self._cid = 0  # the RPC connection of the call being handled (set by dispatch)
        self.traffic: Dict[int, Actor] = {}
        self._make_traffic_actors()
        self._handlers: Dict[str, Callable[..., Any]] = {
            "version": lambda *a: VERSION,
            "get_episode_info": self.get_episode_info,
            "get_sensor_token": self.get_sensor_token,
            "get_episode_settings": self.get_episode_settings,
            "set_episode_settings": self.set_episode_settings,
            "get_required_files": lambda *a: [],
            "query_lights_state": lambda *a: [],
            "tick_cue": self.tick_cue,
            "get_map_info": self.get_map_info,
            "get_map_data": self.get_map_data,
            "get_actor_definitions": lambda *a: self._blueprints,
            "spawn_actor": self.spawn_actor,
            "spawn_actor_with_parent": self.spawn_actor_with_parent,
            "destroy_actor": self.destroy_actor,
            "get_actors_by_id": self.get_actors_by_id,
            "get_actor_bounding_box": self.get_actor_bounding_box,
            "apply_control_to_vehicle": self.apply_control_to_vehicle,
            "get_spectator": lambda *a: self._actor_wire(self._spectator()),
            "get_weather_parameters": self.get_weather_parameters,
            "set_weather_parameters": self.set_weather_parameters,
            "apply_batch": self.apply_batch,
            # Traffic Manager bookkeeping (the TM itself runs in the client)
            "is_traffic_manager_running": lambda port, *a: int(port) in self._tms,
            "add_traffic_manager_running": self._add_tm,
            "get_traffic_manager_running": lambda port, *a: list(self._tms.get(int(port), ("", 0))),
            "get_vehicle_light_states": self.get_vehicle_light_states,
            "set_actor_simulate_physics": lambda *a: VOID,
            "reset_all_traffic_lights": lambda *a: VOID,
            "set_actor_transform": self.set_actor_transform,  # no traffic lights in the embedded world
            "set_actor_target_velocity": self.set_actor_target_velocity,
            "set_actor_autopilot": lambda *a: VOID,
            "destroy_traffic_manager": lambda port, *a: self._tms.pop(int(port), None) is not None,
        }

    # -- lifecycle -----------------------------------------------------------
    def start(self, streams: StreamServer) -> None:
        self.streams = streams
        self._ticker = threading.Thread(target=self._async_loop, name="carla-async-ticker", daemon=True)
        self._ticker.start()

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2.0)

    def _async_loop(self) -> None:
        while not self._stop.wait(self._async_period_s):
            with self.lock:
                if not self.sync:
                    self._tick()

    def on_disconnect(self, cid: int) -> None:
        """Do better than CARLA #2158: if the synchronous client goes, go back to async after a grace.

        Meanwhile another client may take the ticking over (a ``tick_cue`` or synchronous settings)."""
        with self.lock:
            self._live.discard(cid)
            if not (self.sync and self.sync_owner == cid):
                return

        def revert() -> None:
            with self.lock:
                if self.sync and self.sync_owner == cid:
                    log.warning("the synchronous client left; back to asynchronous mode")
                    self.sync = False
                    self.sync_owner = None

        t = threading.Timer(self._sync_grace_s, revert)
        t.daemon = True
        t.start()

    # -- dispatch ------------------------------------------------------------
    def dispatch(self, method: str, args: list, cid: int) -> Any:
        log.debug("call %s %r", method, args)
        handler = self._handlers.get(method)
        if handler is None:
            if method not in self._warned:
                self._warned.add(method)
                log.warning("unsupported CARLA call %r", method)
            raise RpcError(f"the embedded server does not support {method}")
        with self.lock:
            self._cid = cid
            self._live.add(cid)
            return handler(*args)

    # -- episode ---------------------------------------------------------------
    def get_episode_info(self, *a) -> list:
        return [self.episode_id, [self.streams.token(EPISODE_STREAM)]]  # Token = [bin24]

    def get_sensor_token(self, stream_id, *a) -> list:
        if int(stream_id) in self.actors:
            self.streams.expect(int(stream_id))
        return [self.streams.token(int(stream_id))]  # streaming::Token is [bin24]

    def get_episode_settings(self, *a) -> list:
        fd = [True, float(self.fixed_delta)] if self.fixed_delta is not None else [False]
        return [self.sync, self.no_rendering, fd, False, 0.01, 10, 0.0, False, 2000.0, 2000.0, False]

    def _other_owner(self) -> Optional[int]:
        """The connected client that owns synchronous mode, if it is not the caller."""
        owner = self.sync_owner
        if self.sync and owner is not None and owner != self._cid and owner in self._live:
            return owner
        return None

    def _ownership_error(self, what: str) -> RpcError:
        return RpcError(f"{what} refused: another client turned synchronous mode on and only that client "
                        "ticks, as in CARLA. Read the world from this one (world.get_snapshot(), "
                        "world.wait_for_tick(), world.on_tick(), get_actors()), or turn synchronous mode "
                        "off from the ticking client first; if that client disconnects, the server goes "
                        "back to asynchronous mode after a short grace period")

    def set_episode_settings(self, s, *a) -> int:
        sync = bool(s[0])
        fd = s[2]
        fixed_delta = float(fd[1]) if isinstance(fd, (list, tuple)) and fd and fd[0] else None
        if self._other_owner() is not None:
            if sync != self.sync or fixed_delta != self.fixed_delta:
                raise self._ownership_error("changing synchronous mode or fixed_delta_seconds")
        else:
            self.sync_owner = self._cid if sync else None
        self.sync = sync
        self.no_rendering = bool(s[1])
        self.fixed_delta = fixed_delta
        dt = self.fixed_delta if self.fixed_delta is not None else self.scenario.dt_s
        if self.sim.scenario.dt_s != dt:
            self.sim.scenario = replace(self.sim.scenario, dt_s=dt)
        self._publish_episode()
        return self.frame

    def tick_cue(self, *a) -> int:
        """One tick: the episode state, the collision events and the camera frames are all sent
        before the reply, so a client's sensor queue already holds the frame when tick() returns."""
        if self._other_owner() is not None:
            raise self._ownership_error("world.tick()")
        if self.sync and self.sync_owner != self._cid:
            log.warning("connection %d takes over ticking from a client that left", self._cid)
            self.sync_owner = self._cid  # the owner left within its grace period: take it over
        self._tick()
        return self.frame

    def _tick(self) -> None:
        obs = self.sim.step(self.control)
        self.frame += 1
        self.elapsed_s += self.sim.scenario.dt_s
        self._publish_episode()
        if obs.collisions and self.ego_id is not None:
            self._publish_collisions(obs.collisions)
        self._publish_sensors()

    def _publish_collisions(self, events) -> None:
        """Sensor header (type 0) + msgpack ``[self_actor, other_actor, [ix, iy, iz]]``."""
        import msgpack

        ego = self.actors[self.ego_id]
        yaw = math.radians(self._ego_pose()[2])
        hit = self._traffic_hit(events)
        for sensor in list(self.actors.values()):
            if sensor.type_id != "sensor.other.collision" or sensor.parent != self.ego_id:
                continue
            self.streams.wait_expected(sensor.id)
            if not self.streams.has_subscribers(sensor.id):
                continue
            for k, ev in enumerate(events):
                other = hit.get(k) or Actor(STATIC_ID0 + k, 0, ev.other, [])
                impulse = [-ev.impulse_ns * math.cos(yaw), -ev.impulse_ns * math.sin(yaw), 0.0]
                body = msgpack.packb([self._actor_wire(ego), self._actor_wire(other), impulse], use_bin_type=True)
                self.streams.publish(sensor.id, sensor_header(SENSOR_TYPE_COLLISION, self.frame, self.elapsed_s,
                                                              self._world_transform(sensor)), body)

    def _traffic_hit(self, events) -> Dict[int, Actor]:
        """``{index in events: traffic actor}`` for the events whose other party is a traffic vehicle
        (the one of that kind whose box overlaps the ego's, as ``EmbeddedSimulator`` found it)."""
        from carla_agent.sim.embedded.collision import boxes_overlap

        sim = self.sim
        st, params = sim.state, sim.params
        ego_box = (st.x_m, st.y_m, st.yaw_rad, params.length_m, params.width_m)
        out: Dict[int, Actor] = {}
        taken: Set[int] = set()
        for k, ev in enumerate(events):
            if not ev.other.startswith("vehicle."):
                continue
            for actor in self.traffic.values():
                v = actor.vehicle
                if actor.id in taken or not v.active or abs(v.s_m - sim.s) > 10.0:
                    continue
                b = v.box(sim.road)
                if b.kind == ev.other and boxes_overlap(ego_box, (b.x_m, b.y_m, b.yaw_rad, b.length_m, b.width_m)):
                    out[k] = actor
                    taken.add(actor.id)
                    break
        return out

    def _ego_pose(self):
        st = self.sim.state
        return st.x_m, -st.y_m, -math.degrees(st.yaw_rad)

    def _publish_episode(self) -> None:
        if self.streams is None:
            return
        parts = [sensor_header(SENSOR_TYPE_EPISODE, self.frame, self.elapsed_s),
                 EPISODE_HEADER.pack(self.episode_id, time.time(), float(self.sim.scenario.dt_s), 0, 0, 0, 0)]
        st = self.sim.state
        for actor in self.actors.values():
            if actor.id == self.ego_id:
                x, y, yaw = self._ego_pose()
                vx, vy = st.speed_mps * math.cos(st.yaw_rad), -st.speed_mps * math.sin(st.yaw_rad)
                ax, ay = st.accel_mps2 * math.cos(st.yaw_rad), -st.accel_mps2 * math.sin(st.yaw_rad)
                c = self._raw_control
                union = VEHICLE_DATA.pack(float(c[0]), float(c[1]), float(c[2]), bool(c[3]), bool(c[4]),
                                          bool(c[5]), int(c[6]), float(self.sim.road.speed_limit_mps) * 3.6,
                                          4, False, 0, 0)
                parts.append(ACTOR_RECORD.pack(actor.id, 1, x, y, 0.0, 0.0, yaw, 0.0, vx, vy, 0.0,
                                               0.0, 0.0, 0.0, ax, ay, 0.0))
                parts.append(union + bytes(UNION_BYTES - len(union)))
            else:
                tf = self._world_transform(actor)
                parts.append(ACTOR_RECORD.pack(actor.id, 1, *tf, 0, 0, 0, 0, 0, 0, 0, 0, 0))
                parts.append(bytes(UNION_BYTES))
        if self.traffic:
            road = self.sim.road
            limit_kmh = float(road.speed_limit_mps) * 3.6
            traffic_union = VEHICLE_DATA.pack(0.0, 0.0, 0.0, False, False, False, 0, limit_kmh, 4, False, 0, 0)
            traffic_union += bytes(UNION_BYTES - len(traffic_union))
            for actor in self._live_traffic():
                v = actor.vehicle
                b = v.box(road)
                h = road.heading_at(min(max(v.s_m, 0.0), road.length_m))  # the direction of +s
                vx, vy = v.speed_mps * math.cos(h), -v.speed_mps * math.sin(h)
                parts.append(ACTOR_RECORD.pack(actor.id, 1, b.x_m, -b.y_m, 0.0, 0.0, -math.degrees(b.yaw_rad), 0.0,
                                               vx, vy, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0))
                parts.append(traffic_union)
        self.streams.publish(EPISODE_STREAM, b"".join(parts))

    def _make_traffic_actors(self) -> None:
        """One ``vehicle.<kind>`` actor per scenario vehicle (``vehicle.lead``, ``vehicle.parked``,
        ``vehicle.oncoming``: the embedded kinds, so collision events name the same thing on both
        backends), ids ``TRAFFIC_ID0 + k``."""
        self.traffic = {}
        road = self.sim.road
        for k, v in enumerate(self.sim.traffic):
            kind = v.box(road).kind
            attributes = [
                _attr("role_name", A_STRING, v.name),
                _attr("color", A_RGB, ",".join(str(int(c)) for c in v.color)),
                _attr("number_of_wheels", A_INT, "4"),
                _attr("base_type", A_STRING, "car"),
            ]
            actor = Actor(TRAFFIC_ID0 + k, 0, kind, attributes,
                          extent=(0.5 * v.length_m, 0.5 * v.width_m, 0.5 * v.height_m), vehicle=v)
            self.traffic[actor.id] = actor

    def _live_traffic(self) -> List[Actor]:
        """Traffic actors on the map now (a vehicle that drove off either end is gone, as CARLA
        destroys it; one that has not yet driven onto the map is not there yet)."""
        end = self.sim.road.length_m + 5.0
        return [a for a in self.traffic.values() if a.vehicle.active and -5.0 <= a.vehicle.s_m <= end]

    def _world_transform(self, actor: Actor) -> tuple:
        (mx, my, mz), (mp, myaw, mr) = actor.mount
        if actor.parent and actor.parent == self.ego_id:
            x, y, yaw = self._ego_pose()
            r = math.radians(yaw)
            return (x + mx * math.cos(r) - my * math.sin(r), y + mx * math.sin(r) + my * math.cos(r), mz,
                    mp, yaw + myaw, mr)
        return (mx, my, mz, mp, myaw, mr)

    # -- sensors -------------------------------------------------------------
    def _publish_sensors(self) -> None:
        for actor in list(self.actors.values()):
            if actor.type_id not in ("sensor.camera.rgb", "sensor.camera.semantic_segmentation"):
                continue
            self.streams.wait_expected(actor.id)
            if self.streams.has_subscribers(actor.id):
                self._publish_camera(actor)

    def _visible_boxes(self) -> list:
        """The traffic boxes exactly as EmbeddedSimulator._observe passes them to its renderer."""
        from carla_agent.sim.embedded import simulator as emb

        sim = self.sim
        behind, ahead = getattr(emb, "VIEW_BEHIND_M", math.inf), getattr(emb, "VIEW_AHEAD_M", math.inf)
        return [v.box(sim.road) for v in sim.traffic if v.active and -behind < v.s_m - sim.s < ahead]

    def _publish_camera(self, actor: Actor) -> None:
        from carla_agent.sim.embedded.render import Renderer
        from carla_agent.sim.embedded.weather import resolve_weather
        from carla_agent.sim.scenario import CameraSpec

        w, h = int(actor.attr.get("image_size_x", 800)), int(actor.attr.get("image_size_y", 600))
        fov = float(actor.attr.get("fov", 90.0))
        if actor.renderer is None:
            (mx, my, mz), (mp, _, _) = actor.mount
            spec = CameraSpec(image_size_x=w, image_size_y=h, fov=fov, x_m=float(mx), y_m=-float(my),
                              z_m=float(mz) if mz > 0.3 else 1.5, pitch_deg=float(mp))
            actor.renderer = Renderer(self.sim.road, spec, resolve_weather(self.sim._weather_spec),
                                      self.sim.statics, self.seed)
        st = self.sim.state
        boxes = self._visible_boxes()
        rgb, sem = actor.renderer.render(st.x_m, st.y_m, st.yaw_rad, self.sim.s, boxes, self.sim.frame)
        bgra = actor.bgra
        if bgra is None or bgra.shape != (h, w, 4):
            bgra = actor.bgra = np.zeros((h, w, 4), np.uint8)  # publish() sends it before returning
        if actor.type_id == "sensor.camera.semantic_segmentation":
            np.take(SEMANTIC_TO_CARLA, sem, out=bgra[..., 2])  # CARLA: the tag in the red channel
            bgra[..., 3] = 255
        else:
            cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA, dst=bgra)
        head = (sensor_header(SENSOR_TYPE_RGB, self.frame, self.elapsed_s, self._world_transform(actor))
                + struct.pack("<IIf", w, h, fov))
        self.streams.publish(actor.id, head, memoryview(bgra).cast("B"))

    # -- map -------------------------------------------------------------------
    def get_map_info(self, *a) -> list:
        sim, road = self.sim, self.sim.road
        points = []
        for k in range(5):
            s = sim.start_s + 25.0 * k
            if s > road.length_m - 30.0 and k:
                break
            x, y = road.to_world(s, sim.lane_t)
            points.append([[float(x), -float(y), 0.5], [0.0, -math.degrees(road.heading_at(s)), 0.0]])
        return [self.scenario.name, points]

    def get_map_data(self, *a) -> str:
        return self.sim.xodr()

    # -- actors ----------------------------------------------------------------
    def _spectator(self) -> Actor:
        return Actor(self.spectator_id, 0, "spectator", [])

    def _actor_wire(self, actor: Actor) -> list:
        if actor.type_id.startswith("vehicle."):
            bbox = [[0.0, 0.0, float(actor.extent[2])], [float(e) for e in actor.extent], [0.0, 0.0, 0.0]]
            tags = bytes([TAG_CAR])
        else:
            bbox = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
            tags = b""
        token = self.streams.token(actor.id) if actor.is_sensor else b""
        return [actor.id, actor.parent, [actor.uid, actor.type_id, actor.attributes], bbox, tags, token]

    def _find(self, actor_id) -> Actor:
        actor = self.actors.get(int(actor_id))
        if actor is None:
            raise RpcError(f"actor {actor_id} not found")
        return actor

    def spawn_actor(self, description, transform, *a) -> list:
        return self._spawn(description, transform, 0)

    def spawn_actor_with_parent(self, description, transform, parent_id, *a) -> list:
        self._find(parent_id)
        return self._spawn(description, transform, int(parent_id))

    def _spawn(self, description, transform, parent: int) -> list:
        uid, type_id, attributes = description[0], str(description[1]), list(description[2])
        (x, y, z), (pitch, yaw, roll) = transform
        if type_id.startswith("vehicle."):
            if self.ego_id is not None:
                raise RpcError("the embedded server supports one vehicle (the ego); destroy it first")
            self._start_episode(float(x), float(y), float(yaw))
            self.control = VehicleControl()
            actor = Actor(self._new_id(), uid, type_id, attributes)
            self.ego_id = actor.id
        elif type_id.startswith("sensor."):
            # float32 on the wire: round back to the decimals the client wrote (0.8f -> 0.8)
            r = lambda v: round(float(v), 5)  # noqa: E731
            actor = Actor(self._new_id(), uid, type_id, attributes, parent,
                          ((r(x), r(y), r(z)), (r(pitch), r(yaw), r(roll))))
        else:
            raise RpcError(f"the embedded server cannot spawn {type_id}")
        self.actors[actor.id] = actor
        return self._actor_wire(actor)

    def _start_episode(self, x: float, y: float, yaw_deg: float) -> None:
        """Spawning the ego starts the scenario afresh (same seed: same traffic, same frames as the
        direct backend). A transform within 5 cm / 0.5 deg of the scenario's start snaps to it exactly."""
        from carla_agent.sim.embedded.vehicle import VehicleState

        sim = self.sim
        dt, weather = sim.scenario.dt_s, sim._weather_spec
        sim.reset(self.scenario, self.seed)
        if self._weather_params is not None:
            sim.set_weather(weather)
        if dt != sim.scenario.dt_s:
            sim.scenario = replace(sim.scenario, dt_s=dt)
        st = sim.state
        yaw = -math.radians(yaw_deg)
        dyaw = abs((yaw - st.yaw_rad + math.pi) % (2 * math.pi) - math.pi)
        if math.hypot(x - st.x_m, -y - st.y_m) > 0.05 or dyaw > math.radians(0.5):
            sim.state = VehicleState(x, -y, yaw, 0.0)
            sim.s, _ = sim.road.project(sim.state.x_m, sim.state.y_m, s_hint=sim.s)
            sim._marks_inside = sim._marks_under_car(sim._footprint_t())
        for actor in self.actors.values():
            actor.renderer = None
        self._make_traffic_actors()

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def destroy_actor(self, actor_id, *a) -> bool:
        traffic = self.traffic.get(int(actor_id))
        if traffic is not None:  # gone from the world: no longer drawn, hit or published
            was = traffic.vehicle.active
            traffic.vehicle.active = False
            return was
        actor = self.actors.pop(int(actor_id), None)
        if actor is None:
            return False
        if actor.id == self.ego_id:
            self.ego_id = None
            self.control = VehicleControl()
            for child in [c for c in self.actors.values() if c.parent == actor.id]:
                child.parent = 0
        return True

    def set_actor_transform(self, actor_id, transform, *a):
        """Teleport the ego (speed kept, as CARLA does); the spectator and sensors ignore it."""
        if int(actor_id) == self.ego_id:
            from carla_agent.sim.embedded.vehicle import VehicleState

            (x, y, _), (_, yaw, _) = transform
            sim = self.sim
            st = sim.state
            dyaw = abs((-math.radians(float(yaw)) - st.yaw_rad + math.pi) % (2 * math.pi) - math.pi)
            if math.hypot(float(x) - st.x_m, -float(y) - st.y_m) < 1e-3 and dyaw < 1e-4:
                return VOID  # float32 echo of where it already is: keep the exact state
            sim.state = VehicleState(float(x), -float(y), -math.radians(float(yaw)), sim.state.speed_mps)
            sim.s, _ = sim.road.project(sim.state.x_m, sim.state.y_m, s_hint=sim.s)
            sim._marks_inside = sim._marks_under_car(sim._footprint_t())
            sim._contacts = set()
        return VOID

    def get_actors_by_id(self, ids, *a) -> list:
        out = []
        for i in ids:
            if int(i) == self.spectator_id:
                out.append(self._actor_wire(self._spectator()))
            elif int(i) in self.actors:
                out.append(self._actor_wire(self.actors[int(i)]))
            elif int(i) in self.traffic:
                out.append(self._actor_wire(self.traffic[int(i)]))
        return out

    def get_vehicle_light_states(self, *a) -> list:
        ids = ([self.ego_id] if self.ego_id is not None else []) + [t.id for t in self._live_traffic()]
        return [[i, 0] for i in ids]

    def get_actor_bounding_box(self, actor_id, *a) -> list:
        # Lenient: the client-side Traffic Manager asks from its own thread, where an error aborts
        # the client process; a destroyed actor gets an empty box instead.
        actor = self.actors.get(int(actor_id)) or self.traffic.get(int(actor_id))
        if actor is None:
            return [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
        return self._actor_wire(actor)[3]

    def set_actor_target_velocity(self, actor_id, velocity, *a):
        """The ego's speed becomes the vector's length (m/s; the embedded car moves along its heading)."""
        if int(actor_id) == self.ego_id:
            vx, vy, vz = (float(v) for v in velocity[:3])
            self.sim.state = replace(self.sim.state, speed_mps=math.sqrt(vx * vx + vy * vy + vz * vz))
        return VOID

    def apply_control_to_vehicle(self, actor_id, c, *a):
        if int(actor_id) in self.traffic:
            raise RpcError(f"vehicle {actor_id} is driven by the embedded scenario and takes no control")
        if int(actor_id) != self.ego_id:
            raise RpcError(f"actor {actor_id} is not a vehicle")
        throttle, steer, brake, hand_brake, reverse = (float(c[0]), float(c[1]), float(c[2]), bool(c[3]),
                                                       bool(c[4]))
        self._raw_control = list(c[:7]) + [0] * max(0, 7 - len(c))
        self.control = VehicleControl(steer=min(max(steer, -1.0), 1.0), throttle=min(max(throttle, 0.0), 1.0),
                                      brake=min(max(brake, 0.0), 1.0), hand_brake=hand_brake, reverse=reverse)
        return VOID

    # -- weather -----------------------------------------------------------------
    def get_weather_parameters(self, *a) -> list:
        if self._weather_params is not None:
            return list(self._weather_params)
        from carla_agent.sim.embedded.weather import resolve_weather

        w = resolve_weather(self.sim._weather_spec)
        return [w.cloudiness * 100.0, w.rain * 100.0, w.wetness * 100.0, 10.0, float(w.sun_azimuth_deg),
                float(w.sun_elevation_deg), w.fog_density * 100.0, float(w.fog_start_m), 0.2, w.wetness * 100.0,
                1.0, 0.03, 0.0331, 0.0]

    def set_weather_parameters(self, p, *a):
        """Map CARLA's WeatherParameters onto the nearest embedded preset plus its explicit overrides."""
        from carla_agent.sim.scenario import WeatherSpec

        cloud, rain, _, _, _, sun_alt, fog = (float(v) for v in p[:7])
        exact = _carla_preset_inverse().get(_weather_key(p))
        if exact is not None:  # the weather our CARLA backend sends for an embedded preset: that preset
            self.sim.set_weather(WeatherSpec(preset=exact))
            for actor in self.actors.values():
                actor.renderer = None
            self._weather_params = [float(v) for v in p[:14]]
            return VOID
        if sun_alt < -5.0:
            preset = "night_rain" if rain > 30.0 else "night"
        elif sun_alt < 5.0:
            preset = "dusk"
        elif sun_alt < 20.0:
            preset = "sunset"
        elif rain > 30.0:
            preset = "rain"
        elif fog > 30.0:
            preset = "fog"
        elif cloud > 60.0:
            preset = "overcast"
        else:
            preset = "clear_noon"
        from carla_agent.sim.embedded.weather import resolve_weather

        base = resolve_weather(WeatherSpec(preset=preset))

        def override(value: float, preset_value: float):
            """Keep the preset's own value unless CARLA's differs clearly (so ClearNoon is clear_noon)."""
            v = min(max(value / 100.0, 0.0), 1.0)
            return v if abs(v - preset_value) > 0.15 else None

        spec = WeatherSpec(preset=preset, fog_density=override(fog, base.fog_density),
                           rain=override(rain, base.rain), cloudiness=override(cloud, base.cloudiness))
        self.sim.set_weather(spec)
        for actor in self.actors.values():
            actor.renderer = None
        self._weather_params = [float(v) for v in p[:14]]
        return VOID

    def _add_tm(self, ip_port, *a) -> bool:
        ip, port = str(ip_port[0]), int(ip_port[1])
        if port in self._tms:
            return False
        self._tms[port] = (ip, port)
        return True

    # -- batches -----------------------------------------------------------------
    def apply_batch(self, commands, do_tick=False, *a) -> list:
        """Each command is ``[[variant_index, fields]]``; each answer a ``Response<ActorId>``.

        A batch that asks for a tick from a client that does not own synchronous mode is refused
        whole: nothing is applied and every command answers the ownership error."""
        if do_tick and self._other_owner() is not None:
            message = str(self._ownership_error("apply_batch with a tick"))
            return Raw([[[0, [message]]] for _ in commands])
        if do_tick and self.sync and self.sync_owner != self._cid:
            self.sync_owner = self._cid  # the owner left within its grace period: take it over
        out = []
        for cmd in commands:
            try:
                index, fields = cmd[0][0], cmd[0][1]
                if index != CMD_APPLY_VEHICLE_CONTROL:
                    raise RpcError(f"the embedded server does not support apply_batch command #{index}")
                self.apply_control_to_vehicle(fields[0], fields[1])
                out.append([[1, int(fields[0])]])  # CommandResponse = Response<ActorId>
            except (RpcError, IndexError, TypeError, ValueError) as e:
                out.append([[0, [str(e)]]])
        if do_tick:
            self._tick()
        return Raw(out)  # apply_batch is bound without Response<>: a bare vector<CommandResponse>
