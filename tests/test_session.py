"""drive_scenario: the one wiring of simulator + agent + runner + hooks."""

from __future__ import annotations

import pytest

from carla_agent.drive.agent import ExpertAgent
from carla_agent.drive.runner import RunnerHook
from carla_agent.drive.session import drive_scenario
from carla_agent.sim import simulator as simulator_module
from carla_agent.sim.embedded.simulator import EmbeddedSimulator
from carla_agent.sim.scenario import load_scenario


class CountingSim(EmbeddedSimulator):
    closes = 0

    def close(self) -> None:
        CountingSim.closes += 1
        super().close()


class Ticks(RunnerHook):
    def __init__(self) -> None:
        self.starts = 0
        self.steps = 0

    def on_start(self, runner, obs) -> None:
        self.starts += 1

    def on_step(self, record) -> None:
        self.steps += 1


@pytest.fixture
def scenario():
    return load_scenario("straight_clear")


def test_a_simulator_it_makes_is_closed_and_one_passed_in_is_not(scenario, monkeypatch):
    CountingSim.closes = 0
    monkeypatch.setattr(simulator_module.BACKENDS, "get", lambda name: CountingSim)
    agent = ExpertAgent(scenario.target_speed_mps)
    result = drive_scenario(scenario, agent, duration_s=0.5)
    assert CountingSim.closes == 1
    assert result.episodes == 1 and not result.interrupted
    assert result.metrics.frames == 10  # steps of 0.05 s up to the 0.5 s limit
    with CountingSim() as sim:
        drive_scenario(scenario, agent, sim=sim, duration_s=0.5)
        assert CountingSim.closes == 1
    assert CountingSim.closes == 2


def test_restart_drives_again_on_the_same_simulator_and_hooks(scenario):
    asked = []

    def restart() -> bool:
        asked.append(True)
        return len(asked) < 3

    hook = Ticks()
    with EmbeddedSimulator() as sim:
        result = drive_scenario(scenario, ExpertAgent(scenario.target_speed_mps), sim=sim, duration_s=0.25,
                                hooks=[hook], restart=restart)
    assert result.episodes == 3 and len(asked) == 3
    assert len(result.every_episode) == 3 and result.every_episode[-1] is result.metrics
    assert all(m.frames == 5 for m in result.every_episode)
    assert hook.starts == 3 and hook.steps == 3 * 6


def test_ctrl_c_never_restarts(scenario):
    class Interrupt(RunnerHook):
        def on_step(self, record) -> None:
            if record.tick == 2:
                raise KeyboardInterrupt

    with EmbeddedSimulator() as sim:
        result = drive_scenario(scenario, ExpertAgent(scenario.target_speed_mps), sim=sim, duration_s=1.0,
                                hooks=[Interrupt()], restart=lambda: True)
    assert result.interrupted and result.episodes == 1
