"""The background saliency worker: slow maps computed off the drive loop, each tied to its frame.

Slow methods (occlusion, SmoothGrad, Integrated Gradients, per-layer grids) take
tens of milliseconds to seconds a frame. :class:`AttentionWorker` runs them on
one thread so the drive never waits:

* :meth:`~AttentionWorker.submit` never blocks. The inbox is a bounded queue of
  size one: a newer frame replaces one still waiting (the newest frame wins)
  and the replaced one is counted in :attr:`WorkerStats.dropped`.
* Each finished map is published as an :class:`AttentionMap` holding the frame
  id *and the very image* it was computed from, so the HUD draws a map only on
  its own frame; :meth:`~AttentionWorker.latest` returns the newest one.
* Lock-step mode (recording): :meth:`~AttentionWorker.compute` submits a frame
  and waits for that frame's own map.
* :meth:`~AttentionWorker.prepare` asks the thread to build an explainer (trace
  its graph) ahead of use; builds are served before frames, newest request
  first, so switching methods with the number keys never stalls the drive.

Lifetime: the thread starts in the constructor and stops in :meth:`close`
(idempotent; also a context manager).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Deque, Hashable, Optional

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttentionJob:
    """One frame waiting for its map.

    Attributes:
        frame: frame id (``Observation.frame``).
        image: ``(H, W, 3)`` uint8 RGB camera frame, a private copy.
        key: which explainer (a :class:`~carla_agent.hud.explainers.SaliencyKey`).
        submitted_s: ``time.perf_counter()`` at submission.
        generation: episode counter; results of an older generation are discarded.
    """

    frame: int
    image: np.ndarray
    key: Hashable
    submitted_s: float
    generation: int


@dataclass(frozen=True)
class AttentionMap:
    """A finished map, tied to the frame it was computed from.

    Attributes:
        frame: frame id of the image the map explains.
        image: ``(H, W, 3)`` uint8 RGB, that frame (draw the map on this, not on a newer frame).
        key: what it explains.
        result: the :class:`~carla_agent.saliency.result.SaliencyResult`
            (``maps`` ``(1, h, w)`` float32 at the network input size), or None on error.
        latency_ms: [ms] compute time of the map (the explainer call).
        wait_ms: [ms] time the frame waited in the inbox before the computation started.
        error: one-line error when the computation failed, else None.
    """

    frame: int
    image: np.ndarray
    key: Hashable
    result: Any
    latency_ms: float
    wait_ms: float = 0.0
    error: Optional[str] = None

    @property
    def map(self) -> Optional[np.ndarray]:
        """``(h, w)`` float32 raw map of the frame, or None on error."""
        return None if self.result is None else self.result.maps[0]

    @property
    def layer_name(self) -> str:
        """The conv layer the map came from (the last part of its name: with a trunk per group of
        branches, the driving branch's), or ``default`` when the result does not say."""
        layer = getattr(self.result, "layer", None)
        return str(layer).split("/")[-1] if layer else "default"


@dataclass
class WorkerStats:
    """Counters since the worker started: frames submitted, replaced before their turn, computed, failed."""

    submitted: int = 0
    dropped: int = 0
    computed: int = 0
    failed: int = 0


class AttentionWorker:
    """One thread computing saliency maps for the newest frame.

    Args:
        resolve: ``key -> built explainer`` (an object with ``.explainer``, or
            the explainer itself); may build on first use (it runs on the
            worker thread), e.g. :meth:`ExplainerCache.get`.
        preprocess: ``(H, W, 3)`` uint8 camera frame -> ``(h, w, c)`` float32
            network input (the model's ``Preprocessing``).
        name: thread name (shows in logs and debuggers).
    """

    def __init__(self, resolve: Callable[[Hashable], Any], preprocess: Callable[[np.ndarray], np.ndarray],
                 name: str = "attention-worker") -> None:
        self._resolve = resolve
        self._preprocess = preprocess
        self._cond = threading.Condition()
        self._job: Optional[AttentionJob] = None
        self._builds: Deque[Hashable] = deque()
        self._latest: Optional[AttentionMap] = None
        self._busy_frame: Optional[int] = None
        self._generation = 0
        self._stop = False
        self.stats = WorkerStats()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- main-thread API (never blocks except compute/wait_for) -----------------------
    def submit(self, frame: int, image: np.ndarray, key: Hashable) -> None:
        """Queue ``image`` (copied) for a map; replaces a frame still waiting. Never blocks on the computation."""
        job = AttentionJob(int(frame), np.array(image, np.uint8, copy=True), key, time.perf_counter(),
                           self._generation)
        with self._cond:
            self._check_open()
            if self._job is not None:
                self.stats.dropped += 1
            self._job = job
            self.stats.submitted += 1
            self._cond.notify_all()

    def prepare(self, key: Hashable) -> None:
        """Build the explainer for ``key`` on the worker thread, before any frame waiting.

        The newest request is served first: after a burst of key presses the method
        on screen is built before the ones skipped on the way.
        """
        with self._cond:
            self._check_open()
            if key in self._builds:
                self._builds.remove(key)
            self._builds.appendleft(key)
            self._cond.notify_all()

    def latest(self) -> Optional[AttentionMap]:
        """The newest finished map (of this episode), or None."""
        with self._cond:
            return self._latest

    @property
    def busy_frame(self) -> Optional[int]:
        """Frame id being computed now, or None when idle."""
        with self._cond:
            return self._busy_frame

    @property
    def pending_frame(self) -> Optional[int]:
        """Frame id waiting in the inbox, or None."""
        with self._cond:
            return None if self._job is None else self._job.frame

    def wait_for(self, frame: int, key: Hashable | None = None, timeout_s: Optional[float] = None
                 ) -> Optional[AttentionMap]:
        """Block until a map of ``frame`` (and ``key`` when given) is published; None on timeout."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s

        def done() -> bool:
            m = self._latest
            return self._stop or (m is not None and m.frame == frame and (key is None or m.key == key))

        with self._cond:
            while not done():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            m = self._latest
            return m if m is not None and m.frame == frame else None

    def compute(self, frame: int, image: np.ndarray, key: Hashable, timeout_s: Optional[float] = None
                ) -> Optional[AttentionMap]:
        """Lock-step: submit ``frame`` and wait for its own map (None on timeout)."""
        self.submit(frame, image, key)
        return self.wait_for(frame, key, timeout_s)

    def clear(self) -> None:
        """Forget the waiting frame and the latest map (a new episode: frame ids restart)."""
        with self._cond:
            self._generation += 1
            self._job = None
            self._latest = None
            self._cond.notify_all()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the thread (after the map in progress). Idempotent."""
        with self._cond:
            if self._stop:
                return
            self._stop = True
            self._job = None
            self._builds.clear()
            self._cond.notify_all()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("attention worker still busy after %.1f s; leaving it (daemon thread)", timeout_s)

    def __enter__(self) -> "AttentionWorker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._stop:
            raise RuntimeError("the attention worker is closed; create a new one")

    # -- worker thread -----------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop and self._job is None and not self._builds:
                    self._cond.wait()
                if self._stop:
                    return
                build = self._builds.popleft() if self._builds else None
                job = None
                if build is None:
                    job, self._job = self._job, None
                    self._busy_frame = job.frame
            if build is not None:
                try:
                    self._resolve(build)
                except Exception:  # remembered by the resolver; the HUD shows it
                    log.debug("build of %s failed", build, exc_info=True)
                continue
            amap = self._compute(job)
            with self._cond:
                self._busy_frame = None
                if job.generation == self._generation and not self._stop:
                    self._latest = amap
                if amap.error is None:
                    self.stats.computed += 1
                else:
                    self.stats.failed += 1
                self._cond.notify_all()

    def _compute(self, job: AttentionJob) -> AttentionMap:
        started = time.perf_counter()
        wait_ms = (started - job.submitted_s) * 1e3
        try:
            built = self._resolve(job.key)
            explainer = getattr(built, "explainer", built)
            x = np.asarray(self._preprocess(job.image), np.float32)[None]
            t0 = time.perf_counter()
            result = explainer(x)
            latency_ms = (time.perf_counter() - t0) * 1e3
            return AttentionMap(job.frame, job.image, job.key, result, latency_ms, wait_ms)
        except Exception as exc:  # a failing method must not kill the thread
            text = str(exc).strip().splitlines()
            message = f"{type(exc).__name__}: {text[-1] if text else ''}"[:200]
            log.debug("saliency for frame %d failed", job.frame, exc_info=True)
            return AttentionMap(job.frame, job.image, job.key, None,
                                (time.perf_counter() - started) * 1e3, wait_ms, message)
