"""Walkers in ``serve --town grid_small`` through the real ``carla`` wheel: the pedestrian
blueprints, batches of vehicles and walkers, the AI controller walking the served navigation mesh
(the wheel's own Detour crowd), ``apply_control`` and CARLA-style refusals."""

from __future__ import annotations

import pytest

from served_world import served_client, set_sync

carla = pytest.importorskip("carla")


@pytest.fixture(scope="module")
def world():
    with served_client(town="grid_small") as client:
        w = client.get_world()
        set_sync(w, True)
        w.client = client
        yield w


def test_ten_vehicles_and_ten_walkers_spawn_and_go_in_one_batch_each(world):
    lib, C = world.get_blueprint_library(), carla.command
    walkers = lib.filter("walker.pedestrian.*")
    assert len(walkers) >= 12
    bp = walkers[0]
    assert bp.has_attribute("is_invincible") and len(bp.get_attribute("speed").recommended_values) == 3
    assert {"gender", "age", "generation", "role_name"} <= {a.id for a in bp}
    points = world.get_map().get_spawn_points()
    cars = lib.filter("vehicle.*")
    spots = [world.get_random_location_from_navigation() for _ in range(10)]
    batch = [C.SpawnActor(cars[k % len(cars)], points[2 * k]) for k in range(10)]
    batch += [C.SpawnActor(walkers[k], carla.Transform(spots[k] + carla.Location(z=1.0))) for k in range(10)]
    answers = world.client.apply_batch_sync(batch, True)
    assert [r.error for r in answers] == [""] * 20
    ids = [r.actor_id for r in answers]
    world.tick()
    actors = world.get_actors(ids)
    assert len(actors) == 20
    assert len(actors.filter("walker.pedestrian.*")) == 10
    for k, w in enumerate(actors.filter("walker.*")):
        assert w.bounding_box.extent.z > 0.5, "a walker's box stands upright"
    gone = world.client.apply_batch_sync([C.DestroyActor(i) for i in ids], True)
    assert [r.error for r in gone] == [""] * 20
    world.tick()
    world.tick()
    assert not set(ids) & {a.id for a in world.get_actors()}


def test_an_ai_controller_walks_its_walker_to_a_sidewalk_location(world):
    lib = world.get_blueprint_library()
    m = world.get_map()
    world.tick()
    world.tick()  # get_actors() lists the last episode state received: make it a fresh one
    cars = [a.get_location() for a in world.get_actors().filter("vehicle.*")]
    assert cars, "the town's parked cars are actors"

    def along_sidewalk(a):
        """A point 15 m on along the sidewalk from ``a`` with no car within 4 m of the way (the wheel's
        crowd steers walkers round cars' circles), or None."""
        wp = m.get_waypoint(a, project_to_road=True, lane_type=carla.LaneType.Sidewalk)
        if wp is None or wp.transform.location.distance_2d(a) > 2.0:
            return None
        for _ in range(15):
            nxt = wp.next(1.0)
            if not nxt or any(nxt[0].transform.location.distance_2d(c) < 4.0 for c in cars):
                return None
            wp = nxt[0]
        return wp.transform.location

    start = target = None
    for _ in range(2000):  # a start with 15 m of clear sidewalk ahead
        a = world.get_random_location_from_navigation()
        b = along_sidewalk(a) if a is not None else None
        if b is not None and 10.0 < a.distance_2d(b) < 25.0 and not any(a.distance_2d(c) < 4.0 for c in cars):
            start, target = a, b
            break
    assert target is not None
    walker = world.spawn_actor(lib.find("walker.pedestrian.0003"), carla.Transform(start + carla.Location(z=1.0)))
    ctl = world.spawn_actor(lib.find("controller.ai.walker"), carla.Transform(), walker)
    try:
        world.tick()
        ctl.start()
        ctl.go_to_location(target)
        ctl.set_max_speed(2.0)
        closest = 1e9
        for _ in range(600):  # 30 s: enough for 25 m at 2 m/s even round a corner
            world.tick()
            closest = min(closest, walker.get_location().distance_2d(target))
            if closest < 1.0:
                break
        assert closest < 1.5, f"the walker got within {closest:.1f} m of its target"
        assert walker.get_location().distance_2d(start) > 5.0
        wp = m.get_waypoint(walker.get_location(), project_to_road=True, lane_type=carla.LaneType.Sidewalk)
        assert wp is not None and wp.transform.location.distance_2d(walker.get_location()) < 6.0
    finally:
        ctl.stop()
        ctl.destroy()
        walker.destroy()


def test_apply_control_walks_a_walker_its_way(world):
    lib = world.get_blueprint_library()
    start = world.get_random_location_from_navigation()
    walker = world.spawn_actor(lib.find("walker.pedestrian.0005"), carla.Transform(start + carla.Location(z=1.0)))
    try:
        walker.apply_control(carla.WalkerControl(carla.Vector3D(1.0, 0.0, 0.0), speed=2.0))
        world.tick()
        x0 = walker.get_location().x
        for _ in range(20):
            world.tick()
        assert walker.get_location().x - x0 == pytest.approx(2.0, abs=0.2), "1 s at 2 m/s along +x"
        assert walker.get_control().speed == pytest.approx(2.0)
        assert walker.get_velocity().x == pytest.approx(2.0, abs=0.1)
    finally:
        walker.destroy()


def test_bad_walker_input_is_refused_and_the_server_keeps_serving(world):
    lib = world.get_blueprint_library()
    loc = world.get_random_location_from_navigation()
    bp = lib.find("walker.pedestrian.0001")
    with pytest.raises(RuntimeError, match="speed"):
        bp.set_attribute("speed", "fast")
        world.spawn_actor(bp, carla.Transform(loc))
    with pytest.raises(RuntimeError, match="attached to a walker"):
        world.spawn_actor(lib.find("controller.ai.walker"), carla.Transform(loc))
    C = carla.command
    answer = world.client.apply_batch_sync([C.ApplyWalkerControl(999_999, carla.WalkerControl())])[0]
    assert answer.error == ("Responding error from function apply_control_to_walker: Actor could not be found "
                            "in the registry.  Actor Id: 999999")
    assert world.tick() > 0
