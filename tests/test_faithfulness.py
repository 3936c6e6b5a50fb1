"""Faithfulness measures on tiny models where the right answer is known.

``left_model`` looks only at the left half of its input (a Cropping2D drops the
right half), so a faithful map puts all its mass on the left half. Inputs are
small (32x64) so the whole file runs in a few seconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from carla_agent import faithfulness as F
from carla_agent.faithfulness.shift import salient_masks, shift_images

H, W = 32, 64


@pytest.fixture(scope="module")
def left_model():
    import keras
    from keras import layers

    keras.utils.set_random_seed(3)
    inp = keras.Input((H, W, 3), name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inp)
    x = layers.Cropping2D(((0, 0), (0, W // 2)), name="left_half")(x)
    x = layers.Conv2D(8, 5, strides=2, activation="tanh", name="conv1")(x)
    x = layers.Conv2D(8, 3, strides=2, activation="tanh", name="conv2")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="tanh", name="fc1")(x)
    out = layers.Dense(1, name="steer")(x)
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def antisymmetric_model():
    """f(x) = sum w * grey(x) with w(:, j) = -w(:, W-1-j): exactly f(flip x) = -f(x)."""
    import keras
    from keras import layers

    rng = np.random.default_rng(0)
    half = rng.normal(0, 1e-3, (H, W // 2))
    w = np.concatenate([half, -half[:, ::-1]], axis=1)
    kernel = np.repeat(w[..., None], 3, axis=-1).reshape(-1, 1) / 3
    inp = keras.Input((H, W, 3))
    x = layers.Flatten()(inp)
    dense = layers.Dense(1, use_bias=False, name="steer")
    out = dense(x)
    model = keras.Model(inp, out)
    dense.set_weights([kernel.astype(np.float32)])
    return model


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 255, (6, H // 4, W // 4, 3)).astype(np.float32)
    import cv2

    return np.stack([cv2.resize(b, (W, H), interpolation=cv2.INTER_CUBIC) for b in base]).clip(0, 255)


def _left_map(n):
    m = np.zeros((n, H, W), np.float32)
    m[:, :, : W // 2] = np.random.default_rng(2).random((n, H, W // 2)) + 0.5
    return m


def test_gradient_map_of_left_model_is_on_the_left(left_model, images):
    from carla_agent.saliency import make_explainer

    maps = make_explainer(left_model, "gradient")(images).maps
    assert maps[:, :, W // 2:].sum() == pytest.approx(0.0, abs=1e-6)
    assert maps[:, :, : W // 2].sum() > 0


def test_deletion_faithful_map_beats_random_and_wrong(left_model, images):
    from carla_agent.saliency import make_explainer

    f = F.steer_function(left_model)
    grad = make_explainer(left_model, "gradient")(images).maps
    right = _left_map(len(images))[:, :, ::-1]  # all mass where the model does not look
    good = F.deletion_insertion(f, images, grad, steps=10)
    rand = F.deletion_insertion(f, images, F.random_maps(grad.shape), steps=10)
    bad = F.deletion_insertion(f, images, right, steps=10)
    assert good.fractions.shape == good.deletion.shape == (11,)
    assert good.deletion[0] == pytest.approx(0.0, abs=1e-6) and good.insertion[-1] == pytest.approx(0.0, abs=1e-6)
    # |delta f| is not monotone in the deleted share (a random half-deletion can overshoot), so the
    # deletion AUC alone only separates the faithful map from the wrong one; insertion ranks all three.
    assert good.deletion_auc > bad.deletion_auc
    assert good.insertion_auc < rand.insertion_auc < bad.insertion_auc
    assert good.score > rand.score > bad.score
    # deleting the right half first changes nothing until the left half goes
    assert bad.deletion[:5].max() == pytest.approx(0.0, abs=1e-6)


def test_shift_test_left_map_passes_right_map_fails(left_model, images):
    f = F.steer_function(left_model)
    left = _left_map(len(images))
    good = F.shift_test(f, images, left, shift_px=6, top_fraction=0.5, dilate_px=0)
    bad = F.shift_test(f, images, left[:, :, ::-1], shift_px=6, top_fraction=0.5, dilate_px=0)
    assert good.whole > 0
    assert good.salient_ratio == pytest.approx(1.0, abs=1e-5) and good.rest_ratio == pytest.approx(0.0, abs=1e-5)
    assert bad.salient_ratio == pytest.approx(0.0, abs=1e-5) and bad.rest_ratio == pytest.approx(1.0, abs=1e-5)


def test_shift_helpers():
    img = np.zeros((1, 4, 8, 3), np.float32)
    img[0, :, 2] = 1
    assert shift_images(img, 3)[0, 0, 5, 0] == 1 and shift_images(img, 3)[0, 0, 2, 0] == 0
    m = np.zeros((1, 9, 9), np.float32)
    m[0, 4, 4] = 1
    assert salient_masks(m, top_fraction=0.01, dilate_px=1).sum() == 5  # 3x3 ellipse: a cross


def test_randomisation_gradient_changes_visual_backprop_ignores_head(left_model, images):
    from carla_agent.faithfulness.randomisation import model_randomisation

    before = left_model.get_weights()
    grad = model_randomisation(left_model, "gradient", images)
    assert grad.layers == ("steer", "fc1", "conv2", "conv1")
    # the right half is 0 in every gradient map (tied ranks), which keeps Spearman high; SSIM sees the change
    assert grad.ssim[-1] < 0.75 and grad.spearman[-1] < 0.97
    assert grad.ssim[0] < 0.9  # the output layer alone already moves the gradient map
    vbp = model_randomisation(left_model, "visual_backprop", images, stages=3)
    assert vbp.after("fc1") == pytest.approx((1.0, 1.0))  # dense head random: the map does not move
    assert vbp.spearman[2] < 0.99  # conv2 random: it does
    assert all(np.array_equal(a, b) for a, b in zip(before, left_model.get_weights()))  # original untouched


def test_flip_equivariance(antisymmetric_model, left_model, images):
    from carla_agent.saliency import make_explainer

    f = F.steer_function(antisymmetric_model)
    res = F.flip_equivariance(f, make_explainer(antisymmetric_model, "gradient"), images)
    assert res.output_error < 1e-5 * max(res.output_scale, 1e-3) + 1e-6
    assert res.map_spearman == pytest.approx(1.0, abs=1e-6) and res.map_ssim == pytest.approx(1.0, abs=1e-6)
    lm = F.flip_equivariance(F.steer_function(left_model), make_explainer(left_model, "gradient"), images)
    assert lm.map_spearman < 0.5  # map(flip x) is on the left, flip(map x) on the right


def test_ssim_and_spearman():
    rng = np.random.default_rng(0)
    a = rng.random((30, 40))
    assert F.ssim(a, a) == pytest.approx(1.0)
    assert F.ssim(a, rng.random((30, 40))) < 0.3
    assert F.spearman(a, a ** 3) == pytest.approx(1.0)
    assert F.spearman(a, -a) == pytest.approx(1.0)  # |map| is compared
    assert abs(F.spearman(a, rng.random((30, 40)))) < 0.1
    assert F.spearman(a, np.zeros_like(a)) == 0.0


def test_road_attention():
    from carla_agent.sim.observation import SemanticClass

    labels = np.full((2, 10, 10), SemanticClass.SKY, np.uint8)
    labels[:, 5:] = SemanticClass.ROAD
    maps = np.zeros((2, 10, 10))
    maps[:, 5:] = 1.0
    res = F.road_attention(maps, labels)
    assert res.mass["road"] == pytest.approx(1.0) and res.area["road"] == pytest.approx(0.5)
    assert res.ratio("road") == pytest.approx(2.0) and res.ratio("sky_vegetation") == pytest.approx(0.0)


def test_temporal_stability():
    rng = np.random.default_rng(0)
    base = rng.random((20, 30))
    maps = np.stack([base, base, rng.random((20, 30)), base])
    value, pairs = F.temporal_stability(maps, [0.0, 0.0, 0.5, 0.5])
    assert pairs == 2 and value < 1.0  # (0,1) identical, (2,3) different; (1,2) skipped: steering jumped
    assert F.temporal_stability(maps[:2], [0.0, 0.01]) == (pytest.approx(1.0), 1)
    assert np.isnan(F.temporal_stability(maps[:2], [0.0, 1.0])[0])


def test_sobel_and_random_maps_shapes(images):
    assert F.sobel_maps(images).shape == (len(images), H, W)
    a = F.random_maps((3, H, W), np.random.default_rng(5))
    assert np.array_equal(a, F.random_maps((3, H, W), np.random.default_rng(5)))
