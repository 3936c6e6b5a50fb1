"""One drive, wired once: simulator + agent + runner + hooks.

Every command that drives (``drive``, ``record``, replay's re-simulation and
re-drive, ``evaluate``, the closed-loop faithfulness test, the HUD's restarts)
goes through :func:`drive_scenario`, so that the order of construction, who owns
the simulator and what happens on Ctrl-C are decided in one place.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

from carla_agent.drive.agent import Agent, check_takes_command
from carla_agent.drive.metrics import DriveMetrics
from carla_agent.drive.runner import Runner, RunnerHook
from carla_agent.sim.simulator import Simulator, make_simulator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriveResult:
    """What one call of :func:`drive_scenario` gives back.

    Attributes:
        metrics: the last episode's metrics.
        interrupted: Ctrl-C ended the drive.
        episodes: how many episodes ran (more than 1 when ``restart`` asked for more).
        every_episode: every episode's metrics, in order (the last is ``metrics``).
    """

    metrics: DriveMetrics
    interrupted: bool
    episodes: int
    every_episode: Tuple[DriveMetrics, ...] = ()


def drive_scenario(scenario, agent: Agent, *, sim: Optional[Simulator] = None, backend: Optional[str] = None,
                   backend_options: Optional[dict] = None, seed: int = 0, duration_s: Optional[float] = None,
                   hooks: Sequence[RunnerHook] = (), intervention_m: float = 1.0,
                   restart: Optional[Callable[[], bool]] = None, max_episodes: int = 1000) -> DriveResult:
    """Drive ``scenario`` closed-loop with ``agent``.

    Args:
        scenario: a loaded :class:`~carla_agent.sim.scenario.Scenario`.
        agent: decides every tick (``NetworkAgent``, ``ExpertAgent``, ...).
        sim: a simulator the caller owns and closes (several drives on one server);
            when None, one is made from ``backend`` (default: the scenario's) and
            ``backend_options`` and closed when the drive ends, on every path.
        seed: episode seed.
        duration_s: [s] simulated time limit (default: the scenario's ``duration_s``).
        hooks: plugins (HUD, recorder, progress bar), called in order.
        intervention_m: [m] lateral offset that counts an intervention.
        restart: asked after each episode; True drives the scenario again on the same
            simulator and hooks (the HUD's BACKSPACE). Ctrl-C never restarts.
        max_episodes: a safety limit on restarts.
    """
    check_takes_command(scenario, agent)
    if sim is None:
        with make_simulator(backend or scenario.backend, **dict(backend_options or {})) as own:
            return _episodes(own, scenario, agent, seed, duration_s, hooks, intervention_m, restart, max_episodes)
    return _episodes(sim, scenario, agent, seed, duration_s, hooks, intervention_m, restart, max_episodes)


def _episodes(sim, scenario, agent, seed, duration_s, hooks, intervention_m, restart, max_episodes) -> DriveResult:
    done: List[DriveMetrics] = []
    while True:
        runner = Runner(sim, agent, scenario, seed=seed, duration_s=duration_s, hooks=hooks,
                        intervention_m=intervention_m)
        done.append(runner.run())
        if runner.interrupted or restart is None or len(done) >= max_episodes or not restart():
            return DriveResult(done[-1], runner.interrupted, len(done), tuple(done))
        log.info("restarting %s", scenario.name)
