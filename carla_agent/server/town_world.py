"""Serving a town: its spawn points, the map a new episode loads (``load_world``, ``reload_world``,
``generate_opendrive_world``), ``get_available_maps``, and an ego driven anywhere.

In a town the embedded simulator tracks the ego on a corridor of lanes
(:mod:`carla_agent.sim.embedded.town_route`). A client of the served world
drives wherever it likes (the Traffic Manager picks its own way out of a
junction, ``synchronous_mode.py`` teleports along ``waypoint.next()``), so
whenever the ego is spawned or teleported off its corridor, leaves it, or
nears its end, a new corridor is laid from where the ego is. The client's
own map is the whole town's OpenDRIVE (``get_map_data``), so its waypoints
never run dry.
"""

from __future__ import annotations

import logging
import math
from typing import List

from carla_agent.errors import CarlaAgentError
from carla_agent.server import opendrive_world
from carla_agent.server.rpc import RpcError

log = logging.getLogger(__name__)

MAP_PREFIX = "/Game/Carla/Maps/"


def is_town(world) -> bool:
    return getattr(world.sim, "town", None) is not None


def spawn_points(world) -> List[list]:
    """Every spawn point of the town as CARLA's ``[[x, y, z], [pitch, yaw, roll]]`` (y and yaw mirrored)."""
    return [[[p.x_m, -p.y_m, 0.5], [0.0, -math.degrees(p.yaw_rad), 0.0]] for p in world.sim.town.spawn_points]


def relay(world, force: bool = False) -> bool:
    """Lay a new corridor from the ego's pose when it has left its own (or ``force``); True if laid
    (the caller then redraws the cameras and remakes the traffic actors: ``actors.corridor_changed``)."""
    sim = world.sim
    if not is_town(world) or not (force or sim.off_corridor()):
        return False
    st = sim.state
    try:
        sim.reroute(st.x_m, st.y_m, st.yaw_rad, st.speed_mps)
    except CarlaAgentError as e:  # off every lane (a teleport into a field): keep the old corridor
        log.debug("no corridor from (%.1f, %.1f): %s", st.x_m, st.y_m, e)
        return False
    return True


def _home(world):
    """The scenario the server started with (stand-in worlds of tests may have only ``scenario``)."""
    return getattr(world, "home_scenario", world.scenario)


def available_maps(world) -> List[str]:
    from carla_agent.sim.embedded.roadnet.catalog import shipped_towns

    names = set(shipped_towns().names()) | {world.scenario.name, _home(world).name}
    if opendrive_world.staged_scenario(world, opendrive_world.MAP_NAME) is not None:
        names.add(opendrive_world.MAP_NAME)
    return [MAP_PREFIX + n for n in sorted(names)]


def scenario_for_map(world, map_name):
    """The scenario ``load_new_episode(map_name)`` asks for: the one served for ``""``
    (``client.reload_world()``), the staged OpenDRIVE map for ``OpenDriveMap``
    (``generate_opendrive_world``), a shipped town, or the one served by its name (``load_world``)."""
    from carla_agent.sim.embedded.roadnet.catalog import shipped_towns
    from carla_agent.sim.embedded.town_route import served_town_scenario

    if not isinstance(map_name, str):
        raise RpcError(f"load_world: expected a map name, got {map_name!r:.80}")
    if not map_name:
        return world.scenario
    name = map_name.rsplit("/", 1)[-1]
    if name.endswith(".umap"):
        name = name[:-len(".umap")]
    staged = opendrive_world.staged_scenario(world, name)
    if staged is not None:
        return staged
    if name in shipped_towns():
        return served_town_scenario(name)
    if name == world.scenario.name:
        return world.scenario
    if name == _home(world).name:
        return _home(world)
    raise RpcError(f"load_world: unknown map {map_name!r}; available: "
                   f"{', '.join(n[len(MAP_PREFIX):] for n in available_maps(world))}")
