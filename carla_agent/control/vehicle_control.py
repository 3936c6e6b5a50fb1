"""Vehicle control in CARLA's conventions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VehicleControl:
    """One tick's command, with the ranges of ``carla.VehicleControl``.

    Attributes:
        steer: normalised steering in [-1, 1]; positive steers right (CARLA).
        throttle: in [0, 1].
        brake: in [0, 1].
        hand_brake: locks the rear wheels (embedded: brakes fully).
        reverse: drive backwards.
    """

    steer: float = 0.0
    throttle: float = 0.0
    brake: float = 0.0
    hand_brake: bool = False
    reverse: bool = False

    def __post_init__(self) -> None:
        for name, lo in (("steer", -1.0), ("throttle", 0.0), ("brake", 0.0)):
            value = float(getattr(self, name))
            if not np.isfinite(value):
                raise ValueError(f"VehicleControl.{name} is {value}; it must be finite")
            object.__setattr__(self, name, float(np.clip(value, lo, 1.0)))
