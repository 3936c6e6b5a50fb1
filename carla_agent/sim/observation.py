"""What a simulator backend returns each tick.

All backends return the same typed :class:`Observation`, so the runner, the
metrics, the expert, the HUD and the recorder never know which simulator is
behind them.

Frames: camera images are ``uint8`` arrays of shape ``(H, W, 3)`` in RGB order.
Poses are in CARLA's world frame: metres, left-handed (x forward/east, y right/
south, z up), yaw in degrees clockwise seen from above. The embedded
simulator works in OpenDRIVE's right-handed frame internally and negates y and
yaw at this boundary, exactly as CARLA does with OpenDRIVE maps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Optional, Tuple

import numpy as np

from carla_agent.sim.routing.road_option import RoadOption


class SemanticClass(IntEnum):
    """Labels of the semantic image, shared by all backends.

    The CARLA backend maps CityScapes ids onto these.
    """

    UNLABELED = 0
    ROAD = 1
    LANE_MARKING = 2
    SHOULDER = 3  # shoulder lanes and curbs
    TERRAIN = 4  # grass, dirt, vegetation on the ground, trees
    SKY = 5
    VEHICLE = 6
    OBJECT = 7  # poles, signs, buildings
    SIDEWALK = 8  # sidewalks and their curbs (towns)
    TRAFFIC_LIGHT = 9  # traffic lights: pole, arm and head


@dataclass(frozen=True)
class Pose:
    """Position and orientation in CARLA's world frame (see module docstring)."""

    x_m: float
    y_m: float
    z_m: float = 0.0
    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    roll_deg: float = 0.0


@dataclass(frozen=True)
class CollisionEvent:
    """The ego touched something during the last tick.

    Attributes:
        frame: frame id of the tick in which it happened.
        other: what was hit, e.g. ``"vehicle.parked"`` or ``"static.tree"``.
        other_kind: ``"vehicle"``, ``"static"`` or ``"pedestrian"`` (leaderboard classes), or
            ``"other"``: a contact the leaderboard does not penalise (a curb or sidewalk).
        impulse_ns: magnitude of the normal impulse in N*s (estimated by the embedded sim).
        other_id: the actor's id; 0 for the map's static geometry (CARLA gives every static
            object id 0), -1 when the backend has no ids (hits are then told apart by ``other``).
    """

    frame: int
    other: str
    other_kind: str
    impulse_ns: float
    other_id: int = -1


#: What :class:`CollisionEvent.other_kind` may be.
COLLISION_KINDS = ("vehicle", "static", "pedestrian", "other")


@dataclass(frozen=True)
class InfractionEvent:
    """A traffic rule the ego broke during the last tick (besides collisions).

    Attributes:
        frame: frame id of the tick.
        kind: ``"red_light"`` (the car's rear crossed the stop line of a red light), ``"stop_sign"`` or
            ``"route_deviation"`` (the leaderboard's InRouteTest failed: the route ends).
        other_id: the traffic light's or sign's actor id.
    """

    frame: int
    kind: str
    other_id: int = -1


@dataclass(frozen=True)
class LaneInvasionEvent:
    """The ego's footprint crossed one or more lane markings during the last tick.

    Attributes:
        frame: frame id of the tick.
        markings: the crossed marking types, CARLA names: ``"Solid"``, ``"Broken"``,
            ``"SolidSolid"``, ...
    """

    frame: int
    markings: Tuple[str, ...]


@dataclass(frozen=True)
class GroundTruth:
    """What only the simulator knows. Used for metrics, the expert and saliency checks.

    Attributes:
        lateral_offset_m: signed distance from the centre of the ego's lane,
            positive when the car is right of the centre (CARLA's right vector).
        heading_error_rad: car yaw minus lane yaw, wrapped to [-pi, pi];
            positive when the car points right of the lane direction.
        route_s_m: distance travelled along the route's reference line.
        route_length_m: total route length.
        route_ahead: ``(N, 2)`` float32, lane-centre points ahead of the car in
            the vehicle frame (x forward, y right, metres), at increasing
            distance. The expert's pure pursuit follows them.
        lane_width_m: width of the ego's lane.
        speed_limit_mps: the route's speed limit.
        lead_distance_m: bumper-to-bumper gap to the next vehicle in the ego's
            lane ahead, or None when there is none within 100 m.
        lead_speed_mps: that vehicle's speed, or None.
        expert_steer: the steering an expert would apply now, in [-1, 1], when
            the backend knows it; None otherwise.
        semantic: ``(H, W)`` uint8 :class:`SemanticClass` labels aligned with
            the camera frame, or None when the backend has no semantic camera.
        red_light_distance_m: metres from the front bumper to the stop line of the next red
            traffic light on the route (within 60 m), or None; the agents stop there.
        outside_route_lanes: the leaderboard's test: the ego's centre is off every driving
            lane (more than half a lane width + 0.5 m from its centre) or in a lane going
            against the route; a lane change the same way is not. None when the backend
            cannot tell (criteria then use ``|lateral_offset_m| > lane_width_m / 2``).
    """

    lateral_offset_m: float
    heading_error_rad: float
    route_s_m: float
    route_length_m: float
    route_ahead: np.ndarray
    lane_width_m: float = 3.5
    speed_limit_mps: float = 13.9
    lead_distance_m: Optional[float] = None
    lead_speed_mps: Optional[float] = None
    expert_steer: Optional[float] = None
    semantic: Optional[np.ndarray] = None
    red_light_distance_m: Optional[float] = None
    outside_route_lanes: Optional[bool] = None


@dataclass(frozen=True)
class Observation:
    """One tick of a backend.

    Attributes:
        frame: ticks since ``reset`` (0 for the first observation), +1 per step; the CARLA
            backend keeps the server's own frame id in ``CarlaSimulator.info``.
        sim_time_s: simulation time since the episode began.
        dt_s: the fixed time step.
        image: ``(H, W, 3)`` uint8 RGB front-camera frame.
        speed_mps: ego speed, >= 0.
        pose: ego pose.
        truth: ground truth for metrics and checks.
        collisions: collision events of the last tick.
        lane_invasions: lane-invasion events of the last tick.
        infractions: red lights run (and stop signs) during the last tick.
        weather: name of the current weather preset.
        done: the route is finished (the end of the road was reached).
        command: the route's high-level command, a :class:`~carla_agent.sim.routing.road_option.RoadOption`
            value (CARLA's: 1 LEFT, 2 RIGHT, 3 STRAIGHT, 4 LANEFOLLOW, 5 and 6 lane changes): on a town route, the
            command of the junction ahead from ``COMMAND_AHEAD_M`` before its entry until its exit,
            LANEFOLLOW elsewhere and on single roads; outside junctions, CHANGELANELEFT (5) or
            CHANGELANERIGHT (6) while the car is a lane off the route's lane
            (:mod:`carla_agent.sim.routing.lane_change`). An agent in CARLA has it from the global plan.
    """

    frame: int
    sim_time_s: float
    dt_s: float
    image: np.ndarray
    speed_mps: float
    pose: Pose
    truth: GroundTruth
    collisions: Tuple[CollisionEvent, ...] = field(default_factory=tuple)
    lane_invasions: Tuple[LaneInvasionEvent, ...] = field(default_factory=tuple)
    weather: str = "clear_noon"
    done: bool = False
    infractions: Tuple[InfractionEvent, ...] = field(default_factory=tuple)
    command: int = int(RoadOption.LANEFOLLOW)
