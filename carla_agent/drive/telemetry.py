"""One frame's driving numbers: the snapshot the live HUD shows and the attention
videos draw from a drive log, so the two show the same quantities under the same names."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from carla_agent.sim.routing.road_option import RoadOption


@dataclass(frozen=True)
class DriveTelemetry:
    """What the car did at one frame. Steering in [-1, 1], positive = right.

    Attributes:
        frame: backend frame id.
        sim_time_s: [s] simulated time.
        speed_mps: [m/s] ego speed.
        steer_predicted: the network's (or expert's) steering.
        steer_applied: the steering applied.
        steer_expert: the expert's steering, or None when the backend does not know it.
        throttle, brake: applied pedals in [0, 1].
        lateral_offset_m: [m] distance from the lane centre, + = right.
        interventions: interventions so far this episode.
        row: row index in the drive log (0 live).
        command: the route's command, a RoadOption value (4 LANEFOLLOW; 1 LEFT, 2 RIGHT, 3 STRAIGHT;
            5 CHANGELANELEFT, 6 CHANGELANERIGHT).
    """

    frame: int
    sim_time_s: float
    speed_mps: float
    steer_predicted: float
    steer_applied: float
    steer_expert: Optional[float] = None
    throttle: float = 0.0
    brake: float = 0.0
    lateral_offset_m: float = 0.0
    interventions: int = 0
    row: int = 0
    command: int = 4

    @property
    def command_name(self) -> str:
        """``LANEFOLLOW``, ``LEFT``, ``RIGHT``, ``STRAIGHT`` (``VOID``...; unknown values as LANEFOLLOW)."""
        try:
            return RoadOption(int(self.command)).name
        except ValueError:
            return RoadOption.LANEFOLLOW.name

    @classmethod
    def from_record(cls, record: Any) -> "DriveTelemetry":
        """From a runner :class:`~carla_agent.drive.runner.StepRecord`, live."""
        obs = record.obs
        return cls(frame=obs.frame, sim_time_s=obs.sim_time_s, speed_mps=obs.speed_mps,
                   steer_predicted=record.decision.predicted_steer, steer_applied=record.control.steer,
                   steer_expert=obs.truth.expert_steer, throttle=record.control.throttle,
                   brake=record.control.brake, lateral_offset_m=obs.truth.lateral_offset_m,
                   interventions=record.interventions, command=int(getattr(obs, "command", 4)))

    @classmethod
    def from_row(cls, row: Mapping) -> "DriveTelemetry":
        """From a drive-log row (a dict or a pandas Series; missing, empty or NaN numbers read as 0;
        a row being written holds ``""`` where the backend had no value)."""
        def missing(v) -> bool:
            return v is None or v == "" or (isinstance(v, float) and math.isnan(v))

        def f(key: str, default: float = 0.0) -> float:
            v = row.get(key, default)
            return default if missing(v) else float(v)

        expert = row.get("expert_steer")
        expert = None if missing(expert) else float(expert)
        return cls(frame=int(row.get("frame", 0)), sim_time_s=f("sim_time_s"), speed_mps=f("speed_mps"),
                   steer_predicted=f("predicted_steer"), steer_applied=f("steer"), steer_expert=expert,
                   throttle=f("throttle"), brake=f("brake"), lateral_offset_m=f("lateral_offset_m"),
                   interventions=int(f("interventions")), row=int(row.get("i", 0)),
                   command=int(f("command", 4)))
