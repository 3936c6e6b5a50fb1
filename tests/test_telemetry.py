"""DriveTelemetry: the HUD (live, from the runner) and the videos (from the drive log)
read the same numbers for the same frame."""

from __future__ import annotations

import pytest

from carla_agent.drive.agent import ExpertAgent
from carla_agent.drive.runner import RunnerHook
from carla_agent.drive.session import drive_scenario
from carla_agent.drive.telemetry import DriveTelemetry
from carla_agent.recording.batch import make_recorder
from carla_agent.recording.drive_log import DriveLog
from carla_agent.sim.scenario import load_scenario


class Capture(RunnerHook):
    def __init__(self) -> None:
        self.live = []

    def on_step(self, record) -> None:
        self.live.append(DriveTelemetry.from_record(record))


def test_the_log_gives_back_what_the_hud_saw(tmp_path):
    scenario = load_scenario("lead_vehicle")
    capture = Capture()
    recorder = make_recorder(tmp_path)
    recorder.autostart = True
    drive_scenario(scenario, ExpertAgent(scenario.target_speed_mps), backend="embedded", duration_s=1.5,
                   hooks=[capture, recorder])
    log = DriveLog.open(recorder.runs[0])
    assert len(capture.live) == len(log) > 20
    for i, live in enumerate(capture.live):
        logged = DriveTelemetry.from_row(log.row(i))
        assert logged.row == i
        for name in ("frame", "interventions"):
            assert getattr(logged, name) == getattr(live, name)
        for name in ("sim_time_s", "speed_mps", "steer_predicted", "steer_applied", "throttle", "brake",
                     "lateral_offset_m"):
            assert getattr(logged, name) == pytest.approx(getattr(live, name), abs=1e-5), name
        assert (logged.steer_expert is None) == (live.steer_expert is None)
    assert any(t.speed_mps > 1.0 for t in capture.live) and any(t.throttle > 0 for t in capture.live)


def test_a_row_being_written_reads_empty_fields_as_missing():
    """The live video reads rows before they are parsed back: a backend with no expert (the
    Leaderboard, CARLA without a route) leaves ``""`` there, which must not stop the video."""
    from carla_agent.recording.drive_log.rows import make_row
    from carla_agent.drive.runner import StepRecord
    from carla_agent.drive.agent import Decision
    from carla_agent.control import VehicleControl
    from carla_agent.sim.observation import GroundTruth, Observation, Pose
    import numpy as np

    truth = GroundTruth(lateral_offset_m=0.2, heading_error_rad=0.0, route_s_m=3.0, route_length_m=10.0,
                        route_ahead=np.zeros((1, 2), np.float32))
    obs = Observation(7, 0.35, 0.05, np.zeros((4, 4, 3), np.uint8), 4.5, Pose(0.0, 0.0), truth)
    record = StepRecord(obs, Decision(VehicleControl(steer=0.1), 0.1), VehicleControl(steer=0.1), 7, 0, 100.0, 20.0)
    row = make_row(7, record, 1.0)
    assert row["expert_steer"] == ""
    t = DriveTelemetry.from_row(row)
    assert t.steer_expert is None and t.speed_mps == 4.5 and t.lateral_offset_m == pytest.approx(0.2)
