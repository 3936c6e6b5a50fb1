"""Hand-made OpenDRIVE networks shaped like the parts of CARLA's towns that broke the backend's
ground truth, for the wheel's client-side ``carla.Map(name, xodr_text)``.

* :func:`renumbering_network`: a one-way road whose lane ids renumber between lane
  sections (a lane opens on the inside, as in Town03), then a junction with two
  overlapping connectors (straight on, and a right turn) and a road after each.
* :func:`highway_with_exit`: a gently curving two-lane highway (90 km/h) whose right
  lane can also leave on a straight exit ramp (40 km/h) in a junction, as on Town04.

OpenDRIVE frame: x east, y north, headings counter-clockwise; CARLA's world frame
flips y. Every lane is 3.5 m wide. Only right (negative id) lanes: one-way roads.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

LANE_W = 3.5


def _lane(lane_id: int, pred: Optional[int] = None, succ: Optional[int] = None, width: float = LANE_W) -> str:
    link = "".join([f'<predecessor id="{pred}"/>' if pred is not None else "",
                    f'<successor id="{succ}"/>' if succ is not None else ""])
    return (f'<lane id="{lane_id}" type="driving" level="false"><link>{link}</link>'
            f'<width sOffset="0" a="{width}" b="0" c="0" d="0"/>'
            f'<roadMark sOffset="0" type="broken" weight="standard" color="standard" width="0.12"/></lane>')


def _section(s: float, lanes: Sequence[str]) -> str:
    return (f'<laneSection s="{s}"><center><lane id="0" type="none" level="false"><link/>'
            f'<roadMark sOffset="0" type="solid" weight="standard" color="standard" width="0.12"/></lane></center>'
            f'<right>{"".join(lanes)}</right></laneSection>')


def _road(road_id: int, length: float, geometry: str, sections: Sequence[str], *, junction: int = -1,
          pred: Optional[Tuple[str, int, str]] = None, succ: Optional[Tuple[str, int, str]] = None,
          speed_kmh: Optional[float] = None, offsets: Sequence[Tuple[float, float]] = ()) -> str:
    def link(tag, spec):
        if spec is None:
            return ""
        kind, ident, contact = spec
        contact_attr = f' contactPoint="{contact}"' if kind == "road" else ""
        return f'<{tag} elementType="{kind}" elementId="{ident}"{contact_attr}/>'

    speed = (f'<type s="0" type="town"><speed max="{speed_kmh}" unit="km/h"/></type>'
             if speed_kmh is not None else "")
    lane_offsets = "".join(f'<laneOffset s="{s}" a="{a}" b="0" c="0" d="0"/>' for s, a in offsets)
    return (f'<road name="r{road_id}" length="{length}" id="{road_id}" junction="{junction}">'
            f'<link>{link("predecessor", pred)}{link("successor", succ)}</link>{speed}'
            f'<planView>{geometry}</planView><elevationProfile><elevation s="0" a="0" b="0" c="0" d="0"/>'
            f'</elevationProfile><lateralProfile/><lanes>{lane_offsets}{"".join(sections)}</lanes></road>')


def _line(x: float, y: float, hdg: float, length: float) -> str:
    return f'<geometry s="0" x="{x}" y="{y}" hdg="{hdg}" length="{length}"><line/></geometry>'


def _arc(x: float, y: float, hdg: float, length: float, curvature: float) -> str:
    return f'<geometry s="0" x="{x}" y="{y}" hdg="{hdg}" length="{length}"><arc curvature="{curvature}"/></geometry>'


def _arc_end(x: float, y: float, hdg: float, length: float, curvature: float) -> Tuple[float, float, float]:
    h1 = hdg + curvature * length
    return (x + (math.sin(h1) - math.sin(hdg)) / curvature, y - (math.cos(h1) - math.cos(hdg)) / curvature, h1)


def _junction(junction_id: int, connections: Sequence[Tuple[int, int, int, List[Tuple[int, int]]]]) -> str:
    body = "".join(f'<connection id="{k}" incomingRoad="{inc}" connectingRoad="{con}" contactPoint="start">'
                   + "".join(f'<laneLink from="{a}" to="{b}"/>' for a, b in links) + "</connection>"
                   for k, (inc, con, _, links) in enumerate(connections))
    return f'<junction id="{junction_id}" name="j{junction_id}">{body}</junction>'


def _document(name: str, parts: Sequence[str]) -> str:
    return ('<?xml version="1.0" standalone="yes"?><OpenDRIVE><header revMajor="1" revMinor="4" '
            f'name="{name}" version="1.00" north="0" south="0" east="0" west="0" vendor="carla_agent tests">'
            '<geoReference><![CDATA[+proj=tmerc +lat_0=0 +lon_0=0 +k=1 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs]]>'
            '</geoReference></header>' + "".join(parts) + "</OpenDRIVE>")


def renumbering_network() -> str:
    """Road 1 (200 m east from the origin): lanes -1, -2 up to s = 100; from there a lane
    opens on the inside and the same lanes are numbered -2, -3 (a lane offset of 3.5 m
    keeps them where they were). Lane -2 then enters junction 100: connector 10 goes
    straight on (20 m) to road 3, connector 11 turns right (radius 20 m) to road 4;
    they overlap where they start. Lane -1 of the first section (CARLA y = +1.75) is
    the lane a route from x = 10 drives."""
    r1 = _road(1, 200.0, _line(0.0, 0.0, 0.0, 200.0), [
        _section(0.0, [_lane(-1, succ=-2), _lane(-2, succ=-3)]),
        _section(100.0, [_lane(-1), _lane(-2, pred=-1), _lane(-3, pred=-2)]),
    ], succ=("junction", 100, ""), offsets=[(0.0, 0.0), (100.0, LANE_W)], speed_kmh=50)
    # The connectors start on road 1's reference line at its end; road 1's lane -2 there is at t = -1.75.
    r10 = _road(10, 20.0, _line(200.0, 0.0, 0.0, 20.0), [_section(0.0, [_lane(-1, pred=-2, succ=-1)])],
                junction=100, pred=("road", 1, "end"), succ=("road", 3, "start"), speed_kmh=50)
    turn_len = math.pi / 2 * 20.0
    x11, y11, h11 = _arc_end(200.0, 0.0, 0.0, turn_len, -1.0 / 20.0)
    r11 = _road(11, turn_len, _arc(200.0, 0.0, 0.0, turn_len, -1.0 / 20.0), [_section(0.0, [_lane(-1, pred=-2, succ=-1)])],
                junction=100, pred=("road", 1, "end"), succ=("road", 4, "start"), speed_kmh=30)
    r3 = _road(3, 80.0, _line(220.0, 0.0, 0.0, 80.0), [_section(0.0, [_lane(-1, pred=-1)])],
               pred=("junction", 100, ""), speed_kmh=50)
    r4 = _road(4, 60.0, _line(x11, y11, h11, 60.0), [_section(0.0, [_lane(-1, pred=-1)])],
               pred=("junction", 100, ""), speed_kmh=50)
    junction = _junction(100, [(1, 10, 3, [(-2, -1)]), (1, 11, 4, [(-2, -1)])])
    return _document("renumbering", [r1, r10, r11, r3, r4, junction])


#: Speed limits of :func:`highway_with_exit`, km/h.
HIGHWAY_KMH = 90.0
RAMP_KMH = 40.0


def highway_with_exit() -> str:
    """Road 1: a two-lane highway arcing left (radius 600 m) for 150 m, at 90 km/h. In
    junction 200, connector 20 (lane -1 -> road 2 lane -1) and 21 (lane -2 -> road 2
    lane -2) carry the highway on along the same arc for 40 m; connector 22 takes lane
    -2 straight ahead onto the exit ramp (road 3, 40 km/h, one lane). Measured 10 m
    after the split, the ramp turns less than the highway."""
    radius = 600.0
    k = 1.0 / radius
    x1, y1, h1 = _arc_end(0.0, 0.0, 0.0, 150.0, k)
    x2, y2, h2 = _arc_end(x1, y1, h1, 40.0, k)
    highway_lanes = [_lane(-1, succ=-1), _lane(-2, succ=-2)]
    r1 = _road(1, 150.0, _arc(0.0, 0.0, 0.0, 150.0, k), [_section(0.0, highway_lanes)],
               succ=("junction", 200, ""), speed_kmh=HIGHWAY_KMH)
    r20 = _road(20, 40.0, _arc(x1, y1, h1, 40.0, k), [_section(0.0, [_lane(-1, pred=-1, succ=-1)])],
                junction=200, pred=("road", 1, "end"), succ=("road", 2, "start"), speed_kmh=HIGHWAY_KMH)
    r21 = _road(21, 40.0, _arc(x1, y1, h1, 40.0, k), [_section(0.0, [_lane(-1, width=LANE_W), _lane(-2, pred=-2, succ=-2)])],
                junction=200, pred=("road", 1, "end"), succ=("road", 2, "start"), speed_kmh=HIGHWAY_KMH)
    r22 = _road(22, 40.0, _line(x1, y1, h1, 40.0), [_section(0.0, [_lane(-1, width=LANE_W), _lane(-2, pred=-2, succ=-1)])],
                junction=200, pred=("road", 1, "end"), succ=("road", 3, "start"), speed_kmh=RAMP_KMH)
    r2 = _road(2, 300.0, _arc(x2, y2, h2, 300.0, k), [_section(0.0, [_lane(-1, pred=-1), _lane(-2, pred=-2)])],
               pred=("junction", 200, ""), speed_kmh=HIGHWAY_KMH)
    xr, yr = x1 + 40.0 * math.cos(h1), y1 + 40.0 * math.sin(h1)
    # The ramp's single lane sits where the connector's lane -2 ended: a lane offset of -3.5 m.
    r3 = _road(3, 200.0, _line(xr, yr, h1, 200.0), [_section(0.0, [_lane(-1, pred=-2)])],
               pred=("junction", 200, ""), speed_kmh=RAMP_KMH, offsets=[(0.0, -LANE_W)])
    junction = _junction(200, [(1, 20, 2, [(-1, -1)]), (1, 21, 2, [(-2, -2)]), (1, 22, 3, [(-2, -2)])])
    return _document("highway", [r1, r20, r21, r22, r2, r3, junction])


def lanes_by_road(carla_map, step_m: float = 2.0) -> Dict[int, set]:
    """``road_id -> {lane ids}`` of every waypoint the map generates (a sanity check of a network)."""
    out: Dict[int, set] = {}
    for wp in carla_map.generate_waypoints(step_m):
        out.setdefault(wp.road_id, set()).add(wp.lane_id)
    return out


def _two_way_section(sidewalk_m: float = 2.0) -> str:
    """One lane each way (-1 and 1, linked to the same lanes of the next and previous road) and a
    sidewalk on each side."""
    def lane(lane_id: int, kind: str, width: float) -> str:
        link = "" if kind == "sidewalk" else f'<predecessor id="{lane_id}"/><successor id="{lane_id}"/>'
        return (f'<lane id="{lane_id}" type="{kind}" level="false"><link>{link}</link>'
                f'<width sOffset="0" a="{width}" b="0" c="0" d="0"/>'
                f'<roadMark sOffset="0" type="solid" weight="standard" color="standard" width="0.12"/></lane>')

    return (f'<laneSection s="0"><left>{lane(2, "sidewalk", sidewalk_m)}{lane(1, "driving", LANE_W)}</left>'
            '<center><lane id="0" type="none" level="false"><link/><roadMark sOffset="0" type="broken" '
            'weight="standard" color="standard" width="0.12"/></lane></center>'
            f'<right>{lane(-1, "driving", LANE_W)}{lane(-2, "sidewalk", sidewalk_m)}</right></laneSection>')


def two_way_ring(radius_m: float = 60.0, name: str = "ring") -> str:
    """A circle of radius ``radius_m`` round ``(0, radius_m)``: road 1 the half from the origin
    (heading east, turning left), road 2 the other half back to it, each the other's predecessor and
    successor; one lane each way and sidewalks, at 50 km/h. A car never runs out of road."""
    half = math.pi * radius_m
    k = 1.0 / radius_m
    ends = ("road", 2, "end"), ("road", 2, "start")

    def road(road_id: int, x: float, y: float, hdg: float, link) -> str:
        pred, succ = link
        return (f'<road name="ring{road_id}" length="{half}" id="{road_id}" junction="-1"><link>'
                f'<predecessor elementType="{pred[0]}" elementId="{pred[1]}" contactPoint="{pred[2]}"/>'
                f'<successor elementType="{succ[0]}" elementId="{succ[1]}" contactPoint="{succ[2]}"/></link>'
                '<type s="0" type="town"><speed max="50" unit="km/h"/></type>'
                f'<planView>{_arc(x, y, hdg, half, k)}</planView><elevationProfile/><lateralProfile/>'
                f'<lanes>{_two_way_section()}</lanes></road>')

    r1 = road(1, 0.0, 0.0, 0.0, ends)
    r2 = road(2, 0.0, 2.0 * radius_m, math.pi, (("road", 1, "end"), ("road", 1, "start")))
    return _document(name, [r1, r2])
