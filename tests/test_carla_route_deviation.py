"""Route deviation on CARLA (issue 19), as the leaderboard's ``InRouteTest`` finds it: 30 m from
the route at once, or more than 30 % of the route advanced while over 15 m from it. The route
ends there with no penalty factor; the score keeps the completion reached."""

from __future__ import annotations

import numpy as np
import pytest

carla = pytest.importorskip("carla")

from carla_double import FakeServer  # noqa: E402
from test_carla_scoring import LANE_Y, hero, scenario  # noqa: E402
from test_carla_backend import make  # noqa: E402

from carla_agent.control import VehicleControl  # noqa: E402
from carla_agent.sim.carla_backend.deviation import MAX_ROUTE_PCT, OFFROAD_MAX_M, RouteDeviation  # noqa: E402
from carla_agent.sim.criteria import RouteCriteria, driving_score  # noqa: E402


def straight(length_m=100.0):
    x = np.arange(0.0, length_m + 0.5, 1.0)
    return np.stack([x, np.zeros_like(x)], axis=1), x


def test_thirty_metres_off_fails_once_and_closer_does_not():
    xy, s = straight()
    dev = RouteDeviation(xy, s)
    for k, y in enumerate([0.0, 5.0, 29.0, 10.0]):
        assert dev.update(float(k), y, k) is None
    ev = dev.update(4.0, OFFROAD_MAX_M, 4)
    assert ev.kind == "route_deviation" and ev.frame == 4
    assert dev.update(5.0, 40.0, 5) is None, "once per route"


def test_too_much_of_the_route_driven_over_fifteen_metres_away():
    xy, s = straight(100.0)
    dev = RouteDeviation(xy, s)
    events = [dev.update(float(x), 20.0, x) for x in range(0, 60)]
    failed_at = next(i for i, ev in enumerate(events) if ev is not None)
    # The advance past the first point counts outside: the failure comes when it exceeds 30 m of 100.
    assert failed_at == int(MAX_ROUTE_PCT) + 1, failed_at
    dev = RouteDeviation(xy, s)
    assert all(dev.update(float(x), 14.0, x) is None for x in range(0, 100)), "within 15 m is safe"


def test_the_backend_ends_the_route_and_the_score_keeps_its_completion():
    server = FakeServer()
    criteria = RouteCriteria()
    with make(server) as sim:
        obs = sim.reset(scenario(), seed=0)
        criteria.update(obs)
        for _ in range(40):
            obs = sim.step(VehicleControl(throttle=0.7))
            criteria.update(obs)
        assert not obs.done and not obs.infractions
        reached = criteria.route_s_m
        ego = hero(server)
        t = ego._transform
        ego.set_transform(carla.Transform(carla.Location(x=t.location.x + 2.0, y=LANE_Y["route"] + 35.0, z=0.0),
                                          t.rotation))
        obs = sim.step(VehicleControl(throttle=0.7))
        criteria.update(obs)
        assert [ev.kind for ev in obs.infractions] == ["route_deviation"] and obs.done
        # A later tick (a runner that went on) changes nothing: the route ended.
        ego.set_transform(carla.Transform(carla.Location(x=t.location.x + 30.0, y=LANE_Y["route"]), t.rotation))
        criteria.update(sim.step(VehicleControl(throttle=0.7)))
    result = criteria.result()
    assert result.infractions == {"route_deviation": 1}
    # No penalty factor for the deviation itself (only the share driven outside the lanes, the jump's).
    assert result.penalty == pytest.approx(1.0 - result.off_route_pct / 100.0)
    assert result.route_completion_pct == pytest.approx(100.0 * criteria.route_s_m / criteria.route_length_m)
    assert criteria.route_s_m <= reached + 3.0, "no progress counted after the deviation"
    assert server.clean(), server.state()


def test_driving_score_knows_route_deviation_and_still_rejects_unknown_kinds():
    assert driving_score(40.0, {"route_deviation": 1, "red_light": 1}).score_pct == pytest.approx(40.0 * 0.7)
    with pytest.raises(ValueError, match="route_deviation"):
        driving_score(40.0, {"wrong_way": 1})
