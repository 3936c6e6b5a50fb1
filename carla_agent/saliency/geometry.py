"""Spatial bookkeeping for saliency maps: window positions and interpolation. NumPy only.

A feature map's pixel ``i`` has its receptive-field centre at input pixel
``offset + stride * i`` (per axis); the offsets and strides come from the
model's conv and pooling layers (kernel, stride, dilation, padding), see
:mod:`carla_agent.saliency.model_view`. Up-sampling a low-resolution map to
input size is a product with two interpolation matrices built here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

UPSAMPLE_MODES = ("receptive", "bilinear", "zoom")


@dataclass(frozen=True)
class AxisMap:
    """Feature index -> input pixel centre: ``offset + stride * i`` (pixels)."""

    offset: float = 0.0
    stride: float = 1.0

    def then_window(self, n_in: int, n_out: int, kernel: int, stride: int, dilation: int,
                    padding: str) -> "AxisMap":
        """The map after a conv or pooling window on this axis."""
        before = same_pad_before(n_in, n_out, kernel, stride, dilation) if padding == "same" else 0
        centre = -before + (kernel - 1) * dilation / 2.0
        return AxisMap(self.offset + self.stride * centre, self.stride * stride)

    def shifted(self, pixels: float) -> "AxisMap":
        """The map after a layer whose output pixel ``i`` is input pixel ``i + pixels``."""
        return AxisMap(self.offset + self.stride * pixels, self.stride)


def same_pad_before(n_in: int, n_out: int, kernel: int, stride: int, dilation: int = 1) -> int:
    """TensorFlow's 'same' padding before the first pixel (the extra pixel goes after)."""
    total = max((n_out - 1) * stride + (kernel - 1) * dilation + 1 - n_in, 0)
    return total // 2


def interp_matrix(n_out: int, n_in: int, mode: str = "bilinear", axis: AxisMap | None = None) -> np.ndarray:
    """``(n_out, n_in)`` linear-interpolation matrix from ``n_in`` samples to ``n_out`` pixels.

    Modes:
        ``receptive``: sample ``i`` sits at its receptive-field centre ``axis``
            (pixels beyond the first/last centre take the edge value);
        ``bilinear``: half-pixel centres, as ``tf.image.resize`` and OpenCV;
        ``zoom``: corner-aligned, as ``scipy.ndimage.zoom(order=1)`` (tf-keras-vis).
    """
    p = np.arange(n_out, dtype=np.float64)
    if mode == "receptive":
        axis = axis or AxisMap(0.0, n_out / max(n_in, 1))
        u = (p - axis.offset) / axis.stride
    elif mode == "bilinear":
        u = (p + 0.5) * n_in / n_out - 0.5
    elif mode == "zoom":
        u = p * (n_in - 1) / max(n_out - 1, 1)
    else:
        raise ValueError(f"unknown upsample mode {mode!r}; use one of {', '.join(UPSAMPLE_MODES)}")
    u = np.clip(u, 0.0, n_in - 1)
    i0 = np.floor(u).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    frac = u - i0
    m = np.zeros((n_out, n_in), np.float64)
    np.add.at(m, (np.arange(n_out), i0), 1.0 - frac)
    np.add.at(m, (np.arange(n_out), i1), frac)
    return m.astype(np.float32)


def window_anchors(n: int, size: int, stride: int) -> List[int]:
    """Start pixels of windows of ``size`` every ``stride`` px that cover all ``n`` pixels.

    The last window is moved to end at the last pixel when the stride would miss
    it, so the last rows and columns are always covered.
    """
    if size <= 0 or stride <= 0:
        raise ValueError(f"window size and stride must be > 0, got {size}, {stride}")
    if size >= n:
        return [0]
    anchors = list(range(0, n - size + 1, stride))
    if anchors[-1] + size < n:
        anchors.append(n - size)
    return anchors


def window_masks(hw: Tuple[int, int], sizes: Tuple[int, ...], strides: Tuple[int, ...]
                 ) -> Tuple[np.ndarray, np.ndarray]:
    """All occlusion windows as masks.

    Returns:
        masks: ``(K, H, W)`` float32, 1 inside window k.
        boxes: ``(K, 4)`` int32 ``(top, left, bottom, right)``, bottom/right exclusive.
    """
    h, w = hw
    masks, boxes = [], []
    for size, stride in zip(sizes, strides):
        sh, sw = min(size, h), min(size, w)
        for top in window_anchors(h, sh, stride):
            for left in window_anchors(w, sw, stride):
                m = np.zeros((h, w), np.float32)
                m[top:top + sh, left:left + sw] = 1.0
                masks.append(m)
                boxes.append((top, left, top + sh, left + sw))
    return np.stack(masks), np.asarray(boxes, np.int32)


def gaussian_kernel1d(sigma_px: float) -> np.ndarray:
    """Normalised 1-D Gaussian, radius 3 sigma (at least 1 px)."""
    radius = max(1, int(np.ceil(3.0 * sigma_px)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / max(sigma_px, 1e-6)) ** 2)
    return (k / k.sum()).astype(np.float32)


def ones_transpose_matrix(n_in: int, n_out: int, kernel: int, stride: int, dilation: int = 1,
                          padding: str = "valid") -> np.ndarray:
    """``(n_in, n_out)`` matrix of a transposed convolution with an all-ones kernel, on one axis.

    Output pixel ``i`` of a conv or pooling window (kernel, stride, dilation,
    padding) read input pixels ``i * stride - pad_before + a * dilation``; the
    matrix sends each output value back to all of them. An all-ones 2-D kernel
    is separable, so the 2-D transposed convolution is ``Ty @ m @ Tx.T``.
    """
    before = same_pad_before(n_in, n_out, kernel, stride, dilation) if padding == "same" else 0
    m = np.zeros((n_in, n_out), np.float32)
    for i in range(n_out):
        for a in range(kernel):
            p = i * stride - before + a * dilation
            if 0 <= p < n_in:
                m[p, i] += 1.0
    return m


def shift_matrix(n_in: int, n_out: int, shift: int) -> np.ndarray:
    """``(n_in, n_out)`` matrix taking output pixel ``i`` back to input pixel ``i + shift``.

    Zero-padding by ``t`` has ``shift = -t``; cropping ``t`` pixels has ``shift = t``.
    """
    m = np.zeros((n_in, n_out), np.float32)
    for i in range(n_out):
        if 0 <= i + shift < n_in:
            m[i + shift, i] = 1.0
    return m
