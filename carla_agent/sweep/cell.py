"""One cell of a sweep: drive, write the drive log, render the attention video and report.

:func:`run_cell` is what a Ray task (or a CARLA server's actor) runs. It goes
through ``record``'s own path (:func:`carla_agent.recording.batch.record_drive`,
then :func:`carla_agent.recording.batch.finish_run`), so a cell's metrics are those
of ``python -m carla_agent record`` with the same scenario, model and seed, bit for bit:
the embedded simulator is deterministic given the seed, and TensorFlow runs with the
same threads per op as ``record`` (1 by default) so its sums come out the same.

Where the run folder goes: the driver writes a token into ``OUT/.sweep_token``.
A worker that reads the same token there shares the driver's file system (one
machine, or a cluster on a shared path) and records straight into ``OUT/runs/<cell>``;
any other worker records into a temporary folder and returns the folder as a
tar archive in :attr:`CellResult.bundle`, which the driver unpacks into
``OUT/runs/<cell>`` (:func:`unpack_bundle`).
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import socket
import tarfile
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

from carla_agent.sweep.grid import SCENARIO_WEATHER, Cell, SweepSpec

log = logging.getLogger(__name__)

TOKEN_FILE = ".sweep_token"
RUNS_DIR = "runs"
#: Frames per explainer call in the faithfulness measures.
BATCH = 32

_MODELS: Dict[Tuple[str, int, int], Any] = {}
_EXPLAINERS: Dict[Tuple[int, str], Any] = {}
_THREADS_SET = False


@dataclass(frozen=True)
class CellResult:
    """What one cell gives back to the driver.

    Attributes:
        cell: the cell.
        status: ``done`` or ``failed``.
        run_dir: the run folder relative to the sweep's folder (``runs/<cell id>``), ``""`` if none.
        metrics: the drive's metrics (:meth:`~carla_agent.drive.metrics.DriveMetrics.to_dict`).
        faithfulness: ``faith_<method>_<measure>`` -> value, for the methods asked.
        video: the attention video relative to the sweep's folder, or ``""``.
        report: the run's ``report.html`` relative to the sweep's folder, or ``""``.
        complete: the drive log is complete.
        wall_s: [s] wall-clock time of the attempt.
        error: why the cell failed (``""`` when done).
        attempts: attempts made (the driver fills it in).
        worker: ``host:pid`` of the process that ran it.
        server: ``host:port`` of the CARLA server it drove on (``""`` on the embedded backend).
        bundle: the run folder as a tar archive, when the worker cannot write the driver's folder.
    """

    cell: Cell
    status: str
    run_dir: str = ""
    metrics: Mapping[str, Any] = field(default_factory=dict)
    faithfulness: Mapping[str, float] = field(default_factory=dict)
    video: str = ""
    report: str = ""
    complete: bool = False
    wall_s: float = 0.0
    error: str = ""
    attempts: int = 1
    worker: str = ""
    server: str = ""
    bundle: Optional[bytes] = None

    def without_bundle(self) -> "CellResult":
        return replace(self, bundle=None)


def failed(cell: Cell, error: str, attempts: int = 1, wall_s: float = 0.0) -> CellResult:
    """A failed cell's result."""
    return CellResult(cell, "failed", error=error, attempts=attempts, wall_s=wall_s)


def _model(path: str):
    """One loaded model per file per process: a worker runs many cells."""
    from carla_agent.network.steering_model import SteeringModel

    st = os.stat(path)
    key = (os.path.abspath(path), st.st_mtime_ns, st.st_size)
    if key not in _MODELS:
        _MODELS[key] = SteeringModel.load(path)
    return _MODELS[key]


def _tf_threads(threads: int) -> None:
    global _THREADS_SET
    if not _THREADS_SET:
        from carla_agent.network.tf_threads import set_tf_threads

        set_tf_threads(threads)  # before this process's first op, as record does
        _THREADS_SET = True


def _scenario(cell: Cell):
    from carla_agent.sim.scenario import WeatherSpec, load_scenario

    sc = load_scenario(cell.scenario)
    if cell.weather != SCENARIO_WEATHER:
        sc = sc.with_overrides(weather=WeatherSpec(preset=cell.weather))
    return sc


def shares_folder(out_dir: Path, token: str) -> bool:
    """This process sees the driver's sweep folder (the token there is the driver's)."""
    try:
        return (out_dir / TOKEN_FILE).read_text().strip() == token
    except OSError:
        return False


def run_cell(cell: Cell, spec: SweepSpec, out_dir: str, token: str,
             backend_options: Optional[Mapping[str, Any]] = None, stop: Optional[Any] = None) -> CellResult:
    """Drive one cell and write its run folder; exceptions propagate (the driver retries).

    Args:
        cell: the cell.
        spec: the sweep (duration, methods, faithfulness, backend, TensorFlow threads).
        out_dir: the sweep's folder as the driver sees it.
        token: the driver's token (see the module docstring).
        backend_options: CARLA host and port for ``--backend carla`` (one server per actor).
        stop: a ``threading.Event``; once set, the drive ends as Ctrl-C would (the CARLA server
            put back to asynchronous mode, our actors destroyed) and this raises KeyboardInterrupt.
    """
    from carla_agent.recording.batch import finish_run, record_drive
    from carla_agent.recording.drive_log import DriveLog

    t0 = time.perf_counter()
    _tf_threads(spec.tf_threads)
    root = Path(out_dir)
    shared = shares_folder(root, token)
    if not shared:
        root = Path(tempfile.mkdtemp(prefix="carla_agent_sweep_"))
    run_dir = root / RUNS_DIR / cell.cell_id
    try:
        if run_dir.exists():  # a killed or timed-out attempt: start the cell's folder afresh
            shutil.rmtree(run_dir)
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        model = _model(cell.model)
        _, metrics = record_drive(_scenario(cell), model, run_dir.parent, cell.seed, spec.duration_s, spec.backend,
                                  backend_options, progress=False, run_dir=run_dir,
                                  hooks=() if stop is None else (_stop_hook(stop),))
        video = page = None
        if spec.methods:
            video, page = finish_run(run_dir, spec.methods, model, progress=False, index=False)
        faith = _faithfulness(model, run_dir, spec) if spec.faithfulness else {}
        complete = DriveLog.open(run_dir).complete
        rel = lambda p: p.relative_to(root).as_posix() if p else ""  # noqa: E731
        bundle = None if shared else _pack(run_dir, root)
        return CellResult(cell, "done", rel(run_dir), metrics.to_dict(), faith, rel(video), rel(page), complete,
                          time.perf_counter() - t0, worker=f"{socket.gethostname()}:{os.getpid()}",
                          server=f"{backend_options['host']}:{backend_options['port']}" if backend_options else "",
                          bundle=bundle)
    finally:
        if not shared:
            shutil.rmtree(root, ignore_errors=True)


def _stop_hook(event: Any):
    """A runner hook that raises KeyboardInterrupt in the drive's loop once ``event`` is set."""
    from carla_agent.drive.runner import RunnerHook

    class StopWhenSet(RunnerHook):
        def on_step(self, record) -> None:
            if event.is_set():
                raise KeyboardInterrupt("the sweep was stopped")

    return StopWhenSet()


def _faithfulness(model, run_dir: Path, spec: SweepSpec) -> Dict[str, float]:
    """Map-level faithfulness measures of each method on the cell's own frames (no model randomisation:
    that is a property of the model, the same in every cell; ``evaluate`` measures it)."""
    import numpy as np

    from carla_agent.faithfulness.evaluate import frames_from_log, measure
    from carla_agent.saliency import make_explainer

    frames = frames_from_log(model, run_dir, frames=spec.faithfulness_frames)
    out: Dict[str, float] = {}
    for name in spec.faithfulness:
        key = (id(model), name)
        if key not in _EXPLAINERS:
            _EXPLAINERS[key] = make_explainer(model, name, output=model.steer_index)
        explain = _EXPLAINERS[key]
        maps = np.concatenate([np.asarray(explain(frames.inputs[i:i + BATCH]).maps)
                               for i in range(0, len(frames.inputs), BATCH)])
        row, _ = measure(model, frames, maps, explain)
        out.update({f"faith_{name}_{k}": float(v) for k, v in row.items()})
    return out


def _pack(run_dir: Path, root: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:  # frames are zstd already; gzip would gain little
        tar.add(run_dir, arcname=run_dir.relative_to(root).as_posix())
    return buf.getvalue()


def unpack_bundle(bundle: bytes, out_dir: Path, cell: Cell) -> None:
    """Write a worker's returned run folder under ``out_dir`` (only ``runs/<cell id>/...`` members)."""
    target = out_dir / RUNS_DIR / cell.cell_id
    if target.exists():
        shutil.rmtree(target)
    prefix = f"{RUNS_DIR}/{cell.cell_id}"
    with tarfile.open(fileobj=io.BytesIO(bundle), mode="r") as tar:
        members = [m for m in tar.getmembers()
                   if (m.name == prefix or m.name.startswith(prefix + "/")) and (m.isfile() or m.isdir())]
        tar.extractall(out_dir, members=members, filter="data")


__all__ = ["BATCH", "CellResult", "RUNS_DIR", "TOKEN_FILE", "failed", "run_cell", "shares_folder", "unpack_bundle"]
