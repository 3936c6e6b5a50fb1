"""The CARLA backend: the simulator contract against a real CARLA 0.9.15/0.9.16 server.

This is the only module that imports ``carla``, and it does so lazily: importing
it needs neither the wheel nor a server. Constructing :class:`CarlaSimulator`
connects, compares client and server versions, and fails within ``timeout_s``
with one line saying where it tried and how to start a server.

One episode (``reset`` to the next ``reset`` or ``close``) is a *session*: it
records every change it makes on the server (settings, Traffic Manager
synchronous mode, weather, recorder, actors, sensors) and
:meth:`_Session.restore` undoes them in order on every exit path: normal end,
an exception inside a tick, Ctrl-C. Nothing is done in ``__del__``.

The one-ticker pattern of CARLA's ``synchronous_mode.py``: sensor callbacks only
enqueue; after each ``world.tick()`` the camera frames whose ``frame`` equals the
tick's frame id are taken, stale ones dropped, and a missing one times out with
a clear error. Ground truth (lateral offset, heading error, route ahead) comes
from the client-side map (``map.get_waypoint`` and ``waypoint.next``), so it is
testable without a server on ``carla.Map(name, xodr_text)``.

Frames: ``Observation.frame`` counts ticks since ``reset`` (the contract's
episode frame); CARLA's own frame id of the last tick is ``sim.info.carla_frame``.
"""

from __future__ import annotations

import logging
import math
import queue
import re
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Iterator, List, Literal, Optional, Sequence, Tuple, Union

import numpy as np

from carla_agent.control import VehicleControl
from carla_agent.errors import BackendError, ScenarioError
from carla_agent.control.pure_pursuit import PurePursuitParams, pure_pursuit_steer
from carla_agent.sim.criteria import route_completion_pct
from carla_agent.sim.observation import (CollisionEvent, GroundTruth, LaneInvasionEvent, Observation, Pose,
                                     SemanticClass)
from carla_agent.schema import build, field
from carla_agent.sim.simulator import Simulator

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 2000
DEFAULT_TM_PORT = 8000
#: The CARLA release this client is written and tested against.
CARLA_VERSION = "0.9.16"

#: Spacing of the planned route's waypoints, metres. Chord error at r = 10 m: 1.25 cm.
ROUTE_STEP_M = 1.0
#: The episode ends this far before the end of a route that runs into a dead end.
END_MARGIN_M = 8.0
#: A recovered ego is put this far above the lane centre, so it never spawns into the road.
RECOVER_LIFT_M = 0.2
#: Spectator: behind and above the ego.
SPECTATOR_BACK_M = 7.0
SPECTATOR_UP_M = 3.0
SPECTATOR_PITCH_DEG = -15.0
#: Vehicles further than this along the route are not leads.
LEAD_RANGE_M = 100.0

#: Semantic tags of CARLA >= 0.9.14 (``carla.CityObjectLabel``), CityScapes-style ids.
CITYSCAPES_IDS: Dict[str, int] = {
    "NONE": 0, "Roads": 1, "Sidewalks": 2, "Buildings": 3, "Walls": 4, "Fences": 5, "Poles": 6,
    "TrafficLight": 7, "TrafficSigns": 8, "Vegetation": 9, "Terrain": 10, "Sky": 11, "Pedestrians": 12,
    "Rider": 13, "Car": 14, "Truck": 15, "Bus": 16, "Train": 17, "Motorcycle": 18, "Bicycle": 19,
    "Static": 20, "Dynamic": 21, "Other": 22, "Water": 23, "RoadLines": 24, "Ground": 25, "Bridge": 26,
    "RailTrack": 27, "GuardRail": 28,
}
_SEMANTIC_OF: Dict[SemanticClass, Tuple[str, ...]] = {
    SemanticClass.ROAD: ("Roads",),
    SemanticClass.LANE_MARKING: ("RoadLines",),
    SemanticClass.SHOULDER: ("Sidewalks",),
    SemanticClass.TERRAIN: ("Vegetation", "Terrain", "Ground", "Water", "RailTrack"),
    SemanticClass.SKY: ("Sky",),
    SemanticClass.VEHICLE: ("Car", "Truck", "Bus", "Train", "Motorcycle", "Bicycle", "Rider"),
    SemanticClass.OBJECT: ("Buildings", "Walls", "Fences", "Poles", "TrafficLight", "TrafficSigns",
                           "Pedestrians", "Static", "Dynamic", "Other", "Bridge", "GuardRail"),
}


def _semantic_lut() -> np.ndarray:
    lut = np.full(256, SemanticClass.UNLABELED, dtype=np.uint8)
    for cls, names in _SEMANTIC_OF.items():
        for name in names:
            lut[CITYSCAPES_IDS[name]] = cls
    return lut


#: CityScapes id (the red channel of ``sensor.camera.semantic_segmentation``) -> SemanticClass.
SEMANTIC_LUT: np.ndarray = _semantic_lut()

#: The embedded weather presets mapped onto CARLA's, with field overrides.
_WEATHER_OF_PRESET: Dict[str, Tuple[str, Dict[str, float]]] = {
    "clear_noon": ("ClearNoon", {}),
    "overcast": ("CloudyNoon", {}),
    "fog": ("CloudyNoon", {"fog_density": 60.0, "fog_distance": 10.0}),
    "rain": ("MidRainyNoon", {}),
    "sunset": ("ClearSunset", {}),
    "night": ("ClearNight", {}),
    "night_rain": ("HardRainNight", {}),
    "dusk": ("CloudySunset", {}),
}


def import_carla():
    """The ``carla`` module, or a :class:`BackendError` saying how to install it."""
    try:
        import carla  # noqa: PLC0415 - the only place the package imports carla
    except ImportError as exc:
        raise BackendError(
            f"the CARLA backend needs CARLA's Python client: pip install carla=={CARLA_VERSION} "
            f"(wheels for CPython 3.10-3.12; carla==0.9.15 for 3.7-3.10), or use --backend embedded ({exc})"
        ) from None
    return carla


# -- scenario: the free ``carla:`` block, validated -------------------------------

@dataclass(frozen=True)
class TransformSpec:
    """A spawn transform in CARLA's world frame (metres, degrees; y right/south, yaw clockwise)."""

    x_m: float
    y_m: float
    z_m: float = field(0.5, min=-100.0, max=1000.0, help="spawn height; 0.3-0.6 above the road")
    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    roll_deg: float = 0.0


@dataclass(frozen=True)
class TrafficManagerSpec:
    """Traffic Manager options (``carla.TrafficManager``)."""

    seed: Optional[int] = field(None, min=0, help="random device seed; default: the reset seed")
    vehicles: int = field(0, min=0, max=300, help="NPC vehicles spawned on autopilot")
    vehicle_filter: str = "vehicle.*"
    speed_difference_pct: float = field(0.0, min=-100.0, max=100.0,
                                        help="global_percentage_speed_difference; >0 drives slower")
    distance_to_leading_m: float = field(2.5, min=0.0, max=50.0)
    ignore_lights_pct: float = field(0.0, min=0.0, max=100.0, help="the ego on autopilot ignores red lights")


@dataclass(frozen=True)
class CarlaSpec:
    """The ``carla:`` block of a scenario. Every key is optional.

    Attributes:
        map: map to load, compared by its last path part (``Town04`` matches
            ``/Game/Carla/Maps/Town04``; ``Town10HD`` also matches ``Town10HD_Opt``).
            None keeps the loaded map.
        spawn_point: index into ``map.get_spawn_points()``; occupied points are
            skipped to the next one. Default 0.
        spawn_transform: an explicit spawn transform instead of an index.
        spawn_min_lanes: only spawn points whose road has at least this many
            driving lanes in the ego's direction, outside junctions (e.g. 3 puts
            the ego on Town04's highway without hard-coding an index).
        blueprint: blueprint filter of the ego; default ``ego.blueprint``.
        weather: a ``carla.WeatherParameters`` preset name (``ClearNoon``,
            ``HardRainNight``, ...) or a mapping of its fields, optionally with
            ``preset:`` as the base. Default: the scenario's ``weather:`` mapped
            onto CARLA's presets.
        route_length_m: length of the route to drive from the spawn point along
            ``waypoint.next``. Default: target speed x duration.
        route_waypoints / route_spacing_m: the points of ``truth.route_ahead``.
        junctions: which branch the route takes at junctions.
        expert: ``pure_pursuit`` on the route (noise injection by the caller), or
            the Traffic Manager's ``autopilot`` following the route
            (``truth.expert_steer`` is then its applied steer; controls passed
            to ``step`` are ignored).
        semantic_camera: spawn ``sensor.camera.semantic_segmentation`` aligned
            with the RGB camera (fills ``truth.semantic``).
        spectator: the spectator camera follows the ego.
        settle_ticks: ticks after spawning before the first observation.
    """

    map: Optional[str] = None
    spawn_point: Optional[int] = field(None, min=0, max=100000)
    spawn_transform: Optional[TransformSpec] = None
    spawn_min_lanes: int = field(1, min=1, max=6, help="skip spawn points on roads with fewer lanes going the ego's way")
    blueprint: Optional[str] = None
    weather: Optional[Union[str, dict]] = None
    route_length_m: Optional[float] = field(None, min=10.0, max=50000.0)
    route_waypoints: int = field(20, min=2, max=500)
    route_spacing_m: float = field(2.0, min=0.5, max=20.0)
    junctions: Literal["straight", "left", "right", "random"] = "straight"
    expert: Literal["pure_pursuit", "autopilot"] = "pure_pursuit"
    traffic_manager: TrafficManagerSpec = TrafficManagerSpec()
    semantic_camera: bool = True
    spectator: bool = True
    settle_ticks: int = field(2, min=0, max=200)


def carla_spec(scenario) -> CarlaSpec:
    """Validate ``scenario.carla`` into a :class:`CarlaSpec`; errors name file, field and fix."""
    src = scenario.source
    spec = build(CarlaSpec, scenario.carla or {}, src, "carla")
    if spec.spawn_point is not None and spec.spawn_transform is not None:
        raise ScenarioError(f"{src}: field 'carla': give either 'spawn_point' (an index) or 'spawn_transform', not both")
    if spec.weather is not None:
        weather_parameters(spec.weather, src)  # validates names and fields
    return spec


def _weather_fields(carla) -> List[str]:
    probe = carla.WeatherParameters()
    return sorted(n for n in dir(probe) if not n.startswith("_") and n[0].islower()
                  and isinstance(getattr(probe, n), (int, float)))


def _weather_presets(carla) -> List[str]:
    return sorted(n for n in dir(carla.WeatherParameters)
                  if n[0].isupper() and isinstance(getattr(carla.WeatherParameters, n), carla.WeatherParameters))


def weather_parameters(weather: Union[str, dict], source: str = "<memory>"):
    """A ``carla.WeatherParameters`` from a preset name or a mapping of fields.

    The mapping may name a ``preset`` as its base; other keys override fields,
    e.g. ``{preset: WetNoon, fog_density: 40}``.
    """
    carla = import_carla()
    presets = _weather_presets(carla)
    if isinstance(weather, str):
        if weather not in presets:
            raise ScenarioError(f"{source}: field 'carla.weather': unknown preset {weather!r}; "
                                f"known: {', '.join(presets)}, or a mapping of WeatherParameters fields")
        return getattr(carla.WeatherParameters, weather)
    fields = _weather_fields(carla)
    base = weather.get("preset", "ClearNoon")
    if base not in presets:
        raise ScenarioError(f"{source}: field 'carla.weather.preset': unknown preset {base!r}; known: {', '.join(presets)}")
    src = getattr(carla.WeatherParameters, base)
    params = carla.WeatherParameters(**{name: getattr(src, name) for name in fields})
    for key, value in weather.items():
        if key == "preset":
            continue
        if key not in fields:
            raise ScenarioError(f"{source}: field 'carla.weather.{key}': not a WeatherParameters field; "
                                f"known: preset, {', '.join(fields)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ScenarioError(f"{source}: field 'carla.weather.{key}': expected a number, got {value!r}")
        setattr(params, key, float(value))
    return params


def scenario_weather(scenario, spec: CarlaSpec) -> Tuple[object, str]:
    """``(carla.WeatherParameters, name)`` for a scenario: ``carla.weather``, else its ``weather:``."""
    carla = import_carla()
    if spec.weather is not None:
        name = spec.weather if isinstance(spec.weather, str) else "custom"
        return weather_parameters(spec.weather, scenario.source), name
    w = scenario.weather
    preset, overrides = _WEATHER_OF_PRESET.get(w.preset, ("ClearNoon", {}))
    values = dict(overrides)
    if w.fog_density is not None:
        values["fog_density"] = 100.0 * w.fog_density
    if w.rain is not None:
        values["precipitation"] = 100.0 * w.rain
        values["precipitation_deposits"] = 100.0 * w.rain
        values["wetness"] = 100.0 * w.rain
    if w.cloudiness is not None:
        values["cloudiness"] = 100.0 * w.cloudiness
    params = weather_parameters(dict(values, preset=preset), scenario.source) if values else \
        getattr(carla.WeatherParameters, preset)
    return params, w.preset


# -- connection --------------------------------------------------------------------

def _version_key(version: str) -> Tuple:
    m = re.match(r"\s*(\d+)\.(\d+)\.(\d+)", version or "")
    return tuple(int(g) for g in m.groups()) if m else (version or "",)


def server_hint(port: int) -> str:
    return (f"start the server (CARLA {CARLA_VERSION}) with `./CarlaUE4.sh -RenderOffScreen -carla-rpc-port={port}`, "
            "or use the embedded simulator with `--backend embedded`")


def connect(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, timeout_s: float = 10.0,
            client_factory: Optional[Callable] = None, allow_version_mismatch: bool = False):
    """A ``carla.Client`` that answered, with matching versions: ``(client, client_version, server_version)``.

    ``client_factory(host, port)`` replaces ``carla.Client`` (the tests' double).
    """
    carla = import_carla()
    factory = client_factory if client_factory is not None else carla.Client
    where = f"{host}:{port}"
    try:
        client = factory(host, int(port))
        client.set_timeout(float(timeout_s))
        server_version = client.get_server_version()
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        why = f"no answer within {timeout_s:g} s" if "time-out" in first or "timeout" in first.lower() else first
        raise BackendError(f"cannot connect to a CARLA server at {where}: {why}; {server_hint(port)}") from None
    client_version = client.get_client_version()
    if _version_key(client_version) != _version_key(server_version):
        if not allow_version_mismatch:
            raise BackendError(
                f"CARLA version mismatch: the Python client is {client_version} but the server at {where} is "
                f"{server_version}; install the matching client (pip install carla=={server_version}) or start a "
                f"{client_version} server, or pass --allow-version-mismatch to try anyway")
        log.warning("CARLA client %s and server %s differ; continuing as asked", client_version, server_version)
    return client, client_version, server_version


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, RuntimeError) and "time-out" in str(exc)


def map_key(name: str) -> str:
    """The last path part of a map name: ``/Game/Carla/Maps/Town04`` -> ``Town04``."""
    return str(name).rstrip("/").split("/")[-1]


def match_map(wanted: str, available: Iterable[str]) -> Optional[str]:
    """The available map that ``wanted`` names (by last path part; ``_Opt`` optional), or None."""
    paths = {map_key(p): p for p in available}
    want = map_key(wanted)
    for candidate in (want, want + "_Opt", want[:-4] if want.endswith("_Opt") else None):
        if candidate and candidate in paths:
            return paths[candidate]
    lower = {k.lower(): v for k, v in paths.items()}
    return lower.get(want.lower())


# -- frames ------------------------------------------------------------------------

class SensorQueue:
    """One sensor's data, matched to tick frame ids. The listen callback only enqueues.

    Args:
        name: the sensor's name, for error messages.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: "queue.Queue" = queue.Queue()
        self._early: Dict[int, object] = {}
        self.dropped = 0

    def put(self, data) -> None:
        """The ``sensor.listen`` callback: runs on CARLA's thread, must not block."""
        self._queue.put(data)

    def get(self, frame: int, timeout_s: float):
        """The item whose ``.frame == frame``; older ones are dropped. Raises BackendError on time-out."""
        for f in [f for f in self._early if f < frame]:
            del self._early[f]
            self.dropped += 1
        if frame in self._early:
            return self._early.pop(frame)
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=max(remaining, 0.0)) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                raise BackendError(
                    f"the {self.name} sent no data for frame {frame} within {timeout_s:g} s; the server may be "
                    "overloaded (try -quality-level=Low or a smaller image) or another client is ticking") from None
            got = int(item.frame)
            if got == frame:
                return item
            if got < frame:
                self.dropped += 1
            else:
                self._early[got] = item

    def drain(self) -> list:
        """Everything queued now, without blocking, ordered by frame (event sensors)."""
        items = list(self._early.values())
        self._early.clear()
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return sorted(items, key=lambda e: int(e.frame))


def _bgra(image) -> np.ndarray:
    h, w = int(image.height), int(image.width)
    buf = np.frombuffer(image.raw_data, dtype=np.uint8)  # a read-only view: no copy
    if buf.size != h * w * 4:
        raise BackendError(f"camera frame {image.frame}: {buf.size} bytes for {w}x{h} BGRA")
    return buf.reshape(h, w, 4)


def bgra_to_rgb(image) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB from a ``carla.Image``: one copy, from the BGRA view."""
    return np.ascontiguousarray(_bgra(image)[:, :, 2::-1])


def semantic_labels(image) -> np.ndarray:
    """``(H, W)`` uint8 :class:`SemanticClass` from a semantic camera's raw image (ids in red)."""
    return SEMANTIC_LUT[_bgra(image)[:, :, 2]]


def collision_kind(type_id: str) -> str:
    """The leaderboard's class of what was hit: ``vehicle``, ``pedestrian`` or ``static``."""
    if type_id.startswith("vehicle."):
        return "vehicle"
    if type_id.startswith("walker."):
        return "pedestrian"
    return "static"


# -- ground truth on the client-side map -----------------------------------------------

def wrap_pi(a: float) -> float:
    return (a + math.pi) % (2.0 * math.pi) - math.pi


def signed_offset(x: float, y: float, transform) -> float:
    """Distance of ``(x, y)`` from ``transform``'s location along its right vector (positive right)."""
    right = transform.get_right_vector()
    loc = transform.location
    norm = math.hypot(right.x, right.y) or 1.0
    return ((x - loc.x) * right.x + (y - loc.y) * right.y) / norm


def heading_error(vehicle_yaw_deg: float, lane_yaw_deg: float) -> float:
    """Vehicle yaw minus lane yaw in radians, wrapped to [-pi, pi]; positive: pointing right."""
    return wrap_pi(math.radians(vehicle_yaw_deg - lane_yaw_deg))


def lane_waypoint(carla_map, location, lane_key: Optional[Tuple[int, int]] = None):
    """The lane-centre waypoint beside ``location``: ``map.get_waypoint(loc, project_to_road=True,
    lane_type=Driving)``, moved sideways to the lane ``(road_id, lane_id)`` when given.

    Returns None when that lane is not within four lanes of the nearest one.
    """
    carla = import_carla()
    wp = carla_map.get_waypoint(location, project_to_road=True, lane_type=carla.LaneType.Driving)
    if wp is None or lane_key is None or (wp.road_id, wp.lane_id) == lane_key:
        return wp
    for step in ("get_left_lane", "get_right_lane"):
        other = wp
        for _ in range(4):
            other = getattr(other, step)()
            if other is None:
                break
            if (other.road_id, other.lane_id) == lane_key:
                return other
    return None


def lanes_same_way(carla_map, location) -> int:
    """Driving lanes going the same way as the lane at ``location`` (0 in a junction or off road)."""
    carla = import_carla()
    wp = carla_map.get_waypoint(location, project_to_road=True, lane_type=carla.LaneType.Driving)
    if wp is None or wp.is_junction:
        return 0
    count = 1
    for step in ("get_left_lane", "get_right_lane"):
        other = getattr(wp, step)()
        for _ in range(8):
            if other is None or other.lane_id * wp.lane_id <= 0:
                break
            if other.lane_type == carla.LaneType.Driving:
                count += 1
            other = getattr(other, step)()
    return count


def off_road(carla_map, location) -> bool:
    """True when ``location`` is on no driving lane."""
    carla = import_carla()
    return carla_map.get_waypoint(location, project_to_road=False, lane_type=carla.LaneType.Driving) is None


@dataclass(frozen=True)
class RouteProjection:
    s_m: float
    index: int
    lateral_m: float  # positive right of the route
    yaw_deg: float


class Route:
    """Lane-centre waypoints from a start waypoint, following ``waypoint.next(step)``.

    Positions are in CARLA's world frame. ``s`` is the distance along the route.
    """

    def __init__(self, waypoints: Sequence) -> None:
        if len(waypoints) < 2:
            raise BackendError("the route has fewer than 2 waypoints: no driving lane continues from the spawn point")
        self.waypoints = list(waypoints)
        locs = [w.transform.location for w in self.waypoints]
        self.xy = np.array([(p.x, p.y) for p in locs], dtype=np.float64)
        self.z = np.array([p.z for p in locs], dtype=np.float64)
        self.keys = [(w.road_id, w.lane_id) for w in self.waypoints]
        self.lane_width = np.array([w.lane_width for w in self.waypoints], dtype=np.float64)
        seg = np.hypot(*np.diff(self.xy, axis=0).T)
        self.s = np.concatenate([[0.0], np.cumsum(seg)])
        self.length_m = float(self.s[-1])

    @classmethod
    def plan(cls, start, length_m: float, step_m: float = ROUTE_STEP_M, junctions: str = "straight",
             rng: Optional[np.random.Generator] = None) -> "Route":
        """Follow ``start.next(step_m)`` for ``length_m`` metres, choosing branches by ``junctions``."""
        rng = rng if rng is not None else np.random.default_rng(0)
        wps = [start]
        wp = start
        for _ in range(int(math.ceil(length_m / step_m))):
            options = wp.next(step_m)
            if not options:
                log.warning("the route ends after %.0f m (dead end)", (len(wps) - 1) * step_m)
                break
            wp = options[0] if len(options) == 1 else _choose(wp, options, junctions, rng)
            wps.append(wp)
        return cls(wps)

    def project(self, x: float, y: float, hint: Optional[int] = None, window_m: float = 30.0) -> RouteProjection:
        """The closest point of the route to ``(x, y)``, searched near ``hint`` when given."""
        n = len(self.s)
        if hint is None:
            lo, hi = 0, n
        else:
            k = int(window_m / max(self.s[-1] / (n - 1), 1e-6)) + 1
            lo, hi = max(0, hint - k), min(n, hint + k + 1)
        d2 = (self.xy[lo:hi, 0] - x) ** 2 + (self.xy[lo:hi, 1] - y) ** 2
        i = lo + int(np.argmin(d2))
        best = None
        for j in (i - 1, i):
            if 0 <= j < n - 1:
                p0 = self.xy[j]
                seg = self.xy[j + 1] - p0
                length = float(math.hypot(seg[0], seg[1])) or 1e-9
                fx, fy = seg / length
                ex, ey = x - p0[0], y - p0[1]
                u = min(max(ex * fx + ey * fy, 0.0), length)
                dist = math.hypot(ex - u * fx, ey - u * fy)
                if best is None or dist < best[0]:
                    lateral = ex * -fy + ey * fx  # CARLA's right vector is (-sin yaw, cos yaw)
                    best = (dist, RouteProjection(float(self.s[j] + u), j, float(lateral),
                                                  math.degrees(math.atan2(fy, fx))))
        return best[1]

    def point_at(self, s_m: float) -> Tuple[float, float, float, float]:
        """``(x, y, z, yaw_deg)`` of the route at distance ``s_m`` (clamped)."""
        s = min(max(float(s_m), 0.0), self.length_m)
        j = min(int(np.searchsorted(self.s, s, side="right")) - 1, len(self.s) - 2)
        f = (s - self.s[j]) / max(self.s[j + 1] - self.s[j], 1e-9)
        p = self.xy[j] + f * (self.xy[j + 1] - self.xy[j])
        d = self.xy[j + 1] - self.xy[j]
        z = self.z[j] + f * (self.z[j + 1] - self.z[j])
        return float(p[0]), float(p[1]), float(z), math.degrees(math.atan2(d[1], d[0]))

    def ahead(self, x: float, y: float, yaw_deg: float, s_m: float, distances_m: np.ndarray) -> np.ndarray:
        """``(N, 2)`` float32 route points at ``s + distances`` in the vehicle frame (x forward, y right).

        Cut where the distance from the car stops growing (a hairpin), so the
        points stay ordered by distance.
        """
        s = np.minimum(s_m + np.asarray(distances_m, dtype=np.float64), self.length_m)
        px = np.interp(s, self.s, self.xy[:, 0]) - x
        py = np.interp(s, self.s, self.xy[:, 1]) - y
        c, sn = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
        pts = np.stack([px * c + py * sn, -px * sn + py * c], axis=1)
        dist = np.hypot(pts[:, 0], pts[:, 1])
        falling = np.nonzero(np.diff(dist) < -1e-3)[0]
        if len(falling):
            pts = pts[:falling[0] + 1]
        return pts.astype(np.float32)


def _choose(wp, options, junctions: str, rng: np.random.Generator):
    if junctions == "random":
        return options[int(rng.integers(len(options)))]
    yaw0 = wp.transform.rotation.yaw

    def turn(option) -> float:  # positive: turns right (CARLA's yaw is clockwise)
        far = option.next(10.0)
        yaw = (far[0] if far else option).transform.rotation.yaw
        return math.degrees(wrap_pi(math.radians(yaw - yaw0)))

    turns = [turn(o) for o in options]
    if junctions == "left":
        return options[int(np.argmin(turns))]
    if junctions == "right":
        return options[int(np.argmax(turns))]
    return options[int(np.argmin(np.abs(turns)))]


# -- the session: everything one run changed on the server --------------------------------

def _each(items, action: Callable, what: str) -> None:
    """``action(item)`` for every item even when some fail; a Ctrl-C is re-raised at the end."""
    interrupted: Optional[BaseException] = None
    for item in items:
        try:
            action(item)
        except KeyboardInterrupt as exc:
            interrupted = interrupted or exc
        except Exception as exc:  # noqa: BLE001
            log.warning("cleanup: could not %s: %s", what, exc)
            if _is_timeout(exc):
                raise
    if interrupted is not None:
        raise interrupted


class _Session:
    """Records each change made on the server, so :meth:`restore` can undo it in order:
    settings, Traffic Manager sync mode, sensors (stop, then destroy), vehicles,
    recorder, replayer, weather. Each step runs even when an earlier one failed;
    a Ctrl-C during cleanup is re-raised after the rest is done."""

    def __init__(self, client) -> None:
        self.client = client
        self.world = None
        self.map = None
        self.original_settings = None
        self.settings_applied = False
        self.tm = None
        self.tm_sync = False
        self.sensors: List = []
        self.queues: Dict[str, SensorQueue] = {}
        self.vehicles: List = []  # destroyed in reverse order
        self.ego = None
        self.spectator = None
        self.recording = False
        self.replaying = False
        self.original_weather = None
        self.weather_changed = False

    def restore(self) -> None:
        steps = [
            ("restore the world settings", self._restore_settings),
            ("switch the Traffic Manager's synchronous mode off", self._tm_async),
            ("stop the sensors", self._stop_sensors),
            ("destroy the sensors", self._destroy_sensors),
            ("destroy the vehicles", self._destroy_vehicles),
            ("stop the recorder", self._stop_recorder),
            ("stop the replayer", self._stop_replayer),
            ("restore the weather", self._restore_weather),
        ]
        interrupted: Optional[BaseException] = None
        for what, step in steps:
            try:
                step()
            except KeyboardInterrupt as exc:
                interrupted = interrupted or exc
                log.warning("cleanup: interrupted while trying to %s; finishing the cleanup first", what)
            except Exception as exc:  # noqa: BLE001 - every step must get its chance
                log.warning("cleanup: could not %s: %s", what, exc)
                if _is_timeout(exc):
                    log.warning("cleanup: the server stopped answering; skipping the rest of the cleanup")
                    break
        if interrupted is not None:
            raise interrupted

    def _restore_settings(self) -> None:
        if self.settings_applied and self.world is not None:
            self.world.apply_settings(self.original_settings)
        self.settings_applied = False

    def _tm_async(self) -> None:
        if self.tm_sync:
            self.tm.set_synchronous_mode(False)
        self.tm_sync = False

    def _stop_sensors(self) -> None:
        _each(list(self.sensors), lambda sensor: sensor.stop(), "stop a sensor")

    def _destroy_sensors(self) -> None:
        sensors, self.sensors = self.sensors, []
        _each(reversed(sensors), lambda sensor: sensor.destroy(), "destroy a sensor")

    def _destroy_vehicles(self) -> None:
        vehicles, self.vehicles, self.ego = self.vehicles, [], None
        _each(reversed(vehicles), lambda vehicle: vehicle.destroy(), "destroy a vehicle")

    def _stop_recorder(self) -> None:
        if self.recording:
            self.recording = False
            self.client.stop_recorder()

    def _stop_replayer(self) -> None:
        if self.replaying:
            self.replaying = False
            self.client.stop_replayer(False)

    def _restore_weather(self) -> None:
        if self.weather_changed and self.world is not None:
            self.weather_changed = False
            self.world.set_weather(self.original_weather)

    # -- setup helpers shared by the simulator and the replay ------------------------
    def capture(self, world) -> None:
        """Remember the settings to restore (before any change, map loads included)."""
        self.world = world
        self.original_settings = world.get_settings()
        if self.original_settings.synchronous_mode:
            log.warning("the server is already in synchronous mode: another client may be ticking it "
                        "(only one may); its settings will be restored as found on exit")

    def apply_sync(self, world, dt_s: float) -> None:
        """Synchronous mode with a fixed step, on the settings the server returned."""
        if self.original_settings is None:
            self.capture(world)
        self.world = world
        settings = world.get_settings()
        settings.synchronous_mode = True
        settings.fixed_delta_seconds = float(dt_s)
        if settings.substepping and dt_s > settings.max_substep_delta_time * settings.max_substeps + 1e-9:
            # CARLA needs fixed_delta_seconds <= max_substep_delta_time * max_substeps, max_substeps <= 16.
            settings.max_substeps = min(16, int(math.ceil(dt_s / settings.max_substep_delta_time - 1e-9)))
            if dt_s > settings.max_substep_delta_time * settings.max_substeps:
                settings.max_substep_delta_time = dt_s / settings.max_substeps
        self.settings_applied = True  # set first: a time-out may still have applied them
        world.apply_settings(settings)

    def spawn_camera(self, name: str, blueprint_id: str, camera, parent) -> None:
        """A camera like ``scenario.camera``, attached to ``parent``; its frames go to ``queues[name]``."""
        carla = import_carla()
        bp = self.world.get_blueprint_library().find(blueprint_id)
        for key, value in (("image_size_x", camera.image_size_x), ("image_size_y", camera.image_size_y),
                           ("fov", camera.fov), ("sensor_tick", 0.0)):
            bp.set_attribute(key, str(value))
        mount = carla.Transform(carla.Location(x=camera.x_m, y=camera.y_m, z=camera.z_m),
                                carla.Rotation(pitch=camera.pitch_deg))
        self._spawn_sensor(name, bp, mount, parent)

    def spawn_event_sensor(self, name: str, blueprint_id: str, parent) -> None:
        carla = import_carla()
        bp = self.world.get_blueprint_library().find(blueprint_id)
        self._spawn_sensor(name, bp, carla.Transform(), parent)

    def _spawn_sensor(self, name: str, bp, transform, parent) -> None:
        sensor = self.world.spawn_actor(bp, transform, attach_to=parent)
        self.sensors.append(sensor)
        q = SensorQueue(name)
        self.queues[name] = q
        sensor.listen(q.put)


def _pursuit_params(ego) -> PurePursuitParams:
    """Wheelbase and maximum steering angle of the ego, from its physics control."""
    try:
        wheels = ego.get_physics_control().wheels
        front = [(wheels[0].position.x + wheels[1].position.x) / 2, (wheels[0].position.y + wheels[1].position.y) / 2]
        rear = [(wheels[2].position.x + wheels[3].position.x) / 2, (wheels[2].position.y + wheels[3].position.y) / 2]
        wheelbase = math.hypot(front[0] - rear[0], front[1] - rear[1]) / 100.0  # wheel positions are in cm
        max_steer = float(wheels[0].max_steer_angle)
        if 1.0 < wheelbase < 8.0 and 10.0 < max_steer < 90.0:
            return PurePursuitParams(wheelbase_m=wheelbase, max_steer_deg=max_steer)
    except (RuntimeError, AttributeError, IndexError) as exc:
        log.debug("no physics control for pure pursuit (%s); using defaults", exc)
    return PurePursuitParams(max_steer_deg=70.0)


@dataclass(frozen=True)
class CarlaInfo:
    """What the last tick knew beyond the :class:`Observation`.

    Attributes:
        carla_frame: CARLA's frame id of the tick.
        off_road: the ego's centre is on no driving lane.
        on_route_lane: the ego is in the route's lane.
        route_completion_pct: leaderboard route completion.
        recorder_file: the recording of this episode, or None.
    """

    carla_frame: int
    off_road: bool
    on_route_lane: bool
    route_completion_pct: float
    recorder_file: Optional[str] = None


class CarlaSimulator(Simulator):
    """Backend ``carla``: a CARLA 0.9.15/0.9.16 server in synchronous mode.

    Args:
        host, port: the server's RPC address (``-carla-rpc-port``).
        tm_port: the Traffic Manager's port.
        timeout_s: client time-out for connecting and ticking.
        record: record each episode with CARLA's recorder (``client.start_recorder``).
        recorder_file: file name template of the recordings; ``{scenario}``,
            ``{seed}``, ``{episode}`` and ``{time}`` are filled in. A plain name
            is saved in the server's ``CarlaUE4/Saved`` folder.
        allow_version_mismatch: go on when client and server versions differ.
        autopilot: override the scenario's ``carla.expert`` (True: Traffic Manager autopilot).
        sensor_timeout_s: how long to wait for a camera frame (default ``timeout_s``).
        load_timeout_s: client time-out while loading a map (map loads are slow).
        client_factory: ``factory(host, port)`` used instead of ``carla.Client`` (tests).

    Extras: ``recorder_file`` (this episode's recording, for the drive log),
    ``recorder_files`` (all of them), ``info`` (:class:`CarlaInfo` of the last tick),
    ``route`` (the planned :class:`Route`), ``client_version``, ``server_version``.
    """

    name = "carla"

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, tm_port: int = DEFAULT_TM_PORT,
                 timeout_s: float = 10.0, *, record: bool = False,
                 recorder_file: str = "carla_agent_{scenario}_seed{seed}_ep{episode}_{time}.log",
                 allow_version_mismatch: bool = False, autopilot: Optional[bool] = None,
                 sensor_timeout_s: Optional[float] = None, load_timeout_s: float = 60.0,
                 client_factory: Optional[Callable] = None, **unused) -> None:
        if unused:
            log.debug("carla backend ignores options %s", sorted(unused))
        self._carla = import_carla()
        self.host, self.port, self.tm_port = host, int(port), int(tm_port)
        self.timeout_s = float(timeout_s)
        self.sensor_timeout_s = float(sensor_timeout_s) if sensor_timeout_s is not None else self.timeout_s
        self.load_timeout_s = float(load_timeout_s)
        self.record = bool(record)
        self.recorder_template = recorder_file
        self.autopilot_override = autopilot
        self.client, self.client_version, self.server_version = connect(
            host, self.port, self.timeout_s, client_factory, allow_version_mismatch)
        self.scenario = None
        self.route: Optional[Route] = None
        self.info: Optional[CarlaInfo] = None
        self.recorder_file: Optional[str] = None
        self.recorder_files: List[str] = []
        self._session: Optional[_Session] = None
        self._episode = 0
        self._closed = False

    # -- contract --------------------------------------------------------
    def reset(self, scenario, seed: int = 0) -> Observation:
        if self._closed:
            raise BackendError("the CARLA simulator was closed; create a new one")
        spec = carla_spec(scenario)  # scenario errors before touching the server
        self._end_session()
        self._session = _Session(self.client)
        try:
            self._start(scenario, spec, int(seed))
            return self._observe()
        except BaseException as exc:
            self._end_session()
            if isinstance(exc, RuntimeError):  # what carla raises for time-outs and refused requests
                raise BackendError(f"CARLA server at {self.host}:{self.port} failed during reset: "
                                   f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
            raise

    def step(self, control: VehicleControl) -> Observation:
        if self._session is None:
            raise BackendError("call reset(scenario) before step()")
        try:
            if self._recover_pending:
                self._recover_pending = False
                self._place_on_route()
            if not self._autopilot:
                self._session.ego.apply_control(self._carla.VehicleControl(
                    throttle=float(control.throttle), steer=float(control.steer), brake=float(control.brake),
                    hand_brake=bool(control.hand_brake), reverse=bool(control.reverse)))
            return self._observe()
        except BaseException as exc:
            self._end_session()  # never leave the server frozen in synchronous mode
            if isinstance(exc, RuntimeError):
                raise BackendError(f"CARLA server at {self.host}:{self.port} failed during a tick: "
                                   f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
            raise

    def recover(self) -> None:
        if self._session is None:
            raise BackendError("call reset(scenario) before recover()")
        self._recover_pending = True

    def close(self) -> None:
        """Restore the server as found (settings, Traffic Manager, weather) and destroy what was spawned."""
        if self._closed:
            return
        self._closed = True
        self._end_session()

    # -- episode setup ----------------------------------------------------
    def _end_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.restore()

    def _start(self, scenario, spec: CarlaSpec, seed: int) -> None:
        carla = self._carla
        s = self._session
        self.scenario = scenario
        self.spec = spec
        self._episode += 1
        self._recover_pending = False
        self._contacts: set = set()
        self._autopilot = spec.expert == "autopilot" if self.autopilot_override is None else bool(self.autopilot_override)
        rng = np.random.default_rng(seed)
        world = self.client.get_world()
        s.capture(world)
        world, carla_map = self._ensure_map(world, spec.map, scenario.source)
        s.world, s.map = world, carla_map
        s.original_weather = world.get_weather()
        s.apply_sync(world, scenario.dt_s)
        tm_spec = spec.traffic_manager
        tm = None
        if tm_spec.vehicles or self._autopilot:
            # Only when something drives on autopilot: the wheel's client-side Traffic Manager can hang
            # in its synchronous tick (a lost wake-up inside libcarla, see docs/serve.md), so a drive
            # that does not need it never starts it.
            tm = self.client.get_trafficmanager(self.tm_port)
            s.tm = tm
            s.tm_sync = True
            tm.set_synchronous_mode(True)
            tm.set_random_device_seed(int(tm_spec.seed if tm_spec.seed is not None else seed))
            tm.set_global_distance_to_leading_vehicle(float(tm_spec.distance_to_leading_m))
            tm.global_percentage_speed_difference(float(tm_spec.speed_difference_pct))
        weather, self.weather_name = scenario_weather(scenario, spec)
        s.weather_changed = True
        world.set_weather(weather)
        if self.record:
            self.recorder_file = self.recorder_template.format(
                scenario=scenario.name, seed=seed, episode=self._episode, time=time.strftime("%Y%m%d-%H%M%S"))
            s.recording = True
            self.client.start_recorder(self.recorder_file, False)
            self.recorder_files.append(self.recorder_file)
            log.info("recording to %s on the server", self.recorder_file)
        else:
            self.recorder_file = None
        ego, spawn_index, spawn = self._spawn_ego(scenario, spec)
        start = carla_map.get_waypoint(spawn.location, project_to_road=True, lane_type=carla.LaneType.Driving)
        if start is None:
            raise BackendError("the spawn point is on no driving lane; pick another carla.spawn_point")
        length = spec.route_length_m or max(50.0, scenario.target_speed_mps * scenario.duration_s)
        self._ahead_m = spec.route_spacing_m * np.arange(1, spec.route_waypoints + 1)
        self.route = Route.plan(start, length + float(self._ahead_m[-1]), ROUTE_STEP_M, spec.junctions, rng)
        self.route_length_m = min(length, self.route.length_m - END_MARGIN_M)
        if self.route_length_m <= 0:
            raise BackendError(f"the road from spawn point {spawn_index} is only {self.route.length_m:.0f} m long; "
                               "pick another carla.spawn_point")
        self._route_index = 0
        self._pp = _pursuit_params(ego)
        self._ego_half_length = float(ego.bounding_box.extent.x)
        camera = scenario.camera
        s.spawn_camera("rgb camera", "sensor.camera.rgb", camera, ego)
        if spec.semantic_camera:
            s.spawn_camera("semantic camera", "sensor.camera.semantic_segmentation", camera, ego)
        s.spawn_event_sensor("collision", "sensor.other.collision", ego)
        s.spawn_event_sensor("lane invasion", "sensor.other.lane_invasion", ego)
        self._spawn_traffic(tm_spec, spawn_index, rng)
        if self._autopilot:
            ego.set_autopilot(True, tm.get_port())
            tm.auto_lane_change(ego, False)
            tm.ignore_lights_percentage(ego, float(tm_spec.ignore_lights_pct))
            tm.set_desired_speed(ego, float(scenario.ego.target_speed_kmh))
            every = max(1, int(round(5.0 / ROUTE_STEP_M)))
            tm.set_path(ego, [w.transform.location for w in self.route.waypoints[every::every]])
        s.spectator = world.get_spectator() if spec.spectator else None
        for _ in range(spec.settle_ticks):
            world.tick(self.timeout_s)
            for q in s.queues.values():
                q.drain()
        self._steps = -1  # the first observation is frame 0

    def _ensure_map(self, world, wanted: Optional[str], source: str):
        carla_map = world.get_map()
        if wanted is None or map_key(carla_map.name) == map_key(wanted) \
                or match_map(wanted, [carla_map.name]) is not None:
            return world, carla_map
        available = self.client.get_available_maps()
        target = match_map(wanted, available)
        if target is None:
            names = ", ".join(sorted({map_key(m) for m in available}))
            raise ScenarioError(f"{source}: field 'carla.map': the server at {self.host}:{self.port} has no map "
                                f"{wanted!r}; available: {names}")
        log.info("loading %s (was %s)", map_key(target), map_key(carla_map.name))
        self.client.set_timeout(self.load_timeout_s)
        try:
            world = self.client.load_world(map_key(target))
        finally:
            self.client.set_timeout(self.timeout_s)
        return world, world.get_map()

    def _spawn_ego(self, scenario, spec: CarlaSpec):
        carla = self._carla
        s = self._session
        pattern = spec.blueprint or scenario.ego.blueprint
        blueprints = sorted(s.world.get_blueprint_library().filter(pattern), key=lambda b: b.id)
        if not blueprints:
            raise ScenarioError(f"{scenario.source}: field 'carla.blueprint' (or 'ego.blueprint'): no blueprint "
                                f"matches {pattern!r} on this server; e.g. vehicle.lincoln.mkz_2020, vehicle.tesla.model3")
        bp = blueprints[0]
        bp.set_attribute("role_name", "hero")
        self._spawn_points = s.map.get_spawn_points()
        if spec.spawn_transform is not None:
            t = spec.spawn_transform
            transform = carla.Transform(carla.Location(x=t.x_m, y=t.y_m, z=t.z_m),
                                        carla.Rotation(pitch=t.pitch_deg, yaw=t.yaw_deg, roll=t.roll_deg))
            ego = s.world.try_spawn_actor(bp, transform)
            if ego is None:
                raise BackendError(f"{scenario.source}: field 'carla.spawn_transform': the spot is occupied or "
                                   "collides with the map; move it or use carla.spawn_point")
            s.vehicles.append(ego)
            s.ego = ego
            return ego, -1, transform
        points = self._spawn_points
        if not points:
            raise BackendError("the map has no spawn points; give carla.spawn_transform")
        first = spec.spawn_point if spec.spawn_point is not None else 0
        if first >= len(points):
            raise ScenarioError(f"{scenario.source}: field 'carla.spawn_point': {first} is out of range; "
                                f"this map has spawn points 0..{len(points) - 1}")
        for k in range(len(points)):
            index = (first + k) % len(points)
            if spec.spawn_min_lanes > 1 and lanes_same_way(s.map, points[index].location) < spec.spawn_min_lanes:
                continue
            ego = s.world.try_spawn_actor(bp, points[index])
            if ego is not None:
                s.vehicles.append(ego)
                s.ego = ego
                if k:
                    log.info("spawn point %d was occupied; spawned at %d", first, index)
                return ego, index, points[index]
        if spec.spawn_min_lanes > 1:
            raise BackendError(f"no free spawn point on a road with {spec.spawn_min_lanes}+ lanes in one direction; "
                               "lower carla.spawn_min_lanes or pick another map")
        raise BackendError(f"every one of the {len(points)} spawn points is occupied; remove some vehicles")

    def _spawn_traffic(self, tm_spec: TrafficManagerSpec, ego_index: int, rng: np.random.Generator) -> None:
        if tm_spec.vehicles <= 0:
            return
        s = self._session
        bps = sorted(s.world.get_blueprint_library().filter(tm_spec.vehicle_filter), key=lambda b: b.id)
        bps = [b for b in bps if not b.has_attribute("number_of_wheels")
               or b.get_attribute("number_of_wheels").as_int() == 4] or bps
        if not bps:
            raise BackendError(f"no blueprint matches carla.traffic_manager.vehicle_filter {tm_spec.vehicle_filter!r}")
        order = [int(i) for i in rng.permutation(len(self._spawn_points)) if int(i) != ego_index]
        spawned = 0
        for index in order:
            if spawned >= tm_spec.vehicles:
                break
            bp = bps[int(rng.integers(len(bps)))]
            bp.set_attribute("role_name", "autopilot")
            npc = s.world.try_spawn_actor(bp, self._spawn_points[index])
            if npc is None:
                continue
            s.vehicles.insert(0, npc)  # destroyed last-in first-out: the ego first, then the NPCs
            npc.set_autopilot(True, s.tm.get_port())
            spawned += 1
        if spawned < tm_spec.vehicles:
            log.warning("spawned %d of %d NPC vehicles (spawn points occupied)", spawned, tm_spec.vehicles)

    # -- ticking ------------------------------------------------------------
    def _place_on_route(self) -> None:
        carla = self._carla
        ego = self._session.ego
        x, y, z, yaw = self.route.point_at(self._route_s)
        ego.set_transform(carla.Transform(carla.Location(x=x, y=y, z=z + RECOVER_LIFT_M), carla.Rotation(yaw=yaw)))
        v = self._speed
        ego.set_target_velocity(carla.Vector3D(x=v * math.cos(math.radians(yaw)), y=v * math.sin(math.radians(yaw)), z=0.0))
        self._contacts = set()

    def _observe(self) -> Observation:
        carla = self._carla
        s = self._session
        scenario = self.scenario
        frame = int(s.world.tick(self.timeout_s))
        self._steps += 1
        image = bgra_to_rgb(s.queues["rgb camera"].get(frame, self.sensor_timeout_s))
        semantic = None
        if "semantic camera" in s.queues:
            semantic = semantic_labels(s.queues["semantic camera"].get(frame, self.sensor_timeout_s))
        collisions = self._collisions(s.queues["collision"].drain())
        invasions = [LaneInvasionEvent(self._steps, tuple(str(m.type) for m in ev.crossed_lane_markings))
                     for ev in s.queues["lane invasion"].drain()]
        ego = s.ego
        tf = ego.get_transform()
        vel = ego.get_velocity()
        speed = math.sqrt(vel.x * vel.x + vel.y * vel.y + vel.z * vel.z)
        self._speed = speed
        loc, rot = tf.location, tf.rotation
        proj = self.route.project(loc.x, loc.y, hint=self._route_index)
        self._route_index = proj.index
        self._route_s = proj.s_m
        key = self.route.keys[proj.index]
        wp = lane_waypoint(s.map, loc, key)
        if wp is not None:
            lateral = signed_offset(loc.x, loc.y, wp.transform)
            lane_yaw = wp.transform.rotation.yaw
            lane_width = float(wp.lane_width)
        else:  # far from the route's lane: measure from the route itself
            lateral, lane_yaw = proj.lateral_m, proj.yaw_deg
            lane_width = float(self.route.lane_width[proj.index])
        route_ahead = self.route.ahead(loc.x, loc.y, rot.yaw, proj.s_m, self._ahead_m)
        if self._autopilot:
            expert = float(np.clip(ego.get_control().steer, -1.0, 1.0))
        else:
            expert = pure_pursuit_steer(route_ahead, speed, self._pp)
        limit_kmh = float(ego.get_speed_limit() or 0.0)
        lead_d, lead_v = self._lead(loc, proj, lane_width)
        truth = GroundTruth(
            lateral_offset_m=float(lateral),
            heading_error_rad=heading_error(rot.yaw, lane_yaw),
            route_s_m=float(proj.s_m),
            route_length_m=float(self.route_length_m),
            route_ahead=route_ahead,
            lane_width_m=lane_width,
            speed_limit_mps=limit_kmh / 3.6 if limit_kmh > 0 else scenario.road.speed_limit_kmh / 3.6,
            lead_distance_m=lead_d,
            lead_speed_mps=lead_v,
            expert_steer=expert,
            semantic=semantic,
        )
        if s.spectator is not None:
            fwd = tf.get_forward_vector()
            s.spectator.set_transform(carla.Transform(
                carla.Location(x=loc.x - SPECTATOR_BACK_M * fwd.x, y=loc.y - SPECTATOR_BACK_M * fwd.y,
                               z=loc.z + SPECTATOR_UP_M),
                carla.Rotation(pitch=SPECTATOR_PITCH_DEG, yaw=rot.yaw)))
        self.info = CarlaInfo(carla_frame=frame, off_road=off_road(s.map, loc), on_route_lane=wp is not None
                              and (wp.road_id, wp.lane_id) == key and abs(lateral) <= 0.5 * lane_width,
                              route_completion_pct=route_completion_pct(proj.s_m, self.route_length_m),
                              recorder_file=self.recorder_file)
        return Observation(
            frame=self._steps, sim_time_s=self._steps * scenario.dt_s, dt_s=scenario.dt_s, image=image,
            speed_mps=speed, pose=Pose(loc.x, loc.y, loc.z, rot.yaw, rot.pitch, rot.roll), truth=truth,
            collisions=tuple(collisions), lane_invasions=tuple(invasions), weather=self.weather_name,
            done=bool(proj.s_m >= self.route_length_m))

    def _collisions(self, events) -> List[CollisionEvent]:
        """One event per thing hit; a contact that goes on over consecutive ticks counts once."""
        now: Dict[int, CollisionEvent] = {}
        for ev in events:
            other = ev.other_actor
            type_id = str(getattr(other, "type_id", "") or "static.unknown")
            other_id = int(getattr(other, "id", 0) or 0)
            imp = ev.normal_impulse
            impulse = math.sqrt(imp.x * imp.x + imp.y * imp.y + imp.z * imp.z)
            prev = now.get(other_id)
            if prev is None or impulse > prev.impulse_ns:
                now[other_id] = CollisionEvent(self._steps, type_id, collision_kind(type_id), impulse)
        new = [ev for oid, ev in now.items() if oid not in self._contacts]
        self._contacts = set(now)
        return new

    def _lead(self, loc, proj: RouteProjection, lane_width: float) -> Tuple[Optional[float], Optional[float]]:
        s = self._session
        route = self.route
        lo = proj.index
        hi = int(np.searchsorted(route.s, proj.s_m + LEAD_RANGE_M + 10.0)) + 1
        pts, ss = route.xy[lo:hi], route.s[lo:hi]
        best = None
        for actor in s.world.get_actors().filter("vehicle.*"):
            if actor.id == s.ego.id:
                continue
            p = actor.get_transform().location
            if abs(p.x - loc.x) > LEAD_RANGE_M + 10 or abs(p.y - loc.y) > LEAD_RANGE_M + 10:
                continue
            d2 = (pts[:, 0] - p.x) ** 2 + (pts[:, 1] - p.y) ** 2
            j = int(np.argmin(d2))
            if math.sqrt(d2[j]) > 0.5 * lane_width:
                continue
            half = float(actor.bounding_box.extent.x)
            gap = float(ss[j]) - proj.s_m - half - self._ego_half_length
            if -half < gap < LEAD_RANGE_M and (best is None or gap < best[0]):
                v = actor.get_velocity()
                best = (max(0.0, gap), math.sqrt(v.x * v.x + v.y * v.y + v.z * v.z))
        return (None, None) if best is None else best


# -- replay -------------------------------------------------------------------

@dataclass(frozen=True)
class ReplayFrame:
    """One tick of a replayed recording, seen from the hero's camera."""

    index: int
    carla_frame: int
    sim_time_s: float
    image: np.ndarray
    semantic: Optional[np.ndarray]
    pose: Pose


class CarlaReplay:
    """Re-render a CARLA recording from the hero's camera (for attention videos).

    ``client.replay_file`` reloads the map in asynchronous mode, so synchronous
    mode is re-applied after it; one tick later the hero is found by
    ``role_name`` and the cameras are attached to it. Recordings hold no sensor
    data, and collision / lane-invasion sensors do not fire in a replay.
    Use as a context manager; ``frames()`` yields :class:`ReplayFrame`.

    Args:
        recorder_file: the recording, as named to ``start_recorder``.
        camera: a :class:`~carla_agent.sim.scenario.CameraSpec` (the scenario's camera).
        dt_s: fixed time step of the replay.
        start_s, duration_s: the part to replay (0: to the end).
        semantic: also attach a semantic camera.
        Other keywords as for :class:`CarlaSimulator`.
    """

    def __init__(self, recorder_file: str, camera=None, dt_s: float = 0.05, *, host: str = DEFAULT_HOST,
                 port: int = DEFAULT_PORT, timeout_s: float = 10.0, start_s: float = 0.0, duration_s: float = 0.0,
                 semantic: bool = True, allow_version_mismatch: bool = False, load_timeout_s: float = 60.0,
                 sensor_timeout_s: Optional[float] = None, client_factory: Optional[Callable] = None) -> None:
        if camera is None:
            from carla_agent.sim.scenario import CameraSpec

            camera = CameraSpec()
        if not 0 < dt_s <= 0.1:
            raise BackendError(f"replay dt_s must be in (0, 0.1], got {dt_s}")
        self.recorder_file = recorder_file
        self.camera, self.dt_s = camera, float(dt_s)
        self.start_s, self.duration_s = float(start_s), float(duration_s)
        self.semantic = semantic
        self.host, self.port = host, int(port)
        self.timeout_s, self.load_timeout_s = float(timeout_s), float(load_timeout_s)
        self.sensor_timeout_s = float(sensor_timeout_s) if sensor_timeout_s is not None else self.timeout_s
        self._connect = (host, self.port, self.timeout_s, client_factory, allow_version_mismatch)
        self._session: Optional[_Session] = None
        self.hero = None
        self.recording_duration_s: Optional[float] = None

    def __enter__(self) -> "CarlaReplay":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        client, _, _ = connect(*self._connect)
        s = self._session = _Session(client)
        try:
            s.capture(client.get_world())
            info = client.show_recorder_file_info(self.recorder_file, False)
            if "not found" in info.lower() or "error" in info.lower()[:200]:
                raise BackendError(f"the server at {self.host}:{self.port} cannot read recording "
                                   f"{self.recorder_file!r}: {info.strip().splitlines()[0] if info.strip() else ''}; "
                                   "plain names are looked up in the server's CarlaUE4/Saved folder")
            m = re.search(r"Duration:\s*([0-9.]+)", info)
            self.recording_duration_s = float(m.group(1)) if m else None
            client.set_timeout(self.load_timeout_s)
            try:
                s.replaying = True
                client.replay_file(self.recorder_file, self.start_s, self.duration_s, 0, False)
            finally:
                client.set_timeout(self.timeout_s)
            world = client.get_world()  # replay_file may have reloaded the map, in asynchronous mode
            s.apply_sync(world, self.dt_s)
            self.hero = None
            for _ in range(10):
                world.tick(self.timeout_s)
                self.hero = find_hero(world)
                if self.hero is not None:
                    break
            if self.hero is None:
                raise BackendError(f"recording {self.recorder_file!r} has no vehicle with role_name 'hero'; "
                                   "was it recorded by carla_agent?")
            s.spawn_camera("rgb camera", "sensor.camera.rgb", self.camera, self.hero)
            if self.semantic:
                s.spawn_camera("semantic camera", "sensor.camera.semantic_segmentation", self.camera, self.hero)
        except BaseException:
            self.close()
            raise

    def frame_count(self) -> int:
        """Ticks to replay: the duration asked for, else what is left of the recording."""
        total = self.duration_s or ((self.recording_duration_s or 0.0) - self.start_s)
        return max(0, int(round(total / self.dt_s)))

    def frames(self, max_frames: Optional[int] = None) -> Iterator[ReplayFrame]:
        if self._session is None:
            raise BackendError("call start() (or use CarlaReplay as a context manager) before frames()")
        s = self._session
        n = self.frame_count() if max_frames is None else int(max_frames)
        for i in range(n):
            frame = int(s.world.tick(self.timeout_s))
            image = bgra_to_rgb(s.queues["rgb camera"].get(frame, self.sensor_timeout_s))
            semantic = None
            if "semantic camera" in s.queues:
                semantic = semantic_labels(s.queues["semantic camera"].get(frame, self.sensor_timeout_s))
            tf = self.hero.get_transform()
            pose = Pose(tf.location.x, tf.location.y, tf.location.z, tf.rotation.yaw, tf.rotation.pitch,
                        tf.rotation.roll)
            yield ReplayFrame(i, frame, self.start_s + i * self.dt_s, image, semantic, pose)

    def close(self) -> None:
        """Stop the replayer, destroy the cameras and restore the settings (idempotent)."""
        session, self._session = self._session, None
        if session is not None:
            session.restore()


def find_hero(world):
    """The vehicle whose ``role_name`` attribute is ``hero``, or None."""
    for actor in world.get_actors().filter("vehicle.*"):
        if actor.attributes.get("role_name") == "hero":
            return actor
    return None


def replay(recorder_file: str, scenario=None, **options) -> CarlaReplay:
    """A :class:`CarlaReplay` of ``recorder_file`` with ``scenario``'s camera and time step.

    ``with replay("run.log", scenario, host=..., port=...) as r: for f in r.frames(): ...``
    """
    if scenario is not None:
        options.setdefault("camera", scenario.camera)
        options.setdefault("dt_s", scenario.dt_s)
    return CarlaReplay(recorder_file, **options)
