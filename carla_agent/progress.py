"""Progress bars that suit where stderr goes: :func:`progress_bar`.

On a terminal a tqdm bar animates in place. Anywhere else (a pipe, a log file,
CI) an animated bar would write one carriage-return update after another into
the file (17 KB for one drive), so the bar becomes :class:`LineProgress`: a
plain line at 25, 50 and 75 % and one at the end. Every long loop in the package
(driving, collecting, rendering videos) takes its bar from here, and the
commands' ``--quiet`` turns it off.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Optional

#: Without a known total, a plain line at most this often [s].
LINE_INTERVAL_S = 60.0
#: Fractions of the total at which a plain line is written.
MILESTONES = (0.25, 0.5, 0.75)


def is_terminal(stream: IO) -> bool:
    """True when ``stream`` is an open terminal."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False


def _clock(seconds: float) -> str:
    minutes, sec = divmod(int(round(seconds)), 60)
    return f"{minutes:d}:{sec:02d}"


class LineProgress:
    """A progress bar for logs: whole lines, no carriage returns.

    Has the part of tqdm's interface the package uses (``update``, ``set_postfix_str``,
    ``refresh``, ``close``, ``total``, ``n``, a context manager), so callers do not
    care which one they got.

    Args:
        total: the amount at 100 %, or None when unknown.
        desc: what is being done, first on each line.
        unit: unit of ``total`` and ``n`` (``frame``, ``sim s``).
        stream: where the lines go (stderr).
    """

    def __init__(self, total: Optional[float], desc: str, unit: str, stream: IO) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n: float = 0
        self._stream = stream
        self._postfix = ""
        self._start = time.monotonic()
        self._last_line = self._start
        self._next_milestone = 0
        self._closed = False
        # Whole numbers for counts (frames), one decimal for amounts (simulated seconds).
        self._decimals = 0 if total is None or isinstance(total, int) else 1

    def update(self, n: float = 1) -> None:
        """Add ``n`` done; writes a line when a milestone (or, without a total, a minute) has passed."""
        self.n += n
        if self.total:
            passed = False
            while (self._next_milestone < len(MILESTONES)
                   and self.n >= MILESTONES[self._next_milestone] * self.total):
                self._next_milestone += 1
                passed = True
            if passed and self.n < self.total:
                self._write()
        elif time.monotonic() - self._last_line >= LINE_INTERVAL_S:
            self._write()

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        """Text shown at the end of the next line (e.g. ``autonomy 100.0%``)."""
        self._postfix = text

    def refresh(self) -> None:
        """No line of its own: the next milestone or :meth:`close` shows the state."""

    def close(self) -> None:
        """Write the final line (once)."""
        if self._closed:
            return
        self._closed = True
        self._write()

    def line(self) -> str:
        """The current state as one line, without a newline."""
        elapsed = _clock(time.monotonic() - self._start)
        d = self._decimals
        if self.total:
            done = f"{100.0 * self.n / self.total:3.0f}% {self.n:.{d}f}/{self.total:.{d}f} {self.unit}"
        else:
            done = f"{self.n:.{d}f} {self.unit}"
        text = f"{self.desc}: {done} [{elapsed}]"
        return f"{text} {self._postfix}" if self._postfix else text

    def _write(self) -> None:
        self._last_line = time.monotonic()
        try:
            self._stream.write(self.line() + "\n")
            self._stream.flush()
        except (OSError, ValueError):  # stderr closed under us: progress is not worth a crash
            pass

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress_bar(total: Optional[float], desc: str, unit: str = "frame", enabled: bool = True, *,
                 leave: bool = True, bar_format: Optional[str] = None, stream: Optional[IO] = None):
    """A progress bar on ``stream`` (stderr): animated on a terminal, a few plain lines otherwise.

    Args:
        total: the amount at 100 % (frames, simulated seconds), or None when unknown.
        desc: label at the start of the bar.
        unit: unit of ``total``.
        enabled: False gives a bar that writes nothing (``--quiet``).
        leave: on a terminal, keep the finished bar on screen (tqdm's ``leave``).
        bar_format: on a terminal, tqdm's ``bar_format``.
        stream: where it writes; default :data:`sys.stderr`.

    Returns:
        A ``tqdm`` bar on a terminal or when disabled, else a :class:`LineProgress`.
    """
    from tqdm import tqdm

    stream = sys.stderr if stream is None else stream
    if enabled and not is_terminal(stream):
        return LineProgress(total, desc, unit, stream)
    options = dict(total=total, desc=desc, unit=unit, disable=not enabled, file=stream, leave=leave,
                   dynamic_ncols=True)
    if bar_format:
        options["bar_format"] = bar_format
    return tqdm(**options)


__all__ = ["LINE_INTERVAL_S", "MILESTONES", "LineProgress", "is_terminal", "progress_bar"]
