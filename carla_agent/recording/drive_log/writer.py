"""The writing side of a drive log: frames appended to their streams, rows flushed after them, meta.json
replaced atomically (the package docstring says what survives a crash or a full disk)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from carla_agent.recording.drive_log.format import (BASE_COLUMNS, FLUSH_EVERY_S, FORMAT_NAME, FORMAT_VERSION,
                                                    FRAMES_FILE, META_FILE, ROWS_FILE, SCENARIO_FILE, SEMANTIC_FILE,
                                                    ZSTD_LEVEL, DriveLogError, encode_blob, make_compressor)
from carla_agent.recording.drive_log.meta import RunMeta, _jsonable, utc_now
from carla_agent.recording.drive_log.rows import _format_line, _header_line, _num, output_columns

log = logging.getLogger(__name__)


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
            self._write_meta(complete=False)  # rows.csv is created with its first rows: never left empty
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
        if self.error is not None or self._closed:
            return
        try:
            self._sync_streams()
            if self._pending_rows:
                self._open_rows().write("".join(self._pending_rows))
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
        for path in [*(s.path for s in self._streams.values()), self.path / ROWS_FILE]:
            _remove_if_empty(path)  # a first write that hit a full disk: no 0-byte file is left
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

    def halt(self, reason: str) -> None:
        """Stop logging now, keeping every frame appended so far (flushed first); ``reason`` becomes
        the run's ``stop_reason`` (e.g. ``disk full``). Later appends return False."""
        if self.error is not None or self._closed:
            return
        self.flush()
        if self.error is None:
            self.error = reason
            # INFO: the command that recorded says it in its one error line.
            log.info("%s: drive log stopped: %s; the %d frame(s) flushed stay readable (the run is marked "
                        "incomplete)", self.path, reason, self.frames_flushed)

    @property
    def disk_full(self) -> bool:
        """Logging stopped because the disk is (nearly) full."""
        return bool(self.error and self.error.startswith("disk full"))

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

    def _open_rows(self):
        if self._rows_fh is None:
            self._rows_fh = open(self.path / ROWS_FILE, "a", encoding="utf-8", newline="")
        return self._rows_fh

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
        if not self._pending_rows or self._closed:
            return
        try:
            self._sync_streams()
            self._open_rows().write("".join(self._pending_rows))
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
        _replace_meta(self.path, data, self.fsync)

    def _fail(self, exc: OSError, i: Optional[int] = None) -> None:
        if self.error is not None:
            return
        what = "disk full" if getattr(exc, "errno", None) == 28 else f"write error ({exc})"
        where = f" at frame i={i}" if i is not None else ""
        self.error = f"{what}{where}"
        log.log(logging.INFO if what == "disk full" else logging.WARNING, "%s: drive log stopped: %s%s; the drive goes on, and the %d frame(s) flushed before "
                    "stay readable (the run is marked incomplete)", self.path, what, where, self.frames_flushed)


def update_meta(run_dir: str | Path, fields: Mapping[str, Any], fsync: bool = True) -> dict:
    """Add or replace top-level fields of a run's ``meta.json`` (atomically, as the writer does).

    For what is added to a run after its drive: e.g. ``videos``, the saliency settings each
    attention video in the folder was rendered with. Returns the new meta.

    Raises:
        DriveLogError: no readable ``meta.json`` in ``run_dir``.
    """
    path = Path(run_dir)
    try:
        data = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DriveLogError(f"{path / META_FILE}: cannot update ({exc}); is {path} a run folder?") from None
    data.update(_jsonable(dict(fields)))
    _replace_meta(path, data, fsync)
    return data


def _replace_meta(run_dir: Path, data: Mapping[str, Any], fsync: bool) -> None:
    text = json.dumps(data, indent=1, default=str)
    tmp = run_dir / f".{META_FILE}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, run_dir / META_FILE)
    except BaseException:  # a full disk: the last whole meta.json stays, no 0-byte temporary is left
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    if fsync:
        _fsync_dir(run_dir)


def _remove_if_empty(path: Path) -> None:
    try:
        if path.stat().st_size == 0:
            path.unlink()
    except OSError:
        pass


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
