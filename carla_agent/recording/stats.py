"""Saliency statistics: per-frame numbers of a map, and their per-run summaries.

The video renderer writes one row per frame and source (:func:`map_stats` plus the
frame's identity) to ``<video>.stats.csv`` (:data:`STATS_SUFFIX`); the report reads
those files back (:func:`saliency_statistics`, :func:`stats_methods`) and falls back
on :func:`metrics_from_rows` for runs that never wrote their metrics.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from carla_agent.sim.observation import SemanticClass

log = logging.getLogger(__name__)

#: A video's statistics file is its file name plus this suffix (``attention.mp4.stats.csv``).
STATS_SUFFIX = ".stats.csv"

#: Semantic classes reported in the statistics (share of map mass on each).
STAT_CLASSES = {"road": (SemanticClass.ROAD, SemanticClass.LANE_MARKING), "marking": (SemanticClass.LANE_MARKING,),
                "vehicle": (SemanticClass.VEHICLE,),
                "roadside": (SemanticClass.SHOULDER, SemanticClass.TERRAIN, SemanticClass.SIDEWALK),
                "object": (SemanticClass.OBJECT, SemanticClass.TRAFFIC_LIGHT), "sky": (SemanticClass.SKY,)}


def labels_at(semantic: np.ndarray, preprocessing: Any, hw: Tuple[int, int]) -> np.ndarray:
    """Semantic labels of a camera frame cut to the model's crop and resized (nearest) to ``hw``."""
    if preprocessing is not None:
        t, b, left, r = preprocessing.crop_box(semantic.shape[:2])
        semantic = semantic[t:b, left:r]
    return cv2.resize(semantic, (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST)


def map_stats(raw: np.ndarray, labels: Optional[np.ndarray] = None, previous: Optional[np.ndarray] = None) -> Dict[str, float]:
    """Summary numbers of one map (|map| is used for signed maps).

    Returns:
        ``top10_mass``: share of the map's mass in its strongest 10 % of pixels (1 = very focused);
        ``centroid_x``: horizontal centre of mass, -1 (left edge) .. +1 (right edge);
        ``centroid_y``: vertical centre of mass, 0 (top of the crop) .. 1 (bottom);
        ``stability``: Pearson correlation with the previous frame's map (NaN for the first);
        ``mass_<class>``: share of the mass on each of :data:`STAT_CLASSES` (when labels are given).
    """
    a = np.abs(np.asarray(raw, np.float32))
    total = float(a.sum())
    h, w = a.shape
    out: Dict[str, float] = {}
    if total <= 0 or not math.isfinite(total):
        p = np.full(a.shape, 1.0 / a.size, np.float32)
    else:
        p = a / total
    flat = p.ravel()
    k = max(1, flat.size // 10)
    out["top10_mass"] = float(np.partition(flat, flat.size - k)[-k:].sum())
    out["centroid_x"] = float((p.sum(axis=0) * np.linspace(-1.0, 1.0, w)).sum())
    out["centroid_y"] = float((p.sum(axis=1) * np.linspace(0.0, 1.0, h)).sum())
    if previous is not None and previous.shape == a.shape:
        pa, pb = a.ravel() - a.mean(), previous.ravel() - previous.mean()
        denom = float(np.sqrt((pa * pa).sum() * (pb * pb).sum()))
        out["stability"] = float((pa * pb).sum() / denom) if denom > 0 else float("nan")
    else:
        out["stability"] = float("nan")
    if labels is not None:
        for name, classes in STAT_CLASSES.items():
            out[f"mass_{name}"] = float(p[np.isin(labels, [int(c) for c in classes])].sum())
    return out


def metrics_from_rows(rows) -> Dict[str, Any]:
    """What can be said from the rows alone (for runs that never got to write their metrics)."""
    if len(rows) == 0:
        return {"frames": 0}
    off = rows["lateral_offset_m"].abs()
    # A value the log lacks (NaN: an empty cell, or a damaged one) is left out, never an int(NaN) error.
    interventions = rows["interventions"].dropna()
    return {"frames": int(len(rows)), "elapsed_s": float(rows["sim_time_s"].iloc[-1]),
            "distance_m": float(rows["route_s_m"].max()),
            "interventions": int(interventions.iloc[-1]) if len(interventions) else None,
            "mean_abs_offset_m": float(off.mean()), "max_abs_offset_m": float(off.max()),
            "collisions": int(rows["collisions"].sum()), "lane_invasions": int(rows["lane_invasions"].sum()),
            "mean_speed_mps": float(rows["speed_mps"].mean())}


def saliency_statistics(stats_files: Sequence[Path]):
    """Per-source means of the per-frame statistics, plus corr(centroid_x, steer). A DataFrame or None."""
    import pandas as pd

    frames = []
    for f in stats_files:
        try:
            frames.append(pd.read_csv(f))
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable statistics (%s); skipped", f, exc)
    if not frames:
        return None
    df = pd.concat(frames, ignore_index=True)
    if "i" in df.columns:  # a replay re-renders frames a video already has: count each frame once per source
        df = df.drop_duplicates(subset=["source", "i"], keep="first")
    numeric = [c for c in df.columns if c not in ("i", "frame", "sim_time_s", "source", "target", "steer",
                                                  "method", "label")
               and pd.api.types.is_numeric_dtype(df[c])]
    table = df.groupby("source")[numeric].mean()
    table["corr(centroid_x, steer)"] = df.groupby("source").apply(
        lambda g: g["centroid_x"].corr(g["steer"]) if len(g) > 2 else float("nan"), include_groups=False)
    table.insert(0, "frames", df.groupby("source").size())
    return table


def stats_methods(stats_files: Sequence[Path]) -> List[str]:
    """Method specs (``parse_method`` text) of the single-model sources in statistics files."""
    import pandas as pd

    found: List[str] = []
    for f in stats_files:
        try:
            df = pd.read_csv(f, usecols=["method", "label"])
        except (OSError, ValueError):
            continue
        found += [str(m) for m in df.loc[df["label"].isna(), "method"].unique()]
    return list(dict.fromkeys(found))
