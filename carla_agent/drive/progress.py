"""A progress bar for headless drives (a runner hook): animated on a terminal, a few
plain lines in a log (:func:`carla_agent.progress.progress_bar`)."""

from __future__ import annotations

from carla_agent.drive.metrics import format_autonomy
from carla_agent.drive.runner import RunnerHook
from carla_agent.progress import progress_bar


class ProgressHook(RunnerHook):
    """Shows simulated seconds driven, autonomy and offset on stderr."""

    def __init__(self, duration_s: float) -> None:
        self.duration_s = duration_s
        self._bar = None
        self._last = 0.0

    def on_start(self, context, obs) -> None:
        self._bar = progress_bar(round(self.duration_s, 1), context.scenario.name, unit="sim s",
                                 bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} sim s [{elapsed}<{remaining}{postfix}]")

    def on_step(self, record) -> None:
        if self._bar is None:
            return
        t = record.obs.sim_time_s
        if t - self._last >= 0.5:
            autonomy = format_autonomy(record.autonomy_pct, record.interventions, record.network_s, compact=True)
            self._bar.set_postfix_str(f"autonomy {autonomy} offset {record.obs.truth.lateral_offset_m:+.2f} m",
                                      refresh=False)  # shown by the update below
            self._bar.update(round(t - self._last, 2))
            self._last = t

    def on_end(self, metrics, interrupted: bool) -> None:
        if self._bar is not None:
            if metrics.completed:  # the route ended before the time limit
                self._bar.total = round(self._last, 1)
                self._bar.refresh()
            self._bar.close()
            self._bar = None
