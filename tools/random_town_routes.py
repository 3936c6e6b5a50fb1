"""Write seeded random route scenarios through the shipped towns (training data for the branched model).

Each route runs from one spawn point to another (planned by the global route
planner) and crosses at least ``--min-junctions`` junctions, ``--min-turns`` of
them LEFT or RIGHT. Same seed, same files.

    python3 tools/random_town_routes.py --out data/routes --per-town 6 --seed 0
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from carla_agent.sim.embedded.roadnet.catalog import shipped_towns  # noqa: E402
from carla_agent.sim.embedded.roadnet.town import load_town  # noqa: E402
from carla_agent.sim.routing.lane_graph import RoutingError  # noqa: E402
from carla_agent.sim.routing.road_option import RoadOption  # noqa: E402
from carla_agent.sim.routing.route_planner import GlobalRoutePlanner  # noqa: E402

WEATHERS = ("clear_noon", "overcast", "sunset", "rain", "dusk", "fog")


def random_routes(town_name: str, count: int, seed: int, min_junctions: int = 3, min_turns: int = 2,
                  max_length_m: float = 900.0) -> list:
    """``count`` scenario dicts on town ``town_name``."""
    town = load_town(town_name)
    points = town.spawn_points
    planner = GlobalRoutePlanner(town.lanes)
    rng = np.random.default_rng([seed, sum(map(ord, town_name))])
    speed_kmh = float(town.spec.speed_limit_kmh)
    out, tries = [], 0
    while len(out) < count and tries < 2000:
        tries += 1
        a, b = (points[int(i)] for i in rng.integers(len(points), size=2))
        try:
            route = planner.plan([(a.x_m, a.y_m), (b.x_m, b.y_m)], a.yaw_rad)
        except RoutingError:
            continue
        cmds = route.junction_commands()
        turns = sum(c in (RoadOption.LEFT, RoadOption.RIGHT) for c in cmds)
        if len(cmds) < min_junctions or turns < min_turns or not 150.0 < route.length_m < max_length_m:
            continue
        k = len(out)
        target = speed_kmh * float(rng.uniform(0.75, 1.0))
        out.append({
            "name": f"route_{town_name}_{seed}_{k:02d}",
            "description": f"seeded random route {k} (seed {seed}): {' '.join(c.name for c in cmds)}",
            "town": town_name,
            "route": {"start": [round(a.x_m, 2), round(a.y_m, 2)], "end": [round(b.x_m, 2), round(b.y_m, 2)],
                      "start_heading_deg": round(math.degrees(a.yaw_rad), 2)},
            "weather": WEATHERS[int(rng.integers(len(WEATHERS)))],
            "ego": {"target_speed_kmh": round(target, 1)},
            "duration_s": round(route.length_m / (target / 3.6) * 1.25 + 15.0),
        })
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder for the scenario YAML files")
    p.add_argument("--per-town", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--towns", default="", help="comma-separated (default: every shipped town)")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    towns = [t for t in args.towns.split(",") if t] or list(shipped_towns().names())
    for town in towns:
        for sc in random_routes(town, args.per_town, args.seed):
            (out / f"{sc['name']}.yaml").write_text(yaml.safe_dump(sc, sort_keys=False))
            print(out / f"{sc['name']}.yaml", sc["description"].split(": ")[1], f"{sc['duration_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
