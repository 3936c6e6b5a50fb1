"""Hypercolumns: each conv layer's mean activation at input size, combined over layers.

Each chosen layer's channel-mean is scaled up to the input size (each feature
pixel at its receptive-field centre), then the layers are multiplied
(``product``, a smooth relative of VisualBackProp) or, each divided by its
per-frame maximum, averaged (``mean``). No gradient, no target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

import tensorflow as tf

from carla_agent.saliency.base import Pass, SaliencyMethod
from carla_agent.saliency.methods import OptionError, layer_names


@dataclass(frozen=True)
class HypercolumnsOptions:
    """Attributes:
        layers: conv layer names; empty = all conv layers.
        combine: ``product`` or ``mean``.
    """

    layers: Tuple[str, ...] = ()
    combine: str = "product"

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", layer_names(self.layers))
        if self.combine not in ("product", "mean"):
            raise ValueError(f"combine must be product or mean, got {self.combine!r}")


class Hypercolumns(SaliencyMethod):
    """Up-sampled mean activations of several conv layers, multiplied or averaged."""

    Options = HypercolumnsOptions
    default_name = "hypercolumns"
    uses_target = False

    def setup(self, layer: str | None) -> None:
        names = tuple(self.options.layers)
        if layer is not None:
            if names:
                raise OptionError("hypercolumns: give either layer or layers, not both")
            names = layer_names(layer)
        convs = self.view.require_convs(self.method)
        self.convs = [self.view.conv(n, self.method) for n in names] if names else list(convs)
        self.layer = "+".join(c.name for c in self.convs)

    def capture(self) -> Tuple[int, ...]:
        return tuple(c.feature.index for c in self.convs)

    def maps_from(self, p: Pass) -> Dict[str, tf.Tensor]:
        ups = [self.to_input_size(tf.reduce_mean(p.features[c.feature.index], axis=-1), c.feature.index)
               for c in self.convs]
        if self.options.combine == "product":
            out = ups[0]
            for u in ups[1:]:
                out = out * u
            return {"maps": out}
        ups = [u / tf.maximum(tf.reduce_max(tf.abs(u), axis=(1, 2), keepdims=True), 1e-12) for u in ups]
        return {"maps": tf.add_n(ups) / len(ups)}
