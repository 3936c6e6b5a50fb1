"""Bad input gets one line on stderr, exit code 2, and no traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "carla_agent", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_scenarios_lists_all():
    proc = run_cli("scenarios")
    assert proc.returncode == 0
    for name in ("straight_clear", "gentle_curves", "s_curve_fog", "hairpin_dusk", "night_rain", "highway"):
        assert name in proc.stdout


def test_malformed_scenario(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("road: {segments: [{line: -5}]}\n")
    assert_one_line_error(run_cli("drive", "--scenario", str(bad), "--headless"), str(bad), "road.segments[0].length_m")


def test_unknown_scenario_name():
    assert_one_line_error(run_cli("drive", "--scenario", "moon_base", "--headless"), "moon_base", "straight_clear")


def test_missing_model(tmp_path):
    assert_one_line_error(run_cli("drive", "--model", str(tmp_path / "none.keras"), "--headless"), "none.keras")


def test_corrupt_model(tmp_path):
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"\x00not a model" * 100)
    assert_one_line_error(run_cli("drive", "--model", str(bad), "--headless"), "broken.keras")


def test_model_whose_input_is_not_an_image(tmp_path):
    keras = pytest.importorskip("keras")
    inp = keras.Input((10,))
    model = keras.Model(inp, keras.layers.Dense(1)(inp))
    path = tmp_path / "vector.keras"
    model.save(path)
    assert_one_line_error(run_cli("drive", "--model", str(path), "--headless"), "vector.keras")


def test_bad_res_flag():
    proc = run_cli("drive", "--res", "big")
    assert proc.returncode == 2 and "WIDTHxHEIGHT" in proc.stderr


def _options(parser) -> set:
    return {s for a in parser._actions for s in a.option_strings}


def test_serve_takes_the_same_options_from_both_entry_points():
    import argparse

    from carla_agent.cli import build_parser
    from carla_agent.server.options import add_arguments

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    direct = argparse.ArgumentParser()
    add_arguments(direct)
    assert _options(direct) - {"-h", "--help"} <= _options(sub.choices["serve"])
    assert {"--scenario", "--host", "--port"} <= _options(direct)


def test_verbose_counts_before_and_after_the_command():
    from carla_agent.cli import parse_args

    assert parse_args(["-v", "drive"]).verbose == 1
    assert parse_args(["drive", "-v"]).verbose == 1
    assert parse_args(["-v", "drive", "-vv"]).verbose == 3
    assert parse_args(["drive"]).verbose == 0


def test_choices_come_from_the_registries():
    from carla_agent.cli import build_parser
    from carla_agent.saliency.targets import TARGETS
    from carla_agent.sim.simulator import BACKENDS

    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["drive", "--backend", "nope"])
    for name in BACKENDS.names():
        assert parser.parse_args(["drive", "--backend", name]).backend == name
    for name in TARGETS.names():
        assert parser.parse_args(["replay", "run", "--target", name]).target == name


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-5", "soon"])
def test_duration_must_be_a_finite_positive_number(value):
    from carla_agent.cli import build_parser

    for command in (["drive"], ["record", "--scenarios", "gentle_curves"], ["collect", "--out", "x"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args([*command, "--duration", value])
    assert build_parser().parse_args(["drive", "--duration", "2.5"]).duration == 2.5
