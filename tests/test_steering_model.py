"""SteeringModel: loading .keras/.h5, outputs, preprocessing, errors."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import layers  # noqa: E402

from carla_agent.errors import ModelError  # noqa: E402
from carla_agent.network.pilotnet import build_pilotnet  # noqa: E402
from carla_agent.network.preprocess import Preprocessing, sidecar_path  # noqa: E402
from carla_agent.network.steering_model import Prediction, SteeringModel  # noqa: E402


def tiny(input_shape=(66, 200, 3), heads=(("steer", 1),), name="tiny"):
    """Small conv net with one Dense head per (name, units)."""
    inp = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalize")(inp)
    x = layers.Conv2D(4, 5, strides=4, activation="relu", name="conv1")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outs = [layers.Dense(units, name=head)(x) for head, units in heads]
    return keras.Model(inp, outs if len(outs) > 1 else outs[0], name=name)


@pytest.fixture(scope="module")
def pilotnet_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "pilotnet.keras"
    model = build_pilotnet(seed=3)
    model.save(path)
    return model, path


def frame(h=600, w=800, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_pilotnet_keras_round_trip_predicts_identically(pilotnet_file):
    model, path = pilotnet_file
    loaded = SteeringModel.load(path)
    in_memory = SteeringModel(model)
    assert any(isinstance(layer, layers.Rescaling) for layer in loaded.keras_model.layers)
    x = np.random.default_rng(1).uniform(0, 255, (5, 66, 200, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict_inputs(x), in_memory.predict_inputs(x), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(loaded.predict_inputs(x), model(x, training=False).numpy(), rtol=1e-5, atol=1e-6)
    assert loaded.predict_inputs(x).shape == (5, 1)
    loaded.predict_inputs(x[:1])
    loaded.predict(frame())
    assert loaded._fn.experimental_get_tracing_count() == 1  # one trace, any batch size
    assert loaded.output_names == ["steer"]
    assert (loaded.steer_index, loaded.throttle_index) == (0, None)
    # no sidecar: size from the model, rgb for 3 channels, default crops
    assert loaded.preprocessing == Preprocessing(height=66, width=200, color_space="rgb")
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert in_memory.sha256 is None
    summary = loaded.summary()
    json.dumps(summary)
    assert summary["conv_layers"] == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert summary["input_shape"] == [66, 200, 3] and summary["output_names"] == ["steer"]
    assert summary["params"] == model.count_params()


def test_predict_on_camera_frame_of_other_size(pilotnet_file):
    model, path = pilotnet_file
    sm = SteeringModel.load(path)
    f = frame(480, 640)
    pred = sm.predict(f)
    assert isinstance(pred, Prediction)
    assert -1.0 <= pred.steer <= 1.0 and pred.throttle is None and len(pred.outputs) == 1
    expected = model(sm.preprocessing(f)[None], training=False).numpy()[0, 0]
    assert pred.outputs[0] == pytest.approx(float(expected), abs=1e-5)


def test_sidecar_preprocessing_and_explicit_override(tmp_path):
    path = tmp_path / "m.keras"
    tiny().save(path)
    yuv = Preprocessing(crop_top=0.5, height=66, width=200, color_space="yuv")
    sidecar_path(path).write_text(json.dumps({"preprocessing": yuv.to_dict()}))
    assert SteeringModel.load(path).preprocessing == yuv
    bgr = Preprocessing(height=66, width=200, color_space="bgr")
    assert SteeringModel.load(path, preprocessing=bgr).preprocessing == bgr

    wrong = Preprocessing(height=60, width=200).to_dict()
    sidecar_path(path).write_text(json.dumps({"preprocessing": wrong}))
    with pytest.raises(ModelError, match="disagrees with the model input 66x200"):
        SteeringModel.load(path)
    with pytest.raises(ModelError, match="disagrees"):
        SteeringModel(tiny(), preprocessing=Preprocessing(height=120, width=160))
    with pytest.raises(ModelError, match="channel"):
        SteeringModel(tiny(), preprocessing=Preprocessing(color_space="gray"))


def test_a_model_file_without_a_sidecar_says_what_it_assumes(tmp_path, caplog):
    # A YUV-trained model fed RGB drives badly with no error at all: the guess is said aloud.
    path = tmp_path / "m.keras"
    tiny().save(path)
    with caplog.at_level(logging.WARNING, logger="carla_agent.network.steering_model"):
        SteeringModel.load(path)
    ours = "carla_agent.network.steering_model"
    said = [r.getMessage() for r in caplog.records if r.name == ours and r.levelno == logging.WARNING]
    assert len(said) == 1 and "no sidecar m.json" in said[0] and "assuming rgb, rows 0.38-0.94" in said[0]
    caplog.clear()
    sidecar_path(path).write_text(json.dumps({"preprocessing": Preprocessing(height=66, width=200).to_dict()}))
    with caplog.at_level(logging.WARNING, logger="carla_agent.network.steering_model"):
        SteeringModel.load(path)
        SteeringModel(tiny())  # in memory: no file, so no sidecar to ask for
    assert not [r for r in caplog.records if r.name == ours and r.levelno >= logging.WARNING]


def test_legacy_h5_loads(tmp_path):
    model = build_pilotnet(seed=1)
    path = tmp_path / "legacy.h5"
    model.save(path)
    sm = SteeringModel.load(path)
    x = np.random.default_rng(2).uniform(0, 255, (3, 66, 200, 3)).astype(np.float32)
    np.testing.assert_allclose(sm.predict_inputs(x), model(x, training=False).numpy(), rtol=1e-5, atol=1e-6)
    assert sm.output_names == ["steer"]


def test_a_file_that_is_no_model_container_says_what_it_is(tmp_path):
    # Keras said "File not found" of each of these, though the file was there.
    good_keras, good_h5 = tmp_path / "good.keras", tmp_path / "good.h5"
    tiny().save(good_keras)
    tiny().save(good_h5)
    cases = {"empty.keras": (b"", "is empty (0 bytes"),
             "cut.keras": (good_keras.read_bytes()[:2000], "not a .keras file (2000 bytes, no zip archive"),
             "renamed.keras": (good_h5.read_bytes(), "not a .keras file"),
             "cut.h5": (b"PK\x03\x04" + good_h5.read_bytes()[8:3000], "not an HDF5 file (2996 bytes"),
             "empty.h5": (b"", "is empty (0 bytes")}
    for name, (data, said) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ModelError) as info:
            SteeringModel.load(path)
        assert str(info.value).startswith(f"{path}: ") and said in str(info.value), (name, str(info.value))
    assert SteeringModel.load(good_keras).n_outputs == SteeringModel.load(good_h5).n_outputs == 1


def test_two_named_outputs(tmp_path):
    path = tmp_path / "two.keras"
    tiny(heads=(("throttle", 1), ("steer", 1))).save(path)
    sm = SteeringModel.load(path)
    assert sm.output_names == ["throttle", "steer"]
    assert (sm.steer_index, sm.throttle_index) == (1, 0)
    out = sm.predict_inputs(np.full((2, 66, 200, 3), 128, np.float32))
    assert out.shape == (2, 2) and out.dtype == np.float32
    pred = sm.predict(frame())
    assert pred.throttle == pred.outputs[0]
    assert pred.steer == pytest.approx(float(np.clip(pred.outputs[1], -1, 1)))
    assert sm.output_index("steer") == 1 and sm.output_index(-1) == 1


def test_dense2_head_and_output_index():
    sm = SteeringModel(tiny(heads=(("controls", 2),)))
    assert sm.output_names == ["controls_0", "controls_1"]
    assert (sm.steer_index, sm.throttle_index) == (0, 1)
    assert sm.output_index("controls_1") == 1 and sm.output_index(0) == 0
    with pytest.raises(ModelError, match=r"controls_0, controls_1.*0\.\.1"):
        sm.output_index("brake")
    with pytest.raises(ModelError, match="out of range"):
        sm.output_index(5)
    three = SteeringModel(tiny(heads=(("a", 1), ("steering_angle", 1), ("b", 1))))
    assert (three.steer_index, three.throttle_index) == (1, None)


def test_160x120_model_and_gray_default():
    sm = SteeringModel(tiny(input_shape=(120, 160, 3)))
    assert sm.input_shape == (120, 160, 3)
    assert (sm.preprocessing.height, sm.preprocessing.width) == (120, 160)
    assert sm.predict(frame(600, 800)).outputs
    gray = SteeringModel(tiny(input_shape=(66, 200, 1)))
    assert gray.preprocessing.color_space == "gray"
    assert len(gray.predict(frame(300, 400)).outputs) == 1


def test_steer_is_clipped_outputs_are_not():
    inp = keras.Input((32, 32, 3))
    x = layers.GlobalAveragePooling2D()(inp)
    out = layers.Dense(1, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(5.0),
                       name="steer")(x)
    pred = SteeringModel(keras.Model(inp, out)).predict(frame(64, 64))
    assert pred.steer == 1.0 and pred.outputs == (5.0,)


def test_wrong_shape_inputs():
    sm = SteeringModel(tiny())
    with pytest.raises(ValueError, match=r"\(N, 66, 200, 3\).*\(2, 66, 200, 1\)"):
        sm.predict_inputs(np.zeros((2, 66, 200, 1), np.float32))
    with pytest.raises(ValueError, match=r"\(66, 200, 3\)"):
        sm.predict_inputs(np.zeros((66, 200, 3), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        sm.predict(np.zeros((100, 100, 3), np.float32))
    with pytest.raises(ValueError, match="RGB"):
        sm.predict(np.zeros((100, 100), np.uint8))


def test_missing_corrupt_and_wrong_extension(tmp_path):
    missing = tmp_path / "nope.keras"
    with pytest.raises(ModelError, match=r"nope\.keras: no such model file; pass --model PATH"):
        SteeringModel.load(missing)
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelError, match=r"corrupt\.keras: not a \.keras file") as info:
        SteeringModel.load(corrupt)
    assert "\n" not in str(info.value)
    import zipfile

    other_zip = tmp_path / "other.keras"  # a zip archive, but not Keras's
    with zipfile.ZipFile(other_zip, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(ModelError, match=r"other\.keras: cannot read the model file") as info:
        SteeringModel.load(other_zip)
    assert "\n" not in str(info.value)
    corrupt_h5 = tmp_path / "corrupt.h5"
    corrupt_h5.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(ModelError, match="not an HDF5 file"):
        SteeringModel.load(corrupt_h5)
    wrong = tmp_path / "model.onnx"
    wrong.write_bytes(b"x")
    with pytest.raises(ModelError, match="extension '.onnx'"):
        SteeringModel.load(wrong)
    with pytest.raises(ModelError, match="directory"):
        SteeringModel.load(tmp_path)


def test_models_that_cannot_steer(tmp_path):
    vec_in = keras.Input((10,))
    vector = keras.Model(vec_in, layers.Dense(1)(vec_in))
    path = tmp_path / "vector.keras"
    vector.save(path)
    with pytest.raises(ModelError, match=r"vector\.keras: model input has shape \(None, 10\)"):
        SteeringModel.load(path)

    a, b = keras.Input((66, 200, 3)), keras.Input((66, 200, 3))
    pooled = layers.GlobalAveragePooling2D()(layers.Add()([a, b]))
    with pytest.raises(ModelError, match="2 inputs"):
        SteeringModel(keras.Model([a, b], layers.Dense(1)(pooled)))

    rgba = keras.Input((66, 200, 4))
    with pytest.raises(ModelError, match="4 channels"):
        SteeringModel(keras.Model(rgba, layers.Dense(1)(layers.GlobalAveragePooling2D()(rgba))))

    img = keras.Input((66, 200, 3))
    with pytest.raises(ModelError, match="not a scalar per sample"):
        SteeringModel(keras.Model(img, layers.Conv2D(1, 3, name="segmap")(img)))

    with pytest.raises(ModelError, match="no defined inputs"):
        SteeringModel(keras.Sequential([layers.Dense(1)]))


def test_import_does_not_load_tensorflow():
    code = ("import sys, carla_agent, carla_agent.network.steering_model, carla_agent.network.train; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_size_agnostic_model_takes_size_from_preprocessing():
    inp = keras.Input((None, None, 3))
    out = layers.Dense(1, name="steer")(layers.GlobalAveragePooling2D()(inp))
    model = keras.Model(inp, out)
    with pytest.raises(ModelError, match="not fixed"):
        SteeringModel(model)
    sm = SteeringModel(model, preprocessing=Preprocessing(height=48, width=96))
    assert sm.input_shape == (48, 96, 3)
    assert sm.predict_inputs(np.zeros((2, 48, 96, 3), np.float32)).shape == (2, 1)


def test_set_tf_threads_limits_tensorflow_before_its_first_op_only():
    """`drive --tf-threads` must take effect: TensorFlow fixes its thread pool at the first op."""
    code = (
        "from carla_agent.network.tf_threads import set_tf_threads\n"
        "import tensorflow as tf\n"
        "assert set_tf_threads(1)\n"
        "assert tf.config.threading.get_intra_op_parallelism_threads() == 1\n"
        "tf.constant(1.0) + 1.0\n"
        "assert not set_tf_threads(2)  # too late: refused with a warning, not an exception\n"
        "assert tf.config.threading.get_intra_op_parallelism_threads() == 1\n"
        "assert set_tf_threads(0)  # 0 = leave TensorFlow's default alone\n"
        "print('RESULT ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=str(Path(__file__).resolve().parent.parent))
    assert "RESULT ok" in out.stdout, out.stdout + out.stderr[-3000:]
    assert "could not set TensorFlow to 2 thread(s) per op" in out.stderr


def test_drive_and_record_accept_tf_threads():
    from carla_agent.cli import build_parser
    from carla_agent.network.tf_threads import DRIVE_TF_THREADS

    parser = build_parser()
    assert parser.parse_args(["drive"]).tf_threads == DRIVE_TF_THREADS == 1
    assert parser.parse_args(["drive", "--tf-threads", "0"]).tf_threads == 0
    assert parser.parse_args(["record", "--scenarios", "gentle_curves", "--tf-threads", "2"]).tf_threads == 2
    for bad in ("-1", "two"):
        with pytest.raises(SystemExit):
            parser.parse_args(["drive", "--tf-threads", bad])
