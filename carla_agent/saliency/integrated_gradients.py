"""Integrated Gradients (Sundararajan et al. 2017).

``attribution = (x - x0) * mean over k of grad(x0 + a_k (x - x0))`` with
``a_k = (k + 0.5) / steps`` (midpoint rule), so the attributions of a frame sum
to about ``score(x) - score(x0)``. The map sums the attributions over channels:
its absolute value (default), or signed for the raw output (positive = pushes
it up, i.e. right).

Baselines ``x0``:
- ``black``: a black image in the model's colour space when the preprocessing
  is known (a SteeringModel: in YUV black is Y=0, U=V=128), else the all-zero
  input (black in RGB, BGR and gray);
- ``blurred``: the frame blurred with ``blur_sigma_px`` (keeps the colours,
  removes the edges);
- ``mean``: the frame's mean colour everywhere;
- ``grey``: uniform grey 128 (neutral in every colour space).
All path points and the clean frame run as one batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

import numpy as np
import tensorflow as tf

from carla_agent.saliency.base import SaliencyMethod, fill_image

BASELINES = ("black", "blurred", "mean", "grey")


@dataclass(frozen=True)
class IntegratedGradientsOptions:
    """Attributes:
        steps: points on the path from the baseline to the frame.
        baseline: ``black``, ``blurred``, ``mean`` or ``grey``.
        blur_sigma_px: [px] Gaussian sigma of the ``blurred`` baseline.
        signed: keep the sign, for the raw output.
    """

    steps: int = 20
    baseline: str = "black"
    blur_sigma_px: float = 10.0
    signed: bool = False

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, got {self.baseline!r}")


class IntegratedGradients(SaliencyMethod):
    """Integrated Gradients along a straight path, one batched forward + backward pass."""

    xla_friendly = False  # big internal batches: TensorFlow's conv kernels beat XLA's on CPU
    Options = IntegratedGradientsOptions
    default_name = "integrated_gradients"

    def setup(self, layer: str | None) -> None:
        super().setup(layer)
        pre = self.preprocessing
        black = np.zeros(self.view.input_shape[-1], np.float32)
        if pre is not None and pre.channels == self.view.input_shape[-1]:
            black = pre.to_input(np.zeros((pre.height, pre.width, 3), np.uint8))[0, 0].astype(np.float32)
        self._black = black

    def baseline(self, x: tf.Tensor) -> tf.Tensor:
        b = self.options.baseline
        if b == "black":
            return tf.broadcast_to(tf.constant(self._black), tf.shape(x))
        return fill_image(x, {"blurred": "blur"}.get(b, b), 128.0, self.options.blur_sigma_px)

    def explain(self, x: tf.Tensor) -> Dict[str, tf.Tensor]:
        m = self.options.steps
        n = tf.shape(x)[0]
        x0 = self.baseline(x)
        alphas = tf.constant((np.arange(m) + 0.5) / m, tf.float32)[:, None, None, None, None]
        path = x0[None] + alphas * (x - x0)[None]
        batch = tf.concat([x, tf.reshape(path, tf.concat([[m * n], tf.shape(x)[1:]], 0))], axis=0)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(batch)
            pred, _ = self.view.forward(batch)
            total = tf.reduce_sum(self.target(pred[n:, self.output_index]))
        g = tf.reshape(tape.gradient(total, batch)[n:], tf.concat([[m], tf.shape(x)], 0))
        attributions = tf.reduce_sum((x - x0) * tf.reduce_mean(g, axis=0), axis=-1)
        maps = attributions if self.signed else tf.abs(attributions)
        return {"prediction": pred[:n], "maps": maps,
                "attribution_sum": tf.reduce_sum(attributions, axis=(1, 2))}
