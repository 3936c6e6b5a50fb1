"""The sweep's manifest: which cells are finished, so that a rerun skips them.

``OUT/manifest.json`` holds one entry per cell id (``Cell.cell_id``): the cell,
its status (``done`` or ``failed``), attempts, error, run folder, metrics and the
settings it ran with. It is rewritten atomically (temporary file, then rename)
after every cell, so Ctrl-C or a killed driver keeps every finished cell.

A cell counts as done on a rerun only when its entry says ``done`` with the
same settings (duration, video methods, faithfulness, backend) *and* its run
folder's ``meta.json`` says the drive log is complete (and its video and report,
when asked, exist): a folder deleted or cut short since is driven again. Failed
cells are tried again on a rerun. The file also holds the sweep's settings at the top
(``"settings"``): :func:`check_out_dir` refuses to run a sweep with other settings, or into a
non-empty folder that is not a sweep's, unless ``--force``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional

from carla_agent.sweep.cell import TOKEN_FILE, CellResult
from carla_agent.sweep.grid import Cell, SweepError

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
VERSION = 1


class Manifest:
    """``OUT/manifest.json``, read at start and rewritten after each cell.

    Args:
        out_dir: the sweep's folder.
        settings: :meth:`~carla_agent.sweep.grid.SweepSpec.settings` of this sweep.
    """

    def __init__(self, out_dir: str | Path, settings: Mapping[str, Any]) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / MANIFEST_FILE
        self.settings = dict(settings)
        self.entries: Dict[str, Dict[str, Any]] = {}
        #: The settings the folder's sweep ran with (None: a new folder, or no cell recorded yet).
        self.stored_settings: Optional[Dict[str, Any]] = None
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text())
                self.entries = dict(data["cells"])
                stored = data.get("settings")
                if stored is None and self.entries:  # a manifest from before the top-level settings
                    stored = next(iter(self.entries.values())).get("settings")
                self.stored_settings = dict(stored) if stored is not None else None
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise SweepError(f"{self.path}: unreadable manifest ({exc}); move it away to start the sweep "
                                 f"afresh") from None

    def is_done(self, cell: Cell) -> bool:
        """The cell finished with these settings and its log is complete on disk."""
        e = self.entries.get(cell.cell_id)
        if not e or e.get("status") != "done" or e.get("settings") != self.settings:
            return False
        if Cell(**e["cell"]) != cell:
            return False
        run = self.out_dir / e.get("run_dir", "")
        try:
            meta = json.loads((run / "meta.json").read_text())
        except (OSError, ValueError):
            return False
        if not meta.get("complete"):
            return False
        return all((self.out_dir / e[k]).is_file() for k in ("video", "report") if e.get(k))

    def record(self, result: CellResult) -> None:
        """Add (or replace) a cell's entry and rewrite the file."""
        r = result.without_bundle()
        self.entries[r.cell.cell_id] = {
            "cell": r.cell.to_dict(), "status": r.status, "attempts": r.attempts, "error": r.error,
            "run_dir": r.run_dir, "video": r.video, "report": r.report, "complete": r.complete,
            "wall_s": round(r.wall_s, 3), "worker": r.worker, "server": r.server, "metrics": dict(r.metrics),
            "faithfulness": dict(r.faithfulness), "settings": self.settings}
        self.save()

    def save(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.partial")
        tmp.write_text(json.dumps({"version": VERSION, "settings": self.settings, "cells": self.entries}, indent=1))
        os.replace(tmp, self.path)

    def result(self, cell: Cell) -> Optional[CellResult]:
        """The stored result of a cell, or None."""
        e = self.entries.get(cell.cell_id)
        if not e:
            return None
        return CellResult(Cell(**e["cell"]), e["status"], e.get("run_dir", ""), e.get("metrics") or {},
                          e.get("faithfulness") or {}, e.get("video", ""), e.get("report", ""),
                          bool(e.get("complete")), float(e.get("wall_s") or 0.0), e.get("error", ""),
                          int(e.get("attempts") or 0), e.get("worker", ""), e.get("server", ""))

    def results(self, cells: Iterable[Cell]) -> List[CellResult]:
        """Stored results of ``cells`` that have one, in their order."""
        return [r for r in (self.result(c) for c in cells) if r is not None]


def check_out_dir(out_dir: str | Path, settings: Mapping[str, Any], force: bool = False) -> None:
    """Refuse an ``--out`` that a sweep with ``settings`` must not write into, before anything runs.

    Allowed: a new or empty folder; a sweep folder (``manifest.json``, or the token of a sweep that
    stopped before its first cell) whose settings are these (the rerun resumes it); anything but a
    file with ``force``.

    Raises:
        SweepError: one line naming the folder, what is there and the fix (another ``--out``, ``--force``).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SweepError(f"--out {out}: is a file, not a folder; give --out a folder")
    if force or not out.is_dir() or not any(out.iterdir()):
        return
    if not (out / MANIFEST_FILE).is_file():
        if (out / TOKEN_FILE).is_file():
            return  # a sweep stopped before its first cell finished
        raise SweepError(f"--out {out}: exists, is not empty and is not a sweep folder (no {MANIFEST_FILE}); "
                         f"give --out a new or empty folder, or pass --force to write into it")
    stored = Manifest(out, settings).stored_settings
    if stored is None or stored == dict(settings):
        return
    diff = "; ".join(f"{k} {stored.get(k)!r} there, {settings.get(k)!r} now"
                     for k in sorted(set(stored) | set(settings)) if stored.get(k) != settings.get(k))
    raise SweepError(f"--out {out}: holds a sweep with other settings ({diff}); give --out a new folder, rerun "
                     f"with its settings to resume it, or pass --force to run its cells again with these")


__all__ = ["MANIFEST_FILE", "Manifest", "check_out_dir"]
