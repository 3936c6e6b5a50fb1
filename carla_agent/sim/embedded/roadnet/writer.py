"""OpenDRIVE 1.4 text of a :class:`~carla_agent.sim.embedded.roadnet.model.RoadNetwork`.

What CARLA's client-side ``carla.Map(name, xodr_text)`` parses: roads with
``<link>`` predecessors and successors (road or junction) and lane links,
junctions with connections and lane links, traffic-light signals (type
1000001, dynamic) grouped by ``<controller>``, stop lines (signal type 294)
and crosswalks (``<object type="crosswalk">`` with a local outline).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from carla_agent.sim.embedded.roadnet.model import Link, NetRoad, RoadNetwork, Signal
from carla_agent.sim.embedded.xodr import header_element, road_element, to_text

#: OpenDRIVE signal types (country "OpenDRIVE"): CARLA's traffic light, and the stop line (StVO 294).
SIGNAL_TYPE = {"traffic_light": "1000001", "stop_line": "294"}


def _f(value: float) -> str:
    return f"{value:.17g}"


def _link_xml(parent: ET.Element, tag: str, link: Link | None) -> None:
    if link is None:
        return
    attrs = {"elementType": link.element_type, "elementId": str(link.element_id)}
    if link.contact_point is not None:
        attrs["contactPoint"] = link.contact_point
    ET.SubElement(parent, tag, attrs)


def _signal_xml(parent: ET.Element, sig: Signal) -> None:
    ET.SubElement(parent, "signal", s=_f(sig.s_m), t=_f(sig.t_m), id=str(sig.id), name=f"{sig.kind}_{sig.id}",
                  dynamic="yes" if sig.kind == "traffic_light" else "no", orientation=sig.orientation,
                  zOffset="0", country="OpenDRIVE", type=SIGNAL_TYPE[sig.kind], subtype="-1", value="-1",
                  height=_f(sig.height_m), width=_f(sig.width_m), hOffset="0", pitch="0", roll="0")


def _road_xml(root: ET.Element, net_road: NetRoad) -> None:
    el = road_element(root, net_road.road, net_road.id, net_road.junction_id, net_road.lane_links)
    link = el.find("link")
    _link_xml(link, "predecessor", net_road.predecessor)
    _link_xml(link, "successor", net_road.successor)
    objects = el.find("objects")
    for cw in net_road.crosswalks:
        t_mid = 0.5 * (cw.t_min_m + cw.t_max_m)
        half_w, half_l = 0.5 * (cw.t_max_m - cw.t_min_m), 0.5 * cw.length_m
        ob = ET.SubElement(objects, "object", id=str(cw.id), name="crosswalk", s=_f(cw.s_m), t=_f(t_mid),
                           zOffset="0", hdg="0", roll="0", pitch="0", orientation="none", type="crosswalk",
                           width=_f(2 * half_w), length=_f(cw.length_m))
        outline = ET.SubElement(ob, "outline")
        for u, v in ((-half_l, -half_w), (half_l, -half_w), (half_l, half_w), (-half_l, half_w), (-half_l, -half_w)):
            ET.SubElement(outline, "cornerLocal", u=_f(u), v=_f(v), z="0", height="0")
    signals = el.find("signals")
    for sig in net_road.signals:
        _signal_xml(signals, sig)


def write_network_xodr(net: RoadNetwork, path: str | Path | None = None) -> str:
    """Serialise ``net`` as OpenDRIVE text; also write it to ``path`` when given."""
    root = header_element(net.name)
    for road_id in sorted(net.roads):
        _road_xml(root, net.roads[road_id])
    for cid in sorted(net.controllers):
        ctl = ET.SubElement(root, "controller", id=str(cid), name=f"controller_{cid}")
        for sid in net.controllers[cid].signal_ids:
            ET.SubElement(ctl, "control", signalId=str(sid), type="0")
    for jid in sorted(net.junctions):
        j = net.junctions[jid]
        je = ET.SubElement(root, "junction", id=str(jid), name=f"junction_{jid}")
        for c in j.connections:
            ce = ET.SubElement(je, "connection", id=str(c.id), incomingRoad=str(c.incoming_road),
                               connectingRoad=str(c.connecting_road), contactPoint=c.contact_point)
            for a, b in c.lane_links:
                ET.SubElement(ce, "laneLink", attrib={"from": str(a), "to": str(b)})
        for seq, cid in enumerate(j.controller_ids):
            ET.SubElement(je, "controller", id=str(cid), type="0", sequence=str(seq))
    return to_text(root, path)
