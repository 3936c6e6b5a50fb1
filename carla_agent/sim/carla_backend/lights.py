"""Traffic lights on a CARLA server: the next red light on the route, where the agents stop, and
red lights run, counted as the leaderboard counts them.

Each light's stop lines are its ``get_stop_waypoints()`` (CARLA 0.9.12+): one lane-centre
waypoint per lane it governs, on the stop line. A stop line is *on the route* when the
route passes within half a lane of it going its way; it is matched by geometry, never by
``(road, lane)`` id (ids renumber between lane sections, see ``route.py``).

A red light is *run* (scenario_runner's ``RunningRedLightTest``) when the rear of the ego
crosses a stop line of a red light, within 0.6 lane widths of the lane centre, going the
lane's way. A light counts once until another light is run.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from carla_agent.sim.carla_backend.client import import_carla
from carla_agent.sim.carla_backend.truth import wrap_pi
from carla_agent.sim.observation import InfractionEvent

log = logging.getLogger(__name__)

#: Red lights further than this ahead on the route are not reported.
LOOK_AHEAD_M = 60.0
#: Stop lines further than this from the ego's rear are not checked for a run (the leaderboard
#: checks lights within 15 m).
CHECK_RADIUS_M = 15.0
#: Half the width of a stop line, in lane widths (the leaderboard's 0.6).
STOP_LINE_HALF_WIDTH = 0.6
#: A stop line is on the route when the route passes this close to it (lane widths) ...
ON_ROUTE_LANES = 0.5
#: ... heading within this many degrees of it.
ON_ROUTE_DEG = 45.0


@dataclass(frozen=True)
class StopLine:
    """One lane's stop line of a traffic light, in CARLA's world frame.

    Attributes:
        light: the ``carla.TrafficLight`` actor.
        x_m, y_m: the lane centre on the line.
        yaw_deg: the lane's direction of travel there.
        half_width_m: half the line's length.
        route_s_m: where the route crosses the line, or None when it does not.
    """

    light: object
    x_m: float
    y_m: float
    yaw_deg: float
    half_width_m: float
    route_s_m: Optional[float] = None


def stop_lines(world, route) -> List[StopLine]:
    """Every stop line of every traffic light in ``world``, those on ``route`` with their ``route_s_m``."""
    lines = []
    for light in world.get_actors().filter("traffic.traffic_light*"):
        for wp in light.get_stop_waypoints():
            loc, yaw = wp.transform.location, wp.transform.rotation.yaw
            proj = route.project(loc.x, loc.y)
            on_route = (abs(proj.lateral_m) <= ON_ROUTE_LANES * wp.lane_width
                        and abs(math.degrees(wrap_pi(math.radians(yaw - proj.yaw_deg)))) <= ON_ROUTE_DEG
                        and 0.0 < proj.s_m < route.length_m)
            lines.append(StopLine(light, loc.x, loc.y, yaw, STOP_LINE_HALF_WIDTH * wp.lane_width,
                                  proj.s_m if on_route else None))
    return lines


class TrafficLights:
    """The lights of one episode: ``red_ahead`` for the agents, ``runs`` for the criteria.

    Args:
        lines: :func:`stop_lines` of the episode's world and route.
    """

    def __init__(self, lines: Sequence[StopLine]) -> None:
        self._carla = import_carla()
        self.lines = list(lines)
        self._route_lines = sorted((ln for ln in self.lines if ln.route_s_m is not None), key=lambda ln: ln.route_s_m)
        self._xy = np.array([(ln.x_m, ln.y_m) for ln in self.lines], np.float64).reshape(-1, 2)
        self._prev_rear: Optional[Tuple[float, float]] = None
        self._last_run_id: Optional[int] = None
        if self.lines:
            log.info("%d traffic-light stop lines, %d on the route", len(self.lines), len(self._route_lines))

    def _red(self, light) -> bool:
        return light.get_state() == self._carla.TrafficLightState.Red

    def red_ahead(self, route_s_m: float, front_m: float) -> Optional[float]:
        """Metres from the front bumper (``front_m`` ahead of ``route_s_m``) to the next red stop
        line on the route within :data:`LOOK_AHEAD_M`, or None. A line the front has already
        passed does not stop the car (it is in the junction: clear it)."""
        front = route_s_m + front_m
        for line in self._route_lines:
            gap = line.route_s_m - front
            if gap < 0.0:
                continue
            if gap > LOOK_AHEAD_M:
                break
            if self._red(line.light):
                return gap
        return None

    def reset_position(self) -> None:
        """The ego was moved (an intervention): the next tick starts a new track, crossing nothing."""
        self._prev_rear = None

    def runs(self, rear_x_m: float, rear_y_m: float, yaw_deg: float, frame: int) -> List[InfractionEvent]:
        """Red lights run since the last call, the ego's rear now at ``(rear_x_m, rear_y_m)``."""
        prev, self._prev_rear = self._prev_rear, (rear_x_m, rear_y_m)
        if prev is None or not self.lines:
            return []
        near = np.nonzero(np.hypot(self._xy[:, 0] - rear_x_m, self._xy[:, 1] - rear_y_m) <= CHECK_RADIUS_M)[0]
        events = []
        for i in near.tolist():
            line = self.lines[i]
            fx, fy = math.cos(math.radians(line.yaw_deg)), math.sin(math.radians(line.yaw_deg))
            before = (prev[0] - line.x_m) * fx + (prev[1] - line.y_m) * fy
            after = (rear_x_m - line.x_m) * fx + (rear_y_m - line.y_m) * fy
            across = (rear_x_m - line.x_m) * -fy + (rear_y_m - line.y_m) * fx
            same_way = math.cos(math.radians(yaw_deg - line.yaw_deg)) > 0.0
            if before < 0.0 <= after and abs(across) <= line.half_width_m and same_way:
                light_id = int(line.light.id)
                if light_id != self._last_run_id and self._red(line.light):
                    self._last_run_id = light_id
                    events.append(InfractionEvent(frame, "red_light", light_id))
                    log.info("ran the red light %d at frame %d", light_id, frame)
        return events
