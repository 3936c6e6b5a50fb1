"""Grad-CAM on several conv layers at once, from one backward pass.

Each layer's CAM is scaled up to the input size, divided by its per-frame
maximum |value|, and the layers are averaged. Deep layers say *what* matters,
shallow layers say *where* exactly; the average shows both. ``extras['layer_maps']``
holds the per-layer maps ``(N, L, H, W)`` in the order of ``layers``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

import tensorflow as tf

from carla_agent.saliency.base import Pass, SaliencyMethod
from carla_agent.saliency.gradcam import DEFAULT_MIN_SIDE_PX, cam_from
from carla_agent.saliency.methods import OptionError, layer_names


@dataclass(frozen=True)
class GradCamMultiOptions:
    """Attributes:
        layers: conv layer names; empty = every conv layer whose map is at least
            ``min_side_px`` on each side (all conv layers if none is).
        min_side_px: [px] see ``layers``.
        signed: skip the ReLUs and explain the raw output.
    """

    layers: Tuple[str, ...] = ()
    min_side_px: int = DEFAULT_MIN_SIDE_PX
    signed: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", layer_names(self.layers))


class GradCamMulti(SaliencyMethod):
    """Grad-CAM on several layers, normalised per layer and averaged."""

    Options = GradCamMultiOptions
    default_name = "gradcam_multi"
    gradient = "features"

    def setup(self, layer: str | None) -> None:
        names = tuple(self.options.layers)
        if layer is not None:
            if names:
                raise OptionError("gradcam_multi: give either layer or layers, not both")
            names = layer_names(layer)
        convs = self.view.require_convs(self.method)
        if names:
            self.convs = [self.view.conv(n, self.method) for n in names]
        else:
            self.convs = [c for c in convs if min(c.shape[:2]) >= self.options.min_side_px] or convs
        self.layer = "+".join(c.name for c in self.convs)

    def capture(self) -> Tuple[int, ...]:
        return tuple(c.feature.index for c in self.convs)

    def maps_from(self, p: Pass) -> Dict[str, tf.Tensor]:
        ups = []
        for c in self.convs:
            i = c.feature.index
            up = self.to_input_size(cam_from(p.features[i], p.grads[i], self.signed), i)
            scale = tf.reduce_max(tf.abs(up), axis=(1, 2), keepdims=True)
            ups.append(up / tf.maximum(scale, 1e-12))
        stack = tf.stack(ups, axis=1)
        return {"maps": tf.reduce_mean(stack, axis=1), "layer_maps": stack}
