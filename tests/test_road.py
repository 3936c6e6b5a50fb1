import math

import numpy as np
import pytest

from carla_agent.sim.embedded.road_build import build_road
from carla_agent.sim.scenario import LanesSpec, RoadSpec, SegmentSpec, load_scenario, shipped_scenarios
from carla_agent.sim.embedded.xodr import read_xodr, write_xodr


def winding_road(**lanes):
    spec = RoadSpec(segments=(
        SegmentSpec("line", 40),
        SegmentSpec("curve", radius_m=40, angle_deg=90, transition_m=20),
        SegmentSpec("hairpin", radius_m=15, turn="right", transition_m=10),
        SegmentSpec("s_curve", radius_m=60, angle_deg=40, transition_m=15),
        SegmentSpec("arc", radius_m=80, angle_deg=20),
    ), lanes=LanesSpec(**lanes))
    return build_road(spec, "winding")


def test_geometry_is_continuous_and_turns_as_specified():
    road = winding_road()
    steps = np.hypot(np.diff(road.x), np.diff(road.y))
    assert np.allclose(steps, np.diff(road.s), atol=1e-4)  # arc length = s
    total_turn = math.degrees(road.hdg[-1] - road.hdg[0])
    assert total_turn == pytest.approx(90 - 180 + 0 + 20, abs=1e-6)
    # curvature continuity: spirals ramp, no jumps bigger than one sample's change
    assert np.max(np.abs(np.diff(road.curvature))) < 1 / 15 * 0.2


def test_project_inverts_to_world():
    road = winding_road(driving=2)
    rng = np.random.default_rng(0)
    for s, t in zip(rng.uniform(1, road.length_m - 1, 200), rng.uniform(-6, 6, 200)):
        x, y = road.to_world(s, t)
        s2, t2 = road.project(float(x), float(y), s_hint=s + 3.0)
        assert s2 == pytest.approx(s, abs=2e-3)
        assert t2 == pytest.approx(t, abs=2e-3)


def test_lane_layout():
    road = winding_road(driving=2, oncoming=1, width_m=3.5, shoulder_m=1.0, curb=True)
    assert road.lane_center_t(-1) == pytest.approx(-1.75)
    assert road.lane_center_t(-2) == pytest.approx(-5.25)
    assert road.lane_center_t(1) == pytest.approx(1.75)
    assert road.lane_at(-4.0) == -2 and road.lane_at(0.5) == 1
    marks = [(b.t_m, b.mark.type) for b in road.boundaries()]
    assert (0.0, "solid solid") in marks and (-3.5, "broken") in marks and (-7.0, "solid") in marks


def test_xodr_round_trip(tmp_path):
    road = winding_road(driving=2)
    path = tmp_path / "r.xodr"
    write_xodr(road, path)
    again = read_xodr(path)
    assert len(again.geometries) == len(road.geometries)
    assert np.allclose(again.x, road.x, atol=1e-6) and np.allclose(again.y, road.y, atol=1e-6)
    assert [l.width_m for l in again.right_lanes] == [l.width_m for l in road.right_lanes]
    assert again.center_mark == road.center_mark


@pytest.mark.parametrize("name", [n for n in shipped_scenarios().names() if not n.startswith(("carla_", "town_"))])
def test_carla_map_agrees_with_ground_truth(name):
    """The exported .xodr loads in the real carla wheel; its waypoints agree within 2 cm."""
    carla = pytest.importorskip("carla")
    sc = load_scenario(name)
    road = build_road(sc.road, name)
    cmap = carla.Map(name, write_xodr(road))
    lane = -sc.ego.lane
    centre = road.lane_center_t(lane)
    errors = []
    for s in np.arange(2.0, road.length_m - 2.0, 7.3):
        for dt in (-0.8, -0.3, 0.0, 0.4, 0.9):
            x, y = road.to_world(s, centre + dt)
            loc = carla.Location(x=float(x), y=-float(y), z=0.0)
            wp = cmap.get_waypoint(loc, project_to_road=True, lane_type=carla.LaneType.Driving)
            assert wp.lane_id == lane
            d = loc - wp.transform.location
            right = wp.transform.get_right_vector()
            carla_offset = d.x * right.x + d.y * right.y
            ours = -dt  # positive when right of the lane centre
            errors.append(abs(carla_offset - ours))
            assert abs(wp.lane_width - road.lane(lane).width_m) < 1e-3
    assert max(errors) < 0.02, f"max disagreement {max(errors):.4f} m"
