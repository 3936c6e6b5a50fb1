"""Moving cars on a town route: they drive the ego's corridor ahead of it by the ego's rules.

A :class:`RouteCar` follows the corridor's lane (through the junctions, the
way the route turns) at its cruise speed, slowed for the bends ahead (the same
lateral-acceleration cap as the agents, :mod:`carla_agent.control.curve_speed`),
stopping at the stop line of a red light (:class:`~.town_lights.TownLights`)
and keeping a gap behind the car ahead of it. It is what a town scenario's
``traffic.lead`` becomes, so that the car the ego follows stops at the lights
the ego stops at, instead of running them at a constant speed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from carla_agent.control.curve_speed import CURVE_DECEL_MPS2, MAX_LATERAL_MPS2
from carla_agent.sim.embedded.road import SAMPLE_DS_M, Road
from carla_agent.sim.embedded.traffic import TrafficVehicle

#: How far ahead a route car looks for bends, metres.
BEND_LOOK_M = 40.0
#: Its stop before a red line, gap behind a car, and accelerations (m, s, m/s^2).
STOP_BEFORE_LINE_M = 1.5
MIN_GAP_M = 6.0
TIME_GAP_S = 1.6
MAX_ACCEL_MPS2 = 2.5
MAX_DECEL_MPS2 = 6.0


def bend_speed_mps(road: Road, s_m: float, t_m: float) -> float:
    """The speed from which every bend of the lane at offset ``t_m`` over the next :data:`BEND_LOOK_M`
    can be taken (the agents' lateral-acceleration cap, on the road's own curvature)."""
    i0 = max(int(s_m / SAMPLE_DS_M), 0)
    step = int(2.0 / SAMPLE_DS_M)
    idx = np.arange(i0, min(i0 + int(BEND_LOOK_M / SAMPLE_DS_M), len(road.s)), step)
    if len(idx) == 0:
        return math.inf
    k = road.curvature[idx]
    k = np.abs(k / np.maximum(1.0 - k * t_m, 1e-3))  # the lane centre's curvature, offset t from the line
    dist = (idx - i0) * SAMPLE_DS_M
    with np.errstate(divide="ignore"):
        v2 = np.where(k > 1e-6, MAX_LATERAL_MPS2 / np.maximum(k, 1e-12), np.inf) + 2.0 * CURVE_DECEL_MPS2 * dist
    return float(math.sqrt(float(v2.min())))


@dataclass
class RouteCar(TrafficVehicle):
    """A car driving the corridor by the rules. ``cruise_mps`` is its speed on a clear road.

    ``lights`` is the corridor's :class:`~.town_lights.TownLights` (None: no lights), ``others``
    the cars it may follow (the nearest active one ahead of it counts), ``time_s`` its clock.
    """

    cruise_mps: float = 8.0
    lights: object = None
    others: List[TrafficVehicle] = field(default_factory=list)
    time_s: float = 0.0

    def _ahead(self) -> Optional[TrafficVehicle]:
        best = None
        for v in self.others:
            if v is self or not v.active or abs(v.t_m - self.t_m) > 1.5 or v.speed_mps < 0:
                continue
            if v.s_m > self.s_m and (best is None or v.s_m < best.s_m):
                best = v
        return best

    def target_mps(self, road: Road) -> float:
        """Its target speed now: cruise, bends, red lights, the car ahead."""
        target = min(self.cruise_mps, bend_speed_mps(road, self.s_m, self.t_m))
        half = 0.5 * self.length_m
        if self.lights is not None:
            red = self.lights.red_ahead(self.s_m + half, self.s_m - half, self.time_s, self.speed_mps)
            if red is not None:
                target = min(target, math.sqrt(2.0 * CURVE_DECEL_MPS2 * max(red - STOP_BEFORE_LINE_M, 0.0)))
        ahead = self._ahead()
        if ahead is not None:
            gap = ahead.s_m - self.s_m - 0.5 * (ahead.length_m + self.length_m)
            follow = ahead.speed_mps + 0.5 * (gap - MIN_GAP_M - TIME_GAP_S * self.speed_mps)
            target = min(target, max(follow, 0.0))
        return target

    def step(self, road: Road, dt_s: float) -> None:
        if not self.active:
            return
        self.time_s += dt_s
        error = self.target_mps(road) - self.speed_mps
        accel = min(MAX_ACCEL_MPS2, max(-MAX_DECEL_MPS2, 2.0 * error))
        self.speed_mps = max(0.0, self.speed_mps + accel * dt_s)
        self.s_m += self.speed_mps * dt_s
        if self.s_m > road.length_m + 5.0:
            self.active = False  # drove off the end of the corridor


def lead_on_route(traffic: List[TrafficVehicle], lights, time_s: float = 0.0) -> List[TrafficVehicle]:
    """``traffic`` with its ``lead`` (a scenario's ``traffic.lead``, from
    :func:`~.traffic.spawn_traffic`) replaced by a :class:`RouteCar` that cruises at the lead's speed."""
    out: List[TrafficVehicle] = []
    for v in traffic:
        if v.name == "lead" and not isinstance(v, RouteCar):
            v = RouteCar(v.name, v.s_m, v.t_m, v.speed_mps, v.color, v.length_m, v.width_m, v.height_m,
                         cruise_mps=max(v.speed_mps, 0.0), lights=lights, time_s=time_s)
        out.append(v)
    for v in out:
        if isinstance(v, RouteCar):
            v.others = out
    return out
