"""Per-layer gradient saliency, as keras-vis ``visualize_saliency(model, layer_idx)`` on DAVE-2.

The map is ``max over channels of |d mean activation of layer k / d pixel|``: what
in the image drives layer k as a whole. Stepping ``layer`` from conv1 to the last
conv layer (and then the ``gradient`` method for the output) walks through the
network. The target is not used.
"""

from __future__ import annotations

from typing import Dict, Tuple

import tensorflow as tf

from carla_agent.saliency.base import Pass, SaliencyMethod


class LayerGradient(SaliencyMethod):
    """Gradient of a conv layer's mean activation (default: the deepest conv layer)."""

    default_name = "layer_gradient"
    gradient = "input"
    uses_target = False

    def setup(self, layer: str | None) -> None:
        self.conv = self.conv_or_default(layer)
        self.layer = self.conv.name

    def capture(self) -> Tuple[int, ...]:
        return (self.conv.feature.index,)

    def score(self, prediction, features) -> tf.Tensor:
        return tf.reduce_mean(features[self.conv.feature.index], axis=(1, 2, 3))

    def maps_from(self, p: Pass) -> Dict[str, tf.Tensor]:
        return {"maps": self.reduce_channels(p.grads)}

    @property
    def target_label(self) -> str:
        return f"mean activation of {self.layer}"
