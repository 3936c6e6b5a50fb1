"""Leaderboard-style route criteria, shared by both backends (carla_agent/sim/criteria.py)."""

import numpy as np
import pytest

from carla_agent.sim import criteria
from carla_agent.drive.metrics import MetricsTracker
from carla_agent.sim.observation import CollisionEvent, GroundTruth, Observation, Pose


def test_driving_score_route_completion_and_collision_dedupe():
    ds = criteria.driving_score(100.0, {"vehicle": 1, "static": 1, "pedestrian": 1})
    assert ds.score_pct == pytest.approx(100 * 0.60 * 0.65 * 0.50)
    assert criteria.driving_score(80.0, {"vehicle": 2}, off_route_pct=10.0).score_pct == pytest.approx(80 * 0.36 * 0.9)
    with pytest.raises(ValueError, match="unknown infraction"):
        criteria.driving_score(50.0, {"tree": 1})
    assert criteria.route_completion_pct(50, 200) == 25.0
    assert criteria.route_completion_pct(1995, 2000) == 100.0
    assert criteria.route_completion_pct(1985, 2000) == pytest.approx(99.25)
    ev = [CollisionEvent(0, "vehicle.a", "vehicle", 1.0), CollisionEvent(40, "vehicle.a", "vehicle", 1.0),
          CollisionEvent(200, "vehicle.a", "vehicle", 1.0), CollisionEvent(210, "static.pole", "static", 1.0)]
    assert [e.frame for e in criteria.dedupe_collisions(ev, 0.05)] == [0, 200, 210]
    assert [e.frame for e in criteria.dedupe_collisions(ev, 0.05, positions=[(0, 0), (1, 0), (50, 0), (52, 0)])] == [0, 200]

    def obs(frame, s, offset=0.0, collisions=()):
        truth = GroundTruth(offset, 0.0, s, 100.0, np.zeros((1, 2), np.float32))
        return Observation(frame, frame * 0.1, 0.1, np.zeros((1, 1, 3), np.uint8), 10.0,
                           Pose(frame, 0.0), truth, tuple(collisions))

    crit = criteria.RouteCriteria()
    crit.update(obs(0, 0.0))
    crit.update(obs(1, 10.0, collisions=[CollisionEvent(1, "vehicle.a", "vehicle", 1.0)]))
    crit.update(obs(2, 20.0, offset=3.0))
    crit.update(obs(3, 50.0))
    result = crit.result()
    assert result.route_completion_pct == 50.0 and result.infractions == {"vehicle": 1}
    # The leaderboard's OutsideRouteLanesTest: route progress made while outside (10 m of the
    # 50 m driven along the route), not time off the lane over the whole route's length.
    assert result.off_route_pct == pytest.approx(20.0)
    assert result.score_pct == pytest.approx(50 * 0.6 * 0.80)


def test_drive_metrics_score_comes_from_the_route_criteria():
    """The runner's metrics use the same de-duplicated score as RouteCriteria (one scoring for both backends)."""
    def obs(frame, s, collisions=()):
        truth = GroundTruth(0.0, 0.0, s, 100.0, np.zeros((1, 2), np.float32))
        return Observation(frame, frame * 0.05, 0.05, np.zeros((1, 1, 3), np.uint8), 10.0,
                           Pose(10.0 * frame, 0.0), truth, tuple(collisions))  # hits 20 m apart

    tracker = MetricsTracker("double", "embedded")
    hit = CollisionEvent(3, "vehicle.parked", "vehicle", 1.0)
    again = CollisionEvent(5, "vehicle.parked", "vehicle", 1.0)  # the same car 0.1 s later: one infraction
    curb = CollisionEvent(7, "static.sidewalk", "other", 1.0)  # the leaderboard does not penalise curbs
    pole = CollisionEvent(9, "static.pole", "static", 1.0)
    for f in (0, 3, 5, 7, 9):
        tracker.update(obs(f, 10.0 * f))
    m = tracker.result()
    assert m.collisions == 0 and m.driving_score == pytest.approx(90.0)  # no events: completion alone
    tracker = MetricsTracker("double", "embedded")
    for f, evs in ((0, ()), (3, (hit,)), (5, (again,)), (7, (curb,)), (9, (pole,))):
        tracker.update(obs(f, 10.0 * f, evs))
    m = tracker.result()
    assert m.collisions == 3 and m.collisions_vehicle == 2, "every hit but the curb, before de-duplication"
    assert m.route_completion_pct == pytest.approx(90.0)
    assert m.driving_score == pytest.approx(90.0 * 0.60 * 0.65)
