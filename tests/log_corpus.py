"""Damaged drive logs: one small, whole log, the ways to damage it, and the reliability audit's cases.

Shared by ``tests/test_log_fuzz.py`` (hypothesis and the audit's cases as regression
tests) and ``tools/reliability_audit.py`` (the audit's table), so both try the same
damage. A damage is ``(kind, target, position, value)``, applied by :func:`damage`:

* ``delete`` / ``empty`` / ``folder`` a file (a folder in its place);
* ``truncate`` it at a fraction of its length, ``flip`` the byte at a fraction (XOR a mask),
  ``garbage`` appended;
* ``meta_set`` / ``meta_del`` one field of ``meta.json`` (nested fields with dots), or
  ``meta_whole``: the whole file replaced by a JSON value or by text;
* ``row_set`` one field of a row of ``rows.csv`` with its checksum recomputed (a crafted row,
  which the checksum cannot catch), ``header`` a column name replaced.

:func:`read_everything` does what replay, reports and the index do with a log, without a
model: open it, read its properties, every frame and label, the run status, the metrics
from the rows, the key frames and the scenario.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any, List, Tuple

import numpy as np

from carla_agent.errors import CarlaAgentError
from carla_agent.recording.drive_log import DriveLog, DriveLogWriter, RunMeta, scenario_from_meta, scenario_to_dict
from carla_agent.recording.drive_log.rows import _format_line
from carla_agent.recording.report import key_frames
from carla_agent.recording.run_status import run_status
from carla_agent.recording.stats import metrics_from_rows
from carla_agent.resources import scenario_dir
from carla_agent.sim.scenario import load_scenario

H, W, FRAMES = 24, 32, 6
FILES = ("meta.json", "rows.csv", "frames.zst", "semantic.zst", "scenario.yaml")
META_FIELDS = ("format", "version", "run_id", "scenario_name", "scenario_file", "scenario", "scenario.duration_s",
               "seed", "backend", "server_version", "backend_options", "backend_options.render", "dt_s",
               "duration_s", "intervention_m", "camera_hw", "model", "model.path", "agent", "saliency",
               "packages", "started_utc", "ended_utc", "first_frame", "complete", "interrupted", "frames",
               "metrics", "metrics.driving_score", "stop_reason", "videos", "dropped_frames")
ROW_FIELDS = ("i", "frame", "sim_time_s", "steer", "predicted_steer", "lateral_offset_m", "interventions",
              "collisions", "frame_saved", "frame_offset", "frame_bytes", "semantic_offset", "semantic_bytes",
              "route_s_m", "speed_mps", "collision_with", "weather")
#: Values written into meta.json and rows: what a damaged or hand-edited file may hold.
SPECIALS: List[Any] = [0, 0.0, -1, -0.05, math.nan, math.inf, -math.inf, 1e308, 10 ** 30, 10 ** 400, 1e-300,
                       "abc", "", "\x00", [], [1, 2], {}, {"x": 1}, None, True, False, 2 ** 63, 1.5,
                       [0, 0], [10 ** 9, 10 ** 9], "1e12"]


def image(i: int) -> np.ndarray:
    return np.random.default_rng(i).integers(0, 256, (H, W, 3), dtype=np.uint8)


def labels(i: int) -> np.ndarray:
    return np.random.default_rng(1000 + i).integers(0, 8, (H, W), dtype=np.uint8)


def run_meta(run_id: str) -> RunMeta:
    """The metadata of a log of ``straight_clear`` with 24x32 frames."""
    sc = load_scenario("straight_clear")
    return RunMeta(run_id=run_id, scenario_name=sc.name, scenario_file=sc.source, scenario=scenario_to_dict(sc),
                   seed=3, backend="embedded", server_version=None, backend_options={"render": False}, dt_s=0.05,
                   duration_s=10.0, intervention_m=1.0, camera_hw=(H, W))


def make_log(run: Path, frames: int = FRAMES) -> Path:
    """A whole, complete version-3 log of ``frames`` frames (24x32, with labels) in ``run``."""
    w = DriveLogWriter(run, run_meta(run.name), scenario_dir() / "straight_clear.yaml", fsync=False)
    for i in range(frames):
        row = {"i": i, "frame": 100 + i, "sim_time_s": i * 0.05, "steer": 0.1 * i, "throttle": 0.5, "brake": 0.0,
               "hand_brake": 0, "reverse": 0, "predicted_steer": 0.1 * i, "lateral_offset_m": 0.01 * i,
               "route_s_m": 0.5 * i, "speed_mps": 10.0, "interventions": i // 3, "collisions": int(i == 4),
               "lane_invasions": 0, "collision_with": "vehicle:parked" if i == 4 else "", "weather": "clear_noon"}
        w.append(row, image(i), labels(i), outputs=(0.1 * i,), output_names=("steer",))
    w.close({"frames": frames, "driving_score": 100.0, "completed": True}, interrupted=False)
    return run


def copy_log(template: Path, run: Path) -> Path:
    if run.exists():
        shutil.rmtree(run)
    shutil.copytree(template, run)
    return run


def _set(node: Any, dotted: str, value: Any, delete: bool = False) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        if not isinstance(node, dict) or not isinstance(node.get(key), dict):
            return
        node = node[key]
    if not isinstance(node, dict):
        return
    if delete:
        node.pop(last, None)
    else:
        node[last] = value


def _replace_file_with_folder(path: Path) -> None:
    if path.exists():
        path.unlink()
    path.mkdir()
    (path / "x").write_bytes(b"x")


def damage(run: Path, kind: str, target: Any, position: float, value: Any) -> None:
    """Apply one damage (see the module docstring) to the log in ``run``. ``position`` in [0, 1]."""
    if kind in ("delete", "empty", "folder", "truncate", "flip", "garbage"):
        path = run / FILES[int(target) % len(FILES)]
        if not path.is_file():
            return
        data = path.read_bytes()
        if kind == "delete":
            path.unlink()
        elif kind == "empty":
            path.write_bytes(b"")
        elif kind == "folder":
            _replace_file_with_folder(path)
        elif kind == "truncate":
            path.write_bytes(data[:int(len(data) * position)])
        elif kind == "flip" and data:
            k = min(len(data) - 1, int(len(data) * position))
            mask = (int(value) % 255 + 1) if isinstance(value, int) and not isinstance(value, bool) else 0xFF
            path.write_bytes(data[:k] + bytes([data[k] ^ mask]) + data[k + 1:])
        elif kind == "garbage":
            path.write_bytes(data + bytes(range(256)) * 3)
        return
    meta_path = run / "meta.json"
    if kind in ("meta_set", "meta_del", "meta_whole"):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            return
        if kind == "meta_whole":
            if isinstance(value, bytes):
                meta_path.write_bytes(value)
            else:
                meta_path.write_text(value if isinstance(value, str) else json.dumps(value))
            return
        _set(meta, META_FIELDS[int(target) % len(META_FIELDS)], value, delete=kind == "meta_del")
        meta_path.write_text(json.dumps(meta, default=str), encoding="utf-8")  # NaN and Infinity as Python's json writes them
        return
    rows_path = run / "rows.csv"
    if not rows_path.is_file():
        return
    lines = rows_path.read_bytes().decode("utf-8", "surrogateescape").split("\n")
    header = lines[0].split(",")
    if kind == "header":
        k = int(target) % len(header)
        header[k] = value if isinstance(value, str) else header[(k + 1) % len(header)]
        lines[0] = ",".join(header)
    elif kind == "row_set" and len(lines) > 2:
        import csv
        import io

        n = 1 + int(position * (len(lines) - 2)) % (len(lines) - 2)  # a data line (the last is empty)
        body = lines[n].rpartition(",")[0]
        try:
            fields = next(csv.reader(io.StringIO(body)))
        except (csv.Error, StopIteration):
            return
        name = ROW_FIELDS[int(target) % len(ROW_FIELDS)]
        if name in header:
            fields[header.index(name)] = value if isinstance(value, str) else repr(value)
        try:
            lines[n] = _format_line(fields).rstrip("\n")
        except UnicodeEncodeError:  # a byte flipped into the row before: nothing to recompute
            return
    rows_path.write_bytes("\n".join(lines).encode("utf-8", "surrogateescape"))


def read_everything(run: Path) -> int:
    """Everything replay, the report and the index read from a log, without a model.

    Returns:
        the number of frames that decoded. Raises :class:`CarlaAgentError` (a clean error) or,
        for a bug, anything else.
    """
    log = DriveLog.open(run)
    _ = (log.complete, log.scenario_name, log.seed, log.dt_s, log.fps, log.metrics, log.output_names,
         log.indices, log.version, log.has_semantic, repr(log), len(log))
    decoded = sum(1 for _ in log.iter_frames(on_error="skip"))
    log.check()
    if log.indices:
        try:
            log.frame_png(log.indices[0])
        except CarlaAgentError:
            pass
    status = run_status(log.meta, log.rows, log.complete)
    _ = (status.label, status.coverage)
    metrics_from_rows(log.rows)
    key_frames(log.rows)
    try:
        scenario_from_meta(log.meta, str(run / "meta.json"))
    except CarlaAgentError:
        pass
    return decoded


#: The reliability audit's damaged logs, kept as regression tests: (name, damages).
AUDIT: List[Tuple[str, List[Tuple[str, Any, float, Any]]]] = [
    ("meta dt_s 0", [("meta_set", META_FIELDS.index("dt_s"), 0, 0)]),
    ("meta dt_s NaN", [("meta_set", META_FIELDS.index("dt_s"), 0, math.nan)]),
    ("meta dt_s text", [("meta_set", META_FIELDS.index("dt_s"), 0, "0.05")]),
    ("meta dt_s huge", [("meta_set", META_FIELDS.index("dt_s"), 0, 10 ** 400)]),
    ("meta a JSON list", [("meta_whole", 0, 0, [1, 2, 3])]),
    ("meta a JSON string", [("meta_whole", 0, 0, "\"meta\"")]),
    ("meta null", [("meta_whole", 0, 0, "null")]),
    ("meta not JSON", [("meta_whole", 0, 0, "{\"format\": ")]),
    ("meta invalid UTF-8", [("meta_whole", 0, 0, b"{\"format\": \"\xff\xfe\"}")]),
    ("meta nested 100000 deep", [("meta_whole", 0, 0, "[" * 100000 + "]" * 100000)]),
    ("meta version true", [("meta_set", META_FIELDS.index("version"), 0, True)]),
    ("meta version 4", [("meta_set", META_FIELDS.index("version"), 0, 4)]),
    ("meta format missing", [("meta_del", META_FIELDS.index("format"), 0, None)]),
    ("meta seed text", [("meta_set", META_FIELDS.index("seed"), 0, "abc")]),
    ("meta seed 10**30", [("meta_set", META_FIELDS.index("seed"), 0, 10 ** 30)]),
    ("meta camera_hw 0x0", [("meta_set", META_FIELDS.index("camera_hw"), 0, [0, 0])]),
    ("meta camera_hw huge", [("meta_set", META_FIELDS.index("camera_hw"), 0, [10 ** 9, 10 ** 9])]),
    ("meta duration_s -1", [("meta_set", META_FIELDS.index("duration_s"), 0, -1)]),
    ("meta intervention_m inf", [("meta_set", META_FIELDS.index("intervention_m"), 0, math.inf)]),
    ("meta scenario a list", [("meta_set", META_FIELDS.index("scenario"), 0, [1])]),
    ("meta scenario duration NaN", [("meta_set", META_FIELDS.index("scenario.duration_s"), 0, math.nan)]),
    ("meta model path with NUL", [("meta_set", META_FIELDS.index("model"), 0, {"path": "a\x00b"})]),
    ("meta metrics NaN", [("meta_set", META_FIELDS.index("metrics.driving_score"), 0, math.nan)]),
    ("meta complete text", [("meta_set", META_FIELDS.index("complete"), 0, "yes")]),
    ("meta first_frame -1", [("meta_set", META_FIELDS.index("first_frame"), 0, -1)]),
    ("meta backend_options nested", [("meta_set", META_FIELDS.index("backend_options"), 0, {"vehicle": {}})]),
    ("meta videos a list", [("meta_set", META_FIELDS.index("videos"), 0, [1])]),
    ("meta.json missing", [("delete", FILES.index("meta.json"), 0, 0)]),
    ("meta.json empty", [("empty", FILES.index("meta.json"), 0, 0)]),
    ("meta.json a folder", [("folder", FILES.index("meta.json"), 0, 0)]),
    ("meta.json truncated", [("truncate", FILES.index("meta.json"), 0.5, 0)]),
    ("rows.csv missing", [("delete", FILES.index("rows.csv"), 0, 0)]),
    ("rows.csv a folder", [("folder", FILES.index("rows.csv"), 0, 0)]),
    ("rows.csv truncated mid-row", [("truncate", FILES.index("rows.csv"), 0.7, 0)]),
    ("rows.csv byte flipped", [("flip", FILES.index("rows.csv"), 0.6, 1)]),
    ("rows.csv header column renamed", [("header", 2, 0, "sim_time")]),
    ("rows.csv header duplicate column", [("header", 1, 0, 0)]),
    ("rows.csv header with a quote", [("header", 3, 0, "\"steer")]),
    ("row i text (checksum fixed)", [("row_set", ROW_FIELDS.index("i"), 0.5, "abc")]),
    ("row i repeated (checksum fixed)", [("row_set", ROW_FIELDS.index("i"), 0.5, "0")]),
    ("row i huge (checksum fixed)", [("row_set", ROW_FIELDS.index("i"), 0.5, "1" * 5000)]),
    ("row frame_bytes huge (checksum fixed)", [("row_set", ROW_FIELDS.index("frame_bytes"), 0.5, 10 ** 15)]),
    ("row frame_offset -1 (checksum fixed)", [("row_set", ROW_FIELDS.index("frame_offset"), 0.5, -1)]),
    ("row frame_offset past the end (checksum fixed)", [("row_set", ROW_FIELDS.index("frame_offset"), 0.5,
                                                         10 ** 12)]),
    ("row sim_time_s text (checksum fixed)", [("row_set", ROW_FIELDS.index("sim_time_s"), 0.5, "soon")]),
    ("row steer NaN (checksum fixed)", [("row_set", ROW_FIELDS.index("steer"), 0.5, "nan")]),
    ("row speed 10**400 (checksum fixed)", [("row_set", ROW_FIELDS.index("speed_mps"), 0.5, 10 ** 400)]),
    ("row collisions inf (checksum fixed)", [("row_set", ROW_FIELDS.index("collisions"), 0.5, "inf")]),
    ("row interventions empty (checksum fixed)", [("row_set", ROW_FIELDS.index("interventions"), 0.99, "")]),
    ("every row's steering empty", [("row_set", ROW_FIELDS.index("predicted_steer"), k / 6, "") for k in range(6)]
     + [("row_set", ROW_FIELDS.index("steer"), k / 6, "") for k in range(6)]),
    ("frames.zst missing", [("delete", FILES.index("frames.zst"), 0, 0)]),
    ("frames.zst truncated", [("truncate", FILES.index("frames.zst"), 0.5, 0)]),
    ("frames.zst byte flipped in a header", [("flip", FILES.index("frames.zst"), 0.0, 3)]),
    ("frames.zst byte flipped in pixels", [("flip", FILES.index("frames.zst"), 0.5, 1)]),
    ("frames.zst a folder", [("folder", FILES.index("frames.zst"), 0, 0)]),
    ("semantic.zst missing", [("delete", FILES.index("semantic.zst"), 0, 0)]),
    ("semantic.zst byte flipped", [("flip", FILES.index("semantic.zst"), 0.3, 7)]),
    ("semantic.zst empty", [("empty", FILES.index("semantic.zst"), 0, 0)]),
    ("scenario.yaml missing", [("delete", FILES.index("scenario.yaml"), 0, 0)]),
]
