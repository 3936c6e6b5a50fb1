"""Driving datasets written by ``collect`` and read by ``train``.

A dataset is a directory::

    meta.json            preprocessing, scenarios, seeds, frame count
    shard_00000.npz      arrays below, one row per frame
    shard_00001.npz ...

Arrays in each shard (N rows):

* ``images``: ``(N, height, width, 3)`` uint8 RGB, already cropped and resized
  by :meth:`Preprocessing.crop_resize` (colour conversion happens at training);
* ``steer``: ``(N,)`` float32 label, the expert's steering in [-1, 1] for the
  situation in the image (not the noisy command that was applied);
* ``applied_steer``, ``throttle``, ``speed_mps``, ``lateral_offset_m``,
  ``heading_error_rad``: ``(N,)`` float32;
* ``episode``: ``(N,)`` int32 episode index, for a split that keeps
  neighbouring frames on one side;
* ``command``: ``(N,)`` int32 route command of the frame, a
  :class:`~carla_agent.sim.routing.road_option.RoadOption` value (4, LANEFOLLOW,
  on single roads; datasets written before it existed read as all 4).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import numpy as np

from carla_agent.errors import DatasetError
from carla_agent.network.preprocess import Preprocessing

ARRAYS = ("images", "steer", "applied_steer", "throttle", "speed_mps",
          "lateral_offset_m", "heading_error_rad", "episode", "command")
_INT_ARRAYS = ("episode", "command")
#: The command of frames in datasets written before commands were recorded (LANEFOLLOW).
DEFAULT_COMMAND = 4


class DatasetWriter:
    """Appends rows and writes a shard every ``shard_size`` rows. Use as a context manager."""

    def __init__(self, root: str | Path, preprocessing: Preprocessing, shard_size: int = 2000,
                 meta: dict | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        if any(self.root.glob("shard_*.npz")):
            raise DatasetError(f"{self.root}: already holds a dataset; choose another --out or delete it")
        self.preprocessing = preprocessing
        self.shard_size = shard_size
        self.meta = dict(meta or {})
        self._rows: Dict[str, list] = {k: [] for k in ARRAYS}
        self._shards = 0
        self.count = 0
        self._closed = False

    def add(self, image: np.ndarray, *, steer: float, applied_steer: float, throttle: float,
            speed_mps: float, lateral_offset_m: float, heading_error_rad: float, episode: int,
            command: int = DEFAULT_COMMAND) -> None:
        expected = (self.preprocessing.height, self.preprocessing.width, 3)
        if image.shape != expected or image.dtype != np.uint8:
            raise ValueError(f"dataset image must be {expected} uint8, got {image.shape} {image.dtype}")
        row = dict(images=image, steer=steer, applied_steer=applied_steer, throttle=throttle,
                   speed_mps=speed_mps, lateral_offset_m=lateral_offset_m,
                   heading_error_rad=heading_error_rad, episode=episode, command=int(command))
        for k in ARRAYS:
            self._rows[k].append(row[k])
        self.count += 1
        if len(self._rows["steer"]) >= self.shard_size:
            self._flush()

    def _flush(self) -> None:
        if not self._rows["steer"]:
            return
        arrays = {k: np.asarray(v, dtype=np.uint8 if k == "images" else (np.int32 if k in _INT_ARRAYS else np.float32))
                  for k, v in self._rows.items()}
        np.savez_compressed(self.root / f"shard_{self._shards:05d}.npz", **arrays)
        self._shards += 1
        self._rows = {k: [] for k in ARRAYS}
        self._write_meta()

    def _write_meta(self) -> None:
        meta = dict(self.meta, preprocessing=self.preprocessing.to_dict(), frames=self.count,
                    shards=self._shards)
        (self.root / "meta.json").write_text(json.dumps(meta, indent=2))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._flush()
        self._write_meta()

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class Dataset:
    """A dataset loaded into memory. Arrays as described in the module docstring."""

    arrays: Dict[str, np.ndarray]
    preprocessing: Preprocessing
    meta: dict

    def __len__(self) -> int:
        return int(self.arrays["steer"].shape[0])


def load_dataset(root: str | Path) -> Dataset:
    """Load every shard of a dataset directory (see module docstring).

    ``root`` may also name several directories separated by commas
    (``data/clean,data/dagger``); they are concatenated, episode indices
    renumbered, and must share one preprocessing.
    """
    parts_roots = [p for p in str(root).split(",") if p]
    if len(parts_roots) > 1:
        loaded = [load_dataset(p) for p in parts_roots]
        first = loaded[0]
        for other, path in zip(loaded[1:], parts_roots[1:]):
            if other.preprocessing != first.preprocessing:
                raise DatasetError(f"{path}: its preprocessing differs from {parts_roots[0]}'s; "
                                   "collect both with the same settings")
        arrays, offset = {k: [] for k in ARRAYS}, 0
        for d in loaded:
            for k in ARRAYS:
                arrays[k].append(d.arrays[k] + offset if k == "episode" else d.arrays[k])
            offset += int(d.arrays["episode"].max()) + 1 if len(d) else 0
        meta = dict(first.meta, sources=parts_roots, frames=sum(len(d) for d in loaded))
        return Dataset({k: np.concatenate(v) for k, v in arrays.items()}, first.preprocessing, meta)
    root = Path(root)
    meta_path = root / "meta.json"
    if not meta_path.exists():
        raise DatasetError(f"{root}: no meta.json; is this a dataset written by 'python -m carla_agent collect'?")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{meta_path}: corrupt JSON ({exc})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("preprocessing"), dict):
        raise DatasetError(f"{meta_path}: field 'preprocessing' is missing or not a mapping; "
                           "this meta.json was not written by 'python -m carla_agent collect': collect again")
    shards = sorted(root.glob("shard_*.npz"))
    if not shards:
        raise DatasetError(f"{root}: no shard_*.npz files; run collect again")
    parts: Dict[str, List[np.ndarray]] = {k: [] for k in ARRAYS}
    for shard in shards:
        try:
            with np.load(shard) as data:
                for k in ARRAYS:
                    if k == "command" and k not in data.files:  # written before commands were recorded
                        parts[k].append(np.full(len(data["steer"]), DEFAULT_COMMAND, np.int32))
                    else:
                        parts[k].append(data[k])
        except (OSError, KeyError, ValueError) as exc:
            raise DatasetError(f"{shard}: unreadable shard ({exc}); delete it or collect again") from None
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    return Dataset(arrays=arrays, preprocessing=Preprocessing.from_dict(meta["preprocessing"], str(meta_path)), meta=meta)
