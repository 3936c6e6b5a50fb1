"""CARLA's recorder and replayer, served: ``start_recorder``, ``stop_recorder``,
``show_recorder_file_info``, ``replay_file``, ``stop_replayer`` (carla 0.9.16's RPC names and
argument lists).

Minimal but faithful for what a client sees: while recording, each tick stores the ego's
transform (CARLA stores every actor's; the embedded world has one vehicle that is not the
scenario's own). Recordings live in the server process, by the name given (CARLA saves a plain
name in ``CarlaUE4/Saved``). ``show_recorder_file_info`` answers in CARLA's text layout
(``Version``, ``Map``, ``Frames``, ``Duration``; ``File NAME not found on server`` when it has no such
recording). ``replay_file`` spawns a vehicle with ``role_name`` ``hero`` at the recording's first
pose, and each tick puts it at the next recorded pose (speed 0: it does not drive on). A
recording made on another map than the one served is refused with the name of the map, as this
server cannot load another. ``stop_replayer(keep_actors)`` destroys the hero unless asked to keep it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from carla_agent.server import actors, checks
from carla_agent.server.rpc import VOID, RpcError
from carla_agent.server.wire import A_STRING

Pose = Tuple[float, float, float]  # x m, y m, yaw deg in CARLA's frame


@dataclass
class Recording:
    map_name: str
    dt_s: float
    date: str
    poses: List[Pose] = field(default_factory=list)


@dataclass
class Replay:
    hero_id: int
    poses: List[Pose]
    next: int = 0


class Recorder:
    """The recorder and replayer state of one :class:`~carla_agent.server.world_service.WorldService`."""

    def __init__(self, world) -> None:
        self.world = world
        self.recordings: dict = {}
        self.active: Optional[str] = None
        self.replay: Optional[Replay] = None

    def handlers(self) -> dict:
        return {"start_recorder": self.start_recorder, "stop_recorder": self.stop_recorder,
                "show_recorder_file_info": self.show_recorder_file_info, "replay_file": self.replay_file,
                "stop_replayer": self.stop_replayer, "set_replayer_time_factor": lambda *a: VOID,
                "set_replayer_ignore_hero": lambda *a: VOID, "set_replayer_ignore_spectator": lambda *a: VOID}

    # -- recording -------------------------------------------------------------------
    def start_recorder(self, name, additional_data=False, *a) -> str:
        name = checks.text(name, "recorder file name")
        w = self.world
        self.recordings[name] = Recording(w.scenario.name, float(w.sim.scenario.dt_s),
                                          time.strftime("%m/%d/%y %H:%M:%S"))
        self.active = name
        return name

    def stop_recorder(self, *a):
        self.active = None
        return VOID

    def on_tick(self) -> None:
        """After each tick: store the ego's pose; move a replayed hero to its next pose."""
        w = self.world
        if self.active is not None and w.ego_id is not None and self.replay is None:
            self.recordings[self.active].poses.append(actors.ego_pose(w))

    def before_tick(self) -> None:
        r = self.replay
        if r is None or r.hero_id != self.world.ego_id or r.next >= len(r.poses):
            return
        x, y, yaw = r.poses[r.next]
        r.next += 1
        actors.set_actor_transform(self.world, r.hero_id, [[x, y, 0.0], [0.0, yaw, 0.0]])
        actors.set_actor_target_velocity(self.world, r.hero_id, [0.0, 0.0, 0.0])

    # -- replaying -------------------------------------------------------------------
    def show_recorder_file_info(self, name, show_all=False, *a) -> str:
        rec = self.recordings.get(checks.text(name, "recorder file name"))
        if rec is None:
            return f"File {name} not found on server\n"
        return (f"Version: 1\nMap: {rec.map_name}\nDate: {rec.date}\n\n"
                f"Frames: {len(rec.poses)}\nDuration: {len(rec.poses) * rec.dt_s:g} seconds\n")

    def replay_file(self, name, start=0.0, duration=0.0, follow_id=0, replay_sensors=False, *a) -> str:
        w = self.world
        rec = self.recordings.get(checks.text(name, "recorder file name"))
        if rec is None:
            return f"File {name} not found on server\n"
        if rec.map_name != w.scenario.name:
            raise RpcError(f"recording {name!r} was made on map {rec.map_name!r}; this server serves "
                           f"{w.scenario.name!r} and cannot load another (restart serve with --scenario "
                           f"{rec.map_name})")
        if w.ego_id is not None:
            raise RpcError("the embedded server replays into a world without a vehicle (it serves one); "
                           "destroy the ego first")
        first = max(0, int(round(_number(start) / rec.dt_s)))
        count = int(round(_number(duration) / rec.dt_s)) if _number(duration) > 0 else len(rec.poses)
        poses = rec.poses[first:first + count] or rec.poses[-1:]
        if not poses:
            return f"File {name} has no frames\n"
        x, y, yaw = poses[0]
        description = [0, "vehicle.lincoln.mkz_2020", [["role_name", A_STRING, "hero"]]]
        hero = actors.spawn_actor(w, description, [[x, y, 0.5], [0.0, yaw, 0.0]])
        self.replay = Replay(int(hero[0]), list(poses))
        return f"Replaying File: {name}\nTotal time recorded: {len(rec.poses) * rec.dt_s:g}\n"

    def stop_replayer(self, keep_actors=False, *a):
        r, self.replay = self.replay, None
        if r is not None and not keep_actors:
            actors.destroy_actor(self.world, r.hero_id)
        return VOID


def _number(value) -> float:
    v = float(value) if isinstance(value, (int, float)) else 0.0
    return v if math.isfinite(v) else 0.0
