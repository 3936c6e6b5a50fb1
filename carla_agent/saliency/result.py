"""What an explainer returns. NumPy only, no TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Tuple

import numpy as np


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
class SaliencyResult:
    """Prediction and saliency maps from one explainer call.

    Attributes:
        prediction: ``(N, n_outputs)`` float32, every output column of the model
            (the same numbers as ``model(x)``, from the same graph as the maps).
        maps: ``(N, H, W)`` float32 at the model's input size, not normalised
            (see :mod:`carla_agent.saliency.normalize`). Unsigned maps are >= 0.
        signed: True when the maps keep their sign: positive = the pixel pushes
            the explained output up (steer right on a steering output), negative
            = pushes it down (steer left).
        method: registry name of the method.
        target: the target explained (``auto``, ``right``, ...); for ``auto``
            see ``target_per_frame``.
        layer: the conv layer used (``None`` for input-gradient methods).
        output: name of the explained output column.
        target_per_frame: the target actually used for each frame
            (``right``/``left``/``straight``), empty for methods without a target.
        extras: method-specific arrays (``cam`` low-resolution Grad-CAM,
            ``features`` activations, ``iteration_maps`` ...), read-only.
    """

    prediction: np.ndarray
    maps: np.ndarray
    signed: bool
    method: str
    target: str
    layer: str | None
    output: str = ""
    target_per_frame: Tuple[str, ...] = ()
    extras: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prediction", _frozen(self.prediction))
        object.__setattr__(self, "maps", _frozen(self.maps))
        object.__setattr__(self, "extras", MappingProxyType(
            {k: _frozen(v) if isinstance(v, np.ndarray) else v for k, v in self.extras.items()}))

    def __len__(self) -> int:
        return int(self.maps.shape[0])

    def project(self, preprocessing, frame_hw: Tuple[int, int]) -> np.ndarray:
        """The maps on the camera frame: ``(N, frame_h, frame_w)`` float32, zero outside the crop."""
        return project_maps(self.maps, preprocessing, frame_hw)


def project_maps(maps: np.ndarray, preprocessing, frame_hw: Tuple[int, int]) -> np.ndarray:
    """Project ``(H, W)`` or ``(N, H, W)`` maps back onto a camera frame of size ``frame_hw``.

    Uses :meth:`carla_agent.network.preprocess.Preprocessing.project_map`, so the crop is
    the one the model was fed through. Signs are kept.
    """
    maps = np.asarray(maps, np.float32)
    if maps.ndim == 2:
        return preprocessing.project_map(maps, tuple(frame_hw))
    return np.stack([preprocessing.project_map(m, tuple(frame_hw)) for m in maps])


@dataclass(frozen=True, eq=False)
class FilterImages:
    """First-layer filters as images (not per-frame maps).

    Attributes:
        weights: ``(F, kh, kw, C)`` float32 raw kernels.
        images: ``(F, kh, kw, C)`` float32, each filter min-max scaled to [0, 1].
        layer: name of the conv layer.
        grid: ``(rows*cell, cols*cell, 3)`` uint8 RGB mosaic of the filters, for display.
    """

    weights: np.ndarray
    images: np.ndarray
    layer: str
    grid: np.ndarray
