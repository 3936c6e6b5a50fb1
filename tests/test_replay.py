"""Replay: bit-identical re-simulation, re-rendering with saliency methods, A/B videos, closed-loop re-drive."""

import numpy as np
import pytest

from carla_agent.drive.agent import Decision
from carla_agent.control import VehicleControl
from carla_agent.recording.drive_log import DriveLog, DriveLogError
from carla_agent.sim.embedded.simulator import EmbeddedSimulator
from carla_agent.errors import BackendError, CarlaAgentError
from carla_agent.recording.recorder import RecorderConfig, RecorderHook
from carla_agent.recording.render import render_ab_video, render_log_video
from carla_agent.recording.replay import compare_runs, redrive, verify_resimulation
from carla_agent.recording.sources import ExplainerSource, parse_method
from carla_agent.drive.runner import Runner
from carla_agent.sim.scenario import load_scenario
from carla_agent.recording.video_io import read_video


class Wobble:
    """Steers in a slow sine plus a right bias: leaves the lane now and then (interventions)."""

    def reset(self):
        self.k = 0

    def run_step(self, obs):
        self.k += 1
        steer = 0.12 + 0.1 * np.sin(self.k / 7.0)
        return Decision(VehicleControl(steer=steer, throttle=0.6), steer, frame=obs.frame)


@pytest.fixture(scope="module")
def embedded_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    sc = load_scenario("parked_cars")
    rec = RecorderHook(RecorderConfig(out_dir=out))
    metrics = Runner(EmbeddedSimulator(), Wobble(), sc, seed=5, duration_s=4.0, hooks=[rec]).run()
    assert metrics.interventions >= 1  # the replay must reproduce the recoveries too
    return rec.run_dir


def test_resimulation_is_bit_identical(embedded_run):
    log = DriveLog.open(embedded_run)
    check = verify_resimulation(log)
    assert check.frames == len(log) == 81
    assert check.identical and check.first_mismatch is None and check.max_abs_diff == 0
    assert check.max_pose_diff_m == 0.0
    assert str(check) == "81 frames bit-identical (poses within 0 m of the log)"  # replay --verify's line
    assert log.frame(40).std() > 10  # real rendered frames, not black ones


def test_a_run_with_a_takeover_resimulates_bit_identically(tmp_path):
    """Taken-over ticks are never put back on the lane; the re-simulation must follow that too."""
    from carla_agent.drive.runner import RunnerHook

    class TakeWheel(RunnerHook):
        def override(self, record):
            return VehicleControl(steer=0.8, throttle=0.8) if 5 <= record.tick < 60 else None

    sc = load_scenario("straight_clear")
    rec = RecorderHook(RecorderConfig(out_dir=tmp_path))
    metrics = Runner(EmbeddedSimulator(), Wobble(), sc, seed=1, duration_s=4.0, hooks=[TakeWheel(), rec]).run()
    log = DriveLog.open(rec.run_dir)
    assert log.rows["overridden"].sum() == 55 and log.rows["lateral_offset_m"].abs().max() > 1.2
    assert metrics.interventions == 0
    check = verify_resimulation(log)
    assert check.identical and check.max_pose_diff_m == 0.0


def replace_frame(run, i, rgb):
    """Point row ``i`` at a new frame blob appended to frames.zst (its CRC updated)."""
    import csv

    from carla_agent.recording.drive_log import encode_blob, make_compressor
    from carla_agent.recording.drive_log.rows import _format_line

    blob = encode_blob(rgb, make_compressor())
    frames = run / "frames.zst"
    offset = frames.stat().st_size
    with open(frames, "ab") as fh:
        fh.write(blob)
    lines = (run / "rows.csv").read_text().split("\n")
    header = next(csv.reader([lines[0]]))
    fields = next(csv.reader([lines[1 + i].rpartition(",")[0]]))
    assert int(fields[0]) == i
    fields[header.index("frame_offset")], fields[header.index("frame_bytes")] = str(offset), str(len(blob))
    lines[1 + i] = _format_line(fields).rstrip("\n")
    (run / "rows.csv").write_text("\n".join(lines))


def test_resimulation_finds_a_changed_frame(embedded_run, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(embedded_run, run)
    img = DriveLog.open(run).frame(30)
    img[100:110, 200:210] ^= 1
    replace_frame(run, 30, img)
    check = verify_resimulation(run, max_frames=40)
    assert not check.identical and check.first_mismatch == 30 and check.max_abs_diff == 1
    assert str(check).startswith("differs from frame i=30 (40 frames compared, pixels up to 1 apart")


def test_resimulation_needs_every_row_and_an_embedded_run(embedded_run, tmp_path):
    import json
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(embedded_run, run)
    lines = (run / "rows.csv").read_text().split("\n")
    lines[11] = lines[11].replace(",", ";", 1)
    (run / "rows.csv").write_text("\n".join(lines))
    with pytest.raises(DriveLogError, match=r"row\(s\) \[10\]"):
        verify_resimulation(run)
    meta = json.loads((run / "meta.json").read_text())
    meta["backend"] = "carla"
    (run / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(BackendError, match="embedded"):
        verify_resimulation(run)


def test_parse_method():
    assert parse_method("gradcam") == ("gradcam", {})
    assert parse_method("occlusion:window_px=10+20+40,stride_px=5,fill=blur,signed=true") == (
        "occlusion", {"window_px": (10, 20, 40), "stride_px": 5, "fill": "blur", "signed": True})
    with pytest.raises(CarlaAgentError, match="key=value"):
        parse_method("occlusion:window_px")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from carla_agent.network.pilotnet import build_pilotnet
    from carla_agent.network.steering_model import SteeringModel

    d = tmp_path_factory.mktemp("models")
    paths = []
    for seed in (1, 2):
        path = d / f"net{seed}.keras"
        build_pilotnet(seed=seed, dropout=0.0).save(path)
        paths.append(path)
    return [SteeringModel.load(p) for p in paths]


def test_rerender_with_methods_and_ab(embedded_run, models, tmp_path):
    a, b = models
    log = DriveLog.open(embedded_run)
    idx = log.indices[:10]
    sources = [ExplainerSource(a, "visual_backprop"), ExplainerSource(a, "gradient", target="right")]
    res = render_log_video(log, tmp_path / "m.mp4", sources, indices=idx, batch_size=4, progress=False)
    v = read_video(res.video.path)
    assert v.shape[0] == 10 and (v.shape[2], v.shape[1]) == res.video.size_wh
    assert res.sources == ("visual_backprop", "gradient")
    # the prediction shown equals the model's own prediction on the frame
    expected = a.predict(log.frame(idx[3])).steer
    got = sources[0](np.stack([log.frame(idx[3])])).steer[0]
    assert got == pytest.approx(expected, abs=1e-5)
    ab = render_ab_video(log, tmp_path / "ab.mp4", a, b, "visual_backprop", indices=idx, progress=False)
    assert read_video(ab.video.path).shape[0] == 10
    assert ab.sources == ("visual_backprop", "visual_backprop")
    import pandas as pd

    stats = pd.read_csv(ab.stats_path)
    assert stats["label"].nunique() == 2  # one set of maps per model
    assert stats.groupby("label")["steer"].mean().diff().abs().iloc[-1] > 0  # two different predictions


def test_redrive_with_another_model(embedded_run, models, tmp_path):
    new_run, metrics = redrive(embedded_run, models[1], out_dir=tmp_path, duration_s=1.0)
    new = DriveLog.open(new_run)
    old = DriveLog.open(embedded_run)
    assert new.complete and len(new) == 21 and new.seed == old.seed == 5
    assert new.meta["scenario"] == old.meta["scenario"]
    assert new.meta["model"]["sha256"] == models[1].sha256
    assert np.array_equal(new.frame(0), old.frame(0))  # same start, another driver
    table = compare_runs([embedded_run, new_run])
    assert table.shape[1] == 2 and "autonomy_pct" in table.index
