"""Recording benchmarks (issue 5): offline attention-video rendering and the live recorder's cost.

Usage: python bench/bench_recording.py [--frames 1000] [--scenario gentle_curves] [--model PATH]
                                       [--drive-frames 600] [--repeats 4] [--keep DIR]
                                       [--skip-offline] [--skip-encode] [--no-explain]

1. Offline: a drive log of ``--frames`` frames (recorded first, headless, with the
   expert) is re-rendered into an H.264 attention video with VisualBackProp
   (batched explainer calls, decode | explain | compose+encode pipeline).
   Target: >= 100 frames/s on the 2-core CPU. Stage rates are printed too.
2. Live: the same scenario driven closed-loop by the network, with and without
   the recorder hook (the log; with live maps also the live video), interleaved
   over ``--repeats`` rounds, with TensorFlow at the threads per op that `drive`
   uses (``--tf-threads``). Target: writing the log costs <= 15 % of the drive's
   frame rate, gated on the median of the paired rounds (each recording round
   against the round without recording just before it: adjacent rounds see the
   same machine speed, while best-vs-best hangs on one lucky baseline round; both
   are printed). The live video is reported, not gated: it is a convenience
   (full-quality videos are rendered from the log afterwards).

Also (unless --skip-encode): the encode cost in isolation, one thread, on
rendered frames of six scenarios at the camera size (480x270), per PNG option
and zstd level (the log's format 3 blobs), and the CPU of storing a frame as a
new file vs appending it to one file.

Format 3 (frames.zst / semantic.zst: zstd level 1 of the raw RGB and label
bytes instead of PNG), on the shared 2-core VM at a 1-minute load average of
0.7-1.8 (lighter than in the format 2 runs below):

* encode in isolation (ms / KB per 480x270 frame; labels: ms / KB per label
  image): zstd level 1 0.60 / 54.2 (labels 0.06 / 2.8; used), level 3 0.68 /
  51.6, level -1 0.55 / 57.7; in the same run PNG level 1 without filters 2.07 /
  58.8 (labels with RLE 0.27 / 3.5: format 2), cv2 defaults 2.34 / 56.5, level
  0 0.44 / 390. zstd level 1 is 3.5x cheaper than format 2's PNGs (0.66 vs 2.34
  ms a frame with its labels) and 8 % smaller; level 3 saves 5 % of the disk for
  13 % more CPU, level -1 saves 8 % of the CPU for ~6 % more disk: level 1 stays.
* gated on the paired median, TensorFlow 1 thread per op (as `drive`), --repeats
  10 at load 1.0-1.4: network best-round 15.9 % / paired 10.9 % (PASS; medians
  143.4 vs 128.0 frames/s), with live VBP 20.3 % / 11.7 % (PASS); the best rounds
  without recording were lucky 164 and 184 frames/s against medians of 143-144.
  The drive thread's own CPU per frame still rises 13-21 % while the worker runs
  on the other core (shared caches and memory bandwidth of this VM's host).
* live, the recorder's worker: 1.31-1.46 ms of CPU per frame (format 2: 2.0-3.7
  ms, below); its time on the loop 0.12-0.16 ms per frame.
* live log cost (best round / median of paired rounds), --repeats 8 at load
  0.8-1.8: network 8.3 % / 11.5 % (PASS), with live VBP 7.5 % / 8.8 %; the
  offline run's --repeats 4 at load 1.0-1.6: 10.1 % / 10.9 % (PASS), with live
  VBP 10.4 % / 10.3 %. The live video (reported, not gated) costs 28-30 % /
  29-32 %, its worker 4.9 ms a frame.
* offline: 127.6 frames/s (PASS); frames decoded from frames.zst at ~1900/s
  (PNGs from frames.pngs: ~480-500/s).
* before / after, back to back (--skip-encode --skip-offline --repeats 8
  --no-explain; format 2 at dfe8d5f, then format 3; load 0.7-1.7):
  worker 2.85 -> 1.31 ms of CPU per frame, cost 22.2 % (FAIL; paired 12.5 %)
  -> 4.2 % (PASS; paired 7.7 %). The format 2 round without recording was a
  lucky 151 frames/s (median 130), which inflates its best-round cost.

Format 2 (frames.pngs: PNG level 1 without filters), measured on the shared
2-core VM, other engineers' jobs running (1-minute load average 2-4.5 during
every run, so wall-clock rates swing +-25 % between identical rounds; the CPU
columns and the encode table are the steadier numbers):

* offline: 104-137 frames/s before, 119-146 frames/s with the drive log format 2
  (frames decoded from frames.pngs at ~480-500/s). PASS.
* encode in isolation (ms / KB per 480x270 frame; labels: ms / KB per label image):
  level 1 no filter 1.7-1.9 / 59 (labels 0.21 / 4.7; with RLE 0.18 / 3.5, used);
  cv2 defaults 1.8 / 56; level 2 1.8 / 56; level 3 2.1-2.5 / 54; SUB 2.0-2.5 / 60;
  SUB+RLE 1.8-2.2 / 56; UP+RLE 2.2-2.8 / 74; PAETH+RLE 2.5-3.0 / 55; FILTERED 1.7-2.2 / 59;
  RLE or HUFFMAN_ONLY without a filter 2.5-2.8 / 224; level 0 0.35 / 390. No option
  beats level 1 without filters on these frames by more than the noise, so the
  PNGs stay as they were. Storing: a new file per frame cost 0.1-1 ms of CPU each
  (two per frame; most in the kernel, worst in fresh folders under /tmp), appending
  to one file 0.02-0.03 ms: hence format 2 (frames.pngs / semantic.pngs).
* live, the recorder's worker: 2.8-3.7 ms of CPU per frame before, 2.0-3.0 ms now
  (old and new in the same interleaved series: 3.0 -> 2.0, 3.7 -> 2.6; ~1.9 ms of
  it is PNG encoding); its time on the loop ~0.1 ms per frame.
* live log cost, old and new recorder interleaved in one process, 10 rounds each
  (best round / median of paired rounds): 400 frames at load 2.7-3.5: old 18.9 % /
  27.7 %, new 4.5 % / 10.2 %; 600 frames at load 2.7-3.4: old 16.1 % / 17.2 %, new
  13.5 % / 19.8 %. The CPU saving is steady, the wall-clock one is within the noise.
  This bench (new): 13.6 % (PASS; paired 16.8 %) at load 3.2-3.5; 33 % (FAIL;
  paired 23 %) at load 4.5; 22.7 % (FAIL; paired 10.1 %) at load 1.5, where with
  live VBP it was -1.4 % (PASS; paired 10.2 %). Best-vs-best swings with the one
  luckiest round without recording; the paired median is the steadier figure.
* format 2's png_compression=0 (stored PNGs, 390 KB a frame instead of ~57, 8x the disk):
  worker 0.9 ms a frame, cost 8.5 % (paired 12 %) against 29 % (paired 21 %) for
  level 1 in the same series. An option for uncapped drives on a busy machine,
  not the default: a real-time drive (20 frames/s) records for free either way.

Why it depends on the load: on an idle second core the worker's CPU is nearly
free; when other jobs keep both cores busy it is taken from the drive, and the
cost tends to (worker + on_step) / the drive's process CPU (7-8 ms a frame):
with PNG level 1 (~2.3 ms a frame with its labels) ~3 ms, 35-43 %; with zstd
level 1 (~0.7 ms) ~1.6 ms, 20-23 %. Encoding in a child process instead of a thread showed no
clear gain (a stand-in that only encoded: median paired cost 20 % vs 17 % and 10 %
vs 27 % in two series) for a much bigger change; pinning the worker to the other
core did not help either, nor did a lower worker priority within the noise
(load 1.2-1.7, paired medians: nice 0 11.7 % and 10.3 %, nice 19 9.3 %, SCHED_IDLE
8.3 % and 12.9 %). The drive's own thread runs ~10-20 % slower per frame while
anything else runs on the other core. At the simulator's real-time rate (20 frames/s)
recording is free. Run on an idle machine for meaningful numbers.

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

from carla_agent.drive.agent import ExpertAgent, NetworkAgent  # noqa: E402
from carla_agent.recording.drive_log import DriveLog  # noqa: E402
from carla_agent.sim.embedded.simulator import EmbeddedSimulator  # noqa: E402
from carla_agent.recording.recorder import RecorderConfig, RecorderHook  # noqa: E402
from carla_agent.drive.runner import Runner, RunnerHook  # noqa: E402
from carla_agent.sim.scenario import load_scenario  # noqa: E402

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "carla_agent" / "models" / "pilotnet.keras"
OFFLINE_TARGET_FPS = 100.0
LIVE_MAX_COST_PCT = 15.0


def load_model(path: str | None):
    from carla_agent.network.steering_model import SteeringModel

    p = Path(path) if path else DEFAULT_MODEL
    if p.exists():
        return SteeringModel.load(p), str(p)
    from carla_agent.network.pilotnet import build_pilotnet

    return SteeringModel(build_pilotnet(seed=0)), "untrained PilotNet (no model file)"


def record_log(out: Path, scenario, frames: int) -> Path:
    rec = RecorderHook(RecorderConfig(out_dir=out))
    Runner(EmbeddedSimulator(), ExpertAgent(scenario.target_speed_mps), scenario, seed=0,
           duration_s=(frames - 1) * scenario.dt_s, hooks=[rec]).run()
    return rec.run_dir


def offline(run: Path, model, batch: int) -> dict:
    from carla_agent.drive.telemetry import DriveTelemetry
    from carla_agent.recording.compose import AttentionLayout, LayoutSpec, MapPanel
    from carla_agent.recording.render import render_log_video
    from carla_agent.recording.sources import ExplainerSource
    from carla_agent.recording.video_io import Mp4Writer

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
        tel = DriveTelemetry.from_row(log.row(k))
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


ENCODE_SCENARIOS = ("gentle_curves", "night_rain", "s_curve_fog", "rural_dirt", "hairpin_dusk", "parked_cars")


class _Grab(RunnerHook):
    def __init__(self, every: int) -> None:
        self.every, self.images, self.labels = every, [], []

    def on_step(self, record) -> None:
        if record.tick % self.every == 0:
            self.images.append(np.array(record.obs.image))
            if record.obs.truth.semantic is not None:
                self.labels.append(np.array(record.obs.truth.semantic))


def rendered_frames(names, per_scenario: int = 12) -> tuple:
    """Real rendered frames (and labels) of several scenarios at their camera size, with the expert."""
    images, labels = [], []
    for name in names:
        sc = load_scenario(name)
        grab = _Grab(10)
        sim = EmbeddedSimulator()
        Runner(sim, ExpertAgent(sc.target_speed_mps), sc, seed=0, duration_s=per_scenario * 10 * sc.dt_s,
               hooks=[grab]).run()
        sim.close()
        images += grab.images[:per_scenario]
        labels += grab.labels[:per_scenario]
    return images, labels


def _png_options() -> list:
    import cv2

    f, st = cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_STRATEGY

    def opt(level, filt=None, strategy=None):
        out = [cv2.IMWRITE_PNG_COMPRESSION, level]
        out += [f, getattr(cv2, f"IMWRITE_PNG_{filt}")] if filt else []
        out += [st, getattr(cv2, f"IMWRITE_PNG_STRATEGY_{strategy}")] if strategy else []
        return out

    return [("cv2 defaults", []), ("level 0 (stored)", opt(0, "FILTER_NONE")),
            ("level 1, no filter [format 2 frames]", opt(1, "FILTER_NONE")),
            ("level 1, no filter, FILTERED", opt(1, "FILTER_NONE", "FILTERED")),
            ("level 1, no filter, RLE [format 2 labels]", opt(1, "FILTER_NONE", "RLE")),
            ("level 1, no filter, HUFFMAN_ONLY", opt(1, "FILTER_NONE", "HUFFMAN_ONLY")),
            ("level 1, SUB", opt(1, "FILTER_SUB")), ("level 1, SUB, RLE", opt(1, "FILTER_SUB", "RLE")),
            ("level 1, UP, RLE", opt(1, "FILTER_UP", "RLE")), ("level 1, PAETH, RLE", opt(1, "FILTER_PAETH", "RLE")),
            ("level 1, fast filters, RLE", opt(1, "FAST_FILTERS", "RLE")),
            ("level 2, no filter", opt(2, "FILTER_NONE")), ("level 3, no filter", opt(3, "FILTER_NONE"))]


ZSTD_LEVELS = (1, 3, -1)


def encode_costs(images, labels, tmp: Path, repeats: int = 3) -> list:
    """ms and KB per frame of each PNG option and zstd level (format 3 blobs: header + zstd of the raw
    RGB bytes), single thread, best of ``repeats``; then file vs append."""
    import cv2

    from carla_agent.recording.drive_log import encode_blob, make_compressor

    cv2.setNumThreads(1)
    bgr = [cv2.cvtColor(im, cv2.COLOR_RGB2BGR) for im in images]
    out = []
    for name, params in _png_options():
        for what, arrays in (("frame", bgr), ("labels", labels)):
            best, size = 1e9, 0
            for _ in range(repeats):
                t = time.perf_counter()
                size = sum(cv2.imencode(".png", a, params)[1].size for a in arrays)
                best = min(best, time.perf_counter() - t)
            out.append((name, what, 1000.0 * best / len(arrays), size / len(arrays) / 1000.0))
    for level in ZSTD_LEVELS:
        name = f"zstd level {level}" + (" [log frames, labels]" if level == 1 else "")
        cctx = make_compressor(level)  # one per level, reused, as the writer does
        for what, arrays in (("frame", images), ("labels", labels)):
            best, size = 1e9, 0
            for _ in range(repeats):
                t = time.perf_counter()
                size = sum(len(encode_blob(a, cctx)) for a in arrays)
                best = min(best, time.perf_counter() - t)
            out.append((name, what, 1000.0 * best / len(arrays), size / len(arrays) / 1000.0))
    # storing the encoded frames: one new file per frame (format 1) vs appended to one file (format 2)
    pngs = [cv2.imencode(".png", a, _png_options()[2][1])[1].tobytes() for a in bgr] * 4
    for how in ("a new file per frame", "appended to one file"):
        d = Path(tempfile.mkdtemp(dir=tmp)) / "frames"
        d.mkdir()
        t, cpu = time.perf_counter(), time.thread_time()
        if how.startswith("a new"):
            for k, data in enumerate(pngs):
                with open(d / f"{k:06d}.png", "wb") as fh:
                    fh.write(data)
        else:
            with open(d / "frames.pngs", "ab") as fh:
                for data in pngs:
                    fh.write(data)
        out.append((how, "write", 1000.0 * (time.thread_time() - cpu) / len(pngs),
                    sum(map(len, pngs)) / len(pngs) / 1000.0))
        shutil.rmtree(d.parent, ignore_errors=True)
    return out


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
    t, cpu, proc = time.perf_counter(), time.thread_time(), time.process_time()
    m = runner.run()
    wall, cpu, proc = time.perf_counter() - t, time.thread_time() - cpu, time.process_time() - proc
    sim.close()
    stats = hooks[0].stats if hooks else None
    n = m.frames + 1
    return n / wall, stats, 1000.0 * cpu / n, 1000.0 * proc / n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--drive-frames", type=int, default=600)
    ap.add_argument("--scenario", default="gentle_curves")
    ap.add_argument("--model", default=None)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--keep", default=None, help="keep the logs in this folder")
    ap.add_argument("--skip-offline", action="store_true", help="only the encode table and the live drive")
    ap.add_argument("--skip-encode", action="store_true", help="no isolated encode table")
    ap.add_argument("--no-explain", action="store_true", help="live drive without live saliency only")
    ap.add_argument("--tf-threads", type=int, default=None, metavar="N",
                    help="TensorFlow threads per op (default: as `drive` and `record` use, "
                         "tf_threads.DRIVE_TF_THREADS; 0 = all cores)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from carla_agent.network.tf_threads import DRIVE_TF_THREADS, set_tf_threads

    tf_threads = DRIVE_TF_THREADS if args.tf_threads is None else args.tf_threads
    set_tf_threads(tf_threads)  # the live drive is measured as the CLI drives
    model, model_name = load_model(args.model)
    sc = load_scenario(args.scenario)
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_recording_"))
    ok = True
    try:
        print(f"cpu cores: {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()}"
              f"   model: {model_name}   scenario: {sc.name} {sc.camera.image_size_x}x{sc.camera.image_size_y}"
              f"   TensorFlow threads per op: {tf_threads or 'all'}")
        if not args.skip_offline:
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

        if not args.skip_encode:
            images, labels = rendered_frames(ENCODE_SCENARIOS)
            h, w = images[0].shape[:2]
            print(f"\nencode cost in isolation: {len(images)} rendered {w}x{h} frames of {len(ENCODE_SCENARIOS)} "
                  f"scenarios, one thread, best of 3")
            print(f"{'PNG option / zstd level':<42} {'frame ms':>9} {'KB':>6} {'labels ms':>10} {'KB':>5}")
            rows = encode_costs(images, labels, tmp)
            by = {}
            for name, what, ms, kb in rows:
                by.setdefault(name, {})[what] = (ms, kb)
            for name, d in by.items():
                if "write" in d:
                    print(f"{'store: ' + name:<42} {d['write'][0]:>9.3f} {d['write'][1]:>6.1f}   (CPU ms/frame)")
                else:
                    print(f"{name:<42} {d['frame'][0]:>9.2f} {d['frame'][1]:>6.1f} {d['labels'][0]:>10.2f} "
                          f"{d['labels'][1]:>5.1f}")

        print(f"\n2) live drive, NetworkAgent, {args.drive_frames} frames; configurations interleaved, "
              f"{args.repeats} rounds; cost from the best round of each, and the median of each round's "
              "cost against the drive without recording run just before it (paired, gated: adjacent rounds see "
              "the same machine speed, while best-vs-best hangs on one lucky round)")
        print(f"{'agent':<20} {'recording':<17} {'best f/s':>8} {'median':>7} {'cost %':>7} {'paired %':>8} "
              f"{'loop cpu ms/f':>16} {'proc cpu ms/f':>13} {'on_step ms/f':>12} {'worker ms/f':>11} "
              f"{'blocked s':>9} {'max queue':>9}")
        load0 = os.getloadavg()[0]
        for explain in ((False,) if args.no_explain else (False, True)):
            modes = ("off", "log", "video") if explain else ("off", "log")
            runs = {mode: [] for mode in modes}
            for _ in range(args.repeats):
                for mode in modes:
                    runs[mode].append(live(sc, model, args.drive_frames, tmp, mode, explain))
            base = max(r[0] for r in runs["off"])
            base_cpu = min(r[2] for r in runs["off"])
            for mode in modes:
                fps_list = sorted(r[0] for r in runs[mode])
                best, stats, _, _ = max(runs[mode], key=lambda r: r[0])
                loop_cpu = min(r[2] for r in runs[mode])
                proc_cpu = min(r[3] for r in runs[mode])
                cost = 100.0 * (1.0 - best / base)
                paired = float(np.median([100.0 * (1.0 - r[0] / o[0]) for r, o in zip(runs[mode], runs["off"])]))
                verdict = ""
                if mode == "log":
                    verdict = "PASS" if paired <= LIVE_MAX_COST_PCT else "FAIL"
                    ok &= paired <= LIVE_MAX_COST_PCT
                agent = "network + live VBP" if explain else "network"
                label = {"off": "none", "log": "log", "video": "log + live video"}[mode]
                cpu = f"{1000 * stats.worker_cpu_s / max(stats.frames, 1):.2f}" if stats else "-"
                step = f"{1000 * stats.step_s / max(stats.frames, 1):.3f}" if stats else "-"
                blocked = f"{stats.blocked_s:.2f}" if stats else "-"
                queue = str(stats.max_queue) if stats else "-"
                loop = f"{loop_cpu:.2f} ({100.0 * (loop_cpu / base_cpu - 1.0):+.1f}%)"
                print(f"{agent:<20} {label:<17} {best:>8.1f} {fps_list[len(fps_list) // 2]:>7.1f} {cost:>7.1f} "
                      f"{paired if mode != 'off' else 0.0:>8.1f} {loop:>16} {proc_cpu:>13.2f} {step:>12} {cpu:>11} "
                      f"{blocked:>9} {queue:>9}   {verdict}")
        print(f"load average (1 min) before the live rounds {load0:.2f}, after {os.getloadavg()[0]:.2f}. Other "
              "processes on the 2 cores\nskew the wall-clock rates; loop cpu is the drive thread's own CPU per frame "
              "(least of the rounds;\nrobust to load), proc cpu the whole process's, on_step the recorder's time on "
              "the loop, worker the\nCPU its thread took on the other core. With the second core busy with other "
              "work, the cost tends\nto (worker + on_step) / proc cpu of the drive without recording.")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print("\nall targets met" if ok else "\nsome targets missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
