"""Scenario batches: drive each scenario headless, then write its log, attention video and report.

Plain functions behind the command line:

* ``python -m carla_agent record --scenarios a,b --methods visual_backprop,gradcam
  [--duration S] [--out DIR]`` -> :func:`record_batch`;
* ``python -m carla_agent drive --record`` -> :func:`make_recorder` as a runner hook,
  then :func:`finish_run` on its folder after the drive (video, report, and the
  ``index.html`` of the folder's parent rewritten);
* the HUD's R key -> :func:`make_recorder` (``when_full="drop"``, live video on).

Maps are not computed while driving a batch: the drive runs the network alone
(fastest) and the video is rendered from the log afterwards with every method,
in batches, at full quality.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Tuple

from carla_agent.errors import DiskFullError, ScenarioError
from carla_agent.resources import DEFAULT_MODEL
from carla_agent.recording.disk_space import check_free_space
from carla_agent.recording.recorder import LIVE_VIDEO_FILE, RecorderConfig, RecorderHook

log = logging.getLogger(__name__)

VIDEO_FILE = "attention.mp4"


@dataclass(frozen=True)
class RunResult:
    """One recorded run.

    Attributes:
        scenario: scenario name.
        run_dir: the run folder (drive log).
        metrics: closed-loop metrics (:class:`~carla_agent.drive.metrics.DriveMetrics`).
        video: the attention video, or None.
        report: the HTML report, or None.
        complete: the log is complete.
    """

    scenario: str
    run_dir: Path
    metrics: Any
    video: Optional[Path]
    report: Optional[Path]
    complete: bool


@dataclass(frozen=True)
class BatchResult:
    """A recorded batch: its runs and the index page across all runs in ``out_dir``."""

    runs: Tuple[RunResult, ...]
    index: Optional[Path]


def _split(names: str | Sequence[str]) -> Tuple[str, ...]:
    if isinstance(names, str):
        return tuple(n.strip() for n in names.split(",") if n.strip())
    return tuple(names)


def check_methods(methods: Sequence[str]) -> None:
    """Fail fast on an unknown method name (lists the known ones), before any driving."""
    from carla_agent.recording.sources import parse_method
    from carla_agent.saliency.methods import METHODS

    for text in methods:
        METHODS.get(parse_method(text)[0])


def make_recorder(out_dir: str | Path = "runs", live_video: bool = False, when_full: str = "block",
                  model: Any = None, run_dir: Optional[Path] = None) -> RecorderHook:
    """A recorder hook for ``drive --record`` (``when_full="block"``) or the HUD's R key (``"drop"``).

    Args:
        out_dir: parent of the run folder.
        live_video: also write ``attention_live.mp4`` from the maps computed while driving
            (the agent needs an explainer for maps; without one the video shows camera + telemetry).
        when_full: ``block`` (lossless) or ``drop`` (never wait; drop images when the disk lags).
        model: the model driving (default: read from the runner's agent).
        run_dir: write exactly this (new or empty) folder instead of ``out_dir/<time>_<scenario>``.
    """
    cfg = RecorderConfig(out_dir=Path(out_dir), when_full=when_full,  # type: ignore[arg-type]
                         video=LIVE_VIDEO_FILE if live_video else None,
                         run_dir=Path(run_dir) if run_dir is not None else None)
    return RecorderHook(cfg, model=model)


def record_drive(scenario: Any, model: Any, out_dir: str | Path = "runs", seed: int = 0,
                 duration_s: Optional[float] = None, backend: Optional[str] = None,
                 backend_options: Optional[Mapping[str, Any]] = None, live_method: Optional[str] = None,
                 progress: bool = True, run_dir: Optional[Path] = None,
                 intervention_m: float = 1.0, hooks: Sequence[Any] = ()) -> Tuple[Path, Any]:
    """Drive one scenario closed-loop with the network and record it.

    Args:
        scenario: a :class:`~carla_agent.sim.scenario.Scenario` or a name / YAML path.
        model: a :class:`~carla_agent.network.steering_model.SteeringModel` or a model path.
        out_dir: parent of the run folder.
        seed: episode seed.
        duration_s: time limit (default the scenario's).
        backend: ``embedded`` or ``carla`` (default the scenario's).
        backend_options: backend options (CARLA host, port ...).
        live_method: compute this saliency method while driving and write the live video too.
        progress: progress bar.
        run_dir: record into exactly this (new or empty) folder (a sweep's cell) instead of a new
            ``out_dir/<time>_<scenario>``.
        intervention_m: [m] the car is put back on its lane this far off it (an intervention).
        hooks: more runner hooks (e.g. a sweep's stop request, which ends the drive as Ctrl-C would).

    Returns:
        ``(run_dir, DriveMetrics)``.
    """
    from carla_agent.drive.agent import NetworkAgent
    from carla_agent.drive.session import drive_scenario
    from carla_agent.sim.scenario import load_scenario
    from carla_agent.network.steering_model import SteeringModel

    sc = load_scenario(scenario) if isinstance(scenario, (str, Path)) else scenario
    m = SteeringModel.load(model) if isinstance(model, (str, Path)) else model
    explainer = None
    if live_method:
        from carla_agent.saliency import make_explainer

        explainer = make_explainer(m, live_method, output=m.steer_index)
    agent = NetworkAgent(m, sc.target_speed_mps, explainer=explainer)
    check_free_space(out_dir)
    rec = make_recorder(out_dir, live_video=explainer is not None, model=m, run_dir=run_dir)
    all_hooks = [rec, *hooks]
    if progress:
        from carla_agent.drive.progress import ProgressHook

        all_hooks.append(ProgressHook(duration_s or sc.duration_s))
    result = drive_scenario(sc, agent, backend=backend, backend_options=backend_options, seed=seed,
                            duration_s=duration_s, hooks=all_hooks, intervention_m=intervention_m)
    if result.interrupted:
        raise KeyboardInterrupt
    raise_if_disk_full(rec)
    return rec.run_dir, result.metrics


def raise_if_disk_full(rec: RecorderHook) -> None:
    """After a drive: raise ``DiskFullError("disk full: N frames kept in RUN")`` when its recording
    ran out of disk (the log is closed and readable, marked incomplete; no video or report follows)."""
    if rec.disk_full:
        raise DiskFullError(f"disk full: {rec.frames_kept} frames kept in {rec.run_dir} (the run is marked "
                            f"incomplete; free some space to record again)")


def finish_run(run_dir: str | Path, methods: Sequence[str] = ("visual_backprop",), model: Any = None,
               video_name: str = VIDEO_FILE, gif: bool = False, report: bool = True,
               progress: bool = True, index: bool = True) -> Tuple[Optional[Path], Optional[Path]]:
    """Render a run's attention video (all methods side by side), write its report and update the index.

    Args:
        run_dir: the run folder.
        methods: saliency methods (``name`` or ``name:key=value,...``).
        model: model to explain with (default the run's own).
        video_name: file name of the video inside the run folder.
        gif: also write a short, half-size GIF (first 10 s, every 2nd frame) next to it.
        report: write ``report.html``.
        index: rewrite ``index.html`` in the run folder's parent (every run there, this one included).

    Returns:
        ``(video, report)`` paths (None where not written).
    """
    from carla_agent.recording.drive_log import DriveLog
    from carla_agent.recording.render import render_log_video
    from carla_agent.recording.sources import ExplainerSource, parse_method, resolve_model
    from carla_agent.recording.report import write_report

    dlog = DriveLog.open(run_dir)
    if not len(dlog):
        log.warning("%s: no frames; no video or report", dlog.path)
        if index:
            _write_index(dlog.path.parent)
        return None, None
    m = resolve_model(dlog, model)
    sources = [ExplainerSource(m, name, options=opts) for name, opts in map(parse_method, methods)]
    video = render_log_video(dlog, dlog.path / video_name, sources, progress=progress).video.path
    if gif:
        n = int(10.0 * dlog.fps)
        render_log_video(dlog, video.with_suffix(".gif"), sources, indices=dlog.indices[:n], step=2,
                         progress=progress, stats=False, writer_options={"scale": 0.5})
    page = write_report(dlog.path, video=video, model=m, methods=list(methods)) if report else None
    if index:
        _write_index(dlog.path.parent)
    return video, page


def _write_index(root: Path) -> Optional[Path]:
    """Rewrite ``root/index.html``; a failure is logged, never raised (the run itself is written)."""
    from carla_agent.recording.index import write_index

    try:
        return write_index(root)
    except Exception as exc:  # an unreadable neighbour run must not fail this run's finish
        log.warning("%s: index not updated: %s", root, exc)
        return None


def record_batch(scenarios: str | Sequence[str], methods: str | Sequence[str] = ("visual_backprop",),
                 duration_s: Optional[float] = None, out_dir: str | Path = "runs",
                 model_path: str | Path = DEFAULT_MODEL, seed: int = 0, backend: Optional[str] = None,
                 backend_options: Optional[Mapping[str, Any]] = None, gif: bool = False,
                 progress: bool = True, intervention_m: float = 1.0) -> BatchResult:
    """Drive each scenario headless, then write its log, attention video and report, and the index.

    Args:
        scenarios: names or YAML paths, a list or a comma-separated string.
        methods: saliency methods for the videos, a list or a comma-separated string.
        duration_s: time limit per drive (default each scenario's).
        out_dir: parent of the run folders; ``index.html`` is (re)written there.
        model_path: the steering model.
        seed: episode seed for every scenario.
        backend, backend_options: simulator (default each scenario's backend).
        gif: also write a short GIF per run.
        progress: progress bars.
        intervention_m: [m] the car is put back on its lane this far off it (an intervention).

    Raises:
        ScenarioError / UnknownNameError / ModelError: before any driving, for a bad
            scenario, method or model.
    """
    from carla_agent.recording.index import write_index
    from carla_agent.sim.scenario import load_scenario
    from carla_agent.network.steering_model import SteeringModel

    names, meths = _split(scenarios), _split(methods)
    if not names:
        raise ScenarioError("no scenarios given; pass e.g. scenarios='gentle_curves,parked_cars'")
    check_methods(meths)
    loaded = [load_scenario(n) for n in names]  # every scenario error before the first drive
    check_free_space(out_dir)
    model = SteeringModel.load(model_path)
    runs = []
    for sc in loaded:
        log.info("recording %s", sc.name)
        run_dir, metrics = record_drive(sc, model, out_dir, seed, duration_s, backend, backend_options,
                                        progress=progress, intervention_m=intervention_m)
        video, page = finish_run(run_dir, meths, model, gif=gif, progress=progress, index=False)
        from carla_agent.recording.drive_log import DriveLog

        runs.append(RunResult(sc.name, run_dir, metrics, video, page, DriveLog.open(run_dir).complete))
    index = write_index(out_dir)
    return BatchResult(tuple(runs), index)
