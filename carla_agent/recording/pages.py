"""What the HTML pages (a run's report, the runs' index) share: the head, the style sheet,
tables, and the run-status badge.

The pages read on a 1280 px screen and on a phone (~390 px): the head has a
viewport tag; wide tables scroll inside their own box (``<div class='scroll'>``)
instead of widening the page, and the index's table becomes one card per run
on a narrow screen; two-column fact tables wrap their long values
(paths, hashes); images and videos are at most as wide as the page.
"""

from __future__ import annotations

import html
import math
from typing import Any, Sequence, Tuple

import numpy as np

from carla_agent.recording.run_status import RunStatus

CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1180px;color:#1d1d22;padding:16px 16px 32px;line-height:1.35}
h1{font-size:1.5em;margin:8px 0 4px}h2{font-size:1.15em;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
h1,p,figcaption,summary,li{overflow-wrap:anywhere}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:.9em}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#f4f4f6}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.wide{font-size:.82em}table.wide td,table.wide th{padding:3px 6px}
table.facts td{overflow-wrap:anywhere}table.facts th{white-space:nowrap}
.badge{display:inline-block;padding:2px 8px;border-radius:10px;font-size:.8em;color:#fff}
.ok{background:#2e8b57}.bad{background:#c0392b}.part{background:#b9770e}.muted{color:#666;font-size:.85em}
.notwhole{color:#888;font-style:italic}.note{background:#fff6e0;border-left:4px solid #b9770e;padding:6px 10px}
img,video{max-width:100%;height:auto}video{display:block;width:100%;background:#111}
figure{margin:10px 0}figcaption{font-size:.85em;color:#555}
.keys{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(520px,100%),1fr));gap:12px}
table.runs td.status{min-width:11em}table.runs .badge{white-space:nowrap}
@media (max-width:640px){
 table.runs,table.runs tbody,table.runs tr,table.runs td{display:block}table.runs thead{display:none}
 table.runs tr{border:1px solid #ddd;border-radius:8px;margin:0 0 10px;padding:6px 10px}
 table.runs td{border:0;padding:1px 0;text-align:left;min-width:0}
 table.runs td::before{content:attr(data-label) ": ";font-weight:600;color:#555;font-style:normal}
}
details{margin:8px 0}code{background:#f4f4f6;padding:0 3px;overflow-wrap:anywhere}
"""


def head(title: str) -> str:
    """``<!DOCTYPE html>`` up to and including ``<body>``: charset, viewport, title, style sheet."""
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>")


def fmt(v: Any) -> str:
    """A cell's text: floats to 3 decimals (none from 1000 up), ``–`` for NaN; HTML-escaped."""
    if isinstance(v, float):
        if not math.isfinite(v):
            return "–"
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:.0f}"
    return html.escape(str(v))


def td(v: Any) -> str:
    numeric = isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
    return f"<td class='num'>{fmt(v)}</td>" if numeric else f"<td>{fmt(v)}</td>"


def scroll(table_html: str) -> str:
    """Wrap a wide table so that it scrolls sideways inside its own box, not the page."""
    return f"<div class='scroll'>{table_html}</div>"


def facts_table(pairs: Sequence[Tuple[str, Any]]) -> str:
    """Two columns, name | value; long values (paths, hashes) wrap."""
    body = "".join(f"<tr><th>{html.escape(str(k))}</th>{td(v)}</tr>" for k, v in pairs)
    return f"<table class='facts'>{body}</table>"


def frame_table(df) -> str:
    """A DataFrame (index as the first column) as a table that scrolls sideways when wide."""
    def breakable(name: str) -> str:  # long column names may wrap after an underscore
        return html.escape(name).replace("_", "_<wbr>")

    head_ = "".join(f"<th>{breakable(str(c))}</th>" for c in [df.index.name or "", *df.columns])
    body = "".join("<tr><th>" + html.escape(str(idx)) + "</th>" + "".join(td(v) for v in row) + "</tr>"
                   for idx, row in zip(df.index, df.itertuples(index=False)))
    return scroll(f"<table class='wide'><tr>{head_}</tr>{body}</table>")


def status_badge(status: RunStatus, short: bool = False) -> str:
    """Green ``complete``, amber ``partial: 20 s of 70 s``, red ``incomplete: <reason>``.

    ``short``: ``incomplete`` without its reason (the reason stays in the tooltip).
    """
    cls = {"complete": "ok", "partial": "part", "incomplete": "bad"}[status.state]
    title = f" title='{html.escape(status.reason, quote=True)}'" if status.reason else ""
    text = "incomplete" if short and status.state == "incomplete" else status.label
    return f"<span class='badge {cls}'{title}>{html.escape(text)}</span>"
