"""Write and read OpenDRIVE 1.4 files for :class:`~carla_agent.sim.embedded.road.Road`.

The writer emits what CARLA's client-side ``carla.Map(name, xodr_text)``
parses: a header, one road without junction, its plan view (line, arc,
spiral), flat elevation, and one lane section with constant-width lanes and
road marks. The reader accepts the same subset, so a road survives a round
trip, and a user can hand the simulator a single-road ``.xodr`` of their own.
The per-road pieces (:func:`road_element`, :func:`read_road_element`) also
serve the road network of towns (:mod:`carla_agent.sim.embedded.roadnet`).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from carla_agent.errors import ScenarioError
from carla_agent.sim.embedded.road import Geometry, Lane, Road, RoadMark
from carla_agent.sim.scenario import MAX_ROAD_M


def _f(value: float) -> str:
    return f"{value:.17g}"


def _mark_xml(parent: ET.Element, mark: RoadMark) -> None:
    ET.SubElement(parent, "roadMark", sOffset="0", type=mark.type, weight="standard",
                  color=mark.color, width=_f(mark.width_m if mark.type != "none" else 0.0),
                  laneChange="none" if mark.type in ("solid", "solid solid") else "both")


def _lane_xml(parent: ET.Element, lane: Lane, links: Tuple[Optional[int], Optional[int]] = (None, None)) -> None:
    el = ET.SubElement(parent, "lane", id=str(lane.id), type=lane.type, level="false")
    link = ET.SubElement(el, "link")
    for tag, other in zip(("predecessor", "successor"), links):
        if other is not None:
            ET.SubElement(link, tag, id=str(other))
    ET.SubElement(el, "width", sOffset="0", a=_f(lane.width_m), b="0", c="0", d="0")
    _mark_xml(el, lane.mark)


def header_element(name: str) -> ET.Element:
    """The ``<OpenDRIVE>`` root with its ``<header>``."""
    root = ET.Element("OpenDRIVE")
    header = ET.SubElement(root, "header", revMajor="1", revMinor="4", name=name, version="1.00",
                           north="0", south="0", east="0", west="0", vendor="carla_agent")
    # CARLA derives GNSS from this; without it the client logs a parse warning.
    ET.SubElement(header, "geoReference").text = "+proj=tmerc +lat_0=0 +lon_0=0 +k=1 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"
    return root


def road_element(root: ET.Element, road: Road, road_id: int = 0, junction: int = -1,
                 lane_links: Optional[Dict[int, Tuple[Optional[int], Optional[int]]]] = None) -> ET.Element:
    """Append ``road`` as a ``<road>`` to ``root``; its ``<link>``, ``<objects>`` and
    ``<signals>`` are left empty for the caller to fill.

    ``lane_links`` maps a lane id to its (predecessor, successor) lane ids.
    """
    lane_links = lane_links or {}
    el = ET.SubElement(root, "road", name=road.name, length=_f(road.length_m), id=str(road_id),
                       junction=str(junction))
    ET.SubElement(el, "link")
    rtype = ET.SubElement(el, "type", s="0", type="town")
    ET.SubElement(rtype, "speed", max=_f(road.speed_limit_mps * 3.6), unit="km/h")
    plan = ET.SubElement(el, "planView")
    for g in road.geometries:
        ge = ET.SubElement(plan, "geometry", s=_f(g.s_m), x=_f(g.x_m), y=_f(g.y_m), hdg=_f(g.hdg_rad),
                           length=_f(g.length_m))
        if g.kind == "line":
            ET.SubElement(ge, "line")
        elif g.kind == "arc":
            ET.SubElement(ge, "arc", curvature=_f(g.curv_start))
        else:
            ET.SubElement(ge, "spiral", curvStart=_f(g.curv_start), curvEnd=_f(g.curv_end))
    elev = ET.SubElement(el, "elevationProfile")
    ET.SubElement(elev, "elevation", s="0", a="0", b="0", c="0", d="0")
    ET.SubElement(el, "lateralProfile")
    lanes = ET.SubElement(el, "lanes")
    ET.SubElement(lanes, "laneOffset", s="0", a="0", b="0", c="0", d="0")
    section = ET.SubElement(lanes, "laneSection", s="0")
    if road.left_lanes:
        left = ET.SubElement(section, "left")
        for lane in reversed(road.left_lanes):  # OpenDRIVE lists lanes from left to right
            _lane_xml(left, lane, lane_links.get(lane.id, (None, None)))
    center = ET.SubElement(section, "center")
    c = ET.SubElement(center, "lane", id="0", type="none", level="false")
    ET.SubElement(c, "link")
    _mark_xml(c, road.center_mark)
    if road.right_lanes:
        right = ET.SubElement(section, "right")
        for lane in road.right_lanes:
            _lane_xml(right, lane, lane_links.get(lane.id, (None, None)))
    ET.SubElement(el, "objects")
    ET.SubElement(el, "signals")
    return el


def to_text(root: ET.Element, path: str | Path | None = None) -> str:
    """The document's text (written to ``path`` too when given)."""
    ET.indent(root)
    text = '<?xml version="1.0" standalone="yes"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
    if path is not None:
        Path(path).write_text(text)
    return text


def write_xodr(road: Road, path: str | Path | None = None) -> str:
    """Serialise ``road`` as OpenDRIVE text; also write it to ``path`` when given."""
    root = header_element(road.name)
    road_element(root, road)
    return to_text(root, path)


def num_attr(el: ET.Element, key: str, source: str, default: float | None = None) -> float:
    raw = el.get(key)
    if raw is None:
        if default is not None:
            return default
        raise ScenarioError(f"{source}: <{el.tag}> lacks attribute '{key}'")
    try:
        value = float(raw)
    except ValueError:
        raise ScenarioError(f"{source}: <{el.tag} {key}={raw!r}> is not a number") from None
    if not math.isfinite(value):
        raise ScenarioError(f"{source}: <{el.tag} {key}={raw!r}> is not a finite number")
    return value


def read_mark(lane_el: ET.Element, source: str) -> RoadMark:
    rm = lane_el.find("roadMark")
    if rm is None:
        return RoadMark("none")
    kind = rm.get("type", "none")
    if kind not in ("solid", "broken", "solid solid", "none"):
        kind = "broken" if "broken" in kind else ("solid" if "solid" in kind else "none")
    color = "yellow" if rm.get("color", "standard") == "yellow" else "standard"
    return RoadMark(kind, color, num_attr(rm, "width", source, 0.15) or 0.15)


def read_road_element(road_el: ET.Element, source: str, speed_limit_mps: float = 13.9,
                      max_length_m: float = MAX_ROAD_M) -> Road:
    """One ``<road>``: its plan view (line, arc, spiral), first lane section and speed.

    Lane widths use the constant coefficient ``a``. Raises ``ScenarioError``
    naming ``source`` and the element when something lies outside that subset.
    """
    where = f"road id={road_el.get('id', '?')}"
    geoms: List[Geometry] = []
    for ge in road_el.findall("planView/geometry"):
        args = [num_attr(ge, k, source) for k in ("s", "x", "y", "hdg", "length")]
        if ge.find("line") is not None:
            geoms.append(Geometry(*args, "line"))
        elif ge.find("arc") is not None:
            k = num_attr(ge.find("arc"), "curvature", source)
            geoms.append(Geometry(*args, "arc", k, k))
        elif ge.find("spiral") is not None:
            sp = ge.find("spiral")
            geoms.append(Geometry(*args, "spiral", num_attr(sp, "curvStart", source), num_attr(sp, "curvEnd", source)))
        else:
            raise ScenarioError(f"{source}: {where}: geometry at s={args[0]} is not a line, arc or spiral "
                                "(paramPoly3 and poly3 are not supported)")
    if not geoms:
        raise ScenarioError(f"{source}: {where}: the road has no <planView><geometry>")
    total_m = sum(g.length_m for g in geoms)
    # Checked before the road is sampled every 10 cm: a huge length would take GBs.
    if any(g.length_m <= 0 for g in geoms) or total_m > max_length_m:
        raise ScenarioError(f"{source}: {where}: <geometry length=...>: the road is {total_m:.0f} m long; expected "
                            f"lengths > 0 adding up to at most {max_length_m:.0f} m")
    section = road_el.find("lanes/laneSection")
    if section is None:
        raise ScenarioError(f"{source}: {where}: the road has no <lanes><laneSection>")

    def lanes_of(side: str) -> tuple:
        out = []
        for el in section.findall(f"{side}/lane"):
            width = el.find("width")
            kind = el.get("type", "driving")
            if kind not in ("driving", "shoulder", "border", "sidewalk"):
                kind = "shoulder"
            try:
                lane_id = int(el.get("id"))
            except (TypeError, ValueError):
                raise ScenarioError(f"{source}: {where}: <lane id={el.get('id')!r}> is not an integer") from None
            out.append(Lane(lane_id, kind, num_attr(width, "a", source) if width is not None else 0.0,
                            read_mark(el, source)))
        return tuple(sorted(out, key=lambda lane: abs(lane.id)))

    center_el = section.find("center/lane")
    center = read_mark(center_el, source) if center_el is not None else RoadMark("none")
    speed = road_el.find("type/speed")
    if speed is not None and speed.get("max"):
        factor = 1 / 3.6 if speed.get("unit", "m/s") == "km/h" else (0.44704 if speed.get("unit") == "mph" else 1.0)
        speed_limit_mps = num_attr(speed, "max", source) * factor
    return Road(tuple(geoms), lanes_of("left"), lanes_of("right"), center,
                name=road_el.get("name") or Path(source).stem, speed_limit_mps=speed_limit_mps)


def parse_root(path: str | Path, text: str | None = None) -> ET.Element:
    """The ``<OpenDRIVE>`` element of a file (or of ``text``, named ``path`` in errors)."""
    source = str(path)
    try:
        return ET.fromstring(Path(path).read_text() if text is None else text)
    except (OSError, ET.ParseError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{source}: not a readable OpenDRIVE file ({exc})") from None


def read_xodr(path: str | Path, speed_limit_mps: float = 13.9) -> Road:
    """Read a single-road OpenDRIVE file (the subset :func:`write_xodr` writes).

    Only the first road and its first lane section are used; lane widths use
    the constant coefficient ``a``.
    """
    source = str(path)
    root = parse_root(path)
    road_el = root.find("road")
    if road_el is None:
        raise ScenarioError(f"{source}: no <road> element; is this an OpenDRIVE (.xodr) file?")
    return read_road_element(road_el, source, speed_limit_mps)
