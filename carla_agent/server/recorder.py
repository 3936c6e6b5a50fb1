"""CARLA's recorder, served: ``start_recorder``, ``stop_recorder``, ``show_recorder_file_info``,
``show_recorder_collisions``, ``show_recorder_actors_blocked`` (carla 0.9.16's RPC names and
argument lists); the replayer's calls are :mod:`replayer`'s.

While recording, every tick appends one frame to the file (:mod:`recording_file`): the actors
created and destroyed since the last (vehicles, walkers, sensors and controllers with their
parents, the scenario's traffic, traffic lights, the spectator), every actor's pose, the lights
whose state changed, the collisions that began, and with ``additional_data`` each vehicle's speed
and control. The queries read the file back and answer in CARLA's text layout (:mod:`recorder_queries`).
"""

from __future__ import annotations

import logging
import math
from typing import Dict, Optional

from carla_agent.server import actors, checks, recorder_queries, recording_file, traffic_lights, vehicles
from carla_agent.server.recording_file import (KIND_LIGHT, KIND_OTHER, KIND_VEHICLE, KIND_WALKER, Frame,
                                               RecordingError)
from carla_agent.server.replayer import Replayer
from carla_agent.server.rpc import VOID, RpcError

log = logging.getLogger(__name__)
CATEGORIES = "ahvwto"


class Recorder:
    """The recorder and replayer state of one :class:`~carla_agent.server.world_service.WorldService`."""

    def __init__(self, world) -> None:
        self.world = world
        self.writer: Optional[recording_file.Writer] = None
        self.additional_data = False
        self.known: Dict[int, int] = {}  # recorded actor id -> its parent id
        self.lights: Dict[int, tuple] = {}  # light id -> (state, frozen) last recorded
        self.replayer = Replayer(world)

    @property
    def replay(self):
        return self.replayer.replay

    def handlers(self) -> dict:
        return {"start_recorder": self.start_recorder, "stop_recorder": self.stop_recorder,
                "show_recorder_file_info": self.show_recorder_file_info,
                "show_recorder_collisions": self.show_recorder_collisions,
                "show_recorder_actors_blocked": self.show_recorder_actors_blocked,
                **self.replayer.handlers()}

    # -- recording -------------------------------------------------------------------
    def start_recorder(self, name, additional_data=False, *a) -> str:
        """Starts a new file (a recording already running is closed first, as CARLA does); returns its path."""
        name = checks.text(name, "recorder file name")
        additional = checks.flag(additional_data, "additional_data")
        if not name.strip():
            raise RpcError("start_recorder: the file name is empty; give one, e.g. 'test1.log'")
        self.stop_recorder()
        w = self.world
        path = recording_file.resolve(name)
        try:
            self.writer = recording_file.Writer(path, w.scenario.name, float(w.sim.scenario.dt_s), additional)
        except OSError as e:
            raise RpcError(f"start_recorder: cannot write {path} ({e.strerror or e}); give a writable path "
                           f"or set {recording_file.ENV_DIR}") from None
        self.additional_data = additional
        self.known, self.lights = {}, {}
        self._start_frame, self._start_s = w.frame, w.elapsed_s
        self._write(Frame(1, 0.0), None)  # frame 1: every actor present now, at 0 s
        return str(path)

    def stop_recorder(self, *a):
        if self.writer is not None:
            w = self.world
            gone = [i for i in self.known if i not in _present(w)]
            if gone:  # destroyed since the last tick (CARLA records a destruction when it happens)
                self.writer.write(Frame(self.writer.frames + 1, round(w.elapsed_s - self._start_s, 9),
                                        destroyed=gone))
            log.info("recorded %d frames to %s", self.writer.frames, self.writer.path)
            self.writer.close()
            self.writer = None
        return VOID

    def on_tick(self, obs=None) -> None:
        """After each tick: append the frame (if recording)."""
        if self.writer is None:
            return
        w = self.world
        try:
            self._write(Frame(w.frame - self._start_frame + 1, round(w.elapsed_s - self._start_s, 9)), obs)
        except OSError as e:  # a full disk: the recording ends, the world goes on
            log.warning("the recorder stopped: cannot write %s (%s)", self.writer.path, e)
            self.stop_recorder()

    def before_tick(self) -> None:
        self.replayer.before_tick()

    def _write(self, fr: Frame, obs) -> None:
        w = self.world
        now = _present(w)
        for actor_id, actor in now.items():
            if actor_id not in self.known:
                fr.created.append([actor_id, actor.type_id, _kind(actor), list(_pose(w, actor)[:3]),
                                   [[a[0], a[1], a[2]] for a in actor.attributes]])
                if actor.parent:
                    fr.parents.append([actor_id, actor.parent])
                self.known[actor_id] = actor.parent
        for actor_id in [i for i in self.known if i not in now]:
            fr.destroyed.append(actor_id)
            del self.known[actor_id]
        for actor_id, actor in now.items():
            kind = _kind(actor)
            if kind == KIND_LIGHT:
                state, _, _, _, elapsed, frozen = traffic_lights.record(w, actor.light)
                if self.lights.get(actor_id) != (state, bool(frozen)):
                    self.lights[actor_id] = (state, bool(frozen))
                    fr.lights.append([actor_id, state, bool(frozen), round(float(elapsed), 3)])
            elif actor.type_id != "spectator":
                x, y, z, pitch, yaw, roll = _pose(w, actor)
                fr.positions.append([actor_id, round(x, 4), round(y, 4), round(z, 4), round(roll, 3),
                                     round(pitch, 3), round(yaw, 3)])
            if self.additional_data and kind == KIND_VEHICLE:
                st = vehicles.state_of(w, actor_id)
                c = w.raw_control if actor_id == w.ego_id else actor.raw_control
                speed = st.speed_mps if st is not None else float(getattr(actor.vehicle, "speed_mps", 0.0))
                fr.extra.append([actor_id, round(float(speed), 4), float(c[0]), float(c[1]), float(c[2])])
        fr.collisions = _collisions(w, obs)
        self.writer.write(fr)

    # -- queries ---------------------------------------------------------------------
    def show_recorder_file_info(self, name, show_all=False, *a) -> str:
        rec = _read(name)
        if isinstance(rec, str):
            return rec
        return recorder_queries.file_info(rec, checks.flag(show_all, "show_all"))

    def show_recorder_collisions(self, name, category1, category2, *a) -> str:
        c1, c2 = _category(category1, "type1"), _category(category2, "type2")
        rec = _read(name)
        return rec if isinstance(rec, str) else recorder_queries.collisions(rec, c1, c2)

    def show_recorder_actors_blocked(self, name, min_time, min_distance, *a) -> str:
        t = checks.number(min_time, "min_time (seconds)", 0.0)
        d = checks.number(min_distance, "min_distance (centimetres)", 0.0)
        rec = _read(name)
        return rec if isinstance(rec, str) else recorder_queries.blocked(rec, t, d)


def _read(name):
    """The recording, or CARLA's text for a missing or unreadable file (a string, as CARLA answers)."""
    try:
        return recording_file.read(checks.text(name, "recorder file name"))
    except RecordingError as e:
        return f"{e}\n"


def _category(value, what: str) -> str:
    """CARLA sends a ``char`` (an integer on the wire); the letters a h v w t o."""
    c = chr(value) if isinstance(value, int) and 0 < value < 128 else value
    if not isinstance(c, str) or len(c) != 1 or c not in CATEGORIES:
        raise RpcError(f"show_recorder_collisions: invalid {what} {value!r}; it must be one of the letters "
                       "'a' (any), 'h' (hero), 'v' (vehicle), 'w' (walker), 't' (traffic light), 'o' (other)")
    return c


def _present(w) -> dict:
    """Every actor in the world now, by id: the spectator, the spawned actors, the traffic on the map,
    the traffic lights."""
    out = {w.spectator_id: actors.spectator(w)}
    out.update(w.actors)
    for a in vehicles.live_traffic(w):
        out[a.id] = a
    for a in traffic_lights.actors(w, actors.Actor):
        out[a.id] = a
    return out


def _kind(actor) -> int:
    t = actor.type_id
    if t.startswith("vehicle."):
        return KIND_VEHICLE
    if t.startswith("walker.pedestrian"):
        return KIND_WALKER
    if t.startswith("traffic.traffic_light"):
        return KIND_LIGHT
    return KIND_OTHER


def _pose(w, actor) -> tuple:
    """``(x, y, z m, pitch, yaw, roll deg)`` of ``actor`` in CARLA's frame."""
    st = vehicles.state_of(w, actor.id)
    if st is not None:
        return (st.x_m, -st.y_m, 0.0, 0.0, -math.degrees(st.yaw_rad), 0.0)
    if actor.vehicle is not None:  # the scenario's traffic
        b = actor.vehicle.box(w.sim.road)
        return (b.x_m, -b.y_m, 0.0, 0.0, -math.degrees(b.yaw_rad), 0.0)
    light = getattr(actor, "light", None)
    if light is not None:
        x, y, z, yaw = light.pose
        return (x, y, z, 0.0, yaw, 0.0)
    if actor.type_id == "spectator":
        return (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    return tuple(float(v) for v in actors.world_transform(w, actor))


def _collisions(w, obs) -> list:
    """The contacts that began this tick: the ego's (with the scenario's traffic or a static thing)
    and those between the clients' vehicles and walkers."""
    from carla_agent.server.publish import _traffic_hit

    out = [[int(a), int(b), ""] for a, b in w.vehicle_hits]
    events = getattr(obs, "collisions", None) or []
    if events and w.ego_id is not None:
        hit = _traffic_hit(w, events)
        for k, ev in enumerate(events):
            other = hit.get(k)
            out.append([w.ego_id, other.id if other is not None else actors.STATIC_ID0 + k,
                        "" if other is not None else str(ev.other)])
    return out
