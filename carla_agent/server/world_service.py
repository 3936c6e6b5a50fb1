"""The CARLA calls, answered from an :class:`EmbeddedSimulator`.

Every handler takes the call's real arguments (the metadata array already
stripped) and returns the raw value; :mod:`rpc` wraps it as ``Response<T>``.
Wire layouts are those of the carla 0.9.16 wheel (see docs/serve.md).
:class:`WorldService` holds the state, the dispatch table, the episode settings and the tick; the
calls are grouped by namespace as CARLA's server groups them: :mod:`actors`, :mod:`weather`,
and what each tick sends, :mod:`publish`.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import threading
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Set

from carla_agent.control import VehicleControl
from carla_agent.server import (actors, batch, checks, opendrive_world, publish, tick_profile, town_world,
                                traffic_lights, vehicle_calls, vehicles, walkers, weather, world_calls)
from carla_agent.server.actors import Actor
from carla_agent.server.recorder import Recorder
from carla_agent.server.rpc import VOID, RpcError
from carla_agent.server.streams import StreamServer
from carla_agent.server.wire import EPISODE_STREAM, EPISODE_STREAM_BASE, actor_wire

log = logging.getLogger(__name__)

VERSION = "0.9.16"


class WorldService:
    """The embedded world behind the RPC calls. All state is guarded by ``lock``.

    The call modules (:mod:`actors`, :mod:`weather`, :mod:`publish`) read and write the public state:
    ``sim``, ``streams``, ``actors`` / ``traffic`` (id -> :class:`Actor`), ``ego_id``, ``control``
    and ``raw_control`` (the ego's last control as clamped and as sent), ``next_id``,
    ``weather_params`` (the last ``WeatherParameters`` set, or None), ``frame``, ``elapsed_s``."""

    def __init__(self, scenario, seed: int = 0, async_period_s: float = 0.05, sync_grace_s: float = 2.0) -> None:
        from carla_agent.sim.embedded.simulator import EmbeddedSimulator

        self.lock = threading.RLock()
        self.scenario = scenario
        self.home_scenario = scenario  # the one started with: load_world finds it after a town too
        self.sim = EmbeddedSimulator(render=False)
        self.sim.reset(scenario, seed)
        self.seed = seed
        self.streams: Optional[StreamServer] = None
        self.episode_id = 1
        self.reported_episode_id = 1  # what get_episode_info says (see there)
        #: The episode state's stream: a new one for each episode (see ``load_new_episode``).
        self.episode_stream = EPISODE_STREAM
        #: Earlier episodes' streams that still have subscribers: they get the new episode's state too.
        self.old_episode_streams: list = []
        #: Set by a new episode: its first state published to a listener carries CARLA's MapChange bit.
        self.map_changed = False
        #: ``generate_opendrive_world``'s map, read and waiting for ``load_new_episode("OpenDriveMap")``.
        self.staged_opendrive: Optional[opendrive_world.StagedMap] = None
        #: The staging folders this server wrote maps into, released at :meth:`close`.
        self.staged_folders: Set[Path] = set()
        #: The ``OpendriveGenerationParameters`` of the map served (CARLA's defaults for a town).
        self.map_parameters = opendrive_world.OpendriveParameters()
        self.frame = 0
        self.elapsed_s = 0.0
        self.sync = False
        self.sync_owner: Optional[int] = None  # the RPC connection that turned synchronous mode on
        self._live: Set[int] = set()  # RPC connections still open
        self.no_rendering = False
        self.fixed_delta: Optional[float] = None
        self.actors: Dict[int, Actor] = {}
        self.ego_id: Optional[int] = None
        self.control = VehicleControl()
        self.raw_control = [0.0, 0.0, 0.0, False, False, False, 0]
        self.next_id = 100
        self.spectator_id = 2
        self._warned: Set[str] = set()
        self._async_period_s = async_period_s
        self._sync_grace_s = sync_grace_s
        self._stop = threading.Event()
        self._ticker: Optional[threading.Thread] = None
        self._blueprints = actors.blueprints()
        self.weather_params: Optional[list] = None
        self._tms: Dict[int, tuple] = {}
        self._cid = 0  # the RPC connection of the call being handled (set by dispatch)
        #: ``local_host(cid)``: the address RPC connection ``cid`` reached (set by ``Server``), or None.
        self.local_host: Callable[[int], Optional[str]] = lambda cid: None
        self._failures_logged: Dict[str, float] = {}  # asynchronous tick failures: message -> last logged
        self.traffic: Dict[int, Actor] = {}
        self.vehicles: Dict[int, Actor] = {}  # the clients' vehicles other than the ego (see vehicles.py)
        self.contacts: Set[tuple] = set()  # vehicle pairs touching after the last tick
        self.vehicle_hits: list = []  # the new vehicle-vehicle contacts of the last tick
        self.walkers: Dict[int, Actor] = {}  # walker.pedestrian.* actors (see walkers.py)
        self.walker_contacts: Set[tuple] = set()
        actors.make_traffic_actors(self)
        self._handlers: Dict[str, Callable[..., Any]] = {
            "version": lambda *a: VERSION,
            "get_episode_info": self.get_episode_info,
            "get_sensor_token": self.get_sensor_token,
            "get_episode_settings": self.get_episode_settings,
            "set_episode_settings": self.set_episode_settings,
            "get_required_files": partial(walkers.get_required_files, self),
            "request_file": partial(walkers.request_file, self),
            "apply_control_to_walker": partial(walkers.apply_control_to_walker, self),
            "set_actor_collisions": lambda actor_id, enabled, *a: VOID,
            "set_actor_dead": lambda actor_id, *a: VOID,
            "query_lights_state": lambda *a: [],
            "tick_cue": self.tick_cue,
            "get_map_info": self.get_map_info,
            "get_map_data": self.get_map_data,
            "get_available_maps": lambda *a: town_world.available_maps(self),
            "load_new_episode": self.load_new_episode,
            "copy_opendrive_to_file": partial(opendrive_world.copy_opendrive_to_file, self),
            "get_actor_definitions": lambda *a: self._blueprints,
            "spawn_actor": partial(actors.spawn_actor, self),
            "spawn_actor_with_parent": partial(actors.spawn_actor_with_parent, self),
            "destroy_actor": partial(actors.destroy_actor, self),
            "get_actors_by_id": partial(actors.get_actors_by_id, self),
            "get_actor_bounding_box": partial(actors.get_actor_bounding_box, self),
            "apply_control_to_vehicle": partial(vehicle_calls.apply_control_to_vehicle, self),
            "get_spectator": lambda *a: actor_wire(actors.spectator(self), self.token),
            "get_weather_parameters": partial(weather.get_weather_parameters, self),
            "set_weather_parameters": partial(weather.set_weather_parameters, self),
            # the wheel sends it with every set_weather (CARLA's day-night cycle, a Large Map thing):
            # the embedded weather never cycles, so there is nothing to switch
            "update_day_night_cycle": lambda active=False, *a: VOID,
            "apply_batch": partial(batch.apply_batch, self),
            # Traffic Manager bookkeeping (the TM itself runs in the client)
            "is_traffic_manager_running": lambda port, *a: _tm_port(port) in self._tms,
            "add_traffic_manager_running": self._add_tm,
            "get_traffic_manager_running": lambda port, *a: list(self._tms.get(_tm_port(port), ("", 0))),
            "get_vehicle_light_states": partial(vehicle_calls.get_vehicle_light_states, self),
            "set_actor_simulate_physics": partial(vehicle_calls.set_actor_simulate_physics, self),
            "set_vehicle_light_state": partial(vehicle_calls.set_vehicle_light_state, self),
            "get_vehicle_light_state": partial(vehicle_calls.get_vehicle_light_state, self),
            "set_actor_location": partial(actors.set_actor_location, self),
            "set_actor_target_angular_velocity": partial(vehicles.set_target_angular_velocity, self),
            "set_actor_transform": partial(actors.set_actor_transform, self),  # no traffic lights in the embedded world
            "set_actor_target_velocity": partial(vehicle_calls.set_actor_target_velocity, self),
            "set_actor_autopilot": partial(vehicle_calls.set_actor_autopilot, self),
            "carla_agent_tick_profile": tick_profile.take,  # not CARLA's: bench/bench_serve.py
            "destroy_traffic_manager": lambda port, *a: self._tms.pop(_tm_port(port), None) is not None,
        }
        self._handlers.update(traffic_lights.handlers(self))
        self._handlers.update(world_calls.handlers(self))
        self.recorder = Recorder(self)
        self._handlers.update(self.recorder.handlers())

    # -- lifecycle -----------------------------------------------------------
    def start(self, streams: StreamServer) -> None:
        self.streams = streams
        streams.register(self.episode_stream)
        self._ticker = threading.Thread(target=self._async_loop, name="carla-async-ticker", daemon=True)
        self._ticker.start()

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2.0)
        opendrive_world.release_staged(self.staged_folders, opendrive_world.user_mark(self))
        self.staged_folders.clear()

    def _async_loop(self) -> None:
        """Ticks while no client runs synchronous mode. Nothing stops it but :meth:`close`: a tick
        that fails is logged (once per message every 10 s) and the next one comes as usual."""
        while not self._stop.wait(self._async_period_s):
            try:
                with self.lock:
                    if not self.sync:
                        self._tick()
            except Exception as e:  # noqa: BLE001 - the world goes on (RpcError: _tick has recovered)
                message = f"{type(e).__name__}: {e}"
                now = time.monotonic()
                if now - self._failures_logged.get(message, -math.inf) > 10.0:
                    self._failures_logged[message] = now
                    log.warning("asynchronous tick: %s", message, exc_info=not isinstance(e, RpcError))

    def on_disconnect(self, cid: int) -> None:
        """Do better than CARLA #2158: if the synchronous client goes, go back to async after a grace.

        Meanwhile another client may take the ticking over (a ``tick_cue`` or synchronous settings)."""
        with self.lock:
            self._live.discard(cid)
            if not (self.sync and self.sync_owner == cid):
                return

        def revert() -> None:
            with self.lock:
                if self.sync and self.sync_owner == cid:
                    log.warning("the synchronous client left; back to asynchronous mode")
                    self.sync = False
                    self.sync_owner = None

        t = threading.Timer(self._sync_grace_s, revert)
        t.daemon = True
        t.start()

    # -- dispatch ------------------------------------------------------------
    def dispatch(self, method: str, args: list, cid: int) -> Any:
        log.debug("call %s %r", method, args)
        handler = self._handlers.get(method)
        if handler is None:
            if method not in self._warned:
                self._warned.add(method)
                log.warning("unsupported CARLA call %r", method)
            raise RpcError(f"the embedded server does not support {method}")
        _check_arity(method, handler, args)
        with self.lock:
            self._cid = cid
            self._live.add(cid)
            return handler(*args)

    # -- episode ---------------------------------------------------------------
    def token(self, stream_id: int) -> bytes:
        """The stream token for the calling client: the address in it is the one that client reached."""
        return self.streams.token(stream_id, self.local_host(self._cid))

    def get_episode_info(self, *a) -> list:
        """``[id, token]``. Right after ``load_world`` the id is still the old episode's until the new
        one has sent a state, as on a CARLA server that loads the map over the next frames: the wheel
        makes its new episode with this id and then sees the id change on the stream, which is what
        resets its Traffic Manager (else the TM keeps the old episode's actors and segfaults)."""
        return [self.reported_episode_id, [self.token(self.episode_stream)]]  # Token = [bin24]

    def get_sensor_token(self, stream_id, *a) -> list:
        sid = actors.actor_id(stream_id)
        if sid in self.actors:
            self.streams.expect(sid)
        return [self.token(sid)]  # streaming::Token is [bin24]

    def get_episode_settings(self, *a) -> list:
        fd = [True, float(self.fixed_delta)] if self.fixed_delta is not None else [False]
        return [self.sync, self.no_rendering, fd, False, 0.01, 10, 0.0, False, 2000.0, 2000.0, False]

    def _take_over_from_a_gone_owner(self) -> None:
        """The client that turned synchronous mode on left (within its grace period): the caller,
        ticking now, becomes the one whose departure switches it off."""
        if self.sync and self.sync_owner != self._cid and self.sync_owner not in self._live:
            log.warning("connection %d takes over ticking from a client that left", self._cid)
            self.sync_owner = self._cid

    def set_episode_settings(self, s, *a) -> int:
        """Any client may change the settings, as in CARLA (the last one wins)."""
        sync, no_rendering, fixed_delta = checks.episode_settings(s)  # checked before anything changes
        if sync and not (self.sync and self.sync_owner in self._live):
            self.sync_owner = self._cid
        elif not sync:
            self.sync_owner = None
        self.sync = sync
        self.no_rendering = no_rendering
        self.fixed_delta = fixed_delta
        dt = self.fixed_delta if self.fixed_delta is not None else self.scenario.dt_s
        if self.sim.scenario.dt_s != dt:
            self.sim.scenario = replace(self.sim.scenario, dt_s=dt)
        publish.publish_episode(self)
        return self.frame

    def tick_cue(self, *a) -> int:
        """One tick, from any client, as in CARLA: two clients ticking a synchronous server both
        step it (each sees frames the other ticked). The episode state, the collision events and
        the camera frames are sent before the reply (a client's sensor queue gets them from its
        stream thread, after or while tick() returns)."""
        self._take_over_from_a_gone_owner()
        with tick_profile.phase("tick"):
            self._tick()
        return self.frame

    def _tick(self) -> None:
        """One step and what it sends. The world goes on whatever fails: a step that fails restarts
        the episode from the scenario's start, a sensor that fails is stopped (the others and the
        episode state are sent), and :class:`RpcError` says so to the client that ticked (in
        asynchronous mode, to the log)."""
        try:
            self.recorder.before_tick()
            world_calls.hold_constant_velocities(self)
            vehicles.step_all(self, self.sim.scenario.dt_s)
            walkers.step_all(self, self.sim.scenario.dt_s)
            with tick_profile.phase("simulate"):
                obs = self.sim.step(self.control)
            self.vehicle_hits = vehicles.collisions(self) + walkers.hits(self)
        except Exception as e:  # noqa: BLE001
            log.warning("the simulation step failed; restarting the episode", exc_info=True)
            actors.restart_episode(self)
            raise RpcError(f"the simulation step failed ({type(e).__name__}: {e}); the episode was restarted "
                           "from the scenario's start") from None
        self.frame += 1
        self.elapsed_s += self.sim.scenario.dt_s
        traffic_lights.tick(self)
        self.recorder.on_tick(obs)
        if town_world.relay(self):
            actors.corridor_changed(self)
        failures = publish.publish_tick(self, obs)
        if failures:
            raise RpcError(f"frame {self.frame}: " + "; ".join(failures))

    # -- map -------------------------------------------------------------------
    def get_map_info(self, *a) -> list:
        if town_world.is_town(self):
            return [self.scenario.name, town_world.spawn_points(self)]
        sim, road = self.sim, self.sim.road
        points = []
        for k in range(5):
            s = sim.start_s + 25.0 * k
            if s > road.length_m - 30.0 and k:
                break
            x, y = road.to_world(s, sim.lane_t)
            points.append([[float(x), -float(y), 0.5], [0.0, -math.degrees(road.heading_at(s)), 0.0]])
        return [self.scenario.name, points]

    def get_map_data(self, *a) -> str:
        return self.sim.xodr()

    def load_new_episode(self, map_name, reset_settings=True, *a):
        """``client.load_world(name)``: a shipped town (or the scenario served) afresh, as a new episode;
        ``reload_world()`` sends ``""``: the map served; ``generate_opendrive_world`` sends
        ``OpenDriveMap`` after staging its map (:mod:`opendrive_world`).

        As CARLA does: every actor is destroyed, and with ``reset_settings`` the episode goes back to
        asynchronous mode. The client then waits for a tick of the new episode id."""
        scenario = town_world.scenario_for_map(self, map_name)
        reset_settings = checks.flag(reset_settings, "load_new_episode: reset_settings")
        for actor_id in list(self.actors):
            actors.destroy_actor(self, actor_id)
        self.scenario = scenario
        self.sim.reset(scenario, self.seed)
        self.map_parameters = opendrive_world.parameters_for(self, scenario)
        self.reported_episode_id = self.episode_id
        self.episode_id += 1
        self.map_changed = True
        actors.make_traffic_actors(self)
        if reset_settings:
            self.sync, self.sync_owner, self.fixed_delta, self.no_rendering = False, None, None, False
        # A fresh stream for the new episode: the wheel drops the old episode (unsubscribing its stream
        # by id) only when the last reference to it goes, which may be after the new episode subscribed;
        # with one stream id for both, that kills the new subscription mid-connect (a use-after-free
        # in the wheel's streaming client: segfault, seen with a Traffic Manager holding the old episode).
        # The old stream is kept open and fed the new episode's state (a real CARLA server has one stream
        # for all episodes): that is how the wheel's old episode sees the episode id change (and resets
        # its Traffic Manager); closing it made the wheel reconnect to a stream that was gone while the
        # Traffic Manager tore it down (segfault in load_world with a synchronous TM, as the Leaderboard's).
        kept = [s for s in self.old_episode_streams + [self.episode_stream] if self.streams.has_subscribers(s)]
        for s in set(self.old_episode_streams + [self.episode_stream]) - set(kept):
            self.streams.unregister(s)
        self.old_episode_streams = kept[-8:]
        for s in kept[:-8]:
            self.streams.unregister(s)
        self.episode_stream = EPISODE_STREAM_BASE + self.episode_id
        self.streams.register(self.episode_stream)
        log.info("loaded %s (episode %d)", scenario.name, self.episode_id)
        return VOID

    # -- traffic manager -----------------------------------------------------------
    def _add_tm(self, ip_port, *a) -> bool:
        if not isinstance(ip_port, (list, tuple)) or len(ip_port) < 2:
            raise RpcError(f"add_traffic_manager_running takes [ip, port], not {ip_port!r:.60}")
        ip, port = checks.text(ip_port[0], "traffic manager ip"), _tm_port(ip_port[1])
        if port in self._tms:
            return False
        self._tms[port] = (ip, port)
        return True

@functools.lru_cache(maxsize=None)
def _signature(handler: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(handler)


def _check_arity(method: str, handler: Callable[..., Any], args: list) -> None:
    """A call with too few or too many arguments is refused by name (not a TypeError from inside)."""
    try:
        _signature(handler).bind(*args)
    except TypeError:
        params = [p.name for p in _signature(handler).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        raise RpcError(f"{method} takes {len(params)} argument(s) ({', '.join(params) or 'none'}), "
                       f"got {len(args)}") from None


def _tm_port(port) -> int:
    return checks.integer(port, "traffic manager port", 0, 65535)
