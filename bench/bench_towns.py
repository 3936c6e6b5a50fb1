"""Drive seeded random town routes with a driver and print the leaderboard's numbers per town.

    python bench/bench_towns.py [--driver expert|model] [--model PATH] [--routes 20] [--towns a,b]
                                [--seed0 0] [--camera 240x135] [--jobs 1] [--lead GAP_M,SPEED_KMH]
                                [--intervention-m 1.0]

Each town gets ``--routes`` random routes (``random_route_scenario``: seeds ``seed0 ..``,
at least 3 LEFT/RIGHT junction turns, 300..700 m), driven closed-loop on the embedded
simulator with the town's timed traffic lights and parked cars. The expert drives without
a camera (ground truth only); a model drives from frames of ``--camera`` (default
240x135: 16:9 like the scenarios' 480x270, so the model's crop sees the same view, and it
resizes to its 200x66 input), with no video. Per town: route completion (mean; the runner
puts the car back after each intervention, so this is completion with help), the
unaided completion (mean share of the route driven before the first intervention; with
``--intervention-m 30`` that is the leaderboard's route completion), collisions,
red lights run, interventions (the runner puts the car back on its lane when it is more
than 1 m off: NVIDIA's protocol), mean |lateral offset| outside the junctions (m), and the
driving score (leaderboard: completion x penalty per infraction, red light 0.70, x the share
of the route driven inside the route's lanes).

``--intervention-m 30`` drives by the leaderboard's own rules instead: no help unless the car is
30 m off its route, the distance at which the leaderboard ends a route (``InRouteTest``); a car
in a wrong lane drives on and pays in the score (``OutsideRouteLanesTest``), not in completion.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from carla_agent.cli.common import intervention_m  # noqa: E402
from carla_agent.drive.runner import RunnerHook  # noqa: E402

MODEL = Path(__file__).resolve().parents[1] / "carla_agent" / "models" / "pilotnet.keras"
TOWNS = ("grid_small", "ring_multilane")


@dataclass(frozen=True)
class RouteResult:
    town: str
    seed: int
    length_m: float
    turns: int
    completion_pct: float
    unaided_pct: float
    collisions: int
    red_lights: int
    interventions: int
    interventions_in_junctions: int
    offset_sum_m: float
    offset_ticks: int
    driving_score: float
    sim_s: float
    wall_s: float


class _OffsetOutsideJunctions(RunnerHook):
    """Sums |lateral offset| on the ticks whose car centre is on a corridor leg outside a junction,
    and counts the interventions made inside junctions. ``first_s_m``: the route distance of the first
    intervention (None without one)."""

    def __init__(self) -> None:
        self.sum_m, self.ticks, self.sim = 0.0, 0, None
        self.interventions, self.in_junctions = 0, 0
        self.first_s_m = None

    def on_start(self, context, obs) -> None:
        self.sim = context.sim

    def on_step(self, record) -> None:
        sim = self.sim
        leg = sim.corridor.leg_at(record.obs.truth.route_s_m + sim.start_s)
        in_junction = sim.town.network.roads[leg[2]].junction_id >= 0
        if not in_junction:
            self.sum_m += abs(record.obs.truth.lateral_offset_m)
            self.ticks += 1
        if record.interventions > self.interventions:  # the car was put back on the last step, here
            self.in_junctions += (record.interventions - self.interventions) * in_junction
            if self.first_s_m is None:
                self.first_s_m = record.obs.truth.route_s_m
                self.length_m = max(record.obs.truth.route_length_m, 1e-6)
            self.interventions = record.interventions


_MODEL = None


def _drive(job) -> RouteResult:
    town, seed, driver, model_path, camera, lead, intervention_m = job
    from carla_agent.drive.agent import ExpertAgent, NetworkAgent
    from carla_agent.drive.session import drive_scenario
    from carla_agent.sim.embedded.roadnet.random_route import random_route_scenario
    from carla_agent.sim.embedded.simulator import EmbeddedSimulator

    global _MODEL
    w, h = camera
    sc = random_route_scenario(town, seed, camera={"image_size_x": w, "image_size_y": h}, lead=lead)
    if driver == "expert":
        agent, render = ExpertAgent(sc.target_speed_mps), False
    else:
        if _MODEL is None:
            from carla_agent.network.steering_model import SteeringModel
            from carla_agent.network.tf_threads import set_tf_threads

            set_tf_threads(1)
            _MODEL = SteeringModel.load(model_path)
        agent, render = NetworkAgent(_MODEL, sc.target_speed_mps), True
    hook = _OffsetOutsideJunctions()
    t0 = time.perf_counter()
    with EmbeddedSimulator(render=render) as sim:
        m = drive_scenario(sc, agent, sim=sim, seed=seed, hooks=[hook], intervention_m=intervention_m).metrics
        length, turns = sim.route.length_m, sum(c.name in ("LEFT", "RIGHT") for c in sim.route.junction_commands())
    unaided = (m.route_completion_pct if hook.first_s_m is None
               else min(m.route_completion_pct, 100.0 * hook.first_s_m / hook.length_m))
    return RouteResult(town, seed, length, turns, m.route_completion_pct, unaided, m.collisions, m.red_lights,
                       m.interventions, hook.in_junctions, hook.sum_m, hook.ticks, m.driving_score, m.elapsed_s,
                       time.perf_counter() - t0)


def table(results) -> str:
    rows = ["| town | routes | turns (min) | route completion (mean) | unaided completion (mean) | collisions | red lights run | "
            "interventions (in junctions) | mean \\|offset\\| outside junctions | driving score (mean) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for town in dict.fromkeys(r.town for r in results):
        rs = [r for r in results if r.town == town]
        n = len(rs)
        offset = sum(r.offset_sum_m for r in rs) / max(sum(r.offset_ticks for r in rs), 1)
        rows.append(f"| `{town}` | {n} | {min(r.turns for r in rs)} | {sum(r.completion_pct for r in rs) / n:.1f} % | "
                    f"{sum(r.unaided_pct for r in rs) / n:.1f} % | "
                    f"{sum(r.collisions for r in rs)} | {sum(r.red_lights for r in rs)} | "
                    f"{sum(r.interventions for r in rs)} ({sum(r.interventions_in_junctions for r in rs)}) | "
                    f"{offset:.3f} m | "
                    f"{sum(r.driving_score for r in rs) / n:.1f} |")
    return "\n".join(rows)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--driver", choices=("expert", "model"), default="model")
    p.add_argument("--model", default=str(MODEL), help="a steering model (.keras) for --driver model")
    p.add_argument("--routes", type=int, default=20, help="random routes per town")
    p.add_argument("--seed0", type=int, default=0, help="the first route seed")
    p.add_argument("--towns", default=",".join(TOWNS))
    p.add_argument("--camera", default="240x135", help="WxH of the model's camera")
    p.add_argument("--jobs", type=int, default=1, help="routes driven in parallel processes")
    p.add_argument("--lead", default=None, metavar="GAP_M,SPEED_KMH",
                   help="a car ahead on each route, driving it by the rules (e.g. 25,20)")
    p.add_argument("--intervention-m", type=intervention_m, default=1.0, metavar="M",
                   help="the runner puts the car back when it is this far off its lane centre (1: NVIDIA's "
                        "protocol; 30: the leaderboard's route deviation, no help before it)")
    p.add_argument("--verbose", action="store_true", help="one line per route")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    w, h = (int(v) for v in args.camera.lower().split("x"))
    lead = None
    if args.lead:
        gap, speed = (float(v) for v in args.lead.split(","))
        lead = {"gap_m": gap, "speed_kmh": speed}
    jobs = [(town, seed, args.driver, args.model, (w, h), lead, args.intervention_m) for town in args.towns.split(",")
            for seed in range(args.seed0, args.seed0 + args.routes)]
    t = time.perf_counter()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(_drive, jobs))
    else:
        results = [_drive(j) for j in jobs]
    for r in results if args.verbose else ():
        print(f"{r.town:15s} seed {r.seed:3d}: {r.length_m:4.0f} m, {r.turns} turns, completion "
              f"{r.completion_pct:5.1f} % (unaided {r.unaided_pct:5.1f} %), collisions {r.collisions}, red {r.red_lights}, interventions "
              f"{r.interventions} ({r.interventions_in_junctions} in junctions), offset "
              f"{r.offset_sum_m / max(r.offset_ticks, 1):.3f} m, score "
              f"{r.driving_score:5.1f}, {r.sim_s:.0f} s sim in {r.wall_s:.1f} s")
    print(f"driver: {args.driver}" + (f" ({args.model})" if args.driver == "model" else "") +
          f"; seeds {args.seed0}..{args.seed0 + args.routes - 1}" + (f"; lead car {args.lead}" if lead else "") +
          f"; help beyond {args.intervention_m:g} m off the lane")
    print(table(results))
    print(f"{len(results)} routes in {time.perf_counter() - t:.0f} s wall")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
