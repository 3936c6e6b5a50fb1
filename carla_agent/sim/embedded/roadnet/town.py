"""Towns: a compact YAML description (nodes and roads) -> a road network, by name.

A town file lists junction ``nodes`` (name, position, traffic lights) and
two-way ``roads`` between two nodes (lanes per direction, optional ``via``
points rounded with arcs, an optional parking strip). Every node is a junction
of at least two roads, so a car never runs out of road. The shipped towns are
``scenarios/towns/*.yaml``, found by name through :func:`shipped_towns`;
``scenarios/towns/grid_small.yaml`` is the commented example.

Errors name the file, the field, the value and the range, like scenarios'::

    scenarios/towns/bad.yaml: field 'junction_radius_m': 2.0 is out of range; expected a number in [6.0, 40.0]
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import List, Literal, Optional, Tuple

import numpy as np

from carla_agent.errors import ScenarioError
from carla_agent.schema import build, field
from carla_agent.sim.embedded.roadnet.builder import EdgeSpec, NetworkSpec, NodeSpec, build_network
from carla_agent.sim.embedded.roadnet.lanes import lane_graph
from carla_agent.sim.embedded.roadnet.catalog import shipped_towns
from carla_agent.sim.embedded.roadnet.model import RoadNetwork
from carla_agent.sim.embedded.roadnet.reader import read_network_xodr
from carla_agent.sim.embedded.road import SAMPLE_DS_M
from carla_agent.sim.embedded.roadnet.spawn import MAX_CURVATURE, SpawnPoint, spawn_points
from carla_agent.sim.embedded.roadnet.writer import write_network_xodr
from carla_agent.sim.routing.lane_graph import LaneGraph
from carla_agent.sim.scenario import MAX_OBJECTS, MIN_EVERY_M
from carla_agent.yaml_load import load_yaml_text

MAX_TOWN_BYTES = 200_000
#: An OpenDRIVE file read as a town (``load_town("path.xodr")``) is at most this big.
MAX_XODR_BYTES = 50_000_000
MAX_NODES = 200
MAX_ROADS = 400
COORD_M = 5000.0
#: Parked cars keep this far from each end of a road (clear of the junctions).
PARKED_END_GAP_M = 12.0


@dataclass(frozen=True)
class TownNode:
    """A junction: ``at`` is ``[x_m, y_m]`` (x east, y north)."""

    name: str
    at: Tuple[float, float] = field(min=-COORD_M, max=COORD_M)
    traffic_lights: bool = False


@dataclass(frozen=True)
class TownRoad:
    """A two-way road ``between`` two nodes, ``lanes`` each way."""

    between: Tuple[str, str]
    lanes: int = field(1, min=1, max=3)
    via: Tuple[Tuple[float, float], ...] = field((), min=-COORD_M, max=COORD_M)
    fillet_radius_m: float = field(20.0, min=5.0, max=2000.0)
    parking_m: float = field(0.0, min=0.0, max=4.0, help="a parking strip each side; 0 for none")


@dataclass(frozen=True)
class ParkedCars:
    """Cars parked on the parking strips, one every ``every_m`` (jittered by the seed)."""

    every_m: float = field(0.0, min=0.0, max=10000.0, help="0 disables")
    side: Literal["left", "right", "both"] = "both"


@dataclass(frozen=True)
class TownSpec:
    name: str
    description: str = ""
    nodes: Tuple[TownNode, ...] = ()
    roads: Tuple[TownRoad, ...] = ()
    lane_width_m: float = field(3.5, min=2.5, max=5.0)
    sidewalk_width_m: float = field(2.0, min=0.0, max=5.0)
    junction_radius_m: float = field(12.0, min=6.0, max=40.0)
    speed_limit_kmh: float = field(30.0, min=5.0, max=130.0)
    spawn_spacing_m: float = field(25.0, min=5.0, max=1000.0)
    parked_cars: ParkedCars = ParkedCars()
    traffic_light_cycle_s: Tuple[float, float, float] = field((10.0, 3.0, 1.0), min=0.5, max=120.0,
                                                              help="green, yellow, all-red seconds")
    source: str = "<town>"


@dataclass
class Town:
    """A built town: its spec, road network, lanes, spawn points and OpenDRIVE text.

    ``source_xodr``: for a town read from an OpenDRIVE file, that file's text (what ``xodr`` gives
    back, as CARLA hands out the file it was given); None for a town built from YAML."""

    spec: TownSpec
    network: RoadNetwork
    source_xodr: Optional[str] = None

    @property
    def name(self) -> str:
        return self.spec.name

    @functools.cached_property
    def lanes(self) -> LaneGraph:
        return lane_graph(self.network)

    @functools.cached_property
    def spawn_points(self) -> List[SpawnPoint]:
        return spawn_points(self.network, self.spec.spawn_spacing_m)

    @functools.cached_property
    def xodr(self) -> str:
        return self.source_xodr if self.source_xodr is not None else write_network_xodr(self.network)

    def parked_cars(self, rng: np.random.Generator) -> List[Tuple[float, float, float]]:
        """``(x_m, y_m, yaw_rad)`` of the parked cars: on parking strips, clear of the junctions and of
        bends sharper than 50 m radius."""
        every, out = self.spec.parked_cars.every_m, []
        if every <= 0:
            return out
        for r, lane in _parking_strips(self.network, self.spec.parked_cars.side):
            t = r.road.lane_center_t(lane.id)
            s = PARKED_END_GAP_M + rng.uniform(0, every)
            while s < r.length_m - PARKED_END_GAP_M:
                if not _on_bend(r.road, s):
                    x, y = r.road.to_world(s, t)
                    yaw = r.road.heading_at(s) + (math.pi if lane.id > 0 else 0.0)
                    out.append((float(x), float(y), yaw))
                s += every * rng.uniform(0.8, 1.2)
        return out


def _parking_strips(network: RoadNetwork, side: str):
    """``(road, lane)`` of every parking strip (shoulder lane) on ``side`` ("left", "right", "both")."""
    for r in network.roads.values():
        for lane in r.road.left_lanes + r.road.right_lanes:
            if lane.type == "shoulder" and side in ("left" if lane.id > 0 else "right", "both"):
                yield r, lane


def _check_parked_cars(spec: "TownSpec", network: RoadNetwork, source: str) -> None:
    """``parked_cars.every_m`` is 0 (none) or at least ``MIN_EVERY_M``, and the town holds at most
    ``MAX_OBJECTS`` parked cars (the scenario's limits: each bounds the work and memory of a drive)."""
    every = spec.parked_cars.every_m
    if every == 0:
        return
    if every < MIN_EVERY_M:
        raise ScenarioError(f"{source}: field 'parked_cars.every_m': {every} m; expected 0 (none) "
                            f"or a spacing in [{MIN_EVERY_M:g}, 10000] m")
    strip_m = sum(max(r.length_m - 2 * PARKED_END_GAP_M, 0.0)
                  for r, _ in _parking_strips(network, spec.parked_cars.side))
    cars = strip_m / (0.8 * every)  # the most the seed's jitter (0.8 to 1.2 x every_m) can place
    if cars > MAX_OBJECTS:
        raise ScenarioError(f"{source}: field 'parked_cars.every_m': {every} m gives up to {cars:.0f} parked cars "
                            f"on {strip_m:.0f} m of parking strips; at most {MAX_OBJECTS}; expected 0 (none) or "
                            f"a spacing in [{strip_m / (0.8 * MAX_OBJECTS):.1f}, 10000] m")


def _on_bend(road, s_m: float, half_length_m: float = 3.0) -> bool:
    """Whether a parked car at ``s_m`` would stand on a bend sharper than the spawn points' limit
    (a straight car on a tight corner's parking strip reaches into the driving lane)."""
    k = road.curvature[np.clip(((s_m + np.array([-half_length_m, 0.0, half_length_m])) / SAMPLE_DS_M).astype(int),
                               0, len(road.s) - 1)]
    return bool(np.max(np.abs(k)) > MAX_CURVATURE)


def parse_town(data, source: str) -> Town:
    """Validate a mapping (read from YAML) into a built :class:`Town`."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: expected a mapping at the top level (name:, nodes:, roads:), "
                            f"got {type(data).__name__}")
    data = dict(data)
    data.setdefault("name", Path(source).stem)
    if "source" in data:
        raise ScenarioError(f"{source}: unknown key(s) source")
    data["source"] = source
    spec = build(TownSpec, data, source)
    if not 2 <= len(spec.nodes) <= MAX_NODES:
        raise ScenarioError(f"{source}: field 'nodes': {len(spec.nodes)} nodes; expected 2 to {MAX_NODES}")
    if not 1 <= len(spec.roads) <= MAX_ROADS:
        raise ScenarioError(f"{source}: field 'roads': {len(spec.roads)} roads; expected 1 to {MAX_ROADS}")
    names = [n.name for n in spec.nodes]
    for i, name in enumerate(names):
        if names.index(name) != i:
            raise ScenarioError(f"{source}: field 'nodes[{i}].name': {name!r} names two nodes; names must differ")
    for i, r in enumerate(spec.roads):
        for j, end in enumerate(r.between):
            if end not in names:
                raise ScenarioError(f"{source}: field 'roads[{i}].between[{j}]': {end!r} is not a node; "
                                    f"expected one of {', '.join(names)}")
        if r.between[0] == r.between[1]:
            raise ScenarioError(f"{source}: field 'roads[{i}].between': a road joins two different nodes, "
                                f"got {list(r.between)}")
    net_spec = NetworkSpec(spec.name, tuple(NodeSpec(n.name, n.at[0], n.at[1], n.traffic_lights) for n in spec.nodes),
                           tuple(EdgeSpec(r.between[0], r.between[1], r.lanes, r.via, r.fillet_radius_m, r.parking_m)
                                 for r in spec.roads),
                           spec.lane_width_m, spec.sidewalk_width_m, spec.junction_radius_m,
                           spec.speed_limit_kmh / 3.6, source)
    network = build_network(net_spec)
    _check_parked_cars(spec, network, source)
    return Town(spec, network)


def xodr_town(text: str, source: str, name: Optional[str] = None) -> Town:
    """A town from OpenDRIVE ``text`` (the subset ``read_network_xodr`` reads; errors name ``source``),
    called ``name`` (default: the file's stem), with the YAML towns' defaults for the rest (no parked
    cars, 30 km/h, spawn points every 25 m). Raises ``ScenarioError`` when no lane can take a car."""
    net = read_network_xodr(source, text)
    town = Town(TownSpec(name or Path(source).stem, f"OpenDRIVE {source}", source=source), net, source_xodr=text)
    if not town.spawn_points:
        raise ScenarioError(f"{source}: no driving lane outside a junction is 16 m long and gentler than a "
                            "50 m radius, so no car can be spawned; add a longer road with a driving lane")
    return town


def load_town_file(path: str | Path) -> Town:
    """Read, validate and build one town YAML file, or an OpenDRIVE (``.xodr``) one (:func:`xodr_town`)."""
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"{path}: no such town file")
    if path.suffix == ".xodr":
        if path.stat().st_size > MAX_XODR_BYTES:
            raise ScenarioError(f"{path}: {path.stat().st_size} bytes; an OpenDRIVE town is at most "
                                f"{MAX_XODR_BYTES} bytes")
        try:
            return xodr_town(path.read_text(encoding="utf-8"), str(path))
        except UnicodeDecodeError as exc:
            raise ScenarioError(f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    raw = path.read_bytes()
    if len(raw) > MAX_TOWN_BYTES:
        raise ScenarioError(f"{path}: {len(raw)} bytes; a town file is at most {MAX_TOWN_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    data = load_yaml_text(text, str(path), ScenarioError)
    return parse_town(data, str(path))


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int) -> Town:
    return load_town_file(path)


def load_town(name_or_path: str) -> Town:
    """A shipped town by name (``grid_small``) or a town YAML or OpenDRIVE file by path (built once,
    then cached)."""
    candidate = Path(name_or_path)
    path = candidate if candidate.suffix in (".yaml", ".yml", ".xodr") or candidate.exists() else shipped_towns().get(name_or_path)
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"{path}: no such town file")
    return _load_cached(str(path.resolve()), path.stat().st_mtime_ns)
