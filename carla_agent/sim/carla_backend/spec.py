"""The scenario's free ``carla:`` block, validated into a :class:`CarlaSpec`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Literal, Optional, Union

from carla_agent.errors import ScenarioError
from carla_agent.schema import build, field
from carla_agent.sim.carla_backend.weather import weather_parameters

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
class ExposureSpec:
    """The RGB camera's exposure. CARLA's camera adapts its exposure like an eye (UE4's histogram
    auto exposure, ``exposure_min_bright`` 10 to ``exposure_max_bright`` 12 EV, at
    ``exposure_speed_up``/``_down``), so the same road gets brighter or darker from frame to frame
    as the view changes; the embedded world never does that.

    ``fixed`` (default): histogram mode with ``exposure_min_bright = exposure_max_bright =
    brightness_ev``, a range of zero width, so the exposure cannot drift. ``auto``: CARLA's own
    eye adaptation. ``manual``: ``exposure_mode`` ``manual``, the exposure set by
    ``shutter_speed_per_s``, ``iso`` and ``fstop`` (UE4's physical camera; fixed too).
    ``compensation_ev`` is always set: CARLA's default differs between Linux (+0.75) and
    Windows (0).
    """

    mode: Literal["fixed", "auto", "manual"] = "fixed"
    brightness_ev: float = field(11.0, min=0.1, max=20.0,
                                 help="fixed: the exposure, in EV100 (CARLA's auto range is 10-12)")
    compensation_ev: float = field(0.0, min=-8.0, max=8.0, help="exposure_compensation: +1 twice as bright")
    shutter_speed_per_s: float = field(200.0, min=1.0, max=100000.0, help="manual: shutter_speed (1/s)")
    iso: float = field(100.0, min=1.0, max=100000.0, help="manual: sensor sensitivity")
    fstop: float = field(1.4, min=0.5, max=64.0, help="manual: aperture")


def exposure_attributes(spec: ExposureSpec) -> Dict[str, str]:
    """The ``sensor.camera.rgb`` blueprint attributes (CARLA 0.9.16 names, string values) for ``spec``."""
    attrs = {"exposure_compensation": f"{spec.compensation_ev:g}"}
    if spec.mode == "manual":
        attrs.update(exposure_mode="manual", shutter_speed=f"{spec.shutter_speed_per_s:g}", iso=f"{spec.iso:g}",
                     fstop=f"{spec.fstop:g}")
    else:
        attrs["exposure_mode"] = "histogram"
        if spec.mode == "fixed":
            attrs.update(exposure_min_bright=f"{spec.brightness_ev:g}", exposure_max_bright=f"{spec.brightness_ev:g}")
    return attrs


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
        settle_ticks / settle_max_ticks: after spawning, tick at least / at most this often until the
            ego has landed and stopped bouncing (:mod:`~carla_agent.sim.carla_backend.settle`),
            before the first observation. ``settle_max_ticks: 0`` does not wait at all.
        exposure: the RGB camera's exposure (:class:`ExposureSpec`); fixed by default.
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
    settle_ticks: int = field(2, min=0, max=200, help="ticks at least before the first observation")
    settle_max_ticks: int = field(100, min=0, max=2000, help="ticks at most waiting for the ego to land")
    exposure: ExposureSpec = ExposureSpec()


def carla_spec(scenario) -> CarlaSpec:
    """Validate ``scenario.carla`` into a :class:`CarlaSpec`; errors name file, field and fix."""
    src = scenario.source
    spec = build(CarlaSpec, scenario.carla or {}, src, "carla")
    if spec.spawn_point is not None and spec.spawn_transform is not None:
        raise ScenarioError(f"{src}: field 'carla': give either 'spawn_point' (an index) or 'spawn_transform', not both")
    if spec.weather is not None:
        weather_parameters(spec.weather, src)  # validates names and fields
    return spec
