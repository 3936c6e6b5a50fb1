"""Sensor data: frames matched to ticks, and camera images converted to arrays.

The one-ticker pattern of CARLA's ``synchronous_mode.py``: sensor callbacks only
enqueue (:meth:`SensorQueue.put`); after each ``world.tick()`` the frame whose
``frame`` equals the tick's frame id is taken, stale ones dropped, and a missing
one times out with a clear error.
"""

from __future__ import annotations

import queue
import time
from typing import Dict, Tuple

import numpy as np

from carla_agent.errors import BackendError
from carla_agent.sim.criteria import leaderboard_kind
from carla_agent.sim.observation import SemanticClass

#: Semantic tags of CARLA >= 0.9.14 (``carla.CityObjectLabel``), CityScapes-style ids.
CITYSCAPES_IDS: Dict[str, int] = {
    "NONE": 0, "Roads": 1, "Sidewalks": 2, "Buildings": 3, "Walls": 4, "Fences": 5, "Poles": 6,
    "TrafficLight": 7, "TrafficSigns": 8, "Vegetation": 9, "Terrain": 10, "Sky": 11, "Pedestrians": 12,
    "Rider": 13, "Car": 14, "Truck": 15, "Bus": 16, "Train": 17, "Motorcycle": 18, "Bicycle": 19,
    "Static": 20, "Dynamic": 21, "Other": 22, "Water": 23, "RoadLines": 24, "Ground": 25, "Bridge": 26,
    "RailTrack": 27, "GuardRail": 28,
}
_SEMANTIC_OF: Dict[SemanticClass, Tuple[str, ...]] = {
    SemanticClass.ROAD: ("Roads",),
    SemanticClass.LANE_MARKING: ("RoadLines",),
    SemanticClass.SIDEWALK: ("Sidewalks",),
    SemanticClass.TRAFFIC_LIGHT: ("TrafficLight",),
    SemanticClass.TERRAIN: ("Vegetation", "Terrain", "Ground", "Water", "RailTrack"),
    SemanticClass.SKY: ("Sky",),
    SemanticClass.VEHICLE: ("Car", "Truck", "Bus", "Train", "Motorcycle", "Bicycle", "Rider"),
    SemanticClass.OBJECT: ("Buildings", "Walls", "Fences", "Poles", "TrafficSigns",
                           "Pedestrians", "Static", "Dynamic", "Other", "Bridge", "GuardRail"),
}


def _semantic_lut() -> np.ndarray:
    lut = np.full(256, SemanticClass.UNLABELED, dtype=np.uint8)
    for cls, names in _SEMANTIC_OF.items():
        for name in names:
            lut[CITYSCAPES_IDS[name]] = cls
    return lut


#: CityScapes id (the red channel of ``sensor.camera.semantic_segmentation``) -> SemanticClass.
SEMANTIC_LUT: np.ndarray = _semantic_lut()


class SensorQueue:
    """One sensor's data, matched to tick frame ids. The listen callback only enqueues.

    Args:
        name: the sensor's name, for error messages.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: "queue.Queue" = queue.Queue()
        self._early: Dict[int, object] = {}
        self.dropped = 0

    def put(self, data) -> None:
        """The ``sensor.listen`` callback: runs on CARLA's thread, must not block."""
        self._queue.put(data)

    def get(self, frame: int, timeout_s: float):
        """The item whose ``.frame == frame``; older ones are dropped. Raises BackendError on time-out."""
        for f in [f for f in self._early if f < frame]:
            del self._early[f]
            self.dropped += 1
        if frame in self._early:
            return self._early.pop(frame)
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=max(remaining, 0.0)) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                raise BackendError(
                    f"the {self.name} sent no data for frame {frame} within {timeout_s:g} s; the server may be "
                    "overloaded (try -quality-level=Low or a smaller image) or another client is ticking") from None
            got = int(item.frame)
            if got == frame:
                return item
            if got < frame:
                self.dropped += 1
            else:
                self._early[got] = item

    def drain(self) -> list:
        """Everything queued now, without blocking, ordered by frame (event sensors)."""
        items = list(self._early.values())
        self._early.clear()
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return sorted(items, key=lambda e: int(e.frame))


def _bgra(image) -> np.ndarray:
    h, w = int(image.height), int(image.width)
    buf = np.frombuffer(image.raw_data, dtype=np.uint8)  # a read-only view: no copy
    if buf.size != h * w * 4:
        raise BackendError(f"camera frame {image.frame}: {buf.size} bytes for {w}x{h} BGRA")
    return buf.reshape(h, w, 4)


def bgra_to_rgb(image) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB from a ``carla.Image``: one copy, from the BGRA view."""
    return np.ascontiguousarray(_bgra(image)[:, :, 2::-1])


def semantic_labels(image) -> np.ndarray:
    """``(H, W)`` uint8 :class:`SemanticClass` from a semantic camera's raw image (ids in red)."""
    return SEMANTIC_LUT[_bgra(image)[:, :, 2]]


def collision_kind(type_id: str) -> str:
    """The leaderboard's class of what was hit (:func:`~carla_agent.sim.criteria.leaderboard_kind`):
    ``vehicle``, ``pedestrian``, ``static``, or ``other`` for a curb or sidewalk (no penalty)."""
    return leaderboard_kind(type_id)
