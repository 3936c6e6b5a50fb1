"""A town's traffic lights seen from the ego's corridor: the next red light, and red lights run.

The town's lights cycle on a timer (:mod:`.roadnet.traffic_lights`); this module
puts their stop lines on the corridor the ego drives (:mod:`.roadnet.corridor`),
as distances along it, and answers the two questions the CARLA backend answers
from a server's lights (``sim/carla_backend/lights.py``), the same way:

- :meth:`TownLights.red_ahead`: metres from the front bumper to the stop line of
  the next light on the route within :data:`LOOK_AHEAD_M` that the car must stop
  at. CARLA's ``BasicAgent`` stops for ``Red`` only, and so runs a red light
  whenever one turns red with the car a few metres before its line (the
  leaderboard counts the rear crossing on red). Here a *yellow* light counts too
  when it turns red before the car's rear would clear the line at its speed (a
  careful driver's rule; no run is then left for a car at the speed limit), and a
  line stays reported (as 0 m) until the rear has crossed it, so that a light that
  turns red as the front reaches the line stops the car across it.
- :meth:`TownLights.runs`: a red light is *run* (scenario_runner's
  ``RunningRedLightTest``) when the rear of the ego crosses a stop line of a red
  light within :data:`STOP_LINE_HALF_WIDTH` lane widths of the lane centre. A light
  counts once until another light is run.

A stop line is on the route when the corridor's lane passes through it going
its way: the line's signal stands on a leg's road, on the side of the leg's
lane (``orientation`` '+' for right lanes, '-' for left ones), and spans that
lane's centre. Its place along the corridor is the lane centre on the line,
projected onto the corridor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import List, Optional, Tuple

from carla_agent.sim.embedded.roadnet.corridor import Corridor
from carla_agent.sim.embedded.roadnet.model import RoadNetwork
from carla_agent.sim.embedded.roadnet.traffic_lights import RED, YELLOW, phase_state
from carla_agent.sim.observation import InfractionEvent

log = logging.getLogger(__name__)

#: Red lights further than this ahead on the route are not reported, metres (as the CARLA backend).
LOOK_AHEAD_M = 60.0
#: Half the width of a stop line, in lane widths (the leaderboard's 0.6).
STOP_LINE_HALF_WIDTH = 0.6


@dataclass(frozen=True)
class RouteStopLine:
    """A stop line the route crosses.

    Attributes:
        s_m: where the corridor's lane crosses it, metres along the corridor.
        light_id: the traffic light's signal id (the ``other_id`` of a run).
        phase, phases: the light's phase at its junction, and how many phases the junction has.
    """

    s_m: float
    light_id: int
    phase: int
    phases: int


def _light_phases(net: RoadNetwork) -> dict:
    """Light signal id -> (phase, number of phases of its junction)."""
    out = {}
    for j in net.junctions.values():
        for phase, cid in enumerate(j.controller_ids):
            for sid in net.controllers[cid].signal_ids:
                out[sid] = (phase, len(j.controller_ids))
    return out


def route_stop_lines(net: RoadNetwork, corridor: Corridor) -> List[RouteStopLine]:
    """The stop lines of ``net``'s traffic lights that the corridor's route crosses, in order along it."""
    phases = _light_phases(net)
    road = corridor.road
    lane_t = road.lane_center_t(-1)
    lines: List[RouteStopLine] = []
    for s_from, s_to, road_id, lane_id, _ in corridor.legs:
        r = net.roads[road_id]
        if r.junction_id >= 0:
            continue
        orientation = "+" if lane_id < 0 else "-"
        centre_t = r.road.lane_center_t(lane_id)
        half_lane = 0.5 * r.road.lane(lane_id).width_m
        lights = [g for g in r.signals if g.kind == "traffic_light" and g.orientation == orientation]
        for stop in (g for g in r.signals if g.kind == "stop_line" and g.orientation == orientation):
            if abs(centre_t - stop.t_m) > 0.5 * stop.width_m or not lights:
                continue
            light = min(lights, key=lambda g: abs(g.s_m - stop.s_m))
            if light.id not in phases:
                continue
            x, y = r.road.to_world(stop.s_m, centre_t)
            s, t = road.project(float(x), float(y), s_hint=0.5 * (s_from + s_to),
                                window_m=0.5 * (s_to - s_from) + 2.0)
            if abs(t - lane_t) > half_lane or not s_from - 1.0 <= s <= s_to + 1.0:
                log.debug("stop line %d of road %d does not fall on the corridor (s %.1f, t %.2f)",
                          stop.id, road_id, s, t)
                continue
            lines.append(RouteStopLine(float(s), light.id, *phases[light.id]))
    return sorted(lines, key=lambda ln: ln.s_m)


class TownLights:
    """The lights of one corridor: ``red_ahead`` for the agents' truth, ``runs`` for the criteria.

    Args:
        net: the town's road network.
        corridor: the corridor the ego drives.
        cycle_s: the town's ``(green, yellow, all_red)`` seconds.
    """

    def __init__(self, net: RoadNetwork, corridor: Corridor, cycle_s: Tuple[float, float, float]) -> None:
        self.lines = route_stop_lines(net, corridor)
        self.cycle_s = tuple(float(c) for c in cycle_s)
        self._prev_rear_s: Optional[float] = None
        self._last_run_id: Optional[int] = None
        if self.lines:
            log.debug("%d traffic-light stop lines on the route", len(self.lines))

    def state(self, line: RouteStopLine, time_s: float) -> str:
        """The light's state (CARLA's name: ``Green``, ``Yellow``, ``Red``) at ``time_s``."""
        return phase_state(line.phase, line.phases, time_s, self.cycle_s)

    def _yellow_left_s(self, line: RouteStopLine, time_s: float) -> float:
        """Seconds until a yellow light turns red."""
        green, yellow, all_red = self.cycle_s
        slot = green + yellow + all_red
        return green + yellow - (time_s % (slot * line.phases) - line.phase * slot)

    def red_ahead(self, front_s_m: float, rear_s_m: float, time_s: float,
                  speed_mps: float = 0.0) -> Optional[float]:
        """Metres from the front bumper (at ``front_s_m`` along the corridor) to the next stop line
        within :data:`LOOK_AHEAD_M` that the car must stop at, or None: a red light's, or a yellow
        light's that turns red before the rear (at ``rear_s_m``) would clear the line at ``speed_mps``
        (with the towns' 3 s of yellow, such a car can always still stop comfortably: a car that
        cannot stop in time is close enough to clear the line on yellow). 0 while the car stands
        across a red line (its front past it, its rear not), so that it stops there rather than run
        the light with its rear. A line the rear has passed no longer stops the car."""
        for line in self.lines:
            gap = line.s_m - front_s_m
            if line.s_m <= rear_s_m:
                continue
            if gap > LOOK_AHEAD_M:
                break
            state = self.state(line, time_s)
            if state == RED or (state == YELLOW and (line.s_m - rear_s_m) > speed_mps * self._yellow_left_s(
                    line, time_s)):
                return max(gap, 0.0)
        return None

    def reset_position(self) -> None:
        """The ego was moved: the next call starts a new track, crossing nothing."""
        self._prev_rear_s = None

    def runs(self, rear_s_m: float, lateral_m: float, lane_width_m: float, time_s: float,
             frame: int) -> List[InfractionEvent]:
        """Red lights run since the last call, the rear now at ``rear_s_m`` along the corridor and the
        car ``lateral_m`` off the lane centre."""
        prev, self._prev_rear_s = self._prev_rear_s, rear_s_m
        if prev is None or abs(lateral_m) > STOP_LINE_HALF_WIDTH * lane_width_m:
            return []
        events = []
        for line in self.lines:
            if prev < line.s_m <= rear_s_m and line.light_id != self._last_run_id \
                    and self.state(line, time_s) == RED:
                self._last_run_id = line.light_id
                events.append(InfractionEvent(frame, "red_light", line.light_id))
                log.info("ran the red light %d at frame %d", line.light_id, frame)
        return events
