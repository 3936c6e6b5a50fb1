"""A stand-in for a CARLA server, for the CARLA backend's tests.

Only server-side objects are faked: client, world, map, traffic manager,
blueprints, actors, sensors and the data they deliver. Every value type
(Transform, Location, Rotation, Vector3D, VehicleControl, WeatherParameters,
WorldSettings, BoundingBox, LaneType, ...) is the real ``carla`` wheel's, and
the map's waypoints come from the wheel's client-side ``carla.Map`` built from
an embedded road's OpenDRIVE, so ground truth is computed by real CARLA code.

Each fake names the real class it stands for (``_api``). Every public
attribute the backend reads and every call it makes are logged in
:class:`CallLog`, so a test can check them against the wheel's signatures.
Private state starts with ``_`` and is not logged.

Knobs of :class:`FakeServer`: ``version``, ``maps`` / ``current_map``,
``delivery`` ("sync" or "thread": camera data arrives from another thread
after ``tick`` returns), ``late_frames`` (stale and out-of-order frames around
each real one), ``drop_frames`` (camera frames never sent),
``stamp_frames`` (row 0 of each RGB frame holds ``frame % 251``),
``occupied`` (spawn point indices taken), ``fail_on_tick(n, exc)``, ``add_traffic_light``,
``inject_collision`` (a ``static.*`` thing has id 0, as CARLA gives the map's statics), ``xodr`` (the map's
OpenDRIVE instead of :data:`ROAD`'s; spawn points start beside x = 10 m, y = 1.75 m, 0.5 m above the road),
``hang_on_tick(n)`` (the tick never returns, like the 0.9.16 TM race, until
``release()``), ``other_ticker`` (another client ticks a synchronous server).

As strict as CARLA where it matters (issue 19): ``load_world`` and a replay of a
recording made on another map load asynchronously and start a new episode (a new
``World``, ``world.id`` changes; the old one raises when used); cameras send
nothing in ``no_rendering_mode``; ``wait_for_tick`` times out when nobody ticks; a car
spawned above the road falls onto it and bounces before it rests.
"""

from __future__ import annotations

import fnmatch
import math
import threading
from typing import Dict, List, Optional, Tuple

import carla
import numpy as np

from carla_agent.sim.embedded.road_build import build_road
from carla_agent.sim.scenario import parse_scenario
from carla_agent.sim.embedded.xodr import write_xodr

#: The road every fake map is made of: two driving lanes each way, a long
#: straight, a left curve and another straight (OpenDRIVE: 2 x 300 m + 94 m).
ROAD = {"segments": [{"line": 300}, {"curve": {"radius_m": 60, "angle_deg": 90, "turn": "left"}}, {"line": 300}],
        "lanes": {"driving": 2, "oncoming": 2}}
WHEELBASE_M = 2.9
MAX_STEER_DEG = 35.0
#: A car above the road falls (m/s^2) and bounces back with this fraction of its landing speed,
#: until the rebound is under REST_VZ_MPS.
GRAVITY_MPS2 = 9.81
BOUNCE = 0.3
REST_VZ_MPS = 0.2


class CallLog:
    """What the backend did: ``calls`` as ``(api, name, args, kwargs)``, ``reads`` as ``(api, name)``."""

    def __init__(self) -> None:
        self.calls: List[Tuple[str, str, tuple, dict]] = []
        self.reads: set = set()

    def names(self) -> List[str]:
        return [f"{api}.{name}" for api, name, _, _ in self.calls]


class Api:
    """Base of the fakes: logs public attribute reads and method calls."""

    _api = "?"

    def __init__(self, server: "FakeServer") -> None:
        self._server = server

    def __getattribute__(self, name):
        value = object.__getattribute__(self, name)
        if name.startswith("_"):
            return value
        log = object.__getattribute__(self, "_server")._log
        api = object.__getattribute__(self, "_api")
        log.reads.add((api, name))
        if callable(value) and hasattr(value, "__self__"):
            def call(*args, **kwargs):
                log.calls.append((api, name, args, kwargs))
                return value(*args, **kwargs)
            return call
        return value


def _copy_settings(s) -> "carla.WorldSettings":
    return carla.WorldSettings(
        synchronous_mode=s.synchronous_mode, no_rendering_mode=s.no_rendering_mode,
        fixed_delta_seconds=s.fixed_delta_seconds or 0.0, substepping=s.substepping,
        max_substep_delta_time=s.max_substep_delta_time, max_substeps=s.max_substeps,
        max_culling_distance=s.max_culling_distance, deterministic_ragdolls=s.deterministic_ragdolls)


def settings_tuple(s) -> tuple:
    return (s.synchronous_mode, s.no_rendering_mode, s.fixed_delta_seconds, s.substepping,
            s.max_substep_delta_time, s.max_substeps)


def weather_tuple(w) -> tuple:
    return tuple(round(getattr(w, n), 4) for n in ("cloudiness", "precipitation", "sun_altitude_angle",
                                                   "fog_density", "wetness"))


# -- server-side objects ----------------------------------------------------------------

class FakeActorAttribute(Api):
    _api = "ActorAttribute"

    def __init__(self, server, value: str) -> None:
        super().__init__(server)
        self._value = value

    def as_int(self) -> int:
        return int(self._value)

    def as_str(self) -> str:
        return str(self._value)


class FakeBlueprint(Api):
    _api = "ActorBlueprint"

    def __init__(self, server, bp_id: str, attributes: Dict[str, str]) -> None:
        super().__init__(server)
        self._id = bp_id
        self._attrs = dict(attributes)

    @property
    def id(self) -> str:
        return self._id

    def has_attribute(self, name: str) -> bool:
        return name in self._attrs

    def get_attribute(self, name: str) -> FakeActorAttribute:
        return FakeActorAttribute(self._server, self._attrs[name])

    def set_attribute(self, name: str, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Python argument types did not match C++ signature: set_attribute(ActorBlueprint, str, str)")
        if name not in self._attrs:
            raise IndexError(f"blueprint {self._id} has no attribute {name!r}")
        self._attrs[name] = value


_CAMERA_ATTRS = {"image_size_x": "800", "image_size_y": "600", "fov": "90", "sensor_tick": "0.0", "role_name": ""}
#: CARLA 0.9.16's exposure attributes of ``sensor.camera.rgb`` (the semantic camera has none), defaults on Linux.
_EXPOSURE_ATTRS = {"exposure_mode": "histogram", "exposure_compensation": "0.75", "exposure_min_bright": "10.0",
                   "exposure_max_bright": "12.0", "exposure_speed_up": "3.0", "exposure_speed_down": "1.0",
                   "shutter_speed": "200.0", "iso": "100.0", "fstop": "1.4"}
BLUEPRINTS: Dict[str, Dict[str, str]] = {
    "vehicle.lincoln.mkz_2020": {"role_name": "", "number_of_wheels": "4", "color": "0,0,0"},
    "vehicle.tesla.model3": {"role_name": "", "number_of_wheels": "4", "color": "0,0,0"},
    "vehicle.audi.tt": {"role_name": "", "number_of_wheels": "4", "color": "0,0,0"},
    "vehicle.harley-davidson.low_rider": {"role_name": "", "number_of_wheels": "2"},
    "sensor.camera.rgb": dict(_CAMERA_ATTRS, **_EXPOSURE_ATTRS),
    "sensor.camera.semantic_segmentation": dict(_CAMERA_ATTRS),
    "sensor.other.collision": {"role_name": ""},
    "sensor.other.lane_invasion": {"role_name": ""},
}


class FakeBlueprintLibrary(Api):
    _api = "BlueprintLibrary"

    def __init__(self, server, ids: List[str]) -> None:
        super().__init__(server)
        self._ids = list(ids)

    def filter(self, wildcard_pattern: str) -> "FakeBlueprintLibrary":
        return FakeBlueprintLibrary(self._server, [i for i in self._ids if fnmatch.fnmatch(i, wildcard_pattern)])

    def find(self, id: str) -> FakeBlueprint:  # noqa: A002 - CARLA's name
        if id not in self._ids:
            raise IndexError(f"no blueprint {id}")
        return FakeBlueprint(self._server, id, BLUEPRINTS[id])

    def __iter__(self):
        return iter([FakeBlueprint(self._server, i, BLUEPRINTS[i]) for i in self._ids])

    def __len__(self) -> int:
        return len(self._ids)


class FakeActor(Api):
    _api = "Actor"

    def __init__(self, server, actor_id: int, type_id: str, attributes: Dict[str, str], transform,
                 parent: Optional["FakeActor"] = None) -> None:
        super().__init__(server)
        self._id = actor_id
        self._type_id = type_id
        self._attrs = dict(attributes)
        self._transform = transform
        self._parent = parent
        self._alive = True

    @property
    def id(self) -> int:
        return self._id

    @property
    def type_id(self) -> str:
        return self._type_id

    @property
    def attributes(self) -> Dict[str, str]:
        return dict(self._attrs)

    @property
    def is_alive(self) -> bool:
        return self._alive

    @property
    def bounding_box(self):
        return carla.BoundingBox(carla.Location(0, 0, 0.75), carla.Vector3D(2.4, 1.0, 0.75))

    @property
    def parent(self):
        return self._parent

    def get_transform(self):
        if self._parent is not None:
            return self._parent._transform
        return carla.Transform(self._transform.location, self._transform.rotation)

    def get_location(self):
        return self.get_transform().location

    def set_transform(self, transform) -> None:
        if not isinstance(transform, carla.Transform):
            raise TypeError("set_transform needs a carla.Transform")
        self._transform = carla.Transform(transform.location, transform.rotation)

    def get_velocity(self):
        return carla.Vector3D(0.0, 0.0, 0.0)

    def destroy(self) -> bool:
        return self._server._destroy(self)


class FakeVehicle(FakeActor):
    _api = "Vehicle"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._speed = 0.0
        self._vz = 0.0  # vertical speed (m/s): a car spawned above the road falls and bounces
        self._control = carla.VehicleControl()
        self._autopilot = False

    def apply_control(self, control) -> None:
        if not isinstance(control, carla.VehicleControl):
            raise TypeError("apply_control needs a carla.VehicleControl")
        self._control = control

    def get_control(self):
        c = self._control
        return carla.VehicleControl(throttle=c.throttle, steer=c.steer, brake=c.brake)

    def set_autopilot(self, enabled: bool = True, tm_port: int = 8000) -> None:
        self._autopilot = bool(enabled)
        self._server._events.append(("autopilot", self._id, bool(enabled), tm_port))

    def get_speed_limit(self) -> float:
        return 50.0

    def set_light_state(self, light_state) -> None:
        if not isinstance(light_state, carla.VehicleLightState):
            raise TypeError("set_light_state needs a carla.VehicleLightState")
        self._lights = light_state

    def get_light_state(self):
        return getattr(self, "_lights", carla.VehicleLightState.NONE)

    def get_velocity(self):
        yaw = math.radians(self._transform.rotation.yaw)
        return carla.Vector3D(self._speed * math.cos(yaw), self._speed * math.sin(yaw), self._vz)

    def set_target_velocity(self, velocity) -> None:
        if not isinstance(velocity, carla.Vector3D):
            raise TypeError("set_target_velocity needs a carla.Vector3D")
        self._speed = math.hypot(velocity.x, velocity.y)
        self._vz = float(velocity.z)

    def get_physics_control(self):
        half = WHEELBASE_M * 50.0  # wheel positions are in cm
        wheels = [carla.WheelPhysicsControl(max_steer_angle=MAX_STEER_DEG if i < 2 else 0.0,
                                            position=carla.Vector3D(half if i < 2 else -half, 80.0 * (-1) ** i, 30.0))
                  for i in range(4)]
        return carla.VehiclePhysicsControl(wheels=wheels)

    def _step(self, dt: float) -> None:
        c = self._control
        if self._autopilot:
            c = self._server._autopilot_control(self)
            self._control = c
        accel = 4.0 * c.throttle - 8.0 * c.brake - 0.05 * self._speed
        if c.hand_brake:
            accel = -8.0
        self._speed = max(0.0, self._speed + accel * dt)
        t = self._transform
        yaw = math.radians(t.rotation.yaw)
        sign = -1.0 if c.reverse else 1.0
        yaw += sign * self._speed * math.tan(math.radians(MAX_STEER_DEG) * c.steer) / WHEELBASE_M * dt
        x = t.location.x + sign * self._speed * math.cos(yaw) * dt
        y = t.location.y + sign * self._speed * math.sin(yaw) * dt
        z = self._fall(t.location.z, x, y, dt)
        self._transform = carla.Transform(carla.Location(x=x, y=y, z=z), carla.Rotation(yaw=math.degrees(yaw)))

    def _fall(self, z: float, x: float, y: float, dt: float) -> float:
        """Gravity down to the road (the map's lane surface), then damped bounces on the suspension
        until a rebound is under :data:`REST_VZ_MPS`, as a CARLA car dropped from a spawn point."""
        ground = self._server._map.get_waypoint(carla.Location(x=x, y=y, z=z)).transform.location.z
        if z <= ground + 1e-9 and self._vz <= 0.0:
            self._vz = 0.0
            return ground
        self._vz -= GRAVITY_MPS2 * dt
        z += self._vz * dt
        if z <= ground:
            z = ground
            rebound = BOUNCE * -self._vz
            self._vz = rebound if rebound > REST_VZ_MPS else 0.0
        return z


class FakeSensor(FakeActor):
    _api = "ServerSideSensor"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._callback = None

    def listen(self, callback) -> None:
        self._callback = callback

    def stop(self) -> None:
        self._callback = None
        self._server._events.append(("stop", self._id))

    def is_listening(self) -> bool:
        return self._callback is not None


class FakeClientSideSensor(FakeSensor):
    _api = "ClientSideSensor"


class FakeTrafficLight(FakeActor):
    """A traffic light of the map (not spawned by anyone: never in :meth:`FakeServer.alive`).
    Its one stop line is the lane-centre waypoint at ``stop``; tests set ``_state``."""

    _api = "TrafficLight"

    def __init__(self, server, actor_id: int, stop, state) -> None:
        super().__init__(server, actor_id, "traffic.traffic_light", {}, carla.Transform(stop))
        self._stop = stop
        self._state = state

    @property
    def state(self):
        return self._state

    def get_state(self):
        return self._state

    def get_stop_waypoints(self) -> list:
        return [self._server._map.get_waypoint(self._stop)]


class FakeActorList(Api):
    _api = "ActorList"

    def __init__(self, server, actors: List[FakeActor]) -> None:
        super().__init__(server)
        self._actors = list(actors)

    def filter(self, wildcard_pattern: str) -> "FakeActorList":
        return FakeActorList(self._server, [a for a in self._actors if fnmatch.fnmatch(a._type_id, wildcard_pattern)])

    def __iter__(self):
        return iter(self._actors)

    def __len__(self) -> int:
        return len(self._actors)


# -- sensor data ---------------------------------------------------------------------

class FakeImage(Api):
    _api = "Image"

    def __init__(self, server, frame: int, bgra: np.ndarray, fov: float) -> None:
        super().__init__(server)
        self._frame = frame
        self._bgra = bgra
        self._fov = fov

    frame = property(lambda self: self._frame)
    width = property(lambda self: self._bgra.shape[1])
    height = property(lambda self: self._bgra.shape[0])
    fov = property(lambda self: self._fov)
    raw_data = property(lambda self: self._bgra.tobytes())
    timestamp = property(lambda self: self._frame * 0.05)


class FakeLaneMarking(Api):
    _api = "LaneMarking"

    def __init__(self, server, kind) -> None:
        super().__init__(server)
        self._kind = kind

    type = property(lambda self: self._kind)


class FakeCollisionEvent(Api):
    _api = "CollisionEvent"

    def __init__(self, server, frame: int, other: FakeActor, impulse) -> None:
        super().__init__(server)
        self._frame, self._other, self._impulse = frame, other, impulse

    frame = property(lambda self: self._frame)
    other_actor = property(lambda self: self._other)
    normal_impulse = property(lambda self: self._impulse)


class FakeLaneInvasionEvent(Api):
    _api = "LaneInvasionEvent"

    def __init__(self, server, frame: int, markings) -> None:
        super().__init__(server)
        self._frame, self._markings = frame, markings

    frame = property(lambda self: self._frame)
    crossed_lane_markings = property(lambda self: list(self._markings))


# -- world, map, traffic manager, client ---------------------------------------------------

class FakeMap(Api):
    _api = "Map"

    @property
    def name(self) -> str:
        return self._server._map_path

    def get_spawn_points(self) -> list:
        return [carla.Transform(t.location, t.rotation) for t in self._server._spawn_points]

    def get_waypoint(self, location, project_to_road: bool = True, lane_type=carla.LaneType.Driving):
        return self._server._map.get_waypoint(location, project_to_road, lane_type)

    def to_opendrive(self) -> str:
        return self._server._xodr


class FakeTrafficManager(Api):
    _api = "TrafficManager"

    def __init__(self, server, port: int) -> None:
        super().__init__(server)
        self._port = port
        self._sync = False
        self._paths: Dict[int, list] = {}

    def get_port(self) -> int:
        return self._port

    def set_synchronous_mode(self, mode_switch: bool) -> None:
        self._sync = bool(mode_switch)

    def set_random_device_seed(self, value: int) -> None:
        self._seed = int(value)

    def set_global_distance_to_leading_vehicle(self, distance: float) -> None:
        pass

    def global_percentage_speed_difference(self, percentage: float) -> None:
        pass

    def auto_lane_change(self, actor, enable: bool) -> None:
        pass

    def ignore_lights_percentage(self, actor, perc: float) -> None:
        pass

    def set_desired_speed(self, actor, speed: float) -> None:
        self._server._autopilot_speed = speed / 3.6

    def set_path(self, actor, path: list, empty_buffer: bool = True) -> None:
        if not all(isinstance(p, carla.Location) for p in path):
            raise TypeError("set_path needs a list of carla.Location")
        self._paths[actor._id] = list(path)


class FakeWorld(Api):
    _api = "World"

    def __init__(self, server) -> None:
        super().__init__(server)
        self._episode = server._episode

    def __getattribute__(self, name):
        if not name.startswith("_") and name != "id":
            if object.__getattribute__(self, "_episode") != object.__getattribute__(self, "_server")._episode:
                raise RuntimeError("trying to access an expired episode; a new episode was started in the "
                                   "simulation but an object tried accessing the old one.")
        return super().__getattribute__(name)

    @property
    def id(self) -> int:
        return self._episode

    def wait_for_tick(self, seconds: float = 10.0):
        if not self._server._other_ticker:
            raise RuntimeError(f"time-out of {int(seconds * 1000)}ms while waiting for the simulator")
        self._server._frame += 1
        return self._server._frame

    def get_settings(self):
        return _copy_settings(self._server._settings)

    def apply_settings(self, settings, seconds: float = 0.0) -> int:
        if not isinstance(settings, carla.WorldSettings):
            raise TypeError("apply_settings needs a carla.WorldSettings")
        self._server._settings = _copy_settings(settings)
        return self._server._frame

    def get_map(self) -> FakeMap:
        return FakeMap(self._server)

    def get_blueprint_library(self) -> FakeBlueprintLibrary:
        return FakeBlueprintLibrary(self._server, sorted(BLUEPRINTS))

    def get_weather(self):
        w = self._server._weather
        return carla.WeatherParameters(cloudiness=w.cloudiness, precipitation=w.precipitation,
                                       sun_altitude_angle=w.sun_altitude_angle, fog_density=w.fog_density,
                                       wetness=w.wetness)

    def set_weather(self, weather) -> None:
        if not isinstance(weather, carla.WeatherParameters):
            raise TypeError("set_weather needs a carla.WeatherParameters")
        self._server._weather = weather

    def get_spectator(self) -> FakeActor:
        return self._server._spectator

    def get_actors(self) -> FakeActorList:
        return FakeActorList(self._server, [a for a in self._server._actors.values() if a._alive])

    def try_spawn_actor(self, blueprint, transform, attach_to=None):
        return self._server._spawn(blueprint, transform, attach_to)

    def spawn_actor(self, blueprint, transform, attach_to=None):
        actor = self._server._spawn(blueprint, transform, attach_to)
        if actor is None:
            raise RuntimeError("Spawn failed because of collision at spawn position")
        return actor

    def tick(self, seconds: float = 0.0) -> int:
        return self._server._tick()


class FakeClient(Api):
    _api = "Client"

    def __init__(self, server, host: str, port: int) -> None:
        super().__init__(server)
        server._log.calls.append(("Client", "__init__", (host, port), {}))
        self._where = f"{host}:{port}"
        self._timeout = 5.0

    def set_timeout(self, seconds: float) -> None:
        self._timeout = seconds

    def get_client_version(self) -> str:
        return "0.9.16"

    def get_server_version(self) -> str:
        return self._server._version

    def get_world(self) -> FakeWorld:
        self._server._poll_load()
        return self._server._world

    def get_available_maps(self) -> list:
        return list(self._server._map_paths)

    def load_world(self, map_name: str, reset_settings: bool = True) -> FakeWorld:
        return self._server._load(map_name)

    def get_trafficmanager(self, port: int = 8000) -> FakeTrafficManager:
        tms = self._server._tms
        if port not in tms:
            tms[port] = FakeTrafficManager(self._server, port)
        return tms[port]

    def start_recorder(self, name: str, additional_data: bool = False) -> str:
        self._server._recorder = name
        self._server._recording = []
        return f"Recording on file: {name}"

    def stop_recorder(self) -> None:
        if self._server._recorder is not None:
            self._server._recordings[self._server._recorder] = self._server._recording
            self._server._recording_maps[self._server._recorder] = self._server._map_path
        self._server._recorder = None

    def show_recorder_file_info(self, name: str, show_all: bool) -> str:
        frames = self._server._recordings.get(name)
        if frames is None:
            return f"File {name} not found on server\n"
        path = self._server._recording_maps.get(name, self._server._map_path)
        return (f"Version: 1\nMap: {path.split('/')[-1]}\n\nFrames: {len(frames)}\n"
                f"Duration: {len(frames) * 0.05:.4f} seconds\n")

    def replay_file(self, name: str, time_start: float, duration: float, follow_id: int,
                    replay_sensors: bool = False) -> str:
        return self._server._replay(name)

    def stop_replayer(self, keep_actors: bool) -> None:
        self._server._stop_replay(keep_actors)


class FakeServer:
    """The server's state. ``client(host, port)`` is the backend's ``client_factory``."""

    def __init__(self, version: str = "0.9.16", maps=("Town01", "Town03", "Town04", "Town10HD_Opt"),
                 current_map: str = "Town10HD_Opt", delivery: str = "sync", late_frames: bool = False,
                 drop_frames=(), stamp_frames: bool = False, occupied=(), xodr: Optional[str] = None) -> None:
        self._log = CallLog()
        self._version = version
        self._map_paths = [f"/Game/Carla/Maps/{m}" for m in maps]
        self._map_path = f"/Game/Carla/Maps/{current_map}"
        if xodr is None:
            xodr = write_xodr(build_road(parse_scenario({"road": ROAD}, "<double>").road, name="double"))
        self._xodr = xodr
        self._map = carla.Map(current_map, xodr)
        self._spawn_points = self._make_spawn_points()
        self._settings = carla.WorldSettings()
        self._weather = carla.WeatherParameters(cloudiness=30.0, sun_altitude_angle=20.0)
        self._frame = 5000
        self._ticks = 0
        self._actors: Dict[int, FakeActor] = {}
        self._next_id = 100
        self._tms: Dict[int, FakeTrafficManager] = {}
        self._recorder: Optional[str] = None
        self._recording: list = []
        self._recordings: Dict[str, list] = {}
        self._recording_maps: Dict[str, str] = {}
        self._episode = 1
        self._pending_load: Optional[list] = None  # [map path, polls left, then()] of an asynchronous load
        self._other_ticker = False
        self._hang: Optional[int] = None
        self._release = threading.Event()
        self._replay_state: Optional[list] = None
        self._events: list = []
        self._errors: List[str] = []
        self._pending_collisions: list = []
        self._pending_invasions: list = []
        self._fail: Optional[Tuple[int, BaseException]] = None
        self._delivery = delivery
        self._late_frames = late_frames
        self._drop_frames = set(drop_frames)
        self._stamp = stamp_frames
        self._occupied = set(occupied)
        self._autopilot_speed = 8.0
        self._threads: List[threading.Thread] = []
        self._loads = 0
        self._world = FakeWorld(self)
        self._spectator = FakeActor(self, 1, "spectator", {}, carla.Transform())
        self._actors[1] = self._spectator
        self.initial_settings = settings_tuple(self._settings)
        self.initial_weather = weather_tuple(self._weather)

    # -- what tests use ---------------------------------------------------------
    def client(self, host: str, port: int) -> FakeClient:
        return FakeClient(self, host, port)

    @property
    def log(self) -> CallLog:
        return self._log

    @property
    def carla_map(self):
        return self._map

    def hang_on_tick(self, n: int) -> None:
        """The ``n``-th tick from now never returns (until :meth:`release`), like the 0.9.16 TM race."""
        self._hang = self._ticks + n

    def release(self) -> None:
        self._release.set()

    def fail_on_tick(self, n: int, exc: BaseException) -> None:
        """Raise ``exc`` inside the ``n``-th tick from now."""
        self._fail = (self._ticks + n, exc)

    def inject_collision(self, other_type_id: str = "vehicle.audi.tt", impulse_ns: float = 900.0) -> None:
        self._pending_collisions.append((other_type_id, impulse_ns))

    def inject_lane_invasion(self, *markings: str) -> None:
        self._pending_invasions.append(markings or ("Broken",))

    def add_traffic_light(self, x_m: float, y_m: float, state=carla.TrafficLightState.Red) -> FakeTrafficLight:
        """A traffic light of the map whose stop line crosses the lane at ``(x_m, y_m)``."""
        self._next_id += 1
        light = FakeTrafficLight(self, self._next_id, carla.Location(x=x_m, y=y_m, z=0.0), state)
        self._actors[light._id] = light
        return light

    def spawn_vehicle_at(self, transform, type_id: str = "vehicle.audi.tt") -> FakeVehicle:
        return self._spawn(FakeBlueprint(self, type_id, BLUEPRINTS[type_id]), transform, None)

    def alive(self) -> List[FakeActor]:
        return [a for a in self._actors.values()
                if a._alive and a is not self._spectator and not isinstance(a, FakeTrafficLight)]

    def state(self) -> dict:
        """What a test checks after cleanup."""
        return {
            "settings": settings_tuple(self._settings),
            "weather": weather_tuple(self._weather),
            "tm_sync": any(tm._sync for tm in self._tms.values()),
            "alive": [a._type_id for a in self.alive()],
            "recording": self._recorder,
            "replaying": self._replay_state is not None,
            "errors": list(self._errors),
        }

    def clean(self) -> bool:
        st = self.state()
        return (st["settings"] == self.initial_settings and st["weather"] == self.initial_weather
                and not st["tm_sync"] and not st["alive"] and st["recording"] is None
                and not st["replaying"] and not st["errors"])

    def join(self) -> None:
        for t in self._threads:
            t.join()

    # -- internals --------------------------------------------------------------
    def _make_spawn_points(self) -> list:
        points = []
        wp = self._map.get_waypoint(carla.Location(x=10.0, y=1.75, z=0.0))  # lane -1, driving +x
        for _ in range(12):
            t = wp.transform
            points.append(carla.Transform(carla.Location(x=t.location.x, y=t.location.y, z=0.5), t.rotation))
            nxt = wp.next(25.0)
            if not nxt:
                break
            wp = nxt[0]
        return points

    def _spawn(self, blueprint, transform, attach_to):
        if not isinstance(transform, carla.Transform):
            raise TypeError("spawn needs a carla.Transform")
        bp_id = blueprint._id
        if bp_id.startswith("vehicle."):
            for i in self._occupied:
                p = self._spawn_points[i].location
                if math.hypot(p.x - transform.location.x, p.y - transform.location.y) < 0.5:
                    return None
            for a in self.alive():
                if isinstance(a, FakeVehicle):
                    p = a._transform.location
                    if math.hypot(p.x - transform.location.x, p.y - transform.location.y) < 3.0:
                        return None
        self._next_id += 1
        if bp_id.startswith("vehicle."):
            cls = FakeVehicle
        elif bp_id == "sensor.other.lane_invasion":
            cls = FakeClientSideSensor
        else:
            cls = FakeSensor
        actor = cls(self, self._next_id, bp_id, blueprint._attrs, carla.Transform(transform.location, transform.rotation),
                    parent=attach_to)
        self._actors[actor._id] = actor
        self._events.append(("spawn", actor._id, bp_id))
        return actor

    def _destroy(self, actor: FakeActor) -> bool:
        if not actor._alive:
            return False
        if isinstance(actor, FakeSensor) and actor._callback is not None:
            self._errors.append(f"sensor {actor._type_id} destroyed while listening (stop() it first)")
        for other in self.alive():
            if other._parent is actor:
                self._errors.append(f"{actor._type_id} destroyed before its attached {other._type_id}")
        actor._alive = False
        self._events.append(("destroy", actor._id, actor._type_id))
        return True

    def _load(self, map_name: str) -> FakeWorld:
        if self._settings.synchronous_mode:
            self._errors.append("load_world in synchronous mode (hangs, #1412)")
        path = next((p for p in self._map_paths if p.split("/")[-1] == map_name.split("/")[-1]), None)
        if path is None:
            raise RuntimeError(f"map '{map_name}' not found")
        self._new_episode(path)  # the wheel's load_world waits for the new episode
        self._settings = carla.WorldSettings()  # reset_settings=True
        return self._world

    def _new_episode(self, path: str) -> None:
        for a in self.alive():
            a._alive = False
        self._map_path = path
        self._weather = carla.WeatherParameters.ClearNoon
        self.initial_weather = weather_tuple(carla.WeatherParameters.ClearNoon)
        self._loads += 1
        self._episode += 1
        self._world = FakeWorld(self)

    def _poll_load(self) -> None:
        """An asynchronous load (a replay on another map) finishes after a few looks at the server."""
        if self._pending_load is None:
            return
        self._pending_load[1] -= 1
        if self._pending_load[1] <= 0:
            path, _, then = self._pending_load
            self._pending_load = None
            self._new_episode(path)
            self._settings.synchronous_mode = False
            then()

    def _replay(self, name: str) -> str:
        frames = self._recordings.get(name)
        if frames is None:
            return f"File {name} not found on server"
        self._settings.synchronous_mode = False  # replay_file reloads the map asynchronously (#4144)

        def start() -> None:
            bp = FakeBlueprint(self, "vehicle.lincoln.mkz_2020", dict(BLUEPRINTS["vehicle.lincoln.mkz_2020"],
                                                                      role_name="hero"))
            self._replay_state = [self._spawn(bp, frames[0], None), list(frames), 0]

        path = self._recording_maps.get(name, self._map_path)
        if path != self._map_path:  # CARLA opens the recording's map, then starts the replay in it
            self._pending_load = [path, 3, start]
        else:
            start()
        return f"Replaying file: {name}"

    def _stop_replay(self, keep_actors: bool) -> None:
        if self._replay_state is not None and not keep_actors:
            hero = self._replay_state[0]
            if hero._alive:
                for other in self.alive():  # cameras the client forgot would dangle: flag them
                    if other._parent is hero:
                        self._errors.append(f"{other._type_id} still attached to the replayed hero")
                hero._alive = False
        self._replay_state = None

    def _autopilot_control(self, vehicle: FakeVehicle):
        t = vehicle._transform
        wp = self._map.get_waypoint(t.location)
        ahead = wp.next(8.0)
        target = (ahead[0] if ahead else wp).transform.location
        angle = math.atan2(target.y - t.location.y, target.x - t.location.x) - math.radians(t.rotation.yaw)
        angle = (angle + math.pi) % (2 * math.pi) - math.pi
        steer = float(np.clip(2.0 * angle, -1.0, 1.0))
        throttle = 0.6 if vehicle._speed < self._autopilot_speed else 0.0
        return carla.VehicleControl(throttle=throttle, steer=steer)

    def _tick(self) -> int:
        if not self._settings.synchronous_mode:
            raise RuntimeError("world.tick() while the server is in asynchronous mode")
        self._ticks += 1
        if self._hang is not None and self._ticks == self._hang:
            self._release.wait()
        if self._fail is not None and self._ticks == self._fail[0]:
            exc, self._fail = self._fail[1], None
            raise exc
        dt = self._settings.fixed_delta_seconds or 0.05
        for a in self.alive():
            if isinstance(a, FakeVehicle) and (self._replay_state is None or a is not self._replay_state[0]):
                a._step(dt)
        if self._replay_state is not None:
            hero, frames, i = self._replay_state
            if i < len(frames):
                hero._transform = frames[i]
            self._replay_state[2] = i + 1
        self._frame += 1
        frame = self._frame
        if self._recorder is not None:
            for a in self.alive():
                if a._attrs.get("role_name") == "hero":
                    self._recording.append(carla.Transform(a._transform.location, a._transform.rotation))
        self._deliver(frame)
        return frame

    def _deliver(self, frame: int) -> None:
        jobs = []
        for sensor in [a for a in self.alive() if isinstance(a, FakeSensor)]:
            cb = sensor._callback
            if cb is None or sensor._parent is None or not sensor._parent._alive:
                continue
            kind = sensor._type_id
            if kind.startswith("sensor.camera."):
                if self._settings.no_rendering_mode:
                    continue  # nothing is rendered: cameras send nothing
                if kind == "sensor.camera.rgb" and (self._ticks in self._drop_frames):
                    continue
                make = (lambda f, s=sensor: FakeImage(self, f, self._render(s, f), float(s._attrs["fov"])))
                if self._late_frames:
                    jobs.append((cb, make(frame - 2)))  # stale, in order
                    jobs.append((cb, make(frame)))
                    jobs.append((cb, make(frame - 1)))  # stale, out of order, after the real one
                else:
                    jobs.append((cb, make(frame)))
            elif kind == "sensor.other.collision":
                for other_type, impulse in self._pending_collisions:
                    # CARLA reports every static object of the map with id 0.
                    other_id = 0 if other_type.startswith("static.") else 9000 + len(other_type)
                    other = FakeActor(self, other_id, other_type, {}, carla.Transform())
                    jobs.append((cb, FakeCollisionEvent(self, frame, other, carla.Vector3D(impulse, 0.0, 0.0))))
                    jobs.append((cb, FakeCollisionEvent(self, frame, other, carla.Vector3D(impulse / 2, 0.0, 0.0))))
            elif kind == "sensor.other.lane_invasion":
                for marks in self._pending_invasions:
                    kinds = [FakeLaneMarking(self, carla.LaneMarkingType.names[m]) for m in marks]
                    jobs.append((cb, FakeLaneInvasionEvent(self, frame, kinds)))
        self._pending_collisions = []
        self._pending_invasions = []
        if self._delivery == "thread":
            def run(jobs=jobs):
                for cb, item in jobs:
                    threading.Event().wait(0.002)
                    cb(item)
            t = threading.Thread(target=run, daemon=True)
            self._threads.append(t)
            t.start()
        else:
            for cb, item in jobs:
                cb(item)

    def _render(self, sensor: FakeSensor, frame: int) -> np.ndarray:
        w, h = int(sensor._attrs["image_size_x"]), int(sensor._attrs["image_size_y"])
        t = sensor._parent._transform
        img = np.zeros((h, w, 4), np.uint8)
        img[..., 3] = 255
        if sensor._type_id == "sensor.camera.rgb":
            img[..., 0] = int(t.location.x * 10) % 256
            img[..., 1] = int(t.location.y * 10) % 256
            img[..., 2] = int(t.rotation.yaw * 4) % 256
            img[h // 2:, : w // 2, 1] = 200  # B, G, R order: a green block bottom left
            if self._stamp:
                img[0, :, :3] = frame % 251
        else:  # CityScapes ids in the red channel
            img[..., 2] = 1  # Roads
            img[: h // 4, :, 2] = 11  # Sky
            img[h // 4: h // 2, :, 2] = 9  # Vegetation
            img[h // 2:, w // 2 - 1: w // 2 + 1, 2] = 24  # RoadLines
            img[h // 2: h // 2 + 4, :4, 2] = 14  # Car
            img[0, 0, 2] = 0
        return img


def make_double_simulator(server: Optional[FakeServer] = None, **options):
    """A :class:`~carla_agent.sim.carla_backend.simulator.CarlaSimulator` connected to ``server`` (a new one by default)."""
    from carla_agent.sim.carla_backend import CarlaSimulator

    server = server if server is not None else FakeServer()
    options.setdefault("timeout_s", 2.0)
    return CarlaSimulator(client_factory=server.client, **options)
