"""Smoke test of the faithfulness table: the shipped model, 6 frames, one method, every file written."""

from __future__ import annotations

import json
import math
from pathlib import Path

import carla_agent
from carla_agent.evaluate import COLUMNS, evaluate

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
