"""Reports: the page holds its plots, its video (embedded or linked), key frames, statistics; the index."""

import base64
import re

import numpy as np
import pytest

from carla_agent.recording.drive_log import DriveLog
from carla_agent.network.preprocess import Preprocessing
from carla_agent.recording.render import render_log_video
from carla_agent.recording.report import key_frames, write_index, write_report_info
from carla_agent.recording.sources import FunctionSource
from carla_agent.recording.video_io import read_video
from test_drive_log import write_log


@pytest.fixture()
def run_with_video(tmp_path):
    run = tmp_path / "runs" / "20260101T000000Z_straight_clear"
    write_log(run, 14)
    src = FunctionSource(lambda f: f[..., 1][:12, :32].astype(np.float32), "green",
                         preprocessing=Preprocessing(height=12, width=32))
    render_log_video(run, run / "attention.mp4", [src], progress=False)
    return run


def test_key_frames_pick_steering_interventions_collisions(run_with_video):
    rows = DriveLog.open(run_with_video).rows
    keys = {k.i: k.reason for k in key_frames(rows)}
    assert "largest steering" in keys[13]                  # predicted_steer grows with i
    assert keys[4] == "intervention 1" and keys[8] == "intervention 2" and keys[12] == "intervention 3"
    assert keys[5].startswith("collision with vehicle:vehicle.parked")


def test_report_contains_plots_video_key_frames_and_stats(run_with_video):
    info = write_report_info(run_with_video)
    text = info.path.read_text()
    assert info.path == run_with_video / "report.html" and info.video == "embedded"
    assert text.count("data:image/png;base64,") == 1  # the steering / offset plot
    assert "Closed-loop metrics" in text and "<span class='badge ok'>complete</span>" in text
    video = re.search(r"src='data:video/mp4;base64,([A-Za-z0-9+/=]+)'", text)
    assert video, "video not embedded"
    embedded = info.path.parent / "embedded.mp4"
    embedded.write_bytes(base64.b64decode(video.group(1)))
    assert read_video(embedded).shape[0] == 14  # the embedded video plays back whole
    assert info.key_frames == 5 and text.count("data:image/jpeg;base64,") == 5
    assert "intervention 2" in text and "collision with" in text
    assert "Saliency statistics per method" in text and "<th>green</th>" in text
    plot = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text).group(1)
    assert base64.b64decode(plot)[:8] == b"\x89PNG\r\n\x1a\n"


def test_large_video_is_linked_and_incomplete_run_is_flagged(run_with_video):
    import json

    meta = json.loads((run_with_video / "meta.json").read_text())
    meta["complete"], meta["metrics"] = False, None
    (run_with_video / "meta.json").write_text(json.dumps(meta))
    info = write_report_info(run_with_video, max_embed_mb=0.0001)
    text = info.path.read_text()
    assert info.video == "linked" and "src='attention.mp4'" in text and "linked, not embedded" in text
    assert "badge bad" in text and "come from the rows that were flushed" in text


def test_key_frames_with_model_maps(run_with_video):
    from carla_agent.network.pilotnet import build_pilotnet
    from carla_agent.network.steering_model import SteeringModel

    model = SteeringModel(build_pilotnet(input_shape=(66, 200, 3), seed=4))
    info = write_report_info(run_with_video, model=model, methods=["visual_backprop"])
    assert info.key_frames == 5


def test_index_links_every_run(run_with_video, tmp_path):
    write_report_info(run_with_video)
    write_log(tmp_path / "runs" / "20260101T000100Z_other", 3, close=False)
    index = write_index(tmp_path / "runs")
    text = index.read_text()
    assert f"href='{run_with_video.name}/report.html'" in text
    assert "20260101T000100Z_other" in text and text.count("<tr>") == 3
