"""VisualBackProp (Bojarski et al., arXiv 1611.05418).

1. Average each conv layer's feature maps (after the activation) over channels.
2. Start from the deepest averaged map; scale it up by a transposed convolution
   with an all-ones kernel, using that layer's kernel size, stride, dilation and
   padding (read from the model). An all-ones kernel is separable, so this runs
   as two small matrix products per layer.
3. Multiply pointwise with the next shallower averaged map.
4. Repeat down to the input size (pooling, zero-padding and cropping layers on
   the way are undone the same way).

It reuses the forward pass's activations and needs no gradient: the cost is a
few single-channel transposed convolutions. It never looks at the dense head,
so it cannot tell "pushes left" from "pushes right" and ignores the target.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np
import tensorflow as tf

from carla_agent.errors import ModelError
from carla_agent.saliency.base import Pass, SaliencyMethod
from carla_agent.saliency.geometry import interp_matrix, ones_transpose_matrix, shift_matrix
from carla_agent.saliency.layer_graph import LayerCall


def back_matrices(call: LayerCall) -> Tuple[np.ndarray, np.ndarray] | None:
    """``(Ty, Tx)`` taking a map at ``call``'s output size to its input size, or None for no change.

    Conv and pooling windows: transposed convolution with an all-ones kernel of the
    layer's kernel size, stride, dilation and padding (separable, so one matrix
    per axis). Zero-padding and cropping: shifts. A layer that changes the size
    in an unknown way: bilinear resize.
    """
    if call.kind in ("conv", "pool"):
        return tuple(ones_transpose_matrix(call.in_hw[a], call.out_hw[a], call.kernel[a], call.stride[a],
                                           call.dilation[a], call.padding) for a in (0, 1))
    if call.kind in ("pad", "crop"):
        sign = -1 if call.kind == "pad" else 1
        return tuple(shift_matrix(call.in_hw[a], call.out_hw[a], sign * call.offsets[a]) for a in (0, 1))
    if call.kind == "other" and call.in_hw != call.out_hw:
        return tuple(interp_matrix(call.in_hw[a], call.out_hw[a], "bilinear") for a in (0, 1))
    return None


class VisualBackProp(SaliencyMethod):
    """VisualBackProp from the deepest conv layer (or ``layer``) down to the input."""

    default_name = "visual_backprop"
    uses_target = False
    gradient = None

    def setup(self, layer: str | None) -> None:
        start = self.conv_or_default(layer)
        self.layer = start.name
        self.path: List[LayerCall] = self.view.path_to(start.feature.index)
        on_path = {c.index for c in self.path}
        self.feature_ids = {c.feature.index for c in self.view.convs if c.feature.index in on_path}
        for call in self.path:
            if call.kind == "other" and (call.in_shape is None or len(call.in_shape) != 3):
                raise ModelError(f"visual_backprop: layer {call.name!r} between the input and "
                                 f"{start.name!r} is not an image layer; cannot map back to pixels")
        self.back = [back_matrices(call) for call in self.path]

    def capture(self) -> Tuple[int, ...]:
        return tuple(sorted(self.feature_ids))

    def maps_from(self, p: Pass) -> Dict[str, tf.Tensor]:
        means = {i: tf.reduce_mean(f, axis=-1) for i, f in p.features.items()}
        path = self.path
        m = means[path[-1].index]
        for i in range(len(path) - 1, -1, -1):
            if self.back[i] is not None:
                ty, tx = self.back[i]
                m = tf.matmul(tf.matmul(tf.constant(ty)[None], m), tf.constant(tx.T)[None])
            if i > 0 and path[i - 1].index in self.feature_ids:
                m = m * means[path[i - 1].index]
        return {"maps": m}
