"""Explain image files: the map, the overlay and the prediction for each image.

Backs the command ``python -m carla_agent explain IMAGE... --model PATH --method NAME
[--target ...] [--output NAME|INDEX] --out DIR``. For each image ``NAME.png`` it writes,
under ``out_dir``:

- ``NAME.<method>.npy``: the raw map, float32, at the model's input size;
- ``NAME.<method>.map.png``: the map, normalised per image, projected onto the
  camera frame and coloured (jet, or the diverging map for signed methods);
- ``NAME.<method>.overlay.png``: the map over the camera image;
- ``NAME.<method>.json``: prediction per output, method, layer, target, normalisation.

The images are camera frames: they go through the model's preprocessing (a
model file is loaded as a :class:`~carla_agent.network.steering_model.SteeringModel`,
which reads the ``preprocessing`` entry of its JSON sidecar; a plain
``keras.Model`` gets the default crop, resized to its input size, in RGB).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterable, List

import cv2
import numpy as np

from carla_agent.errors import ModelError
from carla_agent.saliency.grid import default_preprocessing
from carla_agent.saliency.methods import make_explainer
from carla_agent.saliency.normalize import normalize_frame
from carla_agent.saliency.overlay import colorize, default_cmap, overlay

log = logging.getLogger(__name__)


def read_image(path: str | Path) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8 RGB."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ModelError(f"{path}: not a readable image (PNG or JPG expected)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _write_png(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"{path}: cannot write")


def explain_images(image_paths: Iterable[str | Path], model: Any, method: str = "visual_backprop",
                   target: Any = "auto", output: int | str = 0, out_dir: str | Path = "out",
                   layer: str | None = None, **options: Any) -> List[Path]:
    """Write map, overlay and prediction for each image; return the written paths.

    Args:
        image_paths: PNG/JPG camera frames (any size; they are cropped and resized).
        model: a model file path, a ``keras.Model`` or a ``SteeringModel``.
        method, target, output, layer, **options: as :func:`make_explainer`.
        out_dir: directory for the outputs (created).
    """
    if isinstance(model, (str, Path)):
        from carla_agent.network.steering_model import SteeringModel

        model = SteeringModel.load(model)  # reads the sidecar's preprocessing; clear errors
    pre = default_preprocessing(model)
    explainer = make_explainer(model, method, output=output, target=target, layer=layer, **options)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: List[Path] = []
    for image_path in image_paths:
        image_path = Path(image_path)
        frame = read_image(image_path)
        res = explainer(pre(frame))
        stem = out / f"{image_path.stem}.{res.method}"
        raw = res.maps[0]
        shown = normalize_frame(pre.project_map(raw, frame.shape[:2]), res.signed)
        cmap = default_cmap(res.signed)
        paths = [stem.with_name(stem.name + s) for s in (".npy", ".map.png", ".overlay.png", ".json")]
        np.save(paths[0], raw)
        _write_png(paths[1], colorize(shown, cmap))
        _write_png(paths[2], overlay(frame, shown, cmap))
        record = {
            "image": str(image_path), "method": res.method, "description": explainer.description,
            "layer": res.layer, "output": res.output, "target": res.target,
            "target_used": res.target_per_frame[0] if res.target_per_frame else None,
            "signed": res.signed, "prediction": dict(zip(explainer.output_names,
                                                         (float(v) for v in res.prediction[0]))),
            "map_shape": list(raw.shape), "normalisation": "per image (frame), for the PNGs; .npy is raw",
        }
        paths[3].write_text(json.dumps(record, indent=2) + "\n")
        written.extend(paths)
        log.info("explained %s -> %s.*", image_path, stem)
    return written
