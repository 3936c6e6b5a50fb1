"""Replay a drive log: re-render attention videos, A/B two models, re-simulate, re-drive.

* :func:`render_log_video` re-renders an attention video from a log's frames with
  any map sources: one or more saliency methods (:class:`ExplainerSource`, any
  method, target, layer and options, e.g. occlusion at several window sizes),
  two models side by side (:func:`render_ab_video`), or any callable
  ``frame -> map`` (:class:`FunctionSource`). Frames are decoded, explained in
  batches and composed in a three-stage pipeline (decode | explain | compose +
  encode), so both cores stay busy. Per-frame saliency statistics are written
  next to the video (``<video>.stats.csv``) for the report.
* :func:`resimulate` / :func:`verify_resimulation` replay an embedded run from its
  log: the same scenario, seed and recorded controls (and the same interventions)
  give bit-identical frames.
* :func:`redrive` drives the same scenario and seed closed-loop with another model
  and records it, for a closed-loop A/B (:func:`compare_runs`).
* :func:`replay` is the one call behind ``python -m carla_agent replay RUN``.
"""

from __future__ import annotations

import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Protocol, Sequence, Tuple

import cv2
import numpy as np

from carla_agent.recording.drive_log import DriveLog, DriveLogError, scenario_from_meta
from carla_agent.errors import BackendError, CarlaAgentError, ModelError
from carla_agent.sim.observation import SemanticClass
from carla_agent.recording.video import AttentionLayout, LayoutSpec, MapPanel, Telemetry, VideoInfo, open_writer, progress_bar

log = logging.getLogger(__name__)

DEFAULT_BATCH = 64
STATS_SUFFIX = ".stats.csv"


# -- map sources -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MapBatch:
    """Maps for a batch of frames.

    Attributes:
        maps: ``(N, h, w)`` float32 raw maps (not normalised) at the model's input size.
        steer: ``(N,)`` float32 steering predicted for each frame, in [-1, 1].
        targets: per-frame target label for captions (``auto->right``, ``right``, ``-``).
    """

    maps: np.ndarray
    steer: np.ndarray
    targets: Tuple[str, ...]


class MapSource(Protocol):
    """Camera frames -> maps. What the video renderer needs from a saliency method.

    Attributes:
        name: method name for captions and statistics.
        label: model label in an A/B video ("" otherwise).
        signed: the maps keep their sign.
        preprocessing: the :class:`~carla_agent.network.preprocess.Preprocessing` whose crop the
            maps live in (None: the maps cover the whole frame).
    """

    name: str
    label: str
    signed: bool
    preprocessing: Any

    def __call__(self, frames: np.ndarray) -> MapBatch:
        """``(N, H, W, 3)`` uint8 RGB camera frames -> :class:`MapBatch`."""


class ExplainerSource:
    """A saliency method on a steering model, as a :class:`MapSource`.

    Args:
        model: a :class:`~carla_agent.network.steering_model.SteeringModel`.
        method: registry name (``visual_backprop``, ``gradcam``, ``occlusion`` ...).
        target: ``auto``, ``right``, ``left``, ``straight``.
        output: explained output (default the steering output).
        layer: conv layer for methods that use one.
        label: model label for A/B captions.
        options: method options (``window_px=(10, 20, 40)`` for occlusion ...).
    """

    def __init__(self, model: Any, method: str = "visual_backprop", target: str = "auto",
                 output: Optional[int | str] = None, layer: Optional[str] = None, label: str = "",
                 options: Optional[Mapping[str, Any]] = None) -> None:
        from carla_agent.saliency import make_explainer

        self.model = model
        self.output = model.steer_index if output is None else output
        self.explainer = make_explainer(model, method, output=self.output, target=target, layer=layer,
                                        **dict(options or {}))
        self.name = method if not options else f"{method}({_format_options(options)})"
        self.spec = method if not options else f"{method}:{_format_options(options)}"  # parse_method() text
        self.label = label
        self.signed = bool(self.explainer.signed)
        self.preprocessing = model.preprocessing
        self.target = target
        self.settings = {"method": method, "target": target, "output": self.explainer.output_name,
                         "layer": self.explainer.layer, "options": dict(options or {})}

    def __call__(self, frames: np.ndarray) -> MapBatch:
        pre = self.preprocessing
        small = np.stack([pre.crop_resize(f) for f in frames])
        res = self.explainer(pre.to_input(small))
        steer = np.clip(res.prediction[:, self.model.steer_index], -1.0, 1.0).astype(np.float32)
        per = tuple(res.target_per_frame) or (res.target,) * len(res)
        targets = tuple(f"auto->{t}" if res.target == "auto" else str(t) for t in per)
        return MapBatch(np.asarray(res.maps, np.float32), steer, targets)


class FunctionSource:
    """Any callable ``frame (H, W, 3) uint8 -> map (h, w)`` as a :class:`MapSource` (tests, custom maps).

    Args:
        fn: the map function.
        name: caption name.
        signed: the maps keep their sign.
        preprocessing: crop the maps live in; None = the whole frame.
        steer_fn: ``frame -> steer``; default 0.
    """

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], name: str = "custom", signed: bool = False,
                 preprocessing: Any = None, steer_fn: Optional[Callable[[np.ndarray], float]] = None,
                 label: str = "") -> None:
        self.fn, self.name, self.signed, self.preprocessing = fn, name, signed, preprocessing
        self.steer_fn, self.label = steer_fn, label

    def __call__(self, frames: np.ndarray) -> MapBatch:
        maps = np.stack([np.asarray(self.fn(f), np.float32) for f in frames])
        steer = np.array([self.steer_fn(f) if self.steer_fn else 0.0 for f in frames], np.float32)
        return MapBatch(maps, steer, ("-",) * len(frames))


def parse_method(text: str) -> Tuple[str, Dict[str, Any]]:
    """``"occlusion:window_px=10+20+40,stride_px=5"`` -> ``("occlusion", {"window_px": (10, 20, 40), "stride_px": 5})``.

    Options follow a colon as ``key=value`` pairs separated by commas; ``+`` separates
    the items of a tuple; values are int, float, true/false or text.
    """
    name, _, rest = text.strip().partition(":")
    options: Dict[str, Any] = {}
    for pair in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = pair.partition("=")
        if not eq:
            raise CarlaAgentError(f"method option {pair!r} in {text!r}: expected key=value, e.g. "
                                  "occlusion:window_px=10+20,stride_px=5")
        items = [_parse_value(v) for v in value.split("+")]
        options[key.strip()] = tuple(items) if "+" in value else items[0]
    return name.strip(), options


def _parse_value(v: str) -> Any:
    v = v.strip()
    if v.lower() in ("true", "false"):
        return v.lower() == "true"
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def _format_options(options: Mapping[str, Any]) -> str:
    def fmt(v):
        return "+".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)

    return ",".join(f"{k}={fmt(v)}" for k, v in options.items())


# -- saliency statistics ---------------------------------------------------------------------------------

#: Semantic classes reported in the statistics (share of map mass on each).
STAT_CLASSES = {"road": (SemanticClass.ROAD, SemanticClass.LANE_MARKING), "marking": (SemanticClass.LANE_MARKING,),
                "vehicle": (SemanticClass.VEHICLE,), "roadside": (SemanticClass.SHOULDER, SemanticClass.TERRAIN),
                "object": (SemanticClass.OBJECT,), "sky": (SemanticClass.SKY,)}


def labels_at(semantic: np.ndarray, preprocessing: Any, hw: Tuple[int, int]) -> np.ndarray:
    """Semantic labels of a camera frame cut to the model's crop and resized (nearest) to ``hw``."""
    if preprocessing is not None:
        t, b, left, r = preprocessing.crop_box(semantic.shape[:2])
        semantic = semantic[t:b, left:r]
    return cv2.resize(semantic, (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST)


def map_stats(raw: np.ndarray, labels: Optional[np.ndarray] = None, previous: Optional[np.ndarray] = None) -> Dict[str, float]:
    """Summary numbers of one map (|map| is used for signed maps).

    Returns:
        ``top10_mass``: share of the map's mass in its strongest 10 % of pixels (1 = very focused);
        ``centroid_x``: horizontal centre of mass, -1 (left edge) .. +1 (right edge);
        ``centroid_y``: vertical centre of mass, 0 (top of the crop) .. 1 (bottom);
        ``stability``: Pearson correlation with the previous frame's map (NaN for the first);
        ``mass_<class>``: share of the mass on each of :data:`STAT_CLASSES` (when labels are given).
    """
    a = np.abs(np.asarray(raw, np.float32))
    total = float(a.sum())
    h, w = a.shape
    out: Dict[str, float] = {}
    if total <= 0 or not math.isfinite(total):
        p = np.full(a.shape, 1.0 / a.size, np.float32)
    else:
        p = a / total
    flat = p.ravel()
    k = max(1, flat.size // 10)
    out["top10_mass"] = float(np.partition(flat, flat.size - k)[-k:].sum())
    out["centroid_x"] = float((p.sum(axis=0) * np.linspace(-1.0, 1.0, w)).sum())
    out["centroid_y"] = float((p.sum(axis=1) * np.linspace(0.0, 1.0, h)).sum())
    if previous is not None and previous.shape == a.shape:
        pa, pb = a.ravel() - a.mean(), previous.ravel() - previous.mean()
        denom = float(np.sqrt((pa * pa).sum() * (pb * pb).sum()))
        out["stability"] = float((pa * pb).sum() / denom) if denom > 0 else float("nan")
    else:
        out["stability"] = float("nan")
    if labels is not None:
        for name, classes in STAT_CLASSES.items():
            out[f"mass_{name}"] = float(p[np.isin(labels, [int(c) for c in classes])].sum())
    return out


# -- rendering ----------------------------------------------------------------------------------------------

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

        pre = Preprocessing.from_dict(recorded)
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
            tel = Telemetry.from_row(row)
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
                progress_bar(len(idx), f"video {out_path.name}", progress) as bar:
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
                results = [src(frames) for src in sources]
                if composed is not None:
                    composed.result()
                composed = composer.submit(compose, batch, results)  # compose + encode off this thread
            if composed is not None:
                composed.result()
    finally:
        writer.close()
    wall = time.perf_counter() - start
    size = getattr(writer, "size_wh", None) or lay.size_wh
    info = VideoInfo(out_path, writer.frames, tuple(size), fps, wall)
    stats_path = None
    if stats and stat_rows:
        stats_path = out_path.with_name(out_path.name + STATS_SUFFIX)
        pd.DataFrame(stat_rows).to_csv(stats_path, index=False)
    log.info("%s: %d frames in %.1f s (%.0f frames/s)%s", out_path, info.frames, wall, info.render_fps,
             f", {len(skipped)} unreadable frame(s) skipped" if skipped else "")
    return RenderResult(info, stats_path, tuple(s.name for s in sources), tuple(skipped))


# -- models ----------------------------------------------------------------------------------------------------

def resolve_model(drive_log: DriveLog, model: Any = None):
    """The :class:`~carla_agent.network.steering_model.SteeringModel` to explain a log with.

    ``model`` may be a loaded model, a path, or None (the run's own model file, from
    ``meta.json``; a warning when its SHA-256 changed since the run).

    Raises:
        ModelError: no model given and the run's model file is gone.
    """
    if model is not None and hasattr(model, "keras_model"):
        return model
    from carla_agent.network.steering_model import SteeringModel

    recorded = drive_log.meta.get("model") or {}
    path = model or recorded.get("path")
    if not path:
        raise ModelError(f"{drive_log.path}: the run was not driven by a model file; pass a model (--model PATH)")
    if not Path(path).exists():
        raise ModelError(f"{drive_log.path}: the run's model {path} is not there any more; pass --model PATH")
    loaded = SteeringModel.load(path)
    if model is None and recorded.get("sha256") and loaded.sha256 != recorded["sha256"]:
        log.warning("%s: model file %s changed since the run (sha256 %s..., was %s...)", drive_log.path, path,
                    (loaded.sha256 or "")[:12], recorded["sha256"][:12])
    return loaded


def model_label(model: Any) -> str:
    """Short label of a model for captions: file stem and the first 8 hex digits of its hash."""
    path = getattr(model, "path", None)
    sha = getattr(model, "sha256", None)
    name = Path(path).stem if path else getattr(getattr(model, "keras_model", None), "name", "model")
    return f"{name}@{sha[:8]}" if sha else str(name)


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


# -- re-simulation -------------------------------------------------------------------------------------------------

def _controls(drive_log: DriveLog) -> List:
    from carla_agent.control import VehicleControl

    rows = drive_log.rows
    expected = list(range(len(rows)))
    if drive_log.indices != expected:
        missing = sorted(set(range(max(drive_log.indices, default=-1) + 1)) - set(drive_log.indices))
        raise DriveLogError(f"{drive_log.path}: cannot re-simulate: row(s) {missing[:5]} are unreadable and "
                            "every control is needed")
    cols = [rows[c].to_numpy() for c in ("steer", "throttle", "brake", "hand_brake", "reverse")]
    return [VehicleControl(steer=float(s), throttle=float(t), brake=float(b), hand_brake=bool(h), reverse=bool(r))
            for s, t, b, h, r in zip(*cols)]


def resimulate(drive_log: DriveLog | str | Path, sim: Any = None) -> Iterator[Any]:
    """Re-run an embedded drive from its log; yields one observation per logged row.

    Uses the exact scenario, seed and backend options from ``meta.json`` and the
    recorded controls; after each step the car is put back whenever it is more than
    the run's ``intervention_m`` off its lane, as the runner did.

    Args:
        drive_log: the run.
        sim: a simulator to use (default: a new embedded one; closed at the end).

    Raises:
        BackendError: the run was not driven on the embedded backend.
    """
    dlog = drive_log if isinstance(drive_log, DriveLog) else DriveLog.open(drive_log)
    meta = dlog.meta
    if meta.get("backend") != "embedded":
        raise BackendError(f"{dlog.path}: deterministic re-simulation needs an embedded run; this run used "
                           f"{meta.get('backend')!r} (use the CARLA recorder file "
                           f"{meta.get('carla_recorder_file') or '(none)'} instead)")
    if int(meta.get("first_frame", 0)) != 0:
        raise DriveLogError(f"{dlog.path}: recording began mid-drive (frame {meta['first_frame']}); "
                            "re-simulation needs a log from the start of the episode")
    scenario = scenario_from_meta(meta, str(dlog.path / "meta.json"))
    controls = _controls(dlog)
    limit = float(meta.get("intervention_m", 1.0))
    own = sim is None
    if own:
        from carla_agent.sim.simulator import make_simulator

        sim = make_simulator("embedded", **dict(meta.get("backend_options") or {}))
    try:
        obs = sim.reset(scenario, seed=int(meta.get("seed", 0)))
        yield obs
        for control in controls[:-1]:
            obs = sim.step(control)
            if abs(obs.truth.lateral_offset_m) > limit:
                sim.recover()
            yield obs
    finally:
        if own:
            sim.close()


@dataclass(frozen=True)
class ResimCheck:
    """Result of :func:`verify_resimulation`.

    Attributes:
        frames: frames compared.
        identical: every compared frame (and semantic frame) is bit-identical.
        first_mismatch: row index of the first differing frame, or None.
        max_abs_diff: largest absolute pixel difference seen (0 when identical).
        max_pose_diff_m: [m] largest position difference from the logged pose.
    """

    frames: int
    identical: bool
    first_mismatch: Optional[int]
    max_abs_diff: int
    max_pose_diff_m: float


def verify_resimulation(drive_log: DriveLog | str | Path, max_frames: Optional[int] = None,
                        sim: Any = None) -> ResimCheck:
    """Re-simulate an embedded run and compare every frame with the logged PNGs."""
    dlog = drive_log if isinstance(drive_log, DriveLog) else DriveLog.open(drive_log)
    rows = dlog.rows
    n, first, worst, pose_err = 0, None, 0, 0.0
    for i, obs in enumerate(resimulate(dlog, sim)):
        if max_frames is not None and i >= max_frames:
            break
        logged = dlog.frame(i)
        diff = int(np.abs(logged.astype(np.int16) - obs.image.astype(np.int16)).max()) if logged.shape == obs.image.shape else 255
        sem = dlog.semantic(i)
        if sem is not None and obs.truth.semantic is not None and not np.array_equal(sem, obs.truth.semantic):
            diff = max(diff, 1)
        pose_err = max(pose_err, math.hypot(obs.pose.x_m - rows.at[i, "x_m"], obs.pose.y_m - rows.at[i, "y_m"]))
        if diff and first is None:
            first = i
        worst = max(worst, diff)
        n += 1
    return ResimCheck(n, first is None and n > 0, first, worst, pose_err)


# -- closed-loop re-drive ------------------------------------------------------------------------------------------

def redrive(drive_log: DriveLog | str | Path, model: Any, out_dir: Optional[str | Path] = None,
            duration_s: Optional[float] = None, method: Optional[str] = None, target: str = "auto",
            backend_options: Optional[Mapping[str, Any]] = None, progress: bool = False):
    """Drive the run's scenario and seed again, closed-loop, with another model, and record it.

    Args:
        drive_log: the run to repeat.
        model: the other model (loaded or a path).
        out_dir: where the new run folder goes (default: next to the old one).
        duration_s: time limit (default the old run's).
        method: live saliency method (the maps ride along in the new log's live video).
        backend_options: backend options (CARLA: host, port ...); default the run's.

    Returns:
        ``(run_dir, DriveMetrics)`` of the new run.
    """
    from carla_agent.drive.agent import NetworkAgent
    from carla_agent.recording.recorder import RecorderConfig, RecorderHook
    from carla_agent.drive.runner import Runner
    from carla_agent.sim.simulator import make_simulator

    dlog = drive_log if isinstance(drive_log, DriveLog) else DriveLog.open(drive_log)
    meta = dlog.meta
    scenario = scenario_from_meta(meta, str(dlog.path / "meta.json"))
    m = resolve_model(dlog, model)
    explainer = None
    if method:
        from carla_agent.saliency import make_explainer

        explainer = make_explainer(m, method, output=m.steer_index, target=target)
    agent = NetworkAgent(m, scenario.target_speed_mps, explainer=explainer)
    hooks = [RecorderHook(RecorderConfig(out_dir=Path(out_dir) if out_dir else dlog.path.parent,
                                         video="attention_live.mp4" if explainer is not None else None))]
    if progress:
        from carla_agent.drive.progress import ProgressHook

        hooks.append(ProgressHook(duration_s or float(meta.get("duration_s", scenario.duration_s))))
    options = dict(backend_options if backend_options is not None else meta.get("backend_options") or {})
    with make_simulator(meta.get("backend", "embedded"), **options) as sim:
        runner = Runner(sim, agent, scenario, seed=int(meta.get("seed", 0)),
                        duration_s=duration_s or meta.get("duration_s"), hooks=hooks,
                        intervention_m=float(meta.get("intervention_m", 1.0)))
        metrics = runner.run()
    return hooks[0].run_dir, metrics


def compare_runs(runs: Sequence[DriveLog | str | Path]):
    """Closed-loop metrics of several runs side by side: a DataFrame, one column per run."""
    import pandas as pd

    cols = {}
    for r in runs:
        dlog = r if isinstance(r, DriveLog) else DriveLog.open(r)
        model = (dlog.meta.get("model") or {})
        name = f"{dlog.path.name} ({Path(model['path']).stem if model.get('path') else dlog.meta.get('agent')})"
        cols[name] = pd.Series(dlog.metrics or {})
    return pd.DataFrame(cols)


# -- the replay command ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReplayResult:
    """What :func:`replay` produced.

    Attributes:
        videos: re-rendered videos.
        resim: re-simulation check, when asked for.
        redrive_run: the new run folder of a closed-loop re-drive, when asked for.
        report: the report written, when asked for.
    """

    videos: Tuple[RenderResult, ...]
    resim: Optional[ResimCheck] = None
    redrive_run: Optional[Path] = None
    report: Optional[Path] = None


def replay(run: str | Path, methods: Sequence[str] = ("visual_backprop",), model: Any = None,
           target: str = "auto", layer: Optional[str] = None, ab_model: Any = None,
           out: Optional[str | Path] = None, fmt: str = "mp4", step: int = 1, columns: int = 0,
           verify: bool = False, redrive_model: Any = None, report: bool = True,
           progress: bool = True) -> ReplayResult:
    """Everything ``python -m carla_agent replay RUN`` does.

    Args:
        run: the run folder.
        methods: saliency methods, each ``name`` or ``name:key=value,...`` (see :func:`parse_method`);
            all go into one video as side-by-side tiles.
        model: model to explain with (default the run's own).
        target: ``auto``, ``right``, ``left``, ``straight``.
        layer: conv layer for methods that use one.
        ab_model: a second model: also write an A/B video (first method) of both models on the same frames.
        out: video file (default ``RUN/replay_<methods>.<fmt>``).
        fmt: ``mp4`` or ``gif`` when ``out`` is not given.
        step: render every ``step``-th frame.
        columns: tiles per row (0: one row).
        verify: re-simulate an embedded run and check the frames are bit-identical.
        redrive_model: also drive the scenario closed-loop with this model (new run folder next to RUN).
        report: (re)write the run's HTML report with the new video and statistics.
    """
    dlog = DriveLog.open(run)
    m = resolve_model(dlog, model)
    parsed = [parse_method(t) for t in methods]
    sources = [ExplainerSource(m, name, target, layer=layer, options=opts) for name, opts in parsed]
    tag = "_".join(name for name, _ in parsed) or "camera"
    out_path = Path(out) if out else dlog.path / f"replay_{tag}.{fmt}"
    lay = LayoutSpec(columns=columns)
    videos = [render_log_video(dlog, out_path, sources, layout=lay, step=step, progress=progress)]
    if ab_model is not None:
        name, opts = parsed[0] if parsed else ("visual_backprop", {})
        ab_path = out_path.with_name(f"ab_{name}.{out_path.suffix.lstrip('.')}")
        videos.append(render_ab_video(dlog, ab_path, m, ab_model, name, target, opts, step=step,
                                      progress=progress, layout=lay))
    resim = verify_resimulation(dlog) if verify else None
    if resim is not None:
        log.info("re-simulation of %s: %d frames, %s", dlog.path, resim.frames,
                 "bit-identical" if resim.identical else f"differs from frame i={resim.first_mismatch}")
    new_run = None
    if redrive_model is not None:
        new_run, _ = redrive(dlog, redrive_model, progress=progress)
    report_path = None
    if report:
        from carla_agent.recording.report import write_report

        report_path = write_report(dlog.path, video=videos[0].video.path, model=m,
                                   methods=[t for t in methods])
    return ReplayResult(tuple(videos), resim, new_run, report_path)
