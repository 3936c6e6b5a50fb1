"""One progress bar over a sweep's cells: done, failed, running, ETA.

Built on :func:`carla_agent.progress.progress_bar`: an animated bar on a
terminal, plain lines at 25, 50, 75 % and at the end in a log (and here also
one line per failed cell, since a failure is worth a line of its own).
"""

from __future__ import annotations

import time
from typing import IO, Optional

from carla_agent.progress import _clock, progress_bar


class SweepProgress:
    """Counts cells as they start and end.

    Args:
        total: cells to run in this session (those already done are not counted).
        enabled: False writes nothing (``--quiet``).
        stream: where it writes (stderr).
    """

    def __init__(self, total: int, enabled: bool = True, stream: Optional[IO] = None) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.running = 0
        self._start = time.monotonic()
        self._bar = progress_bar(total, "sweep", unit="cell", enabled=enabled, stream=stream)
        self._bar.set_postfix_str(self.postfix(), refresh=False)

    def eta_s(self) -> Optional[float]:
        """[s] time left at the mean rate so far, or None before the first cell ends."""
        ended = self.done + self.failed
        if not ended:
            return None
        return (time.monotonic() - self._start) / ended * (self.total - ended)

    def postfix(self) -> str:
        eta = self.eta_s()
        return (f"done {self.done} failed {self.failed} running {self.running} "
                f"ETA {_clock(eta) if eta is not None else '?'}")

    def started(self, attempt: int = 1) -> None:
        """A cell was submitted (a retry too)."""
        self.running += 1
        self._bar.set_postfix_str(self.postfix())

    def retried(self) -> None:
        """An attempt ended and will be tried again."""
        self.running = max(0, self.running - 1)

    def ended(self, ok: bool) -> None:
        """A cell ended for good."""
        self.running = max(0, self.running - 1)
        if ok:
            self.done += 1
        else:
            self.failed += 1
        self._bar.set_postfix_str(self.postfix(), refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self.running = 0
        self._bar.set_postfix_str(self.postfix(), refresh=False)
        self._bar.close()

    def __enter__(self) -> "SweepProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["SweepProgress"]
