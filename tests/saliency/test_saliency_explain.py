"""Image files in, map / overlay / prediction files out; figure grids; first-layer filters."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from carla_agent.errors import ModelError
from carla_agent.saliency import explain_images, first_layer_filters, saliency_grid

from saliency_models import smooth_images


@pytest.fixture()
def camera_pngs(tmp_path):
    paths = []
    for i, im in enumerate(smooth_images(2, (300, 400), 3, seed=4)):
        p = tmp_path / f"cam{i}.png"
        cv2.imwrite(str(p), im.astype(np.uint8)[..., ::-1])
        paths.append(p)
    return paths


def test_explain_images_from_a_model_file(camera_pngs, tmp_path, two_head):
    model_path = tmp_path / "two_head.keras"
    two_head.save(str(model_path))
    written = explain_images(camera_pngs, model_path, method="gradcam", target="left", output="throttle",
                             out_dir=tmp_path / "out")
    assert len(written) == 8 and all(p.exists() for p in written)
    npy = np.load(tmp_path / "out" / "cam0.gradcam.npy")
    assert npy.shape == (120, 160) and npy.dtype == np.float32
    overlay = cv2.imread(str(tmp_path / "out" / "cam1.gradcam.overlay.png"))
    assert overlay.shape == (300, 400, 3)  # on the camera frame, not the model input
    record = json.loads((tmp_path / "out" / "cam0.gradcam.json").read_text())
    assert set(record["prediction"]) == {"steering", "throttle"}
    assert record["output"] == "throttle" and record["target"] == "left" and record["layer"] == "c4"


def test_explain_images_errors(camera_pngs, tmp_path, pilotnet):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(ModelError, match="not a readable image"):
        explain_images([bad], pilotnet, out_dir=tmp_path / "o")
    with pytest.raises(ModelError, match="no such model file"):
        explain_images(camera_pngs, tmp_path / "missing.keras", out_dir=tmp_path / "o")


def test_saliency_grid_rows_and_panels(pilotnet):
    frames = smooth_images(2, (150, 400), 3, seed=6).astype(np.uint8)
    grid = saliency_grid(list(frames), pilotnet, ["visual_backprop", "gradient_signed"], panel_width_px=160,
                         jit_compile=False)
    assert grid.dtype == np.uint8 and grid.ndim == 3 and grid.shape[2] == 3
    assert grid.shape[1] == 6 * 160 + 5 * 4  # 2 frames x (camera | map | overlay)
    assert grid.shape[0] == 2 * (18 + 60)  # one labelled row per method


def test_first_layer_filters(pilotnet, nested):
    f = first_layer_filters(pilotnet)
    assert f.layer == "conv1" and f.images.shape == (24, 5, 5, 3) and f.grid.dtype == np.uint8
    assert f.images.min() == 0 and f.images.max() == 1
    g = first_layer_filters(nested, layer="conv2")
    assert g.layer == "backbone/conv2" and g.images.shape == (8, 3, 3, 6)
