"""Lane changes back to the route's lane: the rule, the command in the observation, the training data,
and models with and without lane-change branches."""

from __future__ import annotations

import numpy as np
import pytest

from carla_agent.drive.agent import ExpertAgent
from carla_agent.errors import BackendError
from carla_agent.sim.embedded.simulator import EmbeddedSimulator
from carla_agent.sim.routing.lane_change import DONE_M, START_M, LaneChangeCommand
from carla_agent.sim.routing.road_option import RoadOption
from carla_agent.sim.scenario import load_scenario

FOLLOW, LEFT, RIGHT = int(RoadOption.LANEFOLLOW), int(RoadOption.LEFT), int(RoadOption.RIGHT)
LCL, LCR = int(RoadOption.CHANGELANELEFT), int(RoadOption.CHANGELANERIGHT)


def test_the_rule_asks_for_a_lane_change_towards_the_route_lane_until_the_car_is_on_it():
    rule = LaneChangeCommand()
    assert rule(FOLLOW, -0.9 * START_M) == FOLLOW  # lane-keeping noise is no lane change
    assert rule(FOLLOW, -1.1 * START_M) == LCR  # left of the route lane: change right
    assert rule(FOLLOW, -1.2) == LCR  # held on the way back ...
    assert rule(FOLLOW, -1.1 * DONE_M) == LCR
    assert rule(FOLLOW, -0.9 * DONE_M) == FOLLOW  # ... until it is on the lane
    assert rule(FOLLOW, -1.2) == FOLLOW  # and not asked again below START_M
    assert rule(FOLLOW, 3.5) == LCL  # right of it: change left
    assert rule(FOLLOW, -0.8) == LCR  # overshot on the way: turn round
    assert rule(RIGHT, 3.5) == RIGHT and rule.active is None  # a junction's command wins
    assert rule(FOLLOW, 1.0) == FOLLOW
    rule(FOLLOW, 3.0)
    rule.reset()
    assert rule(FOLLOW, 1.0) == FOLLOW


@pytest.mark.parametrize("town", ["town_grid_small", "town_ring_multilane"])
def test_a_car_moved_a_lane_left_is_asked_to_change_right_and_the_expert_brings_it_back(town):
    sc = load_scenario(town)
    with EmbeddedSimulator(render=False) as sim:
        obs = sim.reset(sc)
        agent = ExpertAgent(sc.target_speed_mps)
        for _ in range(40):
            obs = sim.step(agent.run_step(obs).control)
        width = obs.truth.lane_width_m
        assert not sim.displace(width)  # right of the route's lane: the kerb, no lane
        assert sim.displace(-width)  # left: the oncoming lane (grid) or the lane beside (ring)
        seen = []
        for _ in range(200):
            obs = sim.step(agent.run_step(obs).control)
            seen.append((obs.command, obs.truth.lateral_offset_m, len(obs.collisions)))
    cmds = [c for c, _, _ in seen]
    junction = next((i for i, c in enumerate(cmds) if c not in (FOLLOW, LCR)), len(cmds))
    seen, cmds = seen[:junction], cmds[:junction]  # up to the next junction's command
    assert cmds[0] == LCR and seen[0][1] == pytest.approx(-width, abs=0.2)
    back = cmds.index(FOLLOW)
    assert set(cmds[:back]) == {LCR} and all(abs(o) > DONE_M for _, o, _ in seen[:back])
    assert abs(seen[back][1]) <= DONE_M and set(cmds[back:]) == {FOLLOW}
    assert len(seen) > back + 30 and max(abs(o) for _, o, _ in seen[back + 20:]) < 0.3  # settled on its lane
    assert sum(n for _, _, n in seen) == 0


def test_a_single_road_car_cannot_be_displaced():
    sc = load_scenario("straight_clear")
    with EmbeddedSimulator(render=False) as sim:
        sim.reset(sc)
        assert not sim.displace(-3.5)


def test_collect_with_lane_shifts_writes_lane_changes_labelled_towards_the_route(tmp_path):
    from carla_agent.network.collect import collect
    from carla_agent.network.dataset import load_dataset

    stats = collect(["town_grid_small"], tmp_path / "d", episodes=1, seed=3, duration_s=60.0,
                    lane_shifts_per_min=6.0, progress=False)
    assert stats["lane_shifts"] >= 2 and stats["interventions"] == 0
    a = load_dataset(tmp_path / "d").arrays
    lcr = a["command"] == LCR
    assert lcr.sum() >= 2 * 15
    # Left of the route lane, changing right: the expert's label steers right while far off it.
    far = lcr & (a["lateral_offset_m"] < -2.5)
    assert far.sum() >= 10 and np.mean(a["steer"][far] > 0) > 0.9
    assert not np.any(lcr & (np.abs(a["lateral_offset_m"]) <= 0.5 - 1e-6))


def test_lane_shifts_need_the_embedded_simulator():
    from carla_agent.network.lane_shifts import LaneShifts

    class NoDisplace:
        pass

    class Ctx:
        sim = NoDisplace()

    hook = LaneShifts(np.random.default_rng(0), 3.0)
    with pytest.raises(BackendError, match="embedded"):
        hook.on_start(Ctx(), None)
    with pytest.raises(ValueError, match="per_min"):
        LaneShifts(np.random.default_rng(0), 0.0)


def test_command_widths_four_and_six():
    pytest.importorskip("tensorflow")
    from carla_agent.network.command import COMMAND_ORDER, command_one_hot, mirror_command

    assert len(COMMAND_ORDER) == 6
    six = command_one_hot([FOLLOW, LEFT, LCL, LCR])
    assert six.shape == (4, 6) and six.argmax(axis=1).tolist() == [0, 1, 4, 5]
    four = command_one_hot([FOLLOW, LEFT, LCL, LCR], 4)  # no lane-change branch: lane following drives
    assert four.shape == (4, 4) and four.argmax(axis=1).tolist() == [0, 1, 0, 0]
    assert mirror_command(np.array([LEFT, LCL, LCR, FOLLOW])).tolist() == [RIGHT, LCR, LCL, FOLLOW]


def test_a_four_command_model_still_drives_and_a_six_command_one_starts_its_lane_changes_as_lane_following(
        tmp_path, monkeypatch):
    pytest.importorskip("tensorflow")
    import keras

    from carla_agent.errors import ModelError
    from carla_agent.network.command import COMMAND_INPUT
    from carla_agent.network.pilotnet import build_pilotnet, init_from
    from carla_agent.network.steering_model import SteeringModel

    # A 4-command model as this project shipped until 2026-12-06 (and CIL's): the same layer names.
    import carla_agent.network.command as command_module

    with monkeypatch.context() as m:
        m.setattr(command_module, "COMMAND_ORDER", command_module.COMMAND_ORDER[:4])
        four = build_pilotnet(commands=True, dropout=0.0, seed=1)
    assert four.inputs[1].shape[1] == 4
    path = tmp_path / "four.keras"
    four.save(path)
    sm = SteeringModel.load(path)
    frame = np.full((135, 240, 3), 90, np.uint8)
    follow = sm.predict(frame, command=FOLLOW).steer
    assert sm.predict(frame, command=LCR).steer == pytest.approx(follow)  # its lane-following branch
    assert sm.predict(frame, command=LEFT).steer != pytest.approx(follow)

    fresh = build_pilotnet(commands=True, dropout=0.0, seed=2)
    assert init_from(fresh, four) == 5 + 4 * 6  # the trunk; the 4 heads, and LANEFOLLOW's into both lane changes
    x = np.random.default_rng(0).random((2, 66, 200, 3)).astype(np.float32) * 255
    from carla_agent.network.command import command_one_hot

    lf = np.asarray(fresh([x, command_one_hot([FOLLOW] * 2)]))
    for c in (LCL, LCR):
        np.testing.assert_allclose(np.asarray(fresh([x, command_one_hot([c] * 2)])), lf, rtol=1e-5, atol=1e-6)

    # A command input of another width is refused, naming the widths it may have.
    image = keras.Input((66, 200, 3), name="image")
    bad_cmd = keras.Input((5,), name=COMMAND_INPUT)
    flat = keras.layers.Flatten()(keras.layers.Conv2D(2, 5, strides=4)(image))
    bad = keras.Model([image, bad_cmd], keras.layers.Dense(1)(keras.layers.Concatenate()([flat, bad_cmd])))
    bad.save(tmp_path / "bad.keras")
    with pytest.raises(ModelError, match=r"\(N, 6\).*\(N, 4\)"):
        SteeringModel.load(tmp_path / "bad.keras")


def test_collect_refuses_a_bad_lane_shift_rate(capsys):
    from carla_agent.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["collect", "--out", "unused", "--lane-shifts", "-1"])
    assert exit_.value.code == 2 and "--lane-shifts expects shifts per minute in [0, 60]" in capsys.readouterr().err


def test_lane_shifts_are_refused_off_the_embedded_backend_before_anything_starts(tmp_path):
    from carla_agent.network.collect import collect

    with pytest.raises(BackendError, match="--backend embedded"):
        collect(["town_grid_small"], tmp_path / "d", episodes=1, backend="carla", lane_shifts_per_min=3.0,
                progress=False)
    assert not (tmp_path / "d").exists()


def test_lane_shifts_leave_single_road_data_as_it_was(tmp_path):
    from carla_agent.network.collect import collect
    from carla_agent.network.dataset import load_dataset

    from carla_agent.drive.expert import NoiseParams

    rough = NoiseParams(amplitude=0.9, duration_s=1.5, interval_s=1.0)  # off by a metre now and then
    a = collect(["gentle_curves"], tmp_path / "a", episodes=1, seed=2, duration_s=20.0, noise=rough, progress=False)
    b = collect(["gentle_curves"], tmp_path / "b", episodes=1, seed=2, duration_s=20.0, noise=rough,
                lane_shifts_per_min=30.0, progress=False)
    assert a["interventions"] > 0  # the runner still puts the car back at 1 m there
    assert b["lane_shifts"] == 0 and a["frames"] == b["frames"] and a["interventions"] == b["interventions"]
    np.testing.assert_array_equal(load_dataset(tmp_path / "a").arrays["steer"], load_dataset(tmp_path / "b").arrays["steer"])
