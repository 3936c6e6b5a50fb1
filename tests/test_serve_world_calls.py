"""World and vehicle calls and traffic lights in ``serve --town grid_small`` through the real
``carla`` wheel: physics control round trip, constant velocity, ray casts against a known scene,
traffic lights as actors (set_state seen by get_state; freeze), and refusals."""

from __future__ import annotations

import pytest

from served_world import served_client, set_sync

carla = pytest.importorskip("carla")


@pytest.fixture(scope="module")
def world():
    with served_client(town="grid_small") as client:
        w = client.get_world()
        set_sync(w, True)
        yield w


def test_physics_control_round_trip_and_constant_velocity(world):
    lib = world.get_blueprint_library()
    sp = world.get_map().get_spawn_points()
    car = world.spawn_actor(lib.find("vehicle.audi.a2"), sp[4])
    other = world.spawn_actor(lib.find("vehicle.toyota.prius"), sp[8])
    try:
        pc = car.get_physics_control()
        assert pc.mass > 500 and len(pc.wheels) == 4
        pc.mass = 2500.0
        pc.wheels = [carla.WheelPhysicsControl(max_steer_angle=50.0, radius=40.0) for _ in range(4)]
        car.apply_physics_control(pc)
        world.tick()
        back = car.get_physics_control()
        assert back.mass == pytest.approx(2500.0)
        assert [w.max_steer_angle for w in back.wheels] == pytest.approx([50.0] * 4)
        assert back.wheels[0].radius == pytest.approx(40.0)
        car.enable_constant_velocity(carla.Vector3D(5.0, 0.0, 0.0))
        for _ in range(20):
            world.tick()
        assert car.get_velocity().length() == pytest.approx(5.0, abs=0.1)
        car.disable_constant_velocity()
        before = other.get_physics_control().mass
        pc.mass = -1.0
        other.apply_physics_control(pc)  # sent asynchronously: refused, the wheel drops the error
        world.tick()
        assert other.get_physics_control().mass == pytest.approx(before), "a negative mass is refused"
    finally:
        car.destroy()
        other.destroy()


def test_rays_meet_the_ground_and_a_car_where_hand_computed(world):
    lib = world.get_blueprint_library()
    sp = world.get_map().get_spawn_points()[6]
    car = world.spawn_actor(lib.find("vehicle.tesla.model3"), sp)
    try:
        world.tick()
        l = car.get_location()
        ground = world.ground_projection(carla.Location(l.x + 30.0, l.y + 30.0, 10.0), 20.0)
        assert ground is not None and ground.location.z == pytest.approx(0.0, abs=1e-3)
        assert world.ground_projection(carla.Location(l.x, l.y + 30.0, 10.0), 5.0) is None, "ground 10 m down"
        top = world.project_point(carla.Location(l.x, l.y, 5.0), carla.Vector3D(0, 0, -1), 20.0)
        assert top.label == carla.CityObjectLabel.Car and top.location.z == pytest.approx(1.5, abs=0.01)
        f = car.get_transform().get_forward_vector()
        a = carla.Location(l.x - 20.0 * f.x, l.y - 20.0 * f.y, 0.75)
        b = carla.Location(l.x + 20.0 * f.x, l.y + 20.0 * f.y, 0.75)
        hits = world.cast_ray(a, b)
        assert hits and hits[0].label == carla.CityObjectLabel.Car
        half = car.bounding_box.extent.x
        assert hits[0].location.distance_2d(a) == pytest.approx(20.0 - half, abs=0.1)
        down = world.cast_ray(carla.Location(l.x + 40, l.y, 2.0), carla.Location(l.x + 40, l.y, -2.0))
        assert [p.location.z for p in down] == pytest.approx([0.0], abs=1e-3)
        world.debug.draw_line(a, b, life_time=0.1)
        world.debug.draw_string(a, "accepted")
    finally:
        car.destroy()


def test_a_lights_set_state_is_seen_by_get_state(world):
    lights = world.get_actors().filter("traffic.traffic_light")
    assert len(lights) > 0
    tl = lights[0]
    assert tl.id in {g.id for g in tl.get_group_traffic_lights()}
    lm = world.get_map().get_all_landmarks_of_type("1000001")
    assert world.get_traffic_light(lm[0]) is not None
    assert tl.get_stop_waypoints() and tl.trigger_volume.extent.y > 0.5
    try:
        for state in (carla.TrafficLightState.Red, carla.TrafficLightState.Green):
            world.freeze_all_traffic_lights(True)
            tl.set_state(state)
            world.tick()
            assert tl.get_state() == state
            assert tl.is_frozen()
        elapsed = tl.get_elapsed_time()
        world.tick()
        assert tl.get_elapsed_time() == pytest.approx(elapsed), "a frozen light's clock stands"
    finally:
        world.reset_all_traffic_lights()
        world.freeze_all_traffic_lights(False)
    assert world.tick() > 0
