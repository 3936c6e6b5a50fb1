"""A flattened view of a Keras CNN: its input, output columns, conv layers and geometry.

Everything a saliency method needs is read from the model, never hard-coded:
the input size, the output columns and their names, every 2-D conv layer
(kernel, stride, dilation, padding) and the tensor after its activation, and
where each feature pixel sits in the input.

Nested models (a Sequential or Functional model used as a layer of another)
are flattened: :meth:`ModelView.forward` runs the graph layer by layer, going
inside nested models, and hands back any intermediate tensor from the same
forward pass that produces the prediction. Layer names inside nested models
are ``outer/inner`` paths; a unique last part (``conv3``) is accepted too.

This module imports TensorFlow and Keras.
"""

from __future__ import annotations

import copy
import weakref
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from carla_agent.errors import ModelError
from carla_agent.saliency.geometry import AxisMap, interp_matrix
from carla_agent.saliency.layer_graph import (INPUT, PASS_TYPES, LayerCall, _classify, _flat, _has_activation,
                                              _is_graph_model, _Runner, _shape)

@dataclass(frozen=True)
class ConvLayer:
    """A 2-D conv layer and the tensor saliency methods read from it.

    Attributes:
        name: the conv layer's path name.
        conv: the conv call.
        feature: the call whose output is used: the conv itself when it has a
            built-in activation, else the activation layer that follows it
            (through batch norm / dropout), else the conv's linear output.
        shape: ``(h, w, channels)`` of the feature tensor.
    """

    name: str
    conv: LayerCall
    feature: LayerCall

    @property
    def shape(self) -> Tuple[int, int, int]:
        return tuple(self.feature.out_shape)  # type: ignore[return-value]

    def describe(self) -> str:
        h, w, c = self.shape
        return f"{self.name} ({h}x{w}x{c})"


_VIEWS: "weakref.WeakKeyDictionary[Any, ModelView]" = weakref.WeakKeyDictionary()


class ModelView:
    """Read-only facts about one Keras model, plus a forward pass that exposes intermediates.

    Build with :meth:`of` (cached per model). Raises
    :class:`~carla_agent.errors.ModelError` for models it cannot explain.
    """

    def __init__(self, model: Any, output_names: Sequence[str] | None = None,
                 input_shape: Sequence[int] | None = None) -> None:
        # Copies made by :meth:`of` share calls, convs and geometry; only the output names differ.
        if not isinstance(model, keras.Model):
            raise ModelError(f"expected a keras.Model (or an object with .keras_model), got {type(model).__name__}")
        self.model = model
        inputs = getattr(model, "inputs", None)
        if not inputs:
            raise ModelError(f"model {model.name!r} has no defined inputs; build it with keras.Input "
                             "or call it once on a batch before explaining it")
        if len(inputs) != 1:
            raise ModelError(f"model {model.name!r} has {len(inputs)} inputs; the saliency engine explains models "
                             "with one image input (a model with a 'command' input: pass SteeringModel(model), "
                             "whose set_command picks the branch explained)")
        shape = tuple(inputs[0].shape[1:])
        if input_shape is not None and len(shape) == 3:  # a size-agnostic model at a given size
            shape = tuple(d if d is not None else int(g) for d, g in zip(shape, input_shape))
        if len(shape) != 3 or any(d is None for d in shape):
            raise ModelError(f"model {model.name!r} takes input of shape {shape}; the saliency engine "
                             "needs a fixed (height, width, channels) image input (or a SteeringModel, "
                             "whose preprocessing fixes the size)")
        self.input_shape: Tuple[int, int, int] = tuple(int(d) for d in shape)  # type: ignore[assignment]
        self.opaque = not _is_graph_model(model)
        self.calls: List[LayerCall] = []
        self._probe()
        self.output_names: List[str] = self._column_names(output_names)
        self.convs: List[ConvLayer] = self._find_convs()
        self._geometry: Dict[int, Tuple[AxisMap, AxisMap] | None] = {INPUT: (AxisMap(), AxisMap())}

    @classmethod
    def of(cls, model: Any, output_names: Sequence[str] | None = None,
           input_shape: Sequence[int] | None = None, only_convs: Iterable[str] | None = None) -> "ModelView":
        """The view of ``model`` (cached while the model lives), with ``output_names`` if given;
        with ``only_convs``, a view whose conv layers are those named (the trunk a branch reads)."""
        view = cls._of(model, output_names, input_shape)
        if only_convs is not None:
            keep = set(only_convs)
            view = copy.copy(view)
            view.convs = [c for c in view.convs if c.name in keep]
        return view

    @classmethod
    def _of(cls, model: Any, output_names: Sequence[str] | None, input_shape: Sequence[int] | None) -> "ModelView":
        try:
            view = _VIEWS.get(model)
        except TypeError:  # not weak-referenceable: no cache
            return cls(model, output_names, input_shape)
        if view is None or (input_shape is not None and tuple(input_shape) != view.input_shape):
            view = cls(model, input_shape=input_shape)
            if view.input_shape == tuple(int(d) if d is not None else -1 for d in model.inputs[0].shape[1:]):
                _VIEWS[model] = view  # cache only the model's own fixed size
        if output_names is not None and len(output_names) == view.n_outputs \
                and list(output_names) != view.output_names:
            view = copy.copy(view)
            view.output_names = [str(n) for n in output_names]
        return view

    # -- building ---------------------------------------------------------------
    def _probe(self) -> None:
        """Run the model once eagerly on zeros, recording every layer call."""
        x = tf.zeros((1,) + self.input_shape, tf.float32)
        producer: Dict[int, int] = {id(x): INPUT}
        keep: List[Any] = [x]  # keep tensors alive so ids stay unique

        def hook(index, name, layer, args, out):
            ins = [t for t in _flat(args) if hasattr(t, "shape")]
            producers = tuple(producer.get(id(t), INPUT if t is x else -2) for t in ins)
            in_shape = _shape(ins[0]) if ins else None
            outs = _flat(out)
            out_shape = _shape(outs[0]) if outs else None
            for t in outs:
                producer[id(t)] = index
            keep.extend(outs)
            info = _classify(layer, in_shape, out_shape)
            self.calls.append(LayerCall(index, name, layer, producers=producers, in_shape=in_shape,
                                        out_shape=out_shape, **info))

        if self.opaque:
            out = self.model(x, training=False)
        else:
            out = _Runner(hook).run(self.model, [x])
        self._probe_outputs = [tuple(int(d) for d in t.shape[1:]) for t in _flat(out)]

    def _column_names(self, given: Sequence[str] | None) -> List[str]:
        heads = list(getattr(self.model, "output_names", None) or [])
        if len(heads) != len(self._probe_outputs):
            heads = [f"output_{i}" for i in range(len(self._probe_outputs))]
        names: List[str] = []
        for head, shape in zip(heads, self._probe_outputs):
            units = int(np.prod(shape)) if shape else 1
            names.extend([head] if units == 1 else [f"{head}_{i}" for i in range(units)])
        if given is not None:
            given = [str(n) for n in given]
            if len(given) == len(names):
                return given
        return names

    def _consumers(self, index: int) -> List[LayerCall]:
        return [c for c in self.calls if index in c.producers]

    def _find_convs(self) -> List[ConvLayer]:
        convs = []
        for call in self.calls:
            if call.kind != "conv":
                continue
            feature = call
            if not _has_activation(call.layer):
                cur = call
                while True:
                    nxt = self._consumers(cur.index)
                    if len(nxt) != 1:
                        break
                    cur = nxt[0]
                    if cur.kind == "activation":
                        feature = cur
                        break
                    if not isinstance(cur.layer, PASS_TYPES):
                        break
            convs.append(ConvLayer(call.name, call, feature))
        return convs

    # -- lookup -------------------------------------------------------------------
    @property
    def n_outputs(self) -> int:
        return len(self.output_names)

    def output_index(self, output: int | str) -> int:
        """Column index of ``output`` (an int or a name); ModelError listing the valid ones."""
        listing = ", ".join(f"{i} {n!r}" for i, n in enumerate(self.output_names))
        if isinstance(output, (int, np.integer)) and not isinstance(output, bool):
            i = int(output)
            if -self.n_outputs <= i < self.n_outputs:
                return i % self.n_outputs
            raise ModelError(f"output index {i} is out of range: the model has {self.n_outputs} "
                             f"output(s): {listing}")
        if isinstance(output, str):
            if output in self.output_names:
                return self.output_names.index(output)
            if output.lstrip("-").isdigit():
                return self.output_index(int(output))
        raise ModelError(f"unknown output {output!r}: the model has {self.n_outputs} output(s): {listing}")

    def require_convs(self, method: str) -> List[ConvLayer]:
        if not self.convs:
            why = (" (it is a subclassed model, whose layers cannot be reached; "
                   "rebuild it as a Functional or Sequential model)") if self.opaque else ""
            raise ModelError(f"{method} needs a 2-D conv layer, but model {self.model.name!r} has none{why}; "
                             "use a gradient, smoothgrad, integrated_gradients or occlusion method instead")
        return self.convs

    def conv(self, name: str, method: str = "this method") -> ConvLayer:
        """The conv layer called ``name`` (full path or unique last part)."""
        convs = self.require_convs(method)
        hits = [c for c in convs if c.name == name]
        if not hits:
            hits = [c for c in convs if c.name.split("/")[-1] == name]
        if len(hits) == 1:
            return hits[0]
        known = ", ".join(c.name for c in convs)
        if not hits:
            raise ModelError(f"{method}: no conv layer named {name!r}; conv layers: {known}")
        raise ModelError(f"{method}: layer name {name!r} is ambiguous; use one of: {known}")

    def deepest_conv(self, min_side: int = 1, method: str = "this method") -> ConvLayer:
        """The deepest conv layer whose feature map is at least ``min_side`` px on each side."""
        convs = self.require_convs(method)
        ok = [c for c in convs if min(c.shape[:2]) >= min_side]
        return (ok or convs)[-1]

    # -- geometry -------------------------------------------------------------------
    def path_to(self, index: int) -> List[LayerCall]:
        """Calls from the model input to call ``index``, following each call's first input."""
        path = []
        cur = index
        while cur != INPUT:
            if cur < 0 or cur >= len(self.calls):
                raise ModelError(f"cannot trace layer {self.calls[index].name!r} back to the model input")
            call = self.calls[cur]
            path.append(call)
            if not call.producers:
                raise ModelError(f"cannot trace layer {self.calls[index].name!r} back to the model input")
            cur = call.producers[0]
        return path[::-1]

    def geometry(self, index: int) -> Tuple[AxisMap, AxisMap] | None:
        """Receptive-field centres of call ``index``'s output, or None when a layer hides them."""
        if index in self._geometry:
            return self._geometry[index]
        call = self.calls[index]
        prev = self.geometry(call.producers[0]) if call.producers and call.producers[0] >= INPUT else None
        geo: Tuple[AxisMap, AxisMap] | None = None
        if prev is not None:
            ay, ax = prev
            if call.kind in ("conv", "pool"):
                geo = (ay.then_window(call.in_hw[0], call.out_hw[0], call.kernel[0], call.stride[0],
                                      call.dilation[0], call.padding),
                       ax.then_window(call.in_hw[1], call.out_hw[1], call.kernel[1], call.stride[1],
                                      call.dilation[1], call.padding))
            elif call.kind == "pad":
                geo = (ay.shifted(-call.offsets[0]), ax.shifted(-call.offsets[1]))
            elif call.kind == "crop":
                geo = (ay.shifted(call.offsets[0]), ax.shifted(call.offsets[1]))
            elif call.kind in ("activation", "same"):
                geo = prev
        self._geometry[index] = geo
        return geo

    def upsample_matrices(self, index: int, mode: str = "receptive") -> Tuple[np.ndarray, np.ndarray]:
        """``(H, h)`` and ``(W, w)`` matrices taking call ``index``'s map to input size."""
        h, w = self.calls[index].out_hw
        H, W = self.input_shape[:2]
        geo = self.geometry(index) if mode == "receptive" else None
        if mode == "receptive" and geo is None:
            mode = "bilinear"  # a layer with unknown geometry on the way: plain resize
        ay, ax = geo if geo is not None else (None, None)
        return interp_matrix(H, h, mode, ay), interp_matrix(W, w, mode, ax)

    # -- running ---------------------------------------------------------------------
    def forward(self, x: tf.Tensor, capture: Iterable[int] = (), tape: tf.GradientTape | None = None
                ) -> Tuple[tf.Tensor, Dict[int, tf.Tensor]]:
        """One inference pass: ``(prediction (N, n_outputs), {call index: output tensor})``.

        When ``tape`` is given, each captured tensor is watched the moment it is
        made, so gradients with respect to it stop there instead of running on to
        the input.
        """
        wanted = set(capture)
        feats: Dict[int, tf.Tensor] = {}

        def hook(index, name, layer, args, out):
            if index in wanted:
                if tape is not None:
                    tape.watch(out)
                feats[index] = out

        if self.opaque:
            if wanted:
                raise ModelError(f"model {self.model.name!r} is a subclassed model; its layers cannot be reached")
            out = self.model(x, training=False)
        else:
            out = _Runner(hook).run(self.model, [x])
        n = tf.shape(x)[0]
        cols = [tf.reshape(tf.cast(t, tf.float32), (n, -1)) for t in _flat(out)]
        pred = cols[0] if len(cols) == 1 else tf.concat(cols, axis=1)
        return pred, feats

    def check_images(self, images: Any) -> np.ndarray:
        """``(H, W, C)`` or ``(N, H, W, C)`` images -> contiguous float32 ``(N, H, W, C)``."""
        x = np.asarray(images)
        if x.ndim == 3:
            x = x[None]
        H, W, C = self.input_shape
        if x.ndim != 4 or tuple(x.shape[1:]) != (H, W, C):
            raise ModelError(f"image of shape {tuple(np.shape(images))} does not fit the model: it takes "
                             f"({H}, {W}, {C}) images or (N, {H}, {W}, {C}) batches; run camera frames "
                             "through the model's Preprocessing first")
        if not np.issubdtype(x.dtype, np.number):
            raise ModelError(f"images must be numeric, got dtype {x.dtype}")
        return np.ascontiguousarray(x, dtype=np.float32)


def unwrap_model(model: Any) -> Tuple[Any, Sequence[str] | None, Any, Tuple[int, int, int] | None]:
    """``(keras_model, output_names, preprocessing, input_shape)`` from a model or a SteeringModel.

    For a plain ``keras.Model`` the last three are None (read from the model itself).
    """
    if hasattr(model, "keras_model"):
        names = getattr(model, "output_names", None)
        shape = getattr(model, "input_shape", None)
        shape = tuple(shape) if shape is not None and len(tuple(shape)) == 3 else None
        return (model.keras_model, (list(names) if names is not None else None),
                getattr(model, "preprocessing", None), shape)
    return model, None, None, None
