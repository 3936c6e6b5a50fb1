"""The expert driver: pure pursuit on the lane centre, with optional noise injection.

It reads only the observation's ground truth (``route_ahead`` in the vehicle
frame), so it drives every backend the same way. Noise injection (as in
NVIDIA's data collection) perturbs the *applied* steering with smooth random
pulses, so the recorded data shows the expert recovering; the label is always
the expert's clean command.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from carla_agent.sim.observation import Observation


@dataclass(frozen=True)
class PurePursuitParams:
    wheelbase_m: float = 2.87
    max_steer_deg: float = 30.0
    lookahead_min_m: float = 4.0
    lookahead_s: float = 0.55  # lookahead grows with speed: L = max(min, k * v)
    lookahead_max_m: float = 20.0


def pure_pursuit_steer(route_ahead: np.ndarray, speed_mps: float,
                       params: PurePursuitParams = PurePursuitParams()) -> float:
    """Normalised steer in [-1, 1] (positive right) toward the lane centre.

    Args:
        route_ahead: ``(N, 2)`` lane-centre points in the vehicle frame
            (x forward, y right, metres), ordered by distance.
        speed_mps: current speed.
    """
    pts = np.asarray(route_ahead, dtype=np.float64)
    if pts.size == 0:
        return 0.0
    lookahead = min(params.lookahead_max_m, max(params.lookahead_min_m, params.lookahead_s * speed_mps))
    dist = np.hypot(pts[:, 0], pts[:, 1])
    idx = int(np.searchsorted(dist, lookahead))
    if idx >= len(pts):
        target = pts[-1]
    elif idx == 0:
        target = pts[0]
    else:  # interpolate to exactly the lookahead distance
        d0, d1 = dist[idx - 1], dist[idx]
        f = (lookahead - d0) / max(d1 - d0, 1e-6)
        target = pts[idx - 1] + f * (pts[idx] - pts[idx - 1])
    ld2 = float(target[0] ** 2 + target[1] ** 2)
    if ld2 < 1e-6:
        return 0.0
    curvature = 2.0 * float(target[1]) / ld2  # positive: turn right
    angle = math.atan(params.wheelbase_m * curvature)
    return float(np.clip(angle / math.radians(params.max_steer_deg), -1.0, 1.0))


@dataclass(frozen=True)
class NoiseParams:
    """Smooth steering perturbations: pulses of random sign and size.

    Every ``interval_s`` (on average) a pulse of ``duration_s`` adds up to
    ``amplitude`` to the applied steer, shaped as a half sine.
    """

    amplitude: float = 0.25
    duration_s: float = 0.8
    interval_s: float = 3.0


class Expert:
    """Pure pursuit + optional noise. ``run_step`` returns ``(label_steer, applied_steer)``."""

    def __init__(self, params: PurePursuitParams = PurePursuitParams(), noise: Optional[NoiseParams] = None,
                 rng: Optional[np.random.Generator] = None) -> None:
        self.params = params
        self.noise = noise
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self._pulse_t = -1.0
        self._pulse_amp = 0.0

    def reset(self) -> None:
        self._pulse_t = -1.0
        self._pulse_amp = 0.0

    def run_step(self, obs: Observation) -> tuple[float, float]:
        label = pure_pursuit_steer(obs.truth.route_ahead, obs.speed_mps, self.params)
        applied = label
        if self.noise is not None:
            dt = obs.dt_s
            if self._pulse_t < 0 and self.rng.random() < dt / self.noise.interval_s:
                self._pulse_t = 0.0
                self._pulse_amp = float(self.rng.uniform(-1, 1)) * self.noise.amplitude
            if self._pulse_t >= 0:
                applied = label + self._pulse_amp * math.sin(math.pi * self._pulse_t / self.noise.duration_s)
                self._pulse_t += dt
                if self._pulse_t >= self.noise.duration_s:
                    self._pulse_t = -1.0
        return label, float(np.clip(applied, -1.0, 1.0))
