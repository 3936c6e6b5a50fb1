"""The sweep's comparison page: ``OUT/compare.html``, models side by side over seeds.

* **Means with 95 % intervals**, per scenario, weather and model, over the seeds:
  ``mean ± t(0.975, n-1) * s / sqrt(n)`` (Student's t; no interval from one seed).
* **Where B is worse than A**: the first model is A; for every other model B and
  every (scenario, weather, seed) both drove, the cells where B's driving score is
  lower, or equal with a lower autonomy, or equal on both with a larger mean
  |lateral offset|, ranked by the driving-score drop, then the autonomy drop, then
  the offset increase. Both runs' reports and videos are linked.
* **Plots** (PNG, one per metric): the means with their intervals, a bar per model.
* **Every run**: its status, metrics, and links to its report and attention video;
  failed cells with their error.

Links are relative to the page, so the sweep's folder can be moved or served as is.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from carla_agent.recording.disk_space import write_text_atomic
from carla_agent.recording.pages import fmt, head, scroll

COMPARE_FILE = "compare.html"
#: (column, label, which way is better) of the metrics compared.
METRICS: Tuple[Tuple[str, str, str], ...] = (
    ("driving_score", "driving score", "high"),
    ("autonomy_pct", "autonomy %", "high"),
    ("mean_abs_offset_m", "mean |offset| m", "low"),
    ("interventions", "interventions", "low"),
    ("route_completion_pct", "route %", "high"),
)
KEYS = ("scenario", "weather", "model")


def interval95(values: Sequence[float]) -> Tuple[float, float]:
    """``(mean, half width)`` of the 95 % interval of the mean; half width NaN for fewer than 2 values."""
    from scipy import stats

    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return float("nan"), float("nan")
    mean = sum(v) / len(v)
    if len(v) < 2:
        return mean, float("nan")
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1))
    return mean, float(stats.t.ppf(0.975, len(v) - 1)) * sd / math.sqrt(len(v))


def summary(frame) -> List[Dict]:
    """Per (scenario, weather, model): seeds and ``(mean, half width)`` of each metric, done cells only."""
    done = frame[frame["status"] == "done"]
    out = []
    for key, group in done.groupby(list(KEYS), sort=False):
        row = dict(zip(KEYS, key), seeds=len(group))
        for col, _, _ in METRICS:
            row[col] = interval95(group[col].tolist()) if col in group else (float("nan"), float("nan"))
        out.append(row)
    return out


def regressions(frame, baseline: str) -> List[Dict]:
    """Cells where a model is worse than ``baseline`` on the same scenario, weather and seed, worst first.

    Each item: scenario, weather, seed, model, the two rows (``a``, ``b``) and the deltas
    ``d_score`` (B - A), ``d_autonomy`` (B - A), ``d_offset_m`` (B - A)."""
    done = frame[frame["status"] == "done"]
    a_rows = {(r.scenario, r.weather, r.seed): r for r in done[done["model"] == baseline].itertuples()}
    worse = []
    for b in done[done["model"] != baseline].itertuples():
        a = a_rows.get((b.scenario, b.weather, b.seed))
        if a is None:
            continue
        d = (b.driving_score - a.driving_score, b.autonomy_pct - a.autonomy_pct,
             b.mean_abs_offset_m - a.mean_abs_offset_m)
        if (-d[0], -d[1], d[2]) > (0.0, 0.0, 0.0):  # lexicographic: score first, then autonomy, then offset
            worse.append(dict(scenario=b.scenario, weather=b.weather, seed=b.seed, model=b.model, a=a, b=b,
                              d_score=d[0], d_autonomy=d[1], d_offset_m=d[2]))
    return sorted(worse, key=lambda w: (w["d_score"], w["d_autonomy"], -w["d_offset_m"]))


def _plots(rows: List[Dict], models: List[str], out: Path) -> List[Tuple[str, str]]:
    """One PNG per metric: groups (scenario / weather), a bar per model, 95 % interval whiskers."""
    from matplotlib.figure import Figure

    groups = list(dict.fromkeys((r["scenario"], r["weather"]) for r in rows))
    files = []
    for col, label, better in METRICS:
        fig = Figure(figsize=(max(6.0, 1.2 * len(groups) * max(1, len(models)) / 2 + 2), 3.4), dpi=100)
        ax = fig.add_subplot(1, 1, 1)
        width = 0.8 / max(1, len(models))
        for k, model in enumerate(models):
            means, errs = [], []
            for g in groups:
                r = next((r for r in rows if (r["scenario"], r["weather"]) == g and r["model"] == model), None)
                m, h = r[col] if r else (float("nan"), float("nan"))
                means.append(m)
                errs.append(0.0 if math.isnan(h) else h)
            xs = [i + (k - (len(models) - 1) / 2) * width for i in range(len(groups))]
            ax.bar(xs, means, width, yerr=errs, capsize=3, label=_short(model))
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([s if w == "scenario" else f"{s}\n{w}" for s, w in (
            (_short(g[0]), g[1]) for g in groups)], fontsize=8)
        ax.set_ylabel(label)
        ax.set_title(f"{label} ({better}er is better), mean and 95 % interval over seeds", fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        name = f"compare_{col}.png"
        fig.savefig(out / name)
        files.append((name, label))
    return files


def _short(path: str) -> str:
    return Path(path).name if "/" in path else path


def _link(rel: str, text: str) -> str:
    return f"<a href='{html.escape(rel, quote=True)}'>{html.escape(text)}</a>" if rel else "–"


def _interval(v: Tuple[float, float]) -> str:
    mean, half = v
    if math.isnan(mean):
        return "<td class='num'>–</td>"
    text = fmt(mean) if math.isnan(half) else f"{fmt(mean)} ± {fmt(half)}"
    return f"<td class='num'>{text}</td>"


def _run_links(r) -> str:
    return f"{_link(r.report, 'report')} · {_link(r.video, 'video')}"


def write_compare(frame, out_dir: str | Path, models: Sequence[str]) -> Path:
    """Write ``out_dir/compare.html`` and its plots from the tidy table; returns the page's path.

    Args:
        frame: :func:`carla_agent.sweep.table.results_frame` (paths relative to ``out_dir``).
        out_dir: the sweep's folder.
        models: the sweep's models in order; the first is the baseline A.
    """
    out = Path(out_dir)
    models = list(models)
    done = frame[frame["status"] == "done"] if len(frame) else frame
    rows = summary(frame) if len(done) else []
    parts = [head("sweep: comparison"), "<h1>Sweep comparison</h1>",
             f"<p class='muted'>{len(frame)} cells: {len(done)} done, {len(frame) - len(done)} failed. "
             f"Models: {', '.join(html.escape(_short(m)) for m in models)}; A = "
             f"{html.escape(_short(models[0]) if models else '–')}. Tables: "
             f"<a href='results.csv'>results.csv</a>, <a href='results.parquet'>results.parquet</a>.</p>"]
    parts.append("<h2 id='means'>Means over seeds, with 95 % intervals</h2>")
    head_ = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in METRICS)
    body = "".join(f"<tr><td>{html.escape(_short(r['scenario']))}</td><td>{html.escape(r['weather'])}</td>"
                   f"<td>{html.escape(_short(r['model']))}</td><td class='num'>{r['seeds']}</td>"
                   + "".join(_interval(r[c]) for c, _, _ in METRICS) + "</tr>" for r in rows)
    parts.append(scroll(f"<table class='wide'><tr><th>scenario</th><th>weather</th><th>model</th><th>seeds</th>"
                        f"{head_}</tr>{body}</table>"))
    parts.append("<h2 id='worse'>Where B is worse than A</h2>")
    worse = regressions(frame, models[0]) if len(done) and models else []
    if worse:
        body = "".join(
            f"<tr><td class='num'>{i}</td><td>{html.escape(_short(w['scenario']))}</td>"
            f"<td>{html.escape(w['weather'])}</td><td class='num'>{w['seed']}</td>"
            f"<td>{html.escape(_short(w['model']))}</td><td class='num'>{fmt(float(w['d_score']))}</td>"
            f"<td class='num'>{fmt(float(w['d_autonomy']))}</td><td class='num'>{fmt(float(w['d_offset_m']))}</td>"
            f"<td>A: {_run_links(w['a'])}<br>B: {_run_links(w['b'])}</td></tr>" for i, w in enumerate(worse, 1))
        parts.append(scroll("<table class='wide'><tr><th>#</th><th>scenario</th><th>weather</th><th>seed</th>"
                            "<th>model B</th><th>Δ driving score</th><th>Δ autonomy %</th><th>Δ mean |offset| m</th>"
                            f"<th>runs</th></tr>{body}</table>"))
    else:
        parts.append("<p>No cell where another model is worse than A (or only one model).</p>")
    if rows:
        parts.append("<h2 id='plots'>Plots</h2>")
        for name, label in _plots(rows, models, out):
            parts.append(f"<figure><img src='{name}' alt='{html.escape(label)}'></figure>")
    parts.append("<h2 id='runs'>Every run</h2>")
    body = ""
    for r in frame.itertuples():
        if r.status == "done":
            vals = "".join(f"<td class='num'>{fmt(float(getattr(r, c)))}</td>" for c, _, _ in METRICS)
            state = "<span class='badge ok'>done</span>" if r.complete else "<span class='badge part'>incomplete</span>"
        else:
            vals = f"<td colspan='{len(METRICS)}'>{html.escape(str(r.error))}</td>"
            state = "<span class='badge bad'>failed</span>"
        body += (f"<tr><td>{html.escape(r.cell_id)}</td><td>{state} <span class='muted'>{r.attempts} "
                 f"attempt(s)</span></td>{vals}<td>{_run_links(r) if r.status == 'done' else '–'}</td></tr>")
    parts.append(scroll(f"<table class='wide'><tr><th>cell</th><th>status</th>{head_}<th>links</th></tr>"
                        f"{body}</table>"))
    parts.append("</body></html>")
    page = out / COMPARE_FILE
    write_text_atomic(page, "".join(parts))
    return page


__all__ = ["COMPARE_FILE", "METRICS", "interval95", "regressions", "summary", "write_compare"]
