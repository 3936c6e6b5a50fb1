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

A full disk (``ENOSPC``; other write errors with a warning) stops the log and
everything flushed before stays readable; the recorder
(:mod:`carla_agent.recording.recorder`) stops it earlier, when less than its
reserve is free, and ends the drive. ``rows.csv`` is created with its first rows,
and a frame or row file still empty at close is removed, so no 0-byte file is
left. ``meta.json`` is replaced atomically (its temporary is removed when the
write fails): ``complete`` becomes true only when the writer is closed after an
uninterrupted drive with nothing lost.
"""

from carla_agent.recording.drive_log.format import (BASE_COLUMNS, BLOB_DTYPES, BLOB_HEADER, BLOB_MAGIC,
                                                    BLOB_MAX_BYTES, CONTROL_COLUMNS, CRC_COLUMN, DEFAULT_RUNS_DIR,
                                                    FLUSH_EVERY_S, FORMAT_NAME, FORMAT_VERSION, FRAMES_DIR,
                                                    FRAMES_FILE, FRAMES_PNGS_FILE, META_FILE, READABLE_VERSIONS,
                                                    ROWS_FILE, SCENARIO_FILE, SEMANTIC_DIR, SEMANTIC_FILE,
                                                    SEMANTIC_PNGS_FILE, ZSTD_LEVEL, DriveLogError, LogProblem,
                                                    decode_blob, encode_blob, make_compressor)
from carla_agent.recording.drive_log.meta import (RunMeta, SaliencySettings, new_run_dir, package_versions,
                                                  scenario_from_meta, scenario_to_dict, utc_now)
from carla_agent.recording.drive_log.reader import DriveLog, LogFrame
from carla_agent.recording.drive_log.rows import make_row, output_columns
from carla_agent.recording.drive_log.writer import DriveLogWriter, update_meta

__all__ = [
    "BASE_COLUMNS", "BLOB_DTYPES", "BLOB_HEADER", "BLOB_MAGIC", "BLOB_MAX_BYTES", "CONTROL_COLUMNS", "CRC_COLUMN",
    "DEFAULT_RUNS_DIR", "FLUSH_EVERY_S", "FORMAT_NAME", "FORMAT_VERSION", "FRAMES_DIR", "FRAMES_FILE",
    "FRAMES_PNGS_FILE", "META_FILE", "READABLE_VERSIONS", "ROWS_FILE", "SCENARIO_FILE", "SEMANTIC_DIR",
    "SEMANTIC_FILE", "SEMANTIC_PNGS_FILE", "ZSTD_LEVEL",
    "DriveLog", "DriveLogError", "DriveLogWriter", "LogFrame", "LogProblem", "RunMeta", "SaliencySettings",
    "decode_blob", "encode_blob", "make_compressor", "make_row", "new_run_dir", "output_columns",
    "package_versions", "scenario_from_meta", "scenario_to_dict", "update_meta", "utc_now",
]
