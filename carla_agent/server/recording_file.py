"""The served recorder's file format (carla_agent's own; CARLA's binary ``.log`` is not read).

A file is the 21-byte magic ``b"carla_agent recorder\\n"`` followed by a stream of msgpack objects:
a header map, then one list per recorded frame, appended and flushed each tick (a server killed
mid-write loses at most the last, partial frame, which the reader drops)::

    header: {"version": 1, "map": str, "date": epoch s (float), "dt_s": float, "additional_data": bool}
    frame:  [frame, elapsed_s, created, destroyed, parents, positions, lights, collisions, extra]
      created    [[id, type_id, kind, [x, y, z], [[attr, type, value], ...]], ...]
                 kind: CARLA's recorder type, 0 other, 1 vehicle, 2 walker, 3 traffic light
      destroyed  [id, ...]
      parents    [[id, parent_id], ...]                    (sensors and controllers on an actor)
      positions  [[id, x, y, z, roll, pitch, yaw], ...]    every actor but lights and the spectator
      lights     [[id, state, frozen, elapsed_s], ...]     traffic lights whose state changed
                 (state: 0 Red, 1 Yellow, 2 Green, 3 Off, 4 Unknown)
      collisions [[id1, id2, other_type_id], ...]         contacts that began this frame
      extra      [[id, speed_mps, throttle, steer, brake], ...]  vehicles; only with additional_data

Positions are metres and degrees in CARLA's frame (the wire's: y and yaw mirrored from OpenDRIVE).
Plain names resolve to ``$CARLA_AGENT_RECORDER_DIR`` or ``<cwd of serve>/Saved`` (CARLA keeps them
in ``CarlaUE4/Saved``); an absolute path is used as given.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import msgpack

MAGIC = b"carla_agent recorder\n"
VERSION = 1
KIND_OTHER, KIND_VEHICLE, KIND_WALKER, KIND_LIGHT = 0, 1, 2, 3
ENV_DIR = "CARLA_AGENT_RECORDER_DIR"


class RecordingError(Exception):
    """A recording that cannot be read: the message is CARLA's text for it (one line)."""


@dataclass
class Frame:
    """One recorded frame (the lists as in the module docstring)."""

    id: int
    elapsed_s: float
    created: list = field(default_factory=list)
    destroyed: list = field(default_factory=list)
    parents: list = field(default_factory=list)
    positions: list = field(default_factory=list)
    lights: list = field(default_factory=list)
    collisions: list = field(default_factory=list)
    extra: list = field(default_factory=list)

    def row(self) -> list:
        return [self.id, self.elapsed_s, self.created, self.destroyed, self.parents, self.positions,
                self.lights, self.collisions, self.extra]


@dataclass
class Recording:
    """A whole recording as read back: ``path``, the header's fields and the ``frames``."""

    path: str
    map_name: str
    date: float
    dt_s: float
    additional_data: bool
    frames: List[Frame]

    @property
    def duration_s(self) -> float:
        """CARLA's ``Duration``: the elapsed time of the last frame (0 for an empty recording)."""
        return self.frames[-1].elapsed_s if self.frames else 0.0


def recorder_dir() -> Path:
    """Where plain names go: ``$CARLA_AGENT_RECORDER_DIR`` or ``./Saved`` under the server's cwd."""
    return Path(os.environ.get(ENV_DIR) or Path.cwd() / "Saved")


def resolve(name: str) -> Path:
    """The path of recording ``name`` (absolute: as given; otherwise under :func:`recorder_dir`)."""
    p = Path(name).expanduser()
    return p if p.is_absolute() else recorder_dir() / p


class Writer:
    """Appends frames to a new recording file (created, with its folder, at once)."""

    def __init__(self, path: Path, map_name: str, dt_s: float, additional_data: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = open(path, "wb")
        self._file.write(MAGIC)
        self._file.write(msgpack.packb({"version": VERSION, "map": map_name, "date": time.time(),
                                        "dt_s": float(dt_s), "additional_data": bool(additional_data)}))
        self._file.flush()
        self.frames = 0

    def write(self, frame: Frame) -> None:
        self._file.write(msgpack.packb(frame.row(), use_bin_type=True))
        self._file.flush()
        self.frames += 1

    def close(self) -> None:
        self._file.close()


def read(name: str) -> Recording:
    """Recording ``name`` (see :func:`resolve`); :class:`RecordingError` with CARLA's text if it
    is missing (``File NAME not found on disk``) or not one of ours."""
    path = resolve(name)
    try:
        f = open(path, "rb")
    except OSError:
        raise RecordingError(f"File {path} not found on disk") from None
    with f:
        if f.read(len(MAGIC)) != MAGIC:
            raise RecordingError(f"File {path} is not a carla_agent recording (the embedded server reads only "
                                 "its own recorder files, not CARLA's .log)")
        unpacker = msgpack.Unpacker(f, raw=False, strict_map_key=False, max_buffer_size=1 << 30)
        try:
            header = next(unpacker)
            frames = [Frame(*row) for row in unpacker]
        except (StopIteration, ValueError, TypeError, msgpack.UnpackException) as e:
            raise RecordingError(f"File {path} is damaged ({type(e).__name__}: {e})") from None
    if not isinstance(header, dict):
        raise RecordingError(f"File {path} is damaged (no header)")
    return Recording(str(path), str(header.get("map", "")), float(header.get("date", 0.0)),
                     float(header.get("dt_s", 0.05)), bool(header.get("additional_data", False)), frames)


def date_text(epoch_s: Optional[float]) -> str:
    """CARLA's ``Date`` (``%x %X`` local time)."""
    return time.strftime("%x %X", time.localtime(epoch_s or 0.0))
