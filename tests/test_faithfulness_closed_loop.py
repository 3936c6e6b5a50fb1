"""Closed-loop causal test: the pixel blurring, the model wrapper, and a short drive on the shipped model."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import carla_agent
from carla_agent.faithfulness.closed_loop import MODES, MaskedModel, blur_top, closed_loop_test


def _images():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (2, 12, 20, 3)).astype(np.float32)


def test_blur_top_blurs_exactly_the_top_share():
    x = _images()
    maps = np.zeros(x.shape[:3])
    maps[:, :, :10] = 1 + np.arange(10)  # left half salient
    out = blur_top(x, maps, 0.5, np.random.default_rng(0))
    assert np.array_equal(out[:, :, 10:], x[:, :, 10:])
    assert not np.allclose(out[:, :, :10], x[:, :, :10])
    assert np.array_equal(blur_top(x, maps, 0.0, np.random.default_rng(0)), x)
    rand = blur_top(x, None, 0.25, np.random.default_rng(0))
    changed = np.any(rand != x, axis=-1).mean()
    assert 0.2 < changed <= 0.25


def test_masked_model_delegates_and_masks():
    x = _images()[0]
    inner = SimpleNamespace(preprocessing=lambda frame: x, steer_index=0, throttle_index=None)
    explain = lambda b: SimpleNamespace(maps=np.ones(b.shape[:3]))  # noqa: E731
    assert MaskedModel(inner, explain, 0.5, "clean").steer_index == 0
    assert np.array_equal(MaskedModel(inner, explain, 0.5, "clean").preprocessing(None), x)
    assert not np.array_equal(MaskedModel(inner, explain, 0.5, "salient").preprocessing(None), x)
    with pytest.raises(ValueError, match="clean, random, salient"):
        MaskedModel(inner, explain, 0.5, "nope")


def test_closed_loop_short_drive():
    from carla_agent.saliency import make_explainer
    from carla_agent.network.steering_model import SteeringModel

    model = SteeringModel.load(Path(carla_agent.__file__).parent / "models" / "pilotnet.keras")
    res = closed_loop_test(model, "gentle_curves", make_explainer(model, "gradient", output=model.steer_index),
                           share=0.2, duration_s=1.0)
    assert set(res) == set(MODES)
    assert all(np.isfinite(r.mean_abs_offset_m) for r in res.values())
