"""Record a drive while it runs: a runner hook that writes the drive log (and a live attention video).

The drive's loop only copies the frame and builds the row (~0.1 ms);
zstd compression of the frames (~0.7 ms a 480x270 frame with its labels), appends
to the log's frame files and video encoding run in one worker thread fed by a queue. At most ``queue_frames`` frames wait in memory. When the queue is full:

* ``when_full="block"`` (default; lossless): the drive waits for the disk. With
  the simulator in synchronous mode this only slows a drive down, it never
  changes it, and it happens only when the disk is slower than the simulator;
* ``when_full="drop"`` (live HUD): the frame's image is dropped, its row is kept
  (``frame_saved`` 0), so replay and metrics stay whole and the drive never waits.

Example::

    rec = RecorderHook(RecorderConfig(out_dir="runs", video="attention_live.mp4"))
    metrics = Runner(sim, agent, scenario, hooks=[rec]).run()
    log = DriveLog.open(rec.run_dir)
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Tuple

import numpy as np

from carla_agent.recording.drive_log import (DriveLogWriter, RunMeta, SaliencySettings, make_row, new_run_dir,
                                   scenario_to_dict)
from carla_agent.errors import DiskFullError
from carla_agent.drive.runner import DriveContext, RunnerHook, StepRecord, StopDrive
from carla_agent.recording.disk_space import RESERVE_BYTES, free_bytes

log = logging.getLogger(__name__)

LIVE_VIDEO_FILE = "attention_live.mp4"


@dataclass(frozen=True)
class RecorderConfig:
    """What and how to record.

    Attributes:
        out_dir: parent of the run folders (``runs/``).
        run_dir: write exactly this (new or empty) folder instead of a new ``out_dir/<time>_<scenario>``.
        queue_frames: frames that may wait for the worker (memory: about W*H*3 bytes each).
        when_full: ``block`` (lossless) or ``drop`` (real-time; images dropped, rows kept).
        flush_every_s: [s] flush at least this often (simulated or wall-clock time).
        zstd_level: zstd level of the log's frame blobs. Level 1 (default): ~0.6 ms and ~54 KB per
            rendered 480x270 frame (PNG level 1, format 2: ~2.1 ms, ~59 KB); negative levels are
            faster and larger (bench/bench_recording.py prints the table).
        semantic: also save the semantic labels when the backend gives them.
        fsync: fsync at each flush (crash safety on power loss; leave on).
        video: live attention video file name (relative to the run folder) or None.
        video_fps: frames per second of the live video; default the simulation rate.
        video_tile_width_px: tile width of the live video (0: camera width, at most 480).
        worker_nice: raise the worker thread's nice value by this much (Linux, where nice is per
            thread: only the worker is lowered). Off by default: on a loaded 2-core machine a starved
            worker fills the queue and then blocks the drive (measured: nice 5 and 19 cost more frame
            rate than 0; with other sessions' load the worker's CPU is taken from the drive either way).
        video_preset: x264 preset of the live video; ``ultrafast`` takes ~1/3 of ``veryfast``'s CPU
            for ~2x the file size (re-render offline for a small, full-quality video).
        reserve_bytes: [bytes] stop writing frames when less than this is free on the run folder's
            disk (checked every frame), so the last rows and the final ``meta.json`` still fit.
        stop_on_disk_full: end the drive (``StopDrive``) when the disk is full; otherwise it goes on
            unrecorded.
    """

    out_dir: Path = Path("runs")
    run_dir: Optional[Path] = None
    queue_frames: int = 64
    when_full: Literal["block", "drop"] = "block"
    flush_every_s: float = 1.0
    zstd_level: int = 1
    semantic: bool = True
    fsync: bool = True
    video: Optional[str] = None
    video_fps: Optional[float] = None
    video_tile_width_px: int = 320
    worker_nice: int = 0
    video_preset: str = "ultrafast"
    reserve_bytes: int = RESERVE_BYTES
    stop_on_disk_full: bool = True

    def __post_init__(self) -> None:
        if self.when_full not in ("block", "drop"):
            raise ValueError(f"when_full must be 'block' or 'drop', got {self.when_full!r}")
        if self.queue_frames < 1:
            raise ValueError(f"queue_frames must be >= 1, got {self.queue_frames}")


@dataclass
class RecorderStats:
    """What the recorder did. Times in wall-clock seconds.

    Attributes:
        frames: rows handed to the worker.
        dropped: images dropped because the queue was full (``when_full="drop"``).
        blocked_s: time the drive waited on a full queue (``when_full="block"``).
        step_s: time spent in :meth:`RecorderHook.on_step` (the recorder's cost to the loop).
        worker_s: wall-clock time the worker spent encoding and writing.
        worker_cpu_s: CPU time of the worker thread (what it took from the other core).
        max_queue: most frames waiting at once.
        video_frames: frames written to the live video.
    """

    frames: int = 0
    dropped: int = 0
    blocked_s: float = 0.0
    step_s: float = 0.0
    worker_s: float = 0.0
    worker_cpu_s: float = 0.0
    max_queue: int = 0
    video_frames: int = 0


@dataclass
class _Item:
    row: dict
    image: Optional[np.ndarray]
    semantic: Optional[np.ndarray]
    outputs: Tuple[float, ...]
    attention: Any = None  # (maps (h, w) float32, signed, method, target) or None
    holds_slot: bool = field(default=False)


_STOP = object()


class RecorderHook(RunnerHook):
    """Writes a drive log (and optionally a live attention video) during a drive.

    Args:
        config: what and how to record.
        model: the :class:`~carla_agent.network.steering_model.SteeringModel` driving, for the
            log's model hash and summary; default ``runner.agent.model`` when present.
        saliency: live saliency settings; default read from ``runner.agent.explainer``.

        autostart: record from the first tick; otherwise wait for :meth:`start` (the HUD's R
            key), and :meth:`stop` ends a recording mid-drive (R again starts a new run folder).

    Attributes (after the first recorded tick):
        run_dir: the current (or last) run folder.
        stats: :class:`RecorderStats` of the current (or last) recording.
    """

    def __init__(self, config: RecorderConfig = RecorderConfig(), model: Any = None,
                 saliency: Optional[SaliencySettings] = None, autostart: bool = True) -> None:
        self.config = config
        self.model = model
        self.saliency = saliency
        self.autostart = autostart
        self.run_dir: Optional[Path] = None
        self.runs: list = []  # every run folder this hook wrote (the HUD may record several)
        self.stats = RecorderStats()
        self.error: Optional[str] = None
        self.disk_full = False   # the last recording stopped because the disk was full
        self.frames_kept = 0     # rows (with their frames) readable in the last run folder
        self._writer: Optional[DriveLogWriter] = None
        self._queue: "queue.Queue" = queue.Queue()
        self._slots = threading.BoundedSemaphore(config.queue_frames)
        self._thread: Optional[threading.Thread] = None
        self._context: Optional[DriveContext] = None
        self._want = False
        self._t0 = 0.0
        self._output_names: Tuple[str, ...] = ()
        self._video = None
        self._layout = None
        self._normalizer = None
        self._preprocessing = None

    @property
    def recording(self) -> bool:
        """True while frames are being recorded (or will be from the next tick)."""
        return self._want

    # -- control (the HUD's R key) -----------------------------------------------------------
    def start(self) -> None:
        """Record from the next tick on, into a new run folder. No-op while recording."""
        self._want = True

    def stop(self, interrupted: bool = False) -> Optional[Path]:
        """Stop recording now; finish the log with the metrics so far. Returns the run folder."""
        self._want = False
        if self._writer is None:
            return None
        metrics = self._context.metrics_so_far() if self._context is not None else None
        return self._finish(metrics, interrupted)

    # -- hook ---------------------------------------------------------------------------
    def on_start(self, context: DriveContext, obs) -> None:
        self._context = context
        self._want = self.autostart

    def on_step(self, record: StepRecord) -> None:
        if self.disk_full and self.config.stop_on_disk_full:
            raise StopDrive("disk full")
        if not self._want:
            return
        if self._writer is None:
            self._open(record.obs)
        t0 = time.perf_counter()
        row = make_row(self.stats.frames, record, t0 - self._t0)
        obs = record.obs
        holds = self._slots.acquire(blocking=False)
        if not holds and self.config.when_full == "block":
            self._slots.acquire()
            holds = True
            self.stats.blocked_s += time.perf_counter() - t0
        image = semantic = None
        if holds:
            image = np.array(obs.image, copy=True)  # backends may reuse their buffers
            sem = obs.truth.semantic
            semantic = np.array(sem, copy=True) if (sem is not None and self.config.semantic) else None
        else:
            self.stats.dropped += 1
        item = _Item(row, image, semantic, tuple(record.decision.outputs), _attention(record.decision), holds)
        self._queue.put(item)
        self.stats.frames += 1
        self.stats.max_queue = max(self.stats.max_queue, self._queue.qsize())
        self.stats.step_s += time.perf_counter() - t0

    def on_end(self, metrics, interrupted: bool) -> None:
        self._want = False
        if self._writer is not None:
            self._finish(metrics, interrupted)

    # -- internals -----------------------------------------------------------------------------
    def _open(self, obs) -> None:
        context = self._context
        scenario = context.scenario
        model = self.model if self.model is not None else context.model
        saliency = self.saliency or SaliencySettings.from_explainer(context.explainer)
        self._output_names = tuple(getattr(model, "output_names", ()) or ())
        self._preprocessing = getattr(model, "preprocessing", None)
        if self.config.run_dir and not self.runs:
            run_dir = Path(self.config.run_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
        else:
            run_dir = new_run_dir(self.config.out_dir, scenario.name)
        self.run_dir = run_dir
        self.runs.append(run_dir)
        sim = context.sim
        source = None if scenario.source.startswith("<") else str(scenario.source)
        meta = RunMeta(
            run_id=run_dir.name, scenario_name=scenario.name, scenario_file=source,
            scenario=scenario_to_dict(scenario), seed=int(context.seed),
            backend=str(sim.name), server_version=_opt_str(sim.server_version),
            backend_options=sim.options(), dt_s=float(scenario.dt_s), duration_s=float(context.duration_s),
            intervention_m=float(context.intervention_m), camera_hw=tuple(int(v) for v in obs.image.shape[:2]),
            model=_safe_summary(model), agent=type(context.agent).__name__,
            saliency=saliency.to_dict() if saliency is not None else None, first_frame=int(obs.frame),
        )
        self.stats = RecorderStats()
        self.error = None
        self.disk_full = False
        self._video = self._layout = self._normalizer = None
        self._writer = DriveLogWriter(run_dir, meta, source, flush_every_s=self.config.flush_every_s,
                                      zstd_level=self.config.zstd_level, fsync=self.config.fsync)
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._work, args=(self._writer,), name="drive-recorder", daemon=True)
        self._thread.start()
        log.info("recording to %s", run_dir)

    def _finish(self, metrics, interrupted: bool) -> Path:
        writer, self._writer = self._writer, None
        self._queue.put(_STOP)
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        extra = {"dropped_frames": self.stats.dropped, "recorder": {
            "blocked_s": round(self.stats.blocked_s, 3), "step_s": round(self.stats.step_s, 3),
            "worker_s": round(self.stats.worker_s, 3), "worker_cpu_s": round(self.stats.worker_cpu_s, 3),
            "max_queue": self.stats.max_queue}}
        if self.config.video:
            extra["live_video"] = self.config.video if self.stats.video_frames and not self.disk_full else None
        recorder_file = self._context.sim.recorder_file if self._context is not None else None
        if recorder_file:
            extra["carla_recorder_file"] = str(recorder_file)
        complete = not interrupted and self.error is None and self.stats.dropped == 0
        reason = None
        if self.error is not None:
            reason = f"recorder error: {self.error}"
        elif self.stats.dropped:
            reason = f"{self.stats.dropped} image(s) dropped to keep the drive real-time (rows kept)"
        writer.close(metrics.to_dict() if hasattr(metrics, "to_dict") else metrics,
                     interrupted=interrupted, complete=complete, reason=reason, **extra)
        self.frames_kept = writer.frames_flushed
        level = logging.INFO if complete else logging.WARNING
        log.log(level, "drive log %s: %d frames%s%s", writer.path, writer.frames_flushed,
                f", {self.stats.dropped} images dropped" if self.stats.dropped else "",
                "" if complete else " (incomplete)")
        return writer.path

    # -- worker ---------------------------------------------------------------------------
    def _work(self, writer: DriveLogWriter) -> None:
        _lower_priority(self.config.worker_nice)
        cpu0 = time.thread_time()
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            t0 = time.perf_counter()
            try:
                if self.error is None and not self.disk_full:
                    if free_bytes(writer.path) < self.config.reserve_bytes:
                        writer.halt(f"disk full (less than {self.config.reserve_bytes // 1024} KiB free) "
                                    f"at frame i={item.row.get('i')}")
                    writer.append(item.row, item.image, item.semantic, item.outputs, self._output_names)
                    if writer.disk_full:
                        self.disk_full = True
                        self._close_video()
                        self._video = False
                    elif self.config.video and item.image is not None and self._video is not False:
                        try:
                            self._video_frame(item)
                        except Exception as exc:  # the video is a convenience: keep the log going
                            log.log(logging.INFO if isinstance(exc, DiskFullError) else logging.WARNING,
                                    "live video stopped at frame i=%s: %s", item.row.get("i"), exc)
                            self._close_video()
                            self._video = False
            except Exception as exc:  # a bug here must not stop the drive: stop recording instead
                self.error = f"{type(exc).__name__}: {exc}"
                log.exception("recorder failed at frame i=%s; the drive goes on unrecorded", item.row.get("i"))
            finally:
                if item.holds_slot:
                    self._slots.release()
                self.stats.worker_s += time.perf_counter() - t0
        try:
            writer.flush()
        finally:
            self._close_video()
            self.stats.worker_cpu_s = time.thread_time() - cpu0

    def _video_frame(self, item: _Item) -> None:
        from carla_agent.drive.telemetry import DriveTelemetry
        from carla_agent.recording.compose import AttentionLayout, LayoutSpec, MapPanel
        from carla_agent.recording.video_io import Mp4Writer

        if self._video is False:
            return
        if self._video is None:
            att = item.attention
            fps = self.config.video_fps or 1.0 / max(self._context.scenario.dt_s, 1e-6)
            spec = LayoutSpec(tile_width_px=self.config.video_tile_width_px)
            self._layout = AttentionLayout(item.image.shape[:2], 1 if att is not None else 0, spec,
                                           self._preprocessing)
            self._video = Mp4Writer(self.run_dir / self.config.video, fps, preset=self.config.video_preset)
        panels = []
        att = item.attention
        if att is not None and self._layout.n_maps:
            from carla_agent.saliency.normalize import make_normalizer

            maps, signed, method, target = att
            if self._normalizer is None:
                self._normalizer = make_normalizer("running", signed=signed)
            panels.append(MapPanel(self._layout.project(self._normalizer(maps)), signed, method, target,
                                   float(item.row["predicted_steer"] or 0.0)))
        elif self._layout.n_maps:
            panels.append(MapPanel(np.zeros(self._layout.tile_hw, np.float32), False, "no map", "-",
                                   float(item.row["predicted_steer"] or 0.0)))
        frame = self._layout.compose(item.image, panels, DriveTelemetry.from_row(item.row))
        self._video.write(frame)
        self.stats.video_frames += 1

    def _close_video(self) -> None:
        if self._video and self.disk_full:
            self._video.abort()  # cut short by a full disk: no half video under the final name
        elif self._video:
            try:
                self._video.close()
            except Exception as exc:  # a broken pipe must not lose the log's meta
                log.warning("live video %s could not be finished: %s", self.config.video, exc)


def _lower_priority(nice: int) -> None:
    """Raise this thread's nice value (Linux threads are tasks; elsewhere a no-op)."""
    if nice <= 0 or not hasattr(os, "setpriority") or not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError as exc:
        log.debug("recorder: cannot lower the worker's priority: %s", exc)


def _attention(decision) -> Any:
    """``(map (h, w), signed, method, target)`` of a decision's saliency result, or None."""
    att = getattr(decision, "attention", None)
    maps = getattr(att, "maps", None)
    if maps is None or len(maps) == 0:
        return None
    per_frame = getattr(att, "target_per_frame", ()) or ()
    target = str(getattr(att, "target", "-"))
    if per_frame and target == "auto":
        target = f"auto->{per_frame[0]}"
    return (np.asarray(maps[0], np.float32), bool(getattr(att, "signed", False)),
            str(getattr(att, "method", "saliency")), target)


def _safe_summary(model: Any) -> Optional[dict]:
    if model is None or not hasattr(model, "summary"):
        return None
    try:
        return model.summary()
    except Exception as exc:  # the log must not fail because a summary field does
        log.warning("model summary unavailable for the drive log: %s", exc)
        return {"error": str(exc)}


def _opt_str(value: Any) -> Optional[str]:
    if callable(value):
        value = value()
    return None if value is None else str(value)
