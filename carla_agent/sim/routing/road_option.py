"""The high-level command at each step of a route, as CARLA's ``agents.navigation.local_planner.RoadOption``."""

from __future__ import annotations

from enum import IntEnum


class RoadOption(IntEnum):
    """Values as CARLA's, so that a command logged here means the same there."""

    VOID = -1
    LEFT = 1
    RIGHT = 2
    STRAIGHT = 3
    LANEFOLLOW = 4
    CHANGELANELEFT = 5
    CHANGELANERIGHT = 6
