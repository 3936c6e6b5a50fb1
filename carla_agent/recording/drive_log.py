"""The drive log: one folder per run, written while driving, read back for replay and reports.

Layout of a run folder (``runs/<UTC timestamp>_<scenario>/`` by default)::

    meta.json           run metadata; "complete": false until the writer closes cleanly
    scenario.yaml       copy of the scenario file (the exact scenario used is in meta.json)
    rows.csv            one row per frame (columns: :data:`BASE_COLUMNS`, model outputs, crc32)
    frames.zst          lossless (H, W, 3) uint8 RGB camera frames: one blob per frame, back to back,
                        append-only
    semantic.zst        (H, W) uint8 semantic labels, same blobs, when the backend gives them

``pandas.read_csv(run / "rows.csv")`` loads the rows in one call. Row ``i`` is
the ``i``-th frame of the run; ``frame`` is the backend's frame id. Its frame is
the blob of ``frame_bytes`` bytes at ``frame_offset`` in ``frames.zst`` (likewise
``semantic_offset``/``semantic_bytes`` in ``semantic.zst``). A blob is a
16-byte little-endian header (:data:`BLOB_HEADER`: magic ``b"CAZ1"``, height
u32, width u32, channels u16 (1: an (H, W) array), dtype code u8 (1: uint8),
reserved u8) and then one zstd frame (level 1, with its content size and
checksum) of the array's raw C-order bytes, RGB as RGB. By hand::

    import struct, numpy as np, zstandard
    with open(run / "frames.zst", "rb") as fh:
        fh.seek(row.frame_offset)
        blob = fh.read(row.frame_bytes)
    magic, h, w, c, dtype, _ = struct.unpack_from("<4sIIHBB", blob)   # b"CAZ1", 270, 480, 3, 1, 0
    raw = zstandard.ZstdDecompressor().decompress(blob[16:], max_output_size=h * w * c)
    rgb = np.frombuffer(raw, np.uint8).reshape(h, w, c)

(:func:`decode_blob` does this with the checks.) zstd level 1 on raw pixels
instead of PNG (format version 2, ``frames.pngs`` / ``semantic.pngs``: whole
PNG files back to back; still read): 0.6 ms and 54 KB per rendered 480x270
frame (labels: 0.06 ms, 2.8 KB) against 2.1 ms and 59 KB for PNG level 1
without filters (labels, RLE: 0.27 ms, 3.5 KB), and the recorder's worker takes
that CPU from a live drive (bench/bench_recording.py). :meth:`DriveLog.frame_png`
still gives a PNG (encoded on demand for version 3).

One append-only file per stream instead of one file per frame (format version 1,
``frames/000000.png``; still read): creating a file costs 0.2-1 ms of CPU on a
virtual disk, as much as encoding the frame, and a live drive pays for it.

Crash safety: rows are buffered and appended to ``rows.csv`` at least every
``flush_every_s`` seconds of simulated (or wall-clock) time, only after the frames
they point to are on disk (the frame files are flushed and fsync'd); then the CSV
is fsync'd. So every row in the file points to a whole frame. A killed
process loses at most the rows of the last second. The last field of each
row is a CRC-32 of the rest of the line, so a torn or corrupted row is found
and named by :class:`DriveLog` while every other row still reads. A torn or
corrupt frame (blob header, zstd frame and its checksum of the pixels; version 2:
PNG signature, ``IEND`` end and chunk CRCs) is named by its row; the frames
before and after it still read.

A full disk (any ``OSError`` while writing) stops the log with one warning; the
drive goes on and everything flushed before stays readable. ``meta.json`` is
replaced atomically: ``complete`` becomes true only when the writer is closed
after an uninterrupted drive with nothing lost.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import importlib.metadata
import io
import json
import logging
import math
import os
import platform
import shutil
import struct
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np
import zstandard

from carla_agent.errors import CarlaAgentError

log = logging.getLogger(__name__)

FORMAT_NAME = "carla_agent.drive_log"
#: Version 3: zstd blobs back to back in ``frames.zst`` / ``semantic.zst``; version 2: PNGs back to
#: back in ``frames.pngs`` / ``semantic.pngs``; version 1: one PNG file per frame.
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
DEFAULT_RUNS_DIR = Path("runs")
META_FILE = "meta.json"
ROWS_FILE = "rows.csv"
SCENARIO_FILE = "scenario.yaml"
FRAMES_FILE = "frames.zst"
SEMANTIC_FILE = "semantic.zst"
FRAMES_PNGS_FILE = "frames.pngs"      # version 2
SEMANTIC_PNGS_FILE = "semantic.pngs"  # version 2
FRAMES_DIR = "frames"      # version 1: frames/000000.png
SEMANTIC_DIR = "semantic"  # version 1: semantic/000000.png
CRC_COLUMN = "crc32"
#: Flush rows (and fsync frames) at least this often, in simulated or wall-clock seconds.
FLUSH_EVERY_S = 1.0
#: zstd level of the frame blobs. Level 1 compresses a rendered 480x270 frame in ~0.6 ms to ~54 KB
#: (level 3: 0.7 ms, 52 KB; level -1: 0.55 ms, 58 KB; PNG level 1 without filters, format 2: 2.1 ms,
#: 59 KB; bench/bench_recording.py prints the table).
ZSTD_LEVEL = 1
#: Frame blob header: magic, height u32, width u32, channels u16, dtype code u8, reserved u8.
BLOB_HEADER = struct.Struct("<4sIIHBB")
BLOB_MAGIC = b"CAZ1"
#: dtype codes of the blob header.
BLOB_DTYPES = {1: np.dtype(np.uint8)}
_BLOB_CODES = {dt: code for code, dt in BLOB_DTYPES.items()}
#: Largest frame a blob may declare (sanity check of a header read from disk), bytes.
BLOB_MAX_BYTES = 1 << 30

#: Columns of every row, in file order. Model outputs follow as ``out_<name>``, then ``crc32``.
BASE_COLUMNS: Tuple[str, ...] = (
    "i",                    # row index = frame file number, from 0
    "frame",                # backend frame id
    "sim_time_s",           # simulated time since reset
    "wall_time_s",          # wall-clock time since the log was opened
    "predicted_steer",      # the agent's steering in [-1, 1] (network output, or expert label)
    "predicted_throttle",   # the model's throttle output, empty when it has none
    "agent_steer",          # the agent's control before any hook override
    "steer", "throttle", "brake", "hand_brake", "reverse",  # the applied control
    "overridden",           # 1 when a hook replaced the agent's control (manual takeover)
    "expert_steer",         # what the expert would steer now, empty when unknown
    "speed_mps",
    "x_m", "y_m", "z_m", "yaw_deg", "pitch_deg", "roll_deg",  # CARLA world frame
    "lateral_offset_m",     # + = right of the lane centre
    "heading_error_rad",    # + = pointing right of the lane
    "route_s_m", "route_length_m", "lane_width_m",
    "lead_distance_m", "lead_speed_mps",  # empty when there is no lead car
    "interventions",        # interventions before this frame's decision
    "autonomy_pct",
    "sim_fps",              # simulation ticks per wall-clock second (smoothed)
    "collisions",           # collision events in the tick that produced this frame
    "collision_with",       # ';'-joined "kind:other" of those events
    "collision_impulse_ns",
    "lane_invasions",       # lane-invasion events in that tick
    "lane_markings",        # ';'-joined crossed marking types
    "weather", "done",
    "frame_saved",          # 0 when the recorder dropped the image to keep a live drive real-time
    "frame_offset", "frame_bytes",        # where the frame's blob is in frames.zst (empty: not saved)
    "semantic_offset", "semantic_bytes",  # where its labels' blob is in semantic.zst (empty: none)
)

#: Columns holding the applied control, in :class:`~carla_agent.control.vehicle_control.VehicleControl` order.
CONTROL_COLUMNS = ("steer", "throttle", "brake", "hand_brake", "reverse")


class DriveLogError(CarlaAgentError):
    """A run folder is missing, not a drive log, or a row / frame of it cannot be read."""


# -- metadata -------------------------------------------------------------------------------

def utc_now() -> str:
    """Current UTC time, ISO 8601 with a ``Z``, to the millisecond."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def package_versions() -> Dict[str, Optional[str]]:
    """Versions of the packages that shape a run, read from metadata (nothing heavy is imported).

    Keys: python, carla_agent, numpy, tensorflow, keras, opencv, carla, imageio,
    imageio_ffmpeg, pandas; ``None`` when a package is not installed.
    """
    def first(*dists: str) -> Optional[str]:
        for dist in dists:
            try:
                return importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
        return None

    from carla_agent import __version__

    return {
        "python": platform.python_version(),
        "carla_agent": __version__,
        "numpy": np.__version__,
        "tensorflow": first("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tf-nightly"),
        "keras": first("keras"),
        "opencv": cv2.__version__,
        "carla": first("carla"),
        "imageio": first("imageio"),
        "imageio_ffmpeg": first("imageio-ffmpeg"),
        "pandas": first("pandas"),
    }


@dataclass(frozen=True)
class SaliencySettings:
    """How the live attention maps of a run were made (``None`` fields: not applicable).

    Attributes:
        method: registry name (``visual_backprop``).
        output: explained output column name.
        target: ``auto``/``right``/``left``/``straight``.
        layer: conv layer, for methods that use one.
        options: method options as given to ``make_explainer``.
    """

    method: str
    output: Optional[str] = None
    target: Optional[str] = None
    layer: Optional[str] = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_explainer(cls, explainer: Any) -> Optional["SaliencySettings"]:
        """Read the settings off a saliency explainer (duck-typed), or None for no explainer."""
        if explainer is None:
            return None
        options = getattr(explainer, "options", None)
        opts = dataclasses.asdict(options) if dataclasses.is_dataclass(options) else {}
        return cls(method=str(getattr(explainer, "method", type(explainer).__name__)),
                   output=getattr(explainer, "output_name", None),
                   target=getattr(explainer, "target_label", None),
                   layer=getattr(explainer, "layer", None), options=opts)

    def to_dict(self) -> dict:
        return {"method": self.method, "output": self.output, "target": self.target, "layer": self.layer,
                "options": _jsonable(dict(self.options))}


@dataclass(frozen=True)
class RunMeta:
    """What is known about a run when it starts. Written to ``meta.json`` with the end fields.

    Attributes:
        run_id: the run folder's name.
        scenario_name: the scenario's name.
        scenario_file: path of the scenario YAML it was loaded from (``None`` for in-memory).
        scenario: the exact scenario driven, as a JSON mapping
            (``dataclasses.asdict(Scenario)``; rebuilt by :func:`scenario_from_meta`).
        seed: episode seed.
        backend: backend name (``embedded``, ``carla``).
        server_version: the CARLA server version, ``None`` for the embedded backend.
        backend_options: options a re-simulation needs (embedded: ``{"render": bool}``).
        dt_s: [s] fixed time step.
        duration_s: [s] time limit of the drive.
        intervention_m: [m] lateral offset that triggers an intervention (and a recover).
        camera_hw: ``(H, W)`` of the camera frames, pixels.
        model: ``SteeringModel.summary()`` (includes ``sha256``), ``None`` for the expert.
        agent: the agent's class name.
        saliency: live saliency settings, ``None`` when no map was computed while driving.
        packages: :func:`package_versions`.
        started_utc: ISO 8601 UTC start time.
        first_frame: backend frame id of row 0 (> the reset frame when recording began mid-drive).
    """

    run_id: str
    scenario_name: str
    scenario_file: Optional[str]
    scenario: Mapping[str, Any]
    seed: int
    backend: str
    server_version: Optional[str]
    backend_options: Mapping[str, Any]
    dt_s: float
    duration_s: float
    intervention_m: float
    camera_hw: Tuple[int, int]
    model: Optional[Mapping[str, Any]] = None
    agent: Optional[str] = None
    saliency: Optional[Mapping[str, Any]] = None
    packages: Mapping[str, Any] = field(default_factory=package_versions)
    started_utc: str = field(default_factory=utc_now)
    first_frame: int = 0

    def to_dict(self) -> dict:
        return _jsonable({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})


def _jsonable(value: Any) -> Any:
    """Tuples, NumPy scalars and mapping proxies -> plain JSON types."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def scenario_to_dict(scenario: Any) -> dict:
    """A :class:`~carla_agent.sim.scenario.Scenario` as JSON-ready data (``source`` dropped)."""
    data = _jsonable(dataclasses.asdict(scenario))
    data.pop("source", None)
    return data


def scenario_from_meta(meta: Mapping[str, Any], source: str = "meta.json"):
    """Rebuild the exact :class:`~carla_agent.sim.scenario.Scenario` a run drove."""
    from carla_agent.sim.scenario import Scenario
    from carla_agent.schema import build

    sc = build(Scenario, dict(meta["scenario"]), source)
    return dataclasses.replace(sc, source=meta.get("scenario_file") or source)


def new_run_dir(out_dir: str | Path, scenario_name: str, when: Optional[_dt.datetime] = None) -> Path:
    """Create and return ``out_dir/<UTC YYYYmmddTHHMMSSZ>_<scenario>[_k]/`` (never reuses a folder)."""
    when = when or _dt.datetime.now(_dt.timezone.utc)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in scenario_name) or "run"
    base = f"{when.strftime('%Y%m%dT%H%M%SZ')}_{safe}"
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    for k in range(1, 1000):
        path = root / (base if k == 1 else f"{base}_{k}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise DriveLogError(f"{root}: cannot create a new run folder for {base}; clean up {root}")


# -- rows -------------------------------------------------------------------------------------

def _num(value: Optional[float]) -> Any:
    """A float for the CSV: exact repr, empty for None/NaN."""
    if value is None:
        return ""
    value = float(value)
    return "" if not math.isfinite(value) else value


def make_row(i: int, record: Any, wall_time_s: float) -> Dict[str, Any]:
    """One CSV row (without model outputs) from a runner :class:`~carla_agent.drive.runner.StepRecord`.

    Floats keep their exact ``repr`` in the file, so controls read back bit-identical.
    """
    obs, decision, control = record.obs, record.decision, record.control
    truth, pose = obs.truth, obs.pose
    return {
        "i": i, "frame": obs.frame, "sim_time_s": obs.sim_time_s, "wall_time_s": round(wall_time_s, 4),
        "predicted_steer": _num(decision.predicted_steer), "predicted_throttle": _num(decision.predicted_throttle),
        "agent_steer": decision.control.steer,
        "steer": control.steer, "throttle": control.throttle, "brake": control.brake,
        "hand_brake": int(control.hand_brake), "reverse": int(control.reverse),
        "overridden": int(control != decision.control),
        "expert_steer": _num(truth.expert_steer), "speed_mps": obs.speed_mps,
        "x_m": pose.x_m, "y_m": pose.y_m, "z_m": pose.z_m, "yaw_deg": pose.yaw_deg,
        "pitch_deg": pose.pitch_deg, "roll_deg": pose.roll_deg,
        "lateral_offset_m": truth.lateral_offset_m, "heading_error_rad": truth.heading_error_rad,
        "route_s_m": truth.route_s_m, "route_length_m": truth.route_length_m, "lane_width_m": truth.lane_width_m,
        "lead_distance_m": _num(truth.lead_distance_m), "lead_speed_mps": _num(truth.lead_speed_mps),
        "interventions": record.interventions, "autonomy_pct": _num(record.autonomy_pct),
        "sim_fps": round(float(record.sim_fps), 2),
        "collisions": len(obs.collisions),
        "collision_with": ";".join(f"{c.other_kind}:{c.other}" for c in obs.collisions),
        "collision_impulse_ns": _num(sum(c.impulse_ns for c in obs.collisions)),
        "lane_invasions": len(obs.lane_invasions),
        "lane_markings": ";".join(m for ev in obs.lane_invasions for m in ev.markings),
        "weather": obs.weather, "done": int(bool(obs.done)),
    }


def output_columns(names: Sequence[str]) -> List[str]:
    """CSV column names of the model outputs: ``out_<name>``."""
    return [f"out_{n}" for n in names]


def _format_line(values: Sequence[Any]) -> str:
    """CSV text of ``values`` plus the CRC-32 field, ending in a newline."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(values)
    body = buf.getvalue()
    return f"{body},{zlib.crc32(body.encode('utf-8'))}\n"


# -- frame blobs ------------------------------------------------------------------------------

def make_compressor(level: int = ZSTD_LEVEL) -> zstandard.ZstdCompressor:
    """The zstd compressor of frame blobs (with content size and checksum). Not thread-safe."""
    return zstandard.ZstdCompressor(level=int(level), write_checksum=True, write_content_size=True)


def encode_blob(array: np.ndarray, compressor: zstandard.ZstdCompressor) -> bytes:
    """One frame blob: :data:`BLOB_HEADER` and a zstd frame of ``array``'s raw C-order bytes.

    Args:
        array: ``(H, W, C)`` or ``(H, W)`` (stored as 1 channel) uint8.
        compressor: from :func:`make_compressor`; used by one thread at a time.
    """
    array = np.ascontiguousarray(array)
    if array.ndim not in (2, 3) or array.dtype not in _BLOB_CODES:
        raise ValueError(f"expected an (H, W) or (H, W, C) uint8 array, got {array.dtype} {array.shape}")
    h, w = array.shape[:2]
    c = array.shape[2] if array.ndim == 3 else 1
    header = BLOB_HEADER.pack(BLOB_MAGIC, h, w, c, _BLOB_CODES[array.dtype], 0)
    return header + compressor.compress(array.data)


def decode_blob(data: bytes, decompressor: zstandard.ZstdDecompressor) -> np.ndarray:
    """The array of a frame blob: ``(H, W, C)``, or ``(H, W)`` when it has 1 channel.

    Raises:
        ValueError: bad header (magic, sizes, dtype), a zstd error (torn or corrupt data, checksum
            mismatch), or not the declared size.
    """
    if len(data) < BLOB_HEADER.size:
        raise ValueError(f"{len(data)} bytes, shorter than the {BLOB_HEADER.size}-byte header")
    magic, h, w, c, code, _ = BLOB_HEADER.unpack_from(data)
    if magic != BLOB_MAGIC:
        raise ValueError(f"bad magic {magic!r} (expected {BLOB_MAGIC!r})")
    dtype = BLOB_DTYPES.get(code)
    if dtype is None:
        raise ValueError(f"unknown dtype code {code}")
    size = h * w * c * dtype.itemsize
    if not (h and w and c) or size > BLOB_MAX_BYTES:
        raise ValueError(f"insane size {h}x{w}x{c}")
    payload = memoryview(data)[BLOB_HEADER.size:]
    try:
        declared = zstandard.frame_content_size(payload)
        if declared != size:  # checked first: a damaged header must not make us allocate its size
            raise ValueError(f"the zstd frame holds {declared} bytes, the header says {h}x{w}x{c}")
        raw = decompressor.decompress(payload, max_output_size=size, allow_extra_data=False)
    except zstandard.ZstdError as exc:
        raise ValueError(f"zstd: {exc}") from None
    if len(raw) != size:
        raise ValueError(f"{len(raw)} bytes decompressed, expected {size}")
    arr = np.frombuffer(raw, dtype).copy()  # writable, like a decoded PNG (~0.005 ms a 480x270 frame)
    return arr.reshape((h, w) if c == 1 else (h, w, c))


# -- writer -------------------------------------------------------------------------------------

class _Stream:
    """One append-only file of frame blobs back to back (``frames.zst``), opened on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh = open(path, "ab")
        self.offset = self.fh.tell()  # where the next blob starts
        self.dirty = False            # written since the last flush
        self.new = True               # its directory entry is not synced yet

    def append(self, data: bytes) -> Tuple[int, int]:
        """Append ``data``; return its ``(offset, size)``. Buffered: :meth:`sync` makes it durable."""
        offset, size = self.offset, len(data)
        self.fh.write(data)
        self.offset += size
        self.dirty = True
        return offset, size

    def sync(self, fsync: bool) -> None:
        if self.dirty:
            self.fh.flush()
            if fsync:
                os.fsync(self.fh.fileno())
            self.dirty = False

    def close(self) -> None:
        self.fh.close()


class DriveLogWriter:
    """Writes one run folder. Not thread-safe: use it from one thread (the recorder's worker).

    Args:
        run_dir: an empty folder (see :func:`new_run_dir`).
        meta: what is known at the start; ``meta.json`` is written now with ``complete: false``.
        scenario_file: YAML file to copy to ``scenario.yaml`` (skipped when missing).
        flush_every_s: [s] flush rows at least this often in simulated and in wall-clock time.
        zstd_level: zstd level of the frame blobs (1: ~0.6 ms and ~54 KB per rendered 480x270 frame;
            negative levels are faster and larger, higher ones slower).
        fsync: fsync frames, rows and meta at each flush (off only for throw-away runs).

    Use as a context manager, or call :meth:`close` (idempotent).
    """

    def __init__(self, run_dir: str | Path, meta: RunMeta, scenario_file: Optional[str | Path] = None,
                 flush_every_s: float = FLUSH_EVERY_S, zstd_level: int = ZSTD_LEVEL,
                 fsync: bool = True) -> None:
        self.path = Path(run_dir)
        self.meta = meta
        self.flush_every_s = float(flush_every_s)
        self.fsync = fsync
        # One compressor, used only by the thread calling append (not thread-safe).
        self._zstd = make_compressor(zstd_level)
        self._streams: Dict[str, _Stream] = {}
        self._columns: Optional[List[str]] = None
        self._pending_rows: List[str] = []
        self._last_flush_sim_s: Optional[float] = None
        self._last_flush_wall = time.monotonic()
        self._last_sim_s = 0.0
        self._rows_fh = None
        self._rows_new = True
        self.frames_written = 0   # rows appended (flushed or pending)
        self.frames_flushed = 0   # rows known to be on disk
        self.error: Optional[str] = None  # why logging stopped, when it did
        self._closed = False
        self._end: Dict[str, Any] = {}
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            if scenario_file is not None and Path(scenario_file).is_file():
                shutil.copyfile(scenario_file, self.path / SCENARIO_FILE)
            self._write_meta(complete=False)
            self._rows_fh = open(self.path / ROWS_FILE, "a", encoding="utf-8", newline="")
        except OSError as exc:
            self._fail(exc)

    # -- public -----------------------------------------------------------------
    @property
    def active(self) -> bool:
        """True while frames are still being logged (not closed, no write error)."""
        return not self._closed and self.error is None

    def append(self, row: Mapping[str, Any], image: Optional[np.ndarray], semantic: Optional[np.ndarray] = None,
               outputs: Sequence[float] = (), output_names: Sequence[str] = ()) -> bool:
        """Write one frame and queue its row.

        Args:
            row: the :data:`BASE_COLUMNS` values (see :func:`make_row`); ``row["i"]``
                must count up from 0 by one.
            image: ``(H, W, 3)`` uint8 RGB camera frame; None writes the row alone
                (``frame_saved`` 0: the recorder dropped the image).
            semantic: ``(H, W)`` uint8 labels, or None.
            outputs: every scalar model output; the first row fixes how many.
            output_names: their names (``out_<name>`` columns); default ``0, 1, ...``.

        Returns:
            False when logging has stopped (after a write error or close).
        """
        if not self.active:
            return False
        i = int(row["i"])
        if i != self.frames_written:
            raise ValueError(f"row i={i} out of order; expected i={self.frames_written}")
        names = list(output_names) or [str(k) for k in range(len(outputs))]
        if self._columns is None:
            self._columns = [*BASE_COLUMNS, *output_columns(names)]
            self._n_outputs = len(names)
            self._pending_rows.append(_header_line(self._columns))
        row = {**row, "frame_saved": int(image is not None)}
        try:
            if image is not None:
                row["frame_offset"], row["frame_bytes"] = self._write_frame(FRAMES_FILE, _check_rgb(image))
            if image is not None and semantic is not None:
                row["semantic_offset"], row["semantic_bytes"] = self._write_frame(
                    SEMANTIC_FILE, _check_labels(semantic))
        except OSError as exc:
            self._fail(exc, i)
            self._save_pending_rows()
            return False
        values = [row.get(c, "") for c in BASE_COLUMNS]
        outs = [_num(v) for v in outputs][: self._n_outputs]
        values += outs + [""] * (self._n_outputs - len(outs))
        self._pending_rows.append(_format_line(values))
        self.frames_written += 1
        sim_s = float(row.get("sim_time_s", 0.0) or 0.0)
        self._last_sim_s = sim_s
        if self._last_flush_sim_s is None:
            self._last_flush_sim_s = sim_s
        if (sim_s - self._last_flush_sim_s >= self.flush_every_s
                or time.monotonic() - self._last_flush_wall >= self.flush_every_s):
            self.flush()
        return self.active

    def flush(self) -> None:
        """Make every appended frame and row durable: fsync the frame files, append rows, fsync rows."""
        if self.error is not None or self._rows_fh is None:
            return
        try:
            self._sync_streams()
            if self._pending_rows:
                self._rows_fh.write("".join(self._pending_rows))
                self._rows_fh.flush()
                if self.fsync:
                    os.fsync(self._rows_fh.fileno())
                    if self._rows_new:
                        _fsync_dir(self.path)
                        self._rows_new = False
        except OSError as exc:
            self._fail(exc)
            return
        self._pending_rows.clear()
        self.frames_flushed = self.frames_written
        self._last_flush_sim_s = self._last_sim_s
        self._last_flush_wall = time.monotonic()

    def close(self, metrics: Optional[Mapping[str, Any]] = None, interrupted: bool = False,
              complete: Optional[bool] = None, reason: Optional[str] = None, **extra: Any) -> None:
        """Flush, then rewrite ``meta.json`` with the end time, metrics and ``complete``.

        Args:
            metrics: closed-loop metrics (``DriveMetrics.to_dict()``).
            interrupted: the drive was interrupted (Ctrl-C); the run stays incomplete.
            complete: override; default ``not interrupted`` and no write error.
            reason: why the run is incomplete, when it is and there was no write error.
            **extra: more JSON fields for ``meta.json`` (e.g. ``dropped_frames``).
        """
        if self._closed:
            return
        self.flush()
        self._closed = True
        for fh in [*(s.fh for s in self._streams.values()), self._rows_fh]:
            if fh is None:
                continue
            try:
                fh.close()
            except OSError as exc:
                self._fail(exc)
        done = (not interrupted and self.error is None) if complete is None else bool(complete)
        self._end = {"ended_utc": utc_now(), "interrupted": bool(interrupted), "frames": self.frames_flushed,
                     "metrics": _jsonable(dict(metrics)) if metrics is not None else None,
                     "stop_reason": self.error or (None if done else reason or
                                                   ("interrupted" if interrupted else None)),
                     **_jsonable(extra)}
        try:
            self._write_meta(complete=done and self.error is None)
        except OSError as exc:
            log.warning("%s: could not write the final meta.json (%s); the run reads as incomplete",
                        self.path, exc)

    def __enter__(self) -> "DriveLogWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(interrupted=exc_type is not None)

    # -- internals ------------------------------------------------------------------
    def _write_frame(self, name: str, array: np.ndarray) -> Tuple[int, int]:
        """Encode ``array`` as a blob and append it to stream ``name``; return its ``(offset, size)``."""
        blob = encode_blob(array, self._zstd)
        stream = self._streams.get(name)
        if stream is None:
            stream = self._streams[name] = _Stream(self.path / name)
        # Appended in place, buffered: a blob is referenced only by rows flushed after it was
        # flushed and synced, so a torn blob of a killed writer is never pointed to.
        return stream.append(blob)

    def _sync_streams(self) -> None:
        new = False
        for stream in self._streams.values():
            stream.sync(self.fsync)
            new |= stream.new
            stream.new = False
        if new and self.fsync:
            _fsync_dir(self.path)

    def _save_pending_rows(self) -> None:
        """After a write error: append the rows whose frames can still be made durable."""
        if not self._pending_rows or self._rows_fh is None:
            return
        try:
            self._sync_streams()
            self._rows_fh.write("".join(self._pending_rows))
            self._rows_fh.flush()
            if self.fsync:
                os.fsync(self._rows_fh.fileno())
            self.frames_flushed = self.frames_written
        except OSError:
            pass  # the reader drops a torn last row, and names a frame cut short
        self._pending_rows.clear()

    def _write_meta(self, complete: bool) -> None:
        data = {"format": FORMAT_NAME, "version": FORMAT_VERSION, **self.meta.to_dict(),
                "complete": bool(complete), **self._end}
        text = json.dumps(data, indent=1, default=str)
        tmp = self.path / f".{META_FILE}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            if self.fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, self.path / META_FILE)
        if self.fsync:
            _fsync_dir(self.path)

    def _fail(self, exc: OSError, i: Optional[int] = None) -> None:
        if self.error is not None:
            return
        what = "disk full" if getattr(exc, "errno", None) == 28 else f"write error ({exc})"
        where = f" at frame i={i}" if i is not None else ""
        self.error = f"{what}{where}"
        log.warning("%s: drive log stopped: %s%s; the drive goes on, and the %d frame(s) flushed before "
                    "stay readable (the run is marked incomplete)", self.path, what, where, self.frames_flushed)


def _header_line(columns: Sequence[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([*columns, CRC_COLUMN])
    return buf.getvalue() + "\n"


def _check_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {image.dtype} {image.shape}")
    return image


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"expected (H, W) semantic labels, got {labels.dtype} {labels.shape}")
    return labels.astype(np.uint8, copy=False)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        _fsync_path(path)
    except OSError:  # some filesystems (and Windows) cannot open or fsync a directory
        pass


# -- reader ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LogProblem:
    """A row or frame of a log that cannot be read.

    Attributes:
        i: row / frame index it concerns (``None`` when unknown).
        what: a sentence saying what is wrong.
    """

    i: Optional[int]
    what: str


@dataclass(frozen=True)
class LogFrame:
    """One frame of a log, as yielded by :meth:`DriveLog.iter_frames`.

    Attributes:
        i: row index.
        row: the row as a dict of column -> value.
        image: ``(H, W, 3)`` uint8 RGB.
        semantic: ``(H, W)`` uint8 labels, or None.
    """

    i: int
    row: Dict[str, Any]
    image: np.ndarray
    semantic: Optional[np.ndarray] = None


class DriveLog:
    """Read a run folder. Build with :meth:`open`.

    Attributes:
        path: the run folder.
        meta: ``meta.json`` as a dict.
        rows: a ``pandas.DataFrame``, one row per readable frame row, indexed by ``i``
            (``i`` is also a column); the ``crc32`` column is dropped.
        problems: rows found corrupt or torn when opening (frames are checked when read).
    """

    def __init__(self, path: Path, meta: dict, rows, problems: List[LogProblem]) -> None:
        self.path = path
        self.meta = meta
        self.rows = rows
        self.problems = problems
        self._bad_rows = {p.i: p.what for p in problems if p.i is not None}
        self._records: Optional[Dict[int, Dict[str, Any]]] = None
        self._local = threading.local()  # one zstd decompressor per reading thread (not thread-safe)

    # -- opening ----------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> "DriveLog":
        """Open a run folder; corrupt rows are skipped (listed in :attr:`problems`, logged).

        Raises:
            DriveLogError: no such folder, or no readable ``meta.json``.
        """
        path = Path(path)
        if not path.is_dir():
            raise DriveLogError(f"{path}: no such run folder; pass a folder under runs/ written by --record")
        meta_path = path / META_FILE
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DriveLogError(f"{path}: not a drive log (no {META_FILE})") from None
        except (OSError, ValueError) as exc:
            raise DriveLogError(f"{meta_path}: unreadable ({exc}); the run folder is damaged") from None
        if meta.get("format") != FORMAT_NAME:
            raise DriveLogError(f"{meta_path}: not a drive log (format {meta.get('format')!r})")
        if meta.get("version") not in READABLE_VERSIONS:
            raise DriveLogError(f"{meta_path}: drive log format version {meta.get('version')!r}; this carla_agent "
                                f"reads versions {', '.join(map(str, READABLE_VERSIONS))} (a newer one wrote it?)")
        rows, problems = _read_rows(path / ROWS_FILE)
        for p in problems:
            log.warning("%s: %s", path, p.what)
        out = cls(path, meta, rows, problems)
        if not out.complete:
            reason = meta.get("stop_reason") or ("interrupted" if meta.get("interrupted") else
                                                 "the writer never finished: killed or crashed")
            log.warning("%s: incomplete run (%s); %d frame(s) readable", path, reason, len(rows))
        return out

    # -- metadata -----------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        """True only when the writer closed after a whole, uninterrupted drive with nothing lost."""
        return bool(self.meta.get("complete", False))

    @property
    def scenario_name(self) -> str:
        return str(self.meta.get("scenario_name", ""))

    @property
    def seed(self) -> int:
        return int(self.meta.get("seed", 0))

    @property
    def dt_s(self) -> float:
        """[s] simulation time step."""
        return float(self.meta.get("dt_s", 0.05))

    @property
    def fps(self) -> float:
        """Frames per simulated second (``1 / dt_s``)."""
        return 1.0 / self.dt_s

    @property
    def metrics(self) -> Optional[dict]:
        """Closed-loop metrics, when the writer got to close."""
        return self.meta.get("metrics")

    @property
    def output_names(self) -> List[str]:
        """Model output names logged as ``out_<name>`` columns."""
        return [c[4:] for c in self.rows.columns if c.startswith("out_")]

    @property
    def indices(self) -> List[int]:
        """Row indices ``i`` that read, in order."""
        return [int(v) for v in self.rows.index]

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return (f"DriveLog({self.path}, {len(self)} frames, scenario {self.scenario_name!r}, "
                f"{'complete' if self.complete else 'INCOMPLETE'})")

    @property
    def version(self) -> int:
        """Format version: 3 (zstd blobs in ``frames.zst``), 2 (PNGs back to back in ``frames.pngs``)
        or 1 (``frames/000000.png``)."""
        return int(self.meta.get("version", 1))

    @property
    def has_semantic(self) -> bool:
        """True when the run stored semantic labels (for at least one readable row)."""
        if self.version < 2:
            return (self.path / SEMANTIC_DIR).is_dir()
        return "semantic_bytes" in self.rows.columns and bool(self.rows["semantic_bytes"].notna().any())

    # -- frames -------------------------------------------------------------------------
    def frame_path(self, i: int) -> Path:
        """The file holding frame ``i`` (``frames.zst``; version 2: ``frames.pngs``; 1: ``frames/<i>.png``)."""
        return self.path / {3: FRAMES_FILE, 2: FRAMES_PNGS_FILE}.get(self.version, f"{FRAMES_DIR}/{int(i):06d}.png")

    def semantic_path(self, i: int) -> Path:
        """The file holding frame ``i``'s labels (``semantic.zst``; version 2: ``semantic.pngs``;
        1: ``semantic/<i>.png``)."""
        return self.path / {3: SEMANTIC_FILE, 2: SEMANTIC_PNGS_FILE}.get(self.version,
                                                                         f"{SEMANTIC_DIR}/{int(i):06d}.png")

    def frame_png(self, i: int) -> bytes:
        """Frame ``i`` as PNG file bytes.

        Versions 1 and 2 store PNGs: their bytes, undecoded (checked: whole, PNG signature and end).
        Version 3 stores zstd blobs: the frame is decoded and encoded as a PNG on demand
        (PNG level 1, ~2 ms a 480x270 frame), so the bytes are a valid PNG of the same pixels,
        not bytes of the log.

        Raises:
            DriveLogError: missing, not saved, truncated or corrupt (the message names the frame).
        """
        i = int(i)
        if self.version < 3:
            return self._stored_bytes(i, "frame")
        ok, png = cv2.imencode(".png", cv2.cvtColor(self.frame(i), cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise DriveLogError(f"{self.frame_path(i)}: frame i={i} could not be PNG-encoded")
        return png.tobytes()

    def _stored_bytes(self, i: int, what: str) -> bytes:
        """The stored bytes of frame ``i`` (``what``: frame / semantic): a blob (v3) or a PNG (v1, v2)."""
        semantic = what != "frame"
        path = self.semantic_path(i) if semantic else self.frame_path(i)
        label = "semantic frame" if semantic else "frame"
        if self.version < 2:
            if not semantic and not path.exists() and i in self.rows.index and not self.rows.at[i, "frame_saved"]:
                raise self._not_saved(path, i)
            return _check_png(_read_bytes(path, i, label), path, i, label)
        row = self.row(i)  # raises, naming the frame, when its row is corrupt or missing
        if not row.get("frame_saved"):
            raise self._not_saved(path, i)
        offset, size = row.get(f"{what}_offset"), row.get(f"{what}_bytes")
        if _missing(offset) or _missing(size):
            if semantic:
                return b""
            raise DriveLogError(f"{path}: frame i={i}: its row gives no offset and size")
        offset, size = int(offset), int(size)
        data = _read_bytes(path, i, label, offset, size)
        if len(data) < size:
            raise DriveLogError(f"{path}: {label} i={i} is truncated ({len(data)} of {size} bytes at byte {offset}; "
                                "the file was cut short); the other frames still read")
        return data if self.version >= 3 else _check_png(data, path, i, label)

    def _decode(self, data: bytes, path: Path, i: int, what: str, color: bool) -> np.ndarray:
        """Stored bytes -> ``(H, W, 3)`` RGB (``color``) or ``(H, W)`` labels."""
        if self.version < 3:
            return _decode_png(data, path, i, what, color)
        dctx = getattr(self._local, "zstd", None)
        if dctx is None:
            dctx = self._local.zstd = zstandard.ZstdDecompressor()
        try:
            arr = decode_blob(data, dctx)
        except ValueError as exc:
            raise DriveLogError(f"{path}: {what} i={i} is corrupt ({exc}); the other frames still read") from None
        if arr.ndim != (3 if color else 2) or (color and arr.shape[2] != 3):
            raise DriveLogError(f"{path}: {what} i={i} is corrupt (shape {arr.shape}, expected "
                                f"{'(H, W, 3)' if color else '(H, W)'}); the other frames still read")
        return arr

    def _not_saved(self, path: Path, i: int) -> DriveLogError:
        return DriveLogError(f"{path}: frame i={i} was not saved (the recorder dropped it to keep "
                             "the live drive real-time); its row is in the log")

    def row(self, i: int) -> Dict[str, Any]:
        """Row ``i`` as a dict.

        Raises:
            DriveLogError: the row is corrupt or missing (the message names the frame).
        """
        i = int(i)
        if i in self._bad_rows:
            raise DriveLogError(f"{self.path}: frame i={i}: {self._bad_rows[i]}")
        if self._records is None:  # one conversion: pandas' per-row .loc is ~100x slower
            self._records = {int(r["i"]): r for r in self.rows.to_dict("records")}
        try:
            return dict(self._records[i])
        except KeyError:
            raise DriveLogError(f"{self.path}: frame i={i} has no row (the log has {len(self)} rows"
                                f"{'' if self.complete else '; the run is incomplete'})") from None

    def frame(self, i: int) -> np.ndarray:
        """Camera frame ``i``: ``(H, W, 3)`` uint8 RGB.

        Raises:
            DriveLogError: the frame is missing, truncated or corrupt (the message names the frame).
        """
        i = int(i)
        return self._decode(self._stored_bytes(i, "frame"), self.frame_path(i), i, "frame", color=True)

    def semantic(self, i: int) -> Optional[np.ndarray]:
        """Semantic labels of frame ``i``: ``(H, W)`` uint8, or None when the run has none.

        Raises:
            DriveLogError: the labels are stored but truncated or corrupt.
        """
        i = int(i)
        if self.version < 2:
            if not self.semantic_path(i).exists():
                return None
        elif not (i in self.rows.index and self.rows.at[i, "frame_saved"]
                  and not _missing(self.rows.at[i, "semantic_bytes"])):
            return None
        data = self._stored_bytes(i, "semantic")
        return self._decode(data, self.semantic_path(i), i, "semantic frame", color=False) if data else None

    def iter_frames(self, indices: Optional[Sequence[int]] = None, semantic: bool = True,
                    on_error: str = "raise") -> Iterator[LogFrame]:
        """Frames with their rows, in order.

        Args:
            indices: which rows (default: every readable row).
            semantic: also read the semantic labels.
            on_error: ``"raise"`` (stop with :class:`DriveLogError`) or ``"skip"``
                (log a warning, record it in :attr:`problems`, go on).
        """
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        for i in (self.indices if indices is None else indices):
            try:
                yield LogFrame(int(i), self.row(i), self.frame(i), self.semantic(i) if semantic else None)
            except DriveLogError as exc:
                if on_error == "raise":
                    raise
                log.warning("%s; skipped", exc)
                self.problems.append(LogProblem(int(i), str(exc)))

    def __iter__(self) -> Iterator[LogFrame]:
        return self.iter_frames()

    def check(self) -> List[LogProblem]:
        """Read every frame (and semantic frame); return all problems, rows included."""
        problems = list(self.problems)
        for i in self.indices:
            for reader in (self.frame, self.semantic):
                try:
                    reader(i)
                except DriveLogError as exc:
                    problems.append(LogProblem(i, str(exc)))
        return problems


def _missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _read_bytes(path: Path, i: int, what: str, offset: int = 0, size: int = -1) -> bytes:
    """``size`` bytes at ``offset`` of ``path`` (all of it for -1). Opened per call: thread-safe."""
    try:
        with open(path, "rb") as fh:
            if offset:
                fh.seek(offset)
            return fh.read(size)
    except FileNotFoundError:
        raise DriveLogError(f"{path}: {what} i={i} is missing") from None
    except OSError as exc:
        raise DriveLogError(f"{path}: {what} i={i} cannot be read ({exc})") from None


def _check_png(data: bytes, path: Path, i: int, what: str) -> bytes:
    if len(data) < 8 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[-8:-4] != b"IEND":
        raise DriveLogError(f"{path}: {what} i={i} is truncated or not a PNG ({len(data)} bytes); "
                            "the other frames still read")
    return data


def _decode_png(data: bytes, path: Path, i: int, what: str, color: bool) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR if color else cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DriveLogError(f"{path}: {what} i={i} is corrupt (the PNG does not decode); "
                            "the other frames still read")
    return np.ascontiguousarray(img[..., ::-1]) if color else img


def _read_rows(path: Path):
    """Parse ``rows.csv``, checking each line's field count and CRC. Returns (DataFrame, problems)."""
    import pandas as pd

    problems: List[LogProblem] = []
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raw = b""
    text = raw.decode("utf-8", errors="replace")
    lines = text.split("\n")
    torn_tail = bool(lines and lines[-1] != "")
    if not torn_tail:
        lines = lines[:-1]
    if not lines:
        return pd.DataFrame(columns=list(BASE_COLUMNS)), problems
    header = next(csv.reader([lines[0]]))
    if not header or header[0] != "i" or header[-1] != CRC_COLUMN:
        raise DriveLogError(f"{path}: the header line is corrupt; expected columns i, frame, ... {CRC_COLUMN}")
    good = [lines[0]]
    last_i = -1
    for lineno, line in enumerate(lines[1:], start=2):
        is_tail = torn_tail and lineno == len(lines)
        guess = last_i + 1
        body, _, crc = line.rpartition(",")
        fields = next(csv.reader([body]), []) if body else []
        try:
            guess = int(fields[0])
        except (ValueError, IndexError):
            pass
        problem = None
        if is_tail:
            problem = "row is torn (the writer stopped while writing it)"
        elif len(fields) + 1 != len(header):
            problem = f"row is corrupt (line {lineno}: {len(fields) + 1} fields, expected {len(header)})"
        elif not crc.isdigit() or zlib.crc32(body.encode("utf-8")) != int(crc):
            problem = f"row is corrupt (line {lineno}: checksum mismatch)"
        if problem is not None:
            problems.append(LogProblem(guess, f"frame i={guess}: {problem}; the other rows still read"))
            last_i = guess
            continue
        last_i = guess
        good.append(line)
    frame = pd.read_csv(io.StringIO("\n".join(good) + "\n"))
    frame = frame.drop(columns=[CRC_COLUMN])
    frame.index = frame["i"].to_numpy()
    return frame, problems
