"""Whether a recorded run is whole: complete, partial (cut short) or incomplete (its log is).

A run's driving score and route completion count only the road driven, so a run
cut short by a time limit below the scenario's own duration (``record --duration 20``
on a 70 s scenario), or recorded for part of a drive (the HUD's R key), scores low
without driving badly. The index and the report say so instead of showing such a
score as if it were a full run's:

* ``complete``: the log is complete and the drive ran from the start either to the
  route's end or for the scenario's whole duration;
* ``partial``: the log is complete but covers only part of that (why is in ``reason``);
* ``incomplete``: the log itself is not (killed, interrupted, disk full, frames dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping, Optional

State = Literal["complete", "partial", "incomplete"]


@dataclass(frozen=True)
class RunStatus:
    """How much of its scenario a run covers.

    Attributes:
        state: ``complete``, ``partial`` or ``incomplete``.
        recorded_s: [s] simulated time covered by the rows (first to last).
        scenario_s: [s] the scenario's own duration.
        reason: why the run is partial or incomplete (``""`` when complete).
    """

    state: State
    recorded_s: float
    scenario_s: float
    reason: str = ""

    @property
    def whole(self) -> bool:
        """The run's scores may be compared with a full run's."""
        return self.state == "complete"

    @property
    def coverage(self) -> str:
        """``"20 s of 70 s"``."""
        return f"{self.recorded_s:.0f} s of {self.scenario_s:.0f} s"

    @property
    def label(self) -> str:
        """``complete``, ``partial: 20 s of 70 s`` or ``incomplete: <reason>``."""
        if self.state == "complete":
            return "complete"
        if self.state == "partial":
            return f"partial: {self.coverage}"
        return f"incomplete: {self.reason}"


def run_status(meta: Mapping[str, Any], rows: Any, complete: Optional[bool] = None) -> RunStatus:
    """The :class:`RunStatus` of a run from its ``meta.json`` and its rows.

    Args:
        meta: ``meta.json`` as a dict (``duration_s``, ``dt_s``, ``scenario.duration_s``,
            ``metrics.completed``, ``stop_reason``, ``interrupted``, ``complete``).
        rows: the rows DataFrame (``sim_time_s`` column, seconds).
        complete: the log is complete (default ``meta["complete"]``).
    """
    complete = bool(meta.get("complete", False)) if complete is None else bool(complete)
    dt_s = float(meta.get("dt_s") or 0.05)
    limit_s = float(meta.get("duration_s") or 0.0)
    scenario_s = float((meta.get("scenario") or {}).get("duration_s") or limit_s)
    times = rows["sim_time_s"].astype(float) if len(rows) else None
    t0 = float(times.iloc[0]) if times is not None else 0.0
    t1 = float(times.iloc[-1]) if times is not None else 0.0
    recorded_s = max(0.0, t1 - t0)
    if not complete:
        reason = meta.get("stop_reason") or ("interrupted" if meta.get("interrupted") else
                                             "the writer did not finish (killed or crashed)")
        return RunStatus("incomplete", recorded_s, scenario_s, str(reason))
    route_done = bool((meta.get("metrics") or {}).get("completed"))
    slack_s = 1.5 * dt_s
    why = []
    if t0 > slack_s:
        why.append(f"recording started at {t0:.1f} s")
    if not route_done and t1 < scenario_s - slack_s:
        if limit_s < scenario_s - slack_s and t1 >= limit_s - slack_s:
            why.append(f"cut short by a {limit_s:g} s time limit")
        else:
            why.append(f"stopped at {t1:.1f} s before the route's end")
    if why:
        return RunStatus("partial", recorded_s, scenario_s, "; ".join(why))
    return RunStatus("complete", recorded_s, scenario_s)
