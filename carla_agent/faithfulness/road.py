"""Attention on the road: share of map mass on each semantic group against that group's share of the area.

A ratio (mass share / area share) above 1 means the map looks at the group
more than its size alone would explain.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Dict, Mapping, Sequence

import cv2
import numpy as np

from carla_agent.sim.observation import SemanticClass

GROUPS: Mapping[str, Sequence[int]] = MappingProxyType({
    "road": (SemanticClass.ROAD, SemanticClass.LANE_MARKING),
    "markings": (SemanticClass.LANE_MARKING,),
    "sky_vegetation": (SemanticClass.SKY, SemanticClass.TERRAIN),
    "vehicles": (SemanticClass.VEHICLE,),
})


@dataclass(frozen=True)
class RoadAttention:
    """Per group: ``mass`` share of |map|, ``area`` share of pixels, ``ratio = mass / area`` (means over frames)."""

    mass: Dict[str, float]
    area: Dict[str, float]

    def ratio(self, group: str) -> float:
        a = self.area[group]
        return self.mass[group] / a if a > 0 else float("nan")


def labels_to_input(labels: np.ndarray, preprocessing) -> np.ndarray:
    """Camera-size semantic labels ``(H, W)`` -> model-input size, same crop as the frame (nearest)."""
    t, b, l, r = preprocessing.crop_box(labels.shape[:2])
    crop = np.ascontiguousarray(labels[t:b, l:r]).astype(np.uint8)
    return cv2.resize(crop, (preprocessing.width, preprocessing.height), interpolation=cv2.INTER_NEAREST)


def road_attention(maps: np.ndarray, labels: np.ndarray,
                   groups: Mapping[str, Sequence[int]] = GROUPS) -> RoadAttention:
    """Mass and area shares. ``labels`` ``(N, H, W)`` ints at the maps' size (see :func:`labels_to_input`)."""
    maps = np.abs(np.asarray(maps, np.float64))
    labels = np.asarray(labels)
    if maps.shape != labels.shape:
        raise ValueError(f"maps {maps.shape} and labels {labels.shape} must have the same shape")
    total = maps.reshape(len(maps), -1).sum(1)
    valid = total > 0
    mass, area = {}, {}
    for name, ids in groups.items():
        inside = np.isin(labels, [int(i) for i in ids])
        m = (maps * inside).reshape(len(maps), -1).sum(1)
        mass[name] = float(np.mean(m[valid] / total[valid])) if valid.any() else float("nan")
        area[name] = float(inside.mean())
    return RoadAttention(mass, area)
