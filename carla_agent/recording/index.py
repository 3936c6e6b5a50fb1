"""The runs' index: ``runs/index.html``, one line per run folder, linking each run's report.

Written by ``record`` after its batch, and by ``drive --record`` (and the HUD's R key)
after each recording (:func:`carla_agent.recording.batch.finish_run`). Each line says
whether the run is whole (:mod:`carla_agent.recording.run_status`): a partial or
incomplete run gets an amber or red badge with how much of the scenario it covers,
and its route completion and driving score are greyed out and starred, since they
count only the road driven.
"""

from __future__ import annotations

import html
import logging
import math
from pathlib import Path
from typing import Optional

from carla_agent.recording.disk_space import write_text_atomic
from carla_agent.recording.drive_log import DriveLog, DriveLogError
from carla_agent.recording.pages import fmt, head, scroll, status_badge
from carla_agent.recording.report import REPORT_FILE
from carla_agent.recording.run_status import run_status
from carla_agent.recording.stats import metrics_from_rows

log = logging.getLogger(__name__)

INDEX_FILE = "index.html"
COLUMNS = ("run", "scenario", "seed", "model", "status", "autonomy %", "interventions", "collisions",
           "mean |offset| m", "route %", "driving score")


def _link(target: Path, page: Path) -> str:
    try:
        return target.resolve().relative_to(page.parent.resolve()).as_posix()
    except ValueError:
        return target.resolve().as_uri()


def write_index(root: str | Path = "runs", out: Optional[str | Path] = None) -> Path:
    """Write ``root/index.html`` (or ``out``): one line per run folder under ``root``; returns its path.

    A folder is a run when it holds a ``meta.json``; an unreadable one is skipped with a warning.
    """
    root = Path(root)
    out = Path(out) if out else root / INDEX_FILE
    lines, partial = [], 0
    for run in sorted(p for p in root.iterdir() if (p / "meta.json").is_file()):
        try:
            dlog = DriveLog.open(run)
        except DriveLogError as exc:
            log.warning("index: %s", exc)
            continue
        meta, rows = dlog.meta, dlog.rows
        m = meta.get("metrics") or metrics_from_rows(rows)
        status = run_status(meta, rows, dlog.complete)
        model = meta.get("model") or {}
        report = run / REPORT_FILE
        shown = html.escape(run.name).replace("Z_", "Z_<wbr>", 1)  # the time stamp, then the scenario
        name = f"<a href='{html.escape(_link(report, out))}'>{shown}</a>" if report.exists() else shown
        model_name = Path(model["path"]).stem if model.get("path") else str(meta.get("agent"))
        sha = (model.get("sha256") or "")[:8]
        state = status_badge(status, short=True)
        if status.state == "incomplete":
            state += f"<br><span class='muted'>{html.escape(status.reason)}; {html.escape(status.coverage)}</span>"
        elif status.state == "partial":
            state += f"<br><span class='muted'>{html.escape(status.reason)}</span>"
        scored = "num" if status.whole else "num notwhole"
        star = "" if status.whole else "*"
        partial += not status.whole
        cells = [name, html.escape(str(meta.get("scenario_name"))), ("num", html.escape(str(meta.get("seed")))),
                 f"{html.escape(model_name)} <span class='muted'>{html.escape(sha)}</span>", ("status", state),
                 ("num", _num(m.get("autonomy_pct"), 1)), ("num", html.escape(str(m.get("interventions", "–")))),
                 ("num", html.escape(str(m.get("collisions", "–")))), ("num", _num(m.get("mean_abs_offset_m"), 3)),
                 (scored, _num(m.get("route_completion_pct"), 1) + star),
                 (scored, _num(m.get("driving_score"), 1) + star)]
        cells = [c if isinstance(c, tuple) else ("", c) for c in cells]
        lines.append("<tr>" + "".join(f"<td class='{cls}' data-label='{html.escape(label, quote=True)}'>{text}</td>"
                                      for label, (cls, text) in zip(COLUMNS, cells)) + "</tr>")
    table = (f"<table class='runs'><thead><tr>{''.join(f'<th>{html.escape(h)}</th>' for h in COLUMNS)}</tr></thead>"
             f"<tbody>{''.join(lines)}</tbody></table>"
             if lines else "<p class='muted'>No runs yet.</p>")
    note = ("<p class='muted'>* Partial or incomplete run: route completion and the driving score count only "
            "the road driven, so they cannot be compared with a full run's.</p>") if partial else ""
    text = (head("Drive runs") + f"<h1>Drive runs in {html.escape(str(root))}</h1>"
            + scroll(table) + note + "</body></html>")
    write_text_atomic(out, text)
    return out


def _num(value, digits: int) -> str:
    if value is None:
        return "–"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return fmt(value)
    return f"{number:.{digits}f}" if math.isfinite(number) else "–"
