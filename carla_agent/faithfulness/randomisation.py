"""Model randomisation sanity check (Adebayo et al. 2018, "Sanity checks for saliency maps").

The weights of a clone of the model are replaced by random ones, layer by layer
from the head down (cascading). After each stage the method explains the same
images again; the new maps are compared with the original maps by Spearman
rank correlation and SSIM. A method whose maps do not change when the layers
that compute the output are random does not explain the output. VisualBackProp
uses only the conv layers' activations, so it cannot react to a randomised
dense head: the check shows it, by design.

The Keras side (cloning, randomising a layer) is :mod:`carla_agent.network.randomise`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Tuple

import numpy as np

from carla_agent.faithfulness.similarity import spearman, ssim
from carla_agent.network.randomise import clone, randomise_layer, weighted_layers
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
