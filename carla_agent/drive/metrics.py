"""Closed-loop driving metrics, accumulated tick by tick.

* NVIDIA autonomy (arXiv 1604.07316, section 7.1): an intervention whenever
  the car is more than 1 m off its lane centre, each costing 6 s:
  ``autonomy = (1 - 6 s * interventions / network s) * 100``, where ``network s`` is
  the simulated time the network drove: ticks a person (the HUD's M) or the expert
  (the HUD's P) drove are left out of it, and count no intervention. With more than
  one intervention per 6 s it goes below 0; :func:`format_autonomy` then shows the
  formula with the number, never a bare negative percent.
* The CARLA leaderboard's driving score, from :class:`~carla_agent.sim.criteria.RouteCriteria`
  (the same criteria on every backend): route completion times a penalty per
  infraction (vehicle 0.60, static 0.65, pedestrian 0.50, red light 0.70), collisions
  de-duplicated as the leaderboard does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from carla_agent.sim.criteria import RouteCriteria
from carla_agent.sim.observation import Observation

INTERVENTION_COST_S = 6.0


def autonomy_pct(interventions: int, network_s: float) -> float:
    """NVIDIA's autonomy in percent over ``network_s`` seconds of network driving.

    Below 0 when there is more than one intervention per :data:`INTERVENTION_COST_S`
    seconds (unbounded below); 100.0 when the network has not driven yet.
    """
    if network_s <= 0:
        return 100.0
    return (1.0 - INTERVENTION_COST_S * interventions / network_s) * 100.0


def autonomy_formula(interventions: int, network_s: float) -> str:
    """NVIDIA's formula with this drive's numbers: ``(1 - 6 s * 25 / 50.7 s) * 100``."""
    return f"(1 - {INTERVENTION_COST_S:g} s * {interventions} / {network_s:.1f} s) * 100"


def format_autonomy(pct: float, interventions: int, network_s: float, takeover_s: float = 0.0,
                    compact: bool = False) -> str:
    """Autonomy for people: the percentage, and the formula whenever it is below 0.

    Args:
        pct: :func:`autonomy_pct` of ``interventions`` over ``network_s``.
        interventions: interventions counted.
        network_s: [s] simulated time the network drove.
        takeover_s: [s] simulated time a person or the expert drove (left out).
        compact: one short line (the progress bar; the HUD's panel when not below 0).

    Returns:
        e.g. ``98.8 % (1 intervention in 50.7 s of network driving)``, or below 0
        ``-196.0 % = (1 - 6 s * 25 interventions / 50.7 s) * 100: more than one ...``;
        ``n/a (...)`` when a person or the expert drove and the network has not.
    """
    cost_s = f"{INTERVENTION_COST_S:g}"
    taken = takeover_s > 1e-6  # float noise of elapsed - network is no takeover
    if network_s <= 0 and taken:
        if compact:
            return "n/a (network never drove)"
        return f"n/a: the network has not driven ({takeover_s:.1f} s taken over)"
    if pct < 0:
        if compact:
            return f"{pct:.0f}% = (1-{cost_s}s*{interventions}/{network_s:.1f}s)*100"
        return (f"{pct:.1f} % = (1 - {cost_s} s * {interventions} interventions / {network_s:.1f} s) * 100: "
                f"more than one intervention per {cost_s} s of network driving")
    if compact:
        return f"{pct:5.1f} %" + (f" of {network_s:.1f} s" if taken else "")
    plural = "" if interventions == 1 else "s"
    return f"{pct:.1f} % ({interventions} intervention{plural} in {network_s:.1f} s of network driving)"


@dataclass(frozen=True)
class DriveMetrics:
    """Summary of one drive. Distances in metres, speeds in m/s, times in seconds.

    ``autonomy_pct`` is over ``network_s``, the simulated time the network drove
    (``elapsed_s = network_s + takeover_s``; ``takeover_s`` is the time a person or the
    expert had the wheel). It is the plain number, below 0 for very bad drives;
    :meth:`table` prints it with its formula then. ``frames`` counts control ticks; a
    drive log holds one frame more, the observation before the first tick (frame 0).
    """

    scenario: str
    backend: str
    frames: int
    elapsed_s: float
    distance_m: float
    route_completion_pct: float
    interventions: int
    autonomy_pct: float
    network_s: float
    takeover_s: float
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
    red_lights: int = 0

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    def table(self) -> str:
        """Human-readable multi-line summary."""
        rows = [
            ("scenario", self.scenario), ("backend", self.backend),
            ("elapsed", f"{self.elapsed_s:.1f} s ({self.frames} ticks)"),
            ("distance", f"{self.distance_m:.0f} m, route {self.route_completion_pct:.1f} %"),
            ("autonomy", format_autonomy(self.autonomy_pct, self.interventions, self.network_s, self.takeover_s)),
            *([("taken over", f"{self.takeover_s:.1f} s driven by a person or the expert: no interventions "
                              "counted, left out of autonomy")] if self.takeover_s > 1e-6 else []),
            ("lateral offset", f"mean {self.mean_abs_offset_m:.3f} m, max {self.max_abs_offset_m:.3f} m"),
            ("lane invasions", str(self.lane_invasions)),
            ("collisions", f"{self.collisions} (vehicle {self.collisions_vehicle}, static {self.collisions_static})"),
            *([("red lights run", str(self.red_lights))] if self.red_lights else []),
            ("driving score", f"{self.driving_score:.1f}"),
            ("mean speed", f"{self.mean_speed_mps * 3.6:.1f} km/h"),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


class MetricsTracker:
    """Feed every observation (whether an intervention happened, who drove); read :meth:`result`."""

    def __init__(self, scenario: str, backend: str) -> None:
        self.scenario = scenario
        self.backend = backend
        self.frames = 0
        self.elapsed_s = 0.0
        self.interventions = 0
        self.takeover_s = 0.0
        self.lane_invasions = 0
        self.collisions = {"vehicle": 0, "static": 0, "pedestrian": 0}
        self._sum_abs = 0.0
        self._max_abs = 0.0
        self._sum_speed = 0.0
        self.route_s_m = 0.0
        self.route_length_m = 1.0
        self.done = False
        self.criteria = RouteCriteria()

    def update(self, obs: Observation, intervened: bool = False, network: bool = True) -> None:
        """One tick ending in ``obs``; ``network`` False: a person or the expert drove it
        (its ``dt_s`` goes to :attr:`takeover_s`, not to the network's time)."""
        self.frames += 1
        self.elapsed_s = obs.sim_time_s
        if not network:
            self.takeover_s += obs.dt_s
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
    def network_s(self) -> float:
        """[s] simulated time the network drove."""
        return max(self.elapsed_s - self.takeover_s, 0.0)

    @property
    def autonomy_pct(self) -> float:
        return autonomy_pct(self.interventions, self.network_s)

    def result(self) -> DriveMetrics:
        n = max(self.frames, 1)
        completion = 100.0 if self.done else min(100.0, 100.0 * self.route_s_m / self.route_length_m)
        return DriveMetrics(
            scenario=self.scenario, backend=self.backend, frames=self.frames, elapsed_s=self.elapsed_s,
            distance_m=self.route_s_m, route_completion_pct=completion, interventions=self.interventions,
            autonomy_pct=self.autonomy_pct, network_s=self.network_s, takeover_s=self.takeover_s,
            mean_abs_offset_m=self._sum_abs / n, max_abs_offset_m=self._max_abs,
            lane_invasions=self.lane_invasions,
            collisions=sum(n for kind, n in self.collisions.items() if kind != "other"),  # curbs: no collision
            collisions_vehicle=self.collisions["vehicle"], collisions_static=self.collisions["static"],
            collisions_pedestrian=self.collisions["pedestrian"],
            driving_score=self.criteria.result().score_pct, mean_speed_mps=self._sum_speed / n,
            completed=self.done, red_lights=self.criteria.infractions.get("red_light", 0),
        )


