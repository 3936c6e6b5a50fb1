"""The drive log's format: file names, versions, row columns, and the zstd frame blob.

A frame blob is a 16-byte :data:`BLOB_HEADER` and one zstd frame of the array's raw
C-order bytes (the package docstring shows how to read one by hand). ``FORMAT_NAME``
is written into every ``meta.json`` and checked when a run is opened.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import zstandard

from carla_agent.errors import CarlaAgentError

#: Data, not a module path: written into every meta.json and checked on open, so it never changes.
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
    "overridden",           # 1 when a hook took the wheel (HUD: M manual, P autopilot): not the network's tick
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
    "command",              # the route's RoadOption: 1 LEFT, 2 RIGHT, 3 STRAIGHT, 4 LANEFOLLOW, 5/6 lane change
)
#: Columns that logs written before they existed lack (read as their default).
OPTIONAL_COLUMNS: Tuple[str, ...] = ("command",)

#: Columns holding the applied control, in :class:`~carla_agent.control.vehicle_control.VehicleControl` order.
CONTROL_COLUMNS = ("steer", "throttle", "brake", "hand_brake", "reverse")


class DriveLogError(CarlaAgentError):
    """A run folder is missing, not a drive log, or a row / frame of it cannot be read."""


@dataclass(frozen=True)
class LogProblem:
    """A row or frame of a log that cannot be read.

    Attributes:
        i: row / frame index it concerns (``None`` when unknown).
        what: a sentence saying what is wrong.
    """

    i: Optional[int]
    what: str


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
