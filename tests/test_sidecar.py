"""The own-model contract's sidecar: every wrong one stops with one line naming the file
and the field; the README's example loads and means what the README says."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

keras = pytest.importorskip("keras")
from keras import layers  # noqa: E402

from carla_agent.errors import ModelError  # noqa: E402
from carla_agent.network.preprocess import Preprocessing, sidecar_path  # noqa: E402
from carla_agent.network.steering_model import SteeringModel  # noqa: E402
from carla_agent.resources import DEFAULT_MODEL  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GOOD = {"height": 66, "width": 200, "color_space": "rgb"}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A small steering model with a fixed 66 x 200 x 3 input."""
    inp = keras.Input(shape=(66, 200, 3), name="image")
    x = layers.Conv2D(2, 5, strides=4, name="conv1")(inp)
    x = layers.GlobalAveragePooling2D()(x)
    path = tmp_path_factory.mktemp("sidecar") / "my_model.keras"
    keras.Model(inp, layers.Dense(1, name="steer")(x)).save(path)
    return path


BAD = {
    # case: (sidecar text, field named in the error, a word of the fix)
    "missing height": ('{"preprocessing": {"width": 200, "color_space": "rgb"}}', "preprocessing.height", "add it"),
    "missing width": ('{"preprocessing": {"height": 66, "color_space": "rgb"}}', "preprocessing.width", "add it"),
    "missing colour space": ('{"preprocessing": {"height": 66, "width": 200}}', "preprocessing.color_space",
                             "rgb, yuv, bgr, gray"),
    "no preprocessing object": ('{"training": {"epochs_run": 3}}', "preprocessing", "add one"),
    "fields at the top level": (json.dumps(GOOD), "preprocessing", "move height, width, color_space"),
    "a JSON list": ("[66, 200, \"rgb\"]", "", "JSON object"),
    "preprocessing is a list": ('{"preprocessing": [66, 200]}', "preprocessing", "JSON object"),
    "height as a string": ('{"preprocessing": {"height": "66", "width": 200, "color_space": "rgb"}}',
                           "preprocessing.height", "whole number"),
    "width as a float": ('{"preprocessing": {"height": 66, "width": 200.5, "color_space": "rgb"}}',
                         "preprocessing.width", "whole number"),
    "height as a boolean": ('{"preprocessing": {"height": true, "width": 200, "color_space": "rgb"}}',
                            "preprocessing.height", "whole number"),
    "unknown colour space": ('{"preprocessing": {"height": 66, "width": 200, "color_space": "hsv"}}',
                             "preprocessing.color_space", "rgb, yuv, bgr, gray"),
    "colour space not a string": ('{"preprocessing": {"height": 66, "width": 200, "color_space": 3}}',
                                  "preprocessing.color_space", "rgb, yuv, bgr, gray"),
    "crop above 1": ('{"preprocessing": {"height": 66, "width": 200, "color_space": "rgb", "crop_bottom": 1.2}}',
                     "preprocessing.crop_bottom", "[0, 1]"),
    "crop below 0": ('{"preprocessing": {"height": 66, "width": 200, "color_space": "rgb", "crop_left": -0.1}}',
                     "preprocessing.crop_left", "[0, 1]"),
    "crop NaN": ('{"preprocessing": {"height": 66, "width": 200, "color_space": "rgb", "crop_top": NaN}}',
                 "preprocessing.crop_top", "NaN"),
    "crop as a string": ('{"preprocessing": {"height": 66, "width": 200, "color_space": "rgb", "crop_top": "0.4"}}',
                         "preprocessing.crop_top", "[0, 1]"),
    "crop upside down": ('{"preprocessing": {"height": 66, "width": 200, "color_space": "rgb", "crop_top": 0.9, '
                         '"crop_bottom": 0.5}}', "preprocessing.crop_bottom", "greater than crop_top"),
    "unknown field": ('{"preprocessing": {"height": 66, "width": 200, "color_space": "rgb", "scale": 255}}',
                      "preprocessing.scale", "unknown"),
    "size disagrees with the model": ('{"preprocessing": {"height": 120, "width": 160, "color_space": "rgb"}}',
                                      "height/width", "120x160"),
    "not JSON": ('{"preprocessing": {"height": 66,}}', "", "not valid JSON"),
    "nested 100,000 deep": ("[" * 100000 + "]" * 100000, "", "not valid JSON"),
    "height huge": ('{"preprocessing": {"height": 1e400, "width": 200, "color_space": "rgb"}}',
                    "preprocessing.height", "whole number"),
    "crop infinite": ('{"preprocessing": {"height": 66, "width": 200, "color_space": "rgb", "crop_top": -Infinity}}',
                      "preprocessing.crop_top", "[0, 1]"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_wrong_sidecar_names_the_file_and_the_field(model_file, case):
    text, field, fix = BAD[case]
    side = sidecar_path(model_file)
    side.write_text(text)
    try:
        with pytest.raises(ModelError) as err:
            SteeringModel.load(model_file)
    finally:
        side.unlink()
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{side}: "), message
    if field:
        assert field in message, message
    assert fix in message, message


def test_a_wrong_sidecar_is_one_error_line_on_the_command_line(tmp_path, model_file):
    model = tmp_path / "my_model.keras"
    shutil.copy(model_file, model)
    sidecar_path(model).write_text('{"preprocessing": {"width": 200, "color_space": "rgb"}}')
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-m", "carla_agent", "drive", "--headless", "--duration", "1",
                           "--model", str(model)], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {sidecar_path(model)}: field 'preprocessing.height' is missing; "
        "add it: the network input height in pixels, e.g. 66"]


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def test_the_readmes_sidecar_example_loads(tmp_path):
    section = readme_section("Your own model")
    example = json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))
    model = tmp_path / "my_model.keras"
    shutil.copy(DEFAULT_MODEL, model)  # the shipped PilotNet: a 66 x 200 x 3 input
    sidecar_path(model).write_text(json.dumps(example))
    loaded = SteeringModel.load(model)
    assert loaded.preprocessing == Preprocessing(**example["preprocessing"])
    # Every field the README's table names is one the sidecar takes, and the other way round.
    table_fields = set(re.findall(r"^\| `(\w+)`(?:, `(\w+)`)? \|", section, re.M))
    named = {name for pair in table_fields for name in pair if name}
    assert named == set(Preprocessing().to_dict())


def test_the_shipped_sidecar_follows_the_schema():
    data = json.loads(sidecar_path(DEFAULT_MODEL).read_text())
    assert Preprocessing.from_dict(data["preprocessing"], str(sidecar_path(DEFAULT_MODEL))) == \
        SteeringModel.load(DEFAULT_MODEL).preprocessing
