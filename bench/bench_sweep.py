"""Sweep benchmarks (issue 16): serial vs Ray, Ray's overhead per cell, scaling, the driver's memory.

Usage: python bench/bench_sweep.py [--duration 8] [--seeds 4] [--rounds 2] [--skip-serial] [--cheap-cells 100]

1. Speed-up: a 12-cell grid (gentle_curves, s_curve_fog, highway x the shipped model x
   ``--seeds`` 4 seeds, ``--duration`` s each, VisualBackProp video and report per cell)
   three ways serially and once as a sweep with 2 workers on a fresh local Ray (its start-up
   included), in ``--rounds`` paired rounds whose order alternates. The serial ways:
   ``record`` run once per cell (what the issue's "Why" describes users doing today: one
   ``python -m carla_agent record`` per scenario and seed), ``record`` run once per seed with
   the three scenarios, and ``record``'s path in this one process (``record_drive`` +
   ``finish_run``, TensorFlow 1 thread per op: no start-up at all, the hardest baseline).
   Target: >= 1.7x on 2 cores.
2. Ray's overhead per cell: 100 cells that do nothing through the sweep's scheduler
   (``ray_runner.execute``) with 2 workers; ``wall x workers / cells`` is what Ray and
   the scheduler cost each cell. Target: <= 0.5 s.
3. Scaling: cells of a known cost (0.5 s of CPU each, a busy loop) with 1, 2 and 4
   workers: cells per second against the ideal ``min(workers, cores) / 0.5 s``.
4. The driver's memory over ``--cheap-cells`` 100 cells of a cheap drive (1 s, 64x36 camera,
   no video): its resident set sampled every 0.25 s from the first finished cell on (Ray's own
   start-up is not growth); first quarter against last quarter.

Prints one table per part. The machine is shared: figures move with other people's load.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SCENARIOS = ("gentle_curves", "s_curve_fog", "highway")
BUSY_S = 0.5


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2 ** 20


def busy_cell(cell, spec, out_dir, token, backend_options=None):
    """A cell of known cost: ``BUSY_S`` of this process's CPU time, then a result."""
    from carla_agent.sweep.cell import CellResult

    t0 = time.process_time()
    x = 0
    while time.process_time() - t0 < BUSY_S:
        x += 1
    return CellResult(cell, "done", wall_s=BUSY_S)


def noop_cell(cell, spec, out_dir, token, backend_options=None):
    from carla_agent.sweep.cell import CellResult

    return CellResult(cell, "done")


def cpu_s() -> float:
    """[s] CPU time of this process and its finished children (ffmpeg), user + system."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def serial(spec, out: Path) -> float:
    from carla_agent.network.steering_model import SteeringModel
    from carla_agent.network.tf_threads import set_tf_threads
    from carla_agent.recording.batch import finish_run, record_drive

    t0 = time.perf_counter()
    set_tf_threads(1)
    model = SteeringModel.load(spec.models[0])
    for cell in spec.cells():
        run_dir, _ = record_drive(cell.scenario, model, out, cell.seed, spec.duration_s, progress=False)
        finish_run(run_dir, spec.methods, model, progress=False, index=False)
    return time.perf_counter() - t0


def serial_cli(spec, out: Path, per_cell: bool) -> float:
    """``python -m carla_agent record`` serially: once per cell, or once per seed with every scenario."""
    t0 = time.perf_counter()
    groups = ([((c.scenario,), c.seed) for c in spec.cells()] if per_cell
              else [(spec.scenarios, seed) for seed in spec.seeds])
    for scenarios, seed in groups:
        cmd = [sys.executable, "-m", "carla_agent", "record", "--scenarios", ",".join(scenarios),
               "--seed", str(seed), "--duration", f"{spec.duration_s:g}", "--methods", ",".join(spec.methods),
               "--out", str(out), "--quiet"]
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def table(title, header, rows):
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(str(v) for v in r) + " |")
    sys.stdout.flush()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--skip-serial", action="store_true")
    ap.add_argument("--cheap-cells", type=int, default=100)
    ap.add_argument("--only-speedup", action="store_true", help="part 1 only")
    ap.add_argument("--rounds", type=int, default=2, help="paired serial / sweep rounds, the order alternating")
    args = ap.parse_args()

    import ray

    from carla_agent.sweep import ray_runner
    from carla_agent.sweep.grid import SweepSpec
    from carla_agent.sweep.run import run_sweep

    tmp = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    print(f"cores: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.2f}")
    spec = SweepSpec(scenarios=SCENARIOS, seeds=tuple(range(args.seeds)), duration_s=args.duration)
    n = len(spec.cells())
    ways = ("record per cell", "record per seed", "in-process") if not args.skip_serial else ()
    rows = []
    for k in range(args.rounds):  # paired rounds, the order alternating: the machine's speed drifts
        order = ways + ("sweep",) if k % 2 == 0 else ("sweep",) + ways[::-1]
        times, cores_used, cell_s = {}, float("nan"), float("nan")
        for how in order:
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            if how == "in-process":
                c0 = cpu_s()
                serial(spec, tmp / f"serial{k}")
                cores_used = (cpu_s() - c0) / (time.perf_counter() - t0)
            elif how.startswith("record"):
                serial_cli(spec, tmp / f"cli{k}_{how[-4:]}", per_cell=how.endswith("cell"))
            else:
                result = run_sweep(spec, tmp / f"sweep{k}", workers=2, progress=False)
                assert not result.failed, [r.error for r in result.failed]
                cell_s = sum(r.wall_s for r in result.results) / n
            times[how] = (time.perf_counter() - t0, load)
        sweep_s = times["sweep"][0]
        for how in ways:
            rows.append((k + 1, how, f"{times[how][0]:.1f} (load {times[how][1]:.1f})",
                         f"{sweep_s:.1f} (load {times['sweep'][1]:.1f})", f"{times[how][0] / sweep_s:.2f}",
                         f"{cell_s:.2f}", f"{cores_used:.2f}" if how == "in-process" else "-"))
        if not ways:
            rows.append((k + 1, "-", "-", f"{sweep_s:.1f} (load {times['sweep'][1]:.1f})", "-", f"{cell_s:.2f}", "-"))
    table(f"{n} cells of {args.duration:g} s with video and report: serial vs sweep (2 workers, a fresh local "
          f"Ray, its start included)",
          ("round", "serial way", "serial s (1-min load)", "sweep s (1-min load)", "speed-up",
           "mean cell s in a worker", "cores the in-process run kept busy"), rows)
    if args.only_speedup:
        return

    ray.init(num_cpus=4, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        cheap = SweepSpec(scenarios=("straight_clear",), seeds=tuple(range(100)), methods=())
        cells = cheap.cells()
        token = "x"
        ray_runner.execute(cells[:4], cheap, tmp, token, lambda r: None, workers=2, cell_fn=noop_cell)  # warm
        t0 = time.perf_counter()
        ray_runner.execute(cells, cheap, tmp, token, lambda r: None, workers=2, cell_fn=noop_cell)
        w = time.perf_counter() - t0
        table("Ray's overhead per cell (100 empty cells, 2 workers)", ("wall s", "overhead s per cell", "target"),
              [(f"{w:.2f}", f"{w * 2 / len(cells):.3f}", "<= 0.5")])

        rows = []
        for workers in (1, 2, 4):
            k = 8 * workers
            ray_runner.execute(cells[:workers], cheap, tmp, token, lambda r: None, workers=workers, cell_fn=busy_cell)
            t0 = time.perf_counter()
            ray_runner.execute(cells[:k], cheap, tmp, token, lambda r: None, workers=workers, cell_fn=busy_cell)
            w = time.perf_counter() - t0
            ideal = min(workers, os.cpu_count() or 1) / BUSY_S
            rows.append((workers, k, f"{w:.2f}", f"{k / w:.2f}", f"{ideal:.2f}", f"{k / w / ideal * 100:.0f} %"))
        table(f"Scaling: cells of {BUSY_S} s CPU each", ("workers", "cells", "wall s", "cells/s", "ideal cells/s",
                                                          "of ideal"), rows)
    finally:
        ray.shutdown()

    scen = tmp / "cheap.yaml"
    text = (ROOT / "scenarios" / "straight_clear.yaml").read_text().splitlines()
    scen.write_text("\n".join("  image_size_x: 64" if ln.startswith("  image_size_x:") else
                              "  image_size_y: 36" if ln.startswith("  image_size_y:") else ln for ln in text) + "\n")
    cheap = SweepSpec(scenarios=(str(scen),), seeds=tuple(range(args.cheap_cells)), duration_s=1.0, methods=())
    samples = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            if (tmp / "cheap" / "manifest.json").exists():  # from the first finished cell: Ray is up by then
                samples.append(rss_mb())
            time.sleep(0.25)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t0 = time.perf_counter()
    result = run_sweep(cheap, tmp / "cheap", workers=2, progress=False)
    stop.set()
    th.join()
    w = time.perf_counter() - t0
    q = max(1, len(samples) // 4)
    first, last = samples[:q], samples[-q:]
    table(f"The driver's memory over {args.cheap_cells} cheap cells ({w:.1f} s, {len(result.failed)} failed)",
          ("first quarter mean MB", "last quarter mean MB", "max MB", "growth MB"),
          [(f"{sum(first) / len(first):.1f}", f"{sum(last) / len(last):.1f}", f"{max(samples):.1f}",
            f"{sum(last) / len(last) - sum(first) / len(first):+.1f}")])
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
