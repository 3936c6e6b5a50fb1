"""The reliability audit's command-line cases: one line on stderr and exit code 2, never a traceback.

A damaged ``meta.json`` in ``replay`` and ``report``; ``replay`` when every frame is missing (no
video written) and where its video went when it works; a model whose output is NaN; ``--out``
naming a file where a folder goes (or a folder where a file goes); ``record --scenarios ,``;
a ``--camera-res`` over the scenarios' camera limit.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import log_corpus as lc
from carla_agent.cli import build_parser, main
from carla_agent.resources import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parent.parent


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return lc.make_log(tmp_path_factory.mktemp("cli_inputs") / "run")


@pytest.mark.parametrize("command", ["replay", "report"])
@pytest.mark.parametrize("meta", [{"dt_s": 0}, [1, 2, 3]], ids=["dt_s_0", "json_list"])
def test_replay_and_report_on_a_damaged_meta_json_are_one_line_through_the_real_cli(tmp_path, template, command,
                                                                                      meta):
    run = lc.copy_log(template, tmp_path / "run")
    if isinstance(meta, dict):
        meta = {**json.loads((run / "meta.json").read_text()), **meta}
    (run / "meta.json").write_text(json.dumps(meta))
    proc = subprocess.run([sys.executable, "-m", "carla_agent", command, str(run)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and str(run / "meta.json") in lines[0], proc.stderr
    assert ("field 'dt_s'" in lines[0]) if isinstance(meta, dict) else ("got a list" in lines[0])


def test_replay_says_where_its_video_went_and_writes_none_when_every_frame_is_missing(tmp_path, template, capsys):
    run = lc.copy_log(template, tmp_path / "run")
    assert main(["replay", str(run), "--model", str(DEFAULT_MODEL), "--quiet"]) == 0
    videos = [line for line in capsys.readouterr().out.splitlines() if line.startswith("video: ")]
    assert len(videos) == 1 and Path(videos[0][len("video: "):]).is_file(), videos

    broken = lc.copy_log(template, tmp_path / "broken")
    (broken / "frames.zst").unlink()
    assert main(["replay", str(broken), "--model", str(DEFAULT_MODEL), "--quiet"]) == 2
    line = error_line(capsys)
    assert "no video written" in line and f"none of its {lc.FRAMES} frame(s)" in line and "frames.zst" in line
    assert not list(broken.glob("*.mp4")) and not list(broken.glob(".*partial*"))


def test_a_model_whose_output_is_nan_stops_with_one_line_naming_the_model(tmp_path, capsys):
    keras = pytest.importorskip("keras")
    inp = keras.Input((66, 200, 3), name="image")
    x = keras.layers.GlobalAveragePooling2D()(inp)
    head = keras.layers.Dense(1, name="steer")
    model = keras.Model(inp, head(x))
    head.set_weights([head.get_weights()[0], np.array([np.nan], np.float32)])
    path = tmp_path / "nan_model.keras"
    model.save(path)
    code = main(["drive", "--model", str(path), "--headless", "--quiet", "--scenario", "straight_clear",
                 "--duration", "1"])
    line = error_line(capsys)
    assert code == 2 and str(path) in line and "'steer' is nan" in line, line


@pytest.mark.parametrize("argv", [
    ["drive", "--record", "--headless", "--out", "{file}"],
    ["record", "--scenarios", "straight_clear", "--out", "{file}"],
    ["evaluate", "--out", "{file}"],
    ["explain", "x.png", "--out", "{file}"],
    ["collect", "--out", "{file}"],
    ["record", "--scenarios", "straight_clear", "--out", "{file}/runs"],
    ["replay", "{run}", "--out", "{folder}"],
    ["report", "{run}", "--out", "{folder}"],
    ["train", "--data", "{folder}", "--out", "{folder}"],
], ids=["drive", "record", "evaluate", "explain", "collect", "record-under-a-file", "replay", "report", "train"])
def test_out_of_the_wrong_kind_is_one_line(tmp_path, template, capsys, argv):
    file = tmp_path / "a_file"
    file.write_text("not a folder")
    folder = tmp_path / "a_folder"
    folder.mkdir()
    run = lc.copy_log(template, tmp_path / "run")
    argv = [a.format(file=file, folder=folder, run=run) for a in argv]
    assert main(argv) == 2
    line = error_line(capsys)
    assert "--out" in line and (str(file) in line or str(folder) in line), line
    assert file.read_text() == "not a folder" and not any(folder.iterdir())


@pytest.mark.parametrize("value", [",", " , ,"])
def test_record_with_no_scenario_named_is_one_line(capsys, value):
    assert main(["record", "--scenarios", value]) == 2
    assert "--scenarios" in error_line(capsys)


def test_camera_res_respects_the_scenarios_camera_limit(capsys):
    assert build_parser().parse_args(["drive", "--camera-res", "1920x1080"]).camera_res == (1920, 1080)
    for value in ("3840x2160", "16000x16000", "4097x32"):
        with pytest.raises(SystemExit) as info:
            build_parser().parse_args(["drive", "--camera-res", value])
        assert info.value.code == 2
        assert "1920x1080" in capsys.readouterr().err


@pytest.mark.parametrize("argv, said", [
    (["drive", "--res", "10x10"], "argument --res: 10x10: width and height must be at least 320x240"),
    (["drive", "--seed", "x"], "argument --seed: invalid int value: 'x'"),
    (["no-such-command"], "invalid choice: 'no-such-command'"),
])
def test_a_bad_option_is_the_error_and_a_pointer_to_help_not_the_whole_usage(capsys, argv, said):
    with pytest.raises(SystemExit) as info:
        build_parser("carla-agent").parse_args(argv)
    assert info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and said in lines[0] and lines[0].startswith("carla-agent"), lines
    assert lines[1].startswith("(all options: carla-agent") and lines[1].endswith(" -h)")
