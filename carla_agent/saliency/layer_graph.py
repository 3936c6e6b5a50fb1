"""A Keras model's layer calls, flattened: :class:`LayerCall` and the runner that enumerates them.

:class:`~carla_agent.saliency.model_view.ModelView` runs a model through :class:`_Runner`, which
goes inside nested models and reports every layer call in execution order; :func:`_classify` says
what each call does to the spatial grid (conv, pool, pad, crop, activation, size-preserving).

This module imports TensorFlow and Keras.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Tuple

import keras
import tensorflow as tf
from keras import layers as L

from carla_agent.errors import ModelError

CONV_TYPES = (L.Conv2D, L.DepthwiseConv2D, L.SeparableConv2D)
POOL_TYPES = (L.MaxPooling2D, L.AveragePooling2D)
ACTIVATION_TYPES = (L.Activation, L.ReLU, L.LeakyReLU, L.ELU, L.PReLU)
# Element-wise layers that may sit between a conv and its activation.
PASS_TYPES = (L.BatchNormalization, L.LayerNormalization, L.Dropout, L.SpatialDropout2D,
              L.GaussianNoise, L.GaussianDropout, L.Rescaling)

INPUT = -1  # producer index of the model input


@dataclass(frozen=True)
class LayerCall:
    """One layer call in the flattened graph, in execution order.

    Attributes:
        index: position in the call order (stable across runs).
        name: path name, ``outer/inner`` for layers of nested models.
        layer: the Keras layer or operation.
        kind: ``conv``, ``pool``, ``pad``, ``crop``, ``activation``, ``same``
            (spatial size unchanged) or ``other``.
        producers: indices of the calls producing the inputs (``-1`` = model input).
        in_shape, out_shape: first input / output shape without the batch axis.
        kernel, stride, dilation: (rows, cols) for conv and pooling windows.
        padding: ``valid`` or ``same`` for windows.
        offsets: ``(top, left)`` pixels added (pad) or removed (crop).
    """

    index: int
    name: str
    layer: Any
    kind: str
    producers: Tuple[int, ...]
    in_shape: Tuple[int, ...] | None
    out_shape: Tuple[int, ...] | None
    kernel: Tuple[int, int] = (1, 1)
    stride: Tuple[int, int] = (1, 1)
    dilation: Tuple[int, int] = (1, 1)
    padding: str = "valid"
    offsets: Tuple[int, int] = (0, 0)

    @property
    def spatial(self) -> bool:
        return self.kind in ("conv", "pool", "pad", "crop")

    @property
    def in_hw(self) -> Tuple[int, int]:
        return tuple(self.in_shape[:2])  # type: ignore[index]

    @property
    def out_hw(self) -> Tuple[int, int]:
        return tuple(self.out_shape[:2])  # type: ignore[index]


def _is_graph_model(op: Any) -> bool:
    return isinstance(op, keras.Sequential) or (isinstance(op, keras.Model) and hasattr(op, "_nodes_by_depth"))


def _flat(x: Any) -> List[Any]:
    return [t for t in tf.nest.flatten(x) if t is not None]


class _Runner:
    """Runs a Keras model layer by layer, inside nested models, calling ``hook`` after each layer."""

    def __init__(self, hook: Callable[[int, str, Any, tuple, Any], None]) -> None:
        self.hook = hook
        self.count = 0

    def run(self, model: Any, inputs: List[Any], prefix: str = "") -> Any:
        if isinstance(model, keras.Sequential):
            functional = getattr(model, "_functional", None)
            if functional is None:
                x = inputs[0]
                for layer in model.layers:
                    x = self.call(layer, prefix, x)
                return x
            model = functional
        out = model._run_through_graph(
            list(inputs), operation_fn=lambda op: functools.partial(self.call, op, prefix))
        if isinstance(out, (list, tuple)) and len(out) == 1:
            out = out[0]
        return out

    def call(self, op: Any, prefix: str, *args: Any, **kwargs: Any) -> Any:
        if _is_graph_model(op):
            return self.run(op, _flat(args), f"{prefix}{op.name}/")
        if getattr(op, "_call_has_training_arg", False):
            kwargs["training"] = False
        out = op(*args, **kwargs)
        index = self.count
        self.count += 1
        self.hook(index, f"{prefix}{op.name}", op, args, out)
        return out


def _pair(v: Any) -> Tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    return (int(v[0]), int(v[1]))


def _shape(t: Any) -> Tuple[int, ...] | None:
    shape = getattr(t, "shape", None)
    return None if shape is None else tuple(int(d) for d in shape[1:])


def _classify(layer: Any, in_shape, out_shape) -> Dict[str, Any]:
    if getattr(layer, "data_format", "channels_last") != "channels_last" and isinstance(
            layer, CONV_TYPES + POOL_TYPES):
        raise ModelError(f"layer {layer.name!r} uses data_format='channels_first'; "
                         "the saliency engine needs channels_last (NHWC) models")
    if isinstance(layer, CONV_TYPES):
        return dict(kind="conv", kernel=_pair(layer.kernel_size), stride=_pair(layer.strides),
                    dilation=_pair(layer.dilation_rate), padding=str(layer.padding).lower())
    if isinstance(layer, POOL_TYPES):
        return dict(kind="pool", kernel=_pair(layer.pool_size), stride=_pair(layer.strides),
                    padding=str(layer.padding).lower())
    if isinstance(layer, L.ZeroPadding2D):
        (t, _b), (left, _r) = layer.padding
        return dict(kind="pad", offsets=(int(t), int(left)))
    if isinstance(layer, L.Cropping2D):
        (t, _b), (left, _r) = layer.cropping
        return dict(kind="crop", offsets=(int(t), int(left)))
    if isinstance(layer, ACTIVATION_TYPES):
        return dict(kind="activation")
    if in_shape is not None and out_shape is not None and len(in_shape) == 3 and len(out_shape) == 3 \
            and in_shape[:2] == out_shape[:2]:
        return dict(kind="same")
    return dict(kind="other")


def _has_activation(layer: Any) -> bool:
    act = getattr(layer, "activation", None)
    return act is not None and getattr(act, "__name__", "") != "linear"
