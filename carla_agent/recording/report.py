"""HTML reports: one self-contained page per run, and an index across runs.

A run's ``report.html`` holds:

* the run's facts (scenario, seed, model hash, backend, versions) and whether the log is complete;
* the closed-loop metrics table;
* plots of steering (predicted, applied, expert) and lateral offset over time,
  with interventions and collisions marked (matplotlib, embedded as base64 PNG);
* the attention video: embedded as a base64 MP4 data URI when it is at most
  ``max_embed_mb``, otherwise linked by a relative path (the page says which);
* key frames with their maps: the largest steering, each intervention, each collision;
* per-method saliency statistics (from the ``*.stats.csv`` files the video renderer writes).

Images are inline, so the page opens from anywhere, offline; only a linked
(too large) video needs the run folder next to it. Matplotlib is used through
its object API (no pyplot, no global backend change).
"""

from __future__ import annotations

import base64
import html
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from carla_agent.drive.telemetry import DriveTelemetry
from carla_agent.recording.compose import AttentionLayout, LayoutSpec, MapPanel
from carla_agent.recording.disk_space import write_text_atomic
from carla_agent.recording.drive_log import DriveLog, DriveLogError
from carla_agent.recording.pages import facts_table, frame_table, head, scroll, status_badge
from carla_agent.recording.run_status import run_status
from carla_agent.recording.sources import ExplainerSource, parse_method, resolve_model
from carla_agent.recording.stats import STATS_SUFFIX, metrics_from_rows, saliency_statistics, stats_methods

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"
#: Videos up to this size are embedded in the page; larger ones are linked.
MAX_EMBED_MB = 8.0
#: At most this many key frames per kind (interventions, collisions).
MAX_KEY_FRAMES = 8
VIDEO_NAMES = ("attention.mp4", "attention_live.mp4")



@dataclass(frozen=True)
class KeyFrame:
    """A frame worth a look.

    Attributes:
        i: row index.
        reason: ``largest steering (+0.41)``, ``intervention 2``, ``collision with vehicle:vehicle.parked`` ...
    """

    i: int
    reason: str


def key_frames(rows, max_per_kind: int = MAX_KEY_FRAMES) -> List[KeyFrame]:
    """Frames worth a look, by time: the largest |predicted steering|, the largest |lateral offset|,
    the largest |predicted - expert steering| (when the expert is known), each intervention and
    each collision (capped per kind).

    An intervention shows on the first row whose ``interventions`` counter went up: the
    frame where the car was found off its lane, before it was put back.
    """
    if len(rows) == 0:
        return []
    out: Dict[int, str] = {}

    def add(i: int, reason: str) -> None:
        out[i] = f"{out[i]}; {reason}" if i in out else reason

    steer = rows["predicted_steer"].astype(float).fillna(rows["steer"].astype(float))
    if steer.notna().any():  # a damaged log may have no number left in a column
        big = int(steer.abs().idxmax())
        add(big, f"largest steering ({steer[big]:+.2f})")
    offset = rows["lateral_offset_m"].astype(float)
    if offset.notna().any():
        far = int(offset.abs().idxmax())
        add(far, f"largest lateral offset ({offset[far]:+.2f} m)")
    gap = (rows["predicted_steer"].astype(float) - rows["expert_steer"].astype(float)).abs()
    if gap.notna().any():
        worst = int(gap.idxmax())
        add(worst, f"largest disagreement with the expert ({gap[worst]:.2f})")
    jumps = rows.index[rows["interventions"].diff().fillna(0) > 0]
    for n, i in enumerate(jumps[:max_per_kind], start=1):
        add(int(i), f"intervention {n}")
    hits = rows.index[rows["collisions"].fillna(0) > 0]
    for i in hits[:max_per_kind]:
        what = rows.at[i, "collision_with"]
        add(int(i), f"collision with {what if isinstance(what, str) and what else 'something'}")
    return [KeyFrame(i, out[i]) for i in sorted(out)]


# -- pieces ---------------------------------------------------------------------------------------

def _b64_png_figure(fig) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _b64_jpeg(image: np.ndarray, quality: int = 85) -> str:
    ok, buf = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    return base64.b64encode(buf.tobytes()).decode("ascii")


#: [m] the intervention lines are drawn only at or under this offset (two lane widths).
MAX_LINE_OFFSET_M = 7.0


def plot_steering(rows, intervention_m: float = 1.0) -> str:
    """Steering and lateral offset over time: one base64 PNG (two stacked panels)."""
    from matplotlib.figure import Figure

    t = rows["sim_time_s"].to_numpy(float)
    fig = Figure(figsize=(11, 5.2))
    ax1, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    pred = rows["predicted_steer"].to_numpy(float)
    ax1.plot(t, rows["steer"].to_numpy(float), color="#222", lw=3.0, alpha=0.3, label="applied")
    if np.isfinite(pred).any():
        ax1.plot(t, pred, color="#ff8c1a", lw=1.2, label="predicted")
    expert = rows["expert_steer"].to_numpy(float)
    if np.isfinite(expert).any():
        ax1.plot(t, expert, color="#2e9e50", lw=1.0, ls="--", label="expert")
    ax1.set_ylabel("steering [-1, 1]\n(+ = right)")
    ax2.plot(t, rows["lateral_offset_m"].to_numpy(float), color="#1f77b4", lw=1.2, label="lateral offset")
    if intervention_m <= MAX_LINE_OFFSET_M:  # at 30 m (the leaderboard's) the lines would flatten the curve
        for y in (intervention_m, -intervention_m):
            ax2.axhline(y, color="#c0392b", lw=0.8, ls=":")
    ax2.set_ylabel("offset [m]\n(+ = right)")
    ax2.set_xlabel("simulated time [s]")
    jumps = rows.index[rows["interventions"].diff().fillna(0) > 0]
    hits = rows.index[rows["collisions"].fillna(0) > 0]
    for ax in (ax1, ax2):
        for n, i in enumerate(jumps):
            ax.axvline(rows.at[i, "sim_time_s"], color="#c0392b", lw=0.8, alpha=0.7,
                       label="intervention" if (ax is ax1 and n == 0) else None)
        for n, i in enumerate(hits):
            ax.axvline(rows.at[i, "sim_time_s"], color="#8e44ad", lw=1.2, ls="-.",
                       label="collision" if (ax is ax1 and n == 0) else None)
        ax.grid(alpha=0.3)
    ax1.legend(loc="upper right", ncol=5, fontsize=8)
    ax2.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return _b64_png_figure(fig)


def _key_frame_images(dlog: DriveLog, keys: Sequence[KeyFrame], model: Any, methods: Sequence[str]) -> Dict[int, str]:
    """base64 JPEG per key frame: camera | one overlay per method, with captions."""
    sources = []
    if model is not None:
        for text in methods:
            name, opts = parse_method(text)
            try:
                sources.append(ExplainerSource(model, name, options=opts))
            except Exception as exc:  # one broken method must not lose the report
                log.warning("report: method %s unavailable for key frames: %s", text, exc)
    from carla_agent.saliency.normalize import normalize_frame

    pre = model.preprocessing if model is not None else None
    frames, rows, idx = [], [], []
    for k in keys:
        try:
            frames.append(dlog.frame(k.i))
            rows.append(dlog.row(k.i))
            idx.append(k.i)
        except DriveLogError as exc:
            log.warning("report: key frame skipped: %s", exc)
    if not frames:
        return {}
    lay = AttentionLayout(frames[0].shape[:2], len(sources), LayoutSpec(tile_width_px=min(frames[0].shape[1], 400),
                                                                     telemetry=False), pre)
    batch = np.stack(frames)
    results = [s(batch) for s in sources]
    out = {}
    for k, (i, image, row) in enumerate(zip(idx, frames, rows)):
        panels = [MapPanel(lay.project(normalize_frame(r.maps[k], s.signed)), s.signed, s.name, r.targets[k],
                           float(r.steer[k])) for s, r in zip(sources, results)]
        out[i] = _b64_jpeg(lay.compose(image, panels, DriveTelemetry.from_row(row)))
    return out


def _saliency_text(settings: Any) -> str:
    """``gradcam (target auto, layer conv3)`` from a saliency settings dict ("" for None)."""
    if not settings:
        return ""
    extra = [f"{k} {settings[k]}" for k in ("target", "output", "layer") if settings.get(k)]
    extra += [f"{k}={v}" for k, v in (settings.get("options") or {}).items()]
    label = f"{settings['label']}: " if settings.get("label") else ""
    return f"{label}{settings.get('method', '?')}" + (f" ({', '.join(extra)})" if extra else "")


def _find_video(run: Path) -> Optional[Path]:
    for name in VIDEO_NAMES:
        if (run / name).is_file():
            return run / name
    found = sorted(run.glob("replay_*.mp4"))
    return found[0] if found else None


def _video_html(video: Optional[Path], report_dir: Path, max_embed_mb: float) -> Tuple[str, str]:
    """(html, how) with how in embedded/linked/none."""
    if video is None or not video.is_file():
        return "<p class='muted'>No attention video for this run (render one with <code>replay RUN</code>).</p>", "none"
    size_mb = video.stat().st_size / 1e6
    mime = "video/mp4" if video.suffix.lower() == ".mp4" else "image/gif"
    if size_mb <= max_embed_mb:
        data = base64.b64encode(video.read_bytes()).decode("ascii")
        src = f"data:{mime};base64,{data}"
        note = f"embedded in this page ({size_mb:.1f} MB, {video.name})"
        how = "embedded"
    else:
        try:
            src = html.escape(str(video.resolve().relative_to(report_dir.resolve())))
        except ValueError:
            src = html.escape(video.resolve().as_uri())
        note = f"linked, not embedded: {size_mb:.1f} MB is over {max_embed_mb:g} MB; keep {video.name} next to this page"
        how = "linked"
    tag = (f"<video controls loop muted playsinline preload='metadata' src='{src}'></video>" if mime == "video/mp4"
           else f"<img src='{src}' alt='attention video'>")
    return f"<figure>{tag}<figcaption>Attention video, {html.escape(note)}.</figcaption></figure>", how


# -- the report ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReportInfo:
    """A written report.

    Attributes:
        path: the HTML file.
        video: ``embedded``, ``linked`` or ``none``.
        key_frames: key frames shown.
        size_bytes: size of the HTML file.
    """

    path: Path
    video: str
    key_frames: int
    size_bytes: int


def write_report(run: str | Path, out: Optional[str | Path] = None, video: Optional[str | Path] = None,
                 model: Any = None, methods: Optional[Sequence[str]] = None, max_embed_mb: float = MAX_EMBED_MB,
                 max_key_frames: int = MAX_KEY_FRAMES) -> Path:
    """Write one run's self-contained HTML report; returns its path (``RUN/report.html`` by default).

    Args:
        run: the run folder.
        out: the HTML file.
        video: the attention video (default: ``attention.mp4``, ``attention_live.mp4`` or a ``replay_*.mp4``).
        model: model for the key frames' maps (a SteeringModel or path; default the run's model
            when its file still exists; without one, key frames show the camera only).
        methods: saliency methods for the key frames (default: the sources of the statistics
            files, else the run's live method, else ``visual_backprop``).
        max_embed_mb: embed the video up to this size, link it above.
        max_key_frames: cap per kind of key frame.
    """
    return write_report_info(run, out, video, model, methods, max_embed_mb, max_key_frames).path


def write_report_info(run: str | Path, out: Optional[str | Path] = None, video: Optional[str | Path] = None,
                      model: Any = None, methods: Optional[Sequence[str]] = None,
                      max_embed_mb: float = MAX_EMBED_MB, max_key_frames: int = MAX_KEY_FRAMES) -> ReportInfo:
    """:func:`write_report`, returning a :class:`ReportInfo`."""
    dlog = DriveLog.open(run)
    meta, rows = dlog.meta, dlog.rows
    out = Path(out) if out else dlog.path / REPORT_FILE
    stats_files = sorted(dlog.path.glob(f"*{STATS_SUFFIX}"))
    if model is None and (meta.get("model") or {}).get("path") and Path(meta["model"]["path"]).exists():
        try:
            model = resolve_model(dlog)
        except Exception as exc:  # the report must not fail on a model problem
            log.warning("report: no maps on key frames: %s", exc)
    elif model is not None and not hasattr(model, "keras_model"):
        model = resolve_model(dlog, model)
    stats = saliency_statistics(stats_files)
    if methods is None:
        live = (meta.get("saliency") or {}).get("method")
        methods = stats_methods(stats_files) or ([live] if live else ["visual_backprop"])
    methods = list(dict.fromkeys(methods))[:4]

    title = f"{meta.get('scenario_name', '?')} — {dlog.path.name}"
    status = run_status(meta, rows, dlog.complete)
    model_meta = meta.get("model") or {}
    facts = [("scenario", meta.get("scenario_name")), ("scenario file", meta.get("scenario_file")),
             ("seed", meta.get("seed")), ("backend", meta.get("backend")),
             ("server version", meta.get("server_version") or "–"),
             ("agent", meta.get("agent")), ("model", model_meta.get("path") or "–"),
             ("model sha256", model_meta.get("sha256") or "–"), ("model params", model_meta.get("params", "–")),
             ("live saliency", _saliency_text(meta.get("saliency")) or "none (no maps while driving)"),
             *((f"video {name}", "; ".join(filter(None, map(_saliency_text, entry.get("sources") or ()))) or "–")
               for name, entry in sorted((meta.get("videos") or {}).items())),
             ("started (UTC)", meta.get("started_utc")), ("ended (UTC)", meta.get("ended_utc") or "–"),
             ("frames", len(rows)), ("time step", f"{dlog.dt_s:g} s"),
             ("recorded", f"{status.coverage} (time limit {float(meta.get('duration_s') or 0):g} s)")]
    metrics = meta.get("metrics") or metrics_from_rows(rows)
    parts = [head(title),
             f"<h1>{html.escape(title)}</h1><p>{status_badge(status)} "
             f"<span class='muted'>drive log {html.escape(str(dlog.path))}</span></p>",
             "<h2>Run</h2>", facts_table(facts),
             "<details><summary>package versions</summary>",
             facts_table(sorted((meta.get("packages") or {}).items())), "</details>",
             "<h2>Closed-loop metrics</h2>"]
    if not status.whole:
        parts.append(f"<p class='note'>{html.escape(status.label.capitalize())}"
                     f"{(' (' + html.escape(status.reason) + ')') if status.state == 'partial' else ''}. "
                     "Route completion and the driving score count only the road driven in this run: "
                     "they cannot be compared with a full run's.</p>")
    parts.append(scroll(facts_table(list(metrics.items()))) if metrics else "<p class='muted'>none</p>")
    if not meta.get("metrics"):
        parts.append("<p class='muted'>The run did not finish, so these numbers come from the rows that were flushed.</p>")
    parts.append("<h2>Steering and lateral offset</h2>")
    if len(rows):
        parts.append(f"<figure><img alt='steering and lateral offset over time' src='data:image/png;base64,"
                     f"{plot_steering(rows, float(meta.get('intervention_m', 1.0)))}'>"
                     "<figcaption>Top: steering predicted by the network, applied, and the expert's; bottom: "
                     "lateral offset from the lane centre with the intervention threshold. Vertical lines: "
                     "interventions (red) and collisions (purple).</figcaption></figure>")
    parts.append("<h2>Attention video</h2>")
    vhtml, how = _video_html(Path(video) if video else _find_video(dlog.path), out.parent, max_embed_mb)
    parts.append(vhtml)
    keys = key_frames(rows, max_key_frames)
    parts.append("<h2>Key frames</h2>")
    images = _key_frame_images(dlog, keys, model, methods) if keys else {}
    if model is None:
        parts.append("<p class='muted'>No model available for maps (pass one); camera frames only.</p>")
    parts.append("<div class='keys'>")
    for k in keys:
        if k.i in images:
            r = rows.loc[k.i]
            parts.append(f"<figure><img alt='frame {k.i}' src='data:image/jpeg;base64,{images[k.i]}'><figcaption>"
                         f"<b>{html.escape(k.reason)}</b> — frame i={k.i}, t={r['sim_time_s']:.2f} s, "
                         f"steer applied {r['steer']:+.3f}, offset {r['lateral_offset_m']:+.2f} m</figcaption></figure>")
    parts.append("</div>")
    parts.append("<h2>Saliency statistics per method</h2>")
    if stats is not None:
        parts.append(frame_table(stats))
        parts.append("<p class='muted'>Means over the frames. top10_mass: share of the map in its strongest 10 % "
                     "of pixels (focus); centroid_x: -1 left .. +1 right; centroid_y: 0 top .. 1 bottom of the "
                     "network's crop; stability: correlation with the previous frame's map; mass_*: share of the "
                     "map on each semantic class (road includes markings); corr(centroid_x, steer): does the "
                     "map move with the steering.</p>")
    else:
        parts.append("<p class='muted'>No statistics yet: they are written when a video is rendered from the log.</p>")
    parts.append("</body></html>")
    text = "\n".join(parts)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, text)
    log.info("report %s (%.1f MB, video %s)", out, len(text) / 1e6, how)
    return ReportInfo(out, how, len(images), len(text.encode("utf-8")))
