"""Image grids: saliency figure grids, activation tiles, filter mosaics. NumPy/OpenCV only.

:func:`saliency_grid` builds one figure: one row per method, and per frame three
panels, camera | map | overlay, each row labelled with the explainer's
description (method, layer, output, target). TensorFlow is imported only when
it builds the explainers.
"""

from __future__ import annotations

from typing import Any, Iterable, List, Sequence

import cv2
import numpy as np

from carla_agent.saliency.normalize import make_normalizer
from carla_agent.saliency.overlay import colorize, default_cmap, overlay

LABEL_PX = 18  # [px] height of the label strip above each row
GAP_PX = 4  # [px] gap between panels


def tile_images(images: Sequence[np.ndarray], cols: int | None = None, cell_px: int | None = None,
                gap_px: int = 2) -> np.ndarray:
    """Tile ``(h, w, 3)`` uint8 images into one mosaic (row-major), optionally resized to ``cell_px`` high."""
    if not len(images):
        raise ValueError("no images to tile")
    tiles = []
    for im in images:
        im = np.asarray(im, np.uint8)
        if cell_px is not None and im.shape[0] != cell_px:
            scale = cell_px / im.shape[0]
            im = cv2.resize(im, (max(1, round(im.shape[1] * scale)), cell_px), interpolation=cv2.INTER_NEAREST)
        tiles.append(im)
    th = max(t.shape[0] for t in tiles)
    tw = max(t.shape[1] for t in tiles)
    cols = cols or int(np.ceil(np.sqrt(len(tiles) * th / max(tw, 1))))
    cols = max(1, min(cols, len(tiles)))
    rows = int(np.ceil(len(tiles) / cols))
    out = np.full((rows * (th + gap_px) - gap_px, cols * (tw + gap_px) - gap_px, 3), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        out[r * (th + gap_px):r * (th + gap_px) + t.shape[0], c * (tw + gap_px):c * (tw + gap_px) + t.shape[1]] = t
    return out


def tile_channels(features: np.ndarray, cols: int | None = None, cmap: str = "inferno",
                  cell_px: int | None = None) -> np.ndarray:
    """One frame's feature maps ``(h, w, C)`` as a mosaic of C colourised tiles (each scaled to [0, 1])."""
    features = np.asarray(features, np.float32)
    if features.ndim != 3:
        raise ValueError(f"expected (h, w, C) features of one frame, got shape {features.shape}")
    chans = np.moveaxis(features, -1, 0)
    lo = chans.min(axis=(1, 2), keepdims=True)
    hi = chans.max(axis=(1, 2), keepdims=True)
    chans = (chans - lo) / np.maximum(hi - lo, 1e-12)
    return tile_images([colorize(c, cmap) for c in chans], cols=cols, cell_px=cell_px)


def _label(width: int, text: str) -> np.ndarray:
    strip = np.full((LABEL_PX, width, 3), 255, np.uint8)
    cv2.putText(strip, text, (4, LABEL_PX - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def _resize(im: np.ndarray, width: int) -> np.ndarray:
    if im.shape[1] == width:
        return im
    h = max(1, round(im.shape[0] * width / im.shape[1]))
    return cv2.resize(im, (width, h), interpolation=cv2.INTER_AREA)


def saliency_grid(frames: np.ndarray | Sequence[np.ndarray], model: Any, methods: Iterable[Any],
                  preprocessing: Any = None, target: Any = "auto", output: int | str = 0,
                  panel_width_px: int = 320, alpha: float = 0.5, **options: Any) -> np.ndarray:
    """One figure: a row per method, and per frame the panels camera | map | overlay.

    Args:
        frames: one ``(H, W, 3)`` uint8 RGB camera frame or a list of them (same size).
        model: ``keras.Model`` or ``SteeringModel``.
        methods: registry names, or explainers already built (anything callable
            with a ``.description``).
        preprocessing: camera frame -> model input; default the SteeringModel's, or
            ``Preprocessing(height=H, width=W, color_space='rgb')`` for a plain model.
        target, output: passed to :func:`make_explainer` for names.
        panel_width_px: [px] width each panel is drawn at.
        alpha: overlay opacity.
        **options: passed to :func:`make_explainer` for names.

    Returns:
        ``(rows, cols, 3)`` uint8 RGB. Maps are normalised per frame (stills).
    """
    from carla_agent.saliency.methods import make_explainer

    frames = [np.asarray(frames, np.uint8)] if np.ndim(frames) == 3 else [np.asarray(f, np.uint8) for f in frames]
    pre = preprocessing or default_preprocessing(model)
    x = np.stack([pre(f) for f in frames])
    rows: List[np.ndarray] = []
    for method in methods:
        explainer = make_explainer(model, method, output=output, target=target, **options) \
            if isinstance(method, str) else method
        res = explainer(x)
        norm = make_normalizer("frame", signed=res.signed)
        cmap = default_cmap(res.signed)
        panels = []
        for frame, m in zip(frames, res.maps):
            projected = norm(pre.project_map(m, frame.shape[:2]))
            for im in (frame, colorize(projected, cmap), overlay(frame, projected, cmap, alpha)):
                panels.append(_resize(im, panel_width_px))
        h = max(p.shape[0] for p in panels)
        row = np.full((h, len(panels) * (panel_width_px + GAP_PX) - GAP_PX, 3), 255, np.uint8)
        for i, p in enumerate(panels):
            row[:p.shape[0], i * (panel_width_px + GAP_PX):i * (panel_width_px + GAP_PX) + p.shape[1]] = p
        preds = ", ".join(f"{n}={v:+.3f}" for n, v in zip(explainer.output_names, res.prediction[0]))
        rows.append(np.concatenate([_label(row.shape[1], f"{explainer.description} | {preds}"), row]))
    if not rows:
        raise ValueError("no methods given")
    return np.concatenate(rows)


def default_preprocessing(model: Any):
    """The SteeringModel's preprocessing, or an RGB resize-only one at a plain model's input size."""
    from carla_agent.network.preprocess import Preprocessing

    pre = getattr(model, "preprocessing", None)
    if pre is not None:
        return pre
    keras_model = getattr(model, "keras_model", model)
    h, w, c = (int(d) for d in keras_model.inputs[0].shape[1:])
    return Preprocessing(height=h, width=w, color_space="gray" if c == 1 else "rgb")
