"""SmoothGrad (Smilkov et al. 2017): the gradient averaged over noisy copies of the frame.

Each frame gets ``samples`` copies with Gaussian noise of standard deviation
``noise_level * (max - min)`` of that frame (tf-keras-vis convention). The map is
the mean over copies of ``|gradient|``, then the maximum over channels (as
tf-keras-vis ``Saliency(smooth_samples=...)``); ``signed`` gives the mean of the
channel-summed raw-output gradient instead. All copies and the clean frame run
as one batch; the clean rows give the prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

import tensorflow as tf

from carla_agent.saliency.base import SaliencyMethod


@dataclass(frozen=True)
class SmoothGradOptions:
    """Attributes:
        samples: noisy copies per frame.
        noise_level: noise sigma as a fraction of each frame's value range.
        seed: seed of the noise generator (the noise differs from call to call).
        signed: mean signed gradient of the raw output, summed over channels.
    """

    samples: int = 20
    noise_level: float = 0.2
    seed: int = 0
    signed: bool = False

    def __post_init__(self) -> None:
        if self.samples < 1 or self.noise_level < 0:
            raise ValueError(f"samples must be >= 1 and noise_level >= 0, got {self.samples}, {self.noise_level}")


class SmoothGrad(SaliencyMethod):
    """Mean |gradient| over noisy copies, one batched forward + backward pass."""

    xla_friendly = False  # big internal batches: TensorFlow's conv kernels beat XLA's on CPU
    Options = SmoothGradOptions
    default_name = "smoothgrad"

    def setup(self, layer: str | None) -> None:
        super().setup(layer)
        self.rng = tf.random.Generator.from_seed(self.options.seed)

    def explain(self, x: tf.Tensor) -> Dict[str, tf.Tensor]:
        s = self.options.samples
        n = tf.shape(x)[0]
        span = tf.reduce_max(x, axis=(1, 2, 3), keepdims=True) - tf.reduce_min(x, axis=(1, 2, 3), keepdims=True)
        noise = self.rng.normal(tf.concat([[s], tf.shape(x)], 0)) * (self.options.noise_level * span)[None]
        noisy = tf.reshape(x[None] + noise, tf.concat([[s * n], tf.shape(x)[1:]], 0))
        batch = tf.concat([x, noisy], axis=0)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(batch)
            pred, _ = self.view.forward(batch)
            total = tf.reduce_sum(self.target(pred[n:, self.output_index]))
        g = tape.gradient(total, batch)[n:]
        g = tf.reshape(g, tf.concat([[s], tf.shape(x)], 0))
        if self.signed:
            maps = tf.reduce_mean(tf.reduce_sum(g, axis=-1), axis=0)
        else:
            maps = tf.reduce_max(tf.reduce_mean(tf.abs(g), axis=0), axis=-1)
        return {"prediction": pred[:n], "maps": maps}
