"""Leaderboard 2.0 routes for this project's towns: writes scenarios/leaderboard/routes_towns.xml.

    python tools/leaderboard_routes.py                  # every shipped town
    python tools/leaderboard_routes.py --out my.xml --towns grid_small

One route per shipped town, the route of its shipped scenario (``scenarios/town_NAME.yaml``: start,
via and end points), in the Leaderboard's route format (``leaderboard/data/routes_devtest.xml``):
positions in CARLA's frame, ``(x, -y)`` of the OpenDRIVE (town) frame, z 0 (the towns are flat).
Scenarios of the kinds the Leaderboard uses are placed along the route by distance, each on a lane
centre of the planned route outside the junctions (the Leaderboard keeps a scenario only if its
trigger point is within 2 m and 10 degrees of a route point: ``RouteParser.is_scenario_at_route``),
with the route's heading as its yaw (CARLA's, ``-heading``). ``tests/test_leaderboard_routes.py``
checks the file against the towns through the real ``carla.Map``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from carla_agent.sim.embedded.roadnet.catalog import shipped_towns  # noqa: E402
from carla_agent.sim.embedded.roadnet.town import load_town  # noqa: E402
from carla_agent.sim.routing.road_option import RoadOption  # noqa: E402
from carla_agent.sim.routing.route_planner import GlobalRoutePlanner  # noqa: E402
from carla_agent.sim.scenario import load_scenario  # noqa: E402

OUT = ROOT / "scenarios" / "leaderboard" / "routes_towns.xml"
#: (type, fraction of the route length, extra elements): the Leaderboard's kinds, in route order.
#: FollowLeadingVehicle is ScenarioRunner's (a lead car 25 m ahead that brakes); the others are the
#: Leaderboard 2.0 route scenarios. DynamicObjectCrossing needs walkers.
SCENARIOS = (
    ("FollowLeadingVehicle", 0.10, ()),
    ("HardBreakRoute", 0.30, ()),
    ("ParkedObstacle", 0.45, (("distance", {"value": "40"}),)),
    ("ControlLoss", 0.62, ()),
    ("DynamicObjectCrossing", 0.78, (("distance", {"value": "40"}),
                                     ("blocker_model", {"value": "static.prop.vendingmachine"}),
                                     ("crossing_angle", {"value": "10"}))),
)
CLEAR_OF_JUNCTION_M = 25.0  # a trigger point has no junction this close before or after it
MIN_FROM_START_M = 20.0
WEATHER = ('cloudiness="5.0" precipitation="0.0" precipitation_deposits="0.0" wetness="0.0" '
           'wind_intensity="10.0" sun_azimuth_angle="-1.0" sun_altitude_angle="60.0" fog_density="2.0"')


def _trigger_indices(route, fractions):
    """Per fraction, the index of the route point nearest that fraction of its length that lies
    ``CLEAR_OF_JUNCTION_M`` from any junction (None when there is none)."""
    pts = route.points_xy_m
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])
    in_junction = route.options != int(RoadOption.LANEFOLLOW)
    jx = s[in_junction]
    ok = (s > MIN_FROM_START_M) & (s < s[-1] - MIN_FROM_START_M)
    if len(jx):
        ok &= np.min(np.abs(s[:, None] - jx[None, :]), axis=1) > CLEAR_OF_JUNCTION_M
    out = []
    for f in fractions:
        cand = np.flatnonzero(ok)
        out.append(None if not len(cand) else int(cand[np.argmin(np.abs(s[cand] - f * s[-1]))]))
    return out, s


def route_xml(route_id: int, town_name: str) -> str:
    """The ``<route>`` element of town ``town_name``'s shipped route, with its scenarios."""
    sc = load_scenario(f"town_{town_name}")
    town = load_town(town_name)
    rs = sc.route
    points = [rs.start, *rs.via, rs.end]
    heading = None if rs.start_heading_deg is None else math.radians(rs.start_heading_deg)
    route = GlobalRoutePlanner(town.lanes).plan(points, heading)
    idx, s = _trigger_indices(route, [f for _, f, _ in SCENARIOS])
    pts = route.points_xy_m
    lines = [f'   <route id="{route_id}" town={quoteattr(town_name)}>',
             "      <weathers>",
             f'         <weather route_percentage="0" {WEATHER}/>',
             f'         <weather route_percentage="100" {WEATHER}/>',
             "      </weathers>",
             "      <waypoints>"]
    # the planned route's own lane-centre points at start, via and end (the Leaderboard re-plans
    # between them on the client's map with CARLA's GlobalRoutePlanner)
    for x, y in _keypoints(route, points):
        lines.append(f'         <position x="{x:.2f}" y="{-y:.2f}" z="0.0"/>')
    lines += ["      </waypoints>", "      <scenarios>"]
    used = set()
    for (kind, _, extra), i in zip(SCENARIOS, idx):
        if i is None or any(abs(s[i] - s[j]) < 30.0 for j in used):
            continue
        used.add(i)
        j = min(i + 1, len(pts) - 1)
        h = math.atan2(pts[j, 1] - pts[i, 1], pts[j, 0] - pts[i, 0]) if j > i else \
            math.atan2(pts[i, 1] - pts[i - 1, 1], pts[i, 0] - pts[i - 1, 0])
        lines.append(f'         <scenario name="{kind}_{route_id}" type="{kind}">')
        lines.append(f'            <trigger_point x="{pts[i, 0]:.2f}" y="{-pts[i, 1]:.2f}" z="0.0" '
                     f'yaw="{-math.degrees(h):.1f}"/>')
        for tag, attrs in extra:
            a = " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items())
            lines.append(f"            <{tag} {a}/>")
        lines.append("         </scenario>")
    lines += ["      </scenarios>", "   </route>"]
    return "\n".join(lines)


def _keypoints(route, points):
    """The route points nearest each of ``points`` (start, via..., end), in order."""
    pts = route.points_xy_m
    out, lo = [], 0
    for k, (x, y) in enumerate(points):
        d = np.hypot(pts[lo:, 0] - x, pts[lo:, 1] - y)
        i = lo + int(np.argmin(d)) if k < len(points) - 1 else len(pts) - 1
        out.append((float(pts[i, 0]), float(pts[i, 1])))
        lo = i
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--towns", nargs="*", default=None, help="town names (default: every shipped town)")
    args = ap.parse_args()
    towns = args.towns or shipped_towns().names()
    body = "\n".join(route_xml(i, t) for i, t in enumerate(towns))
    text = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            "<!-- Written by tools/leaderboard_routes.py: Leaderboard 2.0 routes on this project's towns "
            "(serve: python -m carla_agent serve, town NAME). -->\n<routes>\n" + body + "\n</routes>\n")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(f"wrote {args.out}: {len(towns)} route(s)")


if __name__ == "__main__":
    main()
