"""The typed road network: OpenDRIVE roads, links, junctions, signals and crosswalks.

A :class:`NetRoad` wraps a junction-free :class:`~carla_agent.sim.embedded.road.Road`
(plan view and lanes) with what joins it to the rest: its predecessor and
successor, the junction it belongs to (connecting roads), and what stands on it
(traffic lights, stop lines, crosswalks). Frames and lane ids are OpenDRIVE's
(see :mod:`carla_agent.sim.embedded.road`): right lanes (ids < 0) run along +s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Literal, Optional, Tuple

from carla_agent.sim.embedded.road import Road

ContactPoint = Literal["start", "end"]


@dataclass(frozen=True)
class Link:
    """A road's ``<predecessor>``/``<successor>``: a road (with the contact point) or a junction."""

    element_type: Literal["road", "junction"]
    element_id: int
    contact_point: Optional[ContactPoint] = None  # for element_type "road" only


@dataclass(frozen=True)
class Signal:
    """A ``<signal>`` on a road, at ``(s_m, t_m)``; ``orientation`` '-' faces traffic on right lanes.

    ``kind`` is ``traffic_light`` (CARLA type 1000001, dynamic) or ``stop_line``
    (type 294, a painted line across the lanes of ``orientation``'s side, ``width_m`` wide).
    """

    id: int
    kind: Literal["traffic_light", "stop_line"]
    s_m: float
    t_m: float
    orientation: Literal["+", "-"]
    width_m: float = 0.0
    height_m: float = 0.0
    controller_id: Optional[int] = None


@dataclass(frozen=True)
class Crosswalk:
    """A zebra crossing across the road at ``s_m``, ``length_m`` along s, spanning ``t_min_m..t_max_m``."""

    id: int
    s_m: float
    length_m: float
    t_min_m: float
    t_max_m: float


@dataclass(frozen=True)
class NetRoad:
    """One OpenDRIVE road of a network.

    Args:
        id: the road id (unique, >= 0).
        road: its plan view and lanes (lanes have constant width along the road).
        predecessor, successor: what its start and end join, or None (a dead end).
        junction_id: the junction a connecting road belongs to, -1 for others.
        lane_links: lane id -> (predecessor lane id or None, successor lane id or None).
        signals, crosswalks: what stands on it.
    """

    id: int
    road: Road
    predecessor: Optional[Link] = None
    successor: Optional[Link] = None
    junction_id: int = -1
    lane_links: Dict[int, Tuple[Optional[int], Optional[int]]] = field(default_factory=dict)
    signals: Tuple[Signal, ...] = ()
    crosswalks: Tuple[Crosswalk, ...] = ()

    @property
    def length_m(self) -> float:
        return self.road.length_m


@dataclass(frozen=True)
class Connection:
    """A junction ``<connection>``: ``incoming_road`` enters ``connecting_road`` at its ``contact_point``.

    ``lane_links`` pairs (incoming lane id, connecting lane id).
    """

    id: int
    incoming_road: int
    connecting_road: int
    contact_point: ContactPoint
    lane_links: Tuple[Tuple[int, int], ...]


@dataclass(frozen=True)
class Controller:
    """A traffic-light ``<controller>``: the signals that show the same colour at once."""

    id: int
    signal_ids: Tuple[int, ...]


@dataclass(frozen=True)
class Junction:
    """A ``<junction>`` with its connections and the controllers (phases, in ``sequence`` order)."""

    id: int
    connections: Tuple[Connection, ...]
    controller_ids: Tuple[int, ...] = ()
    center_xy_m: Tuple[float, float] = (0.0, 0.0)
    radius_m: float = 0.0


@dataclass
class RoadNetwork:
    """A whole OpenDRIVE map: roads by id, junctions by id, controllers by id."""

    name: str
    roads: Dict[int, NetRoad]
    junctions: Dict[int, Junction] = field(default_factory=dict)
    controllers: Dict[int, Controller] = field(default_factory=dict)

    @property
    def length_m(self) -> float:
        """Length of the roads outside junctions, metres (the "km of road" of a town)."""
        return float(sum(r.length_m for r in self.roads.values() if r.junction_id < 0))
