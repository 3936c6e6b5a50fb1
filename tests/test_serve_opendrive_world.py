"""``client.reload_world()`` and ``client.generate_opendrive_world()`` on the real ``carla`` wheel
against ``serve``: a new episode on the same map with every actor gone; a world made from a
hand-written OpenDRIVE ring (its name, text, spawn points, waypoints, navigation, a camera image of
it); a map outside the reader's subset refused with one line while the old world goes on."""

from __future__ import annotations

import math
import queue

import numpy as np
import pytest

from carla_agent.sim.embedded.roadnet.town import xodr_town
from served_world import served_client, set_sync
from xodr_roads import two_way_ring

carla = pytest.importorskip("carla")

RADIUS_M = 200.0


@pytest.fixture(scope="module")
def client():
    with served_client(town="grid_small") as c:
        yield c


def _kinds(world) -> set:
    return {a.type_id.split(".")[0] for a in world.get_actors()}


def _chase_frame(world, spawn: carla.Transform, blueprint: str, width: int, height: int):
    """One frame of a ``width`` x ``height`` camera 6 m behind and 3 m above a car put at ``spawn``
    (pitched down 15 degrees); the car and the camera are destroyed afterwards."""
    bp = world.get_blueprint_library()
    ego = world.spawn_actor(bp.find("vehicle.lincoln.mkz_2020"), spawn)
    cam_bp = bp.find(blueprint)
    cam_bp.set_attribute("image_size_x", str(width))
    cam_bp.set_attribute("image_size_y", str(height))
    cam = world.spawn_actor(cam_bp, carla.Transform(carla.Location(x=-6, z=3), carla.Rotation(pitch=-15)),
                            attach_to=ego)
    images = queue.Queue()
    cam.listen(images.put)
    try:
        return images.get(timeout=20)
    finally:
        cam.stop()
        cam.destroy()
        ego.destroy()


def test_reload_world_destroys_every_actor_and_starts_a_new_episode_on_the_same_map(client):
    world = client.get_world()
    bp = world.get_blueprint_library()
    ego = world.spawn_actor(bp.find("vehicle.lincoln.mkz_2020"), world.get_map().get_spawn_points()[3])
    walker = world.spawn_actor(bp.find("walker.pedestrian.0001"), carla.Transform(carla.Location(x=5, y=5, z=1)))
    set_sync(world, True)
    world.tick()
    ids = {a.id for a in world.get_actors()}
    assert {ego.id, walker.id} <= ids
    again = client.reload_world()
    assert again.id != world.id and again.get_map().name == "grid_small"
    assert not again.get_settings().synchronous_mode  # reset_settings=True: asynchronous again
    again.wait_for_tick()
    assert not ({ego.id, walker.id} & {a.id for a in again.get_actors()})
    assert _kinds(again) == {"traffic"}  # the town's own lights, made afresh
    # reset_settings=False keeps synchronous mode, as in CARLA
    set_sync(again, True)
    kept = client.reload_world(False)
    assert kept.get_settings().synchronous_mode and kept.id != again.id
    kept.tick()
    set_sync(kept, False)


def test_generate_opendrive_world_serves_that_map(client):
    text = two_way_ring(RADIUS_M)
    world = client.generate_opendrive_world(text, carla.OpendriveGenerationParameters(max_road_length=500.0))
    m = world.get_map()
    assert m.name == "OpenDriveMap" and m.to_opendrive() == text
    assert "/Game/Carla/Maps/OpenDriveMap" in client.get_available_maps()
    points = m.get_spawn_points()
    assert len(points) == len(xodr_town(text, "ring.xodr").spawn_points) >= 40
    for sp in points:
        wp = m.get_waypoint(sp.location)
        assert wp.lane_type == carla.LaneType.Driving and wp.road_id in (1, 2)
        assert abs(math.hypot(sp.location.x, sp.location.y + RADIUS_M) - RADIUS_M) < 3.0  # on the ring
    # the walkers' navigation is the ring's sidewalks (CARLA frame: centre at y = -RADIUS_M)
    where = world.get_random_location_from_navigation()
    assert where is not None
    off_centre_m = abs(math.hypot(where.x, where.y + RADIUS_M) - RADIUS_M)
    assert 3.4 < off_centre_m < 5.6  # beyond the 3.5 m lane, on the 2 m sidewalk

    img = _chase_frame(world, points[0], "sensor.camera.rgb", 160, 120)
    rgb = np.frombuffer(img.raw_data, np.uint8).reshape(120, 160, 4)[:, :, 2::-1].astype(int)
    road = rgb[100:, 70:90]  # straight ahead, just beyond the bonnet: asphalt, grey
    grass = rgb[50:70, 140:]  # right, beyond the sidewalk (outside the ring): green
    assert np.abs(road - road.mean(axis=2, keepdims=True)).max() < 30 and road.mean() < 140
    assert grass[:, :, 1].mean() > grass[:, :, 0].mean() + 20


def test_a_small_ring_is_drawn_once(client):
    """A 60 m ring is shorter than a 320-pixel camera's view (500 m): the ego's corridor, laid 2 km
    round it, comes back over itself, and drawn alone its laps cancelled out (grass where the road
    is). The cameras draw the town's ground under it, as the embedded camera does: in every row
    near the car the road is one band of road pixels, with the ring's sidewalks beside it."""
    world = client.generate_opendrive_world(two_way_ring(60.0), carla.OpendriveGenerationParameters())
    img = _chase_frame(world, world.get_map().get_spawn_points()[0], "sensor.camera.semantic_segmentation", 320, 240)
    tags = np.frombuffer(img.raw_data, np.uint8).reshape(240, 320, 4)[:, :, 2]  # CARLA's tag: red
    roads, sidewalks, terrain, car = 1, 2, 10, 14
    assert (tags[150:] == car).sum() > 500, "the chase camera sees the ego, on the road"
    for row in range(150, 240, 10):
        cols = np.flatnonzero((tags[row] == roads) | (tags[row] == car))
        assert len(cols) > 0.3 * 320, f"row {row}: {len(cols)} road pixels"
        between = tags[row, cols[0]:cols[-1] + 1]
        assert not np.any(between == terrain), f"row {row}: grass inside the road"
    assert np.mean(tags[150:] == sidewalks) > 0.05  # the town's sidewalks are drawn


def test_a_map_outside_the_subset_gets_one_line_and_the_old_world_goes_on(client):
    world = client.load_world("grid_small")
    bad = two_way_ring(RADIUS_M).replace("<arc ", '<paramPoly3 aU="0" ', 1)
    params = carla.OpendriveGenerationParameters()
    with pytest.raises(RuntimeError) as err:
        client.generate_opendrive_world(bad, params)
    message = str(err.value)
    assert message.startswith("opendrive could not be correctly parsed: OpenDriveMap.xodr: road id=1:")
    assert "not a line, arc or spiral" in message and "\n" not in message
    with pytest.raises(RuntimeError, match="could not be correctly parsed: .*not a readable OpenDRIVE"):
        client.generate_opendrive_world("<OpenDRIVE><road", params)
    with pytest.raises(RuntimeError, match="no two spawn points are joined|no driving lane"):
        one = '<lane id="-1" type="driving"'
        client.generate_opendrive_world(two_way_ring(RADIUS_M).replace(one, '<lane id="-1" type="border"')
                                        .replace('<lane id="1" type="driving"', '<lane id="1" type="border"'),
                                        params)
    now = client.get_world()
    assert now.id == world.id and now.get_map().name == "grid_small"
    now.wait_for_tick()
    ego = now.try_spawn_actor(now.get_blueprint_library().find("vehicle.lincoln.mkz_2020"),
                              now.get_map().get_spawn_points()[0])
    assert ego is not None
    ego.destroy()


def test_both_new_calls_say_the_map_changed_on_the_new_episodes_first_state(tmp_path, monkeypatch):
    """reload_world and generate_opendrive_world go through load_new_episode, which sets CARLA's
    MapChange bit on the first state of the new episode (the wheel re-reads its map only then)."""
    from carla_agent.server import opendrive_world
    from carla_agent.server.publish import MAP_CHANGE
    from carla_agent.server.rpc import RpcError
    from carla_agent.server.world_service import WorldService
    from carla_agent.sim.embedded.town_route import served_town_scenario
    from served_world import episode_flags

    monkeypatch.setenv(opendrive_world.DIR_ENV, str(tmp_path))

    world = WorldService(served_town_scenario("grid_small"))
    flags = episode_flags(world)

    assert flags() == {0}
    world.load_new_episode("", True, 65535)  # reload_world
    assert world.scenario.name == "grid_small" and flags() == {MAP_CHANGE} and flags() == {0}
    params = [2.0, 50.0, 1.0, 0.6, True, True, False]
    with pytest.raises(RpcError, match="parameters must be the 7 fields"):
        opendrive_world.copy_opendrive_to_file(world, two_way_ring(RADIUS_M), params[:5])
    opendrive_world.copy_opendrive_to_file(world, two_way_ring(RADIUS_M), params)
    assert world.scenario.name == "grid_small" and flags() == {0}  # staged, not loaded
    world.load_new_episode("OpenDriveMap", True, 65535)
    assert world.scenario.name == "OpenDriveMap" and flags() == {MAP_CHANGE} and flags() == {0}
    assert world.map_parameters.enable_pedestrian_navigation is False
    assert [p.name for p in tmp_path.glob("*/OpenDriveMap.xodr")] == ["OpenDriveMap.xodr"]


def test_the_server_removes_the_folders_it_staged_when_it_closes(tmp_path, monkeypatch):
    """Each map is staged in ``DIR/<sha1>/``; at close a server removes the folders it made, unless
    another server still uses one (it is removed when that one closes); a folder made by hand stays."""
    from carla_agent.server import opendrive_world
    from carla_agent.server.world_service import WorldService
    from carla_agent.sim.embedded.town_route import served_town_scenario

    monkeypatch.setenv(opendrive_world.DIR_ENV, str(tmp_path))
    params = [2.0, 50.0, 1.0, 0.6, True, True, False]
    ring, other = two_way_ring(RADIUS_M), two_way_ring(RADIUS_M, name="other")
    by_hand = tmp_path / "mine"
    by_hand.mkdir()
    (by_hand / "OpenDriveMap.xodr").write_text(ring)
    first, second = (WorldService(served_town_scenario("grid_small")) for _ in range(2))
    opendrive_world.copy_opendrive_to_file(first, ring, params)
    opendrive_world.copy_opendrive_to_file(first, other, params)
    opendrive_world.copy_opendrive_to_file(second, ring, params)  # the same map: the same folder
    shared = second.staged_opendrive.path.parent
    alone = first.staged_opendrive.path.parent
    assert shared != alone and {p.name for p in tmp_path.iterdir()} == {"mine", shared.name, alone.name}
    first.close()
    assert {p.name for p in tmp_path.iterdir()} == {"mine", shared.name}  # the second still uses it
    assert (shared / "OpenDriveMap.xodr").read_text() == ring
    second.close()
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]
    assert (by_hand / "OpenDriveMap.xodr").read_text() == ring  # not the server's: kept


def test_a_served_map_folder_goes_when_serve_is_terminated(tmp_path):
    """Through the process the tests (and a job scheduler) stop with SIGTERM."""
    import os

    from served_world import start_server, stop_server

    proc, port = start_server(town="grid_small", env={**os.environ, "CARLA_AGENT_OPENDRIVE_DIR": str(tmp_path)})
    try:
        c = carla.Client("127.0.0.1", port)
        c.set_timeout(20.0)
        c.generate_opendrive_world(two_way_ring(RADIUS_M), carla.OpendriveGenerationParameters())
        assert len(list(tmp_path.glob("*/OpenDriveMap.xodr"))) == 1
    finally:
        stop_server(proc)
    assert proc.returncode == 0 and list(tmp_path.iterdir()) == []  # closed, not killed (-15)
