"""A PID controller with output clamping and anti-windup."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PID:
    """``u = kp*e + ki*integral(e) + kd*de/dt``, clamped to ``[out_min, out_max]``.

    The integral stops growing while the output is saturated (anti-windup).
    """

    kp: float
    ki: float = 0.0
    kd: float = 0.0
    out_min: float = -1.0
    out_max: float = 1.0
    _integral: float = 0.0
    _prev_error: float | None = None

    def reset(self) -> None:
        self._integral = 0.0
        self._prev_error = None

    def run_step(self, error: float, dt_s: float) -> float:
        deriv = 0.0 if self._prev_error is None else (error - self._prev_error) / dt_s
        self._prev_error = error
        integral = self._integral + error * dt_s
        u = self.kp * error + self.ki * integral + self.kd * deriv
        if self.out_min < u < self.out_max:
            self._integral = integral
        return min(self.out_max, max(self.out_min, u))


@dataclass
class SpeedController:
    """Throttle/brake from a target speed, with a gap keeper behind a lead vehicle.

    The gap keeper lowers the target so the car stays ``time_gap_s`` behind the
    vehicle ahead (plus ``min_gap_m``), like a simple adaptive cruise control.
    """

    kp: float = 0.35
    ki: float = 0.08
    kd: float = 0.0
    time_gap_s: float = 1.6
    min_gap_m: float = 6.0

    def __post_init__(self) -> None:
        self._pid = PID(self.kp, self.ki, self.kd, out_min=-1.0, out_max=1.0)

    def reset(self) -> None:
        self._pid.reset()

    def target_for(self, target_speed_mps: float, speed_mps: float, lead_distance_m: float | None,
                   lead_speed_mps: float | None) -> float:
        if lead_distance_m is None:
            return target_speed_mps
        desired_gap = self.min_gap_m + self.time_gap_s * speed_mps
        lead_v = lead_speed_mps if lead_speed_mps is not None else 0.0
        follow = lead_v + 0.5 * (lead_distance_m - desired_gap)
        return max(0.0, min(target_speed_mps, follow))

    def run_step(self, target_speed_mps: float, speed_mps: float, dt_s: float,
                 lead_distance_m: float | None = None, lead_speed_mps: float | None = None):
        """Returns ``(throttle, brake)``, each in [0, 1]."""
        target = self.target_for(target_speed_mps, speed_mps, lead_distance_m, lead_speed_mps)
        u = self._pid.run_step(target - speed_mps, dt_s)
        if target < 0.1 and speed_mps < 0.3:
            return 0.0, 1.0  # hold still
        return (u, 0.0) if u >= 0 else (0.0, min(1.0, -u))
