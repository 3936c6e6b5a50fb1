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
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Optional, Tuple

import cv2
import numpy as np

from carla_agent.errors import ModelError

COLOR_SPACES = ("rgb", "yuv", "bgr", "gray")
#: Fields a ``preprocessing`` object must give; the crops may be left out (defaults as in the class).
REQUIRED_FIELDS = ("height", "width", "color_space")
_SIZES = {"height": "the network input height in pixels, e.g. 66",
          "width": "the network input width in pixels, e.g. 200"}
_CROPS = {"crop_top": "height", "crop_bottom": "height", "crop_left": "width", "crop_right": "width"}
MAX_INPUT_PX = 4096


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
    def from_dict(cls, data: Any, source: str = "preprocessing", field: str = "preprocessing") -> "Preprocessing":
        """Check a JSON object field by field and build from it (a sidecar, a dataset's or drive log's meta).

        Args:
            data: the decoded JSON value; ``height``, ``width`` and ``color_space`` are
                required, the crops default to the class defaults.
            source: the file it came from, first in error messages.
            field: where ``data`` sits in that file (``preprocessing``, ``model.preprocessing``).

        Raises:
            ModelError: one line naming ``source``, the field and what it must be.
        """
        if not isinstance(data, dict):
            raise ModelError(f"{source}: field '{field}': expected a JSON object like "
                             f'{{"height": 66, "width": 200, "color_space": "rgb"}}, got {_json_type(data)}')
        known = [f.name for f in fields(cls)]
        for name in data:
            if name not in known:
                raise ModelError(f"{source}: field '{field}.{name}': unknown; the fields are {', '.join(known)}")
        for name in REQUIRED_FIELDS:
            if name not in data:
                hint = _SIZES.get(name, f"one of {', '.join(COLOR_SPACES)}")
                raise ModelError(f"{source}: field '{field}.{name}' is missing; add it: {hint}")
        for name in _SIZES:
            value = data[name]
            if not (isinstance(value, int) and not isinstance(value, bool) and 8 <= value <= MAX_INPUT_PX):
                raise ModelError(f"{source}: field '{field}.{name}': expected a whole number of pixels in "
                                 f"[8, {MAX_INPUT_PX}] (the model's input {name}), got {_shown(value)}")
        if not isinstance(data["color_space"], str) or data["color_space"] not in COLOR_SPACES:
            raise ModelError(f"{source}: field '{field}.color_space': expected one of {', '.join(COLOR_SPACES)} "
                             f"(the channel order the network was trained on), got {_shown(data['color_space'])}")
        for name, axis in _CROPS.items():
            value = data.get(name, getattr(cls, name))
            if not (isinstance(value, (int, float)) and not isinstance(value, bool)
                    and math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ModelError(f"{source}: field '{field}.{name}': expected a fraction of the frame {axis} "
                                 f"in [0, 1], got {_shown(value)}")
        for low, high in (("crop_top", "crop_bottom"), ("crop_left", "crop_right")):
            lo, hi = data.get(low, getattr(cls, low)), data.get(high, getattr(cls, high))
            if not lo < hi:
                raise ModelError(f"{source}: field '{field}.{high}': must be greater than {low} ({lo}), "
                                 f"got {_shown(hi)}; the crop keeps the part between them")
        return cls(**{k: (float(v) if k in _CROPS else v) for k, v in data.items()})


def sidecar_path(model_path: str | Path) -> Path:
    """The JSON file that travels with a model: ``pilotnet.keras`` -> ``pilotnet.json``."""
    return Path(model_path).with_suffix(".json")


def load_sidecar(model_path: str | Path) -> dict:
    """Read the model's sidecar JSON (an object), or ``{}`` when there is none.

    Raises:
        ModelError: the file is not JSON, or not a JSON object.
    """
    path = sidecar_path(model_path)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # nested 100,000 deep
        raise ModelError(f"{path}: not valid JSON ({str(exc)[:120]}); fix or delete the file") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a JSON object with a 'preprocessing' object, got "
                         f"{_json_type(data)}; see README 'Your own model' for the schema")
    return data


def sidecar_preprocessing(model_path: str | Path) -> Optional[Preprocessing]:
    """The checked ``preprocessing`` of the model's sidecar, or ``None`` when there is no sidecar.

    The sidecar is a JSON object whose ``"preprocessing"`` object is read with
    :meth:`Preprocessing.from_dict`; other keys (``train`` writes ``"training"``) are ignored.

    Raises:
        ModelError: a sidecar that is not a JSON object, has no ``preprocessing``
            object, or a bad field in it; the message names the file and the field.
    """
    path = sidecar_path(model_path)
    if not path.exists():
        return None
    data = load_sidecar(model_path)
    if "preprocessing" not in data:
        # Preprocessing fields at the top level are the likely mistake; say so.
        stray = [k for k in data if k in {f.name for f in fields(Preprocessing)}]
        fix = (f"move {', '.join(stray)} into a \"preprocessing\" object" if stray else
               'add one, e.g. "preprocessing": {"height": 66, "width": 200, "color_space": "rgb"}, '
               "or delete the file to use the defaults")
        raise ModelError(f"{path}: field 'preprocessing' is missing; {fix}")
    return Preprocessing.from_dict(data["preprocessing"], str(path))


def _json_type(value: Any) -> str:
    """The JSON name of a decoded value's type: object, array, string, number, boolean, null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    for kind, name in ((dict, "an object"), (list, "an array"), (str, "a string"), ((int, float), "a number")):
        if isinstance(value, kind):
            return f"{name} {_shown(value)}" if kind in (str, (int, float)) else name
    return type(value).__name__


def _shown(value: Any) -> str:
    """A value as the JSON file has it (``"66"`` for a string, ``NaN``, ``true``), shortened."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
