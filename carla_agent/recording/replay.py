"""Replay a drive log: re-render attention videos, A/B two models, re-simulate, re-drive.

* Videos are re-rendered from a log's frames by
  :func:`~carla_agent.recording.render.render_log_video` (any map sources) and
  :func:`~carla_agent.recording.render.render_ab_video` (two models side by side).
* :func:`resimulate` / :func:`verify_resimulation` replay an embedded run from its
  log: the same scenario, seed and recorded controls (and the same interventions)
  give bit-identical frames.
* :func:`redrive` drives the same scenario and seed closed-loop with another model
  and records it, for a closed-loop A/B (:func:`compare_runs`).
* :func:`replay` is the one call behind ``python -m carla_agent replay RUN``: it
  renders, verifies, re-drives and writes the report.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from carla_agent.recording.compose import LayoutSpec
from carla_agent.recording.drive_log import DriveLog, DriveLogError, scenario_from_meta
from carla_agent.recording.render import RenderResult, render_ab_video, render_log_video
from carla_agent.recording.report import write_report
from carla_agent.recording.sources import ExplainerSource, parse_method, resolve_model
from carla_agent.errors import BackendError

log = logging.getLogger(__name__)


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
    the run's ``intervention_m`` off its lane, as the runner did, except after a tick
    a person or the expert drove (``overridden``: the runner never recovers those; logs
    written before that rule re-simulate such stretches differently).

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
    rows = dlog.rows
    taken_over = (rows["overridden"].fillna(0).astype(bool).to_numpy() if "overridden" in rows
                  else [False] * len(controls))
    limit = float(meta.get("intervention_m", 1.0))
    own = sim is None
    if own:
        from carla_agent.sim.simulator import make_simulator

        sim = make_simulator("embedded", **dict(meta.get("backend_options") or {}))
    try:
        obs = sim.reset(scenario, seed=int(meta.get("seed", 0)))
        yield obs
        for control, taken in zip(controls[:-1], taken_over):
            obs = sim.step(control)
            if abs(obs.truth.lateral_offset_m) > limit and not taken:
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

    def __str__(self) -> str:
        if self.identical:
            return f"{self.frames} frames bit-identical (poses within {self.max_pose_diff_m:.3g} m of the log)"
        return (f"differs from frame i={self.first_mismatch} ({self.frames} frames compared, pixels up to "
                f"{self.max_abs_diff} apart, poses up to {self.max_pose_diff_m:.3g} m)")


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
    from carla_agent.drive.session import drive_scenario
    from carla_agent.recording.recorder import RecorderConfig, RecorderHook

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
    result = drive_scenario(scenario, agent, backend=meta.get("backend", "embedded"), backend_options=options,
                            seed=int(meta.get("seed", 0)), duration_s=duration_s or meta.get("duration_s"),
                            hooks=hooks, intervention_m=float(meta.get("intervention_m", 1.0)))
    return hooks[0].run_dir, result.metrics


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
        report_path = write_report(dlog.path, video=videos[0].video.path, model=m,
                                   methods=[t for t in methods])
    return ReplayResult(tuple(videos), resim, new_run, report_path)
