"""How far each saliency map can be trusted on a steering network: the faithfulness table.

:func:`evaluate` drives the scenarios with the model itself (embedded
simulator, semantic labels included), explains every collected frame with each
method, runs the measures of :mod:`carla_agent.faithfulness`, and writes

- ``table.md`` / ``table.json``: one row per method (plus the ``random`` and
  ``sobel`` reference maps), one column per measure;
- ``deletion_curves.png``, ``shift_test.png``, ``randomisation.png``;
- ``index.html``: the table and the plots on one page.

The command line (``carla-agent evaluate``) is :mod:`carla_agent.cli.evaluate`.
"""

from __future__ import annotations

import html
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from carla_agent import faithfulness as F
from carla_agent.progress import progress_bar

log = logging.getLogger(__name__)

DEFAULT_METHODS = ("visual_backprop", "gradient", "gradcam", "smoothgrad", "integrated_gradients", "occlusion")
REFERENCES = ("random", "sobel")
BATCH = 32  # frames per explainer call

COLUMNS = (  # (key, header, what is good)
    ("deletion_auc", "deletion AUC", "high"),
    ("insertion_auc", "insertion AUC", "low"),
    ("del_minus_ins", "del - ins", "high"),
    ("shift_salient", "shift salient/whole", "~1"),
    ("shift_rest", "shift rest/whole", "~0"),
    ("flip_spearman", "flip map rho", "high"),
    ("road_ratio", "road mass/area", ">1"),
    ("sky_veg_mass", "sky+veg mass", "low"),
    ("stability_ssim", "temporal SSIM", "high"),
    ("rand_head_rho", "rho, head random", "low"),
    ("rand_all_rho", "rho, all random", "low"),
    ("rand_all_ssim", "SSIM, all random", "low"),
    ("cl_autonomy_salient", "autonomy %, salient blurred", "low"),
    ("cl_autonomy_random", "autonomy %, random blurred", "high"),
    ("cl_offset_salient", "offset m, salient blurred", "high"),
    ("cl_offset_random", "offset m, random blurred", "low"),
)


@dataclass
class Frames:
    """Collected frames. ``inputs`` ``(N, H, W, C)``, ``labels`` ``(N, H, W)`` or None, ``steer`` ``(N,)``."""

    inputs: np.ndarray
    labels: Optional[np.ndarray]
    steer: np.ndarray
    scenario: str = ""


def _cell(v: Optional[float]) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


@dataclass
class Table:
    """The faithfulness table: ``rows[method][column key] -> float`` plus curves for the plots."""

    rows: Dict[str, Dict[str, float]] = field(default_factory=dict)
    curves: Dict[str, F.CurveResult] = field(default_factory=dict)
    randomisation: Dict[str, object] = field(default_factory=dict)
    notes: Dict[str, object] = field(default_factory=dict)

    def columns(self):
        """The entries of :data:`COLUMNS` that at least one row has (closed-loop columns only when run)."""
        return [c for c in COLUMNS if any(c[0] in row for row in self.rows.values())]

    def markdown(self) -> str:
        cols = self.columns()
        head = "| method | " + " | ".join(f"{h} ({g})" for _, h, g in cols) + " |"
        sep = "|---" * (len(cols) + 1) + "|"
        lines = [head, sep]
        for name, row in self.rows.items():
            cells = [_cell(row.get(k)) for k, _, _ in cols]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


class _Collect:
    """Runner hook: keeps every ``stride``-th frame until ``frames`` are kept, then stops the drive."""

    def __init__(self, model, frames: int, stride: int) -> None:
        from carla_agent.faithfulness.road import labels_to_input

        self.model, self.frames, self.stride = model, frames, stride
        self.inputs: List[np.ndarray] = []
        self.labels: List[Optional[np.ndarray]] = []
        self.steer: List[float] = []
        self._labels = labels_to_input

    def on_start(self, runner, obs) -> None:
        pass

    def override(self, record):
        return None

    def on_step(self, record) -> None:
        from carla_agent.drive.runner import StopDrive

        if record.tick % self.stride:
            return
        obs = record.obs
        self.inputs.append(self.model.preprocessing(obs.image))
        sem = obs.truth.semantic
        self.labels.append(None if sem is None else self._labels(sem, self.model.preprocessing))
        self.steer.append(float(record.decision.predicted_steer))
        if len(self.inputs) >= self.frames:
            raise StopDrive()

    def on_end(self, metrics, interrupted) -> None:
        pass


def collect_frames(model, scenario: str, frames: int = 200, stride: int = 1, seed: int = 0) -> Frames:
    """Drive ``scenario`` (embedded simulator) with ``model`` and keep ``frames`` frames, one every ``stride`` ticks."""
    from carla_agent.drive.agent import NetworkAgent
    from carla_agent.drive.session import drive_scenario
    from carla_agent.sim.scenario import load_scenario

    sc = load_scenario(scenario)
    hook = _Collect(model, frames, stride)
    drive_scenario(sc, NetworkAgent(model, sc.target_speed_mps), backend="embedded", seed=seed, hooks=[hook])
    labels = None if any(lab is None for lab in hook.labels) else np.stack(hook.labels)
    return Frames(np.stack(hook.inputs).astype(np.float32), labels, np.asarray(hook.steer), sc.name)


def frames_from_log(model, run: str | Path, frames: int = 200, stride: int = 1) -> Frames:
    """Frames from a drive log folder (:class:`~carla_agent.recording.drive_log.DriveLog`): every ``stride``-th
    readable frame, at most ``frames``; the steering is the model's own prediction on each frame."""
    from carla_agent.recording.drive_log import DriveLog
    from carla_agent.faithfulness.road import labels_to_input

    dl = DriveLog.open(run)
    indices = list(dl.indices)[::stride][:frames]
    inputs, labels = [], []
    for fr in dl.iter_frames(indices, on_error="skip"):
        inputs.append(model.preprocessing(fr.image))
        labels.append(None if fr.semantic is None else labels_to_input(fr.semantic, model.preprocessing))
    if not inputs:
        raise ValueError(f"{run}: no readable frames")
    x = np.stack(inputs).astype(np.float32)
    steer = model.predict_inputs(x)[:, model.steer_index]
    lab = None if any(v is None for v in labels) else np.stack(labels)
    return Frames(x, lab, np.asarray(steer, np.float64), Path(run).name)


def _maps(explain, inputs: np.ndarray) -> np.ndarray:
    return np.concatenate([np.asarray(explain(inputs[i:i + BATCH]).maps) for i in range(0, len(inputs), BATCH)])


def measure(model, frames: Frames, maps: np.ndarray, explain=None, steps: int = 20,
            flip_frames: int = 32) -> Dict[str, float]:
    """Every map-level measure for one set of maps (``explain`` None: no flip test)."""
    f = F.steer_function(model)
    row: Dict[str, float] = {}
    cur = F.deletion_insertion(f, frames.inputs, maps, steps=steps)
    row.update(deletion_auc=cur.deletion_auc, insertion_auc=cur.insertion_auc, del_minus_ins=cur.score)
    sh = F.shift_test(f, frames.inputs, maps)
    row.update(shift_salient=sh.salient_ratio, shift_rest=sh.rest_ratio)
    if explain is not None:
        k = min(flip_frames, len(maps))
        fl = F.flip_equivariance(f, explain, frames.inputs[:k], maps[:k])
        row["flip_spearman"] = fl.map_spearman
    if frames.labels is not None:
        ra = F.road_attention(maps, frames.labels)
        row.update(road_ratio=ra.ratio("road"), sky_veg_mass=ra.mass["sky_vegetation"])
    row["stability_ssim"] = F.temporal_stability(maps, frames.steer)[0]
    return row, cur


def evaluate(model_path: str | Path, scenarios: Sequence[str] = ("gentle_curves",),
             methods: Sequence[str] = DEFAULT_METHODS, frames: int = 200, out_dir: str | Path = "out/evaluate",
             steps: int = 20, stride: int = 1, randomise_frames: int = 8, seed: int = 0,
             closed_loop_s: Optional[float] = None, closed_loop_share: float = 0.1,
             progress: bool = True) -> Table:
    """The faithfulness table of ``methods`` on ``model_path``, frames from driving ``scenarios``.

    Args:
        model_path: a ``.keras`` / ``.h5`` steering model.
        scenarios: shipped scenario names, YAML paths, or drive-log folders (``runs/<run>``, read with
            :class:`~carla_agent.recording.drive_log.DriveLog`); ``frames`` frames are taken from each.
        methods: saliency method names (:data:`carla_agent.saliency.METHODS`).
        frames: frames per scenario.
        out_dir: where the table, plots and ``index.html`` go.
        steps: deletion / insertion steps.
        stride: keep one frame every ``stride`` ticks.
        randomise_frames: frames used by the model-randomisation check (one explainer build per layer).
        closed_loop_s: when set, also run the closed-loop causal test on the first scenario, each drive
            this many seconds of simulated time (``clean`` once, ``salient`` and ``random`` per method).
        closed_loop_share: share of pixels blurred per frame in the closed-loop test.
        progress: a progress bar over the methods (:func:`carla_agent.progress.progress_bar`).
    Returns:
        the :class:`Table` (also written to ``out_dir``).
    """
    from carla_agent.faithfulness.randomisation import model_randomisation
    from carla_agent.saliency import METHODS, make_explainer
    from carla_agent.network.steering_model import SteeringModel

    for m in methods:
        METHODS.get(m)  # unknown names fail before the drive
    t0 = time.perf_counter()
    model = SteeringModel.load(model_path)
    parts = [frames_from_log(model, s, frames, stride) if Path(s).is_dir() else
             collect_frames(model, s, frames, stride, seed) for s in scenarios]
    labels = None if any(p.labels is None for p in parts) else np.concatenate([p.labels for p in parts])
    data = Frames(np.concatenate([p.inputs for p in parts]), labels, np.concatenate([p.steer for p in parts]),
                  ",".join(p.scenario for p in parts))
    t_collect = time.perf_counter() - t0
    f = F.steer_function(model)
    table = Table()
    flip = F.flip_equivariance(f, None, data.inputs)
    table.notes.update(model=str(model_path), scenarios=list(scenarios), frames=len(data.inputs),
                       flip_output_error=flip.output_error, mean_abs_steer=flip.output_scale)
    timings = {}
    bar = progress_bar(len(methods), "evaluate", unit="method", enabled=progress)
    for name in methods:
        bar.set_postfix_str(name, refresh=False)
        t = time.perf_counter()
        explain = make_explainer(model, name, output=model.steer_index)
        maps = _maps(explain, data.inputs)
        row, cur = measure(model, data, maps, explain, steps)
        rr = model_randomisation(model, name, data.inputs[:randomise_frames], output=model.steer_index,
                                 original_maps=maps[:randomise_frames])
        dense = [i for i, layer in enumerate(rr.layers) if not layer.startswith("conv")]
        head = dense[-1] if dense else 0  # the whole dense head random
        row.update(rand_head_rho=float(rr.spearman[head]), rand_all_rho=float(rr.spearman[-1]),
                   rand_all_ssim=float(rr.ssim[-1]))
        if closed_loop_s is not None:
            from carla_agent.faithfulness.closed_loop import closed_loop_test

            cl = closed_loop_test(model, scenarios[0], explain, closed_loop_share, seed, closed_loop_s)
            row.update(cl_autonomy_salient=cl["salient"].autonomy_pct, cl_autonomy_random=cl["random"].autonomy_pct,
                       cl_offset_salient=cl["salient"].mean_abs_offset_m,
                       cl_offset_random=cl["random"].mean_abs_offset_m)
            table.notes.update(cl_clean_autonomy=cl["clean"].autonomy_pct,
                               cl_clean_offset=cl["clean"].mean_abs_offset_m)
        table.rows[name], table.curves[name], table.randomisation[name] = row, cur, rr
        timings[name] = time.perf_counter() - t
        log.info("%s: %.1f s", name, timings[name])
        bar.update(1)
    bar.close()
    refs = {"random": F.random_maps(data.inputs.shape[:3], np.random.default_rng(seed)),
            "sobel": F.sobel_maps(data.inputs)}
    for name, maps in refs.items():
        table.rows[name], table.curves[name] = measure(model, data, maps, None, steps)
    table.notes.update(collect_s=t_collect, method_s=timings, total_s=time.perf_counter() - t0)
    write(table, out_dir)
    return table


def _plots(table: Table, out: Path) -> List[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, cur in table.curves.items():
        style = "--" if name in REFERENCES else "-"
        axes[0].plot(cur.fractions, cur.deletion, style, label=name)
        axes[1].plot(cur.fractions, cur.insertion, style, label=name)
    axes[0].set(title="deletion (higher = more faithful)", xlabel="share of pixels blurred", ylabel="mean |Δ steer|")
    axes[1].set(title="insertion (lower = more faithful)", xlabel="share of pixels sharp", ylabel="mean |Δ steer|")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "deletion_curves.png", dpi=100)
    plt.close(fig)

    names = list(table.rows)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6, len(names) * 0.9), 3.5))
    ax.bar(x - 0.2, [table.rows[n]["shift_salient"] for n in names], 0.4, label="salient / whole (≈1)")
    ax.bar(x + 0.2, [table.rows[n]["shift_rest"] for n in names], 0.4, label="rest / whole (≈0)")
    ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    ax.axhline(1.0, color="k", lw=0.5)
    ax.set_title("NVIDIA shift test: change of steering when shifting part of the image")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "shift_test.png", dpi=100)
    plt.close(fig)
    files = ["deletion_curves.png", "shift_test.png"]

    if table.randomisation:
        fig, ax = plt.subplots(figsize=(8, 3.5))
        for name, rr in table.randomisation.items():
            ax.plot(range(len(rr.layers)), rr.spearman, "o-", label=name)
            ax.set_xticks(range(len(rr.layers)), rr.layers, rotation=30, fontsize=8)
        ax.set(title="model randomisation, head down (Spearman with the original map)", ylabel="rank correlation")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "randomisation.png", dpi=100)
        plt.close(fig)
        files.append("randomisation.png")
    return files


def _json_row(row: Dict[str, float]) -> Dict[str, Optional[float]]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}


def write(table: Table, out_dir: str | Path) -> Path:
    """Write ``table.md``, ``table.json``, the plots and ``index.html`` to ``out_dir``; return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = table.markdown()
    (out / "table.md").write_text(md + "\n")
    payload = {"rows": {k: _json_row(v) for k, v in table.rows.items()}, "notes": table.notes,
               "curves": {k: {"fractions": c.fractions.tolist(), "deletion": c.deletion.tolist(),
                              "insertion": c.insertion.tolist()} for k, c in table.curves.items()},
               "randomisation": {k: {"layers": list(r.layers), "spearman": r.spearman.tolist(),
                                     "ssim": r.ssim.tolist()} for k, r in table.randomisation.items()}}
    (out / "table.json").write_text(json.dumps(payload, indent=1, default=float))
    files = _plots(table, out)
    cols = table.columns()
    head = "".join(f"<th>{html.escape(h)}<br><small>{html.escape(g)}</small></th>" for _, h, g in cols)
    body = ""
    for name, row in table.rows.items():
        cells = "".join(f"<td>{_cell(row.get(k))}</td>" for k, _, _ in cols)
        body += f"<tr><th>{html.escape(name)}</th>{cells}</tr>\n"
    notes = html.escape(json.dumps(table.notes, default=float))
    imgs = "".join(f'<p><img src="{f}"></p>' for f in files)
    (out / "index.html").write_text(
        "<!doctype html><meta charset=utf-8><title>saliency faithfulness</title>"
        "<style>td,th{padding:3px 6px;border:1px solid #ccc;text-align:right}table{border-collapse:collapse}</style>"
        f"<h1>How far each saliency map can be trusted</h1><p>{notes}</p>"
        f"<table><tr><th>method</th>{head}</tr>\n{body}</table>{imgs}")
    return out
