"""The route's command: in the observation, in the data, as the branched network's input, in saliency."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from carla_agent.drive.agent import ExpertAgent, NetworkAgent  # noqa: E402
from carla_agent.drive.session import drive_scenario  # noqa: E402
from carla_agent.errors import ModelError  # noqa: E402
from carla_agent.network.augment import Augmenter  # noqa: E402
from carla_agent.network.command import COMMAND_ORDER, command_one_hot  # noqa: E402
from carla_agent.network.dataset import load_dataset  # noqa: E402
from carla_agent.network.pilotnet import build_pilotnet, init_from  # noqa: E402
from carla_agent.network.preprocess import Preprocessing  # noqa: E402
from carla_agent.network.steering_model import SteeringModel  # noqa: E402
from carla_agent.sim.embedded.simulator import EmbeddedSimulator  # noqa: E402
from carla_agent.sim.routing.road_option import RoadOption  # noqa: E402
from carla_agent.sim.scenario import load_scenario  # noqa: E402

LEFT, RIGHT, STRAIGHT, FOLLOW = (int(RoadOption.LEFT), int(RoadOption.RIGHT), int(RoadOption.STRAIGHT),
                                 int(RoadOption.LANEFOLLOW))


@pytest.fixture(scope="module")
def branched():
    return build_pilotnet(commands=True, dropout=0.0, seed=3)


@pytest.fixture(scope="module")
def images():
    return (np.random.default_rng(0).random((3, 66, 200, 3)) * 255).astype(np.float32)


def test_the_output_is_exactly_the_head_of_the_command(branched, images):
    import keras

    heads = keras.Model(branched.inputs, [branched.get_layer(f"steer_{o.name.lower()}").output for o in COMMAND_ORDER])
    per_head = np.concatenate([np.asarray(h) for h in heads([images, command_one_hot([FOLLOW] * 3)])], axis=1)
    assert np.ptp(per_head, axis=1).min() > 1e-3  # the branches differ
    for k, option in enumerate(COMMAND_ORDER):
        out = np.asarray(branched([images, command_one_hot([int(option)] * 3)])).reshape(-1)
        np.testing.assert_allclose(out, per_head[:, k], rtol=1e-5, atol=1e-6)


def test_fine_tuning_starts_every_branch_as_the_plain_model(images):
    plain = build_pilotnet(dropout=0.0, seed=7)
    model = build_pilotnet(commands=True, dropout=0.0, seed=8)
    assert init_from(model, plain) == 5 + 4 * len(COMMAND_ORDER)  # the conv trunk, and fc1-3 + steer into each branch
    want = np.asarray(plain(images)).reshape(-1)
    for option in COMMAND_ORDER:
        got = np.asarray(model([images, command_one_hot([int(option)] * 3)])).reshape(-1)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_steering_model_feeds_the_command(branched, images, tmp_path):
    path = tmp_path / "branched.keras"
    branched.save(path)
    sm = SteeringModel.load(path)
    assert sm.takes_command and sm.input_shape == (66, 200, 3) and sm.summary()["command_input"] is True
    assert sm.conv_layer_names == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    for c in (LEFT, RIGHT, STRAIGHT, FOLLOW):
        sm.set_command(c)
        want = np.asarray(branched([images, command_one_hot([c] * 3)])).reshape(-1)
        np.testing.assert_allclose(sm.predict_inputs(images)[:, 0], want, rtol=1e-5, atol=1e-6)
    frame = np.zeros((270, 480, 3), np.uint8)
    left, right = sm.predict(frame, command=LEFT).outputs[0], sm.predict(frame, command=RIGHT).outputs[0]
    assert left != right and sm.command == RIGHT
    # The agent hands the observation's command on every frame.
    sc = load_scenario("town_grid_small")
    with EmbeddedSimulator(render=False) as sim:
        obs = sim.reset(sc)
        NetworkAgent(sm, sc.target_speed_mps).run_step(obs)
    assert sm.command == obs.command


def test_a_model_without_command_input_stops_on_a_town_route(tmp_path):
    path = tmp_path / "plain.keras"
    build_pilotnet(dropout=0.0).save(path)
    sm = SteeringModel.load(path)
    assert not sm.takes_command
    sm.set_command(LEFT)  # ignored: a plain model is always lane following
    with pytest.raises(ModelError) as err:
        drive_scenario(load_scenario("town_grid_small"), NetworkAgent(sm, 7.0), duration_s=1.0)
    text = str(err.value)
    assert "\n" not in text and str(path) in text and "town_grid_small" in text and "command" in text
    # ... and keeps driving single roads.
    m = drive_scenario(load_scenario("straight_clear"), NetworkAgent(sm, 7.0), duration_s=0.5).metrics
    assert m.frames > 0


def test_the_command_turns_before_a_turning_junction_and_back_after_it():
    sc = load_scenario("town_grid_small")  # straight at C, right at E, right at S, straight at C
    with EmbeddedSimulator(render=False) as sim:
        obs = sim.reset(sc)
        legs = sim.corridor.legs
        right = next(leg for leg in legs if leg[4] == RoadOption.RIGHT)
        agent = ExpertAgent(sc.target_speed_mps)
        seen = []
        while not obs.done and obs.sim_time_s < sc.duration_s:
            obs = sim.step(agent.run_step(obs).control)
            seen.append((sim.s, obs.command))
    before = [c for s, c in seen if right[0] - 15.0 < s < right[0] - 1.0]
    inside = [c for s, c in seen if right[0] + 1.0 < s < right[1] - 1.0]
    after = [c for s, c in seen if right[1] + 2.0 < s < right[1] + 10.0]
    far = [c for s, c in seen if s < legs[1][0] - 25.0]
    assert before and set(before) == {RIGHT}, before
    assert inside and set(inside) == {RIGHT}
    assert after and set(after) == {FOLLOW}
    assert far and set(far) == {FOLLOW}
    assert {LEFT, RIGHT, STRAIGHT} & {c for _, c in seen} == {RIGHT, STRAIGHT}


def test_a_single_road_is_always_lane_following():
    sc = load_scenario("hairpin_dusk")
    with EmbeddedSimulator(render=False) as sim:
        obs = sim.reset(sc)
        agent = ExpertAgent(sc.target_speed_mps)
        commands = {obs.command}
        for _ in range(200):
            obs = sim.step(agent.run_step(obs).control)
            commands.add(obs.command)
    assert commands == {FOLLOW}


def test_collect_writes_the_command_of_every_frame(tmp_path):
    from carla_agent.network.collect import collect

    collect(["town_grid_small"], tmp_path / "d", episodes=1, duration_s=12.0, progress=False)
    data = load_dataset(tmp_path / "d")
    cmd = data.arrays["command"]
    assert cmd.shape == (len(data),) and cmd.dtype == np.int32
    assert cmd[0] == FOLLOW and STRAIGHT in set(cmd.tolist())  # straight across C after ~68 m
    assert "command" in json.loads((tmp_path / "d" / "meta.json").read_text())


def test_lane_following_frames_flip_and_junction_and_lane_change_frames_never_do():
    # A mirrored junction is a left-hand-traffic one: its left turn ends in the near lane, the
    # oncoming lane of right-hand traffic; a mirrored return from the oncoming lane is a move into
    # it. Lane following mirrors to lane following.
    aug = Augmenter(0, brightness=(1, 1), shadow_prob=0, flip_prob=1, max_shift=0)
    imgs = np.zeros((7, 66, 200, 3), np.uint8)
    imgs[:, :, :50] = 255  # bright on the left
    lcl, lcr = int(RoadOption.CHANGELANELEFT), int(RoadOption.CHANGELANERIGHT)
    out, steer, cmd = aug(imgs, np.array([0.1, -0.2, 0.3, -0.15, 0.2, 0.25, -0.4], np.float32),
                          np.array([LEFT, RIGHT, STRAIGHT, lcl, lcr, FOLLOW, FOLLOW]))
    np.testing.assert_allclose(steer, [0.1, -0.2, 0.3, -0.15, 0.2, -0.25, 0.4])
    assert cmd.tolist() == [LEFT, RIGHT, STRAIGHT, lcl, lcr, FOLLOW, FOLLOW]
    assert (out[:5, :, :50] == 255).all() and (out[5:, :, -50:] == 255).all() and (out[5:, :, :50] == 0).all()
    _, plain = aug(imgs, np.array([0.1] * 7, np.float32))  # no commands: every frame flips
    np.testing.assert_allclose(plain, [-0.1] * 7)


def test_every_saliency_method_explains_the_branch_that_drives(branched, images):
    from carla_agent.saliency import METHODS, make_explainer

    sm = SteeringModel(branched, Preprocessing())
    x = images[:1]
    for name in METHODS.names():
        explainer = make_explainer(sm, name)
        results = {}
        for c in (LEFT, RIGHT):
            sm.set_command(c)
            results[c] = explainer(x)
            want = float(np.asarray(branched([x, command_one_hot([c])])).reshape(-1)[0])
            assert float(np.asarray(results[c].prediction)[0, 0]) == pytest.approx(want, abs=1e-4), name
        maps = [np.asarray(r.maps) for r in results.values()]
        assert maps[0].shape == maps[1].shape and np.all(np.isfinite(maps[0])), name
        if name in ("gradient", "gradient_signed", "integrated_gradients", "smoothgrad", "occlusion"):
            assert not np.allclose(maps[0], maps[1]), name  # the other branch explains differently



def test_conv_methods_explain_each_branch_with_the_trunk_it_reads(images):
    """A junction trunk of its own: Grad-CAM, VisualBackProp and the other conv-layer methods take
    the turn branches' layers from it and lane following's from the other trunk (the whole model's
    deepest conv layer would leave one group with an all-zero Grad-CAM, or the other trunk's map)."""
    from carla_agent.saliency import METHODS, make_explainer

    model = build_pilotnet(commands=True, junction_trunk=True, dropout=0.0, seed=5)
    sm = SteeringModel(model, Preprocessing())
    x = images[:1]
    for name in (n for n in METHODS.names() if METHODS.get(n).needs_conv):
        sm.set_command(LEFT)
        explainer = make_explainer(sm, name)
        assert explainer.explainers == 2 and sm.command == LEFT, name  # both trunks built, the command put back
        maps, layers = {}, {}
        for c in (FOLLOW, LEFT, RIGHT, STRAIGHT):
            sm.set_command(c)
            result = explainer(x)
            maps[c], layers[c] = np.asarray(result.maps), result.layer
            want = float(np.asarray(model([x, command_one_hot([c])])).reshape(-1)[0])
            assert float(np.asarray(result.prediction)[0, 0]) == pytest.approx(want, abs=1e-4), name
            assert np.all(np.isfinite(maps[c])) and np.ptp(maps[c]) > 0, (name, c)
        assert explainer.explainers == 2, name  # one per trunk, shared by the branches on it
        if layers[FOLLOW]:  # a layer name says whose trunk it is
            assert "junction" not in layers[FOLLOW] and all("junction" in layers[c] for c in (LEFT, RIGHT, STRAIGHT)), \
                (name, layers)
        assert not np.allclose(maps[FOLLOW], maps[LEFT]), name
    with pytest.raises(ValueError, match="commands=True"):
        build_pilotnet(junction_trunk=True)



def test_a_named_layer_is_taken_at_the_same_depth_of_the_trunk_each_branch_reads(images):
    """``--layer conv3`` (or ``conv3_junction``, both in the HUD's layer key) on a model with a
    trunk per group of branches: before, the branches that do not read it made the method
    unavailable ("no conv layer named 'conv3_junction'")."""
    from carla_agent.errors import ModelError
    from carla_agent.saliency import make_explainer

    sm = SteeringModel(build_pilotnet(commands=True, junction_trunk=True, dropout=0.0, seed=5), Preprocessing())
    for asked in ("conv3", "conv3_junction"):
        explainer = make_explainer(sm, "gradcam", layer=asked)
        for c, want in ((FOLLOW, "conv3"), (LEFT, "conv3_junction"), (STRAIGHT, "conv3_junction")):
            sm.set_command(c)
            result = explainer(images[:1])
            assert result.layer.split("/")[-1] == want and np.ptp(np.asarray(result.maps)) > 0, (asked, c)
        sm.set_command(FOLLOW)
    with pytest.raises(ModelError, match=r"no conv layer named 'conv9' on any branch; conv layers: conv1, "):
        make_explainer(sm, "visual_backprop", layer="conv9")

def test_a_shared_trunk_builds_one_conv_explainer_for_every_branch(branched, images):
    from carla_agent.saliency import make_explainer

    sm = SteeringModel(branched, Preprocessing())
    explainer = make_explainer(sm, "gradcam")
    layers = set()
    for c in (FOLLOW, LEFT, RIGHT, STRAIGHT):
        sm.set_command(c)
        layers.add(explainer(images[:1]).layer)
    assert explainer.explainers == 1 and len(layers) == 1


def test_the_video_explains_each_frame_with_the_branch_that_drove_it(branched):
    """``record``/``replay`` videos: a frame driven on RIGHT gets the RIGHT branch's map and steering,
    as the HUD showed live, whatever command the model held; the held command is put back."""
    from carla_agent.recording.render import _commands
    from carla_agent.recording.sources import ExplainerSource

    sm = SteeringModel(branched, Preprocessing())
    frames = (np.random.default_rng(1).random((3, 66, 200, 3)) * 255).astype(np.uint8)
    source = ExplainerSource(sm, "gradient")
    sm.set_command(LEFT)
    got = source(frames, [RIGHT, FOLLOW, RIGHT])
    assert sm.command == LEFT
    for k, c in enumerate((RIGHT, FOLLOW, RIGHT)):
        sm.set_command(c)
        alone = source(frames[k:k + 1])
        assert got.steer[k] == pytest.approx(float(alone.steer[0]), abs=1e-5)
        np.testing.assert_allclose(got.maps[k], alone.maps[0], rtol=1e-4, atol=1e-6)
    assert not np.isclose(got.steer[0], got.steer[1], atol=1e-4)  # two branches, two answers
    assert _commands([{"command": "2"}, {"command": None}, {"command": float("nan")}]) == [2, 4, 4]
    assert _commands([{}, {"command": ""}]) is None  # a log without commands: the model's own

def _waypoints(points, junction):
    from types import SimpleNamespace as NS

    out = []
    for k, (x, y) in enumerate(points):
        nx, ny = points[min(k + 1, len(points) - 1)] if k + 1 < len(points) else (2 * x - points[k - 1][0],
                                                                                    2 * y - points[k - 1][1])
        yaw = float(np.degrees(np.arctan2(ny - y, nx - x)))
        out.append(NS(transform=NS(location=NS(x=x, y=y, z=0.0), rotation=NS(yaw=yaw)), lane_width=3.5,
                      road_id=1, lane_id=-1, is_junction=junction(k)))
    return out


@pytest.mark.parametrize("side, want", [(1, RIGHT), (-1, LEFT), (0, STRAIGHT)])
def test_the_carla_route_gives_each_junction_its_command(side, want):
    """CARLA's frame: x east, y south, yaw clockwise; eastbound, a turn to +y (south) is a right turn."""
    from carla_agent.sim.carla_backend.route import Route

    pts = [(float(x), 0.0) for x in range(60)]  # 60 m east, then a 10 m radius quarter turn (or straight on)
    for a in np.linspace(0, np.pi / 2, 16)[1:]:
        pts.append((59 + 10 * np.sin(a), side * 10 * (1 - np.cos(a))) if side else (59 + 10 * a, 0.0))
    x_end, y_end = pts[-1]
    for k in range(1, 40):
        pts.append((x_end, y_end + side * k) if side else (x_end + k, 0.0))
    route = Route(_waypoints(pts, lambda k: 60 <= k < 75))
    assert [j[2] for j in route.junctions] == [want]
    s_in = route.junctions[0][0]
    assert route.command_at(s_in - 30.0) == FOLLOW and route.command_at(s_in - 10.0) == want
    assert route.command_at(route.junctions[0][1] + 5.0) == FOLLOW
