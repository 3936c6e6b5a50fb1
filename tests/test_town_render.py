"""The embedded camera in a town: cross streets, junctions, marks, sidewalks and traffic lights.

The scene: grid_small's route from the west towards the 4-way junction C (at the
origin), eastbound in the right lane (y = -1.75). The cross street runs north-south
through x = 0; the arm we drive on (road C-W) has its stop line 4.5 m and its
crosswalk 0.5-3.5 m before the junction's border at x = -12.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from carla_agent.sim.embedded.render import Renderer
from carla_agent.sim.embedded.render.lights import light_states_at
from carla_agent.sim.embedded.render.town_draw import TownView
from carla_agent.sim.embedded.render.town_ground import clear_of_town, town_ground
from carla_agent.sim.embedded.roadnet.town import load_town
from carla_agent.sim.embedded.town_route import town_corridor
from carla_agent.sim.embedded.weather import resolve_weather
from carla_agent.sim.embedded.world import StaticObject
from carla_agent.sim.observation import SemanticClass as L
from carla_agent.sim.scenario import CameraSpec, WeatherSpec, load_scenario

SIZE = (320, 240)


@pytest.fixture(scope="module")
def town_scene():
    sc = load_scenario("town_grid_small")
    town, _, corridor = town_corridor(sc, 8.0)
    cam = CameraSpec(image_size_x=SIZE[0], image_size_y=SIZE[1])
    weather = resolve_weather(WeatherSpec(preset="clear_noon"))
    view = TownView(town.network, town.spec.traffic_light_cycle_s, sc.dt_s)
    with_town = Renderer(corridor.road, cam, weather, [], seed=0, town=view)
    corridor_only = Renderer(corridor.road, cam, weather, [], seed=0)
    return town, corridor.road, with_town, corridor_only


def _pose(road, x_m: float):
    """The corridor's right lane where it passes ``x_m`` (the route runs east from x = -100)."""
    s, _ = road.project(x_m, -1.75, s_hint=x_m + 100.0, window_m=10.0)
    x, y = road.to_world(s, road.lane_center_t(-1))
    return float(x), float(y), road.heading_at(s), float(s)


def _pixel(ren, x_m: float, y_m: float):
    uv, depth = ren.camera.project(np.array([[x_m, y_m, 0.0]]))
    assert depth[0] > 1.0
    u, v = (int(c) for c in np.floor(uv[0]))
    assert 0 <= u < SIZE[0] and 0 <= v < SIZE[1], (x_m, y_m, u, v)
    return v, u


def test_cross_street_junction_stop_line_and_crosswalk_are_labelled(town_scene):
    _, road, ren, bare = town_scene
    p = _pose(road, -30.0)
    rgb, sem = ren.render(*p)
    _, bare_sem = bare.render(*p)
    # The cross street, left and right of the corridor beyond the junction: road in the town only
    # (seen edge-on it is a few rows tall, so the rows round its lanes' centres are searched).
    for x, y in ((1.75, 22.0), (-1.75, -22.0)):
        v, u = _pixel(ren, x, y)
        assert L.ROAD in sem[v - 2:v + 3, u], (x, y)
        assert L.ROAD not in bare_sem[v - 2:v + 3, u], (x, y)
    # The junction's surface beside the corridor (left of its lanes): road, where only terrain was.
    v, u = _pixel(ren, -6.0, 6.0)
    assert sem[v, u] == L.ROAD and bare_sem[v, u] == L.TERRAIN
    # The stop line across our lane (x = -16.5), a crosswalk stripe (t 1.4..1.9 m right of road C-W's
    # reference line, i.e. y -1.4..-1.9) and the asphalt between two stripes (y -0.8..-1.4).
    assert sem[_pixel(ren, -16.5, -1.75)] == L.LANE_MARKING
    assert bare_sem[_pixel(bare, -16.5, -1.75)] == L.ROAD
    assert sem[_pixel(ren, -14.0, -1.65)] == L.LANE_MARKING
    assert sem[_pixel(ren, -14.0, -1.1)] == L.ROAD
    # The sidewalk right of the road (curb at 3.5-3.75 m, sidewalk to 5.5 m).
    assert sem[_pixel(ren, -22.0, -4.7)] == L.SIDEWALK
    assert L.SIDEWALK not in np.unique(bare_sem)


def test_traffic_light_head_shows_the_light_state(town_scene):
    town, road, ren, _ = town_scene
    p = _pose(road, -35.0)
    ids = ren._tl_ids
    red_rgb, red_sem = ren.render(*p, light_states={i: "Red" for i in ids})
    green_rgb, green_sem = ren.render(*p, light_states={i: "Green" for i in ids})
    assert np.array_equal(red_sem, green_sem)
    assert np.count_nonzero(red_sem == L.TRAFFIC_LIGHT) > 20
    changed = np.any(red_rgb != green_rgb, axis=2)
    assert changed.sum() > 4
    # Only the lamps change, and they are on the lights (anti-aliased edges: within a pixel of them).
    near_light = cv2.dilate((red_sem == L.TRAFFIC_LIGHT).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert np.all(near_light[changed])
    r, g = red_rgb[changed].astype(int), green_rgb[changed].astype(int)
    assert (r[:, 0] - r[:, 1]).mean() > 40  # the red lamp glows red ...
    assert (g[:, 1] - g[:, 0]).mean() > 40  # ... the green one green
    # By default the lights follow the town's timer: frame * dt_s.
    ours = [sig.id for sig in town.network.roads[3].signals if sig.kind == "traffic_light"]  # road C-W's
    frames = [0, int(round(16.0 / ren._town.dt_s))]  # (10 s green, 3 s yellow, 1 s all red per phase)
    states = [light_states_at(ren, k * ren._town.dt_s)[ours[0]] for k in frames]
    assert states == ["Red", "Green"]
    a, _ = ren.render(*p, frame=frames[0])
    b, _ = ren.render(*p, frame=frames[1])
    assert np.any(a != b)


def test_far_from_junctions_the_corridor_looks_as_before(town_scene):
    _, road, ren, bare = town_scene
    p = _pose(road, -75.0)  # mid-block on road C-W, junctions 45 m and more away
    rgb, sem = ren.render(*p)
    bare_rgb, bare_sem = bare.render(*p)
    # Near the car (lowest third of the image) the corridor's lanes keep their pixels.
    rows = slice(2 * SIZE[1] // 3, SIZE[1])
    lanes = np.isin(bare_sem[rows], (L.ROAD, L.LANE_MARKING))
    same_label = sem[rows][lanes] == bare_sem[rows][lanes]
    assert same_label.mean() > 0.98
    road_px = lanes & (bare_sem[rows] == L.ROAD) & (sem[rows] == L.ROAD)
    diff = np.abs(rgb[rows][road_px].astype(int) - bare_rgb[rows][road_px].astype(int))
    assert np.mean(diff) < 0.5
    # Beside it the town's sidewalks replace the corridor's verge.
    assert np.count_nonzero(sem[rows] == L.SIDEWALK) > 0


def test_single_road_frames_have_no_town_labels():
    from carla_agent.sim.embedded.road_build import build_road
    from carla_agent.sim.scenario import LanesSpec, RoadSpec, SegmentSpec

    road = build_road(RoadSpec(segments=(SegmentSpec("line", 200.0),), lanes=LanesSpec()))
    ren = Renderer(road, CameraSpec(image_size_x=160, image_size_y=90), WeatherSpec(), [], seed=0)
    x, y = road.to_world(20.0, -1.75)
    _, sem = ren.render(float(x), float(y), road.heading_at(20.0), 20.0)
    labels = set(np.unique(sem).tolist())
    assert L.SIDEWALK not in labels and L.TRAFFIC_LIGHT not in labels and L.ROAD in labels


def test_roadside_objects_stay_off_town_roads_and_sidewalks():
    net = load_town("grid_small").network
    ground = town_ground(net)
    assert ground is town_ground(net)  # built once per town
    on_cross_street = StaticObject("tree", 0.0, 40.0, 0.0, 3.0, 3.0, 6.0, (40, 90, 40), 0.0)
    on_sidewalk = StaticObject("tree", -50.0, -5.0, 0.0, 1.0, 1.0, 6.0, (40, 90, 40), 0.0)
    in_block = StaticObject("building", -60.0, -50.0, 0.0, 20.0, 10.0, 8.0, (150, 120, 100), 0.0)
    overlapping = StaticObject("building", -60.0, -9.0, 0.0, 20.0, 10.0, 8.0, (150, 120, 100), 0.0)
    beside = StaticObject("building", -60.0, -12.0, 0.0, 20.0, 10.0, 8.0, (150, 120, 100), 0.0)  # 1.5 m off
    kept = clear_of_town([on_cross_street, on_sidewalk, in_block, overlapping, beside], net)
    assert kept == [in_block, beside]


def test_town_scenario_with_roadside_plants_nothing_on_the_town(tmp_path):
    from dataclasses import replace

    from carla_agent.sim.embedded.simulator import EmbeddedSimulator
    from carla_agent.sim.scenario import PlacementSpec, RoadsideSpec

    sc = load_scenario("town_grid_small")
    sc = replace(sc, roadside=RoadsideSpec(trees=PlacementSpec(every_m=10.0, offset_m=(0.5, 6.0))),
                 camera=CameraSpec(image_size_x=64, image_size_y=48))
    with EmbeddedSimulator() as sim:
        sim.reset(sc, seed=0)
        ground = town_ground(sim.town.network)
        assert sim.statics  # some trees stand in the blocks ...
        xy = np.array([[o.x_m, o.y_m] for o in sim.statics])
        assert np.all(ground.clearance_m(xy[:, 0], xy[:, 1]) > 0.3)  # ... none on a road or sidewalk
