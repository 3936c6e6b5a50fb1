"""The shipped model drives, and its attention sits on the road, not the sky."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from carla_agent.drive.agent import NetworkAgent
from carla_agent.resources import DEFAULT_MODEL
from carla_agent.control import VehicleControl
from carla_agent.sim.embedded.simulator import EmbeddedSimulator
from carla_agent.sim.observation import SemanticClass
from carla_agent.drive.runner import Runner
from carla_agent.sim.scenario import load_scenario

pytestmark = pytest.mark.skipif(not Path(DEFAULT_MODEL).exists(), reason="no shipped model yet")


@pytest.fixture(scope="module")
def model():
    from carla_agent.network.steering_model import SteeringModel

    return SteeringModel.load(DEFAULT_MODEL)


def test_shipped_model_is_small_and_has_its_preprocessing(model):
    assert Path(DEFAULT_MODEL).stat().st_size < 5 * 1024 * 1024
    assert model.preprocessing.color_space == "yuv"
    assert model.input_shape == (66, 200, 3)


@pytest.mark.parametrize("name, seconds", [("gentle_curves", 25.0), ("s_curve_fog", 20.0)])
def test_shipped_model_keeps_its_lane(model, name, seconds):
    sc = load_scenario(name)
    with EmbeddedSimulator() as sim:
        m = Runner(sim, NetworkAgent(model, sc.target_speed_mps), sc, duration_s=seconds).run()
    assert m.interventions == 0
    assert m.autonomy_pct >= 98.0
    assert m.mean_abs_offset_m <= 0.35
    assert m.collisions == 0


@pytest.fixture(scope="module")
def curve_obs():
    return curve_frames()


def curve_frames(n=6):
    """Frames on the first curve of gentle_curves, driven by the expert."""
    from carla_agent.drive.agent import ExpertAgent

    sc = load_scenario("gentle_curves")
    out = []
    with EmbeddedSimulator() as sim:
        agent = ExpertAgent(sc.target_speed_mps)
        obs = sim.reset(sc, seed=0)
        while obs.sim_time_s < 9.0 + 0.5 * n:
            obs = sim.step(agent.run_step(obs).control)
            if obs.sim_time_s >= 9.0 and obs.frame % 10 == 0:
                out.append(obs)
    return out


@pytest.mark.parametrize("method", ["visual_backprop", "gradcam", "gradient"])
def test_attention_is_on_road_and_markings_not_sky(model, method, curve_obs):
    """On a left curve: most of the map's mass is on the road, lane markings draw far more
    than their area share, and nothing sits on the sky or the verge beyond its share.

    Grad-CAM explains 'left' (the curve's direction): with the 5-degree dead band, the
    gentle curve's predicted angle would make 'auto' explain 'straight'.
    """
    from carla_agent.saliency import make_explainer

    target = "left" if method == "gradcam" else "auto"
    explain = make_explainer(model, method, output=model.steer_index, target=target)
    prep = model.preprocessing
    acc = np.zeros(5)
    for obs in curve_obs:
        sal = np.abs(explain(prep(obs.image)[None]).maps[0]).astype(np.float64)
        sal /= sal.sum() + 1e-12
        t, b, l, r = prep.crop_box(obs.image.shape[:2])
        labels = cv2.resize(obs.truth.semantic[t:b, l:r], (prep.width, prep.height),
                            interpolation=cv2.INTER_NEAREST)
        marks = labels == SemanticClass.LANE_MARKING
        road = np.isin(labels, [SemanticClass.ROAD, SemanticClass.LANE_MARKING, SemanticClass.SHOULDER])
        sky = labels == SemanticClass.SKY
        acc += [sal[road].sum(), sal[marks].sum(), marks.mean(), sal[sky].sum(), road.mean()]
    road_mass, mark_mass, mark_area, sky_mass, road_area = acc / len(curve_obs)
    assert road_mass >= 0.6, f"{method}: only {road_mass:.0%} of the map is on the road ({road_area:.0%} of the area)"
    assert mark_mass >= 1.5 * mark_area, f"{method}: markings get {mark_mass:.0%} of the mass for {mark_area:.0%} of the area"
    assert sky_mass < 0.02
