"""Running a sweep's cells on Ray: tasks on the embedded backend, one actor per CARLA server.

The only module of the package that imports ``ray``, and only when a sweep
runs. :func:`execute` keeps at most one cell per slot (:class:`~carla_agent.sweep.pool.SlotPool`)
in flight and waits on them with :func:`ray.wait`:

* **embedded** backend: each cell is a Ray task (``num_cpus=1``) running
  :func:`~carla_agent.sweep.cell.run_cell`; ``--workers N`` cells at once (default: the CPUs
  Ray sees). Ray places the tasks on the machine or across a cluster's nodes.
* **carla** backend: one actor per CARLA server; each actor drives one cell at a time on its
  server (Ray actors run one method call at a time), and a server whose actor died gets a new one.
* a cell that raises, whose worker dies (``WorkerCrashedError``, e.g. killed mid-drive) or that
  runs past ``timeout_s`` (its task is cancelled with ``force=True``, which kills the worker) is
  tried again up to ``retries`` times, then reported as failed with its error; the others go on.
* Ctrl-C raises :class:`KeyboardInterrupt`; every cell reported before has already been written
  by the caller. A drive on a CARLA server is asked to stop first (:meth:`ServerActor.stop`: it
  ends as Ctrl-C would, the server asynchronous again and our actors destroyed), then its actor
  is killed. The embedded cells in flight end when the caller shuts Ray down (Ray kills a job's
  workers with it), or are cancelled when the Ray session is the caller's and goes on.

``ray.init`` is called only when Ray is not running in this process yet: locally with
``num_cpus=workers`` and no dashboard, or ``address=...`` to join a cluster (``ray start --head``).
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Deque, Dict, Optional, Sequence, Tuple

import ray

from carla_agent.sweep.cell import CellResult, failed, run_cell
from carla_agent.sweep.grid import Cell, SweepError, SweepSpec
from carla_agent.sweep.pool import CarlaServer, SlotPool

log = logging.getLogger(__name__)

#: [s] how long one :func:`ray.wait` blocks: the resolution of timeouts and of the progress bar.
POLL_S = 0.25
#: [s] beyond the CARLA client timeout: how long a drive asked to stop (Ctrl-C) gets to clean up.
STOP_GRACE_S = 10.0
PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


def connect(address: Optional[str] = None, workers: Optional[int] = None) -> bool:
    """Start (or join) Ray unless it runs already; True when this call started it (the caller shuts it down).

    Locally the workers get this package's folder on ``PYTHONPATH``, so a checkout that is not
    installed works as well as an installed one; on a cluster every node needs the package
    installed (``pip install``) at the same version.
    """
    if ray.is_initialized():
        return False
    opts: Dict[str, Any] = dict(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
                                configure_logging=True)
    if address:
        try:
            ray.init(address=address, **opts)
        except ConnectionError as exc:
            raise SweepError(f"--address {address}: no Ray cluster answers there ({str(exc).splitlines()[0]}); "
                             f"start one with 'ray start --head' and pass the address it prints") from None
    else:
        path = os.pathsep.join(p for p in (PACKAGE_PARENT, os.environ.get("PYTHONPATH", "")) if p)
        auth = logging.getLogger("ray._private.authentication.authentication_token_setup")
        auth.addFilter(_token_auth_by_default)
        try:
            ray.init(num_cpus=workers, runtime_env={"env_vars": {"PYTHONPATH": path}}, **opts)
        finally:
            auth.removeFilter(_token_auth_by_default)
    return True


def _token_auth_by_default(record: logging.LogRecord) -> bool:
    """Drop Ray's note that a local cluster it starts uses token authentication (Ray's secure default,
    printed on every sweep; nothing to do); any other of its authentication lines passes."""
    return not record.getMessage().startswith("Token authentication is enabled for this Ray cluster")


def disconnect() -> None:
    """Shut down the Ray that :func:`connect` started."""
    ray.shutdown()


@ray.remote(num_cpus=1, max_restarts=0, max_concurrency=2)
class ServerActor:
    """Holds one CARLA server; runs one cell at a time on it (the driver's slot pool sees to that).

    Two threads: :meth:`stop` runs while :meth:`run` drives, and asks that drive to end as Ctrl-C
    would, so that the server is put back to asynchronous mode and our actors are destroyed
    before the actor is killed.
    """

    def __init__(self, server: CarlaServer, timeout_s: float = 10.0) -> None:
        self.options = dict(host=server.host, port=server.port, tm_port=server.tm_port, timeout_s=timeout_s)
        self._stop = threading.Event()

    def run(self, cell_fn: Callable[..., CellResult], cell: Cell, spec: SweepSpec, out_dir: str,
            token: str) -> CellResult:
        self._stop.clear()
        takes_stop = "stop" in inspect.signature(cell_fn).parameters
        extra = {"stop": self._stop} if takes_stop else {}
        return cell_fn(cell, spec, out_dir, token, backend_options=self.options, **extra)

    def stop(self) -> None:
        self._stop.set()


@dataclass
class _Flight:
    cell: Cell
    attempt: int
    slot: Any
    started: float


def _error_text(exc: BaseException) -> str:
    """One line for the manifest: the cell's own exception where Ray wraps one."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    if isinstance(exc, ray.exceptions.WorkerCrashedError):
        return "the worker died while running the cell (killed, or out of memory)"
    if isinstance(exc, ray.exceptions.RayActorError):
        return "the CARLA server's actor died while running the cell"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}".strip()


def execute(cells: Sequence[Cell], spec: SweepSpec, out_dir: str | Path, token: str,
            on_result: Callable[[CellResult], None], on_start: Callable[[Cell, int], None] = lambda c, a: None, *,
            workers: Optional[int] = None, carla_servers: Sequence[CarlaServer] = (),
            carla_timeout_s: float = 10.0, cell_fn: Callable[..., CellResult] = run_cell,
            poll_s: float = POLL_S, cancel_on_interrupt: bool = False) -> None:
    """Run ``cells`` on Ray (connected by :func:`connect`); ``on_result`` gets each cell's final result.

    Args:
        cells: the cells to run.
        spec: the sweep (``retries``, ``timeout_s`` and what each cell does).
        out_dir: the sweep's folder, as this process sees it.
        token: the sweep folder's token (:mod:`carla_agent.sweep.cell`).
        on_result: called in this process with each cell's result, done or failed for good.
        on_start: called with ``(cell, attempt)`` when an attempt is submitted.
        workers: cells at once on the embedded backend (default: Ray's CPUs).
        carla_servers: one slot (and actor) per server; when given, cells run on them.
        carla_timeout_s: [s] the CARLA client's timeout.
        cell_fn: what runs a cell (tests wrap :func:`run_cell`); must be picklable.
        poll_s: [s] wait per :func:`ray.wait`.
        cancel_on_interrupt: on Ctrl-C, force-cancel the embedded cells in flight; for a Ray session
            that outlives the sweep (the caller's). Otherwise they end when Ray is shut down.

    Raises:
        KeyboardInterrupt: after cancelling every cell in flight.
    """
    if carla_servers:
        pool: SlotPool = SlotPool(list(carla_servers))
        actors = {s: ServerActor.remote(s, carla_timeout_s) for s in carla_servers}
    else:
        n = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        pool = SlotPool(list(range(n)))
        actors = {}
        task = ray.remote(num_cpus=1, max_retries=0)(cell_fn)
    queue: Deque[Tuple[Cell, int]] = deque((c, 1) for c in cells)
    flights: Dict[Any, _Flight] = {}
    out = str(out_dir)

    def submit() -> None:
        while queue:
            slot = pool.acquire()
            if slot is None:
                return
            cell, attempt = queue.popleft()
            if actors:
                ref = actors[slot].run.remote(cell_fn, cell, spec, out, token)
            else:
                ref = task.remote(cell, spec, out, token)
            flights[ref] = _Flight(cell, attempt, slot, time.monotonic())
            on_start(cell, attempt)

    def end(ref: Any, result: Optional[CellResult], error: str) -> None:
        f = flights.pop(ref)
        pool.release(f.slot)
        wall_s = time.monotonic() - f.started
        if result is not None:
            on_result(replace(result, attempts=f.attempt))
        elif f.attempt <= spec.retries:
            log.warning("%s: attempt %d failed (%s); trying again", f.cell.cell_id, f.attempt, error)
            queue.appendleft((f.cell, f.attempt + 1))
        else:
            on_result(failed(f.cell, error, f.attempt, wall_s))

    def restart_actor(slot: Any) -> None:
        if actors:
            ray.kill(actors[slot], no_restart=True)
            actors[slot] = ServerActor.remote(slot, carla_timeout_s)

    try:
        submit()
        while flights:
            ready, _ = ray.wait(list(flights), num_returns=1, timeout=poll_s)
            for ref in ready:
                try:
                    end(ref, ray.get(ref), "")
                except (ray.exceptions.RayError, Exception) as exc:  # the cell's error, or its worker's death
                    slot = flights[ref].slot
                    end(ref, None, _error_text(exc))
                    if isinstance(exc, ray.exceptions.RayActorError):
                        restart_actor(slot)
            now = time.monotonic()
            for ref, f in list(flights.items()):
                if now - f.started > spec.timeout_s:
                    if actors:
                        restart_actor(f.slot)
                    else:
                        ray.cancel(ref, force=True)  # kills the worker process, and the drive with it
                    end(ref, None, f"timed out after {spec.timeout_s:g} s")
            submit()
    except KeyboardInterrupt:
        if actors and flights:
            # Each drive on a CARLA server ends as Ctrl-C would (server asynchronous again, our actors
            # destroyed) before its actor is killed below; a drive that does not end in time is killed.
            for f in flights.values():
                actors[f.slot].stop.remote()
            ray.wait(list(flights), num_returns=len(flights), timeout=carla_timeout_s + STOP_GRACE_S)
        # The embedded cells in flight are not cancelled here: ray.cancel racing a task that is just
        # finishing crashed the driver inside Ray's core (a fatal check in PushNormalTask's reply;
        # exit 1 instead of 130, twice in CI). They end with the job instead: when the caller shuts
        # Ray down, Ray kills every worker that still runs a task of this driver (the local cluster
        # goes down whole; a cluster at --address kills them within seconds).
        if cancel_on_interrupt and not actors:
            for ref in list(flights):
                ray.cancel(ref, force=True)
        else:
            log.info("interrupted: %d cell(s) in flight end with the Ray job", len(flights))
        raise
    finally:
        if actors:
            for actor in actors.values():
                ray.kill(actor, no_restart=True)


__all__ = ["POLL_S", "ServerActor", "connect", "disconnect", "execute"]
