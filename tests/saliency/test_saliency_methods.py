"""Every registered method on every test model, plus per-method behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from carla_agent.errors import ModelError, UnknownNameError
from carla_agent.saliency import METHODS, OptionError, make_explainer

from saliency_models import smooth_images

FAST = {  # options that keep the multi-pass methods quick on the test models
    "occlusion": {"window_px": (24,), "stride_px": (20,)},
    "occlusion_iterative": {"window_px": (24,), "stride_px": (20,), "iterations": 2},
    "smoothgrad": {"samples": 4},
    "integrated_gradients": {"steps": 4},
    "integrated_gradients_signed": {"steps": 4},
}


def inputs_for(model, n: int = 3, seed: int = 0) -> np.ndarray:
    h, w, c = (int(d) for d in model.inputs[0].shape[1:])
    return smooth_images(n, (h, w), c, seed)


@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_on_every_model(method, any_model):
    spec = METHODS.get(method)
    explainer = make_explainer(any_model, method, jit_compile=False, **FAST.get(method, {}))
    x = inputs_for(any_model)
    res = explainer(x)
    h, w = x.shape[1:3]
    assert res.maps.shape == (3, h, w) and res.maps.dtype == np.float32
    assert np.isfinite(res.maps).all()
    assert np.abs(res.maps).max() > 0, "an all-zero map explains nothing"
    outs = any_model(x, training=False)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    expected = np.concatenate([np.reshape(o, (3, -1)) for o in outs], axis=1)
    np.testing.assert_allclose(res.prediction, expected, rtol=1e-4, atol=1e-5)
    assert res.signed == spec.signed and res.method == method
    if not res.signed:
        assert res.maps.min() >= -1e-6, "unsigned maps are >= 0"
    if spec.needs_conv:
        assert res.layer and res.layer in explainer.description
    # One frame in, one frame out; the graph is traced once for any batch size.
    one = explainer(x[1])
    np.testing.assert_allclose(one.prediction, res.prediction[1:2], rtol=1e-4, atol=1e-5)
    if method not in ("smoothgrad",):  # noise differs between calls
        np.testing.assert_allclose(one.maps[0], res.maps[1], rtol=1e-3, atol=1e-5 * np.abs(res.maps).max())
    assert explainer.tracing_count == 1


XLA_METHODS = [m for m in METHODS.names() if METHODS.get(m).load().xla_friendly]


@pytest.mark.parametrize("method", XLA_METHODS)
def test_default_xla_path_for_one_frame_matches_plain_graph(method, nested):
    x = inputs_for(nested, 3, seed=5)
    fast = make_explainer(nested, method)  # default: XLA for 1-2 frames, plain graph above
    plain = make_explainer(nested, method, jit_compile=False)
    a, b = fast(x[:1]), plain(x[:1])
    np.testing.assert_allclose(a.prediction, b.prediction, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(a.maps, b.maps, rtol=1e-3, atol=1e-4 * np.abs(b.maps).max())
    np.testing.assert_allclose(fast(x).maps, plain(x).maps, rtol=1e-5, atol=1e-7 * np.abs(b.maps).max())
    assert fast.tracing_count == 2  # plain graph at construction + its XLA twin, never per call


def test_prediction_and_target_per_frame(pilotnet):
    explainer = make_explainer(pilotnet, "gradcam", target="auto", jit_compile=False)
    res = explainer(inputs_for(pilotnet, 4))
    band = 5.0 / 30.0
    expected = tuple("right" if v > band else "left" if v < -band else "straight" for v in res.prediction[:, 0])
    assert res.target_per_frame == expected and res.target == "auto" and len(res) == 4


def test_auto_target_dead_band_and_degrees():
    import tensorflow as tf

    from carla_agent.saliency.targets import make_target

    y = np.array([0.5, -0.5, 0.1, -0.1], np.float32)
    auto = make_target("auto", max_steer_deg=30.0, deadband_deg=5.0)
    assert auto.per_frame(y) == ("right", "left", "straight", "straight")
    np.testing.assert_allclose(auto(tf.constant(y)).numpy(), [0.5, 0.5, -0.1, -0.1])
    wide = make_target("auto", max_steer_deg=10.0, deadband_deg=6.0)  # band 0.6 normalised
    assert wide.per_frame(y) == ("straight",) * 4
    with pytest.raises(UnknownNameError, match="auto, left, right, straight"):
        make_target("up")


def test_gradcam_targets_split_the_signed_cam(pilotnet):
    x = inputs_for(pilotnet, 2)
    cams = {t: make_explainer(pilotnet, "gradcam", target=t, jit_compile=False)(x).extras["cam"]
            for t in ("right", "left")}
    signed = make_explainer(pilotnet, "gradcam", signed=True, jit_compile=False)(x)
    assert signed.signed and signed.target == "right"
    np.testing.assert_allclose(cams["right"], np.maximum(signed.extras["cam"], 0), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(cams["left"], np.maximum(-signed.extras["cam"], 0), rtol=1e-4, atol=1e-7)


def test_gradcam_default_layer_is_deepest_with_4px(pilotnet, two_head):
    e = make_explainer(pilotnet, "gradcam")
    assert e.layer == "conv3" and "conv3" in e.description  # conv4 is 3x20, conv5 1x18
    assert make_explainer(two_head, "gradcam").layer == "c4"  # 6x8
    assert make_explainer(pilotnet, "gradcam", layer="conv5", jit_compile=False)(
        inputs_for(pilotnet, 1)).extras["cam"].shape == (1, 1, 18)


def test_receptive_field_geometry_read_from_the_model(pilotnet, same_pool):
    from carla_agent.saliency.model_view import ModelView

    view = ModelView.of(pilotnet)
    ay, ax = view.geometry(view.conv("conv3").feature.index)
    # conv1..3: 5x5 stride 2 'valid': centre of feature pixel i at 14 + 8 i.
    assert (ay.offset, ay.stride, ax.offset, ax.stride) == (14.0, 8.0, 14.0, 8.0)
    ry, _ = view.upsample_matrices(view.conv("conv3").feature.index)
    np.testing.assert_allclose(ry[14], np.eye(5)[0])
    np.testing.assert_allclose(ry[30], np.eye(5)[2])
    view = ModelView.of(same_pool)
    ay, _ = view.geometry(view.conv("s2").feature.index)  # same conv after a 2x2 max pool
    assert (ay.offset, ay.stride) == (0.5, 2.0)


def test_signed_gradient_and_ig_have_both_signs(pilotnet):
    x = inputs_for(pilotnet, 2)
    for name in ("gradient_signed", "integrated_gradients_signed"):
        res = make_explainer(pilotnet, name, jit_compile=False, **FAST.get(name, {}))(x)
        assert res.signed and res.maps.min() < 0 < res.maps.max()


def test_gradient_signed_is_the_channel_sum(two_head):
    import tensorflow as tf

    x = inputs_for(two_head, 2)
    res = make_explainer(two_head, "gradient_signed", output="throttle", jit_compile=False)(x)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = two_head(xt, training=False)[1][:, 0]
    g = tape.gradient(y, xt).numpy().sum(-1)
    np.testing.assert_allclose(res.maps, g, rtol=1e-4, atol=1e-6 * np.abs(g).max())


def test_integrated_gradients_completeness(same_pool):
    x = inputs_for(same_pool, 2)
    res = make_explainer(same_pool, "integrated_gradients_signed", steps=64, baseline="grey",
                         jit_compile=False)(x)
    base = np.asarray(same_pool(np.full_like(x, 128.0), training=False))[:, 0]
    delta = res.prediction[:, 0] - base
    np.testing.assert_allclose(res.extras["attribution_sum"], delta, rtol=0.05, atol=0.02 * np.abs(delta).max())
    np.testing.assert_allclose(res.maps.sum(axis=(1, 2)), res.extras["attribution_sum"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("baseline", ["black", "blurred", "mean", "grey"])
def test_integrated_gradients_baselines(baseline, nested):
    res = make_explainer(nested, "integrated_gradients", steps=3, baseline=baseline)(inputs_for(nested, 1))
    assert res.maps.max() > 0


def test_smoothgrad_without_noise_is_the_gradient(two_head):
    x = inputs_for(two_head, 2)
    sg = make_explainer(two_head, "smoothgrad", samples=3, noise_level=0.0, jit_compile=False)(x)
    g = make_explainer(two_head, "gradient", jit_compile=False)(x)
    np.testing.assert_allclose(sg.maps, g.maps, rtol=1e-4, atol=1e-7)


def test_layer_gradient_steps_through_layers(pilotnet):
    x = inputs_for(pilotnet, 1)
    maps = {k: make_explainer(pilotnet, "layer_gradient", layer=k, jit_compile=False)(x) for k in ("conv1", "conv5")}
    assert maps["conv1"].layer == "conv1" and maps["conv5"].target == "mean activation of conv5"
    # conv1's receptive field is 5x5: its mean activation ignores nothing, but a pixel's
    # influence on conv5 spreads wider, so the two maps differ.
    assert not np.allclose(maps["conv1"].maps, maps["conv5"].maps)


def test_occlusion_iterative_removes_the_strongest_window(pilotnet):
    res = make_explainer(pilotnet, "occlusion_iterative", window_px=(33,), stride_px=(33,))(inputs_for(pilotnet, 2))
    assert res.extras["iteration_maps"].shape == (2, 3, 66, 200)
    boxes = res.extras["boxes"]
    assert boxes.shape == (2, 3, 4)
    for frame in boxes:
        assert len({tuple(b) for b in frame}) == 3  # a window once occluded scores ~0 next round
    np.testing.assert_allclose(res.maps, res.extras["iteration_maps"].max(axis=1))


def test_occlusion_fills_and_several_windows(nested):
    x = inputs_for(nested, 1)
    maps = [make_explainer(nested, "occlusion", window_px=(16, 8), stride_px=(8, 6), fill=f)(x).maps
            for f in ("grey", "blur", "mean")]
    assert all(m.max() > 0 for m in maps) and not np.allclose(maps[0], maps[1])


def test_gradcam_multi_and_hypercolumns_layers(pilotnet):
    x = inputs_for(pilotnet, 1)
    multi = make_explainer(pilotnet, "gradcam_multi", layers=("conv2", "conv3"), jit_compile=False)(x)
    assert multi.layer == "conv2+conv3" and multi.extras["layer_maps"].shape == (1, 2, 66, 200)
    hc = make_explainer(pilotnet, "hypercolumns", layer="conv1,conv2", combine="mean", jit_compile=False)(x)
    assert hc.layer == "conv1+conv2" and 0 < hc.maps.max() <= 1.0 + 1e-6


def test_activations_extras(nested):
    res = make_explainer(nested, "activations", layer="conv2", all_layers=True, jit_compile=False)(
        inputs_for(nested, 1))
    assert res.layer == "backbone/conv2" and res.extras["features"].shape == (1, 17, 25, 8)
    assert {"features/backbone/conv1", "features/head_conv"} <= set(res.extras)


def test_nested_layer_names(nested):
    assert make_explainer(nested, "gradcam", layer="backbone/conv1").layer == "backbone/conv1"
    with pytest.raises(ModelError, match="backbone/conv1, backbone/conv2, head_conv"):
        make_explainer(nested, "gradcam", layer="conv9")


def test_steering_model_duck_type(two_head):
    from carla_agent.network.preprocess import Preprocessing

    class Wrapped:
        keras_model = two_head
        output_names = ("steer", "throttle")
        preprocessing = Preprocessing(height=120, width=160, color_space="rgb")

    e = make_explainer(Wrapped(), "gradient", output="throttle")
    assert e.output_name == "throttle" and e.output_names == ["steer", "throttle"]
    assert e.preprocessing is Wrapped.preprocessing


def test_size_agnostic_model_through_steering_model():
    import keras
    from keras import layers

    from carla_agent.network.preprocess import Preprocessing
    from carla_agent.network.steering_model import SteeringModel

    inp = keras.Input((None, None, 3))
    x = layers.Conv2D(4, 3, strides=2, activation="relu", name="fc_conv1")(inp)
    x = layers.Conv2D(4, 3, activation="relu", name="fc_conv2")(x)
    out = layers.Dense(1, name="steer")(layers.GlobalAveragePooling2D()(x))
    sm = SteeringModel(keras.Model(inp, out), preprocessing=Preprocessing(height=40, width=56, color_space="rgb"))
    for method in ("visual_backprop", "gradcam"):
        res = make_explainer(sm, method, jit_compile=False)(np.full((40, 56, 3), 100.0, np.float32))
        assert res.maps.shape == (1, 40, 56) and res.layer == "fc_conv2"
    with pytest.raises(ModelError, match="fixed"):
        make_explainer(sm.keras_model, "gradient")


def test_output_by_name_and_clear_errors(two_head, pilotnet):
    assert make_explainer(two_head, "gradient", output="throttle").output_name == "throttle"
    assert make_explainer(two_head, "gradient", output=-1).output_name == "throttle"
    with pytest.raises(ModelError, match=r"out of range.*2 output\(s\): 0 'steering', 1 'throttle'"):
        make_explainer(two_head, "gradient", output=2)
    with pytest.raises(ModelError, match="unknown output 'brake'"):
        make_explainer(two_head, "gradcam", output="brake")
    e = make_explainer(pilotnet, "gradient")
    with pytest.raises(ModelError, match=r"\(66, 200, 3\)"):
        e(np.zeros((120, 160, 3), np.float32))
    with pytest.raises(ModelError, match="Preprocessing"):
        e(np.zeros((2, 66, 200), np.float32))
    with pytest.raises(UnknownNameError, match="visual_backprop"):
        make_explainer(pilotnet, "saliency_magic")
    with pytest.raises(OptionError, match="samples"):
        make_explainer(pilotnet, "smoothgrad", sample=3)
    with pytest.raises(OptionError, match="does not use a layer"):
        make_explainer(pilotnet, "gradient", layer="conv1")


def test_no_conv_layer_error():
    import keras
    from keras import layers

    inp = keras.Input((16, 16, 3))
    out = layers.Dense(1, name="steer")(layers.Flatten()(inp))
    model = keras.Model(inp, out)
    for method in [m for m in METHODS.names() if METHODS.get(m).needs_conv]:
        with pytest.raises(ModelError, match="needs a 2-D conv layer"):
            make_explainer(model, method)
    assert make_explainer(model, "gradient")(np.ones((16, 16, 3), np.float32)).maps.shape == (1, 16, 16)
