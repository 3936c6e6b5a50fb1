"""``client.generate_opendrive_world(xodr, parameters)``: a world made from any OpenDRIVE the embedded
world can read.

As CARLA 0.9.16 does it, the wheel sends two calls: ``copy_opendrive_to_file(xodr, parameters)``,
which reads the map and stages it (CARLA writes it to ``Maps/OpenDrive/OpenDriveMap.xodr``), then
``load_new_episode("OpenDriveMap", ...)``, which loads the staged map as a new episode
(:meth:`WorldService.load_new_episode`, the same path as ``load_world`` and ``reload_world``).

The map is read by ``read_network_xodr`` (the subset in docs/towns.md "OpenDRIVE, both ways") into a
town named ``OpenDriveMap``: its spawn points are on its driving lanes, the cameras draw it, and
``get_map().to_opendrive()`` gives back the text sent. A map outside the subset is refused with
CARLA's message and the reader's one-line reason; nothing changes, the old world goes on. The
folders a server stages into are released when it closes (:func:`release_staged`).

``OpendriveGenerationParameters`` (0.9.16 wire layout, 7 fields; the struct's
``vertex_width_resolution`` and ``simplification_percentage`` are not sent): ``[vertex_distance,
max_road_length, wall_height, additional_width, smooth_junctions, enable_mesh_visibility,
enable_pedestrian_navigation]``. The mesh-building ones (the first four and ``smooth_junctions``)
shape Unreal's road mesh, which the embedded world does not
build, and ``enable_mesh_visibility`` (CARLA's invisible road mesh): they are checked and kept; the
cameras draw the roads either way. ``enable_pedestrian_navigation`` false gives no navigation mesh
(``get_required_files("Nav")`` is empty), as CARLA builds none.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from carla_agent.server import checks
from carla_agent.server.rpc import VOID, RpcError

log = logging.getLogger(__name__)

#: The map name CARLA gives a generated world (its ``OpenDriveMap.umap``).
MAP_NAME = "OpenDriveMap"
#: Where the staged maps are written: ``$CARLA_AGENT_OPENDRIVE_DIR``, else the system's temp folder.
DIR_ENV = "CARLA_AGENT_OPENDRIVE_DIR"
#: In a staged map's folder: "a server made this folder" / "process PID uses it" (``USER_MARK + PID``).
MADE_MARK, USER_MARK = ".made-by-serve", ".used-by-"
_FIELDS = ("vertex_distance", "max_road_length", "wall_height", "additional_width", "smooth_junctions",
           "enable_mesh_visibility", "enable_pedestrian_navigation")


@dataclass(frozen=True)
class OpendriveParameters:
    """CARLA's ``OpendriveGenerationParameters`` as sent (metres), with the wheel's defaults."""

    vertex_distance_m: float = 2.0
    max_road_length_m: float = 50.0
    wall_height_m: float = 1.0
    additional_width_m: float = 0.6
    smooth_junctions: bool = True
    enable_mesh_visibility: bool = True
    enable_pedestrian_navigation: bool = True


@dataclass(frozen=True)
class StagedMap:
    """A read OpenDRIVE map waiting for ``load_new_episode("OpenDriveMap")``: its served scenario."""

    scenario: Any
    parameters: OpendriveParameters
    path: Path


def parameters(p: Any) -> OpendriveParameters:
    """Check the wire's ``OpendriveGenerationParameters`` (RpcError naming the field)."""
    if not isinstance(p, (list, tuple)) or len(p) != len(_FIELDS):
        raise RpcError(f"generate_opendrive_world: parameters must be the {len(_FIELDS)} fields "
                       f"[{', '.join(_FIELDS)}], got {p!r:.120}")
    what = [f"OpendriveGenerationParameters.{f}" for f in _FIELDS]
    dist = [checks.number(p[i], what[i], 0.0, 1e5, lo_open=True, unit=" m") for i in (0, 1)]
    wall, width = (checks.number(p[i], what[i], 0.0, 1e3, unit=" m") for i in (2, 3))
    flags = [checks.flag(p[i], what[i]) for i in (4, 5, 6)]
    return OpendriveParameters(dist[0], dist[1], wall, width, *flags)


def _staging_dir() -> Path:
    return Path(os.environ.get(DIR_ENV) or Path(tempfile.gettempdir()) / "carla_agent_opendrive")


def user_mark(world) -> str:
    """The :data:`USER_MARK` file name of ``world`` (a WorldService): this process's id and the
    world's, so two servers in one process each hold their own."""
    return f"{USER_MARK}{os.getpid()}.{id(world):x}"


def _write(text: str, user: str) -> Path:
    """``DIR/<sha1>/OpenDriveMap.xodr`` (one folder per map: a town is cached by its path), written
    whole or not at all. A folder this process makes gets :data:`MADE_MARK`; every process that
    stages into it leaves its :data:`USER_MARK` (see :func:`release_staged`)."""
    folder = _staging_dir() / hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]
    path = folder / f"{MAP_NAME}.xodr"
    try:
        folder.mkdir(parents=True)
        (folder / MADE_MARK).touch()
    except FileExistsError:
        pass  # staged before (by this server or another), or made by hand: not ours to make
    (folder / user).touch()
    if not path.is_file():
        partial = folder / f".{MAP_NAME}.{os.getpid()}.part"
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    return path


def _alive(pid: str) -> bool:
    """Whether process ``pid`` (a mark's text) runs; a mark that names no process counts as live."""
    if not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def release_staged(folders, user: str) -> None:
    """At the server's close: ``user`` (its :func:`user_mark`) stops using the staged ``folders``
    (``<sha1>`` folders :func:`_write` staged into). A folder a server made (it has :data:`MADE_MARK`) is deleted once
    no live process's :data:`USER_MARK` is left in it (another server staging the same map keeps it);
    one made by hand is never deleted. Failures are logged, never raised."""
    for folder in folders:
        try:
            (folder / user).unlink(missing_ok=True)
            if not (folder / MADE_MARK).is_file():
                continue
            users = [f for f in folder.iterdir() if f.name.startswith(USER_MARK)]
            live = [f for f in users if _alive(f.name[len(USER_MARK):].split(".")[0])]
            if live:
                continue
            for f in users + [folder / f"{MAP_NAME}.xodr", folder / MADE_MARK]:
                f.unlink(missing_ok=True)
            folder.rmdir()  # fails (logged) if anything else was put there
            log.debug("staged OpenDRIVE folder %s removed", folder)
        except OSError as e:
            log.warning("could not remove the staged OpenDRIVE folder %s: %s", folder, e)


def copy_opendrive_to_file(world, opendrive, params, *a):
    """Read and stage the map (``world.staged_opendrive``); the world served does not change."""
    from carla_agent.errors import CarlaAgentError
    from carla_agent.sim.embedded.simulator import EmbeddedSimulator
    from carla_agent.sim.embedded.town_route import served_town_scenario

    if not isinstance(opendrive, str):
        raise RpcError(f"generate_opendrive_world: the OpenDRIVE is {opendrive!r:.60}; it must be a string")
    text = opendrive
    if not text.strip():
        raise RpcError("opendrive could not be correctly parsed: the OpenDRIVE string is empty")
    options = parameters(params)
    try:
        path = _write(text, user_mark(world))
        world.staged_folders.add(path.parent)  # released at close even if the map is refused below
    except OSError as e:
        raise RpcError(f"opendrive could not be copied to {_staging_dir()}: {e}; set {DIR_ENV} to a writable "
                       "folder") from None
    try:
        scenario = served_town_scenario(str(path))
        EmbeddedSimulator(render=False).reset(scenario, world.seed)  # the corridor, lights, traffic: all read
    except (CarlaAgentError, ValueError) as e:  # ScenarioError / RoutingError: the reader's one line
        reason = str(e).replace(str(path), f"{MAP_NAME}.xodr").splitlines()[0]
        log.info("generate_opendrive_world refused: %s", reason)
        raise RpcError(f"opendrive could not be correctly parsed: {reason}") from None
    world.staged_opendrive = StagedMap(scenario, options, path)
    log.info("OpenDRIVE map staged (%d roads, %d bytes)", len(_town_of(scenario).network.roads), len(text))
    return VOID


def _town_of(scenario):
    from carla_agent.sim.embedded.roadnet.town import load_town

    return load_town(scenario.town)


def staged_scenario(world, name: str) -> Optional[Any]:
    """The staged map's scenario when ``name`` is ``OpenDriveMap`` and a map was staged, else None."""
    staged = getattr(world, "staged_opendrive", None)
    return staged.scenario if name == MAP_NAME and staged is not None else None


def parameters_for(world, scenario) -> OpendriveParameters:
    """The parameters a loaded ``scenario`` goes with: the staged ones for the staged map, else CARLA's
    defaults (a town has its road mesh and its navigation)."""
    staged = getattr(world, "staged_opendrive", None)
    if staged is not None and scenario is staged.scenario:
        return staged.parameters
    return OpendriveParameters()
