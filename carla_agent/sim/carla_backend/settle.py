"""Spawn settling: tick until the freshly spawned ego has landed and stopped bouncing.

CARLA spawn points lie above the road (``get_spawn_points()`` z is about 0.3-0.6 m up, and the
leaderboard adds 0.5 m more), so a new car falls, lands and rocks on its suspension for a few
tenths of a second. A first observation taken meanwhile sees a falling camera and a vertical
speed, and the first controls act on wheels that do not touch the road. ScenarioRunner and the
leaderboard tick the world after spawning before the route starts; here the ticks go on until the
ego's vertical speed and its height change per tick are both small, at least ``min_ticks`` and at
most ``max_ticks`` of them. Hitting the cap is logged in one line and the drive goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger(__name__)

#: Landed: vertical speed below this (m/s)...
SETTLED_VZ_MPS = 0.05
#: ...and height changed by less than this over the last tick (m).
SETTLED_DZ_M = 0.005


@dataclass(frozen=True)
class Settling:
    """How the ego settled: ``ticks`` ticked, ``settled`` False when the cap was hit (or was 0),
    the last tick's vertical speed ``vz_mps`` and height change ``dz_m``, and its height ``z_m``."""

    ticks: int
    settled: bool
    vz_mps: float
    dz_m: float
    z_m: float


def settle(tick: Callable[[], object], ego, min_ticks: int, max_ticks: int,
           after_tick: Callable[[], None] = lambda: None) -> Settling:
    """Tick (``tick()``, then ``after_tick()``, e.g. draining the sensor queues) until ``ego`` has landed.

    Landed: after at least ``max(1, min_ticks)`` ticks, ``|v_z| < SETTLED_VZ_MPS`` and the height
    changed by less than ``SETTLED_DZ_M`` over the last tick. ``max_ticks`` (raised to ``min_ticks``)
    caps it; ``max_ticks`` 0 ticks not at all. A warning names the cap when it is hit.
    """
    max_ticks = max(int(max_ticks), int(min_ticks))
    z = float(ego.get_transform().location.z)
    vz = dz = 0.0
    ticks = 0
    while ticks < max_ticks:
        tick()
        after_tick()
        ticks += 1
        z_now = float(ego.get_transform().location.z)
        vz, dz, z = float(ego.get_velocity().z), z_now - z, z_now
        if ticks >= max(1, min_ticks) and abs(vz) < SETTLED_VZ_MPS and abs(dz) < SETTLED_DZ_M:
            log.debug("the ego settled after %d ticks at z = %.3f m", ticks, z)
            return Settling(ticks, True, vz, dz, z)
    if max_ticks > 0:
        log.warning("the ego had not settled after %d ticks (carla.settle_max_ticks): vertical speed %.2f m/s, "
                    "height change %.3f m in the last tick; starting anyway. A spawn far above the road "
                    "(carla.spawn_transform.z_m) or a car stuck on something does this", ticks, vz, dz)
    return Settling(ticks, False, vz, dz, z)
