"""Closed-loop driving metrics, accumulated tick by tick.

* NVIDIA autonomy (arXiv 1604.07316, section 7.1): an intervention whenever
  the car is more than 1 m off its lane centre, each costing 6 s:
  ``autonomy = (1 - 6 s * interventions / elapsed s) * 100``.
* The CARLA leaderboard's driving score, from :class:`~carla_agent.sim.criteria.RouteCriteria`
  (the same criteria on every backend): route completion times a penalty per
  infraction (vehicle 0.60, static 0.65, pedestrian 0.50), collisions de-duplicated.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from carla_agent.sim.criteria import RouteCriteria
from carla_agent.sim.observation import Observation

INTERVENTION_COST_S = 6.0


def autonomy_pct(interventions: int, elapsed_s: float) -> float:
    """NVIDIA's autonomy in percent (can go below 0 for very bad drives)."""
    if elapsed_s <= 0:
        return 100.0
    return (1.0 - INTERVENTION_COST_S * interventions / elapsed_s) * 100.0


@dataclass(frozen=True)
class DriveMetrics:
    """Summary of one drive. Distances in metres, speeds in m/s, times in seconds."""

    scenario: str
    backend: str
    frames: int
    elapsed_s: float
    distance_m: float
    route_completion_pct: float
    interventions: int
    autonomy_pct: float
    mean_abs_offset_m: float
    max_abs_offset_m: float
    lane_invasions: int
    collisions: int
    collisions_vehicle: int
    collisions_static: int
    collisions_pedestrian: int
    driving_score: float
    mean_speed_mps: float
    completed: bool

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    def table(self) -> str:
        """Human-readable multi-line summary."""
        rows = [
            ("scenario", self.scenario), ("backend", self.backend),
            ("elapsed", f"{self.elapsed_s:.1f} s ({self.frames} frames)"),
            ("distance", f"{self.distance_m:.0f} m, route {self.route_completion_pct:.1f} %"),
            ("autonomy", f"{self.autonomy_pct:.1f} % ({self.interventions} interventions)"),
            ("lateral offset", f"mean {self.mean_abs_offset_m:.3f} m, max {self.max_abs_offset_m:.3f} m"),
            ("lane invasions", str(self.lane_invasions)),
            ("collisions", f"{self.collisions} (vehicle {self.collisions_vehicle}, static {self.collisions_static})"),
            ("driving score", f"{self.driving_score:.1f}"),
            ("mean speed", f"{self.mean_speed_mps * 3.6:.1f} km/h"),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


class MetricsTracker:
    """Feed every observation (and whether an intervention happened); read :meth:`result`."""

    def __init__(self, scenario: str, backend: str) -> None:
        self.scenario = scenario
        self.backend = backend
        self.frames = 0
        self.elapsed_s = 0.0
        self.interventions = 0
        self.lane_invasions = 0
        self.collisions = {"vehicle": 0, "static": 0, "pedestrian": 0}
        self._sum_abs = 0.0
        self._max_abs = 0.0
        self._sum_speed = 0.0
        self.route_s_m = 0.0
        self.route_length_m = 1.0
        self.done = False
        self.criteria = RouteCriteria()

    def update(self, obs: Observation, intervened: bool = False) -> None:
        self.frames += 1
        self.elapsed_s = obs.sim_time_s
        off = abs(obs.truth.lateral_offset_m)
        self._sum_abs += off
        self._max_abs = max(self._max_abs, off)
        self._sum_speed += obs.speed_mps
        self.interventions += int(intervened)
        self.lane_invasions += len(obs.lane_invasions)
        for ev in obs.collisions:
            self.collisions[ev.other_kind] = self.collisions.get(ev.other_kind, 0) + 1
        self.route_s_m = max(self.route_s_m, obs.truth.route_s_m)
        self.route_length_m = max(obs.truth.route_length_m, 1e-6)
        self.done = self.done or obs.done
        self.criteria.update(obs)

    @property
    def autonomy_pct(self) -> float:
        return autonomy_pct(self.interventions, self.elapsed_s)

    def result(self) -> DriveMetrics:
        n = max(self.frames, 1)
        completion = 100.0 if self.done else min(100.0, 100.0 * self.route_s_m / self.route_length_m)
        return DriveMetrics(
            scenario=self.scenario, backend=self.backend, frames=self.frames, elapsed_s=self.elapsed_s,
            distance_m=self.route_s_m, route_completion_pct=completion, interventions=self.interventions,
            autonomy_pct=self.autonomy_pct, mean_abs_offset_m=self._sum_abs / n, max_abs_offset_m=self._max_abs,
            lane_invasions=self.lane_invasions, collisions=sum(self.collisions.values()),
            collisions_vehicle=self.collisions["vehicle"], collisions_static=self.collisions["static"],
            collisions_pedestrian=self.collisions["pedestrian"],
            driving_score=self.criteria.result().score_pct, mean_speed_mps=self._sum_speed / n,
            completed=self.done,
        )


