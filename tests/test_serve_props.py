"""Static props (``static.prop.*``) and the clients' actors in the sensors of ``serve --town
grid_small``, through the real ``carla`` wheel: the props ScenarioRunner's scenarios spawn are in the
library with CARLA's tags, a spawned prop is an actor with its box; the radar sees a client's vehicle
and a solid prop ahead in the lane; the ego hits a warning sign (a collision with the prop) and
drives over debris (none); a walker hidden under the ego, as the Leaderboard keeps its crossing
pedestrian until the scenario starts, is never hit, and hit once it is put on the road."""

from __future__ import annotations

import queue

import numpy as np
import pytest

from served_world import served_client, set_sync

carla = pytest.importorskip("carla")

RADAR_X_M = 2.5


@pytest.fixture(scope="module")
def world():
    with served_client(town="grid_small") as client:
        w = client.get_world()
        set_sync(w, True)
        yield w


def _straight_start(world, ahead_m: float = 30.0):
    """A spawn point whose lane runs straight for ``ahead_m``: ``(waypoint, forward unit (x, y))``."""
    cmap = world.get_map()
    for sp in cmap.get_spawn_points():
        wp = cmap.get_waypoint(sp.location)
        nxt = wp.next(ahead_m)
        if not nxt:
            continue
        f = wp.transform.get_forward_vector()
        d = nxt[0].transform.location - wp.transform.location
        if abs(d.x * f.y - d.y * f.x) < 0.3 and d.x * f.x + d.y * f.y > ahead_m - 0.5:
            return wp, (f.x, f.y)
    pytest.fail("no spawn point of grid_small has 30 m of straight lane ahead")


def _spawn_hero(world, wp):
    """A Lincoln with role_name hero, 0.3 m above ``wp``."""
    hero_bp = world.get_blueprint_library().find("vehicle.lincoln.mkz_2020")
    hero_bp.set_attribute("role_name", "hero")
    return world.spawn_actor(hero_bp, carla.Transform(wp.transform.location + carla.Location(z=0.3),
                                                      wp.transform.rotation))


def _ahead(wp, d_m: float) -> carla.Transform:
    t = wp.next(d_m)[0].transform
    return carla.Transform(carla.Location(t.location.x, t.location.y, 0.2), t.rotation)


def _radar_depths(world, q) -> np.ndarray:
    frame = world.tick()
    while True:
        m = q.get(timeout=20.0)
        if m.frame == frame:
            return np.array([d.depth for d in m])


def test_props_are_in_the_library_with_carlas_tags(world):
    lib = world.get_blueprint_library()
    for name in ("static.prop.dirtdebris01", "static.prop.warningaccident", "static.prop.vendingmachine",
                 "static.prop.constructioncone", "static.prop.trafficwarning"):
        bp = lib.find(name)
        assert "static" in bp.tags and "prop" in bp.tags and bp.has_attribute("role_name")
    assert len(lib.filter("static.prop.*")) >= 10


def test_an_unknown_prop_is_refused_with_the_served_ones_listed():
    from carla_agent.server import props
    from carla_agent.server.rpc import RpcError

    with pytest.raises(RpcError, match="cannot spawn static.prop.nosuchprop; its props: .*dirtdebris01"):
        props.model("static.prop.nosuchprop")


def test_radar_sees_a_clients_car_and_a_sign_and_the_ego_hits_the_sign_not_the_debris(world):
    lib = world.get_blueprint_library()
    wp, _ = _straight_start(world)
    spawned = []
    try:
        ego = _spawn_hero(world, wp)
        spawned.append(ego)
        radar_bp = lib.find("sensor.other.radar")
        for k, v in (("horizontal_fov", 4), ("vertical_fov", 4), ("range", 60), ("points_per_second", 2000)):
            radar_bp.set_attribute(k, str(v))
        radar = world.spawn_actor(radar_bp, carla.Transform(carla.Location(x=RADAR_X_M, z=0.8)), attach_to=ego)
        spawned.append(radar)
        rq: queue.Queue = queue.Queue()
        radar.listen(rq.put)
        car = world.spawn_actor(lib.find("vehicle.tesla.model3"), _ahead(wp, 25.0))
        car.set_simulate_physics(False)
        depth = _radar_depths(world, rq)
        gap = 25.0 - RADAR_X_M - car.bounding_box.extent.x
        assert len(depth) > 0 and np.median(depth) == pytest.approx(gap, abs=0.5), "the client's car ahead"
        car.destroy()

        sign = world.spawn_actor(lib.find("static.prop.warningaccident"), _ahead(wp, 14.0))
        debris = world.spawn_actor(lib.find("static.prop.dirtdebris01"), _ahead(wp, 7.0))
        spawned += [sign, debris]
        debris.set_simulate_physics(False)
        assert sign.type_id == "static.prop.warningaccident" and sign.bounding_box.extent.x > 0.1
        depth = _radar_depths(world, rq)
        assert {a.id for a in world.get_actors().filter("static.prop.*")} == {sign.id, debris.id}
        gap = 14.0 - RADAR_X_M - sign.bounding_box.extent.x
        assert len(depth) > 0 and np.median(depth) == pytest.approx(gap, abs=0.5), "the sign ahead, not the debris"
        radar.stop()

        hits: queue.Queue = queue.Queue()
        coll = world.spawn_actor(lib.find("sensor.other.collision"), carla.Transform(), attach_to=ego)
        spawned.append(coll)
        coll.listen(hits.put)
        start = ego.get_location()
        ego.apply_control(carla.VehicleControl(throttle=0.6))
        for _ in range(200):
            world.tick()
            if not hits.empty():
                break
        others = set()
        while not hits.empty():
            others.add(hits.get().other_actor.type_id)
        assert others == {"static.prop.warningaccident"}, others
        travelled = ego.get_location().distance(start)
        assert travelled > 7.0 + 2.0, "drove over the debris before hitting the sign"
        assert sign.get_location().distance(_ahead(wp, 14.0).location) < 0.3, "a prop does not move"
    finally:
        for a in reversed(spawned):
            if a.type_id.startswith("sensor."):
                a.stop()
            a.destroy()
        world.tick()



def test_a_walker_hidden_under_the_ego_is_not_hit_and_one_on_the_road_is(world):
    lib = world.get_blueprint_library()
    wp, _ = _straight_start(world, 60.0)
    spawned = []
    try:
        ego = _spawn_hero(world, wp)
        spawned.append(ego)
        hits: queue.Queue = queue.Queue()
        coll = world.spawn_actor(lib.find("sensor.other.collision"), carla.Transform(), attach_to=ego)
        spawned.append(coll)
        coll.listen(hits.put)
        # DynamicObjectCrossing's _replace_walker and MovePedestrianWithEgo, as the Leaderboard 2.0 runs them
        at = ego.get_transform()
        at.location.z -= 50
        walker = world.spawn_actor(lib.find("walker.pedestrian.0002"), at)
        spawned.append(walker)
        walker.set_simulate_physics(False)
        walker.set_location(at.location + carla.Location(z=-50))
        ego.apply_control(carla.VehicleControl(throttle=0.5))
        for k in range(80):
            if k % 5 == 0:
                walker.set_location(ego.get_location() + carla.Location(x=1.0, z=-100))
            world.tick()
        assert ego.get_location().distance(wp.transform.location) > 10.0, "the ego drove on"
        assert walker.get_location().z < -90.0, "a walker put far below the ground stays there"
        assert hits.empty(), [hits.get().other_actor.type_id for _ in range(hits.qsize())]
        ahead = ego.get_location() + 12.0 * ego.get_transform().get_forward_vector()
        walker.set_location(carla.Location(ahead.x, ahead.y, 1.0))
        for _ in range(120):
            world.tick()
            if not hits.empty():
                break
        assert hits.get(timeout=1.0).other_actor.type_id == "walker.pedestrian.0002"
    finally:
        for a in reversed(spawned):
            if a.type_id.startswith("sensor."):
                a.stop()
            a.destroy()
        world.tick()
