"""Driving a town by the rules: red lights (seen, stopped for, run and scored), a stopped car ahead,
and the speed cap of junction turns."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from carla_agent.control.curve_speed import curve_speed_mps
from carla_agent.control.vehicle_control import VehicleControl
from carla_agent.drive.agent import STOP_BEFORE_LINE_M, ExpertAgent
from carla_agent.drive.runner import RunnerHook
from carla_agent.drive.session import drive_scenario
from carla_agent.sim.embedded.roadnet.traffic_lights import RED
from carla_agent.sim.embedded.simulator import EmbeddedSimulator
from carla_agent.sim.scenario import load_scenario, parse_scenario


class _Trace:
    """Runner hook: per tick, the car's front and rear along the corridor and the lines' states."""

    def __init__(self):
        self.ticks = []

    def on_start(self, context, obs):
        self.sim = context.sim

    def on_step(self, record):
        sim, obs = self.sim, record.obs
        half = 0.5 * sim.params.length_m
        states = [sim.lights.state(ln, obs.sim_time_s) for ln in sim.lights.lines]
        self.ticks.append((obs.sim_time_s, sim.s + half, sim.s - half, obs.speed_mps, states,
                           obs.truth.red_light_distance_m, obs.infractions))

    def override(self, record):
        return None

    def on_end(self, metrics, interrupted):
        pass


class _IgnoresLights(ExpertAgent):
    """The expert, blind to traffic lights."""

    def run_step(self, obs):
        return super().run_step(replace(obs, truth=replace(obs.truth, red_light_distance_m=None)))


def test_the_expert_stops_at_the_stop_line_of_a_red_light_and_goes_on_green():
    sc = load_scenario("town_grid_small")
    trace = _Trace()
    with EmbeddedSimulator(render=False) as sim:
        m = drive_scenario(sc, ExpertAgent(sc.target_speed_mps), sim=sim, hooks=[trace]).metrics
        lines = sim.lights.lines
    assert len(lines) >= 2  # the route crosses the signalled junction C twice
    stops = [t for t in trace.ticks if t[3] < 0.05 and t[5] is not None]
    assert stops, "the expert never waited at a red light"
    for time_s, front, rear, _, states, red_d, _ in stops:
        line = min(lines, key=lambda ln: abs(ln.s_m - front))
        assert STOP_BEFORE_LINE_M - 1.0 < line.s_m - front < STOP_BEFORE_LINE_M + 1.0  # stopped just short of it
        assert abs(red_d - (line.s_m - front)) < 1e-6
    # after every wait, the car drives on once the light is no longer red, and crosses the line
    first_wait = stops[0]
    later = [t for t in trace.ticks if t[0] > first_wait[0]]
    moving = next(t for t in later if t[3] > 1.0)
    line_i = min(range(len(lines)), key=lambda i: abs(lines[i].s_m - first_wait[1]))
    assert moving[4][line_i] != RED
    assert any(t[2] > lines[line_i].s_m for t in later)
    assert m.completed and m.route_completion_pct == 100.0
    assert m.red_lights == 0 and m.collisions == 0 and m.driving_score == 100.0


def test_a_car_blind_to_red_lights_is_scored_for_each_red_it_runs():
    sc = load_scenario("town_grid_small")
    sc = replace(sc, ego=replace(sc.ego, target_speed_kmh=30))
    trace = _Trace()
    with EmbeddedSimulator(render=False) as sim:
        m = drive_scenario(sc, _IgnoresLights(sc.target_speed_mps), sim=sim, hooks=[trace]).metrics
        lines = sim.lights.lines
    # expected runs, from the trace alone: the rear crossed a line while its light was red
    expected = 0
    for a, b in zip(trace.ticks, trace.ticks[1:]):
        for i, ln in enumerate(lines):
            if a[2] < ln.s_m <= b[2] and b[4][i] == RED:
                expected += 1
    events = [ev for t in trace.ticks for ev in t[6]]
    assert expected >= 1  # 30 km/h from the start reaches C while its light is still red
    assert len(events) == expected == m.red_lights
    assert all(ev.kind == "red_light" and ev.other_id in {ln.light_id for ln in lines} for ev in events)
    assert m.route_completion_pct == 100.0 and m.collisions == 0
    assert m.driving_score == pytest.approx(100.0 * 0.70 ** expected)


def test_the_expert_stops_behind_a_stopped_car_on_a_town_route():
    data = {"name": "t", "town": "grid_small", "route": {"start": [-100, -1.75], "end": [1.75, 80]},
            "traffic": {"lead": {"gap_m": 45, "speed_kmh": 0}}, "duration_s": 30}
    sc = parse_scenario(data, "t.yaml")
    trace = []
    with EmbeddedSimulator(render=False) as sim:
        obs = sim.reset(sc)
        agent = ExpertAgent(sc.target_speed_mps)
        agent.reset()
        lead = next(v for v in sim.traffic if v.name == "lead")
        assert obs.truth.lead_distance_m == pytest.approx(45 - 0.5 * (lead.length_m + sim.params.length_m), abs=0.5)
        while obs.sim_time_s < sc.duration_s:
            obs = sim.step(agent.run_step(obs).control)
            trace.append((obs.speed_mps, obs.truth.lead_distance_m, len(obs.collisions)))
    assert sum(t[2] for t in trace) == 0
    assert max(t[0] for t in trace) > 4.0  # it drove up first ...
    speed, gap, _ = trace[-1]
    assert speed < 0.05 and 2.0 < gap < 10.0  # ... and waits a few metres behind


def test_the_speed_cap_of_a_bend_follows_its_radius():
    s = np.arange(2.0, 41.0, 2.0)
    assert curve_speed_mps(np.stack([s, 0 * s], axis=1)) == math.inf
    for radius in (8.0, 15.0, 30.0):
        th = s / radius
        for side in (1, -1):
            pts = np.stack([radius * np.sin(th), side * radius * (1 - np.cos(th))], axis=1)
            v = curve_speed_mps(pts, max_lateral_mps2=3.0, decel_mps2=2.5)
            # in the bend: sqrt(a R) held, plus what braking over the first 2 m allows
            assert math.sqrt(3.0 * radius) * 0.95 < v < math.sqrt(3.0 * radius + 2 * 2.5 * 2.0) * 1.05
    # a bend 30 m ahead allows more speed now than the same bend under the car
    th = np.clip((s - 30.0) / 10.0, 0.0, None)
    bend_ahead = np.stack([np.where(s < 30, s, 30 + 10 * np.sin(th)), np.where(s < 30, 0, 10 * (1 - np.cos(th)))], 1)
    assert curve_speed_mps(bend_ahead) > math.sqrt(3.0 * 10.0) + 3.0


def test_a_lead_car_in_a_town_stops_at_the_red_light_and_the_expert_queues_behind_it():
    data = {"name": "t", "town": "grid_small", "route": {"start": [-100, -1.75], "end": [1.75, 80]},
            "ego": {"target_speed_kmh": 25}, "traffic": {"lead": {"gap_m": 25, "speed_kmh": 30}}, "duration_s": 60}
    sc = parse_scenario(data, "t.yaml")
    with EmbeddedSimulator(render=False) as sim:
        obs = sim.reset(sc)
        agent = ExpertAgent(sc.target_speed_mps)
        agent.reset()
        lead = next(v for v in sim.traffic if v.name == "lead")
        line = sim.lights.lines[0]
        lead_waits, ego_waits, collisions, runs, gaps = [], [], 0, 0, []
        while obs.sim_time_s < sc.duration_s and not obs.done:
            obs = sim.step(agent.run_step(obs).control)
            red = sim.lights.state(line, obs.sim_time_s) == RED
            if red and lead.speed_mps < 0.05 and lead.s_m < line.s_m:
                lead_waits.append(line.s_m - (lead.s_m + 0.5 * lead.length_m))
            if red and lead.speed_mps < 0.05 and obs.truth.lead_distance_m is not None:
                ego_waits.append((obs.truth.lead_distance_m, obs.speed_mps))
            if obs.truth.lead_distance_m is not None:
                gaps.append(obs.truth.lead_distance_m)
            collisions += len(obs.collisions)
            runs += len(obs.infractions)
    assert lead_waits and all(0.0 < d < 3.0 for d in lead_waits)  # the lead waits at the line, not past it
    # the ego closes up behind the waiting lead, slowing as it nears, and never touches it
    assert ego_waits and ego_waits[-1][0] < 12.0 and ego_waits[-1][1] < 1.5
    assert all(d > 2.0 for d, _ in ego_waits)
    assert lead.s_m > line.s_m + 50.0  # both went on at green
    assert collisions == 0 and runs == 0 and min(gaps) > 2.0


def test_yellow_stops_a_car_that_could_not_clear_the_line_before_red_and_lets_a_close_one_go():
    sim = EmbeddedSimulator(render=False)
    sim.reset(load_scenario("town_grid_small"))
    lights, line = sim.lights, sim.lights.lines[0]
    green, yellow, all_red = lights.cycle_s
    slot = green + yellow + all_red
    t_yellow = line.phase * slot + green + 1.0  # 1 s into yellow: 2 s left
    assert lights.state(line, t_yellow) == "Yellow"
    length = sim.params.length_m

    def ahead(rear_gap_m, speed_mps, time_s=t_yellow):
        rear = line.s_m - rear_gap_m
        return lights.red_ahead(rear + length, rear, time_s, speed_mps)

    assert ahead(30.0, 7.0) == pytest.approx(30.0 - length)  # 30 m at 7 m/s: 4.3 s > 2 s left: stop
    assert ahead(10.0, 7.0) is None  # 10 m at 7 m/s: the rear clears in 1.4 s: go on
    assert ahead(10.0, 0.0) == pytest.approx(10.0 - length)  # standing: wait for the next green
    t_red = line.phase * slot + green + yellow + 0.5
    assert ahead(2.0, 7.0, t_red) == 0.0  # red with the front already across: stop there, rear short of it
    assert lights.red_ahead(line.s_m + 1.0 + length, line.s_m + 1.0, t_red, 7.0) is None  # rear across: go


@pytest.mark.parametrize("town, lefts", [
    # grid_small: two-way roads, one 3.5 m lane each way, right-hand traffic: 2.3 m left of the lane
    # centre is the oncoming lane's; ring_multilane: two lanes each way, so 3.5 m left is the other
    # lane the route's way (a lane change, not outside) and 7 m left the oncoming carriageway.
    ("town_grid_small", {0.0: False, 1.5: False, 2.3: True, 3.5: True, -3.5: True}),
    ("town_ring_multilane", {0.0: False, 1.5: False, 3.5: False, 7.0: True, -3.5: True}),
])
def test_outside_route_lanes_in_a_town_is_the_leaderboards_rule(town, lefts):
    """The embedded towns answer the leaderboard's OutsideRouteLanesTest from their lanes (as the
    CARLA backend does from the map); they used to fall back on |offset| > half a lane, which
    counted a lane change on the ring's two lanes as outside."""
    with EmbeddedSimulator(render=False) as sim:
        sim.reset(load_scenario(town), seed=0)
        start, h = sim.state, sim.road.heading_at(sim.s)
        for left_m, outside in lefts.items():
            sim.state = replace(start, x_m=start.x_m - math.sin(h) * left_m, y_m=start.y_m + math.cos(h) * left_m,
                                speed_mps=0.0)
            obs = sim.step(VehicleControl(brake=1.0))  # standing: the tick moves nothing
            assert obs.truth.outside_route_lanes is outside, (town, left_m)


def test_the_expert_never_drives_outside_the_route_lanes_of_a_town():
    scenario = replace(load_scenario("town_ring_multilane"), duration_s=40.0)
    seen = []

    class Watch(RunnerHook):
        def on_step(self, record):
            seen.append(record.obs.truth.outside_route_lanes)

    metrics = drive_scenario(scenario, ExpertAgent(scenario.target_speed_mps), seed=0, hooks=[Watch()]).metrics
    assert len(seen) > 500 and all(v is False for v in seen) and metrics.driving_score == pytest.approx(metrics.route_completion_pct)
