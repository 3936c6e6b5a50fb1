"""A full disk loses nothing already written and leaves nothing half-written under a final name.

* ``record`` into a 3 MB tmpfs (mounted here; CI runs as root): one ``disk full: N frames kept
  in RUN`` line, exit code 2, the kept frames and rows readable, no 0-byte or temporary file;
* too little free space to start: one line before anything is driven;
* the atomic writes (videos, text files, ``meta.json``) and ``collect --out``'s ``--force``.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from carla_agent.drive.agent import ExpertAgent
from carla_agent.drive.runner import Runner
from carla_agent.errors import DiskFullError
from carla_agent.recording.disk_space import (atomic_file, check_free_space, is_partial, partial_path,
                                              write_text_atomic)
from carla_agent.recording.drive_log import DriveLog
from carla_agent.recording.drive_log import writer as writer_module
from carla_agent.recording.recorder import RecorderConfig, RecorderHook
from carla_agent.recording.video_io import GifWriter, Mp4Writer, read_video, write_video
from carla_agent.sim.embedded.simulator import EmbeddedSimulator
from carla_agent.sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def small_tmpfs(path: Path, size: str = "3m"):
    """Mount a tmpfs of ``size`` at ``path``; skip where mounting is not permitted (fail under CI)."""
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        why = f"cannot mount a tmpfs here (needs root): {res.stderr.strip() or res.returncode}"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SDL_VIDEODRIVER": "dummy"}
    return subprocess.run([sys.executable, "-m", "carla_agent", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def assert_no_partial_or_empty_file(folder: Path) -> None:
    for f in folder.rglob("*"):
        if f.is_file():
            assert not is_partial(f) and not f.name.startswith("."), f"temporary left behind: {f}"
            assert f.stat().st_size > 0, f"0-byte file under a final name: {f}"


def test_record_into_a_full_tmpfs_keeps_the_flushed_frames_and_says_so_once(tmp_path):
    with small_tmpfs(tmp_path / "disk") as disk:
        res = run_cli("record", "--scenarios", "gentle_curves", "--duration", "20", "--out", str(disk / "runs"),
                      "--quiet")
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert res.returncode == 2, res.stderr
        assert len(lines) == 1 and "disk full" in lines[0] and "Traceback" not in res.stderr, res.stderr
        runs = [p for p in (disk / "runs").iterdir() if p.is_dir()]
        assert len(runs) == 1 and str(runs[0]) in lines[0]
        run = runs[0]
        kept = int(lines[0].split("disk full: ")[1].split(" frames")[0])
        log = DriveLog.open(run)
        assert 0 < kept == len(log) < 400  # 20 s at 20 Hz would not fit in 3 MB
        assert not log.complete and "disk full" in log.meta["stop_reason"]
        assert all(f.image.shape == (270, 480, 3) and f.image.dtype == np.uint8 for f in log)
        rows = pd.read_csv(run / "rows.csv")
        assert len(rows) == kept and rows["i"].tolist() == list(range(kept))
        assert not (run / "attention.mp4").exists() and not (run / "report.html").exists()
        assert_no_partial_or_empty_file(disk)


def test_drive_record_into_a_full_tmpfs_leaves_no_live_video(tmp_path):
    with small_tmpfs(tmp_path / "disk") as disk:
        res = run_cli("drive", "--scenario", "gentle_curves", "--headless", "--record", "--duration", "20",
                      "--out", str(disk / "runs"), "--quiet")
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        error = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(error) == 1 and error[0].startswith("error: disk full: "), res.stderr
        run = next(p for p in (disk / "runs").iterdir() if p.is_dir())
        assert len(DriveLog.open(run)) > 0 and not (run / "attention_live.mp4").exists()
        assert_no_partial_or_empty_file(disk)


def test_too_little_free_space_is_one_line_before_driving(tmp_path):
    with small_tmpfs(tmp_path / "disk") as disk:
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        (disk / "fill").write_bytes(b"\0" * (free - 4096))  # leave 4 KB, as the audit did
        res = run_cli("record", "--scenarios", "gentle_curves", "--duration", "5", "--out", str(disk / "runs"),
                      "--quiet")
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert res.returncode == 2 and len(lines) == 1, res.stderr
        assert "disk full" in lines[0] and "--out" in lines[0] and "not a drive log" not in res.stderr
        assert not any((disk / "runs").glob("*/meta.json"))


def test_check_free_space_names_the_folder_and_the_need(tmp_path):
    assert check_free_space(tmp_path, 1) > 0
    where = re.escape(str(tmp_path / "not" / "yet"))
    with pytest.raises(DiskFullError, match=rf"^disk full: .* free in {where}, a recording needs at least .*--out$"):
        check_free_space(tmp_path / "not" / "yet", 1 << 62)


def test_the_recorder_ends_the_drive_when_free_space_runs_below_its_reserve(tmp_path):
    sc = load_scenario("straight_clear")
    rec = RecorderHook(RecorderConfig(out_dir=tmp_path, reserve_bytes=1 << 62))  # "full" from the first frame
    metrics = Runner(EmbeddedSimulator(render=True), ExpertAgent(sc.target_speed_mps), sc, seed=2,
                     duration_s=5.0, hooks=[rec]).run()
    assert rec.disk_full and metrics.frames < 100  # stopped well before the 5 s (100 ticks)
    log = DriveLog.open(rec.run_dir)
    assert not log.complete and log.meta["stop_reason"].startswith("disk full")
    assert len(log) == rec.frames_kept == 0
    assert_no_partial_or_empty_file(rec.run_dir)


# -- atomic writes -------------------------------------------------------------------------------
def test_atomic_file_renames_when_whole_and_removes_on_failure(tmp_path):
    final = tmp_path / "report.html"
    final.write_text("old", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(final) as tmp:
            tmp.write_text("half", encoding="utf-8")
            assert tmp == partial_path(final) and tmp.name == ".report.partial.html"
            raise KeyboardInterrupt
    assert final.read_text(encoding="utf-8") == "old" and not partial_path(final).exists()
    with pytest.raises(OSError, match="0 bytes"):
        with atomic_file(final) as tmp:
            tmp.touch()
    assert final.read_text(encoding="utf-8") == "old" and not partial_path(final).exists()
    write_text_atomic(final, "new")
    assert final.read_text(encoding="utf-8") == "new" and sorted(p.name for p in tmp_path.iterdir()) == [
        "report.html"]


def frames(n, hw=(36, 64)):
    rng = np.random.default_rng(0)
    for _ in range(n):
        yield rng.integers(0, 255, (*hw, 3), np.uint8)


def test_mp4_is_renamed_only_when_finished(tmp_path):
    path = tmp_path / "attention.mp4"
    w = Mp4Writer(path, 10)
    for f in frames(5):
        w.write(f)
    assert not path.exists()  # being written: not under its final name (ffmpeg writes the temporary)
    w.close()
    assert not partial_path(path).exists() and read_video(path).shape[0] == 5


def test_stopping_a_render_leaves_no_truncated_video(tmp_path):
    path = tmp_path / "attention.mp4"

    def interrupted():
        yield from frames(5)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_video(interrupted(), path, 10, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("writer", [Mp4Writer, GifWriter])
def test_an_aborted_or_empty_video_writes_nothing(tmp_path, writer):
    path = tmp_path / f"v{'.mp4' if writer is Mp4Writer else '.gif'}"
    w = writer(path, 10)
    for f in frames(3):
        w.write(f)
    w.abort()
    writer(path, 10).close()  # no frame: no file
    assert list(tmp_path.iterdir()) == []


def test_a_failed_meta_write_keeps_the_old_meta_and_no_temporary(tmp_path, monkeypatch):
    writer_module._replace_meta(tmp_path, {"complete": False}, fsync=False)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer_module.os, "fsync", full)
    with pytest.raises(OSError):
        writer_module._replace_meta(tmp_path, {"complete": True}, fsync=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.json"]
    assert (tmp_path / "meta.json").read_text(encoding="utf-8").strip().endswith("false\n}")


# -- --force -------------------------------------------------------------------------------------
def test_collect_refuses_an_existing_run_folder_without_force(tmp_path, capsys):
    from carla_agent.cli import main

    run = tmp_path / "run"
    run.mkdir()
    (run / "meta.json").write_text('{"format": "carla_agent drive log"}', encoding="utf-8")
    assert main(["collect", "--scenarios", "straight_clear", "--out", str(run), "--episodes", "1",
                 "--duration", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(run) in err and "--force" in err
    assert (run / "meta.json").read_text(encoding="utf-8") == '{"format": "carla_agent drive log"}'
    (tmp_path / "file").write_text("x", encoding="utf-8")
    assert main(["collect", "--scenarios", "straight_clear", "--out", str(tmp_path / "file"), "--force",
                 "--quiet"]) == 2
    assert "is a file" in capsys.readouterr().err


def test_collect_force_replaces_an_existing_dataset(tmp_path, caplog):
    from carla_agent.cli import main

    caplog.set_level(logging.WARNING)
    out = tmp_path / "data"
    args = ["collect", "--scenarios", "straight_clear", "--out", str(out), "--episodes", "1", "--duration", "1",
            "--quiet"]
    assert main(args) == 0
    shards = sorted(p.name for p in out.glob("shard_*.npz"))
    assert shards and main(args) == 2  # a second run into it is refused
    assert main([*args, "--force"]) == 0
    assert sorted(p.name for p in out.glob("shard_*.npz")) == shards


def test_stopping_a_render_from_a_log_keeps_no_attention_video(tmp_path):
    from carla_agent.network.preprocess import Preprocessing
    from carla_agent.recording.render import render_log_video
    from carla_agent.recording.sources import FunctionSource
    from test_drive_log import write_log

    run = tmp_path / "run"
    write_log(run, 9)
    calls = {"n": 0}

    def maps(f):
        calls["n"] += 1
        if calls["n"] > 5:  # in the second batch of 4 frames: Ctrl-C while rendering
            raise KeyboardInterrupt
        return f[..., 0][:12, :32].astype(np.float32)

    src = FunctionSource(maps, "red", preprocessing=Preprocessing(height=12, width=32), steer_fn=lambda f: 0.5)
    before = sorted(p.name for p in run.iterdir())
    with pytest.raises(KeyboardInterrupt):
        render_log_video(run, run / "attention.mp4", [src], batch_size=4, progress=False)
    assert calls["n"] == 6 and sorted(p.name for p in run.iterdir()) == before
