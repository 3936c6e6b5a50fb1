"""Driving a town by the rules: red lights (seen, stopped for, run and scored), a stopped car ahead,
and the speed cap of junction turns."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from carla_agent.control.curve_speed import curve_speed_mps
from carla_agent.drive.agent import STOP_BEFORE_LINE_M, ExpertAgent
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
