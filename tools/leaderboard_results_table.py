"""Markdown tables of a tools/run_leaderboard_serve.sh run: one row per route and repetition.

    python tools/leaderboard_results_table.py OUT [ROUTES]

OUT holds ``NAME/results.json`` (the Leaderboard 2.0 evaluator's --checkpoint) and
``NAME/exit_code_and_wall_s`` per agent run, and ``sr/SCENARIO/`` per ScenarioRunner run. Reads
the Leaderboard's own records (``_checkpoint.records``: status, scores, infractions, meta) and
global record; prints what it finds, and says so where a file is missing. Towns come from ROUTES
(default scenarios/leaderboard/routes_towns.xml).
"""

from __future__ import annotations

import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

TOWNS: dict = {}


def _exit(d: Path) -> tuple[str, str]:
    f = d / "exit_code_and_wall_s"
    if not f.exists():
        return "?", "?"
    rc, wall = f.read_text().split()
    return rc, wall


def _num(v) -> str:
    return f"{v:.1f}" if isinstance(v, float) else str(v)


def _infractions(inf: dict) -> str:
    parts = [f"{len(v)} {k}" for k, v in sorted(inf.items()) if v]
    return ", ".join(parts) or "none"


def evaluator_table(d: Path) -> None:
    rc, wall = _exit(d)
    res = d / "results.json"
    print(f"\n### {d.name}: evaluator exit code {rc}, {wall} s wall for the whole run")
    if not res.exists():
        print(f"(no {res})")
        return
    data = json.loads(res.read_text())
    cp = data.get("_checkpoint", {})
    print("\n| route (town), repetition | status | driving score | route completion % | infraction penalty "
          "| infractions | game s | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in cp.get("records", []):
        s, m = r.get("scores", {}), r.get("meta", {})
        m_id = re.match(r"RouteScenario_(\w+?)_rep(\d+)$", str(r.get("route_id")))
        name = f"{m_id.group(1)} ({TOWNS.get(m_id.group(1), '?')}), rep {m_id.group(2)}" if m_id else r.get("route_id")
        print(f"| {name} | {r.get('status')} "
              f"| {s.get('score_composed', 0):.1f} | {s.get('score_route', 0):.1f} | {s.get('score_penalty', 0):.3f} "
              f"| {_infractions(r.get('infractions', {}))} | {m.get('duration_game', 0):.0f} "
              f"| {m.get('duration_system', 0):.0f} |")
    labels, values = data.get("labels") or [], data.get("values") or []
    summary = "; ".join(f"{k} {v}" for k, v in zip(labels, values))
    print(f"\nresults file: entry_status {data.get('entry_status')}, progress {cp.get('progress')}"
          + (f"; {summary}" if summary else ""))


def sr_table(d: Path) -> None:
    print("\n### ScenarioRunner\n\n| scenario | exit code | wall s | result | criteria |")
    print("|---|---|---|---|---|")
    for sd in sorted(p for p in d.iterdir() if p.is_dir()):
        rc, wall = _exit(sd)
        js = sorted(sd.glob("*.json"))
        result, crit = "no results file", ""
        if js:
            data = json.loads(js[-1].read_text())
            result = data.get("success", "?")
            result = "SUCCESS" if result is True else "FAILURE" if result is False else result
            crit = "; ".join(f"{c.get('name')} {_num(c.get('actual'))} (expected {c.get('expected')}) "
                             f"{'ok' if c.get('success') else 'FAIL'}" for c in data.get("criteria", []))
        print(f"| {sd.name} | {rc} | {wall} | {result} | {crit} |")


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/leaderboard_serve")
    routes = Path(sys.argv[2] if len(sys.argv) > 2 else "scenarios/leaderboard/routes_towns.xml")
    if routes.exists():
        TOWNS.update({r.get("id"): r.get("town") for r in ET.parse(routes).getroot().iter("route")})
    for d in sorted(p for p in out.iterdir() if p.is_dir()):
        if d.name == "sr":
            sr_table(d)
        else:
            evaluator_table(d)


if __name__ == "__main__":
    main()
