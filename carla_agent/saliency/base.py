"""The base class of every saliency method: it owns the flow, a method fills in hooks.

Flow of one call (``explainer(images)``):

1. check the images against the model's input size (:meth:`ModelView.check_images`);
2. run the compiled graph (:meth:`SaliencyMethod.explain`, traced once with a
   fixed input signature ``(None, H, W, C)`` float32, so batches of any size
   reuse it): the forward pass gives the prediction and the captured layer
   tensors, the target gives a per-frame score, the tape gives gradients, and
   :meth:`SaliencyMethod.maps_from` turns them into ``(N, H, W)`` maps;
3. wrap everything in a :class:`~carla_agent.saliency.result.SaliencyResult`.

A single-pass method sets ``gradient`` (``None``, ``"input"`` or ``"features"``)
and overrides :meth:`~SaliencyMethod.setup` (pick layers) and
:meth:`~SaliencyMethod.maps_from` (make the map), like pytorch-grad-cam's
``get_cam_weights``. Multi-pass methods (SmoothGrad, Integrated Gradients,
occlusion) override :meth:`~SaliencyMethod.explain` and still return the clean
prediction from the same graph.

This module imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, Iterable, List, Mapping, Tuple

import numpy as np
import tensorflow as tf

from carla_agent.saliency.geometry import UPSAMPLE_MODES, gaussian_kernel1d
from carla_agent.saliency.methods import OptionError
from carla_agent.saliency.model_view import ConvLayer, ModelView, unwrap_model
from carla_agent.saliency.result import SaliencyResult
from carla_agent.saliency.targets import (DEFAULT_DEADBAND_DEG, DEFAULT_MAX_STEER_DEG, make_target,
                                          target_name, targets_per_frame)

log = logging.getLogger(__name__)

XLA_MAX_BATCH = 2  # XLA on CPU wins for 1-2 frames (per-op overhead fused away) and loses for more


@dataclass(frozen=True)
class NoOptions:
    """This method has no options of its own."""


@dataclass
class Pass:
    """What one forward (and backward) pass produced, handed to :meth:`SaliencyMethod.maps_from`.

    Attributes:
        x: ``(N, H, W, C)`` input.
        prediction: ``(N, n_outputs)``.
        score: ``(N,)`` target score (None when the method has no target).
        features: captured layer outputs by call index.
        grads: gradient of the summed score w.r.t. the input (``gradient="input"``)
            or a dict by call index w.r.t. the captured features (``"features"``).
    """

    x: tf.Tensor
    prediction: tf.Tensor
    score: tf.Tensor | None
    features: Dict[int, tf.Tensor]
    grads: Any = None


class SaliencyMethod:
    """Base class. Build through :func:`carla_agent.saliency.make_explainer`.

    Args:
        model: ``keras.Model`` or an object with ``.keras_model`` (``SteeringModel``).
        output: output column to explain, by index or name.
        target: ``auto`` / ``right`` / ``left`` / ``straight`` or a callable on the output column.
            Signed maps always explain the raw output (positive = pushes it up).
        layer: conv layer for methods that use one (None: the method's default).
        method_name: registry name reported in results.
        max_steer_deg: [deg] wheel angle at normalised steer 1.0 (30 in the simulator).
        deadband_deg: [deg] half-width of the ``auto`` target's straight band.
        upsample: how low-resolution maps reach input size: ``receptive`` (each
            feature pixel at its receptive-field centre, from the model's kernels,
            strides and padding), ``bilinear`` (half-pixel), ``zoom`` (corner-aligned,
            as tf-keras-vis).
        jit_compile: compile with XLA: ``True`` always, ``False`` never, ``None`` (default)
            for batches of up to ``XLA_MAX_BATCH`` frames on single-pass methods, where it
            removes most of the per-op overhead on CPU (live driving explains one
            frame at a time); larger batches use the plain graph, where TensorFlow's
            own conv kernels are faster. XLA compiles once per batch size (about 1 s).
        **options: fields of the method's ``Options`` dataclass; unknown keys raise OptionError.
    """

    Options: ClassVar[type] = NoOptions
    gradient: ClassVar[str | None] = None  # None, "input" or "features"
    uses_target: ClassVar[bool] = True
    xla_friendly: ClassVar[bool] = True  # single pass: XLA helps at batch 1 (see jit_compile)
    default_name: ClassVar[str] = "base"

    def __init__(self, model: Any, output: int | str = 0, target: Any = "auto", layer: str | None = None, *,
                 method_name: str | None = None, max_steer_deg: float = DEFAULT_MAX_STEER_DEG,
                 deadband_deg: float = DEFAULT_DEADBAND_DEG, upsample: str = "receptive",
                 jit_compile: bool | None = None, convs: Iterable[str] | None = None, **options: Any) -> None:
        keras_model, names, self.preprocessing, shape = unwrap_model(model)
        self.view = ModelView.of(keras_model, names, shape, only_convs=convs)
        self.method = method_name or self.default_name
        self.output_index = self.view.output_index(output)
        self.output_name = self.view.output_names[self.output_index]
        self.options = self._parse_options(options)
        self.signed = bool(getattr(self.options, "signed", False))
        if upsample not in UPSAMPLE_MODES:
            raise OptionError(f"unknown upsample mode {upsample!r}; use one of {', '.join(UPSAMPLE_MODES)}")
        self.upsample = upsample
        self.target = make_target("right" if self.signed else target, max_steer_deg, deadband_deg)
        self.layer: str | None = None
        self._mats: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
        self.setup(layer)
        self._signature = [tf.TensorSpec((None,) + self.view.input_shape, tf.float32)]
        self._jit = jit_compile
        self._use_xla = jit_compile is True or (jit_compile is None and self.xla_friendly)
        # Traced once, here: every later call, any batch size, reuses this graph.
        self._fn = tf.function(self.explain, input_signature=self._signature, autograph=False,
                               jit_compile=True if jit_compile is True else None)
        self._plain = self._fn.get_concrete_function()
        self._xla_fn: tf.types.experimental.GenericFunction | None = None
        self._xla = None
        self._xla_lock = threading.Lock()

    # -- options ------------------------------------------------------------------
    def _parse_options(self, options: Mapping[str, Any]):
        known = [f.name for f in dataclasses.fields(self.Options)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise OptionError(f"{self.method}: unknown option(s) {unknown}; known options: "
                              f"{known or 'none'} plus max_steer_deg, deadband_deg, upsample, jit_compile")
        try:
            return self.Options(**options)
        except (TypeError, ValueError) as exc:
            raise OptionError(f"{self.method}: {exc}") from None

    # -- hooks --------------------------------------------------------------------
    def setup(self, layer: str | None) -> None:
        """Pick layers and build constants; set ``self.layer``. Default: no layer."""
        if layer is not None:
            raise OptionError(f"{self.method} does not use a layer (got layer={layer!r})")

    def capture(self) -> Tuple[int, ...]:
        """Call indices whose outputs the forward pass must hand back."""
        return ()

    def score(self, prediction: tf.Tensor, features: Dict[int, tf.Tensor]) -> tf.Tensor:
        """``(N,)`` score the gradients explain. Default: the target on the explained output."""
        return self.target(prediction[:, self.output_index])

    def maps_from(self, p: Pass) -> Dict[str, tf.Tensor]:
        """``{"maps": (N, H, W), **extras}`` from one pass. Single-pass methods override this."""
        raise NotImplementedError

    def explain(self, x: tf.Tensor) -> Dict[str, tf.Tensor]:
        """The traced graph body: ``{"prediction", "maps", **extras}``."""
        capture = self.capture()
        if self.gradient is None:
            pred, feats = self.view.forward(x, capture)
            return {"prediction": pred, **self.maps_from(Pass(x, pred, None, feats))}
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            if self.gradient == "input":
                tape.watch(x)
            pred, feats = self.view.forward(x, capture, tape if self.gradient == "features" else None)
            score = self.score(pred, feats)
            total = tf.reduce_sum(score)
        grads = tape.gradient(total, x if self.gradient == "input" else feats)
        return {"prediction": pred, **self.maps_from(Pass(x, pred, score, feats, grads))}

    # -- flow ---------------------------------------------------------------------
    def __call__(self, images: Any) -> SaliencyResult:
        """``(H, W, C)`` or ``(N, H, W, C)`` model-input images -> :class:`SaliencyResult`."""
        x = self.view.check_images(images)
        out = {k: v.numpy() for k, v in self._run(tf.constant(x)).items()}
        pred = out.pop("prediction").astype(np.float32)
        maps = out.pop("maps").astype(np.float32)
        per_frame = targets_per_frame(self.target, pred[:, self.output_index]) if self.uses_target else ()
        return SaliencyResult(prediction=pred, maps=maps, signed=self.signed, method=self.method,
                              target=self.target_label, layer=self.layer, output=self.output_name,
                              target_per_frame=per_frame, extras=out)

    def _run(self, x: tf.Tensor) -> Dict[str, tf.Tensor]:
        """Run the compiled graph: the XLA twin for small batches (see ``jit_compile``), else the plain one."""
        if self._jit is None and self._use_xla and int(x.shape[0]) <= XLA_MAX_BATCH:
            with self._xla_lock:  # the HUD may call from a worker thread
                if self._xla is None:
                    self._xla_fn = tf.function(self.explain, input_signature=self._signature, autograph=False,
                                               jit_compile=True)
                    self._xla = self._xla_fn.get_concrete_function()
            try:
                return self._xla(x)
            except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as exc:
                log.warning("%s: XLA cannot compile this model (%s); using the plain graph",
                            self.method, str(exc).splitlines()[0])
                self._use_xla = False
        return self._plain(x)

    @property
    def tracing_count(self) -> int:
        """How many times the graphs were traced (1 after construction; 2 once the XLA twin exists)."""
        n = self._fn.experimental_get_tracing_count()
        return n + (self._xla_fn.experimental_get_tracing_count() if self._xla_fn is not None else 0)

    @property
    def target_label(self) -> str:
        return target_name(self.target) if self.uses_target else "-"

    @property
    def description(self) -> str:
        """One line for a HUD or a figure: method, layer, output, target."""
        parts = [self.method]
        if self.layer:
            parts.append(f"layer {self.layer}")
        parts.append(f"output {self.output_name}")
        if self.signed:
            parts.append("signed (+ pushes up / right)")
        elif self.uses_target:
            parts.append(f"target {self.target_label}")
        return ", ".join(parts)

    @property
    def input_shape(self) -> Tuple[int, int, int]:
        return self.view.input_shape

    @property
    def output_names(self) -> List[str]:
        return list(self.view.output_names)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"

    # -- helpers for methods ---------------------------------------------------------
    def conv_or_default(self, layer: str | None, min_side: int = 1) -> ConvLayer:
        if layer is None:
            return self.view.deepest_conv(min_side, self.method)
        return self.view.conv(layer, self.method)

    def to_input_size(self, maps: tf.Tensor, call_index: int) -> tf.Tensor:
        """``(N, h, w)`` map of call ``call_index``'s output -> ``(N, H, W)``."""
        if call_index not in self._mats:
            self._mats[call_index] = self.view.upsample_matrices(call_index, self.upsample)
        ry, rx = self._mats[call_index]
        if ry.shape[0] == ry.shape[1] and rx.shape[0] == rx.shape[1] and \
                np.array_equal(ry, np.eye(len(ry))) and np.array_equal(rx, np.eye(len(rx))):
            return maps
        up = tf.matmul(tf.constant(ry)[None], maps)
        return tf.matmul(up, tf.constant(rx.T)[None])

    def reduce_channels(self, g: tf.Tensor) -> tf.Tensor:
        """Input gradient ``(N, H, W, C)`` -> map: max |g| over channels, or the signed sum."""
        return tf.reduce_sum(g, axis=-1) if self.signed else tf.reduce_max(tf.abs(g), axis=-1)


def gaussian_blur(x: tf.Tensor, sigma_px: float) -> tf.Tensor:
    """Separable Gaussian blur of ``(N, H, W, C)`` images, edges reflected."""
    k = gaussian_kernel1d(sigma_px)
    r = len(k) // 2
    c = int(x.shape[-1])
    h, w = int(x.shape[1]), int(x.shape[2])
    if r >= min(h, w):  # reflect padding needs r < size; fall back to the image mean
        return tf.broadcast_to(tf.reduce_mean(x, axis=(1, 2), keepdims=True), tf.shape(x))
    kv = tf.constant(np.tile(k[:, None, None, None], (1, 1, c, 1)))
    kh = tf.constant(np.tile(k[None, :, None, None], (1, 1, c, 1)))
    y = tf.pad(x, [[0, 0], [r, r], [0, 0], [0, 0]], mode="REFLECT")
    y = tf.nn.depthwise_conv2d(y, kv, [1, 1, 1, 1], "VALID")
    y = tf.pad(y, [[0, 0], [0, 0], [r, r], [0, 0]], mode="REFLECT")
    return tf.nn.depthwise_conv2d(y, kh, [1, 1, 1, 1], "VALID")


def fill_image(x: tf.Tensor, fill: str, grey: float, blur_sigma_px: float) -> tf.Tensor:
    """Replacement content for hidden pixels: ``grey``, ``blur`` (blurred frame) or ``mean`` (frame's mean colour)."""
    if fill == "grey":
        return tf.fill(tf.shape(x), tf.constant(grey, x.dtype))
    if fill == "blur":
        return gaussian_blur(x, blur_sigma_px)
    if fill == "mean":
        return tf.broadcast_to(tf.reduce_mean(x, axis=(1, 2), keepdims=True), tf.shape(x))
    raise OptionError(f"unknown fill {fill!r}; use grey, blur or mean")
