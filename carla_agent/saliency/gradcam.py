"""Grad-CAM for a steering regression (Selvaraju et al. 2017; jacobgil's steering variant).

``cam = relu(sum_k mean_ij(d score / d A_k) * A_k)`` on one conv layer's
post-activation tensor ``A``, where ``score`` is the target on the output
(``right`` = +steer, ``left`` = -steer, ``straight`` = -|steer|, ``auto`` picks one
per frame with a dead band). The default layer is the deepest conv layer whose
map is at least ``min_side_px`` on each side: on PilotNet the last conv layer is
1x18, a horizontal profile only, so the default there is conv3 (5x22).

The gradient stops at ``A``: the cost is the forward pass plus the backward pass
through the layers above ``A``. ``extras['cam']`` is the low-resolution map
(before up-sampling), the one to compare with other libraries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

import tensorflow as tf

from carla_agent.saliency.base import Pass, SaliencyMethod

DEFAULT_MIN_SIDE_PX = 4


@dataclass(frozen=True)
class GradCamOptions:
    """Attributes:
        min_side_px: [px] the default layer's map must be at least this big on each side.
        signed: skip the ReLU and explain the raw output (positive = pushes it up).
    """

    min_side_px: int = DEFAULT_MIN_SIDE_PX
    signed: bool = False


def cam_from(a: tf.Tensor, g: tf.Tensor, signed: bool) -> tf.Tensor:
    """``(N, h, w, C)`` activations and gradients -> ``(N, h, w)`` Grad-CAM."""
    weights = tf.reduce_mean(g, axis=(1, 2), keepdims=True)
    cam = tf.reduce_sum(a * weights, axis=-1)
    return cam if signed else tf.nn.relu(cam)


class GradCam(SaliencyMethod):
    """Grad-CAM on one conv layer."""

    Options = GradCamOptions
    default_name = "gradcam"
    gradient = "features"

    def setup(self, layer: str | None) -> None:
        self.conv = self.conv_or_default(layer, self.options.min_side_px)
        self.layer = self.conv.name

    def capture(self) -> Tuple[int, ...]:
        return (self.conv.feature.index,)

    def maps_from(self, p: Pass) -> Dict[str, tf.Tensor]:
        i = self.conv.feature.index
        cam = cam_from(p.features[i], p.grads[i], self.signed)
        return {"maps": self.to_input_size(cam, i), "cam": cam}
