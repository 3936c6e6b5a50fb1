"""Tests of the embedded camera, weather and renderer: geometry, labels, determinism, weathers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from carla_agent.sim.embedded.camera import Camera
from carla_agent.sim.embedded.render import Renderer
from carla_agent.sim.embedded.weather import PRESETS, Weather, resolve_weather
from carla_agent.sim.embedded.world import VehicleBox, place_static
from carla_agent.sim.observation import SemanticClass as L
from carla_agent.sim.embedded.road_build import build_road
from carla_agent.sim.scenario import (WEATHER_PRESETS, CameraSpec, LanesSpec, PlacementSpec, RoadSpec, RoadsideSpec,
                                  SegmentSpec, WeatherSpec)

LANE_T = -1.75  # centre of the ego lane (right of the reference line) on a 3.5 m two-lane road


def straight_road(**lanes):
    spec = dict(driving=1, oncoming=1, width_m=3.5, shoulder_m=1.0)
    spec.update(lanes)
    return build_road(RoadSpec(segments=(SegmentSpec("line", 300.0),), lanes=LanesSpec(**spec)))


def make(road=None, size=(200, 66), preset="clear_noon", objects=(), **cam):
    road = road if road is not None else straight_road()
    spec = CameraSpec(image_size_x=size[0], image_size_y=size[1], **cam)
    return Renderer(road, spec, resolve_weather(WeatherSpec(preset=preset)), list(objects), seed=3)


def pose(road, s=40.0, t=LANE_T):
    x, y = road.to_world(s, t)
    return float(x), float(y), road.heading_at(s), s


@pytest.fixture(scope="module")
def scene():
    road = build_road(RoadSpec(
        segments=(SegmentSpec("line", 60.0), SegmentSpec("curve", radius_m=80.0, angle_deg=60.0, turn="left",
                                                         transition_m=20.0), SegmentSpec("line", 200.0)),
        lanes=LanesSpec(driving=1, oncoming=1, lane_mark="dashed", shoulder_m=1.0)))
    roadside = RoadsideSpec(trees=PlacementSpec(every_m=15.0), poles=PlacementSpec(every_m=40.0, side="right"),
                            buildings=PlacementSpec(every_m=60.0, side="left", offset_m=(4.0, 6.0)),
                            signs=PlacementSpec(every_m=50.0, side="right", offset_m=(0.5, 1.0)))
    statics = place_static(road, roadside, np.random.default_rng(0))
    x, y = road.to_world(55.0, LANE_T)
    lead = VehicleBox(float(x), float(y), road.heading_at(55.0), 4.6, 1.9, 1.5, (200, 30, 30), 55.0)
    return road, statics, [lead]


# -- camera -----------------------------------------------------------------------

def test_intrinsics_follow_carla():
    cam = Camera(CameraSpec(image_size_x=800, image_size_y=600, fov=90.0))
    assert cam.focal_px == pytest.approx(400.0)
    assert (cam.cx_px, cam.cy_px) == (400.0, 300.0)
    np.testing.assert_allclose(cam.intrinsics, [[400, 0, 400], [0, 400, 300], [0, 0, 1]])


def test_projection_matches_pinhole():
    spec = CameraSpec(image_size_x=800, image_size_y=600, fov=90.0, x_m=0.8, y_m=0.0, z_m=1.5, pitch_deg=-8.0)
    cam = Camera(spec)
    yaw = math.radians(30.0)
    cam.set_pose(10.0, 5.0, yaw)
    # A point 12 m ahead of the camera along the heading, 2 m to its right, on the ground.
    c, s = math.cos(yaw), math.sin(yaw)
    ox, oy = 10.0 + 0.8 * c, 5.0 + 0.8 * s
    p = np.array([[ox + 12.0 * c + 2.0 * s, oy + 12.0 * s - 2.0 * c, 0.0]])
    uv, depth = cam.project(p)
    # Independent pinhole: rotate (forward, right, up) = (12, 2, -1.5) by the pitch.
    pitch = math.radians(-8.0)
    fwd, right, up = 12.0, 2.0, -1.5
    d = fwd * math.cos(pitch) + up * math.sin(pitch)
    u_cam = -fwd * math.sin(pitch) + up * math.cos(pitch)
    f = 400.0
    assert depth[0] == pytest.approx(d)
    assert uv[0, 0] == pytest.approx(400.0 + f * right / d)
    assert uv[0, 1] == pytest.approx(300.0 - f * u_cam / d)


def test_points_behind_have_no_pixel():
    cam = Camera(CameraSpec())
    uv, depth = cam.project(np.array([[-5.0, 0.0, 0.0], [20.0, 0.0, 0.0]]))
    assert depth[0] < 0 < depth[1]
    assert np.isnan(uv[0]).all() and np.isfinite(uv[1]).all()


def test_horizon_and_row_distances():
    cam = Camera(CameraSpec(image_size_x=200, image_size_y=66, fov=90.0, pitch_deg=-8.0, z_m=1.5))
    assert cam.horizon_v_px == pytest.approx(33.0 - 100.0 * math.tan(math.radians(8.0)))
    dist = cam.row_ground_distance_m()
    hr = cam.horizon_row
    assert np.isinf(dist[:hr]).all() and np.isfinite(dist[hr:]).all()
    assert (np.diff(dist[hr:]) < 0).all()  # lower rows see nearer ground
    # A ground point at a row's distance projects onto that row.
    row = hr + 20
    cam.set_pose(0.0, 0.0, 0.0)
    uv, _ = cam.project(np.array([[0.8 + dist[row], 0.0, 0.0]]))
    assert uv[0, 1] == pytest.approx(row + 0.5, abs=1e-6)


# -- weather ----------------------------------------------------------------------

def test_every_preset_resolves_and_overrides_apply():
    assert set(PRESETS) == set(WEATHER_PRESETS)
    for name in WEATHER_PRESETS:
        assert isinstance(resolve_weather(WeatherSpec(preset=name)), Weather)
    fog = resolve_weather(WeatherSpec(preset="fog"))
    assert fog.fog_density == pytest.approx(0.5)
    thick = resolve_weather(WeatherSpec(preset="fog", fog_density=0.9))
    assert thick.fog_extinction_per_m > fog.fog_extinction_per_m
    wet = resolve_weather(WeatherSpec(preset="clear_noon", rain=0.6))
    assert wet.rain == pytest.approx(0.6) and wet.wetness > 0.5
    cloudy = resolve_weather(WeatherSpec(preset="clear_noon", cloudiness=1.0))
    assert max(cloudy.sun_rgb) < max(resolve_weather(WeatherSpec()).sun_rgb)
    assert not resolve_weather(WeatherSpec(preset="sunset", shadows=False)).casts_shadows
    for name in WEATHER_PRESETS:  # overrides equal to the preset's values change nothing
        w = resolve_weather(WeatherSpec(preset=name))
        assert resolve_weather(WeatherSpec(preset=name, fog_density=w.fog_density, rain=w.rain,
                                           cloudiness=w.cloudiness)) == w
    night = resolve_weather(WeatherSpec(preset="night"))
    assert night.headlights and night.is_dark
    with pytest.raises(KeyError, match="clear_noon"):
        resolve_weather("monsoon")


# -- renderer ---------------------------------------------------------------------

def test_shapes_and_dtypes():
    road = straight_road()
    rgb, sem = make(road, size=(160, 90)).render(*pose(road), [], 0)
    assert rgb.shape == (90, 160, 3) and rgb.dtype == np.uint8
    assert sem.shape == (90, 160) and sem.dtype == np.uint8


def test_bit_identical_frames(scene):
    road, statics, lead = scene
    args = pose(road, 30.0) + (lead, 7)
    for preset in ("clear_noon", "night_rain"):
        a = make(road, preset=preset, objects=statics)
        rgb1, sem1 = a.render(*args)
        rgb2, sem2 = a.render(*args)
        rgb3, sem3 = make(road, preset=preset, objects=statics).render(*args)
        assert np.array_equal(rgb1, rgb2) and np.array_equal(rgb1, rgb3)
        assert np.array_equal(sem1, sem2) and np.array_equal(sem1, sem3)


def test_rain_changes_with_the_frame_only():
    road = straight_road()
    r = make(road, preset="rain")
    a, _ = r.render(*pose(road), [], 1)
    b, _ = r.render(*pose(road), [], 2)
    assert not np.array_equal(a, b)
    assert np.array_equal(a, r.render(*pose(road), [], 1)[0])


@pytest.mark.parametrize("preset", WEATHER_PRESETS)
def test_every_weather_labels_every_pixel(scene, preset):
    road, statics, lead = scene
    r = make(road, size=(200, 66), preset=preset, objects=statics)
    for s in (20.0, 75.0):
        rgb, sem = r.render(*pose(road, s), lead, 3)
        assert (sem != L.UNLABELED).all(), f"{preset}: unlabelled pixels"
        assert sem.max() <= max(L)


def test_sky_above_and_ground_below_the_horizon():
    road = straight_road()
    r = make(road, size=(200, 66))
    rgb, sem = r.render(*pose(road), [], 0)
    hr = r.camera.horizon_row
    # The distant hills rise at most a few pixels above the horizon.
    top = hr - int(math.ceil(r.camera.focal_px * math.tan(math.radians(2.2)))) - 1
    assert top > 0 and (sem[:top] == L.SKY).all()
    assert not (sem[hr:] == L.SKY).any()
    # The road reaches the horizon: its far end is within a pixel or two of it.
    road_rows = np.nonzero((sem == L.ROAD).any(axis=1))[0]
    assert road_rows.min() <= hr + 2


def test_road_labels_sit_on_asphalt():
    road = straight_road()
    r = make(road, size=(320, 180))
    rgb, sem = r.render(*pose(road), [], 0)
    hr = r.camera.horizon_row
    lower = slice(hr + (180 - hr) // 2, 180)  # the near half of the ground: little haze
    road_px = sem[lower] == L.ROAD
    # Away from edges (anti-aliasing) and texture, road pixels are asphalt grey.
    inner = road_px[1:-1, 1:-1] & road_px[:-2, 1:-1] & road_px[2:, 1:-1] & road_px[1:-1, :-2] & road_px[1:-1, 2:]
    px = rgb[lower][1:-1, 1:-1][inner].astype(int)
    assert len(px) > 1000
    asphalt = np.array(r._col["asphalt"])
    assert np.median(np.abs(px - asphalt).max(axis=1)) <= 12
    assert (np.abs(px[:, 0] - px[:, 2]) < 20).mean() > 0.95  # grey, not green
    # Marks are bright where they are labelled.
    marks = sem[lower] == L.LANE_MARKING
    assert rgb[lower][marks].mean() > rgb[lower][road_px].mean() + 40


def test_lane_marks_at_the_expected_columns():
    road = straight_road()
    r = make(road, size=(400, 200))
    x, y, yaw, s = pose(road)
    rgb, sem = r.render(x, y, yaw, s, [], 0)
    cam = r.camera
    for t_mark, right_of_centre in ((-3.5, True), (0.0, False)):  # ego lane's right edge line; centre line
        wx, wy = road.to_world(s + 12.0, t_mark)
        uv, _ = cam.project(np.array([[float(wx), float(wy), 0.0]]))
        u, v = int(uv[0, 0]), int(uv[0, 1])
        assert (u > cam.cx_px) == right_of_centre
        window = sem[v - 1:v + 2, u - 3:u + 4]
        assert (window == L.LANE_MARKING).any(), f"no mark label near ({u}, {v}) for t={t_mark}"
    # The ego lane between them is road.
    wx, wy = road.to_world(s + 12.0, LANE_T)
    uv, _ = cam.project(np.array([[float(wx), float(wy), 0.0]]))
    assert sem[int(uv[0, 1]), int(uv[0, 0])] == L.ROAD


def test_dashes_are_fixed_to_the_road():
    road = straight_road(lane_mark="dashed", oncoming=0, driving=2)
    r = make(road, size=(200, 100))
    # One dash period further along a straight road, the marks look exactly the same.
    _, sem_a = r.render(*pose(road, 40.0), [], 0)
    _, sem_b = r.render(*pose(road, 52.0), [], 0)
    _, sem_c = r.render(*pose(road, 46.0), [], 0)
    marks = lambda sem: sem == L.LANE_MARKING  # noqa: E731
    assert np.array_equal(marks(sem_a), marks(sem_b))
    assert not np.array_equal(marks(sem_a), marks(sem_c))


def test_vehicle_ahead_is_labelled_where_it_projects():
    road = straight_road()
    r = make(road, size=(200, 100))
    x, y, yaw, s = pose(road)
    wx, wy = road.to_world(s + 20.0, LANE_T)
    car = VehicleBox(float(wx), float(wy), yaw, 4.6, 1.9, 1.5, (30, 60, 160), s + 20.0)
    rgb, sem = r.render(x, y, yaw, s, [car], 0)
    uv, _ = r.camera.project(np.array([[float(wx), float(wy), 0.8]]))
    u, v = int(uv[0, 0]), int(uv[0, 1])
    assert sem[v, u] == L.VEHICLE
    cols = np.nonzero((sem == L.VEHICLE).any(axis=0))[0]
    assert abs(0.5 * (cols.min() + cols.max()) - uv[0, 0]) < 3.0
    # Without the car the same pixel is road.
    _, empty = r.render(x, y, yaw, s, [], 0)
    assert empty[v, u] == L.ROAD and not (empty == L.VEHICLE).any()


def test_objects_and_painters_order(scene):
    road, statics, lead = scene
    r = make(road, size=(320, 180), objects=statics)
    rgb, sem = r.render(*pose(road, 20.0), lead, 0)
    for cls in (L.ROAD, L.LANE_MARKING, L.SHOULDER, L.TERRAIN, L.SKY, L.VEHICLE, L.OBJECT):
        assert (sem == cls).any(), f"no {cls.name} in a scene that has it"


def test_night_is_darker_than_noon_and_fog_flattens_contrast(scene):
    road, statics, lead = scene
    frames = {p: make(road, size=(200, 100), preset=p, objects=statics).render(*pose(road, 20.0), lead, 0)
              for p in ("clear_noon", "night", "fog")}
    assert frames["night"][0].mean() < 0.4 * frames["clear_noon"][0].mean()
    assert frames["fog"][0].std() < frames["clear_noon"][0].std()
    # At night the marks right in front of the car stay visible in the headlights.
    rgb, sem = frames["night"]
    near = slice(70, 100)
    m, a = sem[near] == L.LANE_MARKING, sem[near] == L.ROAD
    assert rgb[near][m].mean() > 1.35 * rgb[near][a].mean() > 25


def test_weather_can_change_and_specs_are_accepted():
    road = straight_road()
    r = Renderer(road, CameraSpec(image_size_x=96, image_size_y=64), WeatherSpec(preset="dusk"), [], seed=0)
    dusk = r.render(*pose(road), [], 0)[0]
    r.set_weather(WeatherSpec(preset="clear_noon"))
    assert r.render(*pose(road), [], 0)[0].mean() > dusk.mean()


def test_curves_and_sideways_views_render(scene):
    road, statics, lead = scene
    r = make(road, size=(200, 66), objects=statics)
    # Well off the lane and turned across the road: clipping at the near plane must hold.
    x, y, yaw, s = pose(road, 70.0, t=-6.0)
    for dyaw in (0.0, 0.8, -1.2, math.pi / 2, math.pi):
        rgb, sem = r.render(x, y, yaw + dyaw, s, lead, 0)
        assert (sem != L.UNLABELED).all()


@pytest.mark.parametrize("cam", [dict(pitch_deg=-45.0), dict(pitch_deg=20.0), dict(fov=170.0), dict(fov=10.0),
                                 dict(image_size_x=32, image_size_y=32), dict(x_m=-3.0, y_m=2.0, z_m=4.0)])
def test_unusual_cameras_render_fully_labelled(scene, cam):
    road, statics, lead = scene
    spec = dict(size=(cam.pop("image_size_x", 120), cam.pop("image_size_y", 60)))
    r = make(road, objects=statics, preset="overcast", **spec, **cam)
    for s in (5.0, 70.0, road.length_m - 1.0):
        rgb, sem = r.render(*pose(road, s), lead, 0)
        assert (sem != L.UNLABELED).all()
