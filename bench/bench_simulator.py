"""Embedded simulator frame rate for a full step (physics + render), pinned to one core.

Usage: python bench/bench_simulator.py [--steps N] [--rounds K] [--scenarios a,b,c] [--res 200x66,800x600]

Targets (issue 2): >= 500 frames/s at 200x66 and >= 100 frames/s at 800x600.

Every shipped embedded scenario by default. The expert's controls are recorded
first, then replayed K times, round-robin over the scenarios; of the fastest
pass the table gives the median step time ("median fps", the gated figure:
the typical frame's cost, which other load on this shared 2-core VM preempting
a few steps does not move) and steps / total time ("mean fps", which those
preemptions do pull down). Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from carla_agent.drive.agent import ExpertAgent  # noqa: E402
from carla_agent.sim.embedded.simulator import EmbeddedSimulator  # noqa: E402
from carla_agent.sim.scenario import load_scenario, shipped_scenarios  # noqa: E402

TARGETS = {(200, 66): 500.0, (800, 600): 100.0}


class Case:
    """One scenario at one resolution: a simulator and the expert's recorded controls."""

    def __init__(self, scenario_name: str, res, steps: int) -> None:
        sc = load_scenario(scenario_name)
        self.name = scenario_name
        self.scenario = replace(sc, camera=replace(sc.camera, image_size_x=res[0], image_size_y=res[1]))
        self.sim = EmbeddedSimulator()
        agent = ExpertAgent(sc.target_speed_mps)
        obs = self.sim.reset(self.scenario, seed=0)
        self.controls = []
        for _ in range(steps):  # controls first, so the timed loop is the simulator alone
            d = agent.run_step(obs)
            self.controls.append(d.control)
            obs = self.sim.step(d.control)
        self.best: list = []

    def run_pass(self) -> None:
        """Replay the controls; keep this pass if its median step is the fastest so far."""
        sim = self.sim
        sim.reset(self.scenario, seed=0)
        times = []
        for c in self.controls:
            t0 = time.perf_counter()
            sim.step(c)
            times.append(time.perf_counter() - t0)
        if not self.best or statistics.median(times) < statistics.median(self.best):
            self.best = times

    def result(self) -> tuple:
        """``(median ms, median fps, mean fps)`` of the fastest pass."""
        med = statistics.median(self.best)
        return med * 1e3, 1.0 / med, len(self.best) / sum(self.best)


def reference_ms() -> float:
    """A fixed CPU workload (Python and small NumPy calls, like a step's), in ms: the VM's speed now."""
    t0 = time.perf_counter()
    a = np.arange(64.0)
    for i in range(4000):
        a = np.sqrt(a * a + float(i % 7))
    sum(range(200000))
    return (time.perf_counter() - t0) * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=6, help="passes per scenario, round-robin; the fastest counts")
    ap.add_argument("--scenarios", default=",".join(n for n in shipped_scenarios().names()
                                                    if load_scenario(n).backend == "embedded"))
    ap.add_argument("--res", default="200x66,480x270,800x600", help="resolutions, e.g. 200x66,800x600")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})  # the last core: fewer interrupts
    cv2.setNumThreads(1)
    print(f"{'scenario':<15} {'resolution':>10} {'median ms':>10} {'median fps':>11} {'mean fps':>9} {'target':>7}")
    ok = True
    refs = []
    for res in (tuple(int(v) for v in r.split("x")) for r in args.res.split(",")):
        cases = [Case(name, res, args.steps) for name in args.scenarios.split(",")]
        # Round-robin: every scenario gets a pass in each round, so a slow spell of this shared VM
        # (its speed drifts by tens of percent over minutes) does not land on one scenario only.
        for _ in range(args.rounds):
            refs.append(reference_ms())
            for case in cases:
                case.run_pass()
        for case in cases:
            ms, fps, mean_fps = case.result()
            case.sim.close()
            target = TARGETS.get(res)
            flag = "" if target is None else (" ok" if fps >= target else " MISS")
            ok &= target is None or fps >= target
            print(f"{case.name:<15} {res[0]:>4}x{res[1]:<5} {ms:>10.2f} {fps:>11.0f} {mean_fps:>9.0f} "
                  f"{'' if target is None else int(target):>7}{flag}")
    print(f"reference workload between rounds: fastest {min(refs):.1f} ms, slowest {max(refs):.1f} ms "
          f"(the machine's own speed varied by {100 * (max(refs) / min(refs) - 1):.0f} % during this run)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
