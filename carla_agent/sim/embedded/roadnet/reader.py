"""Read an OpenDRIVE road network: the subset :mod:`.writer` writes, from any tool.

Inside the subset: roads whose plan view is lines, arcs and spirals, with one
lane section of constant-width lanes (``<width b=c=d=0>``) and no lane offset;
road and junction links with lane links; junctions with connections and lane
links; traffic-light (type 1000001) and stop-line (type 294) signals with
their controllers; crosswalk objects. Elevation is read as flat ground. Other
signals and objects are skipped (they are not drawn). Anything else that
changes where a lane runs is refused with one line naming the file, the
element and what is unsupported.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from carla_agent.errors import ScenarioError
from carla_agent.sim.embedded.roadnet.model import (Connection, Controller, Crosswalk, Junction, Link, NetRoad,
                                                    RoadNetwork, Signal)
from carla_agent.sim.embedded.roadnet.writer import SIGNAL_TYPE
from carla_agent.sim.embedded.xodr import num_attr, parse_root, read_road_element

#: Bounds a file's work: at most this many roads, and this much road in all.
MAX_ROADS = 5000
MAX_NETWORK_M = 200_000.0
_KIND_OF_TYPE = {v: k for k, v in SIGNAL_TYPE.items()}


def _int(el: ET.Element, key: str, source: str) -> int:
    raw = el.get(key)
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise ScenarioError(f"{source}: <{el.tag} {key}={raw!r}>: expected an integer") from None


def _link(el: Optional[ET.Element], source: str) -> Optional[Link]:
    if el is None:
        return None
    kind = el.get("elementType")
    if kind not in ("road", "junction"):
        raise ScenarioError(f"{source}: <{el.tag} elementType={kind!r}>: expected 'road' or 'junction'")
    contact = el.get("contactPoint") if kind == "road" else None
    if kind == "road" and contact not in ("start", "end"):
        raise ScenarioError(f"{source}: <{el.tag} elementType='road' contactPoint={contact!r}>: "
                            "expected 'start' or 'end'")
    return Link(kind, _int(el, "elementId", source), contact)


def _check_subset(road_el: ET.Element, source: str) -> None:
    where = f"{source}: road id={road_el.get('id')}"
    sections = road_el.findall("lanes/laneSection")
    if len(sections) > 1:
        raise ScenarioError(f"{where}: {len(sections)} <laneSection>s; only one lane section per road is "
                            "supported (split the road)")
    for off in road_el.findall("lanes/laneOffset"):
        if any(num_attr(off, k, source, 0.0) != 0.0 for k in ("a", "b", "c", "d")):
            raise ScenarioError(f"{where}: a non-zero <laneOffset> is not supported")
    for lane in road_el.findall("lanes/laneSection/*/lane"):
        widths = lane.findall("width")
        if len(widths) > 1 or any(num_attr(wd, k, source, 0.0) != 0.0 for wd in widths for k in ("b", "c", "d")):
            raise ScenarioError(f"{where}: lane {lane.get('id')}: only one constant <width> (b=c=d=0) is supported")


def _lane_links(road_el: ET.Element, source: str) -> Dict[int, Tuple[Optional[int], Optional[int]]]:
    out = {}
    for lane in road_el.findall("lanes/laneSection/*/lane"):
        lid = _int(lane, "id", source)
        if lid == 0:
            continue
        pred, succ = lane.find("link/predecessor"), lane.find("link/successor")
        links = (None if pred is None else _int(pred, "id", source), None if succ is None else _int(succ, "id", source))
        if links != (None, None):
            out[lid] = links
    return out


def _signals(road_el: ET.Element, source: str) -> Tuple[Signal, ...]:
    out = []
    for el in road_el.findall("signals/signal"):
        kind = _KIND_OF_TYPE.get(el.get("type", ""))
        if kind is None:
            continue
        orientation = el.get("orientation", "+")
        out.append(Signal(_int(el, "id", source), kind, num_attr(el, "s", source), num_attr(el, "t", source, 0.0),
                          "-" if orientation == "-" else "+", num_attr(el, "width", source, 0.0),
                          num_attr(el, "height", source, 0.0)))
    return tuple(out)


def _crosswalks(road_el: ET.Element, source: str) -> Tuple[Crosswalk, ...]:
    out = []
    for el in road_el.findall("objects/object"):
        if el.get("type") != "crosswalk":
            continue
        corners = el.findall("outline/cornerLocal")
        s, t = num_attr(el, "s", source), num_attr(el, "t", source, 0.0)
        if corners:
            u = [num_attr(c, "u", source) for c in corners]
            v = [num_attr(c, "v", source) for c in corners]
            s, length = s + 0.5 * (min(u) + max(u)), max(u) - min(u)
            t_min, t_max = t + min(v), t + max(v)
        else:
            length, width = num_attr(el, "length", source, 3.0), num_attr(el, "width", source, 6.0)
            t_min, t_max = t - 0.5 * width, t + 0.5 * width
        out.append(Crosswalk(_int(el, "id", source), s, length, t_min, t_max))
    return tuple(out)


def read_network_xodr(path: str | Path, text: str | None = None) -> RoadNetwork:
    """The road network of an OpenDRIVE file (or of ``text``, called ``path`` in errors).

    Raises ``ScenarioError`` (one line: file, element, what is unsupported) outside the subset.
    """
    source = str(path)
    root = parse_root(path, text)
    road_els = root.findall("road")
    if not road_els:
        raise ScenarioError(f"{source}: no <road> element; is this an OpenDRIVE (.xodr) file?")
    if len(road_els) > MAX_ROADS:
        raise ScenarioError(f"{source}: {len(road_els)} roads; at most {MAX_ROADS} are supported")
    header = root.find("header")
    name = (header.get("name") if header is not None else None) or Path(source).stem
    roads: Dict[int, NetRoad] = {}
    total_m = 0.0
    for road_el in road_els:
        rid = _int(road_el, "id", source)
        if rid in roads:
            raise ScenarioError(f"{source}: road id={rid} appears twice")
        _check_subset(road_el, source)
        road = read_road_element(road_el, source)
        total_m += road.length_m
        if total_m > MAX_NETWORK_M:
            raise ScenarioError(f"{source}: the roads add up to over {MAX_NETWORK_M:.0f} m; that is the limit")
        jid = int(road_el.get("junction", "-1") or -1)
        roads[rid] = NetRoad(rid, road, _link(road_el.find("link/predecessor"), source),
                             _link(road_el.find("link/successor"), source), jid, _lane_links(road_el, source),
                             _signals(road_el, source), _crosswalks(road_el, source))
    net = RoadNetwork(name, roads)
    for el in root.findall("controller"):
        cid = _int(el, "id", source)
        net.controllers[cid] = Controller(cid, tuple(_int(c, "signalId", source) for c in el.findall("control")))
    _attach_controllers(net)
    for el in root.findall("junction"):
        net.junctions[_int(el, "id", source)] = _junction(el, net, source)
    _check_links(net, source)
    return net


def _attach_controllers(net: RoadNetwork) -> None:
    owner = {sid: cid for cid, c in net.controllers.items() for sid in c.signal_ids}
    for rid, r in net.roads.items():
        if any(s.id in owner for s in r.signals):
            sigs = tuple(Signal(s.id, s.kind, s.s_m, s.t_m, s.orientation, s.width_m, s.height_m, owner.get(s.id))
                         for s in r.signals)
            net.roads[rid] = NetRoad(r.id, r.road, r.predecessor, r.successor, r.junction_id, r.lane_links, sigs,
                                     r.crosswalks)


def _junction(el: ET.Element, net: RoadNetwork, source: str) -> Junction:
    jid = _int(el, "id", source)
    conns: List[Connection] = []
    for c in el.findall("connection"):
        contact = c.get("contactPoint", "start")
        if contact not in ("start", "end"):
            raise ScenarioError(f"{source}: junction id={jid}: <connection contactPoint={contact!r}>: "
                                "expected 'start' or 'end'")
        links = tuple((_int(ll, "from", source), _int(ll, "to", source)) for ll in c.findall("laneLink"))
        conns.append(Connection(_int(c, "id", source), _int(c, "incomingRoad", source),
                                _int(c, "connectingRoad", source), contact, links))
    ctl = sorted(((int(num_attr(c, "sequence", source, 0.0)), _int(c, "id", source))
                  for c in el.findall("controller")))
    ends = []
    for r in net.roads.values():
        if r.junction_id == jid:
            x, y, _ = r.road.pose_at(np.array([0.0, r.road.length_m]))
            ends.extend(zip(x.tolist(), y.tolist()))
    center, radius = (0.0, 0.0), 0.0
    if ends:
        pts = np.asarray(ends)
        cx, cy = pts.mean(axis=0)
        center, radius = (float(cx), float(cy)), float(np.max(np.hypot(pts[:, 0] - cx, pts[:, 1] - cy)))
    return Junction(jid, tuple(conns), tuple(cid for _, cid in ctl), center, radius)


def _check_links(net: RoadNetwork, source: str) -> None:
    for r in net.roads.values():
        for link in (r.predecessor, r.successor):
            if link is None:
                continue
            known = net.roads if link.element_type == "road" else net.junctions
            if link.element_id not in known:
                raise ScenarioError(f"{source}: road id={r.id} links to {link.element_type} id={link.element_id}, "
                                    "which the file does not define")
    for j in net.junctions.values():
        for c in j.connections:
            for rid in (c.incoming_road, c.connecting_road):
                if rid not in net.roads:
                    raise ScenarioError(f"{source}: junction id={j.id}: connection {c.id} names road id={rid}, "
                                        "which the file does not define")
    if not all(math.isfinite(r.length_m) for r in net.roads.values()):
        raise ScenarioError(f"{source}: a road has a non-finite length")
