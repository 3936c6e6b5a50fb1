"""carla_agent's steering network as a CARLA Leaderboard agent (SENSORS track).

Give this file to the Leaderboard's evaluator (it loads agents by file path)::

    python ${LEADERBOARD_ROOT}/leaderboard/leaderboard_evaluator.py \\
        --agent $(python -m carla_agent leaderboard-agent-path) --agent-config agent.yaml ...

and the evaluator calls, for each route: the constructor, ``set_global_plan``,
``setup``, ``sensors``, ``run_step`` once per tick, then ``destroy``. The YAML
(:mod:`carla_agent.leaderboard.config`) picks the model, the saliency method, the HUD
and recording. Only this module imports the Leaderboard; without it on the path the
import fails with one line saying how to get it.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

try:  # the evaluator imports this file by path, with only its folder on sys.path
    import carla_agent  # noqa: F401
except ImportError:  # a checkout that is not installed: its root is three folders up
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

try:
    from leaderboard.autoagents.autonomous_agent import AutonomousAgent, Track
except ImportError as _exc:
    raise ImportError(f"carla_agent's Leaderboard agent needs the CARLA Leaderboard and ScenarioRunner on "
                      f"PYTHONPATH (see docs/leaderboard.md): {_exc}") from None

import numpy as np

from carla_agent.leaderboard.config import load_agent_config
from carla_agent.leaderboard.driver import LeaderboardWorld, RouteDriver, SensorFrame
from carla_agent.leaderboard.geo import gps_to_location, solve_reference
from carla_agent.leaderboard.radar import lead_from_radar
from carla_agent.sim.carla_backend.client import import_carla

CAMERA_ID, GNSS_ID, IMU_ID, SPEED_ID, RADAR_ID = "rgb_front", "gnss", "imu", "speed", "radar"
#: [m] the radar sits here on the car (x ahead of its centre, z up); the front bumper is 2.45 m ahead.
RADAR_X_M, RADAR_Z_M, BUMPER_X_M = 2.3, 1.0, 2.45


def get_entry_point() -> str:
    return "PilotNetAgent"


class PilotNetAgent(AutonomousAgent):
    """The evaluator's agent: camera + GNSS + IMU + speedometer in, ``carla.VehicleControl`` out."""

    def __init__(self, carla_host, carla_port, debug=False):
        super().__init__(carla_host, carla_port, debug)
        self._host, self._port = carla_host, int(carla_port)
        self.config = None
        self.driver = None
        self._model = None
        self._dense = None
        self._geo_ref = None

    def setup(self, path_to_conf_file):
        from carla_agent.network.steering_model import SteeringModel
        from carla_agent.network.tf_threads import set_tf_threads

        self.track = Track.SENSORS
        self.config = load_agent_config(path_to_conf_file)
        set_tf_threads(self.config.tf_threads)
        self._model = SteeringModel.load(self.config.model)  # here: the evaluator times setup apart

    def sensors(self):
        cam = self.config.camera
        return [
            {"type": "sensor.camera.rgb", "x": cam.x_m, "y": cam.y_m, "z": cam.z_m, "roll": 0.0,
             "pitch": cam.pitch_deg, "yaw": 0.0, "width": cam.image_size_x, "height": cam.image_size_y,
             "fov": cam.fov, "id": CAMERA_ID},
            {"type": "sensor.other.gnss", "x": 0.0, "y": 0.0, "z": 0.0, "id": GNSS_ID},
            {"type": "sensor.other.imu", "x": 0.0, "y": 0.0, "z": 0.0, "roll": 0.0, "pitch": 0.0, "yaw": 0.0,
             "id": IMU_ID},
            {"type": "sensor.other.radar", "x": RADAR_X_M, "y": 0.0, "z": RADAR_Z_M, "roll": 0.0, "pitch": 0.0,
             "yaw": 0.0, "horizontal_fov": 30, "vertical_fov": 10, "id": RADAR_ID},
            {"type": "sensor.speedometer", "reading_frequency": 20, "id": SPEED_ID},
        ]

    def set_global_plan(self, global_plan_gps, global_plan_world_coord):
        super().set_global_plan(global_plan_gps, global_plan_world_coord)
        points = np.array([[t.location.x, t.location.y] for t, _ in global_plan_world_coord], dtype=np.float64)
        self._dense = (points, [o for _, o in global_plan_world_coord])
        gps0 = global_plan_gps[0][0]
        self._geo_ref = solve_reference(gps0["lat"], gps0["lon"], points[0, 0], points[0, 1])

    def run_step(self, input_data, timestamp):
        if self.driver is None:
            self.driver = RouteDriver(self.config, *self._dense, world=LeaderboardWorld(self._host, self._port),
                                      model=self._model)
        frame, bgra = input_data[CAMERA_ID]
        xy = yaw = None
        if GNSS_ID in input_data and self._geo_ref is not None:
            lat, lon = input_data[GNSS_ID][1][:2]
            xy = gps_to_location(*self._geo_ref, float(lat), float(lon))
        if IMU_ID in input_data:
            compass = float(input_data[IMU_ID][1][-1])
            yaw = None if math.isnan(compass) else math.degrees(compass) - 90.0  # compass 0: north (-y)
        speed = float(input_data[SPEED_ID][1]["speed"]) if SPEED_ID in input_data else 0.0
        radar = input_data[RADAR_ID][1] if RADAR_ID in input_data else None
        lead = lead_from_radar(radar, speed, RADAR_X_M - BUMPER_X_M)
        control = self.driver.step(SensorFrame(int(frame), float(timestamp), np.ascontiguousarray(bgra[:, :, 2::-1]),
                                               speed, xy, yaw, _hero_pose(), lead))
        carla = import_carla()
        return carla.VehicleControl(throttle=float(control.throttle), steer=float(control.steer),
                                    brake=float(control.brake), hand_brake=bool(control.hand_brake),
                                    reverse=bool(control.reverse))

    def destroy(self):
        if self.driver is not None:
            self.driver.close()
            self.driver = None


def _hero_pose():
    """The hero's pose from ScenarioRunner's data provider, for the drive log's ground truth only."""
    try:
        from srunner.scenariomanager.carla_data_provider import CarlaDataProvider

        hero = CarlaDataProvider.get_hero_actor()
        if hero is None:
            return None
        t = CarlaDataProvider.get_transform(hero) or hero.get_transform()
        return float(t.location.x), float(t.location.y), float(t.rotation.yaw)
    except Exception:  # no ScenarioRunner, no hero yet: the log's truth comes from GNSS
        return None
