"""Copies of a Keras model with some layers' weights replaced by noise.

For the model randomisation sanity check
(:mod:`carla_agent.faithfulness.randomisation`); kept here so that the measures
themselves import no Keras.
"""

from __future__ import annotations

from typing import Any, List

import numpy as np


def weighted_layers(model: Any) -> List[Any]:
    """Layers with weights, in model order, nested models flattened."""
    out = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            out += weighted_layers(layer)
        elif layer.weights and not _state_only(layer):
            out.append(layer)
    return out


def _state_only(layer: Any) -> bool:
    """A trainable layer all of whose weights are non-trainable holds state, not learned weights
    (the held command of a command-conditioned model): randomising it explains nothing."""
    return bool(layer.trainable) and not layer.trainable_weights


def clone(keras_model: Any) -> Any:
    """A copy of the model with its own weights."""
    import keras

    copy = keras.models.clone_model(keras_model)
    copy.set_weights(keras_model.get_weights())
    return copy


def randomise_layer(layer: Any, rng: np.random.Generator) -> None:
    """Replace each weight of ``layer`` by Gaussian noise with the original's standard deviation."""
    new = []
    for w in layer.get_weights():
        std = float(np.std(w)) or 0.05
        new.append(rng.normal(0.0, std, w.shape).astype(w.dtype))
    layer.set_weights(new)
