"""Time the full faithfulness table for one scenario, 200 frames (issue 7: <= 10 minutes on the 2-core CPU).

    python bench/bench_evaluate.py [--scenario gentle_curves] [--frames 200] [--methods a,b] [--out out/bench_evaluate]

Shipped PilotNet, default methods of :mod:`carla_agent.faithfulness.evaluate` (VisualBackProp,
gradient, Grad-CAM, SmoothGrad, Integrated Gradients, occlusion) plus the random
and Sobel reference maps; every measure (deletion/insertion 20 steps, shift
test, flip, road attention, temporal stability, model randomisation on 8
frames); ``--closed-loop-s`` adds the closed-loop causal test. Prints the table, the time to drive and collect the frames, the time
per method, and the total.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from carla_agent.faithfulness.evaluate import DEFAULT_METHODS, evaluate  # noqa: E402

MODEL = Path(__file__).resolve().parents[1] / "carla_agent" / "models" / "pilotnet.keras"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="gentle_curves")
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    p.add_argument("--closed-loop-s", type=float, default=None,
                   help="also the closed-loop causal test, drives of this many simulated seconds (70: whole route)")
    p.add_argument("--out", default="out/bench_evaluate")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    t = time.perf_counter()
    table = evaluate(MODEL, (args.scenario,), args.methods.split(","), args.frames, args.out,
                     closed_loop_s=args.closed_loop_s)
    total = time.perf_counter() - t
    print(table.markdown())
    print(f"\nflip: mean |f(flip x) + f(x)| = {table.notes['flip_output_error']:.4f} "
          f"(mean |steer| {table.notes['mean_abs_steer']:.4f})")
    print(f"drive + collect {table.notes['collect_s']:.1f} s; per method (explain + measures + randomisation):")
    for name, s in table.notes["method_s"].items():
        print(f"  {name:22s} {s:7.1f} s")
    print(f"total {total:.1f} s ({'within' if total <= 600 else 'OVER'} the 10-minute budget); "
          f"{args.frames} frames, {args.scenario}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
