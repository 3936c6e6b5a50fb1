"""Smoke test of the faithfulness table: the shipped model, 6 frames, one method, every file written."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

import carla_agent
from carla_agent.faithfulness.evaluate import COLUMNS, evaluate

MODEL = Path(carla_agent.__file__).parent / "models" / "pilotnet.keras"


def test_evaluate_writes_table_plots_and_html(tmp_path):
    table = evaluate(MODEL, scenarios=("gentle_curves",), methods=("visual_backprop",), frames=6, out_dir=tmp_path,
                     steps=4, randomise_frames=2, closed_loop_s=0.5)
    assert list(table.rows) == ["visual_backprop", "random", "sobel"]
    row = table.rows["visual_backprop"]
    assert {k for k, _, _ in COLUMNS} <= set(row)
    assert all(math.isfinite(row[k]) for k in ("deletion_auc", "insertion_auc", "shift_salient", "road_ratio"))
    assert math.isfinite(row["cl_offset_salient"]) and "cl_clean_offset" in table.notes
    assert row["rand_head_rho"] > 0.999  # VisualBackProp ignores the dense head: shown, not hidden
    for name in ("table.md", "table.json", "index.html", "deletion_curves.png", "shift_test.png", "randomisation.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert json.loads((tmp_path / "table.json").read_text())["notes"]["frames"] == 6
    assert "| visual_backprop |" in (tmp_path / "table.md").read_text()


def _write_log(path: Path, n: int) -> None:
    from carla_agent.recording.drive_log import DriveLogWriter, RunMeta, scenario_to_dict
    from carla_agent.sim.scenario import load_scenario

    sc = load_scenario("straight_clear")
    h, w = 240, 320
    meta = RunMeta(run_id=path.name, scenario_name=sc.name, scenario_file=sc.source, scenario=scenario_to_dict(sc),
                   seed=0, backend="embedded", server_version=None, backend_options={}, dt_s=0.05,
                   duration_s=1.0, intervention_m=1.0, camera_hw=(h, w))
    writer = DriveLogWriter(path, meta)
    rng = np.random.default_rng(0)
    for i in range(n):
        row = {"i": i, "frame": i, "sim_time_s": i * 0.05, "steer": 0.0, "throttle": 0.5, "brake": 0.0,
               "hand_brake": 0, "reverse": 0, "predicted_steer": 0.0, "lateral_offset_m": 0.0, "interventions": 0,
               "collisions": 0, "collision_with": "", "weather": "clear_noon"}
        labels = np.where(np.arange(h)[:, None] > h // 2, 1, 5).astype(np.uint8).repeat(w, 1)
        writer.append(row, rng.integers(0, 256, (h, w, 3), dtype=np.uint8), labels, outputs=(0.0,),
                      output_names=("steer",))
    writer.close({"frames": n}, interrupted=False)


def test_frames_from_a_drive_log(tmp_path):
    from carla_agent.faithfulness.evaluate import frames_from_log
    from carla_agent.network.steering_model import SteeringModel

    run = tmp_path / "run"
    _write_log(run, 5)
    model = SteeringModel.load(MODEL)
    fr = frames_from_log(model, run, frames=3, stride=2)
    assert fr.inputs.shape == (3, *model.input_shape) and fr.labels.shape == (3, *model.input_shape[:2])
    assert fr.steer.shape == (3,) and set(np.unique(fr.labels)) <= {1, 5}
