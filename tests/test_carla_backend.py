"""The CARLA backend, with no server: the real ``carla`` wheel for every value type and
the client-side map, and ``carla_double.FakeServer`` for client, world, actors and sensors."""

from __future__ import annotations

import glob
import math
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

carla = pytest.importorskip("carla")

import carla_double  # noqa: E402
from carla_double import Api, FakeServer  # noqa: E402

import carla_agent.sim.carla_backend as cb  # noqa: E402
from carla_agent.sim.carla_backend import client as cb_client, route as cb_route, sensors as cb_sensors  # noqa: E402
from carla_agent.sim.contract import check_simulator  # noqa: E402
from carla_agent.control import VehicleControl  # noqa: E402
from carla_agent.errors import BackendError, ScenarioError  # noqa: E402
from carla_agent.sim.observation import SemanticClass  # noqa: E402
from carla_agent.sim.embedded.road_build import build_road  # noqa: E402
from carla_agent.sim.scenario import load_scenario_file, parse_scenario  # noqa: E402
from carla_agent.sim.simulator import make_simulator  # noqa: E402
from carla_agent.sim.embedded.xodr import write_xodr  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def scenario(carla_block=None, **top):
    data = {"name": "double", "backend": "carla", "road": {"segments": [{"line": 100}]},
            "camera": {"image_size_x": 64, "image_size_y": 48}, "duration_s": 30.0,
            "carla": {"route_length_m": 300, "settle_ticks": 1, **(carla_block or {})}}
    data.update(top)
    return parse_scenario(data, "test.yaml")


def make(server, **kw):
    kw.setdefault("timeout_s", 2.0)
    return cb.CarlaSimulator(client_factory=server.client, **kw)


def drive(sim, n, control=VehicleControl(throttle=0.6)):
    obs = None
    for _ in range(n):
        obs = sim.step(control)
    return obs


# -- import, connection, versions ---------------------------------------------------------

def test_module_imports_without_carla_and_construction_says_how_to_install():
    code = (
        "import sys; sys.modules['carla'] = None\n"
        "import carla_agent.sim.carla_backend\n"
        "from carla_agent.sim.simulator import make_simulator\n"
        "from carla_agent.errors import BackendError\n"
        "try:\n    make_simulator('carla')\nexcept BackendError as e:\n    print('ERR', e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "ERR" in out.stdout and "pip install carla==0.9.16" in out.stdout
    code = "import sys, carla_agent.sim.carla_backend; print('carla' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", "importing the backend must not import carla"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_server_listening_fails_within_the_timeout_with_one_clear_line():
    port = _closed_port()
    t0 = time.monotonic()
    with pytest.raises(BackendError) as err:
        make_simulator("carla", host="127.0.0.1", port=port, timeout_s=1.0)
    elapsed = time.monotonic() - t0
    msg = str(err.value)
    assert elapsed < 4.0
    assert "\n" not in msg
    assert f"127.0.0.1:{port}" in msg
    assert f"./CarlaUE4.sh -RenderOffScreen -carla-rpc-port={port}" in msg
    assert "--backend embedded" in msg


def test_version_mismatch_is_an_error_unless_allowed():
    with pytest.raises(BackendError, match=r"client is 0\.9\.16 but the server .* is 0\.9\.15.*--allow-version-mismatch"):
        make(FakeServer(version="0.9.15"))
    sim = make(FakeServer(version="0.9.15"), allow_version_mismatch=True)
    assert sim.server_version == "0.9.15"
    sim.close()
    assert cb_client._version_key("0.9.16-2-gabc") == cb_client._version_key("0.9.16")


# -- the simulator contract and cleanup -------------------------------------------------------

def test_contract_checker_passes_against_the_double():
    server = FakeServer()
    passed = check_simulator(lambda: make(server, record=True), scenario())
    assert "deterministic" in passed and "recover puts the ego on the lane centre" in passed
    assert server.clean(), server.state()


def test_sync_mode_modifies_the_returned_settings_and_everything_is_restored():
    server = FakeServer()
    original = server._settings
    original.no_rendering_mode = True
    original.max_substep_delta_time = 0.005
    original.max_culling_distance = 120.0
    server.initial_settings = carla_double.settings_tuple(original)
    sc = scenario(dt_s=0.1)
    with make(server, record=True) as sim:
        sim.reset(sc, seed=1)
        drive(sim, 5)
        s = server._settings
        assert s.synchronous_mode and abs(s.fixed_delta_seconds - 0.1) < 1e-9
        assert s.max_culling_distance == 120.0, "fields not set by the backend must keep the server's values"
        assert not s.no_rendering_mode, "cameras need rendering: turned off for the drive (restored below)"
        assert s.fixed_delta_seconds <= s.max_substep_delta_time * s.max_substeps + 1e-9 and s.max_substeps <= 16
        st = server.state()
        assert st["recording"] and len(st["alive"]) == 5  # ego + 4 sensors
        # No traffic and no autopilot: the Traffic Manager (whose sync tick can hang) is never started.
        assert not server._tms and not st["tm_sync"]
    assert server.clean(), server.state()
    events = server._events
    for _, actor_id, type_id in [e for e in events if e[0] == "destroy" and e[2].startswith("sensor.")]:
        assert events.index(("stop", actor_id)) < events.index(("destroy", actor_id, type_id))


def test_exception_inside_a_tick_restores_the_server_at_once():
    server = FakeServer()
    sim = make(server)
    sim.reset(scenario(), seed=0)
    server.fail_on_tick(3, RuntimeError("time-out of 2000ms while waiting for the simulator"))
    with pytest.raises(BackendError) as err:
        drive(sim, 5)
    assert "\n" not in str(err.value) and "time-out" in str(err.value)
    assert server.clean(), server.state()
    with pytest.raises(BackendError, match="reset"):
        sim.step(VehicleControl())
    sim.reset(scenario(), seed=0)  # usable again
    server.fail_on_tick(1, ValueError("a bug"))
    with pytest.raises(ValueError):
        sim.step(VehicleControl())
    assert server.clean(), server.state()
    sim.close()


def test_keyboard_interrupt_inside_a_tick_and_in_the_drive_loop():
    server = FakeServer()
    sim = make(server)
    sim.reset(scenario(), seed=0)
    server.fail_on_tick(2, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        drive(sim, 4)
    assert server.clean(), server.state()
    sim.close()
    with pytest.raises(KeyboardInterrupt):
        with make(server, record=True) as sim:
            sim.reset(scenario(), seed=0)
            drive(sim, 2)
            raise KeyboardInterrupt  # Ctrl-C between ticks
    assert server.clean(), server.state()


def test_ctrl_c_during_cleanup_still_finishes_it(monkeypatch):
    server = FakeServer()
    sim = make(server, record=True)
    sim.reset(scenario(), seed=0)
    calls = []

    def stop(self):
        calls.append(self._type_id)
        if len(calls) == 1:
            raise KeyboardInterrupt
        self._callback = None

    monkeypatch.setattr(carla_double.FakeSensor, "stop", stop)
    with pytest.raises(KeyboardInterrupt):
        sim.close()
    st = server.state()
    assert len(calls) == 4, "every sensor gets its stop()"
    assert st["settings"] == server.initial_settings and not st["tm_sync"]
    assert st["alive"] == [] and st["recording"] is None


def test_failed_reset_leaves_the_server_as_found():
    server = FakeServer(occupied=range(12))
    with make(server) as sim:
        with pytest.raises(BackendError, match="occupied"):
            sim.reset(scenario(), seed=0)
        assert server.clean(), server.state()
        with pytest.raises(ScenarioError, match=r"test\.yaml: field 'carla\.map'.*available: Town01, Town03, Town04, Town10HD_Opt"):
            sim.reset(scenario({"map": "Town99"}), seed=0)
        assert server.clean(), server.state()
        with pytest.raises(ScenarioError, match=r"field 'carla\.spawn_point': 40 is out of range.*0\.\.11"):
            sim.reset(scenario({"spawn_point": 40}), seed=0)
    assert server.clean(), server.state()


# -- frames ------------------------------------------------------------------------------

def test_frames_are_matched_to_the_tick_with_late_out_of_order_and_threaded_delivery():
    server = FakeServer(delivery="thread", late_frames=True, stamp_frames=True)
    with make(server) as sim:
        obs = sim.reset(scenario(), seed=0)
        for _ in range(8):
            assert int(obs.image[0, 0, 0]) == sim.info.carla_frame % 251
            obs = sim.step(VehicleControl(throttle=0.5))
        assert sim._session.queues["rgb camera"].dropped > 0
    server.join()
    assert server.clean(), server.state()


def test_a_missing_frame_times_out_clearly():
    server = FakeServer()
    sim = make(server, sensor_timeout_s=0.2)
    sim.reset(scenario(), seed=0)
    server._drop_frames = {server._ticks + 2}
    sim.step(VehicleControl())
    t0 = time.monotonic()
    with pytest.raises(BackendError, match=r"rgb camera sent no data for frame \d+ within 0\.2 s"):
        sim.step(VehicleControl())
    assert time.monotonic() - t0 < 1.5
    assert server.clean(), server.state()


def test_sensor_queue_drops_stale_keeps_early_and_times_out():
    q = cb.SensorQueue("camera")
    for f in (5, 7, 6):
        q.put(SimpleNamespace(frame=f))
    assert q.get(6, 0.1).frame == 6
    assert q.dropped == 1
    assert q.get(7, 0.1).frame == 7
    with pytest.raises(BackendError, match="frame 8"):
        q.get(8, 0.05)


def _image(bgra: np.ndarray, frame: int = 1):
    return SimpleNamespace(frame=frame, width=bgra.shape[1], height=bgra.shape[0], raw_data=bgra.tobytes())


def test_bgra_is_converted_to_rgb_with_one_copy():
    bgra = np.zeros((3, 4, 4), np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 10, 20, 30, 255
    img = _image(bgra)
    view = cb_sensors._bgra(img)
    assert not view.flags.owndata and not view.flags.writeable  # a view of the buffer
    rgb = cb.bgra_to_rgb(img)
    assert rgb.shape == (3, 4, 3) and rgb.dtype == np.uint8 and rgb.flags.c_contiguous
    assert not np.shares_memory(rgb, view)
    assert rgb[0, 0].tolist() == [30, 20, 10]


def test_cityscapes_ids_match_the_wheel_and_map_onto_semantic_classes():
    for name, tag in cb.CITYSCAPES_IDS.items():
        assert int(carla.CityObjectLabel.names[name]) == tag, name
    bgra = np.zeros((1, 8, 4), np.uint8)
    bgra[0, :, 2] = [1, 24, 2, 9, 11, 14, 7, 6]
    labels = cb.semantic_labels(_image(bgra))
    assert labels.tolist() == [[SemanticClass.ROAD, SemanticClass.LANE_MARKING, SemanticClass.SIDEWALK,
                                SemanticClass.TERRAIN, SemanticClass.SKY, SemanticClass.VEHICLE,
                                SemanticClass.TRAFFIC_LIGHT, SemanticClass.OBJECT]]
    server = FakeServer()
    with make(server) as sim:
        sem = sim.reset(scenario(), seed=0).truth.semantic
    assert sem.shape == (48, 64)
    assert {SemanticClass.ROAD, SemanticClass.SKY, SemanticClass.TERRAIN, SemanticClass.LANE_MARKING,
            SemanticClass.VEHICLE} <= set(np.unique(sem).tolist())


# -- ground truth on the wheel's client-side map ----------------------------------------------

def _xodr_map(road_block):
    sc = parse_scenario({"road": road_block}, "map.yaml")
    road = build_road(sc.road)
    return carla.Map("test", write_xodr(road)), road


def test_lateral_offset_and_heading_from_get_waypoint_and_the_right_vector():
    m, _ = _xodr_map({"segments": [{"line": 100}], "lanes": {"driving": 2, "oncoming": 1}})
    for y, expected in ((1.75 + 0.4, 0.4), (1.75 - 0.3, -0.3), (1.75, 0.0)):
        loc = carla.Location(x=20.0, y=y)
        wp = cb.lane_waypoint(m, loc)
        assert wp.lane_id == -1
        assert cb.signed_offset(loc.x, loc.y, wp.transform) == pytest.approx(expected, abs=1e-3)
    assert cb.heading_error(10.0, 0.0) == pytest.approx(math.radians(10))
    assert cb.heading_error(-175.0, 175.0) == pytest.approx(math.radians(10))
    loc = carla.Location(x=20.0, y=-1.75)  # in the oncoming lane: measured from the route's lane
    wp = cb.lane_waypoint(m, loc, lane_key=(0, -1))
    assert wp.lane_id == -1 and cb.signed_offset(loc.x, loc.y, wp.transform) == pytest.approx(-3.5, abs=1e-3)
    loc = carla.Location(x=20.0, y=5.25)  # in lane -2: still measured from lane -1
    assert cb.signed_offset(loc.x, loc.y, cb.lane_waypoint(m, loc, (0, -1)).transform) == pytest.approx(3.5, abs=1e-3)
    assert cb.lanes_same_way(m, carla.Location(x=20.0, y=1.75)) == 2
    assert cb.off_road(m, carla.Location(x=20.0, y=30.0)) and not cb.off_road(m, carla.Location(x=20.0, y=1.75))


def test_ground_truth_matches_the_embedded_simulator_on_its_exported_opendrive():
    from carla_agent.sim.embedded.simulator import EmbeddedSimulator

    sc = parse_scenario({"road": {"segments": [
        {"line": 40}, {"curve": {"radius_m": 50, "angle_deg": 70, "turn": "right", "transition_m": 20}},
        {"s_curve": {"radius_m": 80, "angle_deg": 40}}, {"line": 60}], "lanes": {"driving": 2}}}, "gt.yaml")
    sim = EmbeddedSimulator(render=False)
    obs = sim.reset(sc, seed=1)
    m = carla.Map("gt", sim.xodr())
    start = m.get_waypoint(carla.Location(x=obs.pose.x_m, y=obs.pose.y_m), project_to_road=True,
                           lane_type=carla.LaneType.Driving)
    route = cb.Route.plan(start, 400.0)
    lane_t = sim.road.lane_center_t(-1)

    def off_centre(xy):  # distance of CARLA-frame points from the lane centre (OpenDRIVE y is flipped)
        return np.array([abs(sim.road.project(x, -y)[1] - lane_t) for x, y in xy])

    assert off_centre(route.xy).max() < 0.01
    hint, checked = 0, 0
    for i in range(240):
        steer = float(np.clip(obs.truth.expert_steer + 0.3 * math.sin(i / 8.0), -1, 1))
        obs = sim.step(VehicleControl(steer=steer, throttle=0.5 if obs.speed_mps < 10 else 0.0))
        if obs.done:
            break
        loc = carla.Location(x=obs.pose.x_m, y=obs.pose.y_m)
        proj = route.project(loc.x, loc.y, hint)
        hint = proj.index
        wp = cb.lane_waypoint(m, loc, route.keys[proj.index])
        assert cb.signed_offset(loc.x, loc.y, wp.transform) == pytest.approx(obs.truth.lateral_offset_m, abs=0.01)
        assert cb.heading_error(obs.pose.yaw_deg, wp.transform.rotation.yaw) == pytest.approx(
            obs.truth.heading_error_rad, abs=0.005)
        assert proj.lateral_m == pytest.approx(obs.truth.lateral_offset_m, abs=0.02)
        ahead = route.ahead(loc.x, loc.y, obs.pose.yaw_deg, proj.s_m, np.arange(2.0, 41.0, 2.0))
        c, s = math.cos(math.radians(obs.pose.yaw_deg)), math.sin(math.radians(obs.pose.yaw_deg))
        world = np.stack([loc.x + ahead[:, 0] * c - ahead[:, 1] * s, loc.y + ahead[:, 0] * s + ahead[:, 1] * c], 1)
        assert off_centre(world).max() < 0.02, "route_ahead points lie on the lane centre"
        checked += 1
    assert checked > 150


def test_route_follows_waypoints_to_a_dead_end_and_stays_ordered_around_a_hairpin():
    m, road = _xodr_map({"segments": [{"line": 30}, {"hairpin": {"radius_m": 12}}, {"line": 40}], "lanes": {"driving": 1}})
    start = m.get_waypoint(carla.Location(x=2.0, y=1.75))
    route = cb.Route.plan(start, 1000.0)
    assert route.length_m == pytest.approx(30 + math.pi * (12 + 1.75) + 40 - 2.0, abs=1.0)
    x, y, _, yaw = route.point_at(10.0)
    assert (x, y, yaw) == pytest.approx((12.0, 1.75, 0.0), abs=0.02)
    ahead = route.ahead(25.0, 1.75, 0.0, 23.0, np.arange(2.0, 61.0, 2.0))
    dist = np.hypot(ahead[:, 0], ahead[:, 1])
    assert len(ahead) < 30 and np.all(np.diff(dist) >= -1e-3)
    proj = route.project(20.0, 2.25)
    assert proj.s_m == pytest.approx(18.0, abs=0.02) and proj.lateral_m == pytest.approx(0.5, abs=0.01)


def test_junction_choice():
    def wp(yaw, nxt=()):  # a one-lane road outside junctions; each option on its own road
        return SimpleNamespace(transform=SimpleNamespace(rotation=SimpleNamespace(yaw=yaw)), next=lambda d: list(nxt),
                               road_id=id(nxt), is_junction=False, get_left_lane=lambda: None,
                               get_right_lane=lambda: None)

    here = wp(0.0)
    options = [wp(0.0, [wp(-80.0)]), wp(0.0, [wp(2.0)]), wp(0.0, [wp(85.0)])]
    rng = np.random.default_rng(0)
    assert cb_route._choose(here, options, "straight", rng) is options[1]
    assert cb_route._choose(here, options, "left", rng) is options[0]
    assert cb_route._choose(here, options, "right", rng) is options[2]
    assert cb_route._choose(here, options, "random", rng) in options


# -- scenarios ------------------------------------------------------------------------------

def test_shipped_carla_scenarios_validate():
    paths = sorted(glob.glob(str(REPO / "scenarios" / "carla_*.yaml")))
    names = {Path(p).stem for p in paths}
    assert {"carla_town04_highway", "carla_town03_curves", "carla_town01_night_rain", "carla_town10hd"} <= names
    for path in paths:
        sc = load_scenario_file(path)
        assert sc.backend == "carla" and sc.dt_s <= 0.1
        spec = cb.carla_spec(sc)
        assert spec.map, path
        weather, _ = cb.scenario_weather(sc, spec)
        assert isinstance(weather, carla.WeatherParameters)


@pytest.mark.parametrize("block, pattern", [
    ({"spawn_pont": 3}, r"test\.yaml: field 'carla': unknown key\(s\) spawn_pont; allowed: .*spawn_point"),
    ({"weather": "ClearNoone"}, r"field 'carla\.weather': unknown preset 'ClearNoone'; known: .*ClearNoon"),
    ({"weather": {"preset": "WetNoon", "fogg": 3}}, r"field 'carla\.weather\.fogg': not a WeatherParameters field; known: .*fog_density"),
    ({"weather": {"fog_density": "thick"}}, r"field 'carla\.weather\.fog_density': expected a number"),
    ({"spawn_point": 2, "spawn_transform": {"x_m": 1, "y_m": 2}}, r"either 'spawn_point' .* or 'spawn_transform'"),
    ({"spawn_point": -1}, r"field 'carla\.spawn_point'"),
    ({"expert": "human"}, r"field 'carla\.expert': 'human' is not one of pure_pursuit, autopilot"),
    ({"traffic_manager": {"vehicles": "many"}}, r"field 'carla\.traffic_manager\.vehicles'"),
])
def test_carla_block_errors_name_file_field_and_fix(block, pattern):
    with pytest.raises(ScenarioError, match=pattern):
        cb.carla_spec(scenario(block))


def test_weather_from_preset_fields_or_the_generic_weather_and_restored():
    w = cb.weather_parameters({"preset": "WetNoon", "fog_density": 40})
    assert w.fog_density == 40 and w.wetness == carla.WeatherParameters.WetNoon.wetness
    sc = scenario(weather={"preset": "night_rain", "fog_density": 0.5})
    params, name = cb.scenario_weather(sc, cb.carla_spec(sc))
    assert name == "night_rain" and params.fog_density == 50.0
    assert params.sun_altitude_angle == carla.WeatherParameters.HardRainNight.sun_altitude_angle
    server = FakeServer()
    with make(server) as sim:
        obs = sim.reset(scenario({"weather": "HardRainNoon"}), seed=0)
        assert obs.weather == "HardRainNoon"
        assert server._weather.precipitation == carla.WeatherParameters.HardRainNoon.precipitation
    assert server.clean(), server.state()


def test_maps_are_compared_by_their_last_path_part():
    assert cb.match_map("Town04", ["/Game/Carla/Maps/Town01", "/Game/Carla/Maps/Town04"]) == "/Game/Carla/Maps/Town04"
    assert cb.match_map("Town10HD", ["/Game/Carla/Maps/Town10HD_Opt"]) == "/Game/Carla/Maps/Town10HD_Opt"
    assert cb.match_map("/Game/Carla/Maps/town01", ["/Game/Carla/Maps/Town01"]) == "/Game/Carla/Maps/Town01"
    assert cb.match_map("Town99", ["/Game/Carla/Maps/Town01"]) is None
    server = FakeServer(current_map="Town10HD_Opt")
    with make(server) as sim:
        sim.reset(scenario({"map": "Town10HD"}), seed=0)
        assert server._loads == 0
        sim.reset(scenario({"map": "/Game/Carla/Maps/Town04"}), seed=0)
        assert server._loads == 1 and server._map_path.endswith("/Town04")
        assert ("Client", "load_world", ("Town04",), {}) in server.log.calls
    assert server.clean(), server.state()


def test_spawn_retries_the_next_point_or_uses_a_transform():
    server = FakeServer(occupied={0, 1})
    with make(server) as sim:
        obs = sim.reset(scenario(), seed=0)
        assert obs.pose.x_m == pytest.approx(server._spawn_points[2].location.x, abs=0.5)
        hero = [a for a in server.alive() if a._attrs.get("role_name") == "hero"]
        assert len(hero) == 1 and hero[0]._type_id == "vehicle.lincoln.mkz_2020"
        obs = sim.reset(scenario({"spawn_transform": {"x_m": 150.0, "y_m": 5.25, "yaw_deg": 0.0}}), seed=0)
        assert obs.pose.x_m == pytest.approx(150.0, abs=0.5) and obs.pose.y_m == pytest.approx(5.25, abs=0.1)
        assert abs(obs.truth.lateral_offset_m) < 0.05
        with pytest.raises(BackendError, match="3\\+ lanes"):
            sim.reset(scenario({"spawn_min_lanes": 3}), seed=0)
        sim.reset(scenario({"spawn_min_lanes": 2}), seed=0)
    assert server.clean(), server.state()


# -- drive features -------------------------------------------------------------------------

def test_observation_ground_truth_spectator_collisions_and_lane_invasions():
    server = FakeServer()
    with make(server) as sim:
        obs = sim.reset(scenario({"route_length_m": 100}), seed=0)
        assert obs.frame == 0 and obs.sim_time_s == 0.0 and obs.truth.route_length_m == 100
        assert obs.truth.speed_limit_mps == pytest.approx(50 / 3.6)
        assert obs.truth.route_ahead.shape == (20, 2) and obs.truth.route_ahead[0, 0] == pytest.approx(2.0, abs=0.05)
        obs = drive(sim, 30)
        assert obs.frame == 30 and obs.sim_time_s == pytest.approx(1.5) and obs.truth.route_s_m > 2.0
        spec = server._spectator.get_transform()
        ego = obs.pose
        assert math.hypot(spec.location.x - ego.x_m, spec.location.y - ego.y_m) == pytest.approx(7.0, abs=0.01)
        assert spec.location.x < ego.x_m and spec.location.z == pytest.approx(ego.z_m + 3.0)
        server.inject_collision("vehicle.audi.tt", 900.0)
        server.inject_lane_invasion("Solid", "Broken")
        obs = sim.step(VehicleControl(throttle=0.5))
        assert [(c.other, c.other_kind, c.impulse_ns, c.frame) for c in obs.collisions] == \
            [("vehicle.audi.tt", "vehicle", 900.0, obs.frame)]
        assert [e.markings for e in obs.lane_invasions] == [("Solid", "Broken")]
        server.inject_collision("vehicle.audi.tt", 500.0)  # the same contact going on
        assert sim.step(VehicleControl()).collisions == ()
        server.inject_collision("walker.pedestrian.0001")
        assert sim.step(VehicleControl()).collisions[0].other_kind == "pedestrian"
        server.inject_collision("static.building")
        assert sim.step(VehicleControl()).collisions[0].other_kind == "static"
        assert sim.info.on_route_lane and not sim.info.off_road
        obs = drive(sim, 400, VehicleControl(throttle=1.0))
        assert obs.done and sim.info.route_completion_pct == 100.0
    assert server.clean(), server.state()


def test_traffic_manager_autopilot_expert_traffic_and_lead_vehicle():
    server = FakeServer()
    other = server.spawn_vehicle_at(server._spawn_points[2])  # someone else's car, 50 m ahead in our lane
    sc = scenario({"expert": "autopilot", "traffic_manager": {"vehicles": 3, "seed": 11}})
    with make(server) as sim:
        obs = sim.reset(sc, seed=0)
        assert obs.truth.lead_distance_m == pytest.approx(50.0 - 2 * 2.4, abs=0.5)
        assert obs.truth.lead_speed_mps == 0.0
        tm = server._tms[8000]
        assert tm._sync and tm._seed == 11
        ego = next(a for a in server.alive() if a._attrs.get("role_name") == "hero")
        assert ("autopilot", ego._id, True, 8000) in server._events and tm._paths[ego._id]
        npcs = [a for a in server.alive() if a._attrs.get("role_name") == "carla_agent/autopilot"]
        assert len(npcs) == 3
        obs = drive(sim, 5, VehicleControl(steer=1.0))  # ignored: the autopilot drives
        assert obs.truth.expert_steer == pytest.approx(ego.get_control().steer, abs=1e-6)
        assert abs(obs.truth.lateral_offset_m) < 0.3
    assert not server._tms[8000]._sync
    assert [a._id for a in server.alive()] == [other._id]


def test_recorder_per_run_and_replay_re_renders_from_the_hero():
    server = FakeServer()
    sc = scenario()
    with make(server, record=True, recorder_file="run_{scenario}_{seed}.log") as sim:
        sim.reset(sc, seed=4)
        assert sim.recorder_file == "run_double_4.log" and sim.info.recorder_file == "run_double_4.log"
        assert server._recorder == "run_double_4.log"
        drive(sim, 20)
        poses = [sim.step(VehicleControl(throttle=0.5, steer=0.1)).pose for _ in range(5)]
    assert sim.recorder_files == ["run_double_4.log"]
    recorded = server._recordings["run_double_4.log"]
    assert server.clean(), server.state()
    with cb.replay("run_double_4.log", sc, client_factory=server.client, timeout_s=2.0) as rp:
        assert rp.hero.attributes["role_name"] == "hero"
        frames = list(rp.frames())
    assert len(frames) == len(recorded) == rp.frame_count()
    assert frames[0].image.shape == (48, 64, 3) and frames[0].semantic.shape == (48, 64)
    assert frames[-1].pose.x_m == pytest.approx(poses[-1].x_m, abs=1e-3)
    names = server.log.names()
    replay_at = names.index("Client.replay_file")
    assert "World.apply_settings" in names[replay_at:], "synchronous mode is re-applied after replay_file"
    assert server.clean(), server.state()
    with pytest.raises(BackendError, match="CarlaUE4/Saved"):
        with cb.replay("missing.log", sc, client_factory=server.client):
            pass
    assert server.clean(), server.state()


# -- every carla call the backend makes exists in the wheel and accepts its arguments -------------

_SIG = re.compile(r"^\s*(\w+)\((.*)\)\s*->\s*[\w.]+\s*:\s*$")


def wheel_signatures(func):
    """Overloads of a Boost.Python function: lists of ``(type, name, optional)``."""
    out = []
    for line in (func.__doc__ or "").splitlines():
        m = _SIG.match(line)
        if not m:
            continue
        body = m.group(2)
        first_optional = body.find("[")
        out.append([(p.group(1), p.group(2), first_optional != -1 and p.start() > first_optional)
                    for p in re.finditer(r"\((\w+)\)(\w+)", body)])
    return out


def _type_ok(type_name: str, value) -> bool:
    if type_name == "object":
        return True
    if type_name == "str":
        return isinstance(value, str)
    if type_name == "bool":
        return isinstance(value, bool)
    if type_name == "int":
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if type_name == "float":
        return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if type_name == "list":
        return isinstance(value, list)
    if type_name == "GBufferTextureID":  # Boost's name for some enum/int parameters in the 0.9.16 docs
        return isinstance(value, int)
    real = getattr(carla, type_name, None)
    if isinstance(real, type):
        if isinstance(value, Api):
            return issubclass(getattr(carla, value._api), real)
        return isinstance(value, real)
    return True


def binds(func, args, kwargs) -> str:
    """'' when ``func(self, *args, **kwargs)`` matches an overload of the wheel's signature, else why not."""
    sigs = wheel_signatures(func)
    if not sigs:
        return "no signature in the docstring"
    reasons = []
    for params in sigs:
        params = params[1:]  # self / arg1
        if len(args) > len(params):
            reasons.append(f"{len(args)} positional arguments for {len(params)} parameters")
            continue
        bound = {name: (t, v) for (t, name, _), v in zip(params, args)}
        by_name = {name: (t, opt) for t, name, opt in params}
        bad = [k for k in kwargs if k not in by_name or k in bound]
        if bad:
            reasons.append(f"bad keyword(s) {bad}")
            continue
        bound.update({k: (by_name[k][0], v) for k, v in kwargs.items()})
        missing = [name for t, name, opt in params if not opt and name not in bound]
        wrong = [f"{k}: {type(v).__name__} for {t}" for k, (t, v) in bound.items() if not _type_ok(t, v)]
        if missing or wrong:
            reasons.append(f"missing {missing} wrong {wrong}")
            continue
        return ""
    return "; ".join(reasons)


def test_the_signature_checker_rejects_wrong_calls():
    assert binds(carla.World.tick, (2.0,), {}) == ""
    assert binds(carla.World.tick, ("soon",), {}) != ""
    assert binds(carla.Client.start_recorder, ("a.log", False), {}) == ""
    assert binds(carla.Client.start_recorder, (), {}) != ""
    assert binds(carla.Vehicle.set_autopilot, (True, 8000), {}) == ""
    assert binds(carla.World.apply_settings, (carla.WeatherParameters(),), {}) != ""
    assert binds(carla.Map.get_waypoint, (carla.Location(), True), {"lane_type": carla.LaneType.Driving}) == ""
    assert binds(carla.Map.get_waypoint, (carla.Location(),), {"project": True}) != ""


def test_every_carla_call_the_backend_makes_exists_in_the_wheel_and_accepts_its_arguments():
    server = FakeServer(current_map="Town01")
    sc = scenario({"map": "Town04", "expert": "autopilot", "traffic_manager": {"vehicles": 2},
                   "weather": {"preset": "WetNoon", "fog_density": 10}})
    with make(server, record=True) as sim:
        sim.reset(sc, seed=2)
        drive(sim, 3)
        sim.recover()
        server.inject_collision("static.pole")
        server.inject_lane_invasion("Solid")
        drive(sim, 3)
        sim.reset(scenario({"spawn_transform": {"x_m": 150.0, "y_m": 1.75}}), seed=2)
        drive(sim, 2)
    with cb.replay(sim.recorder_files[0], sc, client_factory=server.client) as rp:
        list(rp.frames(max_frames=3))
    assert server.clean(), server.state()
    log = server.log
    apis = {api for api, _ in log.reads} | {api for api, *_ in log.calls}
    for api in apis:
        assert isinstance(getattr(carla, api, None), type), f"carla has no class {api}"
    missing = sorted(f"carla.{api}.{name}" for api, name in log.reads if not hasattr(getattr(carla, api), name))
    assert not missing, f"the backend uses attributes the wheel lacks: {missing}"
    problems = set()
    for api, name, args, kwargs in log.calls:
        why = binds(getattr(getattr(carla, api), name), args, kwargs)
        if why:
            problems.add(f"carla.{api}.{name}{tuple(type(a).__name__ for a in args)} {kwargs}: {why}")
    assert not problems, "\n".join(sorted(problems))
    called = {f"{api}.{name}" for api, name, *_ in log.calls}
    assert {"Client.__init__", "Client.get_server_version", "Client.load_world", "Client.start_recorder",
            "Client.stop_recorder", "Client.replay_file", "Client.stop_replayer", "World.apply_settings",
            "World.tick", "World.try_spawn_actor", "World.spawn_actor", "TrafficManager.set_synchronous_mode",
            "TrafficManager.set_path", "Vehicle.set_autopilot", "Vehicle.set_transform", "ServerSideSensor.listen",
            "ServerSideSensor.stop", "ClientSideSensor.stop", "Map.get_waypoint"} <= called
