"""Lane shifts for training data: now and then the car is moved one lane off its route lane.

A network that only ever saw the route lane cannot change back to it; this
hook gives the expert something to change back from. On a town route of the
embedded simulator, at random moments (on average ``per_min`` a minute, at least
:data:`MIN_GAP_S` apart) when the car is on its lane with no junction within
:data:`CLEAR_AHEAD_M`, the car is put one lane width to the left or right,
onto whichever side is a driving lane (the oncoming lane or one the same way).
The route then asks for CHANGELANELEFT / CHANGELANERIGHT
(:mod:`carla_agent.sim.routing.lane_change`) and the expert drives back.
"""

from __future__ import annotations

import logging

import numpy as np

from carla_agent.drive.runner import RunnerHook, StepRecord
from carla_agent.errors import BackendError
from carla_agent.sim.routing.road_option import RoadOption

log = logging.getLogger(__name__)

#: [s] at least this long between two shifts (a lane change back takes 3 to 5 s).
MIN_GAP_S = 8.0
#: [m] no junction command this far ahead of a shift, so that the lane change is done before one.
CLEAR_AHEAD_M = 60.0
#: [m/s] no shift below this speed (stopped at a light, starting).
MIN_SPEED_MPS = 3.0


class LaneShifts(RunnerHook):
    """A :class:`~carla_agent.drive.runner.RunnerHook` that moves the car a lane off now and then.

    Args:
        rng: draws the moments and the side tried first.
        per_min: mean shifts per minute of simulated time, > 0.

    Attributes:
        shifts: how many shifts were made in the drive.
    """

    def __init__(self, rng: np.random.Generator, per_min: float) -> None:
        if per_min <= 0:
            raise ValueError(f"per_min must be > 0; got {per_min}")
        self.rng = rng
        self.mean_gap_s = 60.0 / per_min
        self.shifts = 0
        self.sim = None
        self._next_s = 0.0

    def on_start(self, context, obs) -> None:
        self.sim = context.sim
        if not hasattr(self.sim, "displace"):
            raise BackendError("lane shifts need the embedded simulator (it moves the car); "
                               "collect with --backend embedded, or without --lane-shifts")
        self.shifts = 0
        self._next_s = obs.sim_time_s + self._gap_s()

    def _gap_s(self) -> float:
        return MIN_GAP_S + float(self.rng.exponential(max(self.mean_gap_s - MIN_GAP_S, 1e-3)))

    def on_step(self, record: StepRecord) -> None:
        obs, sim = record.obs, self.sim
        if (obs.sim_time_s < self._next_s or obs.command != int(RoadOption.LANEFOLLOW)
                or abs(obs.truth.lateral_offset_m) > 0.5 or obs.speed_mps < MIN_SPEED_MPS
                or getattr(sim, "corridor", None) is None
                or sim.corridor.command_at(sim.s, ahead_m=CLEAR_AHEAD_M) != RoadOption.LANEFOLLOW):
            return
        sides = (-1.0, 1.0) if self.rng.random() < 0.5 else (1.0, -1.0)
        for side in sides:
            if sim.displace(side * obs.truth.lane_width_m):
                self.shifts += 1
                log.debug("lane shift %+.1f m at t=%.1f s", side * obs.truth.lane_width_m, obs.sim_time_s)
                break
        self._next_s = obs.sim_time_s + self._gap_s()
