"""train(): split, augmentation, a short real training run on synthetic data."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from carla_agent.network.dataset import DatasetWriter  # noqa: E402
from carla_agent.errors import DatasetError, ModelError  # noqa: E402
from carla_agent.network.preprocess import Preprocessing, sidecar_path  # noqa: E402
from carla_agent.network.steering_model import SteeringModel  # noqa: E402
from carla_agent.network.train import Augmenter, split_indices, train  # noqa: E402

H, W = 66, 200
PX_PER_STEER = 70.0  # band centre = W/2 + steer * PX_PER_STEER


def band_image(steer: float, rng: np.random.Generator) -> np.ndarray:
    """Dark noisy image with a bright vertical band whose x position encodes steer."""
    img = rng.integers(0, 60, (H, W, 3), dtype=np.uint8)
    centre = int(round(W / 2 + steer * PX_PER_STEER))
    img[:, max(0, centre - 6):centre + 6] = rng.integers(200, 256, 3, dtype=np.uint8)
    return img


def write_band_dataset(root, frames=600, episodes=6, seed=0):
    rng = np.random.default_rng(seed)
    prep = Preprocessing(height=H, width=W, color_space="yuv")
    with DatasetWriter(root, prep, shard_size=250, meta={"scenarios": ["synthetic"]}) as writer:
        for i in range(frames):
            steer = float(rng.uniform(-1, 1))
            writer.add(band_image(steer, rng), steer=steer, applied_steer=steer, throttle=0.5,
                       speed_mps=8.0, lateral_offset_m=0.0, heading_error_rad=0.0,
                       episode=i * episodes // frames)
    return prep


def test_split_takes_the_tail_of_every_episode():
    episode = np.repeat(np.arange(10), 50)
    tr, va = split_indices(episode, 0.2, seed=4)
    tr2, va2 = split_indices(episode, 0.2, seed=4)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    assert len(va) == 100 and len(tr) == 400 and not set(tr) & set(va)
    # every episode is on both sides, and its validation frames are its last ones
    assert set(episode[tr]) == set(episode[va]) == set(range(10))
    for e in range(10):
        assert va[episode[va] == e].min() > tr[episode[tr] == e].max()
    tr, va = split_indices(np.zeros(100, np.int32), 0.15, seed=0)
    assert np.array_equal(va, np.arange(85, 100)) and np.array_equal(tr, np.arange(85))
    # a large fraction still leaves training frames in each episode
    tr, va = split_indices(np.repeat([0, 1], 10), 0.9, seed=0)
    assert len(tr) == 2 and len(va) == 18


def test_augmenter_flip_and_shift_correct_steering():
    rng = np.random.default_rng(0)
    images = np.stack([band_image(s, rng) for s in (-0.5, 0.0, 0.5)])
    steer = np.array([-0.5, 0.0, 0.5], np.float32)
    flip = Augmenter(0, brightness=(1, 1), shadow_prob=0, flip_prob=1, max_shift=0)
    out, y = flip(images, steer)
    assert np.array_equal(out, images[:, :, ::-1]) and np.allclose(y, -steer)
    shift = Augmenter(1, brightness=(1, 1), shadow_prob=0, flip_prob=0, max_shift=0.1,
                      shift_steer_per_px=1 / PX_PER_STEER)
    out, y = shift(images, steer)
    assert out.dtype == np.uint8 and out.shape == images.shape
    for img, label in zip(out, y):  # the band moved and the label followed it
        centre = np.mean(np.flatnonzero(img[H // 2, :, 0] > 150))
        assert centre == pytest.approx(W / 2 + label * PX_PER_STEER, abs=2.0)
    full = Augmenter(2)
    out, y = full(images, steer)
    assert out.shape == images.shape and np.all(np.abs(y) <= 1)


def test_augmenter_moves_masks_with_their_images_and_leaves_them_unpainted():
    rng = np.random.default_rng(0)
    images = np.stack([band_image(s, rng) for s in (-0.5, 0.0, 0.5, 0.3)])
    masks = images[:, :, :, 0] >= 200  # the band itself
    steer = np.array([-0.5, 0.0, 0.5, 0.3], np.float32)
    geometry = Augmenter(3, brightness=(1, 1), shadow_prob=0, flip_prob=0.5, max_shift=0.1)
    out, y, moved = geometry(images, steer, masks=masks)
    assert moved.dtype == bool and moved.shape == masks.shape and not np.array_equal(moved, masks)
    for img, m in zip(out, moved):  # each mask is where its image's band went (the image interpolates)
        assert np.mean(np.flatnonzero(m[H // 2])) == pytest.approx(np.mean(np.flatnonzero(img[H // 2, :, 0] >= 130)),
                                                                  abs=1.0)
    paint = Augmenter(4, brightness=(0.6, 0.7), shadow_prob=1.0, flip_prob=0, max_shift=0)
    out, y, cmd, same = paint(images, steer, np.zeros(4, np.int32), masks)
    assert not np.array_equal(out, images) and np.array_equal(same, masks)


def test_train_learns_band_position(tmp_path):
    data = tmp_path / "data"
    prep = write_band_dataset(data)
    out = tmp_path / "models" / "band.keras"
    metrics = train(data, out, epochs=4, batch_size=16, patience=3, seed=0,
                    shift_steer_per_px=1 / PX_PER_STEER)

    assert metrics["frames"] == 600 and metrics["train_frames"] + metrics["val_frames"] == 600
    assert set(metrics["train_episodes"]) == set(metrics["val_episodes"])  # the tail of every episode
    assert 1 <= metrics["epochs_run"] <= 4 and len(metrics["history"]["val_loss"]) == metrics["epochs_run"]
    # the model must beat predicting the training mean (~0.5 MAE for uniform labels)
    assert metrics["val_mae"] < 0.6 * metrics["baseline_val_mae"], metrics

    curves = out.with_name("band_training_curves.png")
    metrics_file = out.with_name("band_metrics.json")
    for path in (out, sidecar_path(out), curves, metrics_file):
        assert path.is_file() and path.stat().st_size > 0, path
    assert curves.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(metrics_file.read_text())["best_val_mae"] == metrics["best_val_mae"]
    side = json.loads(sidecar_path(out).read_text())
    assert side["training"]["frames"] == 600 and side["training"]["seed"] == 0

    sm = SteeringModel.load(out)
    assert sm.preprocessing == prep and sm.input_shape == (H, W, 3)
    # the reloaded model steers toward the band on a full camera-sized frame
    rng = np.random.default_rng(9)
    steers = []
    for target in (-0.6, 0.6):
        small = band_image(target, rng)
        camera = np.zeros((300, W, 3), np.uint8)
        top, bottom, _, _ = prep.crop_box(camera.shape[:2])
        camera[top:bottom] = small[np.linspace(0, H - 1, bottom - top).round().astype(int)]
        steers.append(sm.predict(camera).steer)
    assert steers[0] < steers[1]


def test_frozen_layers_keep_the_starting_weights(tmp_path):
    import keras

    data = tmp_path / "data"
    write_band_dataset(data, frames=120, episodes=2)
    base = tmp_path / "base.keras"
    train(data, base, epochs=1, batch_size=16, patience=1, seed=0)
    out = tmp_path / "tuned.keras"
    metrics = train(data, out, epochs=1, batch_size=16, patience=1, seed=1, init_from=base, learning_rate=1e-2,
                    freeze=("conv1", "conv2"))
    a, b = keras.saving.load_model(str(base), compile=False), keras.saving.load_model(str(out), compile=False)
    for name in ("conv1", "conv2"):
        for wa, wb in zip(a.get_layer(name).get_weights(), b.get_layer(name).get_weights()):
            np.testing.assert_array_equal(wa, wb)
    assert any(not np.array_equal(wa, wb) for wa, wb in zip(a.get_layer("conv3").get_weights(),
                                                           b.get_layer("conv3").get_weights()))
    assert metrics["frozen"] == ["conv1", "conv2"]
    with pytest.raises(ValueError, match="no layer named conv9.*conv1"):
        train(data, tmp_path / "x.keras", epochs=1, init_from=base, freeze=("conv9",))


def test_only_commands_trains_the_turn_branches_from_their_frames(tmp_path):
    """With the trunk and the LANEFOLLOW branch frozen and only the turn frames, the LANEFOLLOW branch
    and the trunk come out bit-equal, the turn branches move, and the file holds no optimizer state."""
    import h5py
    import keras
    import zipfile

    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    prep = Preprocessing(height=H, width=W, color_space="yuv")
    commands = [4, 4, 1, 2, 3]  # RoadOption values: LANEFOLLOW twice, LEFT, RIGHT, STRAIGHT
    with DatasetWriter(data, prep, shard_size=100, meta={"scenarios": ["synthetic"]}) as writer:
        for i in range(200):
            steer = float(rng.uniform(-1, 1))
            writer.add(band_image(steer, rng), steer=steer, applied_steer=steer, throttle=0.5, speed_mps=8.0,
                       lateral_offset_m=0.0, heading_error_rad=0.0, episode=i // 50,
                       command=commands[i % len(commands)])
    base = tmp_path / "base.keras"
    train(data, base, epochs=1, batch_size=16, patience=1, commands="on")
    frozen = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc1_lanefollow", "fc2_lanefollow",
              "fc3_lanefollow", "steer_lanefollow")
    out = tmp_path / "heads.keras"
    metrics = train(data, out, epochs=1, batch_size=16, patience=1, seed=1, commands="on", init_from=base,
                    learning_rate=1e-2, freeze=frozen, only_commands=("LEFT", "RIGHT", "STRAIGHT"))
    assert metrics["train_frames"] + metrics["val_frames"] == 120  # 3 of every 5 frames
    a, b = keras.saving.load_model(str(base), compile=False), keras.saving.load_model(str(out), compile=False)
    for name in frozen:
        for wa, wb in zip(a.get_layer(name).get_weights(), b.get_layer(name).get_weights()):
            np.testing.assert_array_equal(wa, wb)
    for name in ("fc1_left", "fc1_right", "fc1_straight"):
        assert not np.array_equal(a.get_layer(name).get_weights()[0], b.get_layer(name).get_weights()[0])
    # No lane-change frame: the base's lane-change heads are its LANEFOLLOW head, not random weights;
    # a model started from it keeps them as they were.
    for model in (a, b):
        for head in ("changelaneleft", "changelaneright"):
            for stem in ("fc1", "fc2", "fc3", "steer"):
                for wl, wc in zip(a.get_layer(f"{stem}_lanefollow").get_weights(),
                                  model.get_layer(f"{stem}_{head}").get_weights()):
                    np.testing.assert_array_equal(wl, wc)
    assert all(layer.trainable for layer in b.layers)
    with zipfile.ZipFile(out) as z:
        z.extract("model.weights.h5", tmp_path)
    with h5py.File(tmp_path / "model.weights.h5") as h5:
        assert "optimizer" not in h5
    with pytest.raises(ValueError, match="unknown TURN.*LEFT"):
        train(data, tmp_path / "x.keras", epochs=1, commands="on", only_commands=("TURN",))


def test_train_errors(tmp_path):
    with pytest.raises(DatasetError, match="no meta.json"):
        train(tmp_path / "missing", tmp_path / "m.keras")
    with pytest.raises(ModelError, match=r"\.keras"):
        train(tmp_path, tmp_path / "m.h5")
    small = tmp_path / "small"
    write_band_dataset(small, frames=5, episodes=1)
    with pytest.raises(DatasetError, match="only 5 frames"):
        train(small, tmp_path / "m.keras")


@pytest.mark.parametrize("meta", ['[1, 2]', '{"frames": 3}', '{"preprocessing": "crop"}'])
def test_a_meta_json_without_preprocessing_is_one_line(tmp_path, meta):
    from carla_agent.network.dataset import load_dataset
    (tmp_path / "meta.json").write_text(meta)
    with pytest.raises(DatasetError, match=r"meta\.json: field 'preprocessing'.*collect again"):
        load_dataset(tmp_path)
