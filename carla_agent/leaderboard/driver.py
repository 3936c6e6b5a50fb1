"""One Leaderboard route driven by the steering network, with the HUD and the drive log.

The Leaderboard calls the agent once per tick; :class:`RouteDriver` turns each call
into what the project's own runner does on a tick: an
:class:`~carla_agent.sim.observation.Observation` built from the sensors, the
:class:`~carla_agent.drive.agent.NetworkAgent`'s decision, and the runner hooks
(the HUD, the recorder) fed a :class:`~carla_agent.drive.runner.StepRecord`. So a
Leaderboard route leaves the same drive log, attention video and report as
``python -m carla_agent record``.

What the network sees: the front camera, the speedometer and the route command
(:mod:`~carla_agent.leaderboard.route_follower`, localised by GNSS when the agent has
it, by odometry otherwise), and the lane change back to the plan's lane when the GNSS
offset from it (low-passed) passes 2 m. The drive log's ground truth (the car's pose,
its offset from the route) comes from ``truth_pose`` when the caller has one (the
evaluator's own view of the hero, as CARLA's criteria use): it is recorded, never
driven on (a test holds it so).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from carla_agent.control import VehicleControl
from carla_agent.drive.agent import NetworkAgent
from carla_agent.drive.metrics import DriveMetrics, MetricsTracker
from carla_agent.drive.runner import DriveContext, RunnerHook, StepRecord, StopDrive
from carla_agent.leaderboard.config import AgentConfig
from carla_agent.leaderboard.route_follower import RouteFollower
from carla_agent.sim.routing.lane_change import LaneChangeCommand
from carla_agent.sim.observation import GroundTruth, Observation, Pose
from carla_agent.sim.scenario import EgoSpec, Scenario

log = logging.getLogger(__name__)

#: [m] the route counts as driven when the car is this close to its end.
END_TOLERANCE_M = 3.0
#: [m] a GNSS fix farther than this from where odometry puts the car is not used.
GNSS_GATE_M = 15.0
#: [s] time constant of the low-pass on the GNSS offset from the plan (see ``_smoothed_offset``).
OFFSET_TAU_S = 0.25
AHEAD_M = np.array([2.0, 4.0, 6.0, 8.0, 10.0, 14.0, 18.0, 24.0, 30.0])


@dataclass
class LeaderboardWorld:
    """What the hooks read from a simulator (:class:`DriveContext.sim`) when the Leaderboard owns
    the world: a name for the drive log, no weather control."""

    host: str = "localhost"
    port: int = 2000
    name: str = "carla"
    server_version: Optional[str] = None
    recorder_file: Optional[str] = None

    def options(self) -> dict:
        return {"host": self.host, "port": self.port, "driver": "leaderboard"}


@dataclass(frozen=True)
class SensorFrame:
    """One tick of the agent's sensors, as the Leaderboard hands them over.

    Attributes:
        frame: the server's frame id.
        timestamp_s: [s] game time.
        image_rgb: ``(H, W, 3)`` uint8 RGB front camera.
        speed_mps: [m/s] speedometer.
        xy_m: the GNSS fix in CARLA's frame (x, y metres), or None.
        yaw_deg: CARLA yaw from the IMU's compass, or None.
        truth_pose: ``(x_m, y_m, yaw_deg)`` of the hero from the evaluator, for the log only, or None.
        lead: ``(gap_m, speed_mps)`` of the car ahead from the radar
            (:func:`~carla_agent.leaderboard.radar.lead_from_radar`), or ``(None, None)``.
    """

    frame: int
    timestamp_s: float
    image_rgb: np.ndarray
    speed_mps: float
    xy_m: Optional[Tuple[float, float]] = None
    yaw_deg: Optional[float] = None
    truth_pose: Optional[Tuple[float, float, float]] = None
    lead: Tuple[Optional[float], Optional[float]] = (None, None)


class RouteDriver:
    """Drives one route (see the module docstring); :meth:`close` ends it and writes the video.

    Args:
        config: the agent's configuration.
        points_xy_m: ``(N, 2)`` the dense global plan in CARLA's frame, metres.
        options: ``(N,)`` its road options.
        name: the run's scenario name in the drive log.
        world: what the drive log says about the server.
        model: a loaded steering model (default: ``config.model``).
        hooks: extra runner hooks (tests).
    """

    def __init__(self, config: AgentConfig, points_xy_m: np.ndarray, options: Sequence, name: str = "leaderboard_route",
                 world: Optional[LeaderboardWorld] = None, model: Any = None, hooks: Sequence[RunnerHook] = ()) -> None:
        from carla_agent.network.steering_model import SteeringModel
        from carla_agent.network.tf_threads import set_tf_threads

        self.config = config
        self.follower = RouteFollower(points_xy_m, options)
        self._lane_change = LaneChangeCommand()  # one driver per route: a fresh rule each route
        self.world = world or LeaderboardWorld()
        if model is None:
            set_tf_threads(config.tf_threads)
            model = SteeringModel.load(config.model)
        self.model = model
        self.scenario = Scenario(name=name, description="a CARLA Leaderboard route", backend="carla",
                                 camera=config.camera, ego=EgoSpec(target_speed_kmh=config.target_speed_kmh),
                                 duration_s=3600.0, source="<leaderboard>")
        explainer = None
        if config.hud or config.record:
            from carla_agent.saliency import make_explainer

            explainer = make_explainer(model, config.method, output=model.steer_index)
        self.agent = NetworkAgent(model, self.scenario.target_speed_mps, explainer=explainer)
        self.tracker = MetricsTracker(name, self.world.name)
        self.hooks: List[RunnerHook] = list(hooks)
        self.recorder = None
        self.hud = None
        if config.record:
            from carla_agent.recording.batch import make_recorder

            self.recorder = make_recorder(config.out_dir(), live_video=True, model=model)
            self.recorder.autostart = True
            self.hooks.append(self.recorder)
        if config.hud:
            from carla_agent.hud import make_hud

            self.hud = make_hud(model, self.scenario, method=config.method, res=config.hud_res, hold_at_end=False)
            self.hooks.insert(0, self.hud)
        self._tick = 0
        self._offset_m: Optional[float] = None
        self._last_t: Optional[float] = None
        self._t_s = 0.0
        self._started = False
        self._closed = False
        self.metrics: Optional[DriveMetrics] = None

    def step(self, sensors: SensorFrame) -> VehicleControl:
        """The control for this tick."""
        dt = 0.05 if self._last_t is None else max(sensors.timestamp_s - self._last_t, 1e-3)
        self._last_t = sensors.timestamp_s
        obs = self._observe(sensors, dt)
        if not self._started:
            context = DriveContext(self.scenario, 0, self.scenario.duration_s, 1.0, self.world, self.agent,
                                   self.tracker.result)
            for hook in self.hooks:
                hook.on_start(context, obs)
            self._started = True
            self.agent.reset()
        else:
            self.tracker.update(obs)
        decision = self.agent.run_step(obs)
        record = StepRecord(obs, decision, decision.control, self._tick, 0, self.tracker.autonomy_pct, 0.0,
                            self.tracker.network_s)
        for hook in list(self.hooks):
            try:
                hook.on_step(record)
            except StopDrive:  # the HUD's window closed (ESC): the route goes on without it
                self._drop_hud()
        self._tick += 1
        return decision.control

    def _observe(self, s: SensorFrame, dt_s: float) -> Observation:
        travelled = s.speed_mps * dt_s
        # Driven on the sensors only (GNSS, speedometer, compass): the evaluator's view of the hero
        # (truth_pose) is privileged, so it goes into the drive log and nowhere else.
        pose_xy = self._gnss_fix(s.xy_m, travelled)
        fix = self.follower.update(pose_xy, travelled)
        px, py = pose_xy if pose_xy is not None else self.follower.position_at(fix.s_m)
        yaw = s.yaw_deg if s.yaw_deg is not None else self._route_yaw(fix.s_m)
        sensed = self._smoothed_offset(fix.lateral_offset_m, dt_s)
        if s.truth_pose is not None:
            x, y, yaw_log = s.truth_pose
            offset = self.follower.offset_of((x, y))
        else:
            x, y, yaw_log = px, py, yaw
            offset = 0.0 if math.isnan(sensed) else sensed
        truth = GroundTruth(lateral_offset_m=offset, heading_error_rad=0.0, route_s_m=fix.s_m,
                            route_length_m=self.follower.length_m,
                            route_ahead=self.follower.ahead(px, py, yaw, AHEAD_M),
                            speed_limit_mps=self.scenario.target_speed_mps,
                            lead_distance_m=s.lead[0], lead_speed_mps=s.lead[1])
        # A lane off the plan's lane (a wrong turn, or the plan changing lanes): asked to change back, as
        # the other backends do; without a position fix the offset is unknown and the plan's command stands.
        command = fix.command if math.isnan(sensed) else self._lane_change(fix.command, sensed)
        extra = {"command": int(command)} if "command" in {f.name for f in dataclasses.fields(Observation)} else {}
        if self._tick:
            self._t_s += dt_s
        return Observation(frame=self._tick, sim_time_s=self._t_s, dt_s=dt_s, image=s.image_rgb, speed_mps=float(s.speed_mps),
                           pose=Pose(float(x), float(y), 0.0, float(yaw_log)), truth=truth,
                           done=fix.s_m >= self.follower.length_m - END_TOLERANCE_M, **extra)

    def _smoothed_offset(self, offset_m: float, dt_s: float) -> float:
        """[m] the GNSS offset from the plan, low-passed (time constant :data:`OFFSET_TAU_S`), or NaN
        without a fix. The Leaderboard's GNSS has 5e-6 degrees of noise (about 0.56 m) per reading,
        which the lane-change rule's 2 m would meet every few thousand ticks; smoothed, about
        0.17 m (and 0.25 s late)."""
        if math.isnan(offset_m):
            return float("nan")
        if self._offset_m is None:
            self._offset_m = offset_m
        else:
            a = dt_s / (OFFSET_TAU_S + dt_s)
            self._offset_m += a * (offset_m - self._offset_m)
        return self._offset_m

    def _gnss_fix(self, xy_m: Optional[Tuple[float, float]], travelled_m: float) -> Optional[Tuple[float, float]]:
        """The GNSS fix in the route's frame, or None when it cannot be trusted.

        The Leaderboard converts the plan to GNSS with the Mercator formula of CARLA's
        earlier releases, where latitude falls as y grows; CARLA 0.9.16's own
        ``transform_to_geolocation`` (and a server built on it) has latitude rise with y.
        So a reading converted back with the plan's formula lands at ``(x, y)`` or at
        ``(x, -y)``: the one near where odometry puts the car is taken, within
        :data:`GNSS_GATE_M`; otherwise the car goes on by odometry.
        """
        if xy_m is None:
            return None
        px, py = self.follower.position_at(self.follower.s_now_m + travelled_m)
        best = min(((xy_m[0], xy_m[1]), (xy_m[0], -xy_m[1])), key=lambda c: math.hypot(c[0] - px, c[1] - py))
        return best if math.hypot(best[0] - px, best[1] - py) <= GNSS_GATE_M else None

    def _route_yaw(self, s_m: float) -> float:
        f = self.follower
        k = int(np.clip(np.searchsorted(f.s_m, s_m), 1, len(f.s_m) - 1))
        d = f.points_xy_m[k] - f.points_xy_m[k - 1]
        return math.degrees(math.atan2(d[1], d[0]))

    def _drop_hud(self) -> None:
        if self.hud is not None:
            self.hooks.remove(self.hud)
            self.hud.close()
            self.hud = None

    def close(self, interrupted: bool = False) -> Optional[Path]:
        """End the route: every hook's ``on_end``, then (recording) the attention video and the
        report. Returns the run folder when one was recorded. Safe to call twice."""
        if self._closed:
            return self.recorder.run_dir if self.recorder is not None else None
        self._closed = True
        self.metrics = self.tracker.result()
        for hook in self.hooks:
            try:
                hook.on_end(self.metrics, interrupted)
            except Exception:  # one broken hook must not lose another's data
                log.exception("hook %s failed in on_end", type(hook).__name__)
        if self.hud is not None:
            self.hud.close()
            self.hud = None
        run_dir = self.recorder.run_dir if self.recorder is not None else None
        if run_dir is not None and self.config.video and self._tick:
            from carla_agent.recording.batch import finish_run

            try:
                finish_run(run_dir, (self.config.method,), self.model, progress=False)
            except Exception:  # the drive log is kept whatever the video does
                log.exception("%s: the attention video could not be rendered", run_dir)
        return run_dir


__all__ = ["LeaderboardWorld", "RouteDriver", "SensorFrame"]
