"""Render an attention video from a drive log's frames, with any map sources.

:func:`render_log_video` re-renders an attention video from a log's frames with
any map sources: one or more saliency methods
(:class:`~carla_agent.recording.sources.ExplainerSource`, any method, target, layer
and options, e.g. occlusion at several window sizes), two models side by side
(:func:`render_ab_video`), or any callable ``frame -> map``
(:class:`~carla_agent.recording.sources.FunctionSource`). Frames are decoded,
explained in batches and composed in a three-stage pipeline (decode | explain |
compose + encode), so both cores stay busy. Per-frame saliency statistics are
written next to the video (``<video>.stats.csv``) for the report.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from carla_agent.drive.telemetry import DriveTelemetry
from carla_agent.progress import progress_bar
from carla_agent.recording.compose import AttentionLayout, LayoutSpec, MapPanel
from carla_agent.recording.drive_log import META_FILE, DriveLog, DriveLogError, update_meta, utc_now
from carla_agent.recording.sources import ExplainerSource, MapBatch, MapSource, model_label, resolve_model
from carla_agent.recording.stats import STATS_SUFFIX, labels_at, map_stats
from carla_agent.recording.disk_space import atomic_file
from carla_agent.recording.video_io import VideoInfo, open_writer

log = logging.getLogger(__name__)

DEFAULT_BATCH = 64


@dataclass(frozen=True)
class RenderResult:
    """A re-rendered attention video.

    Attributes:
        video: the written video.
        stats_path: per-frame, per-source statistics CSV (None when not written).
        sources: ``name`` of each source, in tile order.
        skipped: row indices skipped because their frame could not be read.
    """

    video: VideoInfo
    stats_path: Optional[Path]
    sources: Tuple[str, ...]
    skipped: Tuple[int, ...] = ()


@dataclass
class _Batch:
    idx: List[int]
    rows: List[dict]
    images: List[np.ndarray]
    semantics: List[Optional[np.ndarray]]
    skipped: List[int] = field(default_factory=list)


def _load_batch(dlog: DriveLog, idx: Sequence[int], pool: ThreadPoolExecutor, semantic: bool) -> _Batch:
    """Rows and decoded frames of ``idx``; unreadable ones are logged and listed in ``skipped``."""
    def one(i):
        try:
            row = dlog.row(i)
            return i, row, dlog.frame(i), (dlog.semantic(i) if semantic else None)
        except DriveLogError as exc:
            log.warning("%s; skipped", exc)
            return i, None, None, None

    out = _Batch([], [], [], [])
    for i, row, image, sem in pool.map(one, idx):
        if row is None:
            out.skipped.append(i)
            continue
        out.idx.append(i)
        out.rows.append(row)
        out.images.append(image)
        out.semantics.append(sem)
    return out


def render_log_video(drive_log: DriveLog | str | Path, out_path: str | Path, sources: Sequence[MapSource],
                     layout: LayoutSpec = LayoutSpec(), fps: Optional[float] = None,
                     indices: Optional[Sequence[int]] = None, step: int = 1, batch_size: int = DEFAULT_BATCH,
                     progress: bool = True, stats: bool = True, normalizer: str = "running",
                     writer_options: Optional[Mapping[str, Any]] = None) -> RenderResult:
    """Render an attention video (``.mp4`` or ``.gif``) from a log.

    Args:
        drive_log: the run (a :class:`DriveLog` or its folder).
        out_path: video file; the suffix picks the format.
        sources: map sources, one tile each, in order (may be empty: camera + telemetry).
        layout: tile geometry.
        fps: video frame rate; default the simulation rate divided by ``step``.
        indices: rows to render (default every readable row), taken every ``step``.
        batch_size: frames per explainer call.
        progress: show a progress bar with ETA.
        stats: write per-frame statistics to ``<out_path>.stats.csv``.
        normalizer: ``running`` (steady colours, default) or ``frame``.
        writer_options: passed to the writer (``crf``, ``preset``; GIF ``scale``).
    """
    import pandas as pd

    from carla_agent.saliency.normalize import make_normalizer

    dlog = drive_log if isinstance(drive_log, DriveLog) else DriveLog.open(drive_log)
    idx = list(dlog.indices if indices is None else indices)[::max(1, int(step))]
    if not idx:
        raise DriveLogError(f"{dlog.path}: no frames to render")
    out_path = Path(out_path)
    fps = float(fps or dlog.fps / max(1, int(step)))
    pre = next((s.preprocessing for s in sources if s.preprocessing is not None), None)
    recorded = (dlog.meta.get("model") or {}).get("preprocessing")
    if pre is None and recorded:
        from carla_agent.network.preprocess import Preprocessing

        pre = Preprocessing.from_dict(recorded, str(dlog.path / "meta.json"), field="model.preprocessing")
    cam_hw = tuple(dlog.meta.get("camera_hw") or dlog.frame(idx[0]).shape[:2])
    lay = AttentionLayout(cam_hw, len(sources), layout, pre)
    norms = [make_normalizer(normalizer, signed=s.signed) for s in sources]
    want_sem = stats and dlog.has_semantic
    stat_rows: List[dict] = []
    prev_maps: List[Optional[np.ndarray]] = [None] * len(sources)
    skipped: List[int] = []
    writer = open_writer(out_path, fps, **dict(writer_options or {}))
    start = time.perf_counter()

    def compose(batch: _Batch, results: List[MapBatch]) -> None:
        for k, (i, row, image) in enumerate(zip(batch.idx, batch.rows, batch.images)):
            tel = DriveTelemetry.from_row(row)
            panels = []
            for s, src in enumerate(sources):
                res = results[s]
                raw = res.maps[k]
                panels.append(MapPanel(lay.project(norms[s](raw)), src.signed, src.name, res.targets[k],
                                       float(res.steer[k]), src.label))
                if stats:
                    sem = batch.semantics[k]
                    labels = labels_at(sem, src.preprocessing, raw.shape) if sem is not None else None
                    st = map_stats(raw, labels, prev_maps[s])
                    prev_maps[s] = np.abs(raw)
                    stat_rows.append({"i": i, "frame": tel.frame, "sim_time_s": tel.sim_time_s,
                                      "source": (f"{src.label}: " if src.label else "") + src.name,
                                      "method": getattr(src, "spec", src.name), "label": src.label,
                                      "steer": float(res.steer[k]), "target": res.targets[k], **st})
            writer.write(lay.compose(image, panels, tel))
            bar.update(1)

    chunks = [idx[k:k + batch_size] for k in range(0, len(idx), batch_size)]
    try:
        with ThreadPoolExecutor(2, thread_name_prefix="decode") as decoder, \
                ThreadPoolExecutor(1, thread_name_prefix="load") as loader, \
                ThreadPoolExecutor(1, thread_name_prefix="compose") as composer, \
                progress_bar(len(idx), f"video {out_path.name}", unit="frame", enabled=progress, leave=False) as bar:
            pending = loader.submit(_load_batch, dlog, chunks[0], decoder, want_sem)
            composed = None
            for c in range(len(chunks)):
                batch = pending.result()
                if c + 1 < len(chunks):  # decode the next batch while this one is explained
                    pending = loader.submit(_load_batch, dlog, chunks[c + 1], decoder, want_sem)
                skipped.extend(batch.skipped)
                if not batch.idx:
                    continue
                frames = np.stack(batch.images)
                results = [src(frames, _commands(batch.rows)) for src in sources]
                if composed is not None:
                    composed.result()
                composed = composer.submit(compose, batch, results)  # compose + encode off this thread
            if composed is not None:
                composed.result()
    except BaseException:  # Ctrl-C too: a cut-short video never takes the final name
        writer.abort()
        raise
    writer.close()
    if writer.frames == 0:  # nothing was written (the writer leaves no file): say why, once
        raise DriveLogError(f"{dlog.path}: no video written: none of its {len(idx)} frame(s) could be read "
                            f"({_first_problem(dlog, skipped)})")
    wall = time.perf_counter() - start
    size = getattr(writer, "size_wh", None) or lay.size_wh
    info = VideoInfo(out_path, writer.frames, tuple(size), fps, wall)
    stats_path = None
    if stats and stat_rows:
        stats_path = out_path.with_name(out_path.name + STATS_SUFFIX)
        with atomic_file(stats_path) as tmp:
            pd.DataFrame(stat_rows).to_csv(tmp, index=False)
    _note_video(dlog, out_path, sources, normalizer, info)
    log.info("%s: %d frames in %.1f s (%.0f frames/s)%s", out_path, info.frames, wall, info.render_fps,
             f", {len(skipped)} unreadable frame(s) skipped" if skipped else "")
    return RenderResult(info, stats_path, tuple(s.name for s in sources), tuple(skipped))


def _commands(rows: Sequence[dict]) -> Optional[List[int]]:
    """The route command (RoadOption value) each row was driven with, so that the branch that drove
    a frame is the one explained; None for a log without commands (LANEFOLLOW where one is missing)."""
    values = []
    for row in rows:
        try:
            values.append(int(row.get("command")))
        except (TypeError, ValueError):  # missing, empty or NaN
            values.append(None)
    if all(v is None for v in values):
        return None
    return [4 if v is None else v for v in values]


def _first_problem(dlog: DriveLog, skipped: Sequence[int]) -> str:
    """Why the first skipped frame could not be read, for a one-line error."""
    for i in skipped[:1]:
        try:
            dlog.frame(i)
        except DriveLogError as exc:
            return f"first: {exc}"
    return "every frame is missing"


def _note_video(dlog: DriveLog, video: Path, sources: Sequence[MapSource], normalizer: str,
                info: VideoInfo) -> None:
    """Record in the run's ``meta.json`` (``videos``) the saliency settings a video in its folder was made with."""
    if video.resolve().parent != dlog.path.resolve():
        return  # a video elsewhere is not part of the run folder
    entries = []
    for src in sources:
        settings = dict(getattr(src, "settings", None) or {"method": src.name})
        if src.label:
            settings["label"] = src.label
        entries.append(settings)
    entry = {"sources": entries, "normalizer": normalizer, "frames": info.frames, "fps": info.fps,
             "rendered_utc": utc_now()}
    try:
        meta = json.loads((dlog.path / META_FILE).read_text(encoding="utf-8"))  # as it is now, not as opened
        update_meta(dlog.path, {"videos": {**(meta.get("videos") or {}), video.name: entry}})
    except (OSError, ValueError, DriveLogError) as exc:  # a read-only run folder keeps its video, without the note
        log.warning("%s: could not note the video's settings in meta.json: %s", dlog.path, exc)


def render_ab_video(drive_log: DriveLog | str | Path, out_path: str | Path, model_a: Any, model_b: Any,
                    method: str = "visual_backprop", target: str = "auto", options: Optional[Mapping] = None,
                    **render_options) -> RenderResult:
    """Two models side by side on the same frames, each tile with its own prediction and map.

    Args:
        model_a, model_b: models or paths (None for ``model_a``: the run's model).
        method, target, options: the saliency method used for both.
        render_options: passed to :func:`render_log_video`.
    """
    dlog = drive_log if isinstance(drive_log, DriveLog) else DriveLog.open(drive_log)
    a = resolve_model(dlog, model_a)
    b = resolve_model(dlog, model_b)
    la, lb = model_label(a), model_label(b)
    if la == lb:
        la, lb = f"A {la}", f"B {lb}"
    sources = [ExplainerSource(a, method, target, label=la, options=options),
               ExplainerSource(b, method, target, label=lb, options=options)]
    return render_log_video(dlog, out_path, sources, **render_options)
