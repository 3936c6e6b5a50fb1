"""Camera frame -> network input. The one place where preprocessing lives.

Training, driving, saliency and the reports all use :class:`Preprocessing`,
so a crop or colour space can never differ between them.

The flow is ``frame (H, W, 3) uint8 RGB`` -> :meth:`Preprocessing.crop_resize`
-> ``(height, width, 3) uint8 RGB`` -> :meth:`Preprocessing.to_input` ->
``(height, width, C) float32`` in the model's colour space with values in
[0, 255]. Scaling to [-1, 1] is the model's own first layer (PilotNet's
normalisation layer), so saliency maps stay in image units.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Tuple

import cv2
import numpy as np

from carla_agent.errors import ModelError

COLOR_SPACES = ("rgb", "yuv", "bgr", "gray")


@dataclass(frozen=True)
class Preprocessing:
    """Crop, resize and colour conversion.

    Attributes:
        crop_top, crop_bottom: rows kept, as fractions of the frame height, in [0, 1].
        crop_left, crop_right: columns kept, as fractions of the frame width.
        height, width: network input size in pixels (PilotNet: 66 x 200).
        color_space: one of ``rgb``, ``yuv`` (PilotNet), ``bgr``, ``gray``.
    """

    crop_top: float = 0.38
    crop_bottom: float = 0.94
    crop_left: float = 0.0
    crop_right: float = 1.0
    height: int = 66
    width: int = 200
    color_space: str = "yuv"

    def __post_init__(self) -> None:
        if not (0.0 <= self.crop_top < self.crop_bottom <= 1.0):
            raise ValueError(f"crop_top/crop_bottom must satisfy 0 <= top < bottom <= 1, got {self.crop_top}, {self.crop_bottom}")
        if not (0.0 <= self.crop_left < self.crop_right <= 1.0):
            raise ValueError(f"crop_left/crop_right must satisfy 0 <= left < right <= 1, got {self.crop_left}, {self.crop_right}")
        if self.height < 8 or self.width < 8:
            raise ValueError(f"input size {self.height}x{self.width} is too small (min 8x8)")
        if self.color_space not in COLOR_SPACES:
            raise ValueError(f"color_space {self.color_space!r} unknown; use one of {', '.join(COLOR_SPACES)}")

    @property
    def channels(self) -> int:
        return 1 if self.color_space == "gray" else 3

    def crop_box(self, frame_hw: Tuple[int, int]) -> Tuple[int, int, int, int]:
        """Pixel box ``(top, bottom, left, right)`` of the crop in a frame of size ``frame_hw``."""
        h, w = frame_hw
        top = int(round(self.crop_top * h))
        bottom = max(top + 1, int(round(self.crop_bottom * h)))
        left = int(round(self.crop_left * w))
        right = max(left + 1, int(round(self.crop_right * w)))
        return top, bottom, left, right

    def crop_resize(self, frame: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` uint8 RGB frame -> ``(height, width, 3)`` uint8 RGB."""
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB frame, got shape {frame.shape}")
        t, b, l, r = self.crop_box(frame.shape[:2])
        crop = frame[t:b, l:r]
        if crop.shape[0] == self.height and crop.shape[1] == self.width:
            return np.ascontiguousarray(crop)
        # INTER_AREA when shrinking: averages instead of aliasing thin lane marks.
        interp = cv2.INTER_AREA if crop.shape[1] >= self.width else cv2.INTER_LINEAR
        return cv2.resize(crop, (self.width, self.height), interpolation=interp)

    def to_input(self, small: np.ndarray) -> np.ndarray:
        """``(..., height, width, 3)`` uint8 RGB -> ``(..., height, width, C)`` float32 in [0, 255].

        Works on one image or a batch; the colour conversion runs as one OpenCV call.
        """
        if small.shape[-3:] != (self.height, self.width, 3):
            raise ValueError(
                f"expected (..., {self.height}, {self.width}, 3) images, got shape {small.shape}"
            )
        lead = small.shape[:-3]
        flat = np.ascontiguousarray(small, dtype=np.uint8).reshape(-1, self.width, 3)
        if self.color_space == "yuv":
            out = cv2.cvtColor(flat, cv2.COLOR_RGB2YUV)
        elif self.color_space == "bgr":
            out = flat[..., ::-1]
        elif self.color_space == "gray":
            out = cv2.cvtColor(flat, cv2.COLOR_RGB2GRAY)[..., None]
        else:
            out = flat
        return out.astype(np.float32).reshape(*lead, self.height, self.width, self.channels)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """Camera frame -> ``(height, width, C)`` float32 network input."""
        return self.to_input(self.crop_resize(frame))

    def project_map(self, saliency: np.ndarray, frame_hw: Tuple[int, int]) -> np.ndarray:
        """Put a ``(height, width)`` map back onto a camera frame of size ``frame_hw``.

        Returns ``(H, W)`` float32, zero outside the crop. Signs are kept.
        """
        if saliency.shape != (self.height, self.width):
            raise ValueError(f"expected a ({self.height}, {self.width}) map, got {saliency.shape}")
        t, b, l, r = self.crop_box(frame_hw)
        out = np.zeros(frame_hw, np.float32)
        out[t:b, l:r] = cv2.resize(saliency.astype(np.float32), (r - l, b - t), interpolation=cv2.INTER_LINEAR)
        return out

    # -- persistence: a JSON sidecar next to the model file ----------------
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "preprocessing") -> "Preprocessing":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelError(f"{source}: unknown preprocessing field(s) {unknown}; known: {sorted(known)}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{source}: bad preprocessing: {exc}") from None


def sidecar_path(model_path: str | Path) -> Path:
    """The JSON file that travels with a model: ``pilotnet.keras`` -> ``pilotnet.json``."""
    return Path(model_path).with_suffix(".json")


def load_sidecar(model_path: str | Path) -> dict:
    """Read the model's sidecar JSON, or ``{}`` when there is none."""
    path = sidecar_path(model_path)
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: not valid JSON ({exc}); fix or delete the file") from None
