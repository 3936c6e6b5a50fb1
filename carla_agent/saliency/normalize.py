"""Map normalisation for display. NumPy only.

Two normalisers, both callables ``(H, W)`` or ``(N, H, W)`` float -> same shape float32:

- :class:`FrameNormalizer` (``"frame"``): each frame min-max scaled on its own
  (unsigned -> [0, 1]; signed -> [-1, 1] by the largest |value|, zero stays zero).
  Right for still images and reports; in video the colours jump from frame to
  frame, because every frame's hottest pixel becomes 1.
- :class:`RunningNormalizer` (``"running"``, the default for live driving and
  videos): scales by an exponential moving average of a high percentile over
  recent frames, so a frame with weak evidence stays dim instead of being blown
  up, and the colours do not flicker.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from carla_agent.registry import Registry

EPS = 1e-12


def _as_batch(maps: np.ndarray) -> tuple[np.ndarray, bool]:
    maps = np.asarray(maps, np.float32)
    if maps.ndim == 2:
        return maps[None], True
    if maps.ndim != 3:
        raise ValueError(f"expected an (H, W) or (N, H, W) map, got shape {maps.shape}")
    return maps, False


def normalize_frame(maps: np.ndarray, signed: bool = False) -> np.ndarray:
    """Per-frame scaling: unsigned min-max to [0, 1]; signed ``m / max|m|`` to [-1, 1]."""
    batch, single = _as_batch(maps)
    if signed:
        scale = np.abs(batch).max(axis=(1, 2), keepdims=True)
        out = batch / np.maximum(scale, EPS)
    else:
        lo = batch.min(axis=(1, 2), keepdims=True)
        hi = batch.max(axis=(1, 2), keepdims=True)
        out = (batch - lo) / np.maximum(hi - lo, EPS)
    out = out.astype(np.float32)
    return out[0] if single else out


@dataclass
class FrameNormalizer:
    """Each frame on its own (see :func:`normalize_frame`)."""

    signed: bool = False

    def __call__(self, maps: np.ndarray) -> np.ndarray:
        return normalize_frame(maps, self.signed)

    def reset(self) -> None:
        """Nothing to forget; here so both normalisers share one interface."""


@dataclass
class RunningNormalizer:
    """Scale by a running (EMA) high percentile of the map values.

    Attributes:
        signed: keep the sign: ``m / scale`` clipped to [-1, 1], with ``scale``
            from |m|. Unsigned: ``(m - low) / (scale - low)`` clipped to [0, 1].
        percentile: [%] of each frame's values taken as its "hot" level (99:
            a few hot pixels do not set the scale alone).
        decay: EMA weight of the past per frame, in [0, 1); 0.9 is about the last
            10 frames (0.5 s at 20 FPS). 0 makes it a per-frame percentile scaler.

    Frames of a batch are treated as consecutive video frames, in order.
    """

    signed: bool = False
    percentile: float = 99.0
    decay: float = 0.9
    _hi: float | None = field(default=None, init=False, repr=False)
    _lo: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {self.decay}")
        if not 0.0 < self.percentile <= 100.0:
            raise ValueError(f"percentile must be in (0, 100], got {self.percentile}")

    def reset(self) -> None:
        """Forget the history (call at a scene cut)."""
        self._hi = self._lo = None

    def _ema(self, old: float | None, new: float) -> float:
        return new if old is None else self.decay * old + (1.0 - self.decay) * new

    def __call__(self, maps: np.ndarray) -> np.ndarray:
        batch, single = _as_batch(maps)
        out = np.empty_like(batch)
        for i, m in enumerate(batch):
            if self.signed:
                self._hi = self._ema(self._hi, float(np.percentile(np.abs(m), self.percentile)))
                out[i] = np.clip(m / max(self._hi, EPS), -1.0, 1.0)
            else:
                self._hi = self._ema(self._hi, float(np.percentile(m, self.percentile)))
                self._lo = self._ema(self._lo, float(m.min()))
                out[i] = np.clip((m - self._lo) / max(self._hi - self._lo, EPS), 0.0, 1.0)
        return out[0] if single else out


NORMALIZERS: Registry[type] = Registry("normalizer")
NORMALIZERS.register("frame", FrameNormalizer)
NORMALIZERS.register("running", RunningNormalizer)


def make_normalizer(name: str = "running", signed: bool = False, **options):
    """``"running"`` (default, for live and video) or ``"frame"`` (stills)."""
    return NORMALIZERS.get(name)(signed=signed, **options)
