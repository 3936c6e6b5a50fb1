"""Reports: the page holds its plots, its video (embedded or linked), key frames, statistics; the index."""

import base64
import re

import numpy as np
import pytest

from carla_agent.recording.drive_log import DriveLog
from carla_agent.network.preprocess import Preprocessing
from carla_agent.recording.render import render_log_video
from carla_agent.recording.index import write_index
from carla_agent.recording.report import key_frames, write_report_info
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
    assert "Closed-loop metrics" in text
    # 14 frames of a 55 s scenario: a partial run, said so above its scores
    assert re.search(r"<span class='badge part'[^>]*>partial: 1 s of 55 s</span>", text)
    assert "cannot be compared with a full run" in text
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
    assert "20260101T000100Z_other" in text.replace("<wbr>", "") and text.count("<tr>") == 3


def _status(meta_extra, times, complete=True):
    import pandas as pd

    from carla_agent.recording.run_status import run_status

    meta = {"dt_s": 0.05, "duration_s": 70.0, "scenario": {"duration_s": 70.0}, "complete": complete,
            "metrics": {"completed": False}, **meta_extra}
    return run_status(meta, pd.DataFrame({"sim_time_s": times}))


def test_run_status_tells_whole_runs_from_cut_short_and_broken_ones():
    full = _status({}, [0.0, 35.0, 70.0])
    assert full.state == "complete" and full.whole and full.label == "complete"
    route_end = _status({"metrics": {"completed": True}}, [0.0, 41.2])  # the route ended before the time limit
    assert route_end.whole
    cut = _status({"duration_s": 20.0}, [0.0, 10.0, 20.0])
    assert cut.state == "partial" and not cut.whole
    assert cut.label == "partial: 20 s of 70 s" and cut.reason == "cut short by a 20 s time limit"
    late = _status({}, [12.0, 40.0, 70.0])  # the HUD's R key, pressed mid-drive
    assert late.state == "partial" and late.reason == "recording started at 12.0 s" and late.coverage == "58 s of 70 s"
    stopped = _status({}, [0.0, 31.5])  # R pressed again before the end
    assert stopped.state == "partial" and "stopped at 31.5 s" in stopped.reason
    broken = _status({"stop_reason": "disk full at frame i=80"}, [0.0, 4.0], complete=False)
    assert broken.state == "incomplete" and broken.label == "incomplete: disk full at frame i=80"
    assert _status({}, [], complete=False).reason == "the writer did not finish (killed or crashed)"


def test_index_sets_partial_scores_apart(run_with_video, tmp_path):
    import json

    meta_path = run_with_video / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["metrics"] = {"route_completion_pct": 27.9, "driving_score": 27.9, "completed": False}
    meta_path.write_text(json.dumps(meta))  # 14 frames (0.65 s) of a 10 s limit
    text = write_index(tmp_path / "runs").read_text()
    assert "partial: 1 s of" in text and ">complete<" not in text
    assert "data-label='driving score'>27.9*<" in text and "cannot be compared with a full run" in text
    assert "<meta name='viewport'" in text and "<div class='scroll'><table class='runs'>" in text
    meta["metrics"]["completed"] = True  # the route ended: a whole run, whatever its length
    meta_path.write_text(json.dumps(meta))
    text = write_index(tmp_path / "runs").read_text()
    assert ">complete<" in text and "27.9*" not in text and "data-label='driving score'>27.9<" in text


def test_rendering_into_the_run_folder_notes_the_video_settings_in_meta(run_with_video):
    import json

    from carla_agent.recording.drive_log import update_meta

    videos = json.loads((run_with_video / "meta.json").read_text())["videos"]
    assert videos["attention.mp4"]["sources"] == [{"method": "green"}] and videos["attention.mp4"]["frames"] == 14
    meta = update_meta(run_with_video, {"note": ("a", 1)})
    assert meta["note"] == ["a", 1] and "attention.mp4" in meta["videos"]  # other fields kept
    assert json.loads((run_with_video / "meta.json").read_text()) == meta


def test_a_replay_of_the_same_frames_does_not_count_them_twice(run_with_video):
    """A run's attention video and a replay of it both write statistics of the same source; the
    report counted 402 frames on a 201-frame run. Each frame counts once per source."""
    from carla_agent.recording.stats import STATS_SUFFIX, saliency_statistics

    src = FunctionSource(lambda f: f[..., 1][:12, :32].astype(np.float32), "green",
                         preprocessing=Preprocessing(height=12, width=32))
    render_log_video(run_with_video, run_with_video / "replay_green.mp4", [src], progress=False, step=2)
    files = sorted(run_with_video.glob(f"*{STATS_SUFFIX}"))
    assert len(files) == 2
    table = saliency_statistics(files)
    assert int(table.loc["green", "frames"]) == 14
    once = saliency_statistics(files[:1])
    assert table.loc["green"].drop("frames").to_dict() == pytest.approx(once.loc["green"].drop("frames").to_dict(),
                                                                       nan_ok=True)
