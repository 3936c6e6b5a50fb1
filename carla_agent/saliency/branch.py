"""Conv-layer methods on a command model whose branches read different conv layers.

A command-conditioned :class:`~carla_agent.network.steering_model.SteeringModel` is explained
through a one-input view whose output is the branch of the held command. With one shared conv
trunk (the CIL layout) every branch reads the same conv layers, and one explainer serves them
all: its graph reads the held command. With a trunk per group of branches
(``build_pilotnet(junction_trunk=True)``) the deepest conv layer of the whole model belongs to
one trunk only: Grad-CAM of a branch on the other trunk would be all zeros, and VisualBackProp
would show the other trunk. :class:`BranchExplainer` therefore finds, per command, the conv
layers the explained output depends on (:func:`live_convs`: a non-zero gradient on a probe
image) and keeps one explainer per distinct set, restricted to those layers; each call goes to
the explainer of the command held at that moment. A layer named by the user (``--layer conv3``)
is taken, on a branch that does not read it, at the same depth of the trunk the branch reads
(``conv3_junction``), so that one name serves every command.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, FrozenSet, Optional, Sequence

import numpy as np
import tensorflow as tf

from carla_agent.errors import ModelError
from carla_agent.saliency.model_view import ModelView, unwrap_model


def live_convs(model: Any, output: int | str = 0) -> FrozenSet[str]:
    """Names of the conv layers whose features ``output`` depends on, for the command ``model``
    holds now: those with a non-zero gradient of the output on a random probe image."""
    keras_model, names, _, shape = unwrap_model(model)
    view = ModelView.of(keras_model, names, shape)
    convs = view.require_convs("a conv-layer method")
    index = view.output_index(output)
    x = tf.constant(np.random.default_rng(0).uniform(0, 255, (2,) + view.input_shape).astype(np.float32))
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        pred, feats = view.forward(x, [c.feature.index for c in convs], tape)
        total = tf.reduce_sum(pred[:, index])
    grads = tape.gradient(total, [feats[c.feature.index] for c in convs])
    live = frozenset(c.name for c, g in zip(convs, grads) if g is not None and bool(tf.reduce_any(g != 0)))
    return live or frozenset(c.name for c in convs)  # a dead probe (all ReLUs off): keep them all


def _ordered(model: Any, convs: FrozenSet[str]) -> Sequence[str]:
    keras_model, names, _, shape = unwrap_model(model)
    return [c.name for c in ModelView.of(keras_model, names, shape).convs if c.name in convs]


def _matches(name: str, layer: str) -> bool:
    return name == layer or name.split("/")[-1] == layer


def layer_per_trunk(model: Any, layer: Optional[str], trunks: Sequence[FrozenSet[str]]) -> Dict[FrozenSet[str], Optional[str]]:
    """The conv layer to use on each trunk (a set of conv names) for the ``layer`` the user named:
    itself on the trunk that has it, the layer at the same depth on a trunk of the same depth.
    Raises ModelError when no trunk has it, or a trunk has another depth."""
    if layer is None:
        return {t: None for t in trunks}
    ordered = {t: _ordered(model, t) for t in trunks}
    owners = [t for t in trunks if any(_matches(n, layer) for n in ordered[t])]
    if not owners:
        known = ", ".join(dict.fromkeys(n.split("/")[-1] for t in trunks for n in ordered[t]))
        raise ModelError(f"no conv layer named {layer!r} on any branch; conv layers: {known}")
    own = ordered[owners[0]]
    depth = next(i for i, n in enumerate(own) if _matches(n, layer))
    out: Dict[FrozenSet[str], Optional[str]] = {}
    for t in trunks:
        names = ordered[t]
        if any(_matches(n, layer) for n in names):
            out[t] = layer
        elif len(names) == len(own):
            out[t] = names[depth]
        else:
            raise ModelError(f"layer {layer!r} is conv layer {depth + 1} of {len(own)} of its trunk, but another "
                             f"branch reads {len(names)} conv layers ({', '.join(names)}): name one of those for it, "
                             "or leave --layer out")
    return out


class BranchExplainer:
    """An explainer per set of conv layers the branches read, dispatched on the held command.

    Args:
        model: a command-taking model (``model.command``, ``model.set_command``).
        build: ``(frozenset of conv names, layer or None) -> explainer`` restricted to those layers.
        output: the explained output, as for :func:`~carla_agent.saliency.methods.make_explainer`.
        layer: the conv layer asked for, or None (each explainer's default); on a branch that
            does not read it, the layer at the same depth of its own trunk (:func:`layer_per_trunk`).

    Behaves as the explainer of the command held when it is called or read (``layer``,
    ``description``, ...). Every branch's explainer is built at construction (the model's
    ``command_view.commands``; the held command is put back) and those of the other trunks are
    called once, so that bad options fail there and the first turn of a drive does not wait a
    second or two for a graph to be traced and compiled.
    """

    def __init__(self, model: Any, build: Callable[[FrozenSet[str], Optional[str]], Any], output: int | str = 0,
                 layer: Optional[str] = None) -> None:
        self._model = model
        self._build = build
        self._output = output
        self._by_convs: Dict[FrozenSet[str], Any] = {}
        self._by_command: Dict[int, Any] = {}
        self._convs_of: Dict[int, FrozenSet[str]] = {}
        held = int(model.command)
        try:
            for command in getattr(getattr(model, "command_view", None), "commands", ()):
                model.set_command(command)
                self._convs_of[command] = live_convs(model, output)
        finally:
            model.set_command(held)
        self._convs_of.setdefault(held, live_convs(model, output))
        self._layer = layer
        self._layers = layer_per_trunk(model, layer, sorted(set(self._convs_of.values()), key=sorted))
        try:
            for command in self._convs_of:
                model.set_command(command)
                self.current  # noqa: B018  (built now)
        finally:
            model.set_command(held)
        now = self.current  # the held command's (built here for a model that does not list its commands)
        for other in self._by_convs.values():
            if other is not now:  # another trunk: one call compiles its small-batch (XLA) graph now, not at a turn
                other(np.zeros((1,) + tuple(other.input_shape), np.float32))

    @property
    def current(self) -> Any:
        """The explainer of the command held now (built on first use)."""
        command = int(self._model.command)
        inner = self._by_command.get(command)
        if inner is None:
            convs = self._convs_of.get(command) or live_convs(self._model, self._output)
            inner = self._by_convs.get(convs)
            if inner is None:
                if convs not in self._layers:  # a trunk met only now (a model that does not list its commands)
                    self._layers = layer_per_trunk(self._model, self._layer, sorted({*self._layers, convs}, key=sorted))
                inner = self._by_convs[convs] = self._build(convs, self._layers[convs])
            self._by_command[command] = inner
        return inner

    @property
    def explainers(self) -> int:
        """How many distinct explainers were built (1 on a shared trunk)."""
        return len(self._by_convs)

    def __call__(self, images: Any) -> Any:
        return self.current(images)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.current, name)

    def __repr__(self) -> str:
        return f"<BranchExplainer {self.current!r}>"


__all__ = ["BranchExplainer", "layer_per_trunk", "live_convs"]
