import textwrap

import pytest

from carla_agent.errors import ScenarioError, UnknownNameError
from carla_agent.sim.scenario import load_scenario, load_scenario_file, shipped_scenarios


def write(tmp_path, text, name="s.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_every_shipped_scenario_validates():
    names = shipped_scenarios().names()
    embedded = [n for n in names if load_scenario(n).backend == "embedded"]
    assert len(embedded) >= 8
    weathers = {load_scenario(n).weather.preset for n in embedded}
    assert {"clear_noon", "fog", "night_rain", "dusk"} <= weathers


def test_short_and_long_segment_forms(tmp_path):
    p = write(tmp_path, """
        road:
          segments:
            - line: 50
            - {kind: arc, radius_m: 40, angle_deg: 30, turn: right}
            - curve: {radius_m: 60, angle_deg: 45, transition_m: 10}
        weather: fog
    """)
    sc = load_scenario_file(p)
    assert [s.kind for s in sc.road.segments] == ["line", "arc", "curve"]
    assert sc.road.segments[0].length_m == 50
    assert sc.weather.preset == "fog"
    assert sc.name == "s"


@pytest.mark.parametrize("body, field, hint", [
    ("road: {segments: [{line: 50}]}\nego: {target_speed_kmh: fast}", "ego.target_speed_kmh", "expected a number"),
    ("road: {segments: [{line: 50}]}\nweather: snowstorm", "weather.preset", "clear_noon"),
    ("road: {segments: [{line: 50}]}\ncamera: {fov: 500}", "camera.fov", "out of range"),
    ("road: {segments: [{line: 50}]}\nego: {lane: 2}", "ego.lane", "driving lane"),
    ("road: {segments: [{line: 50}], lanes: {widht_m: 3}}", "road.lanes", "unknown key(s) widht_m"),
    ("road: {segments: [{spiral: 10}]}", "road.segments[0]", "line/arc/curve"),
    ("road: {segments: [{curve: {radius_m: 20, angle_deg: 10, transition_m: 50}}]}", "road.segments[0]", "transition_m"),
    ("road: {}", "road", "segments"),
    ("road: {segments: [{line: 50}]}\nroadside: {trees: {every_m: 10, offset_m: [5, 1]}}", "roadside.trees.offset_m", "min <= max"),
])
def test_malformed_scenarios_name_file_field_and_fix(tmp_path, body, field, hint):
    p = write(tmp_path, body)
    with pytest.raises(ScenarioError) as err:
        load_scenario_file(p)
    msg = str(err.value)
    assert str(p) in msg
    assert field in msg
    assert hint in msg
    assert "\n" not in msg


def test_yaml_syntax_error_gives_line(tmp_path):
    p = write(tmp_path, "road: {segments: [line: 5\n")
    with pytest.raises(ScenarioError, match=r"not valid YAML at line \d+"):
        load_scenario_file(p)


def test_unknown_scenario_lists_known_names():
    with pytest.raises(UnknownNameError) as err:
        load_scenario("no_such_scenario")
    assert "gentle_curves" in str(err.value) and "straight_clear" in str(err.value)


def test_missing_file():
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario("does/not/exist.yaml")
