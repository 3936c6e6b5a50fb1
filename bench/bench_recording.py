"""Recording benchmarks (issue 5): offline attention-video rendering and the live recorder's cost.

Usage: python bench/bench_recording.py [--frames 1000] [--scenario gentle_curves] [--model PATH]
                                       [--drive-frames 600] [--keep DIR]

1. Offline: a drive log of ``--frames`` frames (recorded first, headless, with the
   expert) is re-rendered into an H.264 attention video with VisualBackProp
   (batched explainer calls, decode | explain | compose+encode pipeline).
   Target: >= 100 frames/s on the 2-core CPU. Stage rates are printed too.
2. Live: the same scenario driven closed-loop by the network, with and without
   the recorder hook (the log; with live maps also the live video), interleaved
   over ``--repeats`` rounds, best round of each. Target: writing the log costs
   <= 15 % of the drive's frame rate. The live video is reported, not gated: it
   is a convenience (full-quality videos are rendered from the log afterwards).

Measured on the shared 2-core VM (other jobs running; rates are best rounds):
offline 104-137 frames/s (PASS); live log cost 14-39 % at uncapped headless
rates of 130-250 frames/s. The recorder's own time on the loop is ~0.1 ms/frame;
the rest is its worker's ~2.5-3 ms/frame of PNG encoding competing for the
second core with the drive's own thread pools (OpenCV, TensorFlow). At the
simulator's real-time rate (20 frames/s) recording is free. Run on an idle
machine for meaningful numbers.

The model defaults to carla_agent/models/pilotnet.keras; without it an untrained
PilotNet of the same shape is used (saliency and inference cost do not depend
on the weights).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from carla_agent.agent import ExpertAgent, NetworkAgent  # noqa: E402
from carla_agent.drive_log import DriveLog  # noqa: E402
from carla_agent.embedded.simulator import EmbeddedSimulator  # noqa: E402
from carla_agent.recorder import RecorderConfig, RecorderHook  # noqa: E402
from carla_agent.runner import Runner  # noqa: E402
from carla_agent.scenario import load_scenario  # noqa: E402

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "carla_agent" / "models" / "pilotnet.keras"
OFFLINE_TARGET_FPS = 100.0
LIVE_MAX_COST_PCT = 15.0


def load_model(path: str | None):
    from carla_agent.steering_model import SteeringModel

    p = Path(path) if path else DEFAULT_MODEL
    if p.exists():
        return SteeringModel.load(p), str(p)
    from carla_agent.pilotnet import build_pilotnet

    return SteeringModel(build_pilotnet(seed=0)), "untrained PilotNet (no model file)"


def record_log(out: Path, scenario, frames: int) -> Path:
    rec = RecorderHook(RecorderConfig(out_dir=out))
    Runner(EmbeddedSimulator(), ExpertAgent(scenario.target_speed_mps), scenario, seed=0,
           duration_s=(frames - 1) * scenario.dt_s, hooks=[rec]).run()
    return rec.run_dir


def offline(run: Path, model, batch: int) -> dict:
    from carla_agent.replay import ExplainerSource, render_log_video
    from carla_agent.video import AttentionLayout, LayoutSpec, MapPanel, Mp4Writer, Telemetry

    log = DriveLog.open(run)
    n = len(log)
    src = ExplainerSource(model, "visual_backprop")
    src(np.stack([log.frame(0)] * batch))  # trace the graph outside the timings
    res = render_log_video(log, run / "bench_vbp.mp4", [src], batch_size=batch, progress=False)
    # stage rates, each alone
    t = time.perf_counter()
    imgs = [log.frame(i) for i in log.indices[:200]]
    decode = 200 / (time.perf_counter() - t)
    frames = np.stack(imgs[:batch])
    t = time.perf_counter()
    for _ in range(3):
        out = src(frames)
    explain = 3 * batch / (time.perf_counter() - t)
    lay = AttentionLayout(imgs[0].shape[:2], 1, LayoutSpec(), model.preprocessing)
    t = time.perf_counter()
    composed = []
    for k, img in enumerate(imgs):
        tel = Telemetry.from_row(log.row(k))
        composed.append(lay.compose(img, [MapPanel(lay.project(out.maps[k % batch]), False, "vbp", "-", 0.0)], tel))
    compose = len(imgs) / (time.perf_counter() - t)
    t = time.perf_counter()
    with Mp4Writer(run / "bench_encode.mp4", 20) as w:
        for f in composed:
            w.write(f)
    encode = len(composed) / (time.perf_counter() - t)
    return {"frames": n, "fps": res.video.render_fps, "wall_s": res.video.wall_s, "size": res.video.size_wh,
            "mb": res.video.path.stat().st_size / 1e6, "decode": decode, "explain": explain, "compose": compose,
            "encode": encode}


def live(scenario, model, frames: int, out: Path, mode: str, explain: bool) -> tuple:
    explainer = None
    if explain:
        from carla_agent.saliency import make_explainer

        explainer = make_explainer(model, "visual_backprop", output=model.steer_index)
    agent = NetworkAgent(model, scenario.target_speed_mps, explainer=explainer)
    hooks = []
    if mode != "off":
        hooks.append(RecorderHook(RecorderConfig(out_dir=out, video="attention_live.mp4" if mode == "video" else None)))
    sim = EmbeddedSimulator()
    runner = Runner(sim, agent, scenario, seed=1, duration_s=(frames - 1) * scenario.dt_s, hooks=hooks)
    t, cpu = time.perf_counter(), time.thread_time()
    m = runner.run()
    wall, cpu = time.perf_counter() - t, time.thread_time() - cpu
    sim.close()
    stats = hooks[0].stats if hooks else None
    return (m.frames + 1) / wall, stats, 1000.0 * cpu / (m.frames + 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--drive-frames", type=int, default=600)
    ap.add_argument("--scenario", default="gentle_curves")
    ap.add_argument("--model", default=None)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--keep", default=None, help="keep the logs in this folder")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    model, model_name = load_model(args.model)
    sc = load_scenario(args.scenario)
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_recording_"))
    ok = True
    try:
        print(f"cpu cores: {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()}"
              f"   model: {model_name}   scenario: {sc.name} {sc.camera.image_size_x}x{sc.camera.image_size_y}")
        t = time.perf_counter()
        run = record_log(tmp, sc, args.frames)
        print(f"recorded a {args.frames}-frame log in {time.perf_counter() - t:.1f} s: {run}")
        r = offline(run, model, args.batch)
        passed = r["fps"] >= OFFLINE_TARGET_FPS
        ok &= passed
        print("\n1) offline attention video, VisualBackProp, batch", args.batch)
        print(f"{'frames':>7} {'wall s':>7} {'frames/s':>9} {'target':>7} {'video':>10} {'MB':>6}  "
              f"{'decode/s':>9} {'explain/s':>9} {'compose/s':>9} {'encode/s':>9}")
        print(f"{r['frames']:>7} {r['wall_s']:>7.2f} {r['fps']:>9.1f} {'>=100':>7} "
              f"{r['size'][0]:>5}x{r['size'][1]:<4} {r['mb']:>6.1f}  {r['decode']:>9.0f} {r['explain']:>9.0f} "
              f"{r['compose']:>9.0f} {r['encode']:>9.0f}   {'PASS' if passed else 'FAIL'}")

        print(f"\n2) live drive, NetworkAgent, {args.drive_frames} frames; configurations interleaved, "
              f"{args.repeats} rounds; cost from the best round of each")
        print(f"{'agent':<20} {'recording':<17} {'best f/s':>8} {'median':>7} {'cost %':>7} "
              f"{'loop cpu ms/f':>16} {'on_step ms/f':>12} {'worker ms/f':>11} {'blocked s':>9} {'max queue':>9}")
        for explain in (False, True):
            modes = ("off", "log", "video") if explain else ("off", "log")
            runs = {mode: [] for mode in modes}
            for _ in range(args.repeats):
                for mode in modes:
                    runs[mode].append(live(sc, model, args.drive_frames, tmp, mode, explain))
            base = max(r[0] for r in runs["off"])
            base_cpu = min(r[2] for r in runs["off"])
            for mode in modes:
                fps_list = sorted(r[0] for r in runs[mode])
                best, stats, _ = max(runs[mode], key=lambda r: r[0])
                loop_cpu = min(r[2] for r in runs[mode])
                cost = 100.0 * (1.0 - best / base)
                verdict = ""
                if mode == "log":
                    verdict = "PASS" if cost <= LIVE_MAX_COST_PCT else "FAIL"
                    ok &= cost <= LIVE_MAX_COST_PCT
                agent = "network + live VBP" if explain else "network"
                label = {"off": "none", "log": "log", "video": "log + live video"}[mode]
                cpu = f"{1000 * stats.worker_cpu_s / max(stats.frames, 1):.2f}" if stats else "-"
                step = f"{1000 * stats.step_s / max(stats.frames, 1):.3f}" if stats else "-"
                blocked = f"{stats.blocked_s:.2f}" if stats else "-"
                queue = str(stats.max_queue) if stats else "-"
                loop = f"{loop_cpu:.2f} ({100.0 * (loop_cpu / base_cpu - 1.0):+.1f}%)"
                print(f"{agent:<20} {label:<17} {best:>8.1f} {fps_list[len(fps_list) // 2]:>7.1f} {cost:>7.1f} "
                      f"{loop:>16} {step:>12} {cpu:>11} {blocked:>9} {queue:>9}   {verdict}")
        print(f"load average at the end: {os.getloadavg()[0]:.2f}. Other processes on the 2 cores skew the wall-clock "
              "rates;\nloop cpu is the drive thread's own CPU per frame (least of the rounds; robust to load), "
              "on_step the recorder's\ntime on the loop, worker the CPU its thread took on the other core.")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print("\nall targets met" if ok else "\nsome targets missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
