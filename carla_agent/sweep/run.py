"""A whole sweep: skip the finished cells, run the rest on Ray, write the table and the comparison.

:func:`run_sweep` is ``python -m carla_agent sweep``. In ``OUT``:

* ``manifest.json``: every cell's outcome (:mod:`carla_agent.sweep.manifest`), rewritten after each;
* ``runs/<cell id>/``: each cell's run folder (drive log, ``attention.mp4``, ``report.html``),
  and ``runs/index.html``;
* ``results.parquet``, ``results.csv``: the tidy table (:mod:`carla_agent.sweep.table`);
* ``compare.html`` and its ``compare_*.png`` plots (:mod:`carla_agent.sweep.compare`).

Ctrl-C stops the sweep: the cells in flight are cancelled, every finished one is kept
(manifest, table and page are written with them), and the same command resumes.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple

from carla_agent.sweep.cell import TOKEN_FILE, CellResult, unpack_bundle
from carla_agent.sweep.grid import Cell, SweepSpec
from carla_agent.sweep.manifest import Manifest, check_out_dir
from carla_agent.sweep.pool import CarlaServer
from carla_agent.sweep.progress import SweepProgress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepResult:
    """What a sweep did.

    Attributes:
        results: every cell's result, in the grid's order (skipped ones from the manifest).
        ran: ids of the cells run in this call.
        skipped: ids of the cells already done before it.
        table: the tidy table (:class:`pandas.DataFrame`).
        compare: the comparison page.
        interrupted: Ctrl-C stopped it (the CLI then exits 130).
    """

    results: Tuple[CellResult, ...]
    ran: Tuple[str, ...]
    skipped: Tuple[str, ...]
    table: object
    compare: Optional[Path]
    interrupted: bool = False

    @property
    def failed(self) -> Tuple[CellResult, ...]:
        return tuple(r for r in self.results if r.status != "done")


def _token(out: Path, ship_runs: bool) -> str:
    """A fresh token in ``OUT/.sweep_token``; ``ship_runs`` writes none, so every worker ships its folder."""
    token = secrets.token_hex(16)
    path = out / TOKEN_FILE
    if ship_runs:
        path.unlink(missing_ok=True)
    else:
        path.write_text(token)
    return token


def run_sweep(spec: SweepSpec, out_dir: str | Path, *, address: Optional[str] = None,
              workers: Optional[int] = None, carla_servers: Sequence[CarlaServer] = (),
              carla_timeout_s: float = 10.0, ship_runs: bool = False, progress: bool = True,
              cell_fn: Optional[Callable[..., CellResult]] = None, force: bool = False) -> SweepResult:
    """Run the cells of ``spec`` not yet done in ``out_dir``; write the table and the comparison page.

    Args:
        spec: the sweep; checked here before anything runs.
        out_dir: the sweep's folder (created).
        address: a Ray cluster's address (``ray start --head`` prints it); None: Ray on this machine
            (or the Ray already running in this process).
        workers: cells at once (default: Ray's CPUs); on a fresh local Ray also its ``num_cpus``.
        carla_servers: run the cells on these CARLA servers, one cell per server at a time.
        carla_timeout_s: [s] the CARLA client's timeout.
        ship_runs: workers return their run folders to this process even if they could write ``out_dir``
            (what workers on other machines without a shared path do by themselves).
        progress: the progress bar over cells.
        cell_fn: what runs a cell (default :func:`~carla_agent.sweep.cell.run_cell`; tests wrap it).
        force: write into ``out_dir`` even when it is not empty and not this sweep's (another sweep's
            settings, or not a sweep folder); see :func:`~carla_agent.sweep.manifest.check_out_dir`.

    Raises:
        SweepError and the other :class:`~carla_agent.errors.CarlaAgentError` s: a bad grid or ``out_dir``,
            before any drive.
    """
    from carla_agent.sweep import ray_runner
    from carla_agent.sweep.cell import run_cell

    spec.check()
    out = Path(out_dir)
    check_out_dir(out, spec.settings(), force)
    out.mkdir(parents=True, exist_ok=True)
    cells = spec.cells()
    manifest = Manifest(out, spec.settings())
    manifest.save()  # marks the folder as this sweep's from the start
    todo = [c for c in cells if not manifest.is_done(c)]
    skipped = tuple(c.cell_id for c in cells if c not in todo)
    if skipped:
        log.info("%d of %d cells already done in %s; skipped", len(skipped), len(cells), out)
    token = _token(out, ship_runs)
    ran = []
    interrupted = False
    bar = SweepProgress(len(todo), enabled=progress)
    attempts_started = {}

    def on_start(cell: Cell, attempt: int) -> None:
        if attempt > 1:
            bar.retried()
        attempts_started[cell.cell_id] = attempt
        bar.started(attempt)

    def on_result(result: CellResult) -> None:
        if result.bundle is not None:
            unpack_bundle(result.bundle, out, result.cell)
        manifest.record(result)
        ran.append(result.cell.cell_id)
        bar.ended(result.status == "done")
        if result.status != "done":
            log.warning("%s failed after %d attempt(s): %s", result.cell.cell_id, result.attempts, result.error)

    started = False
    try:
        if todo:
            started = ray_runner.connect(address, workers)
            ray_runner.execute(todo, spec, out, token, on_result, on_start, workers=workers,
                               carla_servers=carla_servers, carla_timeout_s=carla_timeout_s,
                               cell_fn=cell_fn or run_cell, cancel_on_interrupt=not started)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
        if started:
            ray_runner.disconnect()
        (out / TOKEN_FILE).unlink(missing_ok=True)
    return _finish(spec, out, cells, manifest, tuple(ran), skipped, interrupted)


def _finish(spec: SweepSpec, out: Path, cells, manifest: Manifest, ran, skipped, interrupted) -> SweepResult:
    from carla_agent.recording.index import write_index
    from carla_agent.sweep.compare import write_compare
    from carla_agent.sweep.table import write_table

    results = tuple(manifest.results(cells))
    table = write_table(results, out)
    page = write_compare(table, out, spec.models)
    if (out / "runs").is_dir():
        try:
            write_index(out / "runs")
        except Exception as exc:  # a broken neighbour run must not lose the table and the page
            log.warning("%s: index not written: %s", out / "runs", exc)
    return SweepResult(results, ran, skipped, table, page, interrupted)


__all__ = ["SweepResult", "run_sweep"]
