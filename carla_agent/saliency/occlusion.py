"""Occlusion maps (Zeiler & Fergus 2014), batched, with an iterative mode.

Windows of one or several sizes slide over the whole image (the last window of
each row and column is moved to end at the image edge, so the last rows and
columns are covered too). Each window is replaced by a fill (``grey``, a
blurred copy of the frame, ``blur``, or the frame's ``mean`` colour; a black
patch would add artificial edges) and the model is run on all occluded copies in
batches of ``chunk`` images, in the same graph as the clean prediction. A
window's score is the change of the target, ``|score(x) - score(x_occluded)|``,
or with ``signed`` the change of the raw output, ``y(x) - y(x_occluded)``
(positive: the region pushed the output up, i.e. right). Each pixel gets the
mean score of the windows that cover it.

Iterative mode (``iterations > 1``): after each round the strongest window is
occluded for good and the search runs again, revealing the next region the
output depends on. The map is the per-pixel maximum over rounds (largest |value|
when signed); ``extras['iteration_maps']`` and ``extras['boxes']``
(top, left, bottom, right) hold each round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np
import tensorflow as tf

from carla_agent.saliency.base import SaliencyMethod, fill_image
from carla_agent.saliency.geometry import window_masks

GREY = 128.0  # neutral grey in RGB, BGR, gray and YUV input units [0, 255]


@dataclass(frozen=True)
class OcclusionOptions:
    """Attributes:
        window_px: [px] window sizes (square, clipped to the image).
        stride_px: [px] strides, one per window size (one value is used for all).
        fill: ``grey``, ``blur`` or ``mean``.
        grey: grey level in input units for ``fill='grey'``.
        blur_sigma_px: [px] Gaussian sigma for ``fill='blur'``.
        signed: score by the signed change of the raw output instead of |change of the target|.
        iterations: rounds of occlude-the-strongest-window-and-search-again (1 = plain occlusion).
        chunk: occluded images per forward pass (memory vs speed).
    """

    window_px: Tuple[int, ...] = (20,)
    stride_px: Tuple[int, ...] = (10,)
    fill: str = "grey"
    grey: float = GREY
    blur_sigma_px: float = 8.0
    signed: bool = False
    iterations: int = 1
    chunk: int = 128

    def __post_init__(self) -> None:
        sizes = (self.window_px,) if isinstance(self.window_px, int) else tuple(self.window_px)
        strides = (self.stride_px,) if isinstance(self.stride_px, int) else tuple(self.stride_px)
        if len(strides) == 1:
            strides = strides * len(sizes)
        if not sizes or len(strides) != len(sizes):
            raise ValueError(f"give one stride or one per window size, got windows {sizes}, strides {strides}")
        object.__setattr__(self, "window_px", tuple(int(s) for s in sizes))
        object.__setattr__(self, "stride_px", tuple(int(s) for s in strides))
        if self.fill not in ("grey", "blur", "mean"):
            raise ValueError(f"fill must be grey, blur or mean, got {self.fill!r}")
        if self.iterations < 1 or self.chunk < 1:
            raise ValueError(f"iterations and chunk must be >= 1, got {self.iterations}, {self.chunk}")


class Occlusion(SaliencyMethod):
    """Sliding-window occlusion, all windows of all frames batched in one graph."""

    xla_friendly = False  # big internal batches: TensorFlow's conv kernels beat XLA's on CPU
    Options = OcclusionOptions
    default_name = "occlusion"

    def setup(self, layer: str | None) -> None:
        super().setup(layer)
        o = self.options
        masks, boxes = window_masks(self.view.input_shape[:2], o.window_px, o.stride_px)
        self.boxes = boxes
        self.n_windows = len(masks)
        # One extra all-zero mask: the clean image rides in the same batch.
        self._masks = np.concatenate([masks, np.zeros_like(masks[:1])])[..., None]
        self._masks_flat = masks.reshape(len(masks), -1)
        self._coverage = masks.sum(axis=0)

    def run_occluded(self, x: tf.Tensor, fill: tf.Tensor) -> tf.Tensor:
        """Predictions ``(N, K + 1, n_outputs)`` for every window of every frame, then the clean frame."""
        n = tf.shape(x)[0]
        k1 = self.n_windows + 1
        total = n * k1
        chunk = self.options.chunk
        masks = tf.constant(self._masks)
        n_out = self.view.n_outputs

        def body(i, ta):
            j = tf.range(i * chunk, tf.minimum((i + 1) * chunk, total))
            frame, window = j // k1, j % k1
            xi, fi, mi = tf.gather(x, frame), tf.gather(fill, frame), tf.gather(masks, window)
            pred, _ = self.view.forward(xi + (fi - xi) * mi)
            return i + 1, ta.write(i, pred)

        n_chunks = (total + chunk - 1) // chunk
        ta = tf.TensorArray(tf.float32, size=n_chunks, infer_shape=False, element_shape=(None, n_out))
        _, ta = tf.while_loop(lambda i, _: i < n_chunks, body, (tf.constant(0), ta))
        return tf.reshape(ta.concat(), (n, k1, n_out))

    def explain(self, x: tf.Tensor) -> Dict[str, tf.Tensor]:
        o = self.options
        fill = fill_image(x, o.fill, o.grey, o.blur_sigma_px)
        masks_flat = tf.constant(self._masks_flat)
        coverage = tf.constant(self._coverage)
        h, w = self.view.input_shape[:2]
        maps, chosen, prediction = [], [], None
        for _ in range(o.iterations):
            preds = self.run_occluded(x, fill)
            if prediction is None:
                prediction = preds[:, -1]
            y = preds[..., self.output_index]
            if self.signed:
                delta = y[:, -1:] - y[:, :-1]
            else:
                s = self.target(y)
                delta = tf.abs(s[:, -1:] - s[:, :-1])
            maps.append(tf.reshape(tf.matmul(delta, masks_flat), (-1, h, w)) / coverage)
            if o.iterations > 1:
                best = tf.argmax(tf.abs(delta), axis=1, output_type=tf.int32)
                chosen.append(best)
                m = tf.gather(tf.constant(self._masks), best)
                x = x + (fill - x) * m
        if o.iterations == 1:
            return {"prediction": prediction, "maps": maps[0]}
        stack = tf.stack(maps, axis=1)
        if self.signed:
            pick = tf.one_hot(tf.argmax(tf.abs(stack), axis=1), o.iterations, axis=1)
            combined = tf.reduce_sum(stack * pick, axis=1)
        else:
            combined = tf.reduce_max(stack, axis=1)
        boxes = tf.gather(tf.constant(self.boxes), tf.stack(chosen, axis=1))
        return {"prediction": prediction, "maps": combined, "iteration_maps": stack, "boxes": boxes}
