"""The session: everything one run changed on a CARLA server, and its cleanup.

One episode of :class:`~carla_agent.sim.carla_backend.simulator.CarlaSimulator`
(``reset`` to the next ``reset`` or ``close``), or one replay, is a session: it
records every change it makes on the server (settings, Traffic Manager
synchronous mode, weather, recorder, actors, sensors) and :meth:`Session.restore`
undoes them in order on every exit path: normal end, an exception inside a tick,
Ctrl-C, SIGTERM, a hung server (:mod:`~carla_agent.sim.carla_backend.watchdog`).
Nothing is done in ``__del__``.

What it finds on the server is handled first (:meth:`Session.capture`,
:meth:`Session.clean_leftovers`): a server another client is ticking in
synchronous mode is refused (CARLA takes ticks from every client, so both would
tick); synchronous mode left on by a client that is gone is taken over;
``no_rendering_mode`` is turned off for the drive (cameras need it); actors an
earlier run of ours left behind (``role_name`` starting with :data:`ROLE_PREFIX`,
and the ``hero`` they are attached to) are destroyed.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Callable, Dict, List, Optional

from carla_agent.errors import BackendError
from carla_agent.sim.carla_backend.client import import_carla, is_timeout
from carla_agent.sim.carla_backend.sensors import SensorQueue

log = logging.getLogger(__name__)

#: ``role_name`` of every actor we spawn but the ego (which is CARLA's ``hero``): how a later run
#: recognises what a killed run left behind.
ROLE_PREFIX = "carla_agent/"
#: How long to listen for another client's tick when the server is found in synchronous mode.
TICKER_PROBE_S = 2.0


def _each(items, action: Callable, what: str, quiet: bool = False) -> None:
    """``action(item)`` for every item even when some fail; a Ctrl-C is re-raised at the end."""
    interrupted: Optional[BaseException] = None
    for item in items:
        try:
            action(item)
        except KeyboardInterrupt as exc:
            interrupted = interrupted or exc
        except Exception as exc:  # noqa: BLE001
            log.log(logging.DEBUG if quiet else logging.WARNING, "cleanup: could not %s: %s", what, exc)
            if is_timeout(exc):
                raise
    if interrupted is not None:
        raise interrupted


class Session:
    """Records each change made on the server, so :meth:`restore` can undo it in order:
    settings, Traffic Manager sync mode, sensors (stop, then destroy), vehicles,
    recorder, replayer, weather. Each step runs even when an earlier one failed;
    a Ctrl-C during cleanup is re-raised after the rest is done."""

    def __init__(self, client) -> None:
        self.client = client
        self.world = None
        self.map = None
        self.original_settings = None
        self.settings_applied = False
        self.tm = None
        self.tm_sync = False
        self.sensors: List = []
        self.queues: Dict[str, SensorQueue] = {}
        self.vehicles: List = []  # destroyed in reverse order
        self.ego = None
        self.spectator = None
        self.recording = False
        self.replaying = False
        self.original_weather = None
        self.weather_changed = False
        #: After a hang or a time-out: cleanup failures are summed up in :attr:`unrestored`, not logged.
        self.quiet = False
        #: What the last :meth:`restore` could not do (one phrase), or None.
        self.unrestored: Optional[str] = None

    def restore(self, budget_s: Optional[float] = None) -> None:
        """Undo every change; with ``budget_s``, give up after that long (a client library that hangs
        in a cleanup call) and say so in :attr:`unrestored`. A Ctrl-C meanwhile waits for the end."""
        if budget_s is None:
            self._restore()
            return
        worker = threading.Thread(target=self._restore_caught, name="carla-cleanup", daemon=True)
        self._interrupted: Optional[BaseException] = None
        worker.start()
        interrupted: Optional[BaseException] = None
        while True:
            try:
                worker.join(budget_s)
                break
            except KeyboardInterrupt as exc:  # finish the cleanup first
                interrupted = interrupted or exc
        if worker.is_alive():
            self.unrestored = f"the cleanup did not finish within {budget_s:g} s"
        if interrupted is not None or self._interrupted is not None:
            raise interrupted or self._interrupted

    def _restore_caught(self) -> None:
        try:
            self._restore()
        except BaseException as exc:  # noqa: BLE001 - re-raised by restore() on the caller's thread
            self._interrupted = exc

    def _restore(self) -> None:
        self.unrestored = None
        steps = [
            ("restore the world settings", self._restore_settings),
            ("switch the Traffic Manager's synchronous mode off", self._tm_async),
            ("stop the sensors", self._stop_sensors),
            ("destroy the sensors", self._destroy_sensors),
            ("destroy the vehicles", self._destroy_vehicles),
            ("stop the recorder", self._stop_recorder),
            ("stop the replayer", self._stop_replayer),
            ("restore the weather", self._restore_weather),
        ]
        interrupted: Optional[BaseException] = None
        gone = False
        for what, step in steps:
            if gone and step != self._stop_sensors:
                continue  # a server that stopped answering: only the client-side unsubscribing is left
            try:
                step()
            except KeyboardInterrupt as exc:
                interrupted = interrupted or exc
                log.warning("cleanup: interrupted while trying to %s; finishing the cleanup first", what)
            except Exception as exc:  # noqa: BLE001 - every step must get its chance
                log.log(logging.DEBUG if self.quiet else logging.WARNING, "cleanup: could not %s: %s", what, exc)
                if is_timeout(exc):
                    self.unrestored = f"the server did not answer the cleanup (could not {what})"
                    if not self.quiet:
                        log.warning("cleanup: the server stopped answering; skipping the rest of the cleanup")
                    gone = True
        if interrupted is not None:
            raise interrupted

    def _restore_settings(self) -> None:
        if self.settings_applied and self.world is not None:
            self.world.apply_settings(self.original_settings)
        self.settings_applied = False

    def _tm_async(self) -> None:
        if self.tm_sync:
            self.tm.set_synchronous_mode(False)
        self.tm_sync = False

    def _stop_sensors(self) -> None:
        _each(list(self.sensors), lambda sensor: sensor.stop(), "stop a sensor", self.quiet)

    def _destroy_sensors(self) -> None:
        sensors, self.sensors = self.sensors, []
        _each(reversed(sensors), lambda sensor: sensor.destroy(), "destroy a sensor", self.quiet)

    def _destroy_vehicles(self) -> None:
        vehicles, self.vehicles, self.ego = self.vehicles, [], None
        _each(reversed(vehicles), lambda vehicle: vehicle.destroy(), "destroy a vehicle", self.quiet)

    def _stop_recorder(self) -> None:
        if self.recording:
            self.recording = False
            self.client.stop_recorder()

    def _stop_replayer(self) -> None:
        if self.replaying:
            self.replaying = False
            self.client.stop_replayer(False)

    def _restore_weather(self) -> None:
        if self.weather_changed and self.world is not None:
            self.weather_changed = False
            self.world.set_weather(self.original_weather)

    # -- setup helpers shared by the simulator and the replay ------------------------
    def capture(self, world, where: str = "", probe_s: float = TICKER_PROBE_S) -> None:
        """Remember the settings to restore (before any change, map loads included).

        A server found in synchronous mode is listened to for ``probe_s``: a tick from someone
        else means another client drives it, and CARLA would take our ticks too (each tick of
        ours would also step their world): refused, one line. No tick: the client that turned
        it on is gone (a killed run); we take over, and leave it asynchronous on exit.
        """
        self.world = world
        self.original_settings = world.get_settings()
        if not self.original_settings.synchronous_mode:
            return
        try:
            world.wait_for_tick(float(probe_s))
        except RuntimeError:  # no tick: nobody is ticking
            log.warning("the server was left in synchronous mode by a client that is gone (no tick in %g s); "
                        "taking it over, and leaving it asynchronous on exit", probe_s)
            self.original_settings.synchronous_mode = False
            self.original_settings.fixed_delta_seconds = None
            return
        raise BackendError(f"the CARLA server {where} is in synchronous mode and another client is ticking it; "
                           "CARLA takes ticks from every client, so both would step the world. Stop that client "
                           "(or turn its synchronous mode off) first, or use another server (-carla-rpc-port)")

    def clean_leftovers(self, world) -> None:
        """Destroy what an earlier run of ours left behind (a killed process never cleans up):
        actors whose ``role_name`` starts with :data:`ROLE_PREFIX`, and the vehicles they are
        attached to. One log line says how many."""
        actors = list(world.get_actors())
        ours = [a for a in actors if str(a.attributes.get("role_name", "")).startswith(ROLE_PREFIX)]
        parents = {a.parent.id for a in ours if getattr(a, "parent", None) is not None}
        heroes = [a for a in actors if a.id in parents and a.type_id.startswith("vehicle.")]
        if not ours and not heroes:
            return
        # Sensors first (destroying a parent first would leave them dangling); never stop() them:
        # this client never listened to them (the wheel warns).
        sensors = [a for a in ours if a.type_id.startswith("sensor.")]
        gone = [a for a in sensors + [a for a in ours if a not in sensors] + heroes if a.destroy()]
        log.warning("removed %d actors left on the server by an earlier carla_agent run that did not end "
                    "cleanly (%s)", len(gone), ", ".join(sorted({a.type_id for a in gone})))

    def apply_sync(self, world, dt_s: float) -> None:
        """Synchronous mode with a fixed step, on the settings the server returned."""
        if self.original_settings is None:
            self.capture(world)
        self.world = world
        settings = world.get_settings()
        if settings.no_rendering_mode:
            # Cameras deliver nothing without rendering; a time-out would blame an "overloaded" server.
            log.warning("the server was in no_rendering_mode: turned off for this drive (cameras need it), "
                        "turned back on at the end")
            settings.no_rendering_mode = False
        settings.synchronous_mode = True
        settings.fixed_delta_seconds = float(dt_s)
        if settings.substepping and dt_s > settings.max_substep_delta_time * settings.max_substeps + 1e-9:
            # CARLA needs fixed_delta_seconds <= max_substep_delta_time * max_substeps, max_substeps <= 16.
            settings.max_substeps = min(16, int(math.ceil(dt_s / settings.max_substep_delta_time - 1e-9)))
            if dt_s > settings.max_substep_delta_time * settings.max_substeps:
                settings.max_substep_delta_time = dt_s / settings.max_substeps
        self.settings_applied = True  # set first: a time-out may still have applied them
        world.apply_settings(settings)

    def spawn_camera(self, name: str, blueprint_id: str, camera, parent,
                     extra: Optional[Dict[str, str]] = None) -> None:
        """A camera like ``scenario.camera``, attached to ``parent``; its frames go to ``queues[name]``.
        ``extra``: more blueprint attributes (the exposure's); one the server's blueprint lacks is an error."""
        carla = import_carla()
        bp = self.world.get_blueprint_library().find(blueprint_id)
        for key, value in (("image_size_x", camera.image_size_x), ("image_size_y", camera.image_size_y),
                           ("fov", camera.fov), ("sensor_tick", 0.0)):
            bp.set_attribute(key, str(value))
        for key, value in (extra or {}).items():
            if not bp.has_attribute(key):
                raise BackendError(f"the server's {blueprint_id} has no attribute {key!r} (CARLA 0.9.16 has); "
                                   "use a CARLA 0.9.16 server, or drop carla.exposure from the scenario")
            bp.set_attribute(key, value)
        mount = carla.Transform(carla.Location(x=camera.x_m, y=camera.y_m, z=camera.z_m),
                                carla.Rotation(pitch=camera.pitch_deg))
        self._spawn_sensor(name, bp, mount, parent)

    def spawn_event_sensor(self, name: str, blueprint_id: str, parent) -> None:
        carla = import_carla()
        bp = self.world.get_blueprint_library().find(blueprint_id)
        self._spawn_sensor(name, bp, carla.Transform(), parent)

    def _spawn_sensor(self, name: str, bp, transform, parent) -> None:
        if bp.has_attribute("role_name"):
            bp.set_attribute("role_name", ROLE_PREFIX + name)
        sensor = self.world.spawn_actor(bp, transform, attach_to=parent)
        self.sensors.append(sensor)
        q = SensorQueue(name)
        self.queues[name] = q
        sensor.listen(q.put)
