"""Model randomisation sanity check (Adebayo et al. 2018, "Sanity checks for saliency maps").

The weights of a clone of the model are replaced by random ones, layer by layer
from the head down (cascading). After each stage the method explains the same
images again; the new maps are compared with the original maps by Spearman
rank correlation and SSIM. A method whose maps do not change when the layers
that compute the output are random does not explain the output. VisualBackProp
uses only the conv layers' activations, so it cannot react to a randomised
dense head: the check shows it, by design.

Imports TensorFlow / Keras.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Tuple

import numpy as np

from carla_agent.faithfulness.similarity import spearman, ssim
from carla_agent.saliency import make_explainer
from carla_agent.saliency.model_view import unwrap_model


@dataclass(frozen=True, eq=False)
class RandomisationResult:
    """Attributes:
        layers: name of the layer randomised at each stage (stage k: the last k+1 weighted layers random).
        spearman: ``(K,)`` mean Spearman correlation with the original maps after each stage.
        ssim: ``(K,)`` mean SSIM with the original maps after each stage.
    """

    method: str
    layers: Tuple[str, ...]
    spearman: np.ndarray
    ssim: np.ndarray

    def after(self, layer: str) -> Tuple[float, float]:
        """``(spearman, ssim)`` once ``layer`` (and every layer above it) is random."""
        i = self.layers.index(layer)
        return float(self.spearman[i]), float(self.ssim[i])


def weighted_layers(model: Any) -> List[Any]:
    """Layers with weights, in model order, nested models flattened."""
    out = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            out += weighted_layers(layer)
        elif layer.weights:
            out.append(layer)
    return out


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


def model_randomisation(model: Any, method: str, images: np.ndarray, output: int | str = 0,
                        stages: int | None = None, seed: int = 0, original_maps: np.ndarray | None = None,
                        **options: Any) -> RandomisationResult:
    """Cascading randomisation from the head down.

    Args:
        model: ``keras.Model`` or ``SteeringModel`` (not modified: a clone is randomised).
        method: saliency method name (see :data:`carla_agent.saliency.METHODS`).
        images: ``(N, H, W, C)`` model inputs.
        output: output column to explain (index, or a name of the ``SteeringModel``).
        stages: how many layers to randomise (default: all weighted layers).
        original_maps: the method's maps on the original model, when already computed.
        **options: passed to :func:`~carla_agent.saliency.make_explainer`.
    """
    keras_model, names, _, _ = unwrap_model(model)
    col = output
    if isinstance(output, str):
        col = model.output_index(output) if hasattr(model, "output_index") else 0
    images = np.asarray(images, np.float32)
    if original_maps is None:
        original_maps = make_explainer(keras_model, method, output=col, **options)(images).maps
    rng = np.random.default_rng(seed)
    copy = clone(keras_model)
    layers = list(reversed(weighted_layers(copy)))
    layers = layers[: stages if stages is not None else len(layers)]
    rho, sim, done = [], [], []
    for layer in layers:
        randomise_layer(layer, rng)
        maps = make_explainer(copy, method, output=col, **options)(images).maps
        rho.append(np.mean([spearman(a, b) for a, b in zip(original_maps, maps)]))
        sim.append(np.mean([ssim(a, b) for a, b in zip(original_maps, maps)]))
        done.append(layer.name)
    return RandomisationResult(method, tuple(done), np.asarray(rho), np.asarray(sim))
