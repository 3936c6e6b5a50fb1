"""``collect`` on the CARLA backend (through ``carla_double``): labels in the car's own steering
scale, and aligned with the image of their tick when the Traffic Manager's autopilot is the expert."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

pytest.importorskip("carla")

import carla_double  # noqa: E402
from carla_double import FakeServer, make_double_simulator  # noqa: E402

from carla_agent.drive.agent import ExpertAgent  # noqa: E402
from carla_agent.drive.expert import Expert  # noqa: E402
from carla_agent.drive.runner import Runner, RunnerHook  # noqa: E402
from carla_agent.network.collect import _WriteFrames, collect  # noqa: E402
from carla_agent.network.dataset import DatasetWriter, load_dataset  # noqa: E402
from carla_agent.network.preprocess import Preprocessing  # noqa: E402
from carla_agent.sim.observation import GroundTruth, Observation, Pose  # noqa: E402
from carla_agent.sim.scenario import parse_scenario  # noqa: E402

#: CARLA's cars steer their front wheels about 70 degrees at steer = 1 (the embedded car: 30).
CARLA_MAX_STEER_DEG = 70.0
#: The double's road: a 60 m radius left curve from x = 300; lane -1 is 1.75 m outside the reference line.
CURVE_RADIUS_M = 60.0 + 1.75


def curve_scenario(expert: str = "pure_pursuit") -> dict:
    """From spawn point 10 (x = 260 m) into the double's curve at 36 km/h."""
    return {"name": "curve", "backend": "carla", "road": {"segments": [{"line": 100}]},
            "camera": {"image_size_x": 64, "image_size_y": 48}, "duration_s": 12.0, "ego": {"target_speed_kmh": 36},
            "carla": {"spawn_point": 10, "route_length_m": 200, "settle_ticks": 0, "semantic_camera": False,
                      "spectator": False, "expert": expert}}


def test_the_expert_labels_with_the_backends_expert_steer_when_it_gives_one():
    ahead = np.array([[d, 0.02 * d * d] for d in range(2, 30, 2)], np.float32)
    truth = dict(lateral_offset_m=0.0, heading_error_rad=0.0, route_s_m=0.0, route_length_m=100.0, route_ahead=ahead)
    obs = Observation(0, 0.0, 0.05, np.zeros((4, 4, 3), np.uint8), 10.0, Pose(0.0, 0.0), GroundTruth(**truth))
    own, _ = Expert().run_step(obs)
    assert own > 0.05, "no expert_steer: its own pure pursuit (30 degree car)"
    label, applied = Expert().run_step(Observation(0, 0.0, 0.05, obs.image, 10.0, obs.pose,
                                                   GroundTruth(**truth, expert_steer=own / 2.3)))
    assert (label, applied) == (pytest.approx(own / 2.3), pytest.approx(own / 2.3))


def test_collect_on_carla_steers_in_the_cars_own_scale(tmp_path, monkeypatch):
    monkeypatch.setattr(carla_double, "MAX_STEER_DEG", CARLA_MAX_STEER_DEG)
    path = tmp_path / "curve.yaml"
    path.write_text(yaml.safe_dump(curve_scenario()))
    server = FakeServer()
    stats = collect([str(path)], tmp_path / "data", episodes=1, noise=None, backend="carla",
                    backend_options={"client_factory": server.client, "timeout_s": 2.0}, progress=False)
    assert stats["interventions"] == 0 and server.clean(), server.state()
    a = load_dataset(tmp_path / "data").arrays
    steady = slice(-80, None)  # the last 4 s, well inside the curve
    needed = -math.degrees(math.atan(carla_double.WHEELBASE_M / CURVE_RADIUS_M)) / CARLA_MAX_STEER_DEG
    assert np.mean(a["steer"][steady]) == pytest.approx(needed, rel=0.1)
    # With the embedded car's 30 degree scale the labels asked 2.3x too much for each state: the
    # car settled 0.17 m inside the curve, so the data taught steering for a state never centred.
    assert np.abs(a["lateral_offset_m"][steady]).max() < 0.08


def test_autopilot_labels_are_written_with_the_image_of_their_tick(tmp_path):
    class Expected(RunnerHook):
        """The steer the double's autopilot chooses for the state each observation shows."""

        def __init__(self, server):
            self.server, self.steer = server, []

        def on_step(self, record):
            ego = next(a for a in self.server.alive() if a._attrs.get("role_name") == "hero")
            self.steer.append(self.server._autopilot_control(ego).steer)

    class Bar:
        def update(self, n):
            pass

    server = FakeServer()
    sc = parse_scenario(curve_scenario("autopilot"), "curve.yaml")
    expected = Expected(server)
    with make_double_simulator(server) as sim, DatasetWriter(tmp_path / "data", Preprocessing()) as writer:
        Runner(sim, ExpertAgent(sc.target_speed_mps), sc, duration_s=8.0,
               hooks=[expected, _WriteFrames(writer, Preprocessing(), 0, 8.0, Bar())]).run()
        assert sim.expert_lag_ticks == 1
    labels = load_dataset(tmp_path / "data").arrays["steer"]
    want = np.array(expected.steer[:len(labels)], np.float32)
    assert len(labels) == len(expected.steer) - 1, "the last frame waits for a label that never comes"
    assert np.abs(np.diff(want)).max() > 1e-3, "the steer changes along the drive (the test can see a lag)"
    assert np.abs(labels - want).max() < 1e-6, "frame N's label is the steer chosen for frame N's state"
