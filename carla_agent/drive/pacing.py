"""Pacing a drive against the wall clock: simulated time follows real time times a speed factor.

The simulator steps as fast as it can; a person watching wants the 20 Hz world to
run at 20 Hz. :class:`Pacer` says, for each frame about to be shown, how long to
sleep so that ``sim_time_s`` is shown at ``anchor wall time + (sim_time_s - anchor
sim time) / speed``. Pure Python arithmetic, no clock of its own: the caller passes
``now_s`` (``time.monotonic()``), so the tests pass any times they like.

* A speed factor of ``math.inf`` (``--speed max``) never sleeps.
* When the drive falls behind by more than ``max_lag_s`` (a slow frame, a graph being
  built, a pause), the pacer re-anchors at that frame instead of racing to catch up.
* Changing the speed re-anchors at the last frame shown, so the change takes effect
  from there.

The speed keys halve and double the factor between :data:`MIN_SPEED` and
:data:`MAX_FINITE_SPEED`; doubling past that is ``max``, halving ``max`` gives
:data:`MAX_FINITE_SPEED` back.
"""

from __future__ import annotations

import math
from typing import Optional

from carla_agent.errors import CarlaAgentError

MIN_SPEED = 1.0 / 16.0  # the slowest factor the halving key reaches
MAX_FINITE_SPEED = 16.0  # doubling past this is "max" (as fast as it goes)
DEFAULT_MAX_LAG_S = 0.5  # [s] behind by more than this: start again from here instead of catching up


class PacingError(CarlaAgentError, ValueError):
    """A speed factor that is not a number > 0 or ``max``."""


def parse_speed(text: str) -> float:
    """``--speed`` text -> factor: a number > 0 (``1``, ``0.5``, ``4``) or ``max`` (``math.inf``).

    Raises:
        PacingError: anything else (the message says what is accepted).
    """
    word = str(text).strip().lower()
    if word in ("max", "inf", "unlimited"):
        return math.inf
    try:
        value = float(word)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        raise PacingError(f"--speed expects a number > 0 (1 = real time, 0.5 = half speed) or 'max', got {text!r}")
    return value


def format_speed(speed: float) -> str:
    """``1x``, ``0.5x``, ``0.0625x``, ``3x``, or ``max``."""
    if math.isinf(speed):
        return "max"
    return f"{speed:g}x"


def halve(speed: float) -> float:
    """The factor one press of the slower key gives (never below :data:`MIN_SPEED`)."""
    if math.isinf(speed):
        return MAX_FINITE_SPEED
    return max(MIN_SPEED, speed / 2.0)


def double(speed: float) -> float:
    """The factor one press of the faster key gives (``max`` past :data:`MAX_FINITE_SPEED`)."""
    if math.isinf(speed) or speed * 2.0 > MAX_FINITE_SPEED:
        return math.inf
    return speed * 2.0


class Pacer:
    """Says how long to wait before showing each frame so that simulated time follows the wall clock.

    Args:
        speed: simulated seconds per wall-clock second (> 0); ``math.inf``: never wait.
        max_lag_s: [s] when the frame is due more than this long ago, re-anchor at it.

    Attributes:
        speed: the factor now (set it with :meth:`set_speed`).
        resyncs: how many times the pacer re-anchored because the drive fell behind.
    """

    def __init__(self, speed: float = 1.0, max_lag_s: float = DEFAULT_MAX_LAG_S) -> None:
        if not speed > 0:
            raise PacingError(f"speed factor must be > 0 or math.inf, got {speed!r}")
        self.speed = float(speed)
        self.max_lag_s = float(max_lag_s)
        self.resyncs = 0
        self._anchor: Optional[tuple] = None  # (wall s, sim s) of the frame the schedule starts from
        self._last_sim_s: Optional[float] = None

    @property
    def unlimited(self) -> bool:
        """True at ``max``: :meth:`delay_s` is always 0."""
        return math.isinf(self.speed)

    def reset(self) -> None:
        """Forget the schedule: the next frame starts a new one (a new episode, after a pause)."""
        self._anchor = None

    def set_speed(self, speed: float, now_s: float) -> None:
        """Change the factor; the schedule restarts at the last frame asked about, at ``now_s``."""
        if not speed > 0:
            raise PacingError(f"speed factor must be > 0 or math.inf, got {speed!r}")
        self.speed = float(speed)
        self._anchor = None if self._last_sim_s is None else (now_s, self._last_sim_s)

    def due_s(self, sim_time_s: float) -> Optional[float]:
        """The wall time [s] at which ``sim_time_s`` should be shown, or None (no schedule yet, or ``max``)."""
        if self._anchor is None or self.unlimited:
            return None
        wall0, sim0 = self._anchor
        return wall0 + (sim_time_s - sim0) / self.speed

    def delay_s(self, sim_time_s: float, now_s: float) -> float:
        """[s] how long to wait (>= 0) before showing the frame at ``sim_time_s``, the time being ``now_s``.

        The first frame after :meth:`reset`, a frame earlier in simulated time than the last
        one (a restart), or a frame more than ``max_lag_s`` late anchors the schedule there
        and gets 0. Call it again after sleeping part of the delay: it gives what is left.
        """
        if self.unlimited:
            self._last_sim_s = sim_time_s
            return 0.0
        went_back = self._last_sim_s is not None and sim_time_s < self._last_sim_s
        self._last_sim_s = sim_time_s
        due = self.due_s(sim_time_s)
        if due is None or went_back:
            self._anchor = (now_s, sim_time_s)
            return 0.0
        if now_s - due > self.max_lag_s:
            self.resyncs += 1
            self._anchor = (now_s, sim_time_s)
            return 0.0
        return max(0.0, due - now_s)
