"""The embedded simulator backend: OpenDRIVE road, bicycle model, NumPy/OpenCV renderer.

Deterministic: the same scenario, seed and controls give bit-identical frames.
One ``step`` is one fixed time step (``scenario.dt_s``), as in CARLA's
synchronous mode.
"""

from __future__ import annotations

import logging
import math
from typing import List, Optional, Tuple

import numpy as np

from carla_agent.control import VehicleControl
from carla_agent.sim.embedded.collision import boxes_overlap
from carla_agent.sim.embedded.traffic import TrafficVehicle, spawn_traffic
from carla_agent.sim.embedded.vehicle import VehicleParams, VehicleState, step_vehicle, stopped
from carla_agent.sim.embedded.world import CAR_COLORS, StaticObject, place_static
from carla_agent.errors import BackendError, ScenarioError
from carla_agent.control.pure_pursuit import PurePursuitParams, pure_pursuit_steer
from carla_agent.sim.criteria import outside_lanes
from carla_agent.sim.routing.lane_change import LaneChangeCommand
from carla_agent.sim.observation import (CollisionEvent, GroundTruth, LaneInvasionEvent, Observation, Pose)
from carla_agent.sim.embedded.road import Road
from carla_agent.sim.embedded.road_build import build_road
from carla_agent.sim.scenario import MAX_ROAD_M, MIN_ROUTE_M
from carla_agent.sim.simulator import Simulator

log = logging.getLogger(__name__)

#: Lane-centre points handed to the expert: every 2 m up to 40 m ahead.
ROUTE_AHEAD_M = np.arange(2.0, 41.0, 2.0)
#: Vehicles farther than this along the road are not handed to the renderer.
VIEW_BEHIND_M = 30.0
VIEW_AHEAD_M = 260.0
#: The episode is done this far before the end of the road.
END_MARGIN_M = 8.0
#: Objects whose footprint can stop the car (trees: the trunk only).
_SOLID_SIZE = {"tree": (0.5, 0.5), "pole": (0.3, 0.3), "sign": (0.15, 0.15)}
#: The ego's mass for collision impulses, kg.
_MASS_KG = 1800.0


def wrap_angle(a: float) -> float:
    return (a + math.pi) % (2.0 * math.pi) - math.pi


class EmbeddedSimulator(Simulator):
    """Backend ``embedded``. See :class:`carla_agent.sim.simulator.Simulator`.

    Args:
        render: draw camera frames (turn off for physics-only tests).
        vehicle: the ego's parameters.
    """

    name = "embedded"

    def __init__(self, render: bool = True, vehicle: VehicleParams = VehicleParams(), **unused) -> None:
        if unused:
            log.debug("embedded backend ignores options %s", sorted(unused))
        self.render_enabled = render
        self.params = vehicle
        self.scenario = None
        self.road: Optional[Road] = None
        self._renderer = None
        self.lights = None
        self._closed = False
        self._lane_change = LaneChangeCommand()
        self._pp = PurePursuitParams(wheelbase_m=vehicle.wheelbase_m, max_steer_deg=vehicle.max_steer_deg)

    # -- contract --------------------------------------------------------
    def reset(self, scenario, seed: int = 0) -> Observation:
        if self._closed:
            raise BackendError("the embedded simulator was closed; create a new one")
        if not scenario.road.segments and scenario.road.xodr is None and scenario.town is None:
            raise BackendError(f"{scenario.source}: scenario '{scenario.name}' is for a CARLA server; "
                               "run it with --backend carla, or pick an embedded scenario")
        self.scenario = scenario
        self.seed = int(seed)
        rng = np.random.default_rng(self.seed)
        self.town = self.route = self.corridor = None
        if scenario.town is not None:
            self._reset_town_road(scenario)
        else:
            self._reset_single_road(scenario)
        road = self.road
        self._bounds = road.boundaries()
        self.lane_t = road.lane_center_t(self.lane_id)
        self.lane_width = road.lane(self.lane_id).width_m
        self.statics: List[StaticObject] = place_static(road, scenario.roadside, rng)
        if self.town is not None:  # nothing planted on the town's other roads, junctions or sidewalks
            from carla_agent.sim.embedded.render.town_ground import clear_of_town

            self.statics = clear_of_town(self.statics, self.town.network)
        self._static_order = np.argsort([o.s_m for o in self.statics], kind="stable")
        self._static_s = np.array([self.statics[i].s_m for i in self._static_order])
        self.traffic: List[TrafficVehicle] = spawn_traffic(road, scenario.traffic, self.lane_id, self.start_s, rng)
        if self.town is not None:
            from carla_agent.sim.embedded.town_route import parked_on_corridor

            self.traffic += parked_on_corridor(self.town, self.corridor, rng, CAR_COLORS)
        x, y = road.to_world(self.start_s, self.lane_t)
        speed0 = 0.0
        self.state = VehicleState(float(x), float(y), road.heading_at(self.start_s), speed0)
        self.s = self.start_s
        self._t = self.lane_t
        self.frame = 0
        self.sim_time_s = 0.0
        self._town_rules()
        self._lane_change.reset()
        self._contacts: set = set()
        self._marks_inside: frozenset = frozenset()
        self._weather_spec = scenario.weather
        self._make_renderer()
        self._marks_inside = self._marks_under_car(self._footprint_t())
        return self._observe((), ())

    def _reset_single_road(self, scenario) -> None:
        if self.road is None or getattr(self, "_road_spec", None) != scenario.road:
            self.road = build_road(scenario.road, name=scenario.name)
            self._road_spec = scenario.road
        road = self.road
        self.lane_id = -scenario.ego.lane
        if road.length_m > MAX_ROAD_M:  # an OpenDRIVE road; segment roads are checked when loaded
            raise ScenarioError(f"{scenario.source}: field 'road.xodr': the road is {road.length_m:.0f} m long; "
                                f"at most {MAX_ROAD_M:.0f} m")
        last_start = road.length_m - 2 * END_MARGIN_M - MIN_ROUTE_M
        if scenario.ego.start_s_m > last_start:
            # Clamping would score a few metres' drive as a whole route.
            raise ScenarioError(f"{scenario.source}: field 'ego.start_s_m': {scenario.ego.start_s_m} m leaves less "
                                f"than {MIN_ROUTE_M:g} m to drive on this {road.length_m:.0f} m road; expected a "
                                f"number in [0, {max(last_start, 0.0):.0f}]")
        self.start_s = scenario.ego.start_s_m

    def _reset_town_road(self, scenario) -> None:
        """A town: the ego drives the planned route's corridor (see ``town_route``)."""
        from carla_agent.sim.embedded.town_route import town_corridor

        self.town, self.route, self.corridor = town_corridor(scenario, END_MARGIN_M)
        self.road, self._road_spec = self.corridor.road, None
        self.lane_id = -1
        self.start_s = self.corridor.start_s_m
        if self.corridor.end_s_m - self.start_s < MIN_ROUTE_M:
            raise ScenarioError(f"{scenario.source}: field 'route': the route is "
                                f"{self.corridor.end_s_m - self.start_s:.0f} m long; at least {MIN_ROUTE_M:g} m")

    def reroute(self, x_m: float, y_m: float, yaw_rad: float, speed_mps: float, length_m: float = 2000.0) -> None:
        """In a town: put the ego at ``(x_m, y_m, yaw_rad)`` (OpenDRIVE frame) on a fresh corridor of
        about ``length_m`` following the lanes from there (see ``town_route.free_corridor``).

        For a served town, whose client drives the ego wherever it likes. Raises ``RoutingError``
        when no lane runs near the point in that direction (the corridor is then unchanged).
        """
        from carla_agent.sim.embedded.town_route import free_corridor, parked_on_corridor

        if self.town is None:
            raise BackendError("reroute() needs a town scenario")
        self.route, self.corridor = free_corridor(self.town, x_m, y_m, yaw_rad, length_m, self.seed, END_MARGIN_M)
        self.road = self.corridor.road
        self._bounds = self.road.boundaries()
        self.lane_t = self.road.lane_center_t(self.lane_id)
        self.statics = []
        self._static_order, self._static_s = np.zeros(0, np.int64), np.zeros(0)
        rng = np.random.default_rng(self.seed)
        self.traffic = parked_on_corridor(self.town, self.corridor, rng, CAR_COLORS)
        self.state = VehicleState(float(x_m), float(y_m), float(yaw_rad), float(speed_mps))
        self.s, self._t = self.road.project(x_m, y_m, s_hint=self.corridor.start_s_m, window_m=10.0)
        self._town_rules()
        self._lane_change.reset()
        self.start_s = self.s
        self._contacts = set()
        self._marks_inside = self._marks_under_car(self._footprint_t())
        self._make_renderer()

    def off_corridor(self) -> bool:
        """Whether the ego has left its corridor (another way out of a junction) or nears its end."""
        return (abs(self._t - self.lane_t) > 2.5 or self.s > self.road.length_m - 150.0
                or abs(wrap_angle(self.state.yaw_rad - self.road.heading_at(self.s))) > math.radians(60))

    def step(self, control: VehicleControl) -> Observation:
        if self.scenario is None:
            raise BackendError("call reset(scenario) before step()")
        dt = self.scenario.dt_s
        self.state = step_vehicle(self.state, control, self.params, dt)
        for v in self.traffic:
            v.step(self.road, dt)
        self.s, self._t = self.road.project(self.state.x_m, self.state.y_m, s_hint=self.s)
        self.frame += 1
        self.sim_time_s = self.frame * dt
        collisions = self._collisions()
        invasions = self._lane_invasions()
        runs = () if self.lights is None else self.lights.runs(
            self.s - 0.5 * self.params.length_m, self._t - self.lane_t, self.lane_width, self.sim_time_s, self.frame)
        return self._observe(collisions, invasions, runs)

    def recover(self) -> None:
        if self.scenario is None:
            raise BackendError("call reset(scenario) before recover()")
        x, y = self.road.to_world(self.s, self.lane_t)
        self.state = VehicleState(float(x), float(y), self.road.heading_at(self.s), self.state.speed_mps)
        self._t = self.lane_t
        self._marks_inside = self._marks_under_car(self._footprint_t())
        self._contacts = set()

    def displace(self, offset_right_m: float) -> bool:
        """Put the car ``offset_right_m`` [m] right (negative: left) of the route lane's centre, heading
        along it, at its speed (training data: a lane to change back from). Only onto a town's driving
        lane outside the junctions; returns whether it moved."""
        if self.town is None:
            return False
        x, y = self.road.to_world(self.s, self.lane_t - offset_right_m)
        distance_m, _, in_junction = self.town.lanes.nearest_lane(float(x), float(y))
        if in_junction or distance_m > 0.5:
            return False
        self.state = VehicleState(float(x), float(y), self.road.heading_at(self.s), self.state.speed_mps)
        self._t = self.lane_t - offset_right_m
        self._marks_inside = self._marks_under_car(self._footprint_t())
        self._contacts = set()
        return True

    def junction_leg_ahead(self, commands) -> Optional[Tuple[float, float, int]]:
        """``(entry_s_m, exit_s_m, command)`` of the first corridor leg whose command (a RoadOption
        value) is in ``commands`` and whose end lies ahead of the car, or None; with
        :meth:`route_lane_mask` from ``exit_s_m``, the lane a turn goes into."""
        wanted = {int(c) for c in commands}
        leg = next((g for g in self.corridor.legs if int(g[4]) in wanted and g[1] > self.s), None)
        return None if leg is None else (float(leg[0]), float(leg[1]), int(leg[4]))

    def route_lane_mask(self, s_from_m: float, s_to_m: float) -> np.ndarray:
        """``(H, W)`` bool: the pixels of the route's lane between ``s_from_m`` and ``s_to_m`` [m] along
        the corridor, in the last frame drawn (:mod:`carla_agent.sim.embedded.lane_mask`)."""
        from carla_agent.sim.embedded.lane_mask import lane_stretch_mask

        if self._renderer is None:
            raise BackendError("route_lane_mask needs the renderer; create the simulator with render=True")
        return lane_stretch_mask(self.road, self.lane_t, self.lane_width, self._renderer.camera, s_from_m, s_to_m)

    def options(self) -> dict:
        return {"render": bool(self.render_enabled)}

    def close(self) -> None:
        self._closed = True
        self._renderer = None

    # -- extras used by the HUD and tools -----------------------------------
    def set_weather(self, weather_spec) -> None:
        """Change the weather mid-episode (the HUD's W key)."""
        self._weather_spec = weather_spec
        self._make_renderer()

    def xodr(self) -> str:
        """The current map as OpenDRIVE text: the town's network, or the single road."""
        if getattr(self, "town", None) is not None:
            return self.town.xodr
        from carla_agent.sim.embedded.xodr import write_xodr

        return write_xodr(self.road)

    # -- internals -------------------------------------------------------
    def _town_rules(self) -> None:
        """The town's lights on the corridor (None on a single road), tracking the ego from here,
        and the scenario's lead car driving the corridor by them (``town_traffic``)."""
        self.lights = None
        if self.town is not None:
            from carla_agent.sim.embedded.town_lights import TownLights
            from carla_agent.sim.embedded.town_traffic import lead_on_route

            self.lights = TownLights(self.town.network, self.corridor, self.town.spec.traffic_light_cycle_s)
            self.lights.runs(self.s - 0.5 * self.params.length_m, 0.0, self.lane_width, self.sim_time_s, self.frame)
            self.traffic = lead_on_route(self.traffic, self.lights, self.sim_time_s)

    def _make_renderer(self) -> None:
        if not self.render_enabled:
            self._renderer = None
            return
        from carla_agent.sim.embedded.render import Renderer
        from carla_agent.sim.embedded.weather import resolve_weather

        self._renderer = Renderer(self.road, self.scenario.camera, resolve_weather(self._weather_spec),
                                  self.statics, self.seed, self.town_view())

    def town_view(self):
        """What a renderer needs to draw the whole town round the corridor (a
        :class:`~carla_agent.sim.embedded.render.town_draw.TownView`); None on a single road. Every
        camera of a town scenario needs it: the corridor alone is one road, and a corridor that comes
        round a loop overlaps itself (drawn over the town's ground, that does not show)."""
        if self.town is None:
            return None
        from carla_agent.sim.embedded.render.town_draw import TownView

        return TownView(self.town.network, self.town.spec.traffic_light_cycle_s, self.scenario.dt_s)

    def _outside_route_lanes(self):
        """In a town, the leaderboard's test against the town's lanes (criteria.outside_lanes); on a
        single road None, and the criteria use the offset from the route's lane."""
        if self.town is None:
            return None
        st = self.state
        distance_m, lane_heading_rad, in_junction = self.town.lanes.nearest_lane(st.x_m, st.y_m)
        return outside_lanes(distance_m, self.lane_width, lane_heading_rad, self.road.heading_at(self.s), in_junction)

    def _observe(self, collisions, invasions, infractions=()) -> Observation:
        road, st = self.road, self.state
        t = self._t
        lane_hdg = road.heading_at(self.s)
        lateral_right = -(t - self.lane_t)
        heading_err = -wrap_angle(st.yaw_rad - lane_hdg)
        route_ahead = self._route_ahead()
        # Only what the camera can see: a little behind the car to the far clip ahead.
        boxes = [v.box(road) for v in self.traffic
                 if v.active and -VIEW_BEHIND_M < v.s_m - self.s < VIEW_AHEAD_M]
        lead_d, lead_v = self._lead()
        half = 0.5 * self.params.length_m
        red_d = None if self.lights is None else self.lights.red_ahead(self.s + half, self.s - half,
                                                                       self.sim_time_s, st.speed_mps)
        image = semantic = None
        if self._renderer is not None:
            image, semantic = self._renderer.render(st.x_m, st.y_m, st.yaw_rad, self.s, boxes, self.frame)
        else:
            cam = self.scenario.camera
            image = np.zeros((cam.image_size_y, cam.image_size_x, 3), np.uint8)
        truth = GroundTruth(
            lateral_offset_m=float(lateral_right),
            heading_error_rad=float(heading_err),
            route_s_m=float(self.s - self.start_s),
            route_length_m=float(road.length_m - END_MARGIN_M - self.start_s),
            route_ahead=route_ahead,
            lane_width_m=self.lane_width,
            speed_limit_mps=road.speed_limit_mps,
            lead_distance_m=lead_d,
            lead_speed_mps=lead_v,
            expert_steer=pure_pursuit_steer(route_ahead, st.speed_mps, self._pp),
            semantic=semantic,
            red_light_distance_m=red_d,
            outside_route_lanes=self._outside_route_lanes(),
        )
        pose = Pose(st.x_m, -st.y_m, 0.0, -math.degrees(st.yaw_rad), 0.0, 0.0)
        return Observation(
            frame=self.frame, sim_time_s=self.sim_time_s, dt_s=self.scenario.dt_s, image=image,
            # The tick of a hit reports the speed it was hit at (the car stops in it): as a collision
            # sensor fires while the car still moves, so that the criteria count it (under 0.1 m/s they don't).
            speed_mps=max(st.speed_mps, self._hit_speed_mps if collisions else 0.0),
            pose=pose, truth=truth, collisions=tuple(collisions),
            lane_invasions=tuple(invasions), weather=self._weather_spec.preset,
            done=bool(self.s >= road.length_m - END_MARGIN_M), infractions=tuple(infractions),
            # On a single road the route's command is LANEFOLLOW (4); a car a lane off is asked back, as on CARLA.
            command=self._lane_change(4 if self.corridor is None else self.corridor.command_at(self.s), lateral_right),
        )

    def _route_ahead(self) -> np.ndarray:
        st = self.state
        s = np.minimum(self.s + ROUTE_AHEAD_M, self.road.length_m)
        wx, wy = self.road.to_world(s, self.lane_t)
        dx, dy = wx - st.x_m, wy - st.y_m
        c, si = math.cos(st.yaw_rad), math.sin(st.yaw_rad)
        fwd = dx * c + dy * si
        left = -dx * si + dy * c
        return np.stack([fwd, -left], axis=1).astype(np.float32)

    def _lead(self) -> Tuple[Optional[float], Optional[float]]:
        best = None
        for v in self.traffic:
            if not v.active or v.speed_mps < 0 or abs(v.t_m - self.lane_t) > 0.5 * self.lane_width:
                continue
            gap = v.s_m - self.s - 0.5 * (v.length_m + self.params.length_m)
            if -0.5 * v.length_m < gap < 100.0 and (best is None or gap < best[0]):
                best = (max(0.0, gap), v.speed_mps)
        return (None, None) if best is None else (float(best[0]), float(best[1]))

    def _ego_box(self):
        st = self.state
        return (st.x_m, st.y_m, st.yaw_rad, self.params.length_m, self.params.width_m)

    def _collisions(self) -> List[CollisionEvent]:
        ego = self._ego_box()
        touching = {}
        for v in self.traffic:
            if v.active and abs(v.s_m - self.s) < 10.0:
                b = v.box(self.road)
                if boxes_overlap(ego, (b.x_m, b.y_m, b.yaw_rad, b.length_m, b.width_m)):
                    touching[v.name] = (b.kind, "vehicle")
        lo, hi = np.searchsorted(self._static_s, (self.s - 30.0, self.s + 30.0))
        for i in self._static_order[lo:hi].tolist():
            o = self.statics[i]
            length, width = _SOLID_SIZE.get(o.kind, (o.length_m, o.width_m))
            if boxes_overlap(ego, (o.x_m, o.y_m, o.yaw_rad, length, width)):
                touching[f"static_{i}"] = (f"static.{o.kind}", "static")
        events = []
        speed = self.state.speed_mps
        for key, (other, kind) in touching.items():
            if key not in self._contacts:
                events.append(CollisionEvent(self.frame, other, kind, _MASS_KG * max(speed, 0.1)))
        self._hit_speed_mps = speed
        if touching and speed > 0:
            self.state = stopped(self.state)
        self._contacts = set(touching)
        return events

    def _footprint_t(self) -> Tuple[float, float]:
        """Lateral extent ``(t_min, t_max)`` of the car's footprint on the road."""
        st = self.state
        t = self._t
        rel = st.yaw_rad - self.road.heading_at(self.s)
        half_l, half_w = 0.5 * self.params.length_m, 0.5 * self.params.width_m
        spread = abs(half_l * math.sin(rel)) + abs(half_w * math.cos(rel))
        return t - spread, t + spread

    def _marks_under_car(self, span: Tuple[float, float]) -> frozenset:
        lo, hi = span
        return frozenset(i for i, b in enumerate(self._bounds)
                         if b.mark.type != "none" and lo < b.t_m < hi)

    def _lane_invasions(self) -> List[LaneInvasionEvent]:
        inside = self._marks_under_car(self._footprint_t())
        new = inside - self._marks_inside
        self._marks_inside = inside
        if not new:
            return []
        bounds = self._bounds
        return [LaneInvasionEvent(self.frame, tuple(bounds[i].mark.carla_name for i in sorted(new)))]
