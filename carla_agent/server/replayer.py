"""CARLA's replayer, served: ``replay_file``, ``stop_replayer``, ``set_replayer_time_factor``,
``set_replayer_ignore_hero``, ``set_replayer_ignore_spectator`` (carla 0.9.16's RPC names).

``replay_file(name, start, duration, follow_id, replay_sensors)`` reads a recording of
:mod:`recorder` (a recording of another map loads that map first, as CARLA does; one this server
cannot load is refused with the maps it has), spawns a replay actor for every vehicle and walker
alive at ``start`` (the ``hero`` first, so it becomes the ego the cameras draw from), and each
tick moves every replayed actor to its recorded pose of the recording time reached (the time
advances ``dt * time_factor`` per tick); actors created or destroyed in the recording are spawned
or destroyed when the replay passes them. Not replayed: the scenario's own traffic (the ego's spawn
restarts the scenario, which drives it again), traffic-light states, and sensors. At the end the
replayed actors stay where the recording left them; ``stop_replayer(keep_actors)`` destroys them
unless asked to keep them.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from carla_agent.server import actors, checks, recording_file, town_world, vehicle_calls
from carla_agent.server.recording_file import KIND_VEHICLE, KIND_WALKER, RecordingError
from carla_agent.server.rpc import VOID, RpcError

log = logging.getLogger(__name__)


@dataclass
class Replay:
    """A replay in progress: ``ids`` maps recorded ids to the replay actors' ids."""

    rec: recording_file.Recording
    times: List[float]
    end_s: float
    cursor_s: float
    next_frame: int
    ids: Dict[int, int] = field(default_factory=dict)
    heroes: set = field(default_factory=set)
    created: Dict[int, list] = field(default_factory=dict)  # recorded id -> its Create record

    @property
    def hero_id(self) -> Optional[int]:
        return next((self.ids[i] for i in self.heroes if i in self.ids), None)


class Replayer:
    """The replayer state of one world."""

    def __init__(self, world) -> None:
        self.world = world
        self.replay: Optional[Replay] = None
        self.time_factor = 1.0
        self.ignore_hero = False

    def handlers(self) -> dict:
        return {"replay_file": self.replay_file, "stop_replayer": self.stop_replayer,
                "set_replayer_time_factor": self.set_time_factor,
                "set_replayer_ignore_hero": self.set_ignore_hero,
                "set_replayer_ignore_spectator": lambda ignore, *a: (checks.flag(ignore, "ignore_spectator"), VOID)[1]}

    def set_time_factor(self, factor, *a):
        self.time_factor = checks.number(factor, "time factor", 0.0, 1000.0, lo_open=True)
        return VOID

    def set_ignore_hero(self, ignore, *a):
        self.ignore_hero = checks.flag(ignore, "ignore_hero")
        return VOID

    def replay_file(self, name, start=0.0, duration=0.0, follow_id=0, replay_sensors=False, *a) -> str:
        name = checks.text(name, "recorder file name")
        start_s = checks.number(start, "start (seconds)")
        duration_s = checks.number(duration, "duration (seconds)")
        checks.integer(follow_id, "follow_id", 0, 2 ** 32 - 1)
        checks.flag(replay_sensors, "replay_sensors")
        try:
            rec = recording_file.read(name)
        except RecordingError as e:
            return f"{e}\n"
        w = self.world
        self.stop_replayer(False)
        if rec.map_name != w.scenario.name:
            town_world.scenario_for_map(w, rec.map_name)  # an unknown map: CARLA-style error, nothing changed
            w.load_new_episode(rec.map_name, False)
        total = rec.duration_s
        first = total + start_s if start_s < 0 else start_s  # CARLA: a negative start counts from the end
        first = min(max(first, 0.0), total)
        end = total if duration_s <= 0 else min(total, first + duration_s)
        times = [fr.elapsed_s for fr in rec.frames]
        r = Replay(rec, times, end, first, 0)
        self.replay = r
        upto = bisect.bisect_right(times, first)
        self._advance(r, upto)
        self._move(r, max(upto - 1, 0))
        return (f"Replaying File: {rec.path}\nTotal time recorded: {total:g}\n"
                f"Replaying from {first:g} s - {end:g} s ({total:g} s) at {self.time_factor:.1f}x\n")

    def stop_replayer(self, keep_actors=False, *a):
        r, self.replay = self.replay, None
        if r is not None and not checks.flag(keep_actors, "keep_actors"):
            for actor_id in r.ids.values():
                actors.destroy_actor(self.world, actor_id)
        return VOID

    def before_tick(self) -> None:
        """Before each tick: the recording time advances; replayed actors go to their poses of then."""
        r = self.replay
        if r is None or r.cursor_s >= r.end_s:
            return
        r.cursor_s = min(r.end_s, r.cursor_s + float(self.world.sim.scenario.dt_s) * self.time_factor)
        upto = bisect.bisect_right(r.times, r.cursor_s + 1e-9)
        self._advance(r, upto)
        self._move(r, max(upto - 1, 0))

    # -- internals -------------------------------------------------------------------
    def _advance(self, r: Replay, upto: int) -> None:
        """Apply the Create / Destroy events of frames ``r.next_frame .. upto - 1``."""
        for fr in r.rec.frames[r.next_frame:upto]:
            for c in fr.created:
                r.created[c[0]] = c
            # the hero first: the first vehicle spawned into an empty world is the ego (cameras draw from it)
            for c in sorted(fr.created, key=lambda c: not _is_hero(c)):
                if c[2] in (KIND_VEHICLE, KIND_WALKER) and c[0] not in r.ids:
                    self._spawn(r, c, self._pose_at(r, fr, c[0]))
            for i in fr.destroyed:
                if i in r.ids:
                    actors.destroy_actor(self.world, r.ids.pop(i))
        r.next_frame = max(r.next_frame, upto)

    @staticmethod
    def _pose_at(r: Replay, fr, recorded_id: int):
        for p in fr.positions:
            if p[0] == recorded_id:
                return p
        c = r.created[recorded_id]
        return [recorded_id, *c[3], 0.0, 0.0, 0.0]

    def _spawn(self, r: Replay, created: list, pose: list) -> None:
        recorded_id, type_id, _, _, attrs = created
        if type_id not in _spawnable(self.world):
            return  # the scenario's traffic (vehicle.lead, ...): the scenario itself drives it again
        description = [0, type_id, [[a[0], int(a[1]), str(a[2])] for a in attrs]]
        _, x, y, z, _, _, yaw = pose
        try:
            wire = actors.spawn_actor(self.world, description, [[x, y, max(z, 0.0)], [0.0, yaw, 0.0]])
        except RpcError as e:  # e.g. a vehicle overlapping one already there
            log.warning("replay: %s %d not spawned (%s)", type_id, recorded_id, e)
            return
        r.ids[recorded_id] = int(wire[0])
        if _is_hero(created):
            r.heroes.add(recorded_id)

    def _move(self, r: Replay, index: int) -> None:
        if not r.rec.frames:
            return
        for p in r.rec.frames[index].positions:
            new_id = r.ids.get(p[0])
            if new_id is None or (self.ignore_hero and p[0] in r.heroes) or new_id not in self.world.actors:
                continue
            _, x, y, z, roll, pitch, yaw = p
            actors.set_actor_transform(self.world, new_id, [[x, y, z], [pitch, yaw, roll]])
            vehicle_calls.set_actor_target_velocity(self.world, new_id, [0.0, 0.0, 0.0])


def _is_hero(created: list) -> bool:
    return any(a[0] == "role_name" and str(a[2]) == "hero" for a in created[4])


def _spawnable(world) -> set:
    return {d[1] for d in world._blueprints}
