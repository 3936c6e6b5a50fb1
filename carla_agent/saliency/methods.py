"""The method registry: names, one-line descriptions and where each method lives.

This module is TensorFlow-free: listing the methods (``python -m carla_agent
methods``) or validating a ``--method`` name never imports TensorFlow. The
method modules are imported only when :func:`make_explainer` builds one.

Adding a method is one entry in :data:`METHODS`; the command line, the
benchmark and the tests all iterate over this registry.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from carla_agent.errors import CarlaAgentError
from carla_agent.registry import Registry


class OptionError(CarlaAgentError, TypeError):
    """A saliency method got an option it does not know, or a bad option value."""


def layer_names(value: Any) -> tuple:
    """Layer names from ``"conv1,conv2"``, ``"conv1"`` or a sequence of names."""
    if isinstance(value, str):
        return tuple(n.strip() for n in value.split(",") if n.strip())
    return tuple(str(n) for n in value)


@dataclass(frozen=True)
class MethodSpec:
    """What the registry knows about a method without importing it.

    Attributes:
        name: registry name (``visual_backprop``).
        description: one line, shown by ``python -m carla_agent methods``.
        module: module holding the class, relative to this package.
        cls: class name in that module (a :class:`~carla_agent.saliency.base.SaliencyMethod`).
        defaults: options this entry sets (``gradient_signed`` is ``gradient`` with ``signed=True``).
        signed: whether the maps keep their sign (positive = pushes the output up).
        needs_conv: whether the model must have a 2-D conv layer.
        slow: many forward passes per map; the live HUD never runs it inside the agent's step.
        key_order: where the method's family sits on the HUD's number keys (1 first);
            None: after the ordered families, by name.
    """

    name: str
    description: str
    module: str
    cls: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    signed: bool = False
    needs_conv: bool = False
    slow: bool = False
    key_order: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))

    def load(self) -> type:
        """Import and return the method class (this imports TensorFlow)."""
        return getattr(importlib.import_module(f"{__package__}.{self.module}"), self.cls)


METHODS: Registry[MethodSpec] = Registry("method")


def _add(spec: MethodSpec) -> None:
    METHODS.register(spec.name, spec)


_add(MethodSpec("visual_backprop", "VisualBackProp: product of conv layers' mean activations, "
                "scaled up by all-ones transposed convs (Bojarski et al. 2016)",
                "visual_backprop", "VisualBackProp", needs_conv=True, key_order=1))
_add(MethodSpec("gradient", "vanilla gradient: |d target / d pixel|, max over channels (Simonyan et al. 2013)",
                "gradient", "Gradient", key_order=3))
_add(MethodSpec("gradient_signed", "signed gradient: sum over channels of d output / d pixel "
                "(positive = pushes the output up, i.e. steers right)",
                "gradient", "Gradient", defaults={"signed": True}, signed=True))
_add(MethodSpec("layer_gradient", "per-layer saliency: |d mean activation of a conv layer / d pixel| "
                "(keras-vis visualize_saliency, as used on DAVE-2)",
                "layer_gradient", "LayerGradient", needs_conv=True, key_order=4))
_add(MethodSpec("gradcam", "Grad-CAM for regression on one conv layer "
                "(default: deepest with a map of at least 4 px per side)",
                "gradcam", "GradCam", needs_conv=True, key_order=2))
_add(MethodSpec("gradcam_multi", "Grad-CAM on several conv layers, each normalised, then averaged",
                "gradcam_multi", "GradCamMulti", needs_conv=True))
_add(MethodSpec("occlusion", "occlusion: |change of the output| when a grey window hides a region, "
                "averaged over windows (Zeiler & Fergus 2014)",
                "occlusion", "Occlusion", slow=True, key_order=7))
_add(MethodSpec("occlusion_iterative", "iterative occlusion: occlude the strongest window, search again "
                "(3 rounds, per-pixel max)",
                "occlusion", "Occlusion", defaults={"iterations": 3}, slow=True))
_add(MethodSpec("hypercolumns", "hypercolumns: conv layers' mean activations at input size, multiplied",
                "hypercolumns", "Hypercolumns", needs_conv=True, key_order=5))
_add(MethodSpec("activations", "activation maps: one conv layer's feature maps (mean as the map, "
                "all channels in extras['features'])",
                "activations", "Activations", needs_conv=True, key_order=6))
_add(MethodSpec("smoothgrad", "SmoothGrad: mean |gradient| over 20 noisy copies (Smilkov et al. 2017)",
                "smoothgrad", "SmoothGrad", slow=True, key_order=8))
_add(MethodSpec("integrated_gradients", "Integrated Gradients, 20 steps from a blurred baseline "
                "(Sundararajan et al. 2017)",
                "integrated_gradients", "IntegratedGradients", slow=True, key_order=9))
_add(MethodSpec("integrated_gradients_signed", "signed Integrated Gradients (positive = pushes the output up)",
                "integrated_gradients", "IntegratedGradients", defaults={"signed": True}, signed=True,
                slow=True))


def make_explainer(model: Any, method: str = "visual_backprop", output: int | str = 0,
                   target: Any = "auto", layer: str | None = None, **options: Any):
    """Build an explainer: ``explainer(images) -> SaliencyResult``.

    Args:
        model: a ``keras.Model`` (any CNN with one image input, nested models
            allowed), or an object with ``.keras_model`` such as ``SteeringModel``.
        method: a name from :data:`METHODS`; an unknown name raises
            :class:`~carla_agent.errors.UnknownNameError` listing the known ones.
        output: index or name of the output column to explain (``"steer"``,
            ``"throttle"``, ``1``).
        target: ``"auto"``, ``"right"``, ``"left"``, ``"straight"`` or a callable
            ``f(output_column) -> score`` (see :mod:`carla_agent.saliency.targets`).
        layer: conv layer name for methods that use one; ``None`` picks the default.
        **options: method options (see each method's ``Options``), plus the common
            ``max_steer_deg``, ``deadband_deg``, ``upsample`` and ``jit_compile``.

    The returned object builds one compiled TensorFlow graph and is reused for
    every frame; build it once, outside the frame loop. For a method that picks conv layers on a
    model that takes a command, it is a :class:`~carla_agent.saliency.branch.BranchExplainer`:
    the layers of the trunk the held command's branch reads (one graph per trunk).
    """
    spec = METHODS.get(method)
    cls = spec.load()
    merged = {**spec.defaults, **options}
    if spec.needs_conv and getattr(model, "takes_command", False):
        # Each branch's conv layers: a model with a trunk per group of branches reads other layers per command.
        from carla_agent.saliency.branch import BranchExplainer

        return BranchExplainer(model, lambda convs, branch_layer: cls(
            model, output=output, target=target, layer=branch_layer, method_name=spec.name, convs=convs, **merged),
            output, layer=layer)
    return cls(model, output=output, target=target, layer=layer, method_name=spec.name, **merged)
