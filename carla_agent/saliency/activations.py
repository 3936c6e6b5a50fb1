"""Activation maps (a conv layer's feature maps) and first-layer filter images.

The ``activations`` method returns, for one conv layer (default: the first), the
channel-mean activation at input size as the map, and every channel
``(N, h, w, C)`` in ``extras['features']``; tile them with
:func:`carla_agent.saliency.grid.tile_channels`. With ``all_layers`` every conv
layer's features come back as ``extras['features/<layer>']``.

:func:`first_layer_filters` is not a per-frame map: it draws the kernels of the
first conv layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Tuple

import numpy as np
import tensorflow as tf

from carla_agent.errors import ModelError
from carla_agent.saliency.base import Pass, SaliencyMethod
from carla_agent.saliency.grid import tile_images
from carla_agent.saliency.model_view import ModelView, unwrap_model
from carla_agent.saliency.result import FilterImages


@dataclass(frozen=True)
class ActivationsOptions:
    """Attributes:
        all_layers: also return every conv layer's features as ``features/<layer>``.
    """

    all_layers: bool = False


class Activations(SaliencyMethod):
    """One conv layer's feature maps; the map is their mean at input size."""

    Options = ActivationsOptions
    default_name = "activations"
    uses_target = False

    def setup(self, layer: str | None) -> None:
        convs = self.view.require_convs(self.method)
        self.conv = self.view.conv(layer, self.method) if layer is not None else convs[0]
        self.layer = self.conv.name

    def capture(self) -> Tuple[int, ...]:
        if self.options.all_layers:
            return tuple(c.feature.index for c in self.view.convs)
        return (self.conv.feature.index,)

    def maps_from(self, p: Pass) -> Dict[str, tf.Tensor]:
        i = self.conv.feature.index
        out = {"maps": self.to_input_size(tf.reduce_mean(p.features[i], axis=-1), i), "features": p.features[i]}
        if self.options.all_layers:
            for c in self.view.convs:
                out[f"features/{c.name}"] = p.features[c.feature.index]
        return out


def first_layer_filters(model: Any, layer: str | None = None, cell_px: int = 24) -> FilterImages:
    """The kernels of the first (or the named) conv layer as images.

    Each filter is min-max scaled to [0, 1] on its own. Three-channel kernels are
    drawn as colour images in the model's channel order (RGB for an RGB model;
    for YUV the channels are Y, U, V); other channel counts are drawn per channel
    in grey, side by side.

    Args:
        model: ``keras.Model`` or ``SteeringModel``.
        layer: conv layer name (default: the first conv layer).
        cell_px: [px] size each filter is drawn at in the grid.
    """
    keras_model, names, _, shape = unwrap_model(model)
    view = ModelView.of(keras_model, names, shape)
    conv = view.conv(layer, "filters") if layer is not None else view.require_convs("filters")[0]
    kernel = getattr(conv.conv.layer, "kernel", None)
    if kernel is None:  # SeparableConv2D: the depthwise kernel is the spatial filter
        kernel = getattr(conv.conv.layer, "depthwise_kernel", None)
    if kernel is None:
        raise ModelError(f"filters: layer {conv.name!r} has no kernel")
    w = np.asarray(kernel.numpy() if hasattr(kernel, "numpy") else kernel, np.float32)  # (kh, kw, cin, cout)
    weights = np.transpose(w, (3, 0, 1, 2))
    lo = weights.min(axis=(1, 2, 3), keepdims=True)
    hi = weights.max(axis=(1, 2, 3), keepdims=True)
    images = (weights - lo) / np.maximum(hi - lo, 1e-12)
    if images.shape[-1] == 3:
        tiles = [np.round(im * 255).astype(np.uint8) for im in images]
    else:
        tiles = [np.repeat(np.round(np.concatenate(list(np.moveaxis(im, -1, 0)), axis=1) * 255)
                           .astype(np.uint8)[..., None], 3, axis=-1) for im in images]
    grid = tile_images(tiles, cell_px=cell_px)
    return FilterImages(weights=weights, images=images.astype(np.float32), layer=conv.name, grid=grid)
