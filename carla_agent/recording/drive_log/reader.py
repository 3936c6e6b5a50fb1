"""The reading side of a drive log: :class:`DriveLog` opens a run folder of any readable format version
(3: zstd blobs; 2: PNGs back to back; 1: one PNG file per frame) and reads its rows and frames."""

from __future__ import annotations

import json
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import cv2
import numpy as np
import zstandard

from carla_agent.recording.drive_log.format import (BASE_COLUMNS, OPTIONAL_COLUMNS, BLOB_HEADER, BLOB_MAX_BYTES, FRAMES_DIR,
                                                    FRAMES_FILE, FRAMES_PNGS_FILE, META_FILE, ROWS_FILE,
                                                    SEMANTIC_DIR, SEMANTIC_FILE, SEMANTIC_PNGS_FILE, DriveLogError,
                                                    LogProblem, decode_blob)
from carla_agent.recording.drive_log.meta_check import check_meta
from carla_agent.recording.drive_log.rows import _read_rows

log = logging.getLogger(__name__)

#: A ``meta.json`` larger than this is not one the writer made (it is a few KB).
MAX_META_BYTES = 16 << 20
#: The largest stored frame a row may point to: a blob of the largest frame, with room for zstd's overhead
#: (an incompressible frame grows by < 1 %); a PNG (versions 1, 2) is never larger.
MAX_STORED_BYTES = BLOB_MAX_BYTES + BLOB_MAX_BYTES // 64 + BLOB_HEADER.size
#: Columns a log of each format version has (version 1 ends at ``frame_saved``).
_REQUIRED = {1: BASE_COLUMNS[:BASE_COLUMNS.index("frame_saved") + 1],
             2: tuple(c for c in BASE_COLUMNS if c not in OPTIONAL_COLUMNS)}
_REQUIRED[3] = _REQUIRED[2]


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
            DriveLogError: no such folder, no readable ``meta.json``, a field of it of the wrong type, not
                finite or out of range (:func:`~carla_agent.recording.drive_log.meta_check.check_meta`),
                or a ``rows.csv`` whose header is damaged.
        """
        path = Path(path)
        if not path.is_dir():
            raise DriveLogError(f"{path}: no such run folder; pass a folder under runs/ written by --record")
        meta_path = path / META_FILE
        try:
            if meta_path.stat().st_size > MAX_META_BYTES:
                raise DriveLogError(f"{meta_path}: {meta_path.stat().st_size} bytes, more than any meta.json "
                                    f"the writer makes ({MAX_META_BYTES >> 20} MiB at most); the run folder is damaged")
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DriveLogError(f"{path}: not a drive log (no {META_FILE})") from None
        except (OSError, ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            raise DriveLogError(f"{meta_path}: unreadable ({reason}); the run folder is damaged") from None
        meta = check_meta(meta, meta_path)
        rows, problems = _read_rows(path / ROWS_FILE, _REQUIRED[meta["version"]])
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
        if not (0 <= offset < 2 ** 62 and 0 < size <= MAX_STORED_BYTES):
            raise DriveLogError(f"{path}: {label} i={i}: its row gives an impossible place (offset {offset!r}, "
                                f"{size!r} bytes); the other frames still read")
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
