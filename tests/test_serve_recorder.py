"""The recorder and replayer of ``serve`` through the real ``carla`` wheel, and the vehicle catalogue:
a recording of the ego, 3 vehicles and a walker read back by ``show_recorder_file_info``, a forced
collision listed by ``show_recorder_collisions``, a standing car by ``show_recorder_actors_blocked``,
``replay_file`` moving the replayed vehicles along the recorded poses, and refusals."""

from __future__ import annotations

import math
import os
import re
import socket

import msgpack
import pytest

from served_world import start_server, stop_server

carla = pytest.importorskip("carla")
TICKS = 30


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recordings")
    proc, port = start_server(env=dict(os.environ, CARLA_AGENT_RECORDER_DIR=str(folder)))
    try:
        c = carla.Client("127.0.0.1", port)
        c.set_timeout(20.0)
        w = c.get_world()
        s = w.get_settings()
        s.synchronous_mode, s.fixed_delta_seconds = True, 0.05
        w.apply_settings(s)
        yield c, w, port, folder
    finally:
        stop_server(proc)


def _bp(lib, name, role):
    bp = lib.find(name)
    bp.set_attribute("role_name", role)
    return bp


@pytest.fixture(scope="module")
def recording(served):
    """Records TICKS ticks: the ego (hero) driving, car1 driving, car2 and car3 standing, a walker
    walking; car3 is then put onto car2 (a forced collision). Returns the poses seen per tick."""
    client, world, _, folder = served
    lib = world.get_blueprint_library()
    sp = world.get_map().get_spawn_points()
    ego = world.spawn_actor(_bp(lib, "vehicle.lincoln.mkz_2020", "hero"), sp[0])
    cars = [world.spawn_actor(_bp(lib, name, f"car{k + 1}"), sp[k + 1])
            for k, name in enumerate(("vehicle.tesla.model3", "vehicle.dodge.charger_2020", "vehicle.audi.a2"))]
    walker_tf = carla.Transform(sp[0].location + carla.Location(y=8.0, z=1.0), sp[0].rotation)
    walker = world.spawn_actor(lib.find("walker.pedestrian.0001"), walker_tf)
    world.tick()
    path = client.start_recorder("run1.log")
    assert path == str(folder / "run1.log")
    ego.apply_control(carla.VehicleControl(throttle=0.6))
    cars[0].apply_control(carla.VehicleControl(throttle=1.0))
    walker.apply_control(carla.WalkerControl(direction=carla.Vector3D(1, 0, 0), speed=1.4))
    seen = []
    for k in range(TICKS):
        if k == TICKS - 5:  # force car3 onto car2
            cars[2].set_transform(cars[1].get_transform())
        world.tick()
        seen.append({a.attributes["role_name"]: a.get_transform() for a in [ego, *cars]})
    client.stop_recorder()
    ids = {"ego": ego.id, "cars": [c.id for c in cars], "walker": walker.id}
    for actor in [walker, *cars, ego]:
        actor.destroy()
    world.tick()
    return ids, seen


def test_file_info_names_every_actor_and_the_frame_count(served, recording):
    client, _, _, folder = served
    ids, _ = recording
    assert (folder / "run1.log").stat().st_size > 1000
    info = client.show_recorder_file_info("run1.log", False)
    assert info.startswith("Version: 1\nMap: gentle_curves\nDate: ")
    frames = int(re.search(r"\nFrames: (\d+)\n", info).group(1))
    assert frames == TICKS + 1  # the start frame and one per tick
    duration = float(re.search(r"Duration: ([0-9.]+) seconds", info).group(1))
    assert duration == pytest.approx(TICKS * 0.05, abs=1e-4)
    for name, actor_id in [("vehicle.lincoln.mkz_2020", ids["ego"]), ("vehicle.tesla.model3", ids["cars"][0]),
                           ("vehicle.dodge.charger_2020", ids["cars"][1]), ("vehicle.audi.a2", ids["cars"][2]),
                           ("walker.pedestrian.0001", ids["walker"])]:
        assert re.search(rf"^ Create {actor_id}: {re.escape(name)} \([12]\) at \(", info, re.M), name
    assert "  role_name = hero\n" in info and info.startswith("Version") and "Frame " in info
    full = client.show_recorder_file_info("run1.log", True)
    assert full.count("\nFrame ") == frames and full.count(" Positions: ") == frames
    moved = [float(m) for m in re.findall(rf"  Id: {ids['cars'][0]} Location: \(([-0-9.e]+),", full)]
    assert len(moved) == frames and abs(moved[-1] - moved[0]) > 50.0  # centimetres, as CARLA prints


def test_collisions_and_blocked_actors(served, recording):
    client, _, _, _ = served
    ids, _ = recording
    text = client.show_recorder_collisions("run1.log", "v", "v")
    rows = [line.split() for line in text.splitlines() if re.match(r"^\s+\d+\s+[hvwto] [hvwto]\s", line)]
    pair = sorted(int(r[i]) for r in rows for i in (3, 5))
    assert sorted(ids["cars"][1:]) == sorted(set(pair)), text
    assert "Actor 1" in text and text.rstrip().endswith("seconds")
    assert not [line for line in client.show_recorder_collisions("run1.log", "w", "t").splitlines()
                if re.match(r"^\s+\d+\s+[hvwto] [hvwto]\s", line)]
    blocked = client.show_recorder_actors_blocked("run1.log", 0.5, 10.0)
    still = {int(line.split()[1]) for line in blocked.splitlines() if re.match(r"^\s+\d+\s+\d+ vehicle\.", line)}
    assert ids["cars"][1] in still and ids["cars"][0] not in still and ids["ego"] not in still, blocked


def test_replay_moves_the_replayed_vehicles_along_the_recorded_poses(served, recording):
    client, world, _, _ = served
    _, seen = recording
    text = client.replay_file("run1.log", 0.0, 0.0, 0, False)
    assert "Replaying File:" in text and "Total time recorded: 1.5" in text
    try:
        for k in range(TICKS):
            world.tick()
            if k % 7 == 6 or k == TICKS - 1:
                by_role = {a.attributes.get("role_name"): a for a in world.get_actors().filter("vehicle.*")}
                for role in ("hero", "car1", "car2"):
                    got, want = by_role[role].get_transform(), seen[k][role]
                    assert got.location.distance(want.location) < 0.1, (k, role, got, want)
                    assert abs((got.rotation.yaw - want.rotation.yaw + 180) % 360 - 180) < 0.5
        assert seen[-1]["car1"].location.distance(seen[0]["car1"].location) > 1.0
        walkers = world.get_actors().filter("walker.pedestrian.*")
        assert len(walkers) == 1
    finally:
        client.stop_replayer(False)
        world.tick()
    assert not world.get_actors().filter("vehicle.tesla.model3")


def test_catalogue_tags_and_ids(served):
    _, world, _, _ = served
    lib = world.get_blueprint_library()
    assert [b.id for b in lib.filter("model3")] == ["vehicle.tesla.model3"]
    charger = lib.find("vehicle.dodge.charger_2020")
    assert set(charger.tags) >= {"dodge", "charger_2020"}
    kinds = {b.get_attribute("base_type").as_str() for b in lib.filter("vehicle.*")}
    assert kinds == {"car", "truck", "van", "bus", "motorcycle", "bicycle"}
    bikes = [b for b in lib.filter("vehicle.*") if b.get_attribute("base_type").as_str() == "bicycle"]
    assert bikes and all(b.get_attribute("number_of_wheels").as_int() == 2 for b in bikes)
    sp = world.get_map().get_spawn_points()
    bus = world.spawn_actor(lib.find("vehicle.mitsubishi.fusorosa"), sp[2])
    try:
        car = world.spawn_actor(lib.find("vehicle.audi.a2"), sp[4])
        assert bus.bounding_box.extent.x > 2 * car.bounding_box.extent.x
        car.destroy()
    finally:
        bus.destroy()


def _raw_call(port, method, *args):
    with socket.create_connection(("127.0.0.1", port), timeout=10.0) as s:
        s.sendall(msgpack.packb([0, 1, method, [[False], *args]], use_bin_type=True))
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
        while True:
            unpacker.feed(s.recv(1 << 16))
            for msg in unpacker:
                return msg[3]


def test_bad_recorder_input_gets_carla_text_and_the_server_goes_on(served, recording):
    client, world, port, folder = served
    assert client.show_recorder_file_info("missing.log", False) == f"File {folder / 'missing.log'} not found on disk\n"
    assert "not found on disk" in client.replay_file("missing.log", 0.0, 0.0, 0, False)
    assert "not found on disk" in client.show_recorder_collisions("missing.log", "a", "a")
    (folder / "carla.log").write_bytes(b"CARLA_RECORDER" + bytes(100))
    assert "is not a carla_agent recording" in client.show_recorder_file_info("carla.log", False)
    with pytest.raises(RuntimeError, match="invalid type1"):
        client.show_recorder_collisions("run1.log", "x", "v")
    for method, args, words in [("start_recorder", [5, False], "recorder file name"),
                                ("show_recorder_file_info", [["a"], False], "recorder file name"),
                                ("replay_file", ["run1.log", "soon", 0.0, 0, False], "start"),
                                ("show_recorder_actors_blocked", ["run1.log", math.nan, 10.0], "min_time"),
                                ("set_replayer_time_factor", [-1.0], "time factor")]:
        result = _raw_call(port, method, *args)
        assert result[0][0] in (0, False) and words in result[0][1][0], (method, result)
    world.tick()  # still serving
    assert client.show_recorder_file_info("run1.log", False).startswith("Version: 1")
