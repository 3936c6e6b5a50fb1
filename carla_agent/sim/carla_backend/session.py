"""The session: everything one run changed on a CARLA server, and its cleanup.

One episode of :class:`~carla_agent.sim.carla_backend.simulator.CarlaSimulator`
(``reset`` to the next ``reset`` or ``close``), or one replay, is a session: it
records every change it makes on the server (settings, Traffic Manager
synchronous mode, weather, recorder, actors, sensors) and :meth:`Session.restore`
undoes them in order on every exit path: normal end, an exception inside a tick,
Ctrl-C. Nothing is done in ``__del__``.
"""

from __future__ import annotations

import logging
import math
from typing import Callable, Dict, List, Optional

from carla_agent.sim.carla_backend.client import import_carla, is_timeout
from carla_agent.sim.carla_backend.sensors import SensorQueue

log = logging.getLogger(__name__)


def _each(items, action: Callable, what: str) -> None:
    """``action(item)`` for every item even when some fail; a Ctrl-C is re-raised at the end."""
    interrupted: Optional[BaseException] = None
    for item in items:
        try:
            action(item)
        except KeyboardInterrupt as exc:
            interrupted = interrupted or exc
        except Exception as exc:  # noqa: BLE001
            log.warning("cleanup: could not %s: %s", what, exc)
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

    def restore(self) -> None:
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
        for what, step in steps:
            try:
                step()
            except KeyboardInterrupt as exc:
                interrupted = interrupted or exc
                log.warning("cleanup: interrupted while trying to %s; finishing the cleanup first", what)
            except Exception as exc:  # noqa: BLE001 - every step must get its chance
                log.warning("cleanup: could not %s: %s", what, exc)
                if is_timeout(exc):
                    log.warning("cleanup: the server stopped answering; skipping the rest of the cleanup")
                    break
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
        _each(list(self.sensors), lambda sensor: sensor.stop(), "stop a sensor")

    def _destroy_sensors(self) -> None:
        sensors, self.sensors = self.sensors, []
        _each(reversed(sensors), lambda sensor: sensor.destroy(), "destroy a sensor")

    def _destroy_vehicles(self) -> None:
        vehicles, self.vehicles, self.ego = self.vehicles, [], None
        _each(reversed(vehicles), lambda vehicle: vehicle.destroy(), "destroy a vehicle")

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
    def capture(self, world) -> None:
        """Remember the settings to restore (before any change, map loads included)."""
        self.world = world
        self.original_settings = world.get_settings()
        if self.original_settings.synchronous_mode:
            log.warning("the server is already in synchronous mode: another client may be ticking it "
                        "(only one may); its settings will be restored as found on exit")

    def apply_sync(self, world, dt_s: float) -> None:
        """Synchronous mode with a fixed step, on the settings the server returned."""
        if self.original_settings is None:
            self.capture(world)
        self.world = world
        settings = world.get_settings()
        settings.synchronous_mode = True
        settings.fixed_delta_seconds = float(dt_s)
        if settings.substepping and dt_s > settings.max_substep_delta_time * settings.max_substeps + 1e-9:
            # CARLA needs fixed_delta_seconds <= max_substep_delta_time * max_substeps, max_substeps <= 16.
            settings.max_substeps = min(16, int(math.ceil(dt_s / settings.max_substep_delta_time - 1e-9)))
            if dt_s > settings.max_substep_delta_time * settings.max_substeps:
                settings.max_substep_delta_time = dt_s / settings.max_substeps
        self.settings_applied = True  # set first: a time-out may still have applied them
        world.apply_settings(settings)

    def spawn_camera(self, name: str, blueprint_id: str, camera, parent) -> None:
        """A camera like ``scenario.camera``, attached to ``parent``; its frames go to ``queues[name]``."""
        carla = import_carla()
        bp = self.world.get_blueprint_library().find(blueprint_id)
        for key, value in (("image_size_x", camera.image_size_x), ("image_size_y", camera.image_size_y),
                           ("fov", camera.fov), ("sensor_tick", 0.0)):
            bp.set_attribute(key, str(value))
        mount = carla.Transform(carla.Location(x=camera.x_m, y=camera.y_m, z=camera.z_m),
                                carla.Rotation(pitch=camera.pitch_deg))
        self._spawn_sensor(name, bp, mount, parent)

    def spawn_event_sensor(self, name: str, blueprint_id: str, parent) -> None:
        carla = import_carla()
        bp = self.world.get_blueprint_library().find(blueprint_id)
        self._spawn_sensor(name, bp, carla.Transform(), parent)

    def _spawn_sensor(self, name: str, bp, transform, parent) -> None:
        sensor = self.world.spawn_actor(bp, transform, attach_to=parent)
        self.sensors.append(sensor)
        q = SensorQueue(name)
        self.queues[name] = q
        sensor.listen(q.put)
