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


class TakeWheel(RunnerHook):
    """Takes the wheel (steering right too) for ``ticks`` ticks, then gives it back; keeps every record."""

    def __init__(self, ticks):
        self.ticks, self.records = ticks, []

    def override(self, record):
        return VehicleControl(steer=0.4, throttle=0.5) if record.tick < self.ticks else None

    def on_step(self, record):
        self.records.append(record)


def test_a_takeover_counts_no_intervention_and_its_time_is_left_out():
    sc = load_scenario("straight_clear")
    hook = TakeWheel(ticks=100)
    m = Runner(EmbeddedSimulator(render=False), Veer(), sc, duration_s=20.0, hooks=[hook]).run()
    taken = [r for r in hook.records if r.taken_over]
    assert [r.tick for r in taken] == list(range(100))
    # Off the lane for many ticks while taken over, never put back: the offset only grows.
    offsets = [abs(r.obs.truth.lateral_offset_m) for r in hook.records[:101]]
    assert max(offsets) > 3.0 and all(b >= a for a, b in zip(offsets[20:], offsets[21:]))
    assert all(r.interventions == 0 for r in hook.records[:102])  # nor handed back off the lane
    # Given back 3 m off: the first network tick puts the car back, without counting.
    assert abs(hook.records[102].obs.truth.lateral_offset_m) < 1.0
    assert m.interventions >= 2  # the network itself still veers off afterwards
    dt = sc.dt_s
    assert m.takeover_s == pytest.approx(100 * dt) and m.network_s == pytest.approx(m.elapsed_s - 100 * dt)
    assert m.autonomy_pct == pytest.approx((1 - 6 * m.interventions / m.network_s) * 100)
    assert hook.records[-1].network_s == pytest.approx(m.network_s)  # the last record: no step after it
