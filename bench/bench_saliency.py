"""Benchmark every registered saliency method against bare inference, in one process.

    python bench/bench_saliency.py [--reps-s 2.0] [--batch 32] [--no-tfkv] [--methods a,b]

PilotNet 66x200 (random weights, seed 0), the same frames for every method and
default options (SmoothGrad 20 samples, Integrated Gradients 20 steps,
occlusion window 20 px stride 10 px). Each explainer call returns the
prediction and the map from one compiled graph, and is timed alternately with
bare inference of the same batch, so machine noise hits both; the ratio is
median(method) / median(bare). Batch 1: ms per frame (the live case, where the
targets apply); batch 32: ms per image.

Bare inference is ``tf.function(lambda x: model(x, training=False))`` with a
fixed input signature, called the usual way. The explainers call their
traced concrete function directly, which skips about 0.1-0.2 ms of
tf.function dispatch; the column "b1 ratio vs concrete" divides by bare
inference called that way too, for a like-for-like view.

Where tf-keras-vis has the method (``Saliency``, ``Gradcam``, ``Saliency`` with
``smooth_samples=20``) it is timed in the same run (SmoothGrad at batch 32 is
left out: minutes per call).

Run it on an otherwise idle machine: ratios are paired, but a loaded 2-core
machine still shifts them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

TARGETS = {  # method -> max ratio to bare inference (issue 3), batch 1
    "visual_backprop": 1.3,
    "gradcam": 1.3,
    "gradient": 2.2,
    "smoothgrad": 20.0,
    "integrated_gradients": 20.0,
    "occlusion": 40.0,
}


def frames(n: int, seed: int = 0) -> np.ndarray:
    """Smooth random frames in [0, 255] (colour blobs, so maps are not degenerate)."""
    import cv2

    rng = np.random.default_rng(seed)
    out = [cv2.resize(rng.uniform(0, 255, (9, 25, 3)).astype(np.float32), (200, 66),
                      interpolation=cv2.INTER_CUBIC) for _ in range(n)]
    return np.clip(np.stack(out), 0, 255).astype(np.float32)


def paired_medians(fns: Sequence[Callable[[], object]], budget_s: float, min_reps: int = 5,
                   max_reps: int = 300) -> List[float]:
    """Median seconds of each callable, timed round-robin (after one warm-up call each)."""
    for f in fns:
        f()
    t0 = time.perf_counter()
    for f in fns:
        f()
    once = time.perf_counter() - t0
    reps = int(min(max_reps, max(min_reps, budget_s / max(once, 1e-4))))
    times: List[List[float]] = [[] for _ in fns]
    for _ in range(reps):
        for i, f in enumerate(fns):
            t = time.perf_counter()
            f()
            times[i].append(time.perf_counter() - t)
    return [statistics.median(t) for t in times]


def tfkv_callables(model, x: np.ndarray) -> Dict[str, Callable[[], object]]:
    """tf-keras-vis equivalents, where it has the method."""
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.saliency import Saliency

    sal = Saliency(model, clone=False)
    cam = Gradcam(model, clone=False)

    def score(out):
        return out[:, 0]

    calls = {
        "gradient": lambda: sal(score, x),
        "gradcam": lambda: cam(score, x, penultimate_layer="conv3"),
    }
    if len(x) == 1:
        calls["smoothgrad"] = lambda: sal(score, x, smooth_samples=20)
    return calls


def fmt(v: float | None, spec: str) -> str:
    return "" if v is None else format(v, spec)


def main(argv: List[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps-s", type=float, default=2.0, help="seconds of timing per method and batch size")
    ap.add_argument("--batch", type=int, default=32, help="the large batch size")
    ap.add_argument("--no-tfkv", action="store_true", help="skip tf-keras-vis")
    ap.add_argument("--methods", default="", help="comma-separated subset of methods (default: all)")
    ap.add_argument("--jit", choices=("default", "on", "off"), default="default",
                    help="jit_compile for every explainer (default: each method's own policy)")
    args = ap.parse_args(argv)

    import tensorflow as tf

    from carla_agent.network.pilotnet import build_pilotnet
    from carla_agent.saliency import METHODS, make_explainer

    model = build_pilotnet(seed=0)
    big = frames(args.batch)
    sizes = {1: big[:1], args.batch: big}
    bare_fn = tf.function(lambda x: model(x, training=False),
                          input_signature=[tf.TensorSpec((None, 66, 200, 3), tf.float32)])
    bare_cf = bare_fn.get_concrete_function()

    def bare(n: int):
        x = sizes[n]
        return lambda: bare_fn(tf.constant(x)).numpy()

    def bare_concrete(n: int):
        x = sizes[n]
        return lambda: bare_cf(tf.constant(x)).numpy()

    names = [m for m in args.methods.split(",") if m] or METHODS.names()
    tfkv = {} if args.no_tfkv else {n: tfkv_callables(model, x) for n, x in sizes.items()}
    b = args.batch
    print(f"tensorflow {tf.__version__}, {os.cpu_count()} CPU cores, PilotNet 66x200, batch 1 and {b}, "
          f"load average {os.getloadavg()[0]:.1f}")
    t1, t1c = paired_medians([bare(1), bare_concrete(1)], args.reps_s)
    tb, = paired_medians([bare(b)], args.reps_s)
    rows = [("bare tf.function inference", 1e3 * t1, 1.0, t1 / t1c, 1e3 * tb / b, 1.0, None, None, None, None, None)]
    for name in names:
        jit = {} if args.jit == "default" else {"jit_compile": args.jit == "on"}
        explainer = make_explainer(model, name, **jit)
        x1, xb = sizes[1], sizes[b]
        m1, r1, r1c = paired_medians([lambda: explainer(x1), bare(1), bare_concrete(1)], args.reps_s)
        mb, rb = paired_medians([lambda: explainer(xb), bare(b)], args.reps_s)
        kv = [None] * 4
        if name in tfkv.get(1, {}):
            k1, kr1 = paired_medians([tfkv[1][name], bare(1)], args.reps_s, min_reps=3)
            kv[:2] = [1e3 * k1, k1 / kr1]
        if name in tfkv.get(b, {}):
            kb, krb = paired_medians([tfkv[b][name], bare(b)], args.reps_s, min_reps=2)
            kv[2:] = [1e3 * kb / b, kb / krb]
        rows.append((name, 1e3 * m1, m1 / r1, m1 / r1c, 1e3 * mb / b, mb / rb, TARGETS.get(name), *kv))
        print(f"  measured {name}", file=sys.stderr, flush=True)

    print(f"| method | b1 ms/frame | b1 ratio | b1 ratio vs concrete | b{b} ms/image | b{b} ratio | target (b1) "
          f"| tf-keras-vis b1 ms | tf-keras-vis b1 ratio | tf-keras-vis b{b} ms/image | tf-keras-vis b{b} ratio |")
    print("|" + "---|" * 11)
    missed = []
    for name, ms1, r1, r1c, msb, rb, target, k1, kr1, kb, krb in rows:
        verdict = ""
        if target is not None:
            verdict = f"<= {target:g} " + ("ok" if r1 <= target else "MISSED")
            if r1 > target:
                missed.append(name)
        print(f"| {name} | {ms1:.2f} | {r1:.2f} | {r1c:.2f} | {msb:.3f} | {rb:.2f} | {verdict} "
              f"| {fmt(k1, '.1f')} | {fmt(kr1, '.1f')} | {fmt(kb, '.2f')} | {fmt(krb, '.1f')} |")
    print("targets missed at batch 1: " + (", ".join(missed) if missed else "none"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
