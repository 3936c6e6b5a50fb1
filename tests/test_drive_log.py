"""Drive log: round trip, recorder hook, crash safety (SIGKILL), bad rows and frames, disk full."""

import errno
import json
import logging
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import zstandard

from carla_agent.drive.agent import ExpertAgent
from carla_agent.recording.drive_log import (BASE_COLUMNS, DriveLog, DriveLogError, DriveLogWriter, RunMeta, new_run_dir,
                                   scenario_from_meta, scenario_to_dict)
from carla_agent.sim.embedded.simulator import EmbeddedSimulator
from carla_agent.recording.recorder import RecorderConfig, RecorderHook
from carla_agent.drive.runner import Runner, RunnerHook
from carla_agent.sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
H, W = 36, 64


def image(i: int) -> np.ndarray:
    return np.random.default_rng(i).integers(0, 256, (H, W, 3), dtype=np.uint8)


def labels(i: int) -> np.ndarray:
    return np.random.default_rng(1000 + i).integers(0, 8, (H, W), dtype=np.uint8)


def meta(run_id="test") -> RunMeta:
    sc = load_scenario("straight_clear")
    return RunMeta(run_id=run_id, scenario_name=sc.name, scenario_file=sc.source, scenario=scenario_to_dict(sc),
                   seed=3, backend="embedded", server_version=None, backend_options={"render": False}, dt_s=0.05,
                   duration_s=10.0, intervention_m=1.0, camera_hw=(H, W))


def row(i: int) -> dict:
    return {"i": i, "frame": 100 + i, "sim_time_s": i * 0.05, "steer": 0.1 + i / 3.0, "throttle": 0.5,
            "brake": 0.0, "hand_brake": 0, "reverse": 0, "predicted_steer": -1 / 7 + i,
            "lateral_offset_m": 0.01 * i, "interventions": i // 4, "collisions": int(i == 5),
            "collision_with": "vehicle:vehicle.parked, red" if i == 5 else "", "weather": "clear_noon"}


def write_log(path: Path, n: int, semantic: bool = True, close: bool = True, **kw) -> DriveLogWriter:
    w = DriveLogWriter(path, meta(path.name), ROOT / "scenarios" / "straight_clear.yaml", **kw)
    for i in range(n):
        assert w.append(row(i), image(i), labels(i) if semantic else None, outputs=(0.25 * i, -1.0),
                        output_names=("steer", "throttle"))
    if close:
        w.close({"frames": n}, interrupted=False)
    return w


def test_round_trip(tmp_path):
    run = tmp_path / "run"
    write_log(run, 12)
    log = DriveLog.open(run)
    assert log.complete and len(log) == 12 and not log.problems
    assert log.output_names == ["steer", "throttle"]
    for f in log:
        assert np.array_equal(f.image, image(f.i))
        assert np.array_equal(f.semantic, labels(f.i))
        assert f.row["steer"] == row(f.i)["steer"]  # exact float round trip
    assert log.row(5)["collision_with"] == "vehicle:vehicle.parked, red"
    direct = pd.read_csv(run / "rows.csv")  # one pandas call
    assert len(direct) == 12 and list(direct.columns[:len(BASE_COLUMNS)]) == list(BASE_COLUMNS)
    assert direct["predicted_steer"].tolist() == [row(i)["predicted_steer"] for i in range(12)]
    assert (run / "scenario.yaml").read_text() == (ROOT / "scenarios" / "straight_clear.yaml").read_text()
    sc = scenario_from_meta(log.meta)
    assert sc == load_scenario("straight_clear")
    assert log.meta["packages"]["numpy"] == np.__version__ and log.meta["metrics"] == {"frames": 12}
    assert log.version == 3 and log.has_semantic
    bare = DriveLog.open(write_log(tmp_path / "bare", 3, semantic=False).path)
    assert not bare.has_semantic and bare.semantic(1) is None and np.array_equal(bare.frame(1), image(1))


def test_new_run_dir_is_unique(tmp_path):
    a, b = new_run_dir(tmp_path, "gentle curves"), new_run_dir(tmp_path, "gentle curves")
    assert a != b and a.name.endswith("_gentle_curves") and b.name.endswith("_2")


class Boom(RunnerHook):
    def __init__(self, at):
        self.at = at

    def on_step(self, record):
        if record.tick == self.at:
            raise KeyboardInterrupt


def drive(tmp_path, seconds=1.0, hooks=(), **cfg):
    sc = load_scenario("straight_clear")
    rec = RecorderHook(RecorderConfig(out_dir=tmp_path, **cfg))
    runner = Runner(EmbeddedSimulator(render=True), ExpertAgent(sc.target_speed_mps), sc, seed=2,
                    duration_s=seconds, hooks=[rec, *hooks])
    return rec, runner, runner.run()


def test_recorder_hook_writes_a_complete_log(tmp_path):
    rec, runner, metrics = drive(tmp_path, 1.0)
    log = DriveLog.open(rec.run_dir)
    assert rec.run_dir.parent == tmp_path and rec.run_dir.name.endswith("_straight_clear")
    assert log.complete and len(log) == metrics.frames + 1 == 21
    assert log.meta["metrics"]["frames"] == metrics.frames and log.meta["seed"] == 2
    assert log.meta["backend"] == "embedded" and log.meta["agent"] == "ExpertAgent"
    assert log.meta["camera_hw"] == [270, 480] and log.meta["ended_utc"] >= log.meta["started_utc"]
    assert log.rows["frame"].tolist() == list(range(21))
    assert log.frame(20).shape == (270, 480, 3) and log.semantic(20).shape == (270, 480)
    assert log.rows["expert_steer"].notna().all()


def test_ctrl_c_leaves_the_run_incomplete(tmp_path, caplog):
    rec, runner, metrics = drive(tmp_path, 5.0, hooks=[Boom(7)])
    assert runner.interrupted
    log = DriveLog.open(rec.run_dir)
    assert not log.complete and log.meta["interrupted"] is True and len(log) == 8
    assert "incomplete run" in caplog.text


CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
    from pathlib import Path
    from test_drive_log import meta, row, image, labels
    from carla_agent.recording.drive_log import DriveLogWriter
    w = DriveLogWriter(Path({run!r}), meta(), flush_every_s=0.25)
    seen = 0
    for i in range(100000):
        w.append(row(i), image(i), labels(i), outputs=(0.5,), output_names=("steer",))
        if w.frames_flushed != seen:
            seen = w.frames_flushed
            print(seen, flush=True)
        time.sleep(0.002)
""")


def test_sigkill_mid_run_keeps_every_flushed_frame(tmp_path, caplog):
    run = tmp_path / "killed"
    code = CHILD.format(root=str(ROOT), tests=str(Path(__file__).parent), run=str(run))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    flushed = 0
    try:
        deadline = time.monotonic() + 30
        while flushed < 15 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            flushed = int(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert flushed >= 15, "the writer never flushed"
    log = DriveLog.open(run)
    assert not log.complete and "incomplete run" in caplog.text
    assert len(log) >= flushed
    assert log.indices == list(range(len(log)))
    for f in log:  # every flushed frame reads back whole
        assert np.array_equal(f.image, image(f.i)) and np.array_equal(f.semantic, labels(f.i))


def test_frames_are_zstd_blobs_back_to_back(tmp_path):
    run = tmp_path / "run"
    write_log(run, 5)
    rows = pd.read_csv(run / "rows.csv")
    data = (run / "frames.zst").read_bytes()
    assert rows["frame_offset"].tolist() == [0, *np.cumsum(rows["frame_bytes"])[:-1]]
    assert len(data) == rows["frame_bytes"].sum() and not (run / "frames").exists()
    assert not (run / "frames.pngs").exists() and json.loads((run / "meta.json").read_text())["version"] == 3
    r = rows.iloc[2]  # any frame is a self-describing blob located by its row; read by hand as documented
    blob = data[r.frame_offset:r.frame_offset + r.frame_bytes]
    magic, h, w, c, dtype, reserved = struct.unpack_from("<4sIIHBB", blob)
    assert (magic, h, w, c, dtype, reserved) == (b"CAZ1", H, W, 3, 1, 0)
    params = zstandard.get_frame_parameters(blob[16:])
    assert params.content_size == H * W * 3 and params.has_checksum
    raw = zstandard.ZstdDecompressor().decompress(blob[16:], max_output_size=h * w * c)
    assert np.array_equal(np.frombuffer(raw, np.uint8).reshape(h, w, c), image(2))  # stored as RGB
    log = DriveLog.open(run)
    assert log.frame_path(2) == run / "frames.zst" and log.semantic_path(2) == run / "semantic.zst"
    png = log.frame_png(2)  # encoded on demand: a PNG of the same pixels
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[..., ::-1], image(2))
    s = rows.iloc[4]
    sem = (run / "semantic.zst").read_bytes()[s.semantic_offset:s.semantic_offset + s.semantic_bytes]
    assert struct.unpack_from("<4sIIHBB", sem)[:4] == (b"CAZ1", H, W, 1)
    raw = zstandard.ZstdDecompressor().decompress(sem[16:], max_output_size=H * W)
    assert np.array_equal(np.frombuffer(raw, np.uint8).reshape(H, W), labels(4))
    img = log.frame(1)
    img[0, 0] ^= 1  # decoded frames are writable, like decoded PNGs were


def test_corrupt_row_and_corrupt_or_truncated_frames_are_named_and_the_rest_reads(tmp_path):
    run = tmp_path / "bad"
    write_log(run, 10)
    rows = pd.read_csv(run / "rows.csv")
    frames = run / "frames.zst"
    data = bytearray(frames.read_bytes())
    r1, r3, r9 = rows.iloc[1], rows.iloc[3], rows.iloc[9]
    mid = r3.frame_offset + r3.frame_bytes // 2
    data[mid:mid + 16] = bytes(16)  # frame i=3 damaged in the middle of the file
    data[r1.frame_offset:r1.frame_offset + 4] = b"PNG!"  # frame i=1: bad magic
    frames.write_bytes(bytes(data[: r9.frame_offset + r9.frame_bytes // 2]))  # and the file cut in frame i=9
    lines = (run / "rows.csv").read_text().split("\n")
    lines[1 + 6] = lines[1 + 6].replace("clear_noon", "clear_nooN")  # row i=6, a silent bit flip
    (run / "rows.csv").write_text("\n".join(lines))
    log = DriveLog.open(run)
    assert len(log) == 9 and 6 not in log.indices
    assert [p.i for p in log.problems] == [6] and "frame i=6" in log.problems[0].what
    with pytest.raises(DriveLogError, match=r"frame i=6: row is corrupt .*checksum"):
        log.row(6)
    with pytest.raises(DriveLogError, match=r"frames\.zst: frame i=3 is corrupt \(zstd"):
        log.frame(3)
    with pytest.raises(DriveLogError, match=r"frames\.zst: frame i=1 is corrupt \(bad magic"):
        log.frame(1)
    with pytest.raises(DriveLogError, match=r"frames\.zst: frame i=9 is truncated"):
        log.frame(9)
    with pytest.raises(DriveLogError, match=r"frames\.zst: frame i=9 is truncated"):
        log.frame_png(9)
    with pytest.raises(DriveLogError, match=r"frame i=6: row is corrupt"):
        log.frame(6)
    good = list(log.iter_frames(on_error="skip"))
    assert [f.i for f in good] == [0, 2, 4, 5, 7, 8]
    assert all(np.array_equal(f.image, image(f.i)) and np.array_equal(f.semantic, labels(f.i)) for f in good)
    with pytest.raises(DriveLogError, match="i=1"):
        list(log)
    assert {p.i for p in log.check()} == {1, 3, 6, 9}


def test_zstd_checksum_catches_a_flipped_payload_byte(tmp_path):
    run = tmp_path / "flip"
    write_log(run, 4)
    rows = pd.read_csv(run / "rows.csv")
    frames = run / "frames.zst"
    data = bytearray(frames.read_bytes())
    r = rows.iloc[2]
    # random pixels do not compress: zstd stores them as raw blocks, so a flipped byte in the middle still
    # decodes, to wrong pixels; only the frame's checksum of the content can tell
    at = r.frame_offset + r.frame_bytes // 2
    data[at] ^= 0x01
    payload = bytearray(data[r.frame_offset + 16:r.frame_offset + r.frame_bytes])
    assert len(payload) > H * W * 3 and payload[4] & 0x04  # stored, and the checksum flag is set
    payload[4] &= ~0x04  # the same frame without its checksum ...
    raw = zstandard.ZstdDecompressor().decompress(bytes(payload[:-4]), max_output_size=H * W * 3)
    wrong = np.frombuffer(raw, np.uint8).reshape(H, W, 3)
    assert (wrong != image(2)).sum() == 1  # ... decodes silently to one wrong byte
    frames.write_bytes(bytes(data))
    log = DriveLog.open(run)
    with pytest.raises(DriveLogError, match=r"frames\.zst: frame i=2 is corrupt \(zstd: .*checksum"):
        log.frame(2)
    assert [p.i for p in log.check()] == [2]
    assert all(np.array_equal(log.frame(i), image(i)) for i in (0, 1, 3))


def write_v2_log(run: Path, n: int) -> None:
    """A log as format version 2 wrote it: whole PNGs back to back in frames.pngs and semantic.pngs."""
    from carla_agent.recording.drive_log.rows import _format_line, _header_line

    run.mkdir(parents=True)
    columns = [*BASE_COLUMNS, "out_steer"]
    text = _header_line(columns)
    with open(run / "frames.pngs", "wb") as fh, open(run / "semantic.pngs", "wb") as sh:
        for i in range(n):
            png = cv2.imencode(".png", image(i)[..., ::-1])[1].tobytes()
            sem = cv2.imencode(".png", labels(i))[1].tobytes()
            r = {**row(i), "frame_saved": 1, "frame_offset": fh.tell(), "frame_bytes": len(png),
                 "semantic_offset": sh.tell(), "semantic_bytes": len(sem)}
            fh.write(png)
            sh.write(sem)
            text += _format_line([r.get(c, "") for c in BASE_COLUMNS] + [0.5])
    (run / "rows.csv").write_text(text)
    (run / "meta.json").write_text(json.dumps({"format": "carla_agent.drive_log", "version": 2,
                                               **meta(run.name).to_dict(), "complete": True}))


def test_version_2_logs_still_read_and_bad_pngs_are_named(tmp_path):
    run = tmp_path / "v2"
    write_v2_log(run, 10)
    log = DriveLog.open(run)
    assert log.version == 2 and log.complete and log.indices == list(range(10))
    for f in log:
        assert np.array_equal(f.image, image(f.i)) and np.array_equal(f.semantic, labels(f.i))
    rows = pd.read_csv(run / "rows.csv")
    r2 = rows.iloc[2]
    data = bytearray((run / "frames.pngs").read_bytes())
    assert log.frame_path(2) == run / "frames.pngs"
    assert log.frame_png(2) == bytes(data[r2.frame_offset:r2.frame_offset + r2.frame_bytes])  # the stored bytes
    r3, r9 = rows.iloc[3], rows.iloc[9]
    mid = r3.frame_offset + r3.frame_bytes // 2
    data[mid:mid + 16] = bytes(16)
    (run / "frames.pngs").write_bytes(bytes(data[: r9.frame_offset + r9.frame_bytes // 2]))
    with pytest.raises(DriveLogError, match=r"frames\.pngs: frame i=3 is corrupt"):
        log.frame(3)
    with pytest.raises(DriveLogError, match=r"frames\.pngs: frame i=9 is truncated"):
        log.frame(9)
    assert {p.i for p in log.check()} == {3, 9}
    assert [f.i for f in log.iter_frames(on_error="skip")] == [0, 1, 2, 4, 5, 6, 7, 8]


def write_v1_log(run: Path, n: int) -> None:
    """A log as format version 1 wrote it: one PNG file per frame under frames/ and semantic/."""
    from carla_agent.recording.drive_log.rows import _format_line, _header_line

    v1_columns = BASE_COLUMNS[:BASE_COLUMNS.index("frame_saved") + 1]
    (run / "frames").mkdir(parents=True)
    (run / "semantic").mkdir()
    text = _header_line([*v1_columns, "out_steer"])
    for i in range(n):
        cv2.imwrite(str(run / "frames" / f"{i:06d}.png"), image(i)[..., ::-1])
        cv2.imwrite(str(run / "semantic" / f"{i:06d}.png"), labels(i))
        text += _format_line([{**row(i), "frame_saved": 1}.get(c, "") for c in v1_columns] + [0.5])
    (run / "rows.csv").write_text(text)
    (run / "meta.json").write_text(json.dumps({"format": "carla_agent.drive_log", "version": 1,
                                               **meta(run.name).to_dict(), "complete": True}))


def test_version_1_logs_still_read_and_newer_ones_fail_clearly(tmp_path):
    run = tmp_path / "v1"
    write_v1_log(run, 4)
    log = DriveLog.open(run)
    assert log.version == 1 and log.complete and log.indices == [0, 1, 2, 3]
    for f in log:
        assert np.array_equal(f.image, image(f.i)) and np.array_equal(f.semantic, labels(f.i))
    assert log.frame_path(2) == run / "frames" / "000002.png"
    png = run / "frames" / "000002.png"
    png.write_bytes(png.read_bytes()[:100])
    with pytest.raises(DriveLogError, match=r"000002\.png: frame i=2 is truncated"):
        log.frame(2)
    meta_v4 = json.loads((run / "meta.json").read_text()) | {"version": 4}
    (run / "meta.json").write_text(json.dumps(meta_v4))
    with pytest.raises(DriveLogError, match="format version 4; this carla_agent reads versions 1, 2, 3"):
        DriveLog.open(run)


def test_torn_last_row_and_short_row(tmp_path):
    run = tmp_path / "torn"
    write_log(run, 6)
    text = (run / "rows.csv").read_text()
    lines = text.split("\n")
    lines[2] = ",".join(lines[2].split(",")[:5])  # row i=1 lost fields
    (run / "rows.csv").write_text("\n".join(lines)[:-40])  # and the last row is torn
    log = DriveLog.open(run)
    assert log.indices == [0, 2, 3, 4]
    whats = {p.i: p.what for p in log.problems}
    assert "fields" in whats[1] and "torn" in whats[5]


def test_disk_full_stops_logging_without_crashing(tmp_path, caplog, monkeypatch):
    real = DriveLogWriter._write_frame
    calls = {"n": 0}

    def full(self, name, array):
        calls["n"] += 1
        if calls["n"] > 10:  # frames + semantic: 5 whole frames fit
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, name, array)

    monkeypatch.setattr(DriveLogWriter, "_write_frame", full)
    caplog.set_level(logging.INFO)  # a full disk is an INFO note here: the command's error line says it
    rec, runner, metrics = drive(tmp_path, 1.0, stop_on_disk_full=False)
    assert metrics.frames == 20  # the drive went on, as asked
    assert rec.disk_full and rec.frames_kept == 5
    assert "disk full at frame i=5" in caplog.text
    log = DriveLog.open(rec.run_dir)
    assert not log.complete and log.meta["stop_reason"] == "disk full at frame i=5"
    assert len(log) == 5 and all(f.image.shape == (270, 480, 3) for f in log)


def test_drop_mode_keeps_rows(tmp_path, monkeypatch):
    real = DriveLogWriter._write_frame

    def slow(self, name, array):
        time.sleep(0.01)
        return real(self, name, array)

    monkeypatch.setattr(DriveLogWriter, "_write_frame", slow)
    rec, runner, metrics = drive(tmp_path, 1.0, queue_frames=2, when_full="drop")
    log = DriveLog.open(rec.run_dir)
    assert rec.stats.dropped > 0 and len(log) == 21 and not log.complete
    dropped = log.rows.index[log.rows["frame_saved"] == 0]
    assert len(dropped) == rec.stats.dropped
    with pytest.raises(DriveLogError, match="not saved"):
        log.frame(int(dropped[0]))


def test_not_a_log(tmp_path):
    with pytest.raises(DriveLogError, match="no such run folder"):
        DriveLog.open(tmp_path / "nope")
    with pytest.raises(DriveLogError, match="no meta.json"):
        DriveLog.open(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(DriveLogError, match="not a drive log"):
        DriveLog.open(tmp_path)


class RKey(RunnerHook):
    """Presses the HUD's R key: start at tick 5, stop at 15, start again at 20."""

    def __init__(self, rec):
        self.rec = rec

    def on_step(self, record):
        if record.tick in (5, 20):
            self.rec.start()
        elif record.tick == 15:
            self.rec.stop()


def test_start_and_stop_mid_drive(tmp_path):
    from carla_agent.recording.replay import verify_resimulation

    sc = load_scenario("straight_clear")
    rec = RecorderHook(RecorderConfig(out_dir=tmp_path), autostart=False)
    Runner(EmbeddedSimulator(render=False), ExpertAgent(sc.target_speed_mps), sc, duration_s=1.5,
           hooks=[RKey(rec), rec]).run()
    assert len(rec.runs) == 2 and not rec.recording
    first, second = (DriveLog.open(r) for r in rec.runs)
    assert first.rows["frame"].tolist() == list(range(5, 15)) and first.meta["first_frame"] == 5
    assert first.complete and first.meta["metrics"]["frames"] == 15
    assert second.rows["frame"].tolist() == list(range(20, 31)) and second.complete
    with pytest.raises(DriveLogError, match="began mid-drive"):
        verify_resimulation(first)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are a Linux feature")
def test_worker_nice_lowers_only_the_worker_thread():
    import threading

    from carla_agent.recording.recorder import _lower_priority

    def nice_of(tid):  # field 19 of /proc/<pid>/task/<tid>/stat
        stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[16])

    seen = {}

    def work():
        _lower_priority(5)
        seen["worker"] = nice_of(threading.get_native_id())

    before = nice_of(threading.get_native_id())
    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert seen["worker"] == min(19, before + 5)
    assert nice_of(threading.get_native_id()) == before  # the drive's thread keeps its priority
