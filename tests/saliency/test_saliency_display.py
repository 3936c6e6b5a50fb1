"""Normalisation, overlays, projection onto the camera frame; the TensorFlow-free parts."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from carla_agent.network.preprocess import Preprocessing
from carla_agent.saliency import (RunningNormalizer, SaliencyResult, blend, blur_background, colorize, green_mask,
                                  make_normalizer, normalize_frame, overlay, project_maps, salient_mask)
from carla_agent.saliency.overlay import PUSHES_LEFT_RGB, PUSHES_RIGHT_RGB


def test_import_lists_methods_without_tensorflow():
    code = ("import sys, carla_agent.saliency as s; import carla_agent.saliency.explain, carla_agent.saliency.grid; "
            "assert len(s.METHODS) >= 12; "
            "assert all(s.METHODS.get(n).description for n in s.METHODS); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_frame_normalisation():
    m = np.array([[[1.0, 3.0], [2.0, 5.0]], [[0.0, 0.0], [0.0, 0.0]]], np.float32)
    out = normalize_frame(m)
    np.testing.assert_allclose(out[0], [[0.0, 0.5], [0.25, 1.0]])
    assert np.all(out[1] == 0)  # a flat map stays flat, no division by zero
    s = normalize_frame(np.array([[-2.0, 1.0], [0.0, 4.0]], np.float32), signed=True)
    np.testing.assert_allclose(s, [[-0.5, 0.25], [0.0, 1.0]])


def test_running_normaliser_does_not_flicker():
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, (32, 32)).astype(np.float32)
    video = np.stack([base * (1.0 if i != 10 else 0.2) for i in range(20)])  # one weak frame
    running = make_normalizer("running")(video)
    per_frame = make_normalizer("frame")(video)
    assert per_frame[10].max() == pytest.approx(1.0)  # per frame: the weak frame is blown up
    assert running[10].max() < 0.4  # running: it stays dim
    assert np.abs(running[12] - running[9]).max() < 0.15  # and the video recovers smoothly
    assert running.min() >= 0 and running.max() <= 1


def test_running_normaliser_signed_and_reset():
    norm = RunningNormalizer(signed=True, decay=0.5)
    m = np.array([[-4.0, 0.0], [2.0, 4.0]], np.float32)
    out = norm(m)
    assert out[0, 0] < 0 < out[1, 0] and out[0, 1] == 0 and out.max() <= 1 and out.min() >= -1
    norm(m * 100)
    norm.reset()
    np.testing.assert_allclose(norm(m), out)
    with pytest.raises(ValueError):
        RunningNormalizer(decay=1.0)


def test_colour_maps_and_diverging_sides():
    ramp = np.linspace(0, 1, 64, dtype=np.float32)[None].repeat(4, 0)
    for cmap in ("jet", "inferno"):
        rgb = colorize(ramp, cmap)
        assert rgb.shape == (4, 64, 3) and rgb.dtype == np.uint8
    jet = colorize(ramp, "jet")
    assert jet[0, 0, 2] > jet[0, 0, 0] and jet[0, -1, 0] > jet[0, -1, 2]  # blue cold, red hot
    div = colorize(np.array([[-1.0, 0.0, 1.0]], np.float32), "diverging")
    assert tuple(div[0, 0]) == PUSHES_LEFT_RGB and tuple(div[0, 2]) == PUSHES_RIGHT_RGB
    assert div[0, 1].min() > 230  # zero is near white


def test_overlays():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    sal = np.zeros((40, 60), np.float32)
    sal[10:20, 20:40] = 1.0
    np.testing.assert_array_equal(blend(image, colorize(sal), alpha=0.0), image)
    over = overlay(image, sal, "jet", alpha=0.5)
    assert over.shape == image.shape and over.dtype == np.uint8 and not np.array_equal(over, image)
    signed = overlay(image, sal * -1, "diverging")  # opacity follows |map|: cold pixels untouched
    np.testing.assert_array_equal(signed[0:5], image[0:5])
    green = green_mask(image, sal, threshold=0.5, dilate_px=0)
    assert (green[12, 25, 1].astype(int) - image[12, 25, 1]) >= 0 and np.array_equal(green[0:5], image[0:5])
    mask = salient_mask(sal, 0.5, dilate_px=2)
    assert mask[10:20, 20:40].all() and mask[8, 30] and not mask[0, 0]
    bb = blur_background(image, sal, threshold=0.5, feather_px=0)
    np.testing.assert_array_equal(bb[12:18, 22:38], image[12:18, 22:38])
    assert np.abs(bb[30:, :].astype(int) - image[30:, :]).mean() > 5
    with pytest.raises(ValueError, match="project the map"):
        overlay(image, np.zeros((66, 200), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        overlay(image.astype(np.float32), sal)


def test_result_projection_onto_the_camera_frame():
    pre = Preprocessing(crop_top=0.5, crop_bottom=1.0, height=66, width=200, color_space="rgb")
    res = SaliencyResult(prediction=np.zeros((2, 1), np.float32), maps=np.ones((2, 66, 200), np.float32),
                         signed=False, method="m", target="auto", layer=None, extras={"a": np.ones(3)})
    frame = res.project(pre, (600, 800))
    assert frame.shape == (2, 600, 800)
    assert frame[:, :300].max() == 0 and frame[:, 300:].min() == 1  # zero above the crop
    np.testing.assert_array_equal(project_maps(res.maps[0], pre, (600, 800)), frame[0])
    with pytest.raises(ValueError):
        res.maps[0, 0, 0] = 5  # results are read-only
    with pytest.raises(TypeError):
        res.extras["b"] = 1
