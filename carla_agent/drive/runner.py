"""The closed-loop runner: reset, then observe -> decide -> hooks -> step, at a fixed time step.

Plugins (HUD, saliency worker, recorder) attach as :class:`RunnerHook` objects
and never need the loop rewritten. Order of one tick:

1. the agent decides from the current observation;
2. every hook's ``override`` may take the wheel for this tick by returning a
   control (the last one returned wins); every hook's ``on_step`` then sees the
   observation, the decision and the control applied;
3. the simulator steps with the control;
4. on a tick the network drove, if the car is more than ``intervention_m`` off
   its lane centre, an intervention is counted and the car is put back
   (NVIDIA's protocol).

Taking the wheel: a tick on which a hook's ``override`` returned a control is
*taken over* (``StepRecord.taken_over``): a person drives it (the HUD's manual
mode, M) or the expert does (the HUD's autopilot, P). A taken-over tick counts
no intervention, the car is never put back on the lane (no teleport under the
person driving), and its time goes to ``DriveMetrics.takeover_s``, not to
``network_s``, the time autonomy is computed over. When the wheel comes back to
the network with the car already off its lane, the first network tick puts it
back without counting an intervention (the person left it there, not the network).
So a hook that only wants to look must return None from ``override``.

The run ends at the end of the route, at the duration limit, when a hook
raises :class:`StopDrive`, or on Ctrl-C; hooks' ``on_end`` runs on every path.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional, Sequence

from carla_agent.drive.agent import Agent, Decision
from carla_agent.control import VehicleControl
from carla_agent.drive.metrics import DriveMetrics, MetricsTracker
from carla_agent.sim.observation import Observation
from carla_agent.sim.simulator import Simulator

log = logging.getLogger(__name__)


class StopDrive(Exception):
    """Raised by a hook to end the drive cleanly (the HUD's ESC)."""


@dataclass(frozen=True)
class StepRecord:
    """What hooks see each tick.

    Attributes:
        obs: the observation the decision was made from.
        decision: the agent's decision for it.
        control: the control that will be applied (after any hook override).
        tick: index of the tick in this run, from 0.
        interventions: interventions so far.
        autonomy_pct: autonomy so far, over ``network_s`` (below 0 for very bad drives).
        sim_fps: simulation ticks per wall-clock second (smoothed).
        network_s: [s] simulated time the network has driven so far.
        taken_over: a hook's ``override`` took the wheel for this tick (a person or the expert
            drives it; see the module docstring).
    """

    obs: Observation
    decision: Decision
    control: VehicleControl
    tick: int
    interventions: int
    autonomy_pct: float
    sim_fps: float
    network_s: float = 0.0
    taken_over: bool = False


@dataclass(frozen=True, eq=False)
class DriveContext:
    """What a hook is told about the drive it joins (``on_start``), in place of the runner.

    Attributes:
        scenario: the scenario driven.
        seed: episode seed.
        duration_s: [s] simulated time limit.
        intervention_m: [m] lateral offset that counts an intervention.
        sim: the simulator (hooks that act on the world, e.g. the HUD's weather key).
        agent: the agent deciding; ``agent.model`` / ``agent.explainer`` may be None.
        metrics_so_far: the metrics of the frames driven so far.
    """

    scenario: Any
    seed: int
    duration_s: float
    intervention_m: float
    sim: Simulator
    agent: Agent
    metrics_so_far: Callable[[], DriveMetrics]

    @property
    def model(self) -> Any:
        """The network driving, or None (the expert)."""
        return getattr(self.agent, "model", None)

    @property
    def explainer(self) -> Any:
        """The saliency explainer run with the prediction, or None."""
        return getattr(self.agent, "explainer", None)


class RunnerHook:
    """Base class of plugins. Override what you need; all methods are optional."""

    def on_start(self, context: DriveContext, obs: Observation) -> None:
        """Called once after reset, with what the drive is and the first observation."""

    def override(self, record: StepRecord) -> Optional[VehicleControl]:
        """Return a control to take the wheel for this tick (a person or the expert drives it:
        no intervention is counted, no recovery, its time is not the network's), or None."""
        return None

    def on_step(self, record: StepRecord) -> None:
        """Called every tick before the simulator steps."""

    def on_end(self, metrics: DriveMetrics, interrupted: bool) -> None:
        """Called once when the run ends, on every exit path."""


class Runner:
    """Runs one episode of ``scenario`` on ``sim`` with ``agent``.

    Args:
        sim: a simulator backend (already constructed; the caller closes it).
        agent: decides each tick.
        scenario: the scenario to reset with.
        seed: episode seed.
        duration_s: time limit; the scenario's ``duration_s`` when None.
        hooks: plugins, called in order.
        intervention_m: lateral offset that triggers an intervention (on the network's ticks).
    """

    def __init__(self, sim: Simulator, agent: Agent, scenario, seed: int = 0,
                 duration_s: Optional[float] = None, hooks: Sequence[RunnerHook] = (),
                 intervention_m: float = 1.0) -> None:
        self.sim = sim
        self.agent = agent
        self.scenario = scenario
        self.seed = seed
        self.duration_s = scenario.duration_s if duration_s is None else float(duration_s)
        self.hooks = list(hooks)
        self.intervention_m = intervention_m
        self.tracker = MetricsTracker(scenario.name, sim.name)
        self.interrupted = False

    def run(self) -> DriveMetrics:
        obs = self.sim.reset(self.scenario, seed=self.seed)
        self.agent.reset()
        started = False
        tick = 0
        fps = 0.0
        last = time.perf_counter()
        was_taken_over = False
        try:
            context = DriveContext(self.scenario, self.seed, self.duration_s, self.intervention_m, self.sim,
                                   self.agent, self.tracker.result)
            for hook in self.hooks:
                hook.on_start(context, obs)
            started = True
            while True:
                decision = self.agent.run_step(obs)
                record = StepRecord(obs, decision, decision.control, tick, self.tracker.interventions,
                                    self.tracker.autonomy_pct, fps, self.tracker.network_s)
                control: Optional[VehicleControl] = None
                for hook in self.hooks:
                    replaced = hook.override(record)
                    if replaced is not None:
                        control = replaced
                taken_over = control is not None
                if taken_over:
                    record = replace(record, control=control, taken_over=True)
                for hook in self.hooks:
                    hook.on_step(record)
                if obs.done or obs.sim_time_s >= self.duration_s - 1e-9:
                    break
                # Given back off the lane: the person left the car there, not the network.
                handed_back_off = (was_taken_over and not taken_over
                                   and abs(obs.truth.lateral_offset_m) > self.intervention_m)
                obs = self.sim.step(record.control)
                off_lane = abs(obs.truth.lateral_offset_m) > self.intervention_m
                intervened = off_lane and not taken_over and not handed_back_off
                self.tracker.update(obs, intervened, network=not taken_over)
                if off_lane and not taken_over:
                    if intervened:
                        log.info("intervention at t=%.2f s: offset %.2f m", obs.sim_time_s,
                                 obs.truth.lateral_offset_m)
                    else:
                        log.info("handed back %.2f m off the lane at t=%.2f s: put back, not counted",
                                 obs.truth.lateral_offset_m, obs.sim_time_s)
                    self.sim.recover()
                was_taken_over = taken_over
                tick += 1
                now = time.perf_counter()
                fps = 0.9 * fps + 0.1 / max(now - last, 1e-6) if fps else 1.0 / max(now - last, 1e-6)
                last = now
        except KeyboardInterrupt:
            self.interrupted = True
            log.warning("interrupted at frame %d; metrics cover the frames driven so far", obs.frame)
        except StopDrive:
            log.info("stopped by a hook at frame %d", obs.frame)
        finally:
            metrics = self.tracker.result()
            if started or self.hooks:
                for hook in self.hooks:
                    try:
                        hook.on_end(metrics, self.interrupted)
                    except Exception:  # one broken hook must not lose another's data
                        log.exception("hook %s failed in on_end", type(hook).__name__)
        return metrics
