"""The sweep's tidy table: one row per cell, every drive metric, in Parquet and CSV.

Columns: ``cell_id``, ``scenario``, ``model``, ``seed``, ``weather``, ``status``
(``done`` / ``failed``), ``attempts``, ``error``, ``complete``, ``wall_s``,
``run_dir`` / ``video`` / ``report`` (relative to the sweep's folder), ``worker`` (``host:pid``),
``server`` (the CARLA server's ``host:port``, empty on the embedded backend),
then every field of :class:`~carla_agent.drive.metrics.DriveMetrics` (``autonomy_pct``,
``mean_abs_offset_m``, ``driving_score`` ...; empty for failed cells) and, where
asked, ``faith_<method>_<measure>``. ``pandas.read_parquet(OUT / "results.parquet")``
or ``pandas.read_csv(OUT / "results.csv")`` reads it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from carla_agent.sweep.cell import CellResult

PARQUET_FILE = "results.parquet"
CSV_FILE = "results.csv"
#: Columns before the metrics, in order.
CELL_COLUMNS = ("cell_id", "scenario", "model", "seed", "weather", "status", "attempts", "error", "complete",
                "wall_s", "run_dir", "video", "report", "worker", "server")
#: Metric columns that name the cell again and are left out.
_DUPLICATE = {"scenario"}


def results_frame(results: Sequence[CellResult]):
    """The table as a :class:`pandas.DataFrame` (one row per result, in order)."""
    import pandas as pd

    rows = []
    for r in results:
        row = {"cell_id": r.cell.cell_id, "scenario": r.cell.scenario, "model": r.cell.model,
               "seed": r.cell.seed, "weather": r.cell.weather, "status": r.status, "attempts": r.attempts,
               "error": r.error, "complete": r.complete, "wall_s": r.wall_s, "run_dir": r.run_dir,
               "video": r.video, "report": r.report, "worker": r.worker, "server": r.server}
        row.update({k: v for k, v in r.metrics.items() if k not in _DUPLICATE})
        row.update(r.faithfulness)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=list(CELL_COLUMNS))
    first = [c for c in CELL_COLUMNS if c in frame.columns]
    return frame[first + [c for c in frame.columns if c not in first]]


def write_table(results: Sequence[CellResult], out_dir: str | Path):
    """Write ``results.parquet`` and ``results.csv`` into ``out_dir`` (each atomically); returns the frame."""
    out = Path(out_dir)
    frame = results_frame(results)
    for name, write in ((PARQUET_FILE, lambda p: frame.to_parquet(p, index=False)),
                        (CSV_FILE, lambda p: frame.to_csv(p, index=False))):
        tmp = out / f".{name}.partial"
        write(tmp)
        os.replace(tmp, out / name)
    return frame


__all__ = ["CELL_COLUMNS", "CSV_FILE", "PARQUET_FILE", "results_frame", "write_table"]
