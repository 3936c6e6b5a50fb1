"""The expert driver: pure pursuit on the lane centre, with optional noise injection.

It reads only the observation's ground truth, so it drives every backend the
same way: the backend's ``truth.expert_steer`` when it gives one (computed with
the ego's own wheelbase and maximum steering angle: about 70 degrees on CARLA's
cars, 30 on the embedded car, so a steer of 0.5 turns the wheels the same on
both only through it), otherwise pure pursuit on ``route_ahead`` with
:class:`PurePursuitParams`. Noise injection (as in
NVIDIA's data collection) perturbs the *applied* steering with smooth random
pulses, so the recorded data shows the expert recovering; the label is always
the expert's clean command.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from carla_agent.control.pure_pursuit import PurePursuitParams, pure_pursuit_steer
from carla_agent.sim.observation import Observation


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
    """Pure pursuit + optional noise. ``run_step`` returns ``(label_steer, applied_steer)``.

    ``params`` are used only when the observation carries no ``truth.expert_steer``.
    """

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
        label = obs.truth.expert_steer
        if label is None:  # a backend that does not know the car's steering geometry
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
