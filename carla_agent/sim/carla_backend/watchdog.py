"""The watchdog: every blocking CARLA call (tick, map load, replay start, cleanup) bounded in time.

The ``carla`` 0.9.16 client can block in ``world.tick()`` with no time-out at all
once a Traffic Manager is synchronous (a lost wake-up between the tick and the
TM's worker, carla issue 9172, fixed after 0.9.16 by PR 9344): ``tick(seconds)``
bounds only the wait for the server's frame, not the TM's own wait. Such a call
runs here on a worker thread; the caller's thread waits at most ``timeout_s``
and then raises :class:`ServerHung`, so the drive ends with one line and the
session's cleanup still runs. The wheel releases the GIL while it waits, so the
waiting thread (and a Ctrl-C or SIGTERM in the main thread) is never starved.

A call that timed out is abandoned on its thread (it cannot be cancelled);
the next call gets a fresh worker.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable, Optional

from carla_agent.errors import BackendError

log = logging.getLogger(__name__)


class ServerHung(BackendError):
    """A CARLA call did not return within its watchdog time (a hung server or client library)."""


class _Job:
    __slots__ = ("fn", "args", "done", "result", "error")

    def __init__(self, fn: Callable, args: tuple) -> None:
        self.fn, self.args = fn, args
        self.done = threading.Event()
        self.result: Any = None
        self.error: Optional[BaseException] = None


class Watchdog:
    """Runs calls on one daemon worker thread, each bounded by a time-out.

    Args:
        where: the server's ``host:port``, for the error line.
    """

    def __init__(self, where: str) -> None:
        self.where = where
        self._jobs: Optional["queue.Queue"] = None
        self._worker: Optional[threading.Thread] = None
        #: The call that hung (e.g. ``world.tick()``), or None: set once a call timed out.
        self.hung: Optional[str] = None

    def call(self, fn: Callable, timeout_s: float, what: str, *args) -> Any:
        """``fn(*args)`` on the worker; its result, its exception, or :class:`ServerHung` after ``timeout_s``.

        A Ctrl-C (or SIGTERM, turned into one by the CLI) while waiting is raised once the call has
        returned (or ``timeout_s`` has passed): never with the call still running in the wheel.
        """
        if self._jobs is None:
            self._jobs = queue.Queue()
            self._worker = threading.Thread(target=_work, args=(self._jobs,), name="carla-watchdog", daemon=True)
            self._worker.start()
        job = _Job(fn, args)
        self._jobs.put(job)
        deadline = time.monotonic() + timeout_s
        try:
            finished = job.done.wait(timeout_s)
        except KeyboardInterrupt:
            # The call goes on in the wheel: let it end before the cleanup that follows calls the
            # wheel from another thread.
            if not _wait_through_interrupts(job.done, min(deadline, time.monotonic() + 1.0)):
                left_s = deadline - time.monotonic()
                if left_s > 0:  # a Ctrl-C that seems to do nothing gets pressed again, and again
                    log.warning("interrupted: waiting at most %.1f s for %s to return before cleaning up",
                                left_s, what)
                if not _wait_through_interrupts(job.done, deadline):
                    self._abandon(what)
            raise
        if not finished:
            self._abandon(what)
            raise ServerHung(f"the CARLA server at {self.where} did not finish {what} within {timeout_s:g} s "
                             "(a hung server, or the carla 0.9.16 client's synchronous Traffic Manager race, "
                             "carla issue 9172); raise --timeout if the server is only slow")
        if job.error is not None:
            raise job.error
        return job.result

    def _abandon(self, what: str) -> None:
        self._jobs.put(None)  # the worker exits if the call ever returns; the next call gets a new one
        self._jobs = None
        self.hung = what

    def close(self, wait_s: float = 5.0) -> None:
        """Let the worker end, and wait for it: a daemon thread that has called into the ``carla``
        wheel and is still alive when Python exits aborts the process ("FATAL: exception not
        rethrown"). A worker stuck in a hung call is left behind."""
        if self._jobs is not None:
            self._jobs.put(None)
            self._jobs = None
            self._worker.join(wait_s)


def failure(exc: BaseException, where: str, during: str, timed_out: bool,
            unrestored: Optional[str]) -> Optional[BackendError]:
    """The one line a drive ends with after ``exc`` (and its cleanup), or None for an exception that
    is not the server's (re-raised as it is). After a time-out or a hang it says whether the cleanup
    could restore the server (``unrestored``: what it could not do)."""
    if isinstance(exc, ServerHung):
        message = str(exc)
    elif isinstance(exc, RuntimeError):  # what carla raises for time-outs and refused requests
        message = (f"CARLA server at {where} failed during {during}: "
                   f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    else:
        return None
    if timed_out:
        message += ("; " + unrestored + ": restart the server (it may still be in synchronous mode, with our "
                    "actors)") if unrestored else "; the server's settings were restored and our actors destroyed"
    return BackendError(message)


def _wait_through_interrupts(done: threading.Event, deadline: float) -> bool:
    """Wait for ``done`` until ``deadline`` (``time.monotonic()``), whatever Ctrl-Cs come meanwhile;
    whether it was set."""
    while True:
        try:
            return done.wait(max(0.0, deadline - time.monotonic()))
        except KeyboardInterrupt:
            continue


def _work(jobs: "queue.Queue") -> None:
    while True:
        job = jobs.get()
        if job is None:
            return
        try:
            job.result = job.fn(*job.args)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            job.error = exc
        job.done.set()
