"""``collect``: drive the noisy expert through scenarios and write a training dataset.

Every frame is written with the route's command (``Observation.command``:
LEFT, RIGHT or STRAIGHT before and through a town route's junctions,
LANEFOLLOW elsewhere and on single roads).

Noise injection follows NVIDIA's recipe: the applied steering is perturbed by
smooth pulses, the label is the expert's clean command, so the data shows how
to recover from off-centre positions.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from carla_agent.drive.agent import Decision, ExpertAgent
from carla_agent.drive.runner import RunnerHook, StepRecord
from carla_agent.drive.session import drive_scenario
from carla_agent.errors import BackendError
from carla_agent.network.dataset import DatasetWriter
from carla_agent.network.lane_shifts import LaneShifts
from carla_agent.drive.expert import Expert, NoiseParams
from carla_agent.network.preprocess import Preprocessing
from carla_agent.progress import progress_bar
from carla_agent.sim.scenario import WeatherSpec, load_scenario
from carla_agent.sim.simulator import make_simulator

log = logging.getLogger(__name__)

#: [m] with lane shifts, the runner puts the car back only this far off its route lane (two lanes
#: and a half: a shift is one lane, and the expert's noise comes on top).
LANE_SHIFT_INTERVENTION_M = 8.0


def collect(scenarios: Sequence[str], out_dir: str | Path, *, episodes: int = 2, seed: int = 0,
            duration_s: Optional[float] = None, noise: Optional[NoiseParams] = NoiseParams(),
            preprocessing: Preprocessing = Preprocessing(), backend: str = "embedded",
            backend_options: Optional[dict] = None, weathers: Sequence[str] = (),
            driver_model: Optional[str] = None, lane_shifts_per_min: float = 0.0,
            progress: bool = True) -> dict:
    """Write a dataset (see :mod:`carla_agent.network.dataset`) and return its statistics.

    Args:
        scenarios: scenario names or YAML paths.
        out_dir: new dataset directory.
        episodes: episodes per scenario; episode ``k`` uses seed ``seed + k``.
        duration_s: per-episode limit (the scenario's own when None).
        noise: steering-noise pulses; None drives clean.
        weathers: if given, episode ``k`` uses ``weathers[k % len]`` instead of the
            scenario's weather, to widen the training distribution.
        driver_model: DAgger: when set, this model steers (plus the noise) while
            the expert still labels every frame, so the data covers the states
            the network itself drives into.
        lane_shifts_per_min: on town routes (embedded backend), this many times a minute on average
            the car is moved one lane off its route lane (to the oncoming lane or a lane the same way),
            and the expert drives back under CHANGELANELEFT / CHANGELANERIGHT (those frames carry
            that command). The runner then puts the car back only past
            :data:`LANE_SHIFT_INTERVENTION_M`.
    """
    if lane_shifts_per_min < 0:
        raise ValueError(f"lane_shifts_per_min must be >= 0; got {lane_shifts_per_min}")
    if lane_shifts_per_min and backend != "embedded":
        raise BackendError(f"lane shifts move the car, which only the embedded simulator can; got backend "
                           f"{backend!r}: collect with --backend embedded, or without --lane-shifts")
    loaded = [load_scenario(s) for s in scenarios]
    total = sum(int((duration_s or sc.duration_s) / sc.dt_s) for sc in loaded) * episodes
    meta = {"scenarios": [sc.name for sc in loaded], "episodes": episodes, "seed": seed,
            "noise": None if noise is None else noise.__dict__, "backend": backend,
            "command": "per frame, RoadOption value (array 'command')"}
    stats = {"frames": 0, "episodes": 0, "interventions": 0, "lane_shifts": 0}
    if lane_shifts_per_min:
        meta["lane_shifts_per_min"] = lane_shifts_per_min
    model = None
    if driver_model is not None:
        from carla_agent.network.steering_model import SteeringModel

        model = SteeringModel.load(driver_model)
        meta["driver_model"] = str(driver_model)
    bar = progress_bar(total, "collect", unit="frame", enabled=progress)
    episode = 0
    with DatasetWriter(out_dir, preprocessing, meta=meta) as writer, \
            make_simulator(backend, **(backend_options or {})) as sim:
        for sc in loaded:
            for k in range(episodes):
                ep_seed = seed + 1000 * episode + k
                if weathers:
                    sc_ep = replace(sc, weather=WeatherSpec(preset=weathers[(episode + k) % len(weathers)]))
                else:
                    sc_ep = sc
                rng = np.random.default_rng(ep_seed)
                speed = sc.target_speed_mps * float(rng.uniform(0.8, 1.15))
                agent = ExpertAgent(speed, Expert(noise=noise, rng=rng))
                if model is not None:
                    agent = DaggerAgent(agent, model)
                limit = duration_s or sc.duration_s
                hooks = [_WriteFrames(writer, preprocessing, episode, limit, bar)]
                shifts = None  # town routes only: a single road has no other lane to shift onto
                if lane_shifts_per_min and sc.town is not None:
                    shifts = LaneShifts(np.random.default_rng(ep_seed + 7919), lane_shifts_per_min)
                    hooks.insert(0, shifts)
                result = drive_scenario(sc_ep, agent, sim=sim, seed=ep_seed, duration_s=limit, hooks=hooks,
                                        intervention_m=LANE_SHIFT_INTERVENTION_M if shifts else 1.0)
                stats["lane_shifts"] += shifts.shifts if shifts else 0
                if result.interrupted:
                    raise KeyboardInterrupt
                stats["interventions"] += result.metrics.interventions
                episode += 1
                stats["episodes"] += 1
        stats["frames"] = writer.count
    bar.close()
    log.info("collected %d frames in %d episodes into %s", stats["frames"], stats["episodes"], out_dir)
    return stats


class DaggerAgent:
    """DAgger: the network steers (plus the expert's noise) while the expert labels.

    The decision keeps the expert's clean command as ``predicted_steer`` (the label);
    its control steers by the network's prediction plus the noise the expert applied.
    """

    explainer = None

    def __init__(self, expert: ExpertAgent, model) -> None:
        self.expert = expert
        self.model = model

    def reset(self) -> None:
        self.expert.reset()

    def run_step(self, obs) -> Decision:
        decision = self.expert.run_step(obs)
        steer = self.model.predict(obs.image, command=obs.command).steer + (decision.control.steer
                                                                             - decision.predicted_steer)
        return replace(decision, control=replace(decision.control, steer=float(np.clip(steer, -1, 1))))


class _WriteFrames(RunnerHook):
    """Writes each driven frame to the dataset: the network's input, the expert's label, what was applied.
    The last observation of an episode (the one no control is applied to) is not written.

    When the simulator's ``expert_lag_ticks`` is 1 (CARLA's autopilot expert: the Traffic
    Manager's steer read after tick N answers frame N - 1), each frame is held back one
    tick and written with the label that arrives with the next one, so image and label
    are of the same tick."""

    def __init__(self, writer: DatasetWriter, preprocessing: Preprocessing, episode: int, limit_s: float,
                 bar) -> None:
        self.writer = writer
        self.preprocessing = preprocessing
        self.episode = episode
        self.limit_s = limit_s
        self.bar = bar
        self.lag_ticks = 0
        self._held: Optional[StepRecord] = None

    def on_start(self, context, obs) -> None:
        self.lag_ticks = int(getattr(context.sim, "expert_lag_ticks", 0) or 0)
        self._held = None

    def on_step(self, record: StepRecord) -> None:
        if self.lag_ticks:
            held, self._held = self._held, record
            if held is not None:  # the steer the expert chose for the held frame's state arrives now
                label = record.decision.predicted_steer
                self._write(held, label, label)
            return
        obs = record.obs
        if obs.done or obs.sim_time_s >= self.limit_s - 1e-9:
            return
        self._write(record, record.decision.predicted_steer, record.control.steer)

    def _write(self, record: StepRecord, label: float, applied: float) -> None:
        obs = record.obs
        self.writer.add(self.preprocessing.crop_resize(obs.image), steer=label,
                        applied_steer=applied, throttle=record.control.throttle,
                        speed_mps=obs.speed_mps, lateral_offset_m=obs.truth.lateral_offset_m,
                        heading_error_rad=obs.truth.heading_error_rad, episode=self.episode,
                        command=obs.command)
        self.bar.update(1)
