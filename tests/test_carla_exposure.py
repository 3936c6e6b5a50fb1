"""The RGB camera's exposure on CARLA (issue 19): CARLA's eye adaptation would change the image's
brightness from frame to frame, so the backend fixes it through the camera blueprint's exposure
attributes, in a drive and in a replay; ``serve`` accepts the same attributes."""

from __future__ import annotations

import pytest

carla = pytest.importorskip("carla")

from carla_double import FakeServer  # noqa: E402
from test_carla_backend import drive, make, scenario  # noqa: E402

import carla_agent.sim.carla_backend as cb  # noqa: E402
from carla_agent.errors import ScenarioError  # noqa: E402
from carla_agent.server.catalogue import RGB_CAMERA_EXTRA  # noqa: E402


def cameras(server):
    return {a._type_id: a for a in server._actors.values() if a._type_id.startswith("sensor.camera.")}


def test_default_exposure_is_fixed_histogram_with_a_zero_width_range():
    server = FakeServer()
    with make(server) as sim:
        sim.reset(scenario())
        cams = cameras(server)
        rgb = cams["sensor.camera.rgb"]._attrs
        # CARLA's defaults (10..12 EV, +0.75 on Linux) are all replaced.
        assert rgb["exposure_mode"] == "histogram"
        assert float(rgb["exposure_min_bright"]) == float(rgb["exposure_max_bright"]) == 11.0
        assert float(rgb["exposure_compensation"]) == 0.0
        # The semantic camera has no exposure attributes in CARLA: none are set on it.
        assert "exposure_mode" not in cams["sensor.camera.semantic_segmentation"]._attrs
        drive(sim, 3)
    assert server.clean(), server.state()


@pytest.mark.parametrize("block, expected, absent", [
    ({"mode": "fixed", "brightness_ev": 9.5, "compensation_ev": -1},
     {"exposure_mode": "histogram", "exposure_min_bright": "9.5", "exposure_max_bright": "9.5",
      "exposure_compensation": "-1"}, ()),
    ({"mode": "auto"}, {"exposure_mode": "histogram", "exposure_min_bright": "10.0", "exposure_max_bright": "12.0",
                        "exposure_compensation": "0"}, ()),
    ({"mode": "manual", "shutter_speed_per_s": 120, "iso": 400, "fstop": 2.8},
     {"exposure_mode": "manual", "shutter_speed": "120", "iso": "400", "fstop": "2.8"}, ()),
])
def test_exposure_from_the_carla_block(block, expected, absent):
    server = FakeServer()
    with make(server) as sim:
        sim.reset(scenario({"exposure": block}))
        rgb = cameras(server)["sensor.camera.rgb"]._attrs
        assert {k: rgb[k] for k in expected} == expected
    assert server.clean(), server.state()


@pytest.mark.parametrize("block, pattern", [
    ({"mode": "eye"}, r"field 'carla\.exposure\.mode': 'eye' is not one of fixed, auto, manual"),
    ({"brightness_ev": 0}, r"field 'carla\.exposure\.brightness_ev'"),
    ({"iso_": 100}, r"field 'carla\.exposure': unknown key\(s\) iso_"),
])
def test_exposure_errors_name_the_field(block, pattern):
    with pytest.raises(ScenarioError, match=pattern):
        cb.carla_spec(scenario({"exposure": block}))


def test_replay_camera_gets_the_scenario_exposure():
    server = FakeServer()
    sc = scenario({"exposure": {"brightness_ev": 10.5}})
    with make(server, record=True, recorder_file="exp.log") as sim:
        sim.reset(sc)
        drive(sim, 5)
    with cb.replay("exp.log", sc, client_factory=server.client, timeout_s=2.0) as rp:
        rgb = rp._session.sensors[0]
        assert rgb._type_id == "sensor.camera.rgb"
        assert rgb._attrs["exposure_min_bright"] == rgb._attrs["exposure_max_bright"] == "10.5"
    assert server.clean(), server.state()


def test_serve_declares_every_exposure_attribute_the_backend_sets():
    declared = {name for name, _, _ in RGB_CAMERA_EXTRA}
    for mode in ("fixed", "auto", "manual"):
        assert set(cb.exposure_attributes(cb.ExposureSpec(mode=mode))) <= declared, mode
