"""The CARLA backend's simulator: the simulator contract against a real CARLA 0.9.16 server.

Constructing :class:`CarlaSimulator` connects (:func:`~carla_agent.sim.carla_backend.client.connect`),
compares client and server versions, and fails within ``timeout_s`` with one
line saying where it tried and how to start a server. Importing this module
needs neither the ``carla`` wheel nor a server.

One episode (``reset`` to the next ``reset`` or ``close``) is a
:class:`~carla_agent.sim.carla_backend.session.Session`, restored on every exit
path. Each tick takes the camera frames of that tick (the one-ticker pattern,
:class:`~carla_agent.sim.carla_backend.sensors.SensorQueue`); ground truth
(lateral offset, heading error, route ahead) comes from the client-side map
(:mod:`~carla_agent.sim.carla_backend.truth`, :mod:`~carla_agent.sim.carla_backend.route`).

Frames: ``Observation.frame`` counts ticks since ``reset`` (the contract's
episode frame); CARLA's own frame id of the last tick is ``sim.info.carla_frame``.

Every blocking call (ticks, the map load) goes through a
:class:`~carla_agent.sim.carla_backend.watchdog.Watchdog`: ``timeout_s`` plus
:data:`WATCHDOG_MARGIN_S` at most, whatever hangs (the server, or the 0.9.16 client's
synchronous Traffic Manager, carla issue 9172); then the session is restored with
a short client time-out and the error is one line that says whether it could be.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from typing import Callable, Dict, List, Optional

import numpy as np

from carla_agent.control import VehicleControl
from carla_agent.control.pure_pursuit import PurePursuitParams, pure_pursuit_steer
from carla_agent.errors import BackendError, ScenarioError
from carla_agent.sim.carla_backend.client import (DEFAULT_HOST, DEFAULT_PORT, DEFAULT_TM_PORT, connect,
                                                  import_carla, is_timeout, map_key, match_map)
from carla_agent.sim.carla_backend.contacts import ContactTracker, lead_vehicle
from carla_agent.sim.carla_backend.route import ROUTE_STEP_M, Route
from carla_agent.sim.carla_backend.town_plan import town_plan_for
from carla_agent.sim.routing.lane_change import LaneChangeCommand
from carla_agent.sim.carla_backend.sensors import bgra_to_rgb, semantic_labels
from carla_agent.sim.carla_backend.session import Session
from carla_agent.sim.carla_backend.settle import Settling, settle
from carla_agent.sim.carla_backend.spawn import spawn_ego, spawn_traffic, switch_lights
from carla_agent.sim.carla_backend.spec import CarlaSpec, carla_spec, exposure_attributes
from carla_agent.sim.carla_backend.deviation import RouteDeviation
from carla_agent.sim.carla_backend.lights import TrafficLights, stop_lines
from carla_agent.sim.carla_backend.truth import (heading_error, map_speed_limits, off_road, outside_route_lanes,
                                                 route_speed_limits)
from carla_agent.sim.carla_backend.watchdog import ServerHung, Watchdog, failure
from carla_agent.sim.carla_backend.weather import scenario_weather, vehicle_lights
from carla_agent.sim.criteria import route_completion_pct
from carla_agent.sim.observation import GroundTruth, LaneInvasionEvent, Observation, Pose
from carla_agent.sim.simulator import Simulator

log = logging.getLogger(__name__)

#: The episode ends this far before the end of a route that runs into a dead end.
END_MARGIN_M = 8.0
#: A recovered ego is put this far above the lane centre, so it never spawns into the road.
RECOVER_LIFT_M = 0.2
#: Spectator: behind and above the ego.
SPECTATOR_BACK_M = 7.0
SPECTATOR_UP_M = 3.0
SPECTATOR_PITCH_DEG = -15.0
#: The watchdog waits this much longer than the client's own time-out (which normally fires first).
WATCHDOG_MARGIN_S = 1.0
#: The client time-out for the cleanup after a hang or a time-out: the server may be gone.
CLEANUP_TIMEOUT_S = 3.0


def _pursuit_params(ego) -> PurePursuitParams:
    """Wheelbase and maximum steering angle of the ego, from its physics control."""
    try:
        wheels = ego.get_physics_control().wheels
        front = [(wheels[0].position.x + wheels[1].position.x) / 2, (wheels[0].position.y + wheels[1].position.y) / 2]
        rear = [(wheels[2].position.x + wheels[3].position.x) / 2, (wheels[2].position.y + wheels[3].position.y) / 2]
        wheelbase = math.hypot(front[0] - rear[0], front[1] - rear[1]) / 100.0  # wheel positions are in cm
        max_steer = float(wheels[0].max_steer_angle)
        if 1.0 < wheelbase < 8.0 and 10.0 < max_steer < 90.0:
            return PurePursuitParams(wheelbase_m=wheelbase, max_steer_deg=max_steer)
    except (RuntimeError, AttributeError, IndexError) as exc:
        log.debug("no physics control for pure pursuit (%s); using defaults", exc)
    return PurePursuitParams(max_steer_deg=70.0)


@dataclass(frozen=True)
class CarlaInfo:
    """What the last tick knew beyond the :class:`Observation`.

    Attributes:
        carla_frame: CARLA's frame id of the tick.
        off_road: the ego's centre is on no driving lane.
        on_route_lane: the ego is in the route's lane.
        route_completion_pct: leaderboard route completion.
        recorder_file: the recording of this episode, or None.
    """

    carla_frame: int
    off_road: bool
    on_route_lane: bool
    route_completion_pct: float
    recorder_file: Optional[str] = None


class CarlaSimulator(Simulator):
    """Backend ``carla``: a CARLA 0.9.16 server in synchronous mode.

    Args:
        host, port: the server's RPC address (``-carla-rpc-port``).
        tm_port: the Traffic Manager's port.
        timeout_s: client time-out for connecting and ticking (``--timeout``); a tick that has not
            returned ``WATCHDOG_MARGIN_S`` later is abandoned and the drive ends (the watchdog).
        record: record each episode with CARLA's recorder (``client.start_recorder``).
        recorder_file: file name template of the recordings; ``{scenario}``,
            ``{seed}``, ``{episode}`` and ``{time}`` are filled in. A plain name
            is saved in the server's ``CarlaUE4/Saved`` folder.
        allow_version_mismatch: go on when client and server versions differ.
        autopilot: override the scenario's ``carla.expert`` (True: Traffic Manager autopilot).
        sensor_timeout_s: how long to wait for a camera frame (default ``timeout_s``).
        load_timeout_s: client time-out while loading a map (map loads are slow).
        client_factory: ``factory(host, port)`` used instead of ``carla.Client`` (tests).

    Extras: ``recorder_file`` (this episode's recording, for the drive log),
    ``recorder_files`` (all of them), ``info`` (:class:`CarlaInfo` of the last tick),
    ``route`` (the planned :class:`Route`), ``client_version``, ``server_version``,
    ``settling`` (:class:`~carla_agent.sim.carla_backend.settle.Settling`: how the ego landed after ``reset``).
    """

    name = "carla"

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, tm_port: int = DEFAULT_TM_PORT,
                 timeout_s: float = 10.0, *, record: bool = False,
                 recorder_file: str = "carla_agent_{scenario}_seed{seed}_ep{episode}_{time}.log",
                 allow_version_mismatch: bool = False, autopilot: Optional[bool] = None,
                 sensor_timeout_s: Optional[float] = None, load_timeout_s: float = 60.0,
                 client_factory: Optional[Callable] = None, **unused) -> None:
        if unused:
            log.debug("carla backend ignores options %s", sorted(unused))
        self._carla = import_carla()
        self.host, self.port, self.tm_port = host, int(port), int(tm_port)
        self._tm_made = False  # this client made a Traffic Manager (load_world must then find it synchronous)
        self.timeout_s = float(timeout_s)
        self._lane_change = LaneChangeCommand()
        self.sensor_timeout_s = float(sensor_timeout_s) if sensor_timeout_s is not None else self.timeout_s
        self.load_timeout_s = float(load_timeout_s)
        self.record = bool(record)
        self.recorder_template = recorder_file
        self.autopilot_override = autopilot
        self.client, self.client_version, self.server_version = connect(
            host, self.port, self.timeout_s, client_factory, allow_version_mismatch)
        self._watchdog = Watchdog(f"{host}:{self.port}")
        self.scenario = None
        self.route: Optional[Route] = None
        self.info: Optional[CarlaInfo] = None
        self.settling: Optional[Settling] = None
        self.recorder_file: Optional[str] = None
        self.recorder_files: List[str] = []
        self._session: Optional[Session] = None
        self._map_limits: Dict[str, dict] = {}  # map name -> road_speed_limits, read once per map
        self._episode = 0
        self._closed = False

    # -- contract --------------------------------------------------------
    def reset(self, scenario, seed: int = 0) -> Observation:
        if self._closed:
            raise BackendError("the CARLA simulator was closed; create a new one")
        spec = carla_spec(scenario)  # scenario errors before touching the server
        self._lane_change.reset()
        self._end_session()
        self._session = Session(self.client)
        try:
            self._start(scenario, spec, int(seed))
            return self._observe()
        except BaseException as exc:
            error = self._fail(exc, "reset")
            if error is not None:
                raise error from None
            raise

    def step(self, control: VehicleControl) -> Observation:
        if self._session is None:
            raise BackendError("call reset(scenario) before step()")
        try:
            if self._recover_pending:
                self._recover_pending = False
                self._place_on_route()
            if not self._autopilot:
                self._session.ego.apply_control(self._carla.VehicleControl(
                    throttle=float(control.throttle), steer=float(control.steer), brake=float(control.brake),
                    hand_brake=bool(control.hand_brake), reverse=bool(control.reverse)))
            return self._observe()
        except BaseException as exc:
            error = self._fail(exc, "a tick")  # never leave the server frozen in synchronous mode
            if error is not None:
                raise error from None
            raise

    def recover(self) -> None:
        if self._session is None:
            raise BackendError("call reset(scenario) before recover()")
        self._recover_pending = True

    def close(self) -> None:
        """Restore the server as found (settings, Traffic Manager, weather) and destroy what was spawned."""
        if self._closed:
            return
        self._closed = True
        self._end_session()
        self._watchdog.close()

    # -- episode setup ----------------------------------------------------
    def _end_session(self, quiet: bool = False) -> Optional[str]:
        """Restore the server (bounded in time); what could not be restored, or None."""
        session, self._session = self._session, None
        if session is None:
            return None
        session.quiet = quiet
        if quiet:  # after a hang or a time-out: the server may be gone, do not wait long on each call
            self.client.set_timeout(min(self.timeout_s, CLEANUP_TIMEOUT_S))
        try:
            session.restore(budget_s=2 * self.timeout_s + CLEANUP_TIMEOUT_S)
        finally:
            if quiet:
                self.client.set_timeout(self.timeout_s)
        return session.unrestored

    def _fail(self, exc: BaseException, during: str) -> Optional[BackendError]:
        """End the session after ``exc``; the one-line error to raise instead, or None (re-raise ``exc``)."""
        timed_out = isinstance(exc, ServerHung) or is_timeout(exc)
        unrestored = self._end_session(quiet=timed_out)
        return failure(exc, f"{self.host}:{self.port}", during, timed_out, unrestored)

    def _tick(self, world) -> int:
        return int(self._watchdog.call(world.tick, self.timeout_s + WATCHDOG_MARGIN_S, "world.tick()",
                                       self.timeout_s))

    def _start(self, scenario, spec: CarlaSpec, seed: int) -> None:
        carla = self._carla
        s = self._session
        self.scenario = scenario
        self.spec = spec
        self._episode += 1
        self._recover_pending = False
        self._contacts = ContactTracker()
        self._autopilot = spec.expert == "autopilot" if self.autopilot_override is None else bool(self.autopilot_override)
        # The Traffic Manager sets each tick's control from the state before it: get_control() after
        # tick N is the expert's answer to frame N - 1.
        self.expert_lag_ticks = 1 if self._autopilot else 0
        rng = np.random.default_rng(seed)
        world = self.client.get_world()
        s.capture(world, f"at {self.host}:{self.port}")
        s.clean_leftovers(world)
        world, carla_map = self._ensure_map(world, spec.map or scenario.town, scenario)
        s.world, s.map = world, carla_map
        s.original_weather = world.get_weather()
        s.apply_sync(world, scenario.dt_s)
        tm_spec = spec.traffic_manager
        tm = None
        if tm_spec.vehicles or self._autopilot:
            # Only when something drives on autopilot: the wheel's client-side Traffic Manager can hang
            # in its synchronous tick (a lost wake-up inside libcarla, see docs/serve.md), so a drive
            # that does not need it never starts it.
            tm = self.client.get_trafficmanager(self.tm_port)
            self._tm_made = True
            s.tm = tm
            s.tm_sync = True
            tm.set_synchronous_mode(True)
            tm.set_random_device_seed(int(tm_spec.seed if tm_spec.seed is not None else seed))
            tm.set_global_distance_to_leading_vehicle(float(tm_spec.distance_to_leading_m))
            tm.global_percentage_speed_difference(float(tm_spec.speed_difference_pct))
        weather, self.weather_name = scenario_weather(scenario, spec)
        s.weather_changed = True
        world.set_weather(weather)
        if self.record:
            self.recorder_file = self.recorder_template.format(
                scenario=scenario.name, seed=seed, episode=self._episode, time=time.strftime("%Y%m%d-%H%M%S"))
            s.recording = True
            self.client.start_recorder(self.recorder_file, False)
            self.recorder_files.append(self.recorder_file)
            log.info("recording to %s on the server", self.recorder_file)
        else:
            self.recorder_file = None
        plan = town_plan_for(scenario, spec, carla_map, carla)  # a town scenario drives its own route
        if plan is not None:
            spec = replace(spec, spawn_transform=plan.spawn, route_length_m=plan.length_m)
        where = "route.start" if plan is not None else "carla.spawn_transform"  # for a taken spot's error
        ego, spawn_index, spawn, self._spawn_points = spawn_ego(s, scenario, spec, where)
        start = carla_map.get_waypoint(spawn.location, project_to_road=True, lane_type=carla.LaneType.Driving)
        if start is None:
            raise BackendError("the spawn point is on no driving lane; pick another carla.spawn_point")
        length = spec.route_length_m or max(50.0, scenario.target_speed_mps * scenario.duration_s)
        self._ahead_m = spec.route_spacing_m * np.arange(1, spec.route_waypoints + 1)
        self.route = Route.plan(start, length + float(self._ahead_m[-1]), ROUTE_STEP_M,
                                plan.choose if plan is not None else spec.junctions, rng)
        self.route_length_m = min(length, self.route.length_m - END_MARGIN_M)
        if self.route_length_m <= 0:
            raise BackendError(f"the road from spawn point {spawn_index} is only {self.route.length_m:.0f} m long; "
                               "pick another carla.spawn_point")
        if map_key(carla_map.name) not in self._map_limits:
            self._map_limits[map_key(carla_map.name)] = map_speed_limits(carla_map)
        self._route_limits = route_speed_limits(self._map_limits[map_key(carla_map.name)], self.route.waypoints)
        self._lights = TrafficLights(stop_lines(world, self.route))
        self._deviation = RouteDeviation(self.route.xy, self.route.s)
        self._route_index = 0
        self._pp = _pursuit_params(ego)
        self._ego_half_length = float(ego.bounding_box.extent.x)
        camera = scenario.camera
        s.spawn_camera("rgb camera", "sensor.camera.rgb", camera, ego, exposure_attributes(spec.exposure))
        if spec.semantic_camera:
            s.spawn_camera("semantic camera", "sensor.camera.semantic_segmentation", camera, ego)
        s.spawn_event_sensor("collision", "sensor.other.collision", ego)
        s.spawn_event_sensor("lane invasion", "sensor.other.lane_invasion", ego)
        spawn_traffic(s, tm_spec, self._spawn_points, spawn_index, rng)
        if vehicle_lights(weather) is not None:  # night: the camera sees the road by the headlights
            switch_lights(s, vehicle_lights(weather))
        s.spectator = world.get_spectator() if spec.spectator else None
        self.settling = settle(lambda: self._tick(world), ego, spec.settle_ticks, spec.settle_max_ticks,
                               lambda: [q.drain() for q in s.queues.values()])
        # The Traffic Manager takes the ego only once it has landed: the drive starts from a standstill.
        if self._autopilot:
            ego.set_autopilot(True, tm.get_port())
            tm.auto_lane_change(ego, False)
            tm.ignore_lights_percentage(ego, float(tm_spec.ignore_lights_pct))
            tm.set_desired_speed(ego, float(scenario.ego.target_speed_kmh))
            every = max(1, int(round(5.0 / ROUTE_STEP_M)))
            tm.set_path(ego, [w.transform.location for w in self.route.waypoints[every::every]])
        self._steps = -1  # the first observation is frame 0

    def _ensure_map(self, world, wanted: Optional[str], scenario):
        """The world on the map ``wanted`` (the scenario's ``carla.map``, else its town), loaded if
        another is. With None, a server that has a map of the scenario's name (serve names a single
        road's map after its scenario) loads it; any other keeps its map, said aloud."""
        source = scenario.source
        carla_map = world.get_map()
        loaded = map_key(carla_map.name)
        if (wanted or scenario.name) == loaded or (wanted and match_map(wanted, [carla_map.name])):
            return world, carla_map
        available = self.client.get_available_maps()
        if wanted is None:
            if scenario.name not in {map_key(m) for m in available}:
                log.warning("scenario %s names no map (field 'carla.map'): driving the map loaded on %s:%s, "
                            "%s", scenario.name, self.host, self.port, loaded)
                return world, carla_map
            wanted = scenario.name
        target = match_map(wanted, available)
        if target is None:
            names = ", ".join(sorted({map_key(m) for m in available}))
            field = "carla.map" if (scenario.carla or {}).get("map") else "town"
            raise ScenarioError(f"{source}: field {field!r}: the server at {self.host}:{self.port} has no map "
                                f"{wanted!r}; available: {names}")
        log.info("loading %s (was %s)", map_key(target), map_key(carla_map.name))
        if self._tm_made:
            # An asynchronous Traffic Manager's thread polls World.GetSnapshot() without pause, and the
            # wheel's load_world drops its episode pointer meanwhile: a segfault (docs/towns.md).
            # Synchronous, the thread waits for a tick instead.
            self.client.get_trafficmanager(self.tm_port).set_synchronous_mode(True)
        self.client.set_timeout(self.load_timeout_s)
        try:  # the wheel waits for the new episode (the server loads asynchronously) and returns its World
            world = self._watchdog.call(self.client.load_world, self.load_timeout_s + WATCHDOG_MARGIN_S,
                                        f"loading {map_key(target)}", map_key(target))
        finally:
            self.client.set_timeout(self.timeout_s)
        return world, world.get_map()

    # -- ticking ------------------------------------------------------------
    def _place_on_route(self) -> None:
        carla = self._carla
        ego = self._session.ego
        x, y, z, yaw = self.route.point_at(self._route_s)
        ego.set_transform(carla.Transform(carla.Location(x=x, y=y, z=z + RECOVER_LIFT_M), carla.Rotation(yaw=yaw)))
        v = self._speed
        ego.set_target_velocity(carla.Vector3D(x=v * math.cos(math.radians(yaw)), y=v * math.sin(math.radians(yaw)), z=0.0))
        self._contacts.reset()
        self._lights.reset_position()  # a teleport runs no red light
        self._deviation.reset_position(self._route_s)

    def _observe(self) -> Observation:
        carla = self._carla
        s = self._session
        scenario = self.scenario
        frame = self._tick(s.world)
        self._steps += 1
        image = bgra_to_rgb(s.queues["rgb camera"].get(frame, self.sensor_timeout_s))
        semantic = None
        if "semantic camera" in s.queues:
            semantic = semantic_labels(s.queues["semantic camera"].get(frame, self.sensor_timeout_s))
        collisions = self._contacts.update(s.queues["collision"].drain(), self._steps)
        invasions = [LaneInvasionEvent(self._steps, tuple(str(m.type) for m in ev.crossed_lane_markings))
                     for ev in s.queues["lane invasion"].drain()]
        ego = s.ego
        tf = ego.get_transform()
        vel = ego.get_velocity()
        speed = math.sqrt(vel.x * vel.x + vel.y * vel.y + vel.z * vel.z)
        self._speed = speed
        loc, rot = tf.location, tf.rotation
        proj = self.route.project(loc.x, loc.y, hint=self._route_index)
        self._route_index = proj.index
        self._route_s = proj.s_m
        # Measured against the route, the lane driven (see route.py): never by its (road, lane) id.
        lateral, lane_yaw, lane_width = proj.lateral_m, proj.yaw_deg, proj.lane_width_m
        route_ahead = self.route.ahead(loc.x, loc.y, rot.yaw, proj.s_m, self._ahead_m)
        fwd = tf.get_forward_vector()
        half = self._ego_half_length
        infractions = self._lights.runs(loc.x - half * fwd.x, loc.y - half * fwd.y, rot.yaw, self._steps)
        deviated = self._deviation.update(loc.x, loc.y, self._steps)  # the leaderboard ends the route there
        infractions += [deviated] if deviated else []
        if self._autopilot:
            expert = float(np.clip(ego.get_control().steer, -1.0, 1.0))
        else:
            expert = pure_pursuit_steer(route_ahead, speed, self._pp)
        limit_mps = float(self._route_limits[proj.index])
        if not limit_mps > 0:  # the map gives none here: the last speed sign passed, else the scenario's
            limit_kmh = float(ego.get_speed_limit() or 0.0)
            limit_mps = limit_kmh / 3.6 if limit_kmh > 0 else scenario.road.speed_limit_kmh / 3.6
        lead_d, lead_v = lead_vehicle(s.world.get_actors().filter("vehicle.*"), s.ego.id, self._ego_half_length, loc,
                                      self.route, proj.index, proj.s_m, lane_width)
        truth = GroundTruth(
            lateral_offset_m=float(lateral),
            heading_error_rad=heading_error(rot.yaw, lane_yaw),
            route_s_m=float(proj.s_m),
            route_length_m=float(self.route_length_m),
            route_ahead=route_ahead,
            lane_width_m=lane_width,
            speed_limit_mps=limit_mps,
            lead_distance_m=lead_d,
            lead_speed_mps=lead_v,
            expert_steer=expert,
            semantic=semantic,
            red_light_distance_m=self._lights.red_ahead(proj.s_m, half),
            outside_route_lanes=outside_route_lanes(s.map, loc, proj.yaw_deg),
        )
        if s.spectator is not None:
            s.spectator.set_transform(carla.Transform(
                carla.Location(x=loc.x - SPECTATOR_BACK_M * fwd.x, y=loc.y - SPECTATOR_BACK_M * fwd.y,
                               z=loc.z + SPECTATOR_UP_M),
                carla.Rotation(pitch=SPECTATOR_PITCH_DEG, yaw=rot.yaw)))
        self.info = CarlaInfo(carla_frame=frame, off_road=off_road(s.map, loc), on_route_lane=abs(lateral) <= 0.5 * lane_width,
                              route_completion_pct=route_completion_pct(proj.s_m, self.route_length_m),
                              recorder_file=self.recorder_file)
        return Observation(
            frame=self._steps, sim_time_s=self._steps * scenario.dt_s, dt_s=scenario.dt_s, image=image,
            speed_mps=speed, pose=Pose(loc.x, loc.y, loc.z, rot.yaw, rot.pitch, rot.roll), truth=truth,
            collisions=tuple(collisions), lane_invasions=tuple(invasions), weather=self.weather_name,
            done=bool(proj.s_m >= self.route_length_m or self._deviation.failed), infractions=tuple(infractions),
            command=self._lane_change(self.route.command_at(proj.s_m), lateral))
