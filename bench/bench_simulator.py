"""Embedded simulator frame rate for a full step (physics + render), pinned to one core.

Usage: python bench/bench_simulator.py [--steps N] [--passes K] [--scenarios a,b,c]

Targets (issue 2): >= 500 frames/s at 200x66 and >= 100 frames/s at 800x600.

The expert's controls are recorded first, then replayed K times; of the fastest
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

from carla_agent.agent import ExpertAgent  # noqa: E402
from carla_agent.embedded.simulator import EmbeddedSimulator  # noqa: E402
from carla_agent.scenario import load_scenario  # noqa: E402

TARGETS = {(200, 66): 500.0, (800, 600): 100.0}


def bench(scenario_name: str, res, steps: int, passes: int) -> tuple:
    sc = load_scenario(scenario_name)
    sc = replace(sc, camera=replace(sc.camera, image_size_x=res[0], image_size_y=res[1]))
    sim = EmbeddedSimulator()
    agent = ExpertAgent(sc.target_speed_mps)
    obs = sim.reset(sc, seed=0)
    controls = []
    for _ in range(steps):  # record controls first so the timed loop is the simulator alone
        d = agent.run_step(obs)
        controls.append(d.control)
        obs = sim.step(d.control)
    # Several passes over the same controls; the best one counts, since this shared
    # 2-core machine's other load only ever adds time.
    best = None
    for _ in range(passes):
        sim.reset(sc, seed=0)
        times = []
        for c in controls:
            t0 = time.perf_counter()
            sim.step(c)
            times.append(time.perf_counter() - t0)
        if best is None or sum(times) < sum(best):
            best = times
    sim.close()
    med = statistics.median(best)
    return med * 1e3, 1.0 / med, steps / sum(best)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--passes", type=int, default=5, help="passes per scenario; the fastest counts")
    ap.add_argument("--scenarios", default="gentle_curves,parked_cars,night_rain,s_curve_fog,highway")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})  # the last core: fewer interrupts
    cv2.setNumThreads(1)
    print(f"{'scenario':<15} {'resolution':>10} {'median ms':>10} {'median fps':>11} {'mean fps':>9} {'target':>7}")
    ok = True
    for res in ((200, 66), (480, 270), (800, 600)):
        for name in args.scenarios.split(","):
            ms, fps, mean_fps = bench(name, res, args.steps, args.passes)
            target = TARGETS.get(res)
            flag = "" if target is None else (" ok" if fps >= target else " MISS")
            ok &= target is None or fps >= target
            print(f"{name:<15} {res[0]:>4}x{res[1]:<5} {ms:>10.2f} {fps:>11.0f} {mean_fps:>9.0f} "
                  f"{'' if target is None else int(target):>7}{flag}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
