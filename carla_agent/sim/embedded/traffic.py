"""Other vehicles of the embedded world: parked, a lead car and oncoming traffic.

Each vehicle follows a lane at a constant lateral offset and speed along the
road's ``s``; that is all the scenarios need and it keeps runs deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

import numpy as np

from carla_agent.sim.embedded.world import CAR_COLORS, VehicleBox
from carla_agent.sim.embedded.road import Road


@dataclass
class TrafficVehicle:
    """A vehicle moving along the road at ``speed_mps`` (negative: against +s)."""

    name: str
    s_m: float
    t_m: float
    speed_mps: float
    color: tuple
    length_m: float = 4.6
    width_m: float = 1.9
    height_m: float = 1.5
    active: bool = True

    def step(self, road: Road, dt_s: float) -> None:
        if not self.active:
            return
        self.s_m += self.speed_mps * dt_s
        if self.s_m < -5.0 or self.s_m > road.length_m + 5.0:
            self.active = False  # drove off the end of the map

    def box(self, road: Road) -> VehicleBox:
        cached = self.__dict__.get("_box")
        if cached is not None and cached[0] == self.s_m:
            return cached[1]  # parked cars never move: project them once
        box = self._make_box(road)
        self.__dict__["_box"] = (self.s_m, box)
        return box

    def _make_box(self, road: Road) -> VehicleBox:
        s = min(max(self.s_m, 0.0), road.length_m)
        x, y = road.to_world(s, self.t_m)
        yaw = road.heading_at(s) + (np.pi if self.speed_mps < 0 or self.name.startswith("oncoming") else 0.0)
        return VehicleBox(float(x), float(y), float(yaw), self.length_m, self.width_m, self.height_m,
                          self.color, s, kind=f"vehicle.{self.name.split('_')[0]}")


def spawn_traffic(road: Road, traffic, ego_lane_id: int, ego_start_s: float,
                  rng: np.random.Generator) -> List[TrafficVehicle]:
    """Create the scenario's vehicles, deterministically from ``rng``."""
    out: List[TrafficVehicle] = []

    def color() -> tuple:
        return CAR_COLORS[int(rng.integers(len(CAR_COLORS)))]

    if traffic.lead is not None:
        t = road.lane_center_t(ego_lane_id)
        out.append(TrafficVehicle("lead", ego_start_s + traffic.lead.gap_m, t, traffic.lead.speed_kmh / 3.6, color()))
    parked = traffic.parked
    if parked.every_m > 0:
        sides = (+1, -1) if parked.side == "both" else ((+1,) if parked.side == "left" else (-1,))
        for side in sides:
            edge = road.left_edge_t if side > 0 else road.right_edge_t
            # Park with the inner wheels on the edge line: half the car on the shoulder.
            drive_edge = _driving_edge_t(road, side)
            t = drive_edge + side * 1.1 if abs(edge - drive_edge) < 1.6 else drive_edge + side * 1.3
            s = ego_start_s + 25.0 + float(rng.uniform(0, parked.every_m))
            i = 0
            while s < road.length_m - 5:
                out.append(TrafficVehicle(f"parked_{side}_{i}", s, t, 0.0, color()))
                s += float(parked.every_m * rng.uniform(0.7, 1.3))
                i += 1
    onc = traffic.oncoming
    if onc.every_m > 0 and road.left_lanes:
        lane = next((l for l in road.left_lanes if l.type == "driving"), None)
        if lane is not None:
            t = road.lane_center_t(lane.id)
            s = ego_start_s + 40.0 + float(rng.uniform(0, onc.every_m))
            i = 0
            while s < road.length_m + onc.every_m * 3:
                out.append(TrafficVehicle(f"oncoming_{i}", s, t, -onc.speed_kmh / 3.6, color()))
                s += float(onc.every_m * rng.uniform(0.7, 1.3))
                i += 1
    return out


def _driving_edge_t(road: Road, side: int) -> float:
    lanes = road.left_lanes if side > 0 else road.right_lanes
    t = 0.0
    for lane in lanes:
        if lane.type != "driving":
            break
        t += lane.width_m
    return side * t
