"""Free disk space, and files that appear under their final name only when whole.

A full disk must lose nothing already written and leave nothing half-written that
looks whole. Everything after the drive log's own appends (videos, ``meta.json``,
reports, index pages) is written to a temporary name in the same folder
(``.<stem>.partial<suffix>``, so tools that choose a format by suffix still work)
and renamed over the final name only when complete; on any failure, Ctrl-C
included, the temporary is removed.

Example::

    with atomic_file(run / "report.html") as tmp:
        tmp.write_text(html, encoding="utf-8")
"""

from __future__ import annotations

import errno
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from carla_agent.errors import DiskFullError

#: [bytes] free space a recording needs before it starts (the first second of frames and meta.json).
MIN_FREE_BYTES = 1 << 20
#: [bytes] a recording stops writing frames when less than this is free: room is left for the
#: last rows and the final ``meta.json``, so the log stays readable and says why it ended.
RESERVE_BYTES = 256 << 10

PARTIAL_TAG = ".partial"


def free_bytes(path: str | Path) -> int:
    """Bytes free to this user on the file system of ``path`` (or of its nearest existing parent)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return int(shutil.disk_usage(p).free)


def check_free_space(path: str | Path, need_bytes: int = MIN_FREE_BYTES) -> int:
    """Raise :class:`DiskFullError` (one line: the folder, what is free, what is needed, the fix)
    when less than ``need_bytes`` is free where ``path`` would be written; return the free bytes."""
    free = free_bytes(path)
    if free < need_bytes:
        raise DiskFullError(f"disk full: {_size(free)} free in {path}, a recording needs at least "
                            f"{_size(need_bytes)}; free some space or choose another --out")
    return free


def is_disk_full(exc: BaseException, folder: str | Path | None = None) -> bool:
    """True for "no space left" (ENOSPC, EDQUOT), and for an error while ``folder`` has less than
    :data:`RESERVE_BYTES` free (an encoder that died of a full disk shows up as a broken pipe)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if folder is not None:
        try:
            return free_bytes(folder) < RESERVE_BYTES
        except OSError:
            return False
    return False


def partial_path(final: str | Path) -> Path:
    """The temporary name of ``final`` while it is written: ``dir/.<stem>.partial<suffix>``."""
    final = Path(final)
    return final.with_name(f".{final.stem}{PARTIAL_TAG}{final.suffix}")


def is_partial(path: str | Path) -> bool:
    """True for a temporary name made by :func:`partial_path` (or the log's ``.meta.json.tmp``)."""
    name = Path(path).name
    return name.startswith(".") and (PARTIAL_TAG in name or name.endswith(".tmp"))


def commit_partial(tmp: Path, final: Path) -> None:
    """Rename a whole temporary over ``final``; a missing or 0-byte one is removed and ``final`` left alone.

    Raises:
        OSError: the temporary is missing or empty (nothing was written).
    """
    try:
        size = tmp.stat().st_size
    except FileNotFoundError:
        raise OSError(errno.ENOENT, f"{tmp}: nothing was written") from None
    if size == 0:
        discard(tmp)
        raise OSError(errno.EIO, f"{tmp}: 0 bytes written")
    os.replace(tmp, final)


def discard(path: Path) -> None:
    """Remove a temporary if it is there (never raises)."""
    try:
        path.unlink()
    except OSError:
        pass


@contextmanager
def atomic_file(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; rename it over ``final`` when the block ends
    normally and the file is not empty, remove it when the block raises (Ctrl-C included)."""
    final = Path(final)
    tmp = partial_path(final)
    try:
        yield tmp
    except BaseException:
        discard(tmp)
        raise
    commit_partial(tmp, final)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary; returns ``path``."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"
