"""CARLA's sensors served by ``serve`` (issue 15), read through the real carla 0.9.16 wheel.

Each test spawns the ego on lead_vehicle (a straight start, the lead car 25 m ahead in the ego's
lane), attaches one sensor, ticks synchronously and checks the data against what a hand
computation of the scene gives.
"""

import math
import queue

import numpy as np
import pytest

carla = pytest.importorskip("carla")
from served_world import start_server, stop_server

DT = 0.05


@pytest.fixture(scope="module")
def world():
    proc, port = start_server("lead_vehicle")
    try:
        client = carla.Client("127.0.0.1", port)
        client.set_timeout(20.0)
        w = client.get_world()
        s = w.get_settings()
        s.synchronous_mode, s.fixed_delta_seconds = True, DT
        w.apply_settings(s)
        yield w
        s.synchronous_mode = False
        w.apply_settings(s)
    finally:
        stop_server(proc)


@pytest.fixture
def ego(world):
    bp = world.get_blueprint_library().find("vehicle.lincoln.mkz_2020")
    bp.set_attribute("color", "255,0,255")  # a colour nothing else in the scene has
    actor = world.spawn_actor(bp, world.get_map().get_spawn_points()[0])
    spawned = [actor]
    yield actor, spawned
    for a in reversed(spawned):
        if a.type_id.startswith("sensor."):
            a.stop()
        a.destroy()


def _sensor(world, ego, name, location, rotation=carla.Rotation(), **attrs):
    actor, spawned = ego
    bp = world.get_blueprint_library().find(name)
    for k, v in attrs.items():
        bp.set_attribute(k, str(v))
    sensor = world.spawn_actor(bp, carla.Transform(location, rotation), attach_to=actor)
    spawned.append(sensor)
    q = queue.Queue()
    sensor.listen(q.put)
    return sensor, q


def _tick(world, q, timeout=20.0):
    """The sensor's measurement of the next tick (its frame is the tick's)."""
    frame = world.tick()
    while True:
        m = q.get(timeout=timeout)
        if m.frame == frame:
            return m


def _lead(world):
    return world.get_actors().filter("vehicle.lead")[0]


def test_blueprints_have_carlas_ids_and_attributes(world):
    lib = world.get_blueprint_library()
    expect = {
        "sensor.camera.depth": ("image_size_x", "image_size_y", "fov", "sensor_tick"),
        "sensor.camera.instance_segmentation": ("image_size_x", "fov"),
        "sensor.lidar.ray_cast": ("channels", "range", "points_per_second", "rotation_frequency", "upper_fov",
                                  "lower_fov", "horizontal_fov", "atmosphere_attenuation_rate",
                                  "dropoff_general_rate", "dropoff_intensity_limit", "dropoff_zero_intensity",
                                  "noise_stddev"),
        "sensor.lidar.ray_cast_semantic": ("channels", "range", "points_per_second", "rotation_frequency",
                                           "upper_fov", "lower_fov", "horizontal_fov"),
        "sensor.other.radar": ("horizontal_fov", "vertical_fov", "range", "points_per_second"),
        "sensor.other.gnss": ("noise_lat_bias", "noise_lat_stddev", "noise_lon_stddev", "noise_alt_bias", "noise_seed"),
        "sensor.other.imu": ("noise_accel_stddev_x", "noise_gyro_bias_z", "noise_gyro_stddev_y", "noise_seed"),
        "sensor.other.obstacle": ("distance", "hit_radius", "only_dynamics"),
        "sensor.camera.dvs": ("positive_threshold", "image_size_x"),
        "sensor.camera.optical_flow": ("image_size_x",),
    }
    for name, attrs in expect.items():
        bp = lib.find(name)
        for a in attrs:
            assert bp.has_attribute(a), (name, a)
    lidar = lib.find("sensor.lidar.ray_cast")
    assert lidar.get_attribute("channels").as_int() == 32
    assert lidar.get_attribute("points_per_second").as_int() == 56000
    assert lidar.get_attribute("range").as_float() == pytest.approx(10.0)
    assert len(lib.filter("sensor.lidar.*")) == 2


def test_depth_camera_sees_the_ground_and_the_lead_car(world, ego):
    # Looking down 30 degrees from 2 m: the optical axis meets the ground 2 / sin(30) = 4 m away,
    # and each row's planar depth follows from the pinhole geometry.
    cam, q = _sensor(world, ego, "sensor.camera.depth", carla.Location(x=0.0, z=2.0), carla.Rotation(pitch=-30),
                     image_size_x=200, image_size_y=150, fov=90)
    img = _tick(world, q)
    assert isinstance(img, carla.Image) and (img.width, img.height) == (200, 150)
    a = np.frombuffer(img.raw_data, np.uint8).reshape(150, 200, 4).astype(np.float64)
    depth = (a[..., 2] + 256 * a[..., 1] + 65536 * a[..., 0]) / (2 ** 24 - 1) * 1000.0
    f = 200 / (2 * math.tan(math.radians(45)))
    for row in (80, 110, 149):
        tan_down = (row + 0.5 - 75) / f  # below the optical axis, camera frame
        # ray (1, 0, -tan_down) pitched down 30 deg: its drop per unit depth
        drop = math.sin(math.radians(30)) + math.cos(math.radians(30)) * tan_down
        assert depth[row, 100] == pytest.approx(2.0 / drop, abs=2e-3), row
    assert depth[0, 100] == pytest.approx(1000.0)  # above the horizon: the far plane (sky)
    # Level at the bumper, 1 m up: the centre pixel sees the lead car's rear face.
    cam.stop()
    cam2, q2 = _sensor(world, ego, "sensor.camera.depth", carla.Location(x=2.5, z=1.0),
                       image_size_x=201, image_size_y=151, fov=60)
    img = _tick(world, q2)
    a = np.frombuffer(img.raw_data, np.uint8).reshape(151, 201, 4).astype(np.float64)
    d = (a[75, 100, 2] + 256 * a[75, 100, 1] + 65536 * a[75, 100, 0]) / (2 ** 24 - 1) * 1000.0
    lead = _lead(world)
    to_lead = lead.get_transform().location - img.transform.location
    fwd = img.transform.get_forward_vector()
    expected = to_lead.x * fwd.x + to_lead.y * fwd.y - lead.bounding_box.extent.x
    assert 15.0 < expected < 30.0
    assert d == pytest.approx(expected, abs=0.05)


def test_lidar_rings_on_the_ground(world, ego):
    # Two lasers, -15 and -40 degrees, 2.4 m up; one full turn per tick; no random drop-off.
    # Per laser: 7200 pts/s * 0.05 s / 2 = 180 points; on flat ground the ranges are 2.4 / sin(angle).
    lidar, q = _sensor(world, ego, "sensor.lidar.ray_cast", carla.Location(z=2.4), channels=2, upper_fov=-15,
                       lower_fov=-40, points_per_second=7200, rotation_frequency=20, range=50,
                       dropoff_general_rate=0.0)
    m = _tick(world, q)
    assert isinstance(m, carla.LidarMeasurement)
    assert m.channels == 2 and [m.get_point_count(c) for c in range(2)] == [180, 180] and len(m) == 360
    pts = np.frombuffer(m.raw_data, np.float32).reshape(-1, 4)
    rng = np.linalg.norm(pts[:, :3], axis=1)
    ring15, ring40 = 2.4 / math.sin(math.radians(15)), 2.4 / math.sin(math.radians(40))
    assert np.all(np.abs(rng[180:] - ring40) < 1e-3)  # the steep ring is all ground
    assert np.all(rng[:180] < ring15 + 1e-3)  # nothing is farther than the ground
    assert np.mean(np.abs(rng[:180] - ring15) < 1e-3) > 0.5  # and most of it is ground (trees aside)
    assert np.allclose(pts[180:, 2], -2.4, atol=1e-4)
    assert np.allclose(pts[:, 3], np.exp(-0.004 * rng), atol=1e-5)  # intensity: atmospheric attenuation
    az = np.degrees(np.arctan2(pts[180:, 1], pts[180:, 0]))
    assert np.ptp(az) > 350  # a full turn
    # defaults: 45 % of the rays dropped at random
    lidar.stop()
    _, q2 = _sensor(world, ego, "sensor.lidar.ray_cast", carla.Location(z=2.4), range=50)
    m = _tick(world, q2)
    assert m.channels == 32 and 0.40 < 1 - len(m) / 2800 < 0.75  # 56000 * 0.05 rays, some into the sky


def test_semantic_lidar_tags_and_incidence(world, ego):
    _, q = _sensor(world, ego, "sensor.lidar.ray_cast_semantic", carla.Location(z=2.4), channels=1, upper_fov=-40,
                   lower_fov=-40, points_per_second=3600, rotation_frequency=20, range=50)
    m = _tick(world, q)
    assert isinstance(m, carla.SemanticLidarMeasurement) and len(m) == 180
    tags = {d.object_tag for d in m}
    assert tags <= {1, 2, 10} and 1 in tags  # CityObjectLabel: Roads, Sidewalks, Terrain
    assert all(abs(d.cos_inc_angle - math.sin(math.radians(40))) < 1e-4 for d in m)
    # A level laser toward the lead car hits it: tag Car (14) and its actor id.
    _, q2 = _sensor(world, ego, "sensor.lidar.ray_cast_semantic", carla.Location(x=2.5, z=1.0), channels=1,
                    upper_fov=0, lower_fov=0, horizontal_fov=4, points_per_second=400, rotation_frequency=20, range=60)
    m = _tick(world, q2)
    lead = _lead(world)
    hits = [d for d in m if d.object_idx == lead.id]
    assert hits and all(d.object_tag == 14 for d in hits)


def test_radar_sees_the_receding_lead(world, ego):
    _, q = _sensor(world, ego, "sensor.other.radar", carla.Location(x=2.5, z=0.8), horizontal_fov=4,
                   vertical_fov=4, range=100, points_per_second=2000)
    m = _tick(world, q)
    assert isinstance(m, carla.RadarMeasurement) and 0 < len(m) <= 100  # 2000 * 0.05 rays
    det = np.array([[d.velocity, d.azimuth, d.altitude, d.depth] for d in m])
    assert np.all(np.abs(det[:, 1]) <= math.radians(2) + 1e-6) and np.all(det[:, 3] <= 100.0)
    lead = _lead(world)
    gap = lead.get_transform().location.distance(m.transform.location) - lead.bounding_box.extent.x
    on_lead = det[np.abs(det[:, 3] - gap) < 1.0]
    assert len(on_lead) > 0.5 * len(det)
    # the ego stands, the lead drives away at 30 km/h: + along the ray (moving away)
    assert np.median(on_lead[:, 0]) == pytest.approx(30 / 3.6, abs=0.3)


def test_gnss_follows_the_maps_geo_reference(world, ego):
    actor, _ = ego
    gnss, q = _sensor(world, ego, "sensor.other.gnss", carla.Location(x=1.0, z=1.0))
    carla_map = world.get_map()
    actor.apply_control(carla.VehicleControl(throttle=1.0))
    lons = []
    for _ in range(10):
        m = _tick(world, q)
        assert isinstance(m, carla.GnssMeasurement)
        want = carla_map.transform_to_geolocation(m.transform.location)  # the wheel's own conversion
        assert m.latitude == pytest.approx(want.latitude, abs=1e-9)
        assert m.longitude == pytest.approx(want.longitude, abs=1e-9)
        assert m.altitude == pytest.approx(want.altitude, abs=1e-3)
        lons.append(m.longitude)
    assert np.all(np.diff(lons[2:]) > 0)  # driving +x (east): longitude grows
    # Moved 50 m along CARLA's y: latitude moves as the wheel's conversion says (0.9.16: + with +y).
    actor.apply_control(carla.VehicleControl(brake=1.0))
    before = _tick(world, q)
    tf = actor.get_transform()
    tf.location.y -= 50.0
    actor.set_transform(tf)
    after = _tick(world, q)
    moved = carla_map.transform_to_geolocation(after.transform.location).latitude - before.latitude
    assert abs(moved) > 3e-4
    assert after.latitude - before.latitude == pytest.approx(moved, abs=1e-8)


def test_gnss_conversion_equals_the_wheels_for_another_geo_reference():
    from carla_agent.server.sensors.gnss import geo_reference, to_geolocation

    geo = "+proj=tmerc +lat_0=49.5 +lon_0=8.25 +k=1 +x_0=0 +y_0=0 +datum=WGS84 +units=m"
    xodr = (f'<?xml version="1.0"?><OpenDRIVE><header revMajor="1" revMinor="4" name="t"><geoReference>'
            f'<![CDATA[{geo}]]></geoReference></header><road name="r" length="100" id="1" junction="-1"><planView>'
            '<geometry s="0" x="0" y="0" hdg="0" length="100"><line/></geometry></planView><lanes><laneSection s="0">'
            '<center><lane id="0" type="none" level="false"/></center><right><lane id="-1" type="driving" '
            'level="false"><width sOffset="0" a="3.5" b="0" c="0" d="0"/></lane></right></laneSection></lanes>'
            '</road></OpenDRIVE>')
    lat0, lon0 = geo_reference(xodr)
    assert (lat0, lon0) == (49.5, 8.25)
    m = carla.Map("t", xodr)
    for x, y, z in ((0, 0, 0), (1500.0, -800.0, 3.0), (-20000.0, 35000.0, 0.0)):
        want = m.transform_to_geolocation(carla.Location(x, y, z))
        got = to_geolocation(x, y, z, lat0, lon0)
        assert got[0] == pytest.approx(want.latitude, abs=1e-9) and got[1] == pytest.approx(want.longitude, abs=1e-9)


def test_imu_reads_gravity_at_rest_and_acceleration_when_driving(world, ego):
    actor, _ = ego
    _, q = _sensor(world, ego, "sensor.other.imu", carla.Location(z=1.0))
    m = _tick(world, q)
    assert isinstance(m, carla.IMUMeasurement)
    assert (m.accelerometer.x, m.accelerometer.y, m.accelerometer.z) == pytest.approx((0.0, 0.0, 9.81), abs=1e-4)
    assert m.gyroscope.z == pytest.approx(0.0, abs=1e-6)
    yaw = actor.get_transform().rotation.yaw
    assert m.compass == pytest.approx(math.radians(yaw + 90.0) % (2 * math.pi), abs=1e-4)  # 0 = north (-y)
    actor.apply_control(carla.VehicleControl(throttle=1.0))
    ax = [_tick(world, q).accelerometer.x for _ in range(6)]
    assert max(ax[2:]) > 0.5


def test_obstacle_detector_reports_the_lead(world, ego):
    _, q = _sensor(world, ego, "sensor.other.obstacle", carla.Location(x=2.5, z=0.7), distance=50,
                   only_dynamics=True)
    world.tick()
    m = _tick(world, q)
    assert isinstance(m, carla.ObstacleDetectionEvent)
    lead = _lead(world)
    assert m.other_actor.id == lead.id and m.other_actor.type_id == "vehicle.lead"
    gap = (lead.get_transform().location - m.transform.location).x - lead.bounding_box.extent.x
    assert m.distance == pytest.approx(gap - 0.5, abs=0.05)  # the swept sphere's radius (hit_radius)


def test_instance_segmentation_tags_and_ids(world, ego):
    _, q = _sensor(world, ego, "sensor.camera.instance_segmentation", carla.Location(x=2.5, z=1.0),
                   image_size_x=201, image_size_y=151, fov=60)
    img = _tick(world, q)
    a = np.frombuffer(img.raw_data, np.uint8).reshape(151, 201, 4)
    lead = _lead(world)
    assert a[75, 100, 2] == 14  # Car
    assert int(a[75, 100, 1]) + 256 * int(a[75, 100, 0]) == lead.id & 0xFFFF
    assert a[140, 100, 2] == 1 and a[140, 100, 1] == 0  # the road: no instance


@pytest.mark.parametrize("name", ["sensor.camera.dvs", "sensor.camera.optical_flow"])
def test_declined_sensors_say_so_and_the_server_keeps_serving(world, ego, name):
    actor, _ = ego
    with pytest.raises(RuntimeError, match=rf"cannot spawn {name}: .*; use sensor\.camera\."):
        world.spawn_actor(world.get_blueprint_library().find(name), carla.Transform(), attach_to=actor)
    assert world.tick() > 0
    _, q = _sensor(world, ego, "sensor.other.imu", carla.Location())
    assert _tick(world, q).accelerometer.z == pytest.approx(9.81, abs=1e-3)


@pytest.mark.parametrize("name, attr, value, allowed", [
    ("sensor.lidar.ray_cast", "channels", "0", r"an integer in \[1, 1024\]"),
    ("sensor.lidar.ray_cast", "range", "-5", r"a number in \(0, 10000\] m"),
    ("sensor.lidar.ray_cast_semantic", "lower_fov", "30", r"at most upper_fov \(10\)"),
    ("sensor.lidar.ray_cast", "dropoff_general_rate", "1.5", r"a number in \[0, 1\]"),
    ("sensor.other.radar", "horizontal_fov", "200", r"a number in \(0, 180"),
    ("sensor.other.obstacle", "distance", "0", r"a number in \(0, 10000\] m"),
    ("sensor.other.gnss", "noise_lat_stddev", "-1", r"a number in \[0, 1e\+06\]"),
    ("sensor.camera.depth", "image_size_x", "0", r"an integer in \[1, 4096\]"),
])
def test_bad_attribute_values_get_carla_style_errors(world, ego, name, attr, value, allowed):
    actor, _ = ego
    bp = world.get_blueprint_library().find(name)
    bp.set_attribute(attr, value)
    with pytest.raises(RuntimeError, match=rf"invalid value '{value}' for attribute '{attr}' of {name}: "
                                           rf"it must be {allowed}"):
        world.spawn_actor(bp, carla.Transform(), attach_to=actor)
    assert world.tick() > 0


def test_a_chase_camera_sees_the_ego_and_a_dash_camera_does_not(world, ego):
    """manual_control.py's chase camera (behind and above the car) showed the road with no car:
    the ego's body was never drawn. It is now, for a camera mounted outside the car only."""
    actor, _ = ego

    def magenta_share(location, rotation):
        cam, q = _sensor(world, ego, "sensor.camera.rgb", location, rotation, image_size_x=320, image_size_y=180)
        img = _tick(world, q)
        cam.stop()
        a = np.frombuffer(img.raw_data, np.uint8).reshape(180, 320, 4)[120:].astype(int)  # the bottom third
        # magenta under the scene's warm light: red and blue well above green (BGRA)
        return float(((a[..., 2] > a[..., 1] + 80) & (a[..., 0] > a[..., 1] + 60)).mean())

    assert actor.attributes.get("color") == "255,0,255"
    assert magenta_share(carla.Location(x=-4.8, z=3.0), carla.Rotation(pitch=8.0)) > 0.05
    assert magenta_share(carla.Location(x=0.8, z=1.5), carla.Rotation(pitch=-8.0)) == 0.0
