"""`serve` against the real carla 0.9.16 wheel over loopback TCP (issue 8).

The server runs in a subprocess: the carla client holds the GIL while it waits
on an RPC, so a server thread in the same process would starve.
"""

import importlib.metadata
import os
import queue
import socket
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import pytest

carla = pytest.importorskip("carla")
from served_world import start_server as _start_server, stop_server as _stop_server

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_is_pinned():
    # The wire layouts in carla_agent/server are those of this exact wheel.
    assert importlib.metadata.version("carla") == "0.9.16"


@pytest.fixture(scope="module")
def server():
    proc, port = _start_server()
    try:
        yield port
    finally:
        _stop_server(proc)


def _client(port):
    c = carla.Client("127.0.0.1", port)
    c.set_timeout(5.0)
    return c


def _set_sync(world, on, dt=0.05):
    s = world.get_settings()
    s.synchronous_mode = on
    s.fixed_delta_seconds = dt if on else None
    return world.apply_settings(s)


def test_version_and_world(server):
    c = _client(server)
    assert c.get_server_version() == "0.9.16"
    world = c.get_world()
    assert world.id == 1
    assert world.get_snapshot().frame >= 0


def test_sync_tick_frames_increase(server):
    world = _client(server).get_world()
    try:
        _set_sync(world, True)
        s = world.get_settings()
        assert s.synchronous_mode and s.fixed_delta_seconds == pytest.approx(0.05)
        frames = [world.tick() for _ in range(5)]
        assert frames == list(range(frames[0], frames[0] + 5))
        assert world.get_snapshot().frame == frames[-1]
    finally:
        _set_sync(world, False)
    assert not world.get_settings().synchronous_mode


def test_map_blueprints_spawn_and_drive(server):
    world = _client(server).get_world()
    m = world.get_map()
    assert m.name == "gentle_curves"
    assert "<OpenDRIVE" in m.to_opendrive()
    points = m.get_spawn_points()
    assert points
    lib = world.get_blueprint_library()
    for name in ("vehicle.lincoln.mkz_2020", "sensor.camera.rgb", "sensor.camera.semantic_segmentation",
                 "sensor.other.collision", "sensor.other.lane_invasion"):
        assert lib.find(name).id == name
    try:
        _set_sync(world, True)
        ego = world.spawn_actor(lib.find("vehicle.lincoln.mkz_2020"), points[0])
        try:
            world.tick()
            start = ego.get_transform().location
            assert start.distance(points[0].location) < 1.0
            ego.apply_control(carla.VehicleControl(throttle=1.0))
            for _ in range(40):
                world.tick()
            end = ego.get_transform().location
            assert end.distance(start) > 3.0
            assert ego.get_velocity().length() > 1.0
            assert ego.id in [a.id for a in world.get_actors()]
        finally:
            assert ego.destroy()
    finally:
        _set_sync(world, False)


def test_synchronous_mode_camera_pattern(server):
    """CARLA's examples/synchronous_mode.py pattern: camera queue matched by frame."""
    world = _client(server).get_world()
    lib = world.get_blueprint_library()
    actors = []
    try:
        _set_sync(world, True)
        ego = world.spawn_actor(lib.find("vehicle.tesla.model3"), world.get_map().get_spawn_points()[0])
        actors.append(ego)
        bp = lib.find("sensor.camera.rgb")
        bp.set_attribute("image_size_x", "160")
        bp.set_attribute("image_size_y", "120")
        bp.set_attribute("fov", "100")
        cam = world.spawn_actor(bp, carla.Transform(carla.Location(x=-5.5, z=2.8), carla.Rotation(pitch=-15)),
                                attach_to=ego)
        actors.append(cam)
        images = queue.Queue()
        cam.listen(images.put)
        ego.apply_control(carla.VehicleControl(throttle=0.5))
        for _ in range(5):
            frame = world.tick()
            while True:
                img = images.get(timeout=5.0)
                if img.frame == frame:
                    break
                assert img.frame < frame
            assert (img.width, img.height) == (160, 120)
            assert img.fov == pytest.approx(100.0)
            raw = bytes(img.raw_data)
            assert len(raw) == 160 * 120 * 4
            assert len(set(raw[0::4][:5000])) > 5  # a rendered picture, not a blank
        cam.stop()
    finally:
        for a in reversed(actors):
            a.destroy()
        _set_sync(world, False)


def test_unknown_call_errors_and_server_keeps_serving(server):
    client = _client(server)
    with pytest.raises(RuntimeError, match="opendrive could not be correctly parsed"):
        client.generate_opendrive_world("<OpenDRIVE/>")  # a map with no road: refused, the world kept
    # Raw msgpack-rpc: an unknown method, then a malformed message, over one socket.
    with socket.create_connection(("127.0.0.1", server), timeout=5.0) as s:
        s.sendall(msgpack.packb([0, 7, "no_such_call", [[False]]]))
        unpacker = msgpack.Unpacker(raw=False)
        reply = None
        while reply is None:
            unpacker.feed(s.recv(4096))
            for reply in unpacker:
                break
        assert reply[0] == 1 and reply[1] == 7
        assert reply[3] == [[0, ["the embedded server does not support no_such_call"]]]
        s.sendall(b"\xc1\xc1garbage")
    assert _client(server).get_server_version() == "0.9.16"
    assert _client(server).get_world().get_map().name == "gentle_curves"


CHILD = """
import sys, carla
c = carla.Client('127.0.0.1', int(sys.argv[1])); c.set_timeout(5.0)
w = c.get_world(); s = w.get_settings(); s.synchronous_mode = True; s.fixed_delta_seconds = 0.05
w.apply_settings(s)
for _ in range(3): w.tick()
print('ticking', flush=True)
import time; time.sleep(60)
"""


def test_killed_sync_client_leaves_server_usable(server):
    world = _client(server).get_world()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(server)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ticking"
        # As in CARLA, any client's tick steps the synchronous world (issue 19: the emulation
        # refused it, so a backend driving a server someone else ticks was never tested).
        assert world.get_settings().synchronous_mode
    finally:
        child.kill()
        child.wait(timeout=5)
    assert world.get_settings().synchronous_mode  # the grace period
    deadline = time.time() + 10
    while world.get_settings().synchronous_mode and time.time() < deadline:
        time.sleep(0.2)
    assert not world.get_settings().synchronous_mode, "server did not return to asynchronous mode"
    before = world.get_snapshot().frame
    world.wait_for_tick(seconds=5.0)
    assert world.get_snapshot().frame > before
    # The ownership went with it: this client can now run synchronous mode itself.
    try:
        _set_sync(world, True)
        frames = [world.tick() for _ in range(3)]
        assert frames == list(range(frames[0], frames[0] + 3))
    finally:
        _set_sync(world, False)


def test_another_client_takes_ticking_over_within_the_grace_period(server):
    """The owner dies; a client that ticks before the 2 s grace is over becomes the owner, and the
    grace timer of the dead one no longer switches synchronous mode off under it."""
    world = _client(server).get_world()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(server)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ticking"
    finally:
        child.kill()
        child.wait(timeout=5)
    try:
        deadline = time.time() + 1.5
        while True:  # the server notices the closed connection a moment after the kill
            try:
                first = world.tick()
                break
            except RuntimeError:
                assert time.time() < deadline, "the dead owner's connection was never dropped"
                time.sleep(0.05)
        time.sleep(2.5)  # past the grace period
        assert world.get_settings().synchronous_mode, "the old owner's grace timer switched sync off"
        assert world.tick() == first + 1
    finally:
        _set_sync(world, False)


def test_every_client_ticks_a_synchronous_server_as_in_carla(server):
    """As in CARLA: a tick from any client steps the synchronous world (two tickers double-tick:
    issue 19), any client may change the settings, and others read the world (snapshots,
    on_tick, actors)."""
    owner = _client(server).get_world()
    other_client = _client(server)
    other = other_client.get_world()
    ego = None
    ticks = []
    callback = None
    try:
        _set_sync(owner, True)
        ego = owner.spawn_actor(owner.get_blueprint_library().find("vehicle.lincoln.mkz_2020"),
                                owner.get_map().get_spawn_points()[0])
        ego.apply_control(carla.VehicleControl(throttle=1.0))
        first = owner.tick()
        assert other.tick() == first + 1, "the second client's tick steps the world too"
        assert owner.tick() == first + 2
        other_client.apply_batch_sync(
            [carla.command.ApplyVehicleControl(ego.id, carla.VehicleControl(throttle=1.0))], True)
        # The client's snapshot follows the server's stream, which may still be on its way (a loaded machine).
        deadline = time.monotonic() + 5.0
        while owner.get_snapshot().frame < first + 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert owner.get_snapshot().frame == first + 3, "apply_batch_sync(..., True) ticks, whoever sends it"
        assert other.get_settings().synchronous_mode
        callback = other.on_tick(lambda snapshot: ticks.append(snapshot.frame))
        frames = [owner.tick() for _ in range(10)]
        deadline = time.time() + 5
        while (not ticks or ticks[-1] < frames[-1]) and time.time() < deadline:
            time.sleep(0.05)
        assert frames[-1] in ticks and set(ticks) <= set(range(frames[0], frames[-1] + 1))
        assert other.get_snapshot().frame == frames[-1]
        seen = other.get_actors().find(ego.id)
        assert seen is not None and seen.type_id == "vehicle.lincoln.mkz_2020"
        assert seen.get_transform().location.distance(ego.get_transform().location) < 1e-3
        assert seen.get_velocity().length() > 1.0
    finally:
        if callback is not None:
            other.remove_on_tick(callback)
        if ego is not None:
            ego.destroy()
        _set_sync(owner, False)
    assert not other.get_settings().synchronous_mode


def test_weather_get_set(server):
    world = _client(server).get_world()
    w = world.get_weather()
    assert 0.0 <= w.cloudiness <= 100.0
    try:
        world.set_weather(carla.WeatherParameters.HardRainNoon)
        deadline = time.time() + 5  # set_weather is an async call
        while world.get_weather().precipitation != carla.WeatherParameters.HardRainNoon.precipitation:
            assert time.time() < deadline
            time.sleep(0.05)
    finally:
        world.set_weather(carla.WeatherParameters.ClearNoon)


def test_apply_batch_control_and_semantic_camera(server):
    from carla_agent.sim.carla_backend.sensors import SEMANTIC_LUT
    from carla_agent.sim.observation import SemanticClass

    client = _client(server)
    world = client.get_world()
    lib = world.get_blueprint_library()
    actors = []
    try:
        _set_sync(world, True)
        ego = world.spawn_actor(lib.find("vehicle.audi.a2"), world.get_map().get_spawn_points()[0])
        actors.append(ego)
        bb = ego.bounding_box
        assert bb.extent.x > 1.0 and bb.extent.y > 0.5
        bp = lib.find("sensor.camera.semantic_segmentation")
        bp.set_attribute("image_size_x", "96")
        bp.set_attribute("image_size_y", "64")
        cam = world.spawn_actor(bp, carla.Transform(carla.Location(x=0.8, z=1.5)), attach_to=ego)
        actors.append(cam)
        images = queue.Queue()
        cam.listen(images.put)
        start = ego.get_transform().location
        for _ in range(30):
            responses = client.apply_batch_sync(
                [carla.command.ApplyVehicleControl(ego.id, carla.VehicleControl(throttle=1.0))], True)
            assert not responses[0].error and responses[0].actor_id == ego.id
        assert ego.get_transform().location.distance(start) > 2.0
        img = images.get(timeout=5.0)
        while not images.empty():
            img = images.get_nowait()
        import numpy as np

        red = np.frombuffer(bytes(img.raw_data), np.uint8).reshape(64, 96, 4)[:, :, 2]
        classes = set(SEMANTIC_LUT[red].ravel().tolist())
        assert {SemanticClass.ROAD, SemanticClass.SKY} <= classes
        cam.stop()
    finally:
        for a in reversed(actors):
            a.destroy()
        _set_sync(world, False)


@pytest.fixture()
def fresh_server():
    """A server of its own: no weather or settings left behind by other tests."""
    proc, port = _start_server()
    try:
        yield port
    finally:
        _stop_server(proc)


def test_frames_equal_direct_backend(fresh_server):
    """Same seed, same controls, a camera where the scenario mounts it: the same pixels."""
    server = fresh_server
    import numpy as np

    from carla_agent.control import VehicleControl
    from carla_agent.sim.embedded.simulator import EmbeddedSimulator
    from carla_agent.sim.scenario import load_scenario

    sc = load_scenario("gentle_curves")
    cam_spec = sc.camera
    controls = [(0.5, 0.0), (1.0, 0.125), (1.0, -0.25), (0.25, 0.0), (0.0, 0.5)]
    direct = EmbeddedSimulator(render=True)
    direct.reset(sc, 0)
    expected = [direct.step(VehicleControl(throttle=t, steer=st)).image for t, st in controls]
    direct.close()

    world = _client(server).get_world()
    lib = world.get_blueprint_library()
    actors = []
    try:
        _set_sync(world, True, sc.dt_s)
        ego = world.spawn_actor(lib.find("vehicle.lincoln.mkz_2020"), world.get_map().get_spawn_points()[0])
        actors.append(ego)
        bp = lib.find("sensor.camera.rgb")
        bp.set_attribute("image_size_x", str(cam_spec.image_size_x))
        bp.set_attribute("image_size_y", str(cam_spec.image_size_y))
        bp.set_attribute("fov", str(cam_spec.fov))
        mount = carla.Transform(carla.Location(x=cam_spec.x_m, y=-cam_spec.y_m, z=cam_spec.z_m),
                                carla.Rotation(pitch=cam_spec.pitch_deg))
        cam = world.spawn_actor(bp, mount, attach_to=ego)
        actors.append(cam)
        images = queue.Queue()
        cam.listen(images.put)
        for (t, st), want in zip(controls, expected):
            ego.apply_control(carla.VehicleControl(throttle=t, steer=st))
            frame = world.tick()
            img = images.get(timeout=5.0)
            while img.frame < frame:
                img = images.get(timeout=5.0)
            bgra = np.frombuffer(bytes(img.raw_data), np.uint8).reshape(img.height, img.width, 4)
            np.testing.assert_array_equal(bgra[:, :, 2::-1], want)
        cam.stop()
    finally:
        for a in reversed(actors):
            a.destroy()
        _set_sync(world, False)


def test_collision_sensor(server):
    from carla_agent.sim.embedded.simulator import EmbeddedSimulator
    from carla_agent.sim.scenario import load_scenario

    sim = EmbeddedSimulator(render=False)
    sim.reset(load_scenario("gentle_curves"), 0)
    obstacle = next(o for o in sim.statics if o.kind in ("tree", "pole", "sign"))
    world = _client(server).get_world()
    lib = world.get_blueprint_library()
    actors = []
    try:
        _set_sync(world, True)
        on_it = carla.Transform(carla.Location(x=obstacle.x_m, y=-obstacle.y_m, z=0.5))
        ego = world.spawn_actor(lib.find("vehicle.lincoln.mkz_2020"), on_it)
        actors.append(ego)
        sensor = world.spawn_actor(lib.find("sensor.other.collision"), carla.Transform(), attach_to=ego)
        actors.append(sensor)
        events = queue.Queue()
        sensor.listen(events.put)
        frame = world.tick()
        ev = events.get(timeout=5.0)
        assert ev.frame == frame
        assert ev.actor.id == ego.id
        assert ev.other_actor.type_id == f"static.{obstacle.kind}"
        assert ev.other_actor.id == 0, "CARLA reports every static object of the map with id 0"
        sensor.stop()
    finally:
        for a in reversed(actors):
            a.destroy()
        _set_sync(world, False)


TM_CHILD = """
import sys, carla
c = carla.Client('127.0.0.1', int(sys.argv[1])); c.set_timeout(10.0)
w = c.get_world()
s = w.get_settings(); s.synchronous_mode = True; s.fixed_delta_seconds = 0.05; w.apply_settings(s)
tm = c.get_trafficmanager(int(sys.argv[2])); tm.set_synchronous_mode(True)
m = w.get_map()
ego = w.spawn_actor(w.get_blueprint_library().find('vehicle.lincoln.mkz_2020'), m.get_spawn_points()[0])
ego.set_autopilot(True, tm.get_port())
worst = -1e9
start = ego.get_transform().location
for i in range(600):  # 30 s
    w.tick()
    loc = ego.get_transform().location
    wp = m.get_waypoint(loc, project_to_road=True, lane_type=carla.LaneType.Driving)
    worst = max(worst, loc.distance(wp.transform.location) - 0.5 * wp.lane_width)
print('RESULT', worst, ego.get_transform().location.distance(start), flush=True)
ego.set_autopilot(False, tm.get_port())
ego.destroy()
s.synchronous_mode = False; w.apply_settings(s)
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _communicate_or_report_hang(child, timeout_s: float):
    """``child.communicate`` within ``timeout_s``. On a hang (known issue, docs/serve.md: a lost
    wake-up in the wheel's client-side Traffic Manager), save the child's native backtraces (gdb,
    when installed), warn where they are, kill the child and raise TimeoutExpired."""
    import shutil
    import tempfile
    import warnings

    try:
        return child.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        where = "gdb not installed: no backtrace"
        if shutil.which("gdb"):
            try:
                bt = subprocess.run(["gdb", "-p", str(child.pid), "-batch", "-ex", "thread apply all bt 16"],
                                    capture_output=True, text=True, timeout=60).stdout
                fd, where = tempfile.mkstemp(prefix="carla_tm_hang_", suffix=".txt")
                with os.fdopen(fd, "w") as f:
                    f.write(bt)
            except (OSError, subprocess.TimeoutExpired) as e:
                where = f"gdb failed: {e}"
        warnings.warn(f"a carla client with a synchronous Traffic Manager hung (known issue, docs/serve.md); "
                      f"backtraces: {where}")
        raise
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=5)


def _run_tm_child(timeout_s: float):
    proc, port = _start_server()
    try:
        child = subprocess.Popen([sys.executable, "-c", TM_CHILD, str(port), str(_free_port())],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = _communicate_or_report_hang(child, timeout_s)
        return subprocess.CompletedProcess(child.args, child.returncode, out, err)
    finally:
        _stop_server(proc)


def test_autopilot_with_traffic_manager_stays_on_road():
    # KNOWN ISSUE (docs/serve.md): now and then the client with a synchronous Traffic Manager hangs
    # inside world.tick(): a lost wake-up between the wheel's TrafficManagerLocal::SynchronousTick
    # and its worker thread (client side). One retry on a fresh server; a real regression fails
    # both. A hang leaves the child's backtraces in a temp file named by a warning.
    for attempt in range(2):
        try:
            child = _run_tm_child(timeout_s=15.0)
            break
        except subprocess.TimeoutExpired:
            if attempt == 1:
                raise
    line = next((ln for ln in child.stdout.splitlines() if ln.startswith("RESULT")), None)
    assert line is not None, child.stdout + child.stderr
    worst_outside_lane_m, travelled_m = (float(v) for v in line.split()[1:])
    assert travelled_m > 50.0  # it drove
    assert worst_outside_lane_m < 0.0, line  # the car's centre never left its lane


def test_get_waypoint_agrees_with_embedded_ground_truth(server):
    import math

    from carla_agent.sim.embedded.simulator import EmbeddedSimulator
    from carla_agent.sim.scenario import load_scenario

    sim = EmbeddedSimulator(render=False)
    sim.reset(load_scenario("gentle_curves"), 0)
    road = sim.road
    m = _client(server).get_world().get_map()
    for s in [10.0 + k * (road.length_m - 20.0) / 9 for k in range(10)]:
        x, y = road.to_world(s, sim.lane_t + 0.4)  # a little off the lane centre
        wp = m.get_waypoint(carla.Location(x=float(x), y=-float(y), z=0.0))
        cx, cy = road.to_world(s, sim.lane_t)  # the embedded lane centre
        assert wp.transform.location.distance(carla.Location(x=float(cx), y=-float(cy))) < 0.15, s
        want_yaw = -math.degrees(road.heading_at(s))
        assert abs((wp.transform.rotation.yaw - want_yaw + 180.0) % 360.0 - 180.0) < 1.0, s
        assert wp.lane_width == pytest.approx(sim.lane_width, abs=0.01)


BACKEND_CHILD = """
import sys
from carla_agent.sim.carla_backend import CarlaSimulator
from carla_agent.control import VehicleControl
from carla_agent.sim.embedded.simulator import EmbeddedSimulator
from carla_agent.sim.scenario import load_scenario

sc = load_scenario("gentle_curves")
served = CarlaSimulator(port=int(sys.argv[1]), tm_port=int(sys.argv[2]), timeout_s=5.0, load_timeout_s=10.0)
direct = EmbeddedSimulator(render=True)
direct.reset(sc, 0)
try:
    obs = served.reset(sc, 0)
    assert obs.image.shape == (sc.camera.image_size_y, sc.camera.image_size_x, 3)
    # CarlaSimulator.reset ticks the world until the ego has settled (settling.ticks, at least
    # settle_ticks), then once more for the first camera frame; the ego stands still meanwhile, but
    # the scenario's traffic drives on. Advance the direct world's traffic and frame counter by as
    # many ticks: then every pixel must agree.
    assert served.settling.settled and served.settling.ticks >= served.spec.settle_ticks
    reset_ticks = served.settling.ticks + 1
    for _ in range(reset_ticks):
        for v in direct.traffic:
            v.step(direct.road, sc.dt_s)
    direct.frame += reset_ticks
    differing = []
    for t, st in [(0.5, 0.0), (1.0, 0.125), (1.0, -0.25), (0.25, 0.0), (0.0, 0.5)] * 3:
        a = served.step(VehicleControl(throttle=t, steer=st))
        b = direct.step(VehicleControl(throttle=t, steer=st))
        assert abs(a.speed_mps - b.speed_mps) < 1e-4, (a.speed_mps, b.speed_mps)
        assert abs(a.pose.x_m - b.pose.x_m) < 1e-3 and abs(a.pose.y_m - b.pose.y_m) < 1e-3
        assert abs(a.truth.lateral_offset_m - b.truth.lateral_offset_m) < 1e-3
        differing.append(int((a.image != b.image).any(axis=2).sum()))
    assert differing == [0] * len(differing), differing
    # An intervention: both put the car back on its lane centre at the same speed.
    for _ in range(30):
        a = served.step(VehicleControl(throttle=1.0, steer=0.3))
        b = direct.step(VehicleControl(throttle=1.0, steer=0.3))
    assert abs(a.truth.lateral_offset_m) > 0.3 and abs(b.truth.lateral_offset_m) > 0.3, (a.truth, b.truth)
    served.recover()
    direct.recover()
    a, b = served.step(VehicleControl()), direct.step(VehicleControl())
    assert abs(a.truth.lateral_offset_m) < 0.05 and abs(b.truth.lateral_offset_m) < 0.05
    assert abs(a.speed_mps - b.speed_mps) < 0.05, (a.speed_mps, b.speed_mps)
finally:
    served.close()
print("RESULT ok", flush=True)
"""


def test_our_carla_backend_through_the_server():
    """CarlaSimulator (our CARLA backend) drives the served world: the physics match the direct
    backend, and so does every pixel once the direct traffic has driven through the backend's
    reset ticks.

    The client runs in a child process: should it start a client-side Traffic Manager (the
    backend does only for TM-driven vehicles), the wheel aborts its whole process once the
    server it talked to is gone, which would take pytest down with it.
    """
    for attempt in range(2):  # defensive: a hang of the wheel's synchronous Traffic Manager
        proc, port = _start_server()  # fresh: a killed client's ego would stay in the world
        try:
            child = subprocess.Popen([sys.executable, "-c", BACKEND_CHILD, str(port), str(_free_port())],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT))
            out, err = _communicate_or_report_hang(child, 60)
            break
        except subprocess.TimeoutExpired:
            if attempt == 1:
                raise
        finally:
            _stop_server(proc)
    assert "RESULT ok" in out, out[-2000:] + err[-4000:]


CLOSED_LOOP_S = 15.0


@pytest.mark.parametrize("scenario", ["gentle_curves", "lead_vehicle"])
def test_shipped_model_closed_loop_through_the_server_matches_direct(scenario):
    """Issue 8: ``drive --backend carla`` (shipped PilotNet, Runner + NetworkAgent) through the server
    scores the same autonomy as the embedded backend direct, within 1 point.

    gentle_curves: bends and oncoming cars. lead_vehicle: the cruise control follows the lead car,
    which the CARLA backend finds among ``world.get_actors()``: the mean speeds agree only if the
    served traffic actor is where the embedded one is.
    The served drive is the real CLI in a child process (kept apart from pytest, see above);
    the direct drive runs here meanwhile, so the two model loads overlap.
    """
    import json

    from carla_agent.drive.agent import NetworkAgent
    from carla_agent.sim.embedded.simulator import EmbeddedSimulator
    from carla_agent.drive.runner import Runner
    from carla_agent.sim.scenario import load_scenario
    from carla_agent.network.steering_model import SteeringModel

    def start_served_drive():
        proc, port = _start_server(scenario)
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        child = subprocess.Popen(
            [sys.executable, "-m", "carla_agent", "drive", "--scenario", scenario, "--backend", "carla",
             "--host", "127.0.0.1", "--port", str(port), "--tm-port", str(_free_port()), "--timeout", "10",
             "--duration", str(CLOSED_LOOP_S), "--json", "--headless", "--quiet"],
            cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return proc, child

    sc = load_scenario(scenario)
    proc, child = start_served_drive()
    try:
        model = SteeringModel.load(str(ROOT / "carla_agent" / "models" / "pilotnet.keras"))
        with EmbeddedSimulator() as sim:
            direct = Runner(sim, NetworkAgent(model, sc.target_speed_mps), sc, seed=0,
                            duration_s=CLOSED_LOOP_S).run().to_dict()
        # Defensive: should a synchronous Traffic Manager ever run here, it can hang in the wheel
        # (known issue, docs/serve.md): one retry on a fresh server.
        for attempt in range(2):
            try:
                out, err = _communicate_or_report_hang(child, 60)
                break
            except subprocess.TimeoutExpired:
                if attempt == 1:
                    raise
                _stop_server(proc)
                proc, child = start_served_drive()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=5)
        _stop_server(proc)
    assert child.returncode == 0, out[-2000:] + err[-4000:]
    served = json.loads(out.strip().splitlines()[-1])
    assert served["backend"] == "carla" and direct["backend"] == "embedded"
    assert served["elapsed_s"] == pytest.approx(CLOSED_LOOP_S, abs=0.06)
    assert direct["elapsed_s"] == pytest.approx(CLOSED_LOOP_S, abs=0.06)
    assert served["distance_m"] > 100.0  # it drove
    assert abs(served["autonomy_pct"] - direct["autonomy_pct"]) <= 1.0, (served, direct)
    assert served["collisions"] == direct["collisions"] == 0
    # The same model on the same pixels: the lateral offsets agree closely, not just the score.
    assert served["mean_abs_offset_m"] == pytest.approx(direct["mean_abs_offset_m"], abs=0.02), (served, direct)
    assert served["distance_m"] == pytest.approx(direct["distance_m"], rel=0.03), (served, direct)
    assert served["mean_speed_mps"] == pytest.approx(direct["mean_speed_mps"], rel=0.02), (served, direct)
    if scenario == "lead_vehicle":  # caught up with the 30 km/h lead car and followed it
        assert direct["mean_speed_mps"] < 0.95 * sc.target_speed_mps


def test_traffic_vehicles_are_actors_and_collision_partners():
    """lead_vehicle's lead car is a ``vehicle.lead`` actor: in get_actors() with its box, moving in the
    episode stream exactly as in the embedded world, and named as ``other_actor`` when hit."""
    import math

    from carla_agent.control import VehicleControl
    from carla_agent.sim.embedded.simulator import EmbeddedSimulator
    from carla_agent.sim.scenario import load_scenario

    sc = load_scenario("lead_vehicle")
    direct = EmbeddedSimulator(render=False)
    direct.reset(sc, 0)
    lead = next(v for v in direct.traffic if v.name == "lead")
    proc, port = _start_server("lead_vehicle")
    actors = []
    try:
        world = _client(port).get_world()
        lib = world.get_blueprint_library()
        _set_sync(world, True, sc.dt_s)
        ego = world.spawn_actor(lib.find("vehicle.lincoln.mkz_2020"), world.get_map().get_spawn_points()[0])
        actors.append(ego)
        world.tick()
        direct.step(VehicleControl())
        served = [a for a in world.get_actors().filter("vehicle.*") if a.id != ego.id]
        assert [a.type_id for a in served] == ["vehicle.lead"]
        car = served[0]
        assert car.attributes["role_name"] == "lead"
        ext = car.bounding_box.extent
        assert (ext.x, ext.y, ext.z) == pytest.approx((lead.length_m / 2, lead.width_m / 2, lead.height_m / 2))
        start = car.get_transform().location
        for _ in range(20):
            ego.apply_control(carla.VehicleControl(brake=1.0))
            world.tick()
            direct.step(VehicleControl(brake=1.0))
        box = lead.box(direct.road)
        loc, rot = car.get_transform().location, car.get_transform().rotation
        assert loc.distance(carla.Location(x=box.x_m, y=-box.y_m, z=0.0)) < 1e-3
        assert abs((rot.yaw + math.degrees(box.yaw_rad) + 180.0) % 360.0 - 180.0) < 1e-2
        assert loc.distance(start) == pytest.approx(20 * sc.dt_s * lead.speed_mps, rel=0.02)
        assert car.get_velocity().length() == pytest.approx(lead.speed_mps, rel=1e-3)

        # Put the ego onto it: the collision event names the lead car.
        sensor = world.spawn_actor(lib.find("sensor.other.collision"), carla.Transform(), attach_to=ego)
        actors.append(sensor)
        events = queue.Queue()
        sensor.listen(events.put)
        ego.set_transform(car.get_transform())
        frame = world.tick()
        hit = events.get(timeout=5.0)
        assert hit.frame == frame and hit.actor.id == ego.id
        assert hit.other_actor.id == car.id and hit.other_actor.type_id == "vehicle.lead"
        sensor.stop()
        # Destroying a traffic vehicle takes it out of the world.
        assert car.destroy()
        world.tick()
        assert [a.id for a in world.get_actors().filter("vehicle.*")] == [ego.id]
    finally:
        for a in reversed(actors):
            a.destroy()
        _stop_server(proc)
