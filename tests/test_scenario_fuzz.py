"""Fuzzing the scenario reader: mutated shipped scenarios give a clean one-line error or a scenario.

Three parts:

* a hypothesis run of 2,000 mutations of the shipped YAML files (values replaced by
  NaN, infinities, huge, zero, negative, text, lists, nulls; keys deleted or added),
  each read from a file under a 2 s alarm: no traceback, no hang;
* the reliability audit's cases, kept as regression tests;
* 20 accepted mutations driven for 2 s each by the expert: none scores more route
  than it drove.
"""

import copy
import math
import random
import signal
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from carla_agent.drive.agent import ExpertAgent
from carla_agent.drive.session import drive_scenario
from carla_agent.errors import CarlaAgentError, ScenarioError
from carla_agent.resources import scenario_dir
from carla_agent.sim.embedded.simulator import END_MARGIN_M
from carla_agent.sim.scenario import _ScenarioLoader, load_scenario, load_scenario_file
from carla_agent.sim.simulator import make_simulator

CASE_LIMIT_S = 2.0


def _bases():
    out = []
    for path in sorted(scenario_dir().glob("*.yaml")):
        data = yaml.load(path.read_text(), Loader=_ScenarioLoader)
        if data.get("backend", "embedded") == "embedded":
            out.append(data)
    return out


BASES = _bases()

SPECIALS = [math.nan, math.inf, -math.inf, 1e300, -1e300, 10 ** 30, 0, 0.0, -1, -1e9, 1e-9, 0.001,
            "abc", "", "1e12", [1, 2], [], {}, None, True, False, {"x": 1}, 100000, 4096]


def _paths(node, prefix=()):
    """Every (container, key) path into ``node``; mutations replace, delete or add at one of them."""
    out = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.append(prefix + (key,))
            out += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.append(prefix + (i,))
            out += _paths(value, prefix + (i,))
    return out


def _mutate(data, path, op, value):
    # A private copy: SPECIALS holds shared dicts/lists, and inserting one into itself makes a cycle.
    value = copy.deepcopy(value)
    *parents, last = path
    node = data
    for key in parents:
        node = node[key]
    if op == "replace":
        node[last] = value
    elif op == "delete":
        del node[last]
    else:  # add an unknown key beside ``last`` (or inside it, when it is a mapping)
        target = node[last] if isinstance(node[last], dict) else node
        if isinstance(target, dict):
            target["zz_unknown_key"] = value
        else:
            node[last] = value


class _Hang(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Hang()


def _load_within_limit(path):
    """Load ``path``; a ScenarioError or a scenario is fine, anything else fails the test."""
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_LIMIT_S)
    try:
        return load_scenario_file(path), None
    except _Hang:
        pytest.fail(f"loading {path} took more than {CASE_LIMIT_S} s:\n{path.read_text()[:2000]}")
    except CarlaAgentError as exc:
        return None, exc
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _assert_clean(err, path):
    msg = str(err)
    assert isinstance(err, ScenarioError), msg
    assert "\n" not in msg, msg
    assert str(path) in msg, msg
    assert "field '" in msg or "unknown key(s)" in msg, msg


_WORKDIR = Path(tempfile.mkdtemp(prefix="scenario_fuzz_"))
_COUNTS = {"cases": 0, "accepted": 0, "errors": 0}

values = st.one_of(st.sampled_from(SPECIALS), st.floats(allow_nan=True, allow_infinity=True),
                   st.integers(min_value=-10 ** 40, max_value=10 ** 40), st.text(max_size=8),
                   st.lists(st.floats(allow_nan=True), max_size=3), st.none(), st.booleans())
mutation = st.tuples(st.integers(0, 10 ** 6), st.sampled_from(["replace", "replace", "delete", "add"]), values)


@settings(max_examples=2000, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(base=st.integers(0, len(BASES) - 1), mutations=st.lists(mutation, min_size=1, max_size=3))
def test_two_thousand_mutations_give_a_scenario_or_one_clean_line(base, mutations):
    data = copy.deepcopy(BASES[base])
    for pick, op, value in mutations:
        paths = _paths(data)
        if not paths:
            break
        _mutate(data, paths[pick % len(paths)], op, value)
    path = _WORKDIR / "mutant.yaml"
    path.write_text(yaml.safe_dump(data))
    sc, err = _load_within_limit(path)
    _COUNTS["cases"] += 1
    if err is not None:
        _COUNTS["errors"] += 1
        _assert_clean(err, path)
    else:
        _COUNTS["accepted"] += 1
        for value in (sc.duration_s, sc.dt_s, sc.ego.target_speed_kmh, sc.ego.start_s_m, sc.camera.fov):
            assert math.isfinite(value)


def test_the_fuzz_run_covered_both_outcomes():
    # Runs after the fuzz test in file order; guards against a generator that only ever errs.
    if _COUNTS["cases"] == 0:
        pytest.skip("run with the fuzz test above")
    assert _COUNTS["cases"] >= 2000
    assert _COUNTS["errors"] > 100 and _COUNTS["accepted"] > 20, _COUNTS
    print(f"scenario fuzz: {_COUNTS}")


def _write(tmp_path, text, name="audit.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


ROAD = "road: {segments: [{line: 200}]}\n"

# The reliability audit's cases: (YAML, the field the error must name, a word of the allowed range).
AUDIT = [
    (ROAD + "ego: {target_speed_kmh: .nan}", "ego.target_speed_kmh", "finite"),
    (ROAD + "ego: {target_speed_kmh: .inf}", "ego.target_speed_kmh", "[1.0, 200.0]"),
    (ROAD + "duration_s: .nan", "duration_s", "finite"),
    (ROAD + "dt_s: .nan", "dt_s", "finite"),
    (ROAD + "dt_s: 0", "dt_s", "[0.005, 0.1]"),
    (ROAD + "camera: {fov: .nan}", "camera.fov", "finite"),
    (ROAD + "camera: {fov: -.inf}", "camera.fov", "finite"),
    (ROAD + "camera: {image_size_x: 4096, image_size_y: 4096}", "camera.image_size_x", "1920 x 1080"),
    (ROAD + "camera: {image_size_x: 1e12}", "camera.image_size_x", "[32, 4096]"),
    ("road: {segments: [{line: .inf}]}", "road.segments[0].length_m", "finite"),
    ("road: {segments: [{line: .nan}]}", "road.segments[0].length_m", "finite"),
    ("road: {segments: [{arc: {radius_m: .nan, angle_deg: 30}}]}", "road.segments[0].radius_m", "finite"),
    ("road: {segments: [{line: 50}], lanes: {width_m: .nan}}", "road.lanes.width_m", "finite"),
    (ROAD + "roadside: {trees: {every_m: .nan}}", "roadside.trees.every_m", "finite"),
    (ROAD + "roadside: {trees: {every_m: 10, offset_m: [.nan, 3]}}", "roadside.trees.offset_m", "finite"),
    (ROAD + "roadside: {trees: {every_m: 10, offset_m: [2, 1e9]}}", "roadside.trees.offset_m", "<= 200"),
    (ROAD + "weather: {preset: fog, fog_density: .nan}", "weather.fog_density", "finite"),
    (ROAD + "traffic: {lead: {gap_m: .inf}}", "traffic.lead.gap_m", "finite"),
    (ROAD + "traffic: {parked: {every_m: .nan}}", "traffic.parked.every_m", "finite"),
    # A start past the end of the road used to drive 2.25 s and score route 100 %.
    ("road: {segments: [{line: 100}]}\nego: {start_s_m: 500}", "ego.start_s_m", "[0, 64]"),
    (ROAD + "ego: {start_s_m: .inf}", "ego.start_s_m", "finite"),
    # Roadside objects every millimetre, or a road of thousands of kilometres, hung using GBs.
    (ROAD + "roadside: {trees: {every_m: 0.001}}", "roadside.trees.every_m", "[2, 10000]"),
    ("road: {segments: [{line: 20000}, {line: 20000}, {line: 20000}]}", "road.segments", "at most 20000 m"),
    ("road: {segments: [{arc: {radius_m: 100000, angle_deg: 270}}]}", "road.segments", "at most 20000 m"),
    ("road: {segments: [{line: 20000}]}\nroadside: {trees: {every_m: 2}}", "roadside", "at most 5000"),
    ("road: {segments: [" + ", ".join(["{line: 10}"] * 201) + "]}", "road.segments", "at most 200"),
    (ROAD + "duration_s: 1e9", "duration_s", "[1.0, 3600.0]"),
]


@pytest.mark.parametrize("text, field, allowed", AUDIT, ids=[f"{i}-{case[1]}" for i, case in enumerate(AUDIT)])
def test_audit_case_is_one_line_naming_file_field_value_and_range(tmp_path, text, field, allowed):
    path = _write(tmp_path, text)
    sc, err = _load_within_limit(path)
    assert err is not None, f"accepted: {sc}"
    _assert_clean(err, path)
    msg = str(err)
    assert f"field '{field}" in msg, msg
    assert allowed in msg, msg


@pytest.mark.parametrize("text, field, expected", [
    (ROAD + "ego: {target_speed_kmh: 5e1}", ("ego", "target_speed_kmh"), 50.0),
    (ROAD + "duration_s: 1E2", ("duration_s",), 100.0),
    (ROAD + "camera: {fov: 9.5e+1}", ("camera", "fov"), 95.0),
])
def test_exponent_numbers_are_read_as_numbers(tmp_path, text, field, expected):
    sc = load_scenario_file(_write(tmp_path, text))
    value = sc
    for name in field:
        value = getattr(value, name)
    assert value == expected


def test_1e12_is_out_of_range_not_text(tmp_path):
    path = _write(tmp_path, ROAD + "ego: {target_speed_kmh: 1e12}")
    with pytest.raises(ScenarioError, match=r"1000000000000\.0 is out of range"):
        load_scenario_file(path)


def test_invalid_utf8_is_one_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(ROAD.encode() + b"description: caf\xe9\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(str(path))
    assert str(path) in str(err.value) and "UTF-8" in str(err.value)


def test_a_folder_is_one_line(tmp_path):
    folder = tmp_path / "looks_like.yaml"
    folder.mkdir()
    for arg in (folder, tmp_path):
        with pytest.raises(ScenarioError, match="is a folder"):
            load_scenario(str(arg))


def test_deep_nesting_and_huge_files_are_one_line(tmp_path):
    deep = _write(tmp_path, "a: " + "[" * 5000 + "]" * 5000, "deep.yaml")
    with pytest.raises(ScenarioError):
        load_scenario_file(deep)
    big = _write(tmp_path, ROAD + "description: '" + "x" * 2_000_000 + "'", "big.yaml")
    with pytest.raises(ScenarioError, match="at most 1000000 bytes"):
        load_scenario_file(big)


def test_simulator_refuses_a_start_past_the_end_of_an_overridden_scenario():
    # ``with_overrides`` skips the loader, so the simulator checks too instead of clamping.
    sc = load_scenario("straight_clear")
    sc = sc.with_overrides(ego=type(sc.ego)(start_s_m=1e6))
    with make_simulator("embedded") as sim:
        with pytest.raises(ScenarioError, match="ego.start_s_m"):
            sim.reset(sc)


def _accepted_mutants(n, tmp_path):
    rng = random.Random(18)
    found = []
    while len(found) < n:
        data = copy.deepcopy(BASES[rng.randrange(len(BASES))])
        paths = _paths(data)
        _mutate(data, rng.choice(paths), rng.choice(["replace", "delete"]), rng.choice(SPECIALS))
        path = tmp_path / f"mutant{len(found)}.yaml"
        path.write_text(yaml.safe_dump(data))
        sc, err = _load_within_limit(path)
        if sc is not None:
            found.append(sc)
    return found


def test_accepted_mutations_never_score_more_route_than_they_drove(tmp_path):
    for sc in _accepted_mutants(20, tmp_path):
        with make_simulator("embedded") as sim:
            result = drive_scenario(sc, ExpertAgent(sc.target_speed_mps), sim=sim, duration_s=2.0)
            route_m = sim.road.length_m - END_MARGIN_M - sim.start_s
        m = result.metrics
        assert route_m >= 20.0, sc.source
        assert m.route_completion_pct <= 100.0 * m.distance_m / route_m + 1e-6, (sc.source, m)
        assert m.elapsed_s <= 2.0 + sc.dt_s


@pytest.mark.parametrize("length", ["nan", "inf", "1e9", "0"])
def test_an_opendrive_road_with_a_bad_length_is_one_line(tmp_path, length):
    from carla_agent.sim.embedded.road_build import build_road
    from carla_agent.sim.embedded.xodr import write_xodr
    good = write_xodr(build_road(load_scenario("straight_clear").road))
    head, sep, tail = good.partition('<geometry ')
    geometry, rest = tail.split(">", 1)
    geometry = __import__("re").sub(r'length="[^"]*"', f'length="{length}"', geometry)
    xodr = tmp_path / "road.xodr"
    xodr.write_text(head + sep + geometry + ">" + rest)
    path = _write(tmp_path, "road: {xodr: road.xodr}\n")
    sc = load_scenario_file(path)
    with make_simulator("embedded") as sim:
        with pytest.raises(ScenarioError) as err:
            sim.reset(sc)
    assert "\n" not in str(err.value) and str(xodr) in str(err.value) and "length" in str(err.value)
