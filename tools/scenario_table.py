"""Drive the shipped model through every embedded scenario and print the README table.

Usage: python tools/scenario_table.py [--model PATH] [--seed N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from carla_agent.drive.agent import NetworkAgent  # noqa: E402
from carla_agent.resources import DEFAULT_MODEL  # noqa: E402
from carla_agent.sim.embedded.simulator import EmbeddedSimulator  # noqa: E402
from carla_agent.drive.runner import Runner  # noqa: E402
from carla_agent.sim.scenario import load_scenario, shipped_scenarios  # noqa: E402
from carla_agent.network.steering_model import SteeringModel  # noqa: E402


#: Weather of each scenario driven by :func:`drive_all` (route scenarios given as paths too).
WEATHERS: dict = {}


def drive_all(model_path: str, seed: int = 0, names=None):
    model = SteeringModel.load(model_path)
    rows = []
    WEATHERS.clear()
    for name in names or shipped_scenarios().names():
        sc = load_scenario(name)
        if sc.backend != "embedded":
            continue
        with EmbeddedSimulator() as sim:
            m = Runner(sim, NetworkAgent(model, sc.target_speed_mps), sc, seed=seed).run()
        rows.append(m)
        WEATHERS[m.scenario] = sc.weather.preset
        print(f"  {name}: autonomy {m.autonomy_pct:.1f} %, mean |offset| {m.mean_abs_offset_m:.3f} m",
              file=sys.stderr)
    return rows


def markdown(rows) -> str:
    head = ("| scenario | weather | autonomy % | interventions | mean abs offset m | max abs offset m | "
            "lane invasions | collisions | route % |\n|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for m in rows:
        weather = WEATHERS.get(m.scenario) or load_scenario(m.scenario).weather.preset
        lines.append(f"| {m.scenario} | {weather} | {m.autonomy_pct:.1f} | {m.interventions} | "
                     f"{m.mean_abs_offset_m:.3f} | {m.max_abs_offset_m:.2f} | {m.lane_invasions} | "
                     f"{m.collisions} | {m.route_completion_pct:.0f} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scenarios", default="")
    ap.add_argument("--json", default=None, help="also write the metrics as JSON here")
    args = ap.parse_args()
    rows = drive_all(args.model, args.seed, [s for s in args.scenarios.split(",") if s] or None)
    print(markdown(rows))
    if args.json:
        Path(args.json).write_text(json.dumps([m.to_dict() for m in rows], indent=2))
    ok = all(m.autonomy_pct >= 98 and m.mean_abs_offset_m <= 0.35 for m in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
