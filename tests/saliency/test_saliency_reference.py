"""Agreement with established implementations and with direct slow computations.

- vanilla gradient vs tf-keras-vis ``Saliency`` (|g|, max over channels, min-max);
- Grad-CAM vs tf-keras-vis ``Gradcam`` on the low-resolution map (upsampling
  conventions differ), and after upsampling the same way (``zoom``);
- occlusion vs a direct loop over windows, one model call per occluded image;
- VisualBackProp vs a direct NumPy implementation of the published algorithm
  (explicit scatter loops), on 'valid' and 'same' padding, pooling and dilation.
"""

from __future__ import annotations

import numpy as np
import pytest

from carla_agent.saliency import make_explainer, normalize_frame

from saliency_models import build_same_pool, smooth_images

TOL = 1e-4  # after the same [0, 1] normalisation


def _inputs(model, n=2, seed=1):
    h, w, c = (int(d) for d in model.inputs[0].shape[1:])
    return smooth_images(n, (h, w), c, seed)


def _scores(model, index):
    from tf_keras_vis.utils.scores import InactiveScore

    n = len(model.outputs)
    return [(lambda o: o[:, 0]) if i == index else InactiveScore() for i in range(n)] if n > 1 \
        else (lambda o: o[:, 0])


@pytest.mark.parametrize("model_name,output", [("pilotnet", 0), ("two_head", 1), ("nested", 0)])
def test_gradient_matches_tf_keras_vis_saliency(model_name, output, request):
    from tf_keras_vis.saliency import Saliency

    model = request.getfixturevalue(model_name)
    x = _inputs(model)
    ours = make_explainer(model, "gradient", output=output, target="right", jit_compile=False)(x)
    # |g|, max over channels. tf-keras-vis' own min-max adds epsilon 1e-7 to the range, which is
    # not negligible for gradients of 1e-4, so both maps get the same normalisation here.
    theirs = Saliency(model, clone=False)(_scores(model, output), x, normalize_map=False)
    np.testing.assert_allclose(ours.maps, theirs, rtol=1e-4, atol=1e-6 * theirs.max())
    np.testing.assert_allclose(normalize_frame(ours.maps), normalize_frame(theirs), atol=TOL)


@pytest.mark.parametrize("model_name,layer,output", [("pilotnet", "conv3", 0), ("two_head", "c3", 1),
                                                     ("same_pool", "s2", 0)])
def test_gradcam_matches_tf_keras_vis_gradcam(model_name, layer, output, request):
    from tf_keras_vis.gradcam import Gradcam

    model = request.getfixturevalue(model_name)
    x = _inputs(model)
    # Both on the post-activation tensor (tf-keras-vis would otherwise seek back to the conv).
    penultimate = {"c3": "c3_relu", "s2": "s2_act"}.get(layer, layer)
    gradcam = Gradcam(model, clone=False)
    kw = dict(penultimate_layer=penultimate, seek_penultimate_conv_layer=False)
    theirs = gradcam(_scores(model, output), x, expand_cam=False, normalize_cam=False, **kw)
    ours = make_explainer(model, "gradcam", output=output, target="right", layer=layer, jit_compile=False)(x)
    np.testing.assert_allclose(ours.extras["cam"], theirs, rtol=1e-4, atol=1e-5 * np.abs(theirs).max())
    # Upsampled the same way (corner-aligned, as scipy.ndimage.zoom order 1), then normalised.
    zoom = make_explainer(model, "gradcam", output=output, target="right", layer=layer, upsample="zoom",
                          jit_compile=False)(x)
    full = gradcam(_scores(model, output), x, normalize_cam=False, **kw)
    np.testing.assert_allclose(normalize_frame(zoom.maps), normalize_frame(full), atol=TOL)


def test_occlusion_matches_a_slow_loop(two_head):
    from carla_agent.saliency.geometry import window_anchors

    x = _inputs(two_head, 2)
    sizes, strides = (40, 25), (30, 20)  # 120 = 3*30+30 misses no row; 160 needs a moved last window
    res = make_explainer(two_head, "occlusion", output="throttle", target="right", window_px=sizes,
                         stride_px=strides, chunk=37)(x)
    h, w = x.shape[1:3]
    expected = np.zeros((2, h, w))
    count = np.zeros((h, w))
    base = np.asarray(two_head(x, training=False)[1])[:, 0]
    for size, stride in zip(sizes, strides):
        for top in window_anchors(h, size, stride):
            for left in window_anchors(w, size, stride):
                occluded = x.copy()
                occluded[:, top:top + size, left:left + size] = 128.0
                y = np.asarray(two_head(occluded, training=False)[1])[:, 0]
                expected[:, top:top + size, left:left + size] += np.abs(base - y)[:, None, None]
                count[top:top + size, left:left + size] += 1
    assert count.min() >= 1, "every pixel, the last rows and columns too, is covered"
    np.testing.assert_allclose(res.maps, expected / count, rtol=1e-3, atol=1e-6)
    assert window_anchors(160, 25, 20)[-1] == 135 and window_anchors(120, 40, 30) == [0, 30, 60, 80]


def test_signed_occlusion_sign(pilotnet):
    x = _inputs(pilotnet, 1)
    kw = dict(window_px=(22,), stride_px=(22,))  # windows overlap only in the last columns
    signed = make_explainer(pilotnet, "occlusion", signed=True, **kw)(x).maps[..., :176]
    plain = make_explainer(pilotnet, "occlusion", target="right", **kw)(x).maps[..., :176]
    np.testing.assert_allclose(np.abs(signed), plain, rtol=1e-5, atol=1e-7)
    assert signed.min() < 0 < signed.max()


# -- VisualBackProp: the published algorithm, written out with loops ----------------
def _pad_before(n_in, n_out, k, s, d, padding):
    if padding != "same":
        return 0
    return max((n_out - 1) * s + (k - 1) * d + 1 - n_in, 0) // 2


def _deconv_ones(m, in_hw, k, s, d, padding):
    """Transposed conv with an all-ones kernel, by scattering each value over its window."""
    out = np.zeros(in_hw)
    pt = _pad_before(in_hw[0], m.shape[0], k[0], s[0], d[0], padding)
    pl = _pad_before(in_hw[1], m.shape[1], k[1], s[1], d[1], padding)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            for a in range(k[0]):
                for b in range(k[1]):
                    r, c = i * s[0] - pt + a * d[0], j * s[1] - pl + b * d[1]
                    if 0 <= r < in_hw[0] and 0 <= c < in_hw[1]:
                        out[r, c] += m[i, j]
    return out


def numpy_visual_backprop(model, x, spatial_layers, feature_layers):
    """Bojarski et al.: mean maps, all-ones transposed convs from the deepest down, pointwise products.

    spatial_layers: names of the conv/pool layers from the input up (each is undone);
    feature_layers: for each conv layer in spatial_layers, the layer giving its
        post-activation map (None for pooling layers).
    """
    import keras

    names = list(spatial_layers) + [f for f in feature_layers if f]
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    acts = dict(zip(names, [np.asarray(a)[0] for a in probe(x[None], training=False)]))
    layers = [model.get_layer(n) for n in spatial_layers]
    m = acts[feature_layers[-1]].mean(-1)
    for idx in range(len(layers) - 1, -1, -1):
        layer = layers[idx]
        in_hw = tuple(layer.input.shape[1:3])
        if hasattr(layer, "kernel_size"):
            k, s, d = layer.kernel_size, layer.strides, layer.dilation_rate
        else:
            k, s, d = layer.pool_size, layer.strides, (1, 1)
        m = _deconv_ones(m, in_hw, k, s, d, layer.padding)
        below = feature_layers[idx - 1] if idx > 0 else None
        if below:
            m = m * acts[below].mean(-1)
    return m


@pytest.mark.parametrize("case", ["valid", "same", "same_pool"])
def test_visual_backprop_matches_numpy(case, pilotnet):
    if case == "valid":
        model = pilotnet
        spatial = feature = [f"conv{i}" for i in range(1, 6)]
    elif case == "same":
        model = build_same_pool(seed=11, pooling=False)
        spatial = ["s1", "s1b", "s2", "s3", "s4"]
        feature = ["s1", "s1b", "s2_act", "s3", "s4"]
    else:
        model = build_same_pool(seed=12)
        spatial = ["s1", "pool1", "s2", "pool2", "s3", "s4"]
        feature = ["s1", None, "s2_act", None, "s3", "s4"]
    x = _inputs(model, 2, seed=3)
    res = make_explainer(model, "visual_backprop", jit_compile=False)(x)
    for i in range(2):
        ref = numpy_visual_backprop(model, x[i], spatial, feature)
        assert ref.max() > 0
        np.testing.assert_allclose(normalize_frame(res.maps[i]), normalize_frame(ref), atol=TOL)
        np.testing.assert_allclose(res.maps[i], ref, rtol=1e-3, atol=1e-5 * ref.max())
