import numpy as np
import pytest

from carla_agent.drive.agent import Decision, ExpertAgent
from carla_agent.control import VehicleControl
from carla_agent.sim.embedded.simulator import EmbeddedSimulator
from carla_agent.drive.runner import Runner, RunnerHook, StopDrive
from carla_agent.sim.scenario import load_scenario


class Recorder(RunnerHook):
    def __init__(self):
        self.frames, self.started, self.ended = [], 0, None

    def on_start(self, runner, obs):
        self.started += 1

    def on_step(self, record):
        assert record.decision.frame == record.obs.frame
        self.frames.append(record.obs.frame)

    def on_end(self, metrics, interrupted):
        self.ended = (metrics, interrupted)


class Veer:
    """An agent that steers hard right: it must trigger interventions."""

    def reset(self):
        pass

    def run_step(self, obs):
        return Decision(VehicleControl(steer=0.4, throttle=0.5), 0.4, frame=obs.frame)


def test_runner_fixed_ticks_and_hooks():
    sc = load_scenario("straight_clear")
    hook = Recorder()
    m = Runner(EmbeddedSimulator(render=False), ExpertAgent(sc.target_speed_mps), sc, duration_s=2.0,
               hooks=[hook]).run()
    assert m.frames == 40 and m.elapsed_s == pytest.approx(2.0)
    assert hook.frames == list(range(41))
    assert hook.started == 1 and hook.ended[0] is m and hook.ended[1] is False


def test_interventions_are_counted_and_recovered():
    sc = load_scenario("straight_clear")
    m = Runner(EmbeddedSimulator(render=False), Veer(), sc, duration_s=20.0).run()
    assert m.interventions >= 2
    assert m.max_abs_offset_m < 1.6  # the car was put back every time
    assert m.autonomy_pct == pytest.approx((1 - 6 * m.interventions / m.elapsed_s) * 100)


class Boom(RunnerHook):
    def __init__(self, exc, at=5):
        self.exc, self.at, self.ended = exc, at, False

    def on_step(self, record):
        if record.tick == self.at:
            raise self.exc

    def on_end(self, metrics, interrupted):
        self.ended = (metrics.frames, interrupted)


@pytest.mark.parametrize("exc, interrupted", [(KeyboardInterrupt(), True), (StopDrive(), False)])
def test_hooks_end_on_ctrl_c_and_stop(exc, interrupted):
    sc = load_scenario("straight_clear")
    hook = Boom(exc)
    runner = Runner(EmbeddedSimulator(render=False), ExpertAgent(sc.target_speed_mps), sc, hooks=[hook])
    m = runner.run()
    assert hook.ended == (5, interrupted) and m.frames == 5
    assert runner.interrupted is interrupted


def test_crash_still_ends_hooks_then_raises():
    sc = load_scenario("straight_clear")
    hook = Boom(RuntimeError("bug"))
    with pytest.raises(RuntimeError):
        Runner(EmbeddedSimulator(render=False), ExpertAgent(sc.target_speed_mps), sc, hooks=[hook]).run()
    assert hook.ended == (5, False)


def test_override_replaces_control():
    class Takeover(RunnerHook):
        def override(self, record):
            return VehicleControl(brake=1.0)

    sc = load_scenario("straight_clear")
    m = Runner(EmbeddedSimulator(render=False), ExpertAgent(sc.target_speed_mps), sc, duration_s=3,
               hooks=[Takeover()]).run()
    assert m.mean_speed_mps == 0.0
