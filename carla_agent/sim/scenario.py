"""Scenarios: YAML files in ``scenarios/``, validated into frozen dataclasses.

A scenario says which road to drive (compact segments or an OpenDRIVE file),
or which town and route (``town:`` and ``route:`` start, via and end points),
what stands beside it, the traffic, the weather, the camera, the ego's lane and
speed, and how long to drive. See ``scenarios/straight_clear.yaml`` for a
commented example. Every field has units in its name.

Errors name the file, the dotted field, the value and what is expected, for example::

    scenarios/bad.yaml: field 'ego.target_speed_kmh': expected a number in [1, 200], got 'fast'

Every number must be finite (NaN and infinities are refused) and in its range.
Limits that bound a drive's work and memory, checked before anything runs:

* the road (segments) is at most ``MAX_ROAD_M`` (20 km) long, with at most
  ``MAX_SEGMENTS`` (200) segments;
* roadside objects and parked/oncoming vehicles are at least ``MIN_EVERY_M``
  (2 m) apart, and at most ``MAX_OBJECTS`` (5,000) of them in all;
* ``ego.start_s_m`` leaves at least ``MIN_ROUTE_M`` (20 m) of road to drive
  (a start past the end is an error, not a 100 % route);
* ``duration_s`` is in [1, 3600] s, ``dt_s`` in [0.005, 0.1] s;
* the camera is at most ``MAX_CAMERA_PIXELS`` (1920 x 1080) pixels (a 4K camera
  takes 1.4 GB of render buffers);
* the file is UTF-8 text of at most ``MAX_FILE_BYTES`` (1 MB).

The largest scenario these limits allow sets up in about 1 s and 0.5 GB.

YAML numbers in exponent form without a dot (``1e12``, ``5e1``) are read as
numbers, not as text (PyYAML's YAML 1.1 resolver needs the dot).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Optional, Tuple

from carla_agent.errors import ScenarioError
from carla_agent.resources import scenario_dir
from carla_agent.registry import Registry
from carla_agent.schema import build, field
from carla_agent.yaml_load import NumberLoader, load_yaml_text


MAX_ROAD_M = 20000.0
MAX_SEGMENTS = 200
MIN_EVERY_M = 2.0
MAX_OBJECTS = 5000
MIN_ROUTE_M = 20.0
#: The embedded simulator stops this far before the road's end (its END_MARGIN_M).
END_MARGIN_M = 8.0
MAX_CAMERA_PIXELS = 1920 * 1080
MAX_FILE_BYTES = 1_000_000
MAX_OFFSET_M = 200.0

MarkStyle = Literal["solid", "dashed", "double_yellow", "solid_yellow", "dashed_yellow", "double_solid", "none"]


@dataclass(frozen=True)
class SegmentSpec:
    """One piece of the route, in driving order. Exactly one kind per entry.

    * ``line``: straight, ``length_m``.
    * ``arc``: constant curvature, ``length_m`` or ``angle_deg``, ``radius_m``, ``turn``.
    * ``curve``: clothoid in, arc, clothoid out: ``radius_m``, ``angle_deg``,
      ``turn``, ``transition_m`` (length of each spiral).
    * ``s_curve``: a curve one way, then the same curve the other way.
    * ``hairpin``: a 180-degree curve.
    """

    kind: Literal["line", "arc", "curve", "s_curve", "hairpin"] = "line"
    length_m: float = field(0.0, min=0.0, max=20000.0)
    radius_m: float = field(100.0, min=8.0, max=100000.0)
    angle_deg: float = field(0.0, min=0.0, max=270.0)
    turn: Literal["left", "right"] = "left"
    transition_m: float = field(0.0, min=0.0, max=500.0)


@dataclass(frozen=True)
class LanesSpec:
    """Cross-section of the road.

    ``driving`` lanes go the ego's way (right of the centre line, right-hand
    traffic); ``oncoming`` lanes go the other way.
    """

    driving: int = field(1, min=1, max=3)
    oncoming: int = field(1, min=0, max=3)
    width_m: float = field(3.5, min=2.5, max=5.0)
    center_mark: MarkStyle = "double_yellow"
    lane_mark: MarkStyle = "dashed"
    edge_mark: MarkStyle = "solid"
    shoulder_m: float = field(0.8, min=0.0, max=4.0)
    curb: bool = False
    verge: Literal["grass", "dirt"] = "grass"


@dataclass(frozen=True)
class RoadSpec:
    """The road: either ``segments`` (+ ``lanes``) or an OpenDRIVE file ``xodr``."""

    segments: Tuple[SegmentSpec, ...] = ()
    lanes: LanesSpec = LanesSpec()
    xodr: Optional[str] = None
    speed_limit_kmh: float = field(50.0, min=5.0, max=200.0)


@dataclass(frozen=True)
class PlacementSpec:
    """Objects placed along the road every ``every_m`` metres (jittered by the seed)."""

    every_m: float = field(0.0, min=0.0, max=10000.0, help="0 disables")
    side: Literal["left", "right", "both"] = "both"
    offset_m: Tuple[float, float] = (2.0, 8.0)


@dataclass(frozen=True)
class RoadsideSpec:
    """Static objects beside the road. Offsets are measured from the road's outer edge."""

    trees: PlacementSpec = PlacementSpec()
    poles: PlacementSpec = PlacementSpec()
    buildings: PlacementSpec = PlacementSpec()
    signs: PlacementSpec = PlacementSpec()


@dataclass(frozen=True)
class LeadSpec:
    gap_m: float = field(30.0, min=5.0, max=500.0)
    speed_kmh: float = field(30.0, min=0.0, max=200.0)


@dataclass(frozen=True)
class StreamSpec:
    """Vehicles every ``every_m`` metres: parked on the shoulder, or oncoming."""

    every_m: float = field(0.0, min=0.0, max=10000.0, help="0 disables")
    speed_kmh: float = field(40.0, min=0.0, max=200.0)
    side: Literal["left", "right", "both"] = "right"


@dataclass(frozen=True)
class TrafficSpec:
    parked: StreamSpec = StreamSpec()
    lead: Optional[LeadSpec] = None
    oncoming: StreamSpec = StreamSpec()


WEATHER_PRESETS = ("clear_noon", "overcast", "fog", "rain", "sunset", "night", "night_rain", "dusk")


@dataclass(frozen=True)
class WeatherSpec:
    """Weather and light. ``preset`` fills the rest; explicit fields override it."""

    preset: str = field("clear_noon", choices=WEATHER_PRESETS)
    fog_density: Optional[float] = field(None, min=0.0, max=1.0)
    rain: Optional[float] = field(None, min=0.0, max=1.0)
    cloudiness: Optional[float] = field(None, min=0.0, max=1.0)
    shadows: Optional[bool] = None


@dataclass(frozen=True)
class CameraSpec:
    """Front RGB camera, configured like CARLA's ``sensor.camera.rgb``.

    Mount position is relative to the vehicle's centre (x forward, z up), metres.
    """

    image_size_x: int = field(480, min=32, max=4096)
    image_size_y: int = field(270, min=32, max=4096)
    fov: float = field(90.0, min=10.0, max=170.0, help="horizontal field of view, degrees")
    x_m: float = field(0.8, min=-5.0, max=5.0)
    y_m: float = field(0.0, min=-3.0, max=3.0)
    z_m: float = field(1.5, min=0.3, max=5.0)
    pitch_deg: float = field(-8.0, min=-45.0, max=20.0)


@dataclass(frozen=True)
class EgoSpec:
    lane: int = field(1, min=1, max=3, help="driving lane counted from the centre line")
    start_s_m: float = field(5.0, min=0.0, max=MAX_ROAD_M)
    target_speed_kmh: float = field(36.0, min=1.0, max=200.0)
    blueprint: str = "vehicle.lincoln.mkz_2020"


@dataclass(frozen=True)
class RouteSpec:
    """A route through a town: ``start``, optional ``via`` points, ``end``, each ``[x_m, y_m]``
    in the town's frame (x east, y north) within 10 m of a driving lane (checked when the town is built)."""

    start: Optional[Tuple[float, float]] = field(None, min=-5000.0, max=5000.0)
    end: Optional[Tuple[float, float]] = field(None, min=-5000.0, max=5000.0)
    via: Tuple[Tuple[float, float], ...] = field((), min=-5000.0, max=5000.0)
    start_heading_deg: Optional[float] = field(None, min=-180.0, max=180.0, help="the start lane's direction")


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. Build with :func:`load_scenario`."""

    name: str
    description: str = ""
    backend: Literal["embedded", "carla"] = "embedded"
    road: RoadSpec = RoadSpec()
    town: Optional[str] = None
    route: Optional[RouteSpec] = None
    roadside: RoadsideSpec = RoadsideSpec()
    traffic: TrafficSpec = TrafficSpec()
    weather: WeatherSpec = WeatherSpec()
    camera: CameraSpec = CameraSpec()
    ego: EgoSpec = EgoSpec()
    duration_s: float = field(60.0, min=1.0, max=3600.0)
    dt_s: float = field(0.05, min=0.005, max=0.1, help="fixed time step; CARLA needs <= 0.1")
    carla: Optional[dict] = None
    source: str = "<memory>"

    @property
    def target_speed_mps(self) -> float:
        return self.ego.target_speed_kmh / 3.6

    def with_overrides(self, **kwargs) -> "Scenario":
        return replace(self, **kwargs)


def _parse_segment(entry, source: str, path: str) -> dict:
    """Accept both ``{kind: arc, radius_m: ..}`` and the short ``{arc: {...}}`` / ``{line: 80}``."""
    if isinstance(entry, dict) and len(entry) == 1:
        (key, value), = entry.items()
        kinds = ("line", "arc", "curve", "s_curve", "hairpin")
        if key in kinds:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return {"kind": key, "length_m": value}
            if isinstance(value, dict):
                return dict(value, kind=key)
            raise ScenarioError(f"{source}: field '{path}': '{key}' takes a length in metres or a mapping, "
                               f"got {repr(value)[:60]}")
    if isinstance(entry, dict) and "kind" in entry:
        return entry
    raise ScenarioError(
        f"{source}: field '{path}': expected one of line/arc/curve/s_curve/hairpin, e.g. '- line: 80' "
        f"or '- curve: {{radius_m: 60, angle_deg: 90, turn: left}}', got {repr(entry)[:60]}")


def _check(sc: Scenario) -> Scenario:
    src = sc.source
    road = sc.road
    if sc.town is not None or sc.route is not None:
        from carla_agent.sim.town_scenario import check_town_scenario

        check_town_scenario(sc)
        _check_limits(sc)
        return sc
    if road.xodr is None and not road.segments and sc.backend == "carla":
        return sc  # the CARLA backend drives carla.map; it needs no embedded road
    if road.xodr is None and not road.segments:
        raise ScenarioError(f"{src}: field 'road': give 'segments' (e.g. '- line: 200') or 'xodr: path/to/road.xodr'")
    if road.xodr is not None and road.segments:
        raise ScenarioError(f"{src}: field 'road': give either 'segments' or 'xodr', not both")
    for i, seg in enumerate(road.segments):
        where = f"{src}: field 'road.segments[{i}]'"
        if seg.kind == "line" and seg.length_m <= 0:
            raise ScenarioError(f"{where}: a line needs length_m > 0")
        if seg.kind == "arc" and seg.length_m <= 0 and seg.angle_deg <= 0:
            raise ScenarioError(f"{where}: an arc needs length_m or angle_deg > 0")
        if seg.kind in ("curve", "s_curve") and seg.angle_deg <= 0:
            raise ScenarioError(f"{where}: a {seg.kind} needs angle_deg > 0")
        if seg.kind in ("curve", "s_curve", "hairpin"):
            swept = math.degrees(seg.transition_m / seg.radius_m)  # both spirals together
            total = 180.0 if seg.kind == "hairpin" else seg.angle_deg
            if swept > total:
                raise ScenarioError(f"{where}: transition_m {seg.transition_m} is too long for a "
                                    f"{total:g}-degree curve of radius {seg.radius_m} m; shorten it")
    _check_limits(sc)
    if sc.ego.lane > road.lanes.driving:
        raise ScenarioError(f"{src}: field 'ego.lane': lane {sc.ego.lane} does not exist; the road has "
                            f"{road.lanes.driving} driving lane(s)")
    for name in ("trees", "poles", "buildings", "signs"):
        lo, hi = getattr(sc.roadside, name).offset_m
        if not (0 <= lo <= hi <= MAX_OFFSET_M):
            raise ScenarioError(f"{src}: field 'roadside.{name}.offset_m': expected [min, max] with "
                                f"0 <= min <= max <= {MAX_OFFSET_M:g}, got [{lo}, {hi}]")
    return sc


def segment_length_m(seg: SegmentSpec) -> float:
    """[m] The length of one segment along the reference line (as the embedded road builds it)."""
    if seg.kind == "line":
        return seg.length_m
    if seg.kind == "arc":
        return seg.length_m if seg.length_m > 0 else math.radians(seg.angle_deg) * seg.radius_m
    angle = 180.0 if seg.kind == "hairpin" else seg.angle_deg
    one = max(math.radians(angle) * seg.radius_m - seg.transition_m, 0.0) + 2 * seg.transition_m
    return 2 * one if seg.kind == "s_curve" else one


def _check_limits(sc: Scenario) -> None:
    """The limits in the module docstring: each bounds the work or memory of one drive."""
    src, road = sc.source, sc.road
    if len(road.segments) > MAX_SEGMENTS:
        raise ScenarioError(f"{src}: field 'road.segments': {len(road.segments)} segments; at most {MAX_SEGMENTS}")
    cam = sc.camera
    if cam.image_size_x * cam.image_size_y > MAX_CAMERA_PIXELS:
        raise ScenarioError(f"{src}: field 'camera.image_size_x': {cam.image_size_x} x {cam.image_size_y} is "
                            f"{cam.image_size_x * cam.image_size_y} pixels; at most {MAX_CAMERA_PIXELS} (1920 x 1080)")
    spacing = [(f"roadside.{n}", getattr(sc.roadside, n)) for n in ("trees", "poles", "buildings", "signs")]
    spacing += [("traffic.parked", sc.traffic.parked), ("traffic.oncoming", sc.traffic.oncoming)]
    for name, spec in spacing:
        if 0 < spec.every_m < MIN_EVERY_M:
            raise ScenarioError(f"{src}: field '{name}.every_m': {spec.every_m} m; expected 0 (none) "
                                f"or a spacing in [{MIN_EVERY_M:g}, 10000] m")
    if not road.segments:
        return  # an OpenDRIVE road: the simulator checks its length when it reads it
    length = sum(segment_length_m(seg) for seg in road.segments)
    if length > MAX_ROAD_M:
        raise ScenarioError(f"{src}: field 'road.segments': the road is {length:.0f} m long; at most "
                            f"{MAX_ROAD_M:.0f} m")
    # Oncoming vehicles come on one side; the rest on ``side``.
    objects = sum(length / spec.every_m * (2 if getattr(spec, "side", "") == "both" and name != "traffic.oncoming"
                                           else 1)
                  for name, spec in spacing if spec.every_m > 0)
    if objects > MAX_OBJECTS:
        raise ScenarioError(f"{src}: field 'roadside': about {objects:.0f} roadside objects and vehicles on a "
                            f"{length:.0f} m road; at most {MAX_OBJECTS}; raise the every_m values")
    last_start = length - 2 * END_MARGIN_M - MIN_ROUTE_M
    if sc.ego.start_s_m > last_start:
        raise ScenarioError(f"{src}: field 'ego.start_s_m': {sc.ego.start_s_m} m leaves less than {MIN_ROUTE_M:g} m "
                            f"to drive on a {length:.0f} m road; expected a number in [0, {max(last_start, 0.0):.0f}]")


def parse_scenario(data, source: str, base_dir: Path | None = None) -> Scenario:
    """Validate a mapping (already read from YAML) into a :class:`Scenario`."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: expected a mapping at the top level (name:, road:, ...), got {type(data).__name__}")
    data = dict(data)
    if "name" not in data:
        data["name"] = Path(source).stem
    road = data.get("road")
    if isinstance(road, dict) and isinstance(road.get("segments"), list):
        road = dict(road)
        road["segments"] = [_parse_segment(e, source, f"road.segments[{i}]") for i, e in enumerate(road["segments"])]
        data["road"] = road
    if isinstance(data.get("weather"), str):
        data["weather"] = {"preset": data["weather"]}
    if "source" in data:
        raise ScenarioError(f"{source}: unknown key(s) source")
    data["source"] = source
    sc = build(Scenario, data, source)
    if sc.road.xodr is not None and base_dir is not None and not Path(sc.road.xodr).is_absolute():
        sc = replace(sc, road=replace(sc.road, xodr=str((base_dir / sc.road.xodr).resolve())))
    if sc.town is not None and base_dir is not None and sc.town.endswith((".yaml", ".yml", ".xodr")) \
            and not Path(sc.town).is_absolute():
        sc = replace(sc, town=str((base_dir / sc.town).resolve()))
    if sc.road.xodr is not None and not Path(sc.road.xodr).exists():
        raise ScenarioError(f"{source}: field 'road.xodr': file {sc.road.xodr} does not exist")
    return _check(sc)


_ScenarioLoader = NumberLoader  # the name the fuzz tests and older code use


def load_scenario_file(path: str | Path) -> Scenario:
    """Read and validate one YAML scenario file."""
    path = Path(path)
    if not path.exists():
        raise ScenarioError(f"{path}: no such scenario file")
    if not path.is_file():
        raise ScenarioError(f"{path}: is a folder, not a scenario file; give a .yaml file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read the scenario file: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioError(f"{path}: {len(raw)} bytes; a scenario file is at most {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    data = load_yaml_text(text, str(path), ScenarioError)
    return parse_scenario(data, str(path), base_dir=path.parent)


def shipped_scenarios() -> Registry:
    """The scenarios in the package's ``scenarios/`` folder, by name."""
    reg: Registry = Registry("scenario")
    for path in sorted(scenario_dir().glob("*.yaml")):
        reg.register(path.stem, path)
    return reg


def load_scenario(name_or_path: str) -> Scenario:
    """A shipped scenario by name (``straight_clear``) or any YAML file by path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return load_scenario_file(candidate)
    return load_scenario_file(shipped_scenarios().get(name_or_path))


DEFAULT_SCENARIO = "gentle_curves"
