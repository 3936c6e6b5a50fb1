"""Replaying a CARLA recording: the hero's camera rendered again, frame by frame (for attention videos)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import numpy as np

from carla_agent.errors import BackendError
from carla_agent.sim.carla_backend.client import DEFAULT_HOST, DEFAULT_PORT, connect, map_key
from carla_agent.sim.carla_backend.sensors import bgra_to_rgb, semantic_labels
from carla_agent.sim.carla_backend.session import Session
from carla_agent.sim.carla_backend.spec import ExposureSpec, carla_spec, exposure_attributes
from carla_agent.sim.carla_backend.watchdog import Watchdog
from carla_agent.sim.observation import Pose


@dataclass(frozen=True)
class ReplayFrame:
    """One tick of a replayed recording, seen from the hero's camera."""

    index: int
    carla_frame: int
    sim_time_s: float
    image: np.ndarray
    semantic: Optional[np.ndarray]
    pose: Pose


class CarlaReplay:
    """Re-render a CARLA recording from the hero's camera (for attention videos).

    ``client.replay_file`` reloads the map in asynchronous mode, so synchronous
    mode is re-applied after it. A recording made on another map than the loaded
    one makes the server load that map first, asynchronously, as a new episode:
    the replay waits (``load_timeout_s``) for the new ``World`` and uses it. One tick later the hero is found by
    ``role_name`` and the cameras are attached to it. Recordings hold no sensor
    data, and collision / lane-invasion sensors do not fire in a replay.
    Use as a context manager; ``frames()`` yields :class:`ReplayFrame`.

    Args:
        recorder_file: the recording, as named to ``start_recorder``.
        camera: a :class:`~carla_agent.sim.scenario.CameraSpec` (the scenario's camera).
        dt_s: fixed time step of the replay.
        start_s, duration_s: the part to replay (0: to the end).
        semantic: also attach a semantic camera.
        exposure: the RGB camera's :class:`~carla_agent.sim.carla_backend.spec.ExposureSpec`
            (default: fixed, as in a drive).
        Other keywords as for :class:`~carla_agent.sim.carla_backend.simulator.CarlaSimulator`.
    """

    def __init__(self, recorder_file: str, camera=None, dt_s: float = 0.05, *, host: str = DEFAULT_HOST,
                 port: int = DEFAULT_PORT, timeout_s: float = 10.0, start_s: float = 0.0, duration_s: float = 0.0,
                 semantic: bool = True, allow_version_mismatch: bool = False, load_timeout_s: float = 60.0,
                 sensor_timeout_s: Optional[float] = None, client_factory: Optional[Callable] = None,
                 exposure: Optional[ExposureSpec] = None) -> None:
        self.exposure = exposure if exposure is not None else ExposureSpec()
        if camera is None:
            from carla_agent.sim.scenario import CameraSpec

            camera = CameraSpec()
        if not 0 < dt_s <= 0.1:
            raise BackendError(f"replay dt_s must be in (0, 0.1], got {dt_s}")
        self.recorder_file = recorder_file
        self.camera, self.dt_s = camera, float(dt_s)
        self.start_s, self.duration_s = float(start_s), float(duration_s)
        self.semantic = semantic
        self.host, self.port = host, int(port)
        self.timeout_s, self.load_timeout_s = float(timeout_s), float(load_timeout_s)
        self.sensor_timeout_s = float(sensor_timeout_s) if sensor_timeout_s is not None else self.timeout_s
        self._connect = (host, self.port, self.timeout_s, client_factory, allow_version_mismatch)
        self._session: Optional[Session] = None
        self._watchdog = Watchdog(f"{host}:{self.port}")
        self.hero = None
        self.recording_duration_s: Optional[float] = None

    def __enter__(self) -> "CarlaReplay":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        client, _, _ = connect(*self._connect)
        s = self._session = Session(client)
        try:
            s.capture(client.get_world(), f"at {self.host}:{self.port}")
            info = client.show_recorder_file_info(self.recorder_file, False)
            if "not found" in info.lower() or "error" in info.lower()[:200]:
                raise BackendError(f"the server at {self.host}:{self.port} cannot read recording "
                                   f"{self.recorder_file!r}: {info.strip().splitlines()[0] if info.strip() else ''}; "
                                   "plain names are looked up in the server's CarlaUE4/Saved folder")
            m = re.search(r"Duration:\s*([0-9.]+)", info)
            self.recording_duration_s = float(m.group(1)) if m else None
            m = re.search(r"Map:\s*(\S+)", info)
            new_map = m is not None and map_key(m.group(1)) != map_key(s.world.get_map().name)
            client.set_timeout(self.load_timeout_s)
            try:
                s.replaying = True
                # Bounded like a tick: a server (or client library) that never answers ends the replay.
                self._watchdog.call(client.replay_file, self.load_timeout_s + 1.0, "client.replay_file()",
                                    self.recorder_file, self.start_s, self.duration_s, 0, False)
            finally:
                client.set_timeout(self.timeout_s)
            world = self._new_world(client, s.world) if new_map else client.get_world()
            s.apply_sync(world, self.dt_s)
            self.hero = None
            for _ in range(10):
                self._tick(world)
                self.hero = find_hero(world)
                if self.hero is not None:
                    break
            if self.hero is None:
                raise BackendError(f"recording {self.recorder_file!r} has no vehicle with role_name 'hero'; "
                                   "was it recorded by carla_agent?")
            s.spawn_camera("rgb camera", "sensor.camera.rgb", self.camera, self.hero,
                           exposure_attributes(self.exposure))
            if self.semantic:
                s.spawn_camera("semantic camera", "sensor.camera.semantic_segmentation", self.camera, self.hero)
        except BaseException:
            self.close()
            raise

    def _new_world(self, client, old):
        """The ``World`` of the episode the server starts once the recording's map is loaded."""
        deadline = time.monotonic() + self.load_timeout_s
        while time.monotonic() < deadline:
            world = client.get_world()
            if world.id != old.id:
                return world
            time.sleep(0.1)  # CARLA loads in the background; nothing to wait on but the episode id
        raise BackendError(f"the server at {self.host}:{self.port} did not load the map of recording "
                           f"{self.recorder_file!r} within {self.load_timeout_s:g} s; raise --load-timeout")

    def _tick(self, world) -> int:
        return int(self._watchdog.call(world.tick, self.timeout_s + 1.0, "world.tick()", self.timeout_s))

    def frame_count(self) -> int:
        """Ticks to replay: the duration asked for, else what is left of the recording."""
        total = self.duration_s or ((self.recording_duration_s or 0.0) - self.start_s)
        return max(0, int(round(total / self.dt_s)))

    def frames(self, max_frames: Optional[int] = None) -> Iterator[ReplayFrame]:
        if self._session is None:
            raise BackendError("call start() (or use CarlaReplay as a context manager) before frames()")
        s = self._session
        n = self.frame_count() if max_frames is None else int(max_frames)
        for i in range(n):
            frame = self._tick(s.world)
            image = bgra_to_rgb(s.queues["rgb camera"].get(frame, self.sensor_timeout_s))
            semantic = None
            if "semantic camera" in s.queues:
                semantic = semantic_labels(s.queues["semantic camera"].get(frame, self.sensor_timeout_s))
            tf = self.hero.get_transform()
            pose = Pose(tf.location.x, tf.location.y, tf.location.z, tf.rotation.yaw, tf.rotation.pitch,
                        tf.rotation.roll)
            yield ReplayFrame(i, frame, self.start_s + i * self.dt_s, image, semantic, pose)

    def close(self) -> None:
        """Stop the replayer, destroy the cameras and restore the settings (idempotent)."""
        session, self._session = self._session, None
        if session is not None:
            session.quiet = self._watchdog.hung is not None
            session.restore(budget_s=2 * self.timeout_s + 3.0)
        self._watchdog.close()


def find_hero(world):
    """The vehicle whose ``role_name`` attribute is ``hero``, or None."""
    for actor in world.get_actors().filter("vehicle.*"):
        if actor.attributes.get("role_name") == "hero":
            return actor
    return None


def replay(recorder_file: str, scenario=None, **options) -> CarlaReplay:
    """A :class:`CarlaReplay` of ``recorder_file`` with ``scenario``'s camera, time step and exposure.

    ``with replay("run.log", scenario, host=..., port=...) as r: for f in r.frames(): ...``
    """
    if scenario is not None:
        options.setdefault("camera", scenario.camera)
        options.setdefault("dt_s", scenario.dt_s)
        options.setdefault("exposure", carla_spec(scenario).exposure)
    return CarlaReplay(recorder_file, **options)
