"""``serve --town``: the real ``carla`` client in a served town.

CARLA's ``synchronous_mode.py`` way of driving (teleport along ``waypoint.next()``)
never runs out of road; the Traffic Manager drives the ego through junctions and
keeps it on the roads; ``load_world`` switches towns; every spawn point is offered.
"""

from __future__ import annotations

import pytest

from carla_agent.sim.embedded.roadnet.town import load_town
from served_world import served_client, set_sync

carla = pytest.importorskip("carla")


@pytest.fixture(scope="module")
def client():
    with served_client(town="grid_small") as c:
        yield c, c.port


_sync = set_sync


def test_the_town_and_its_spawn_points_are_served(client):
    c, _ = client
    m = c.get_world().get_map()
    town = load_town("grid_small")
    assert m.name == "grid_small"
    assert len(m.get_spawn_points()) == len(town.spawn_points) >= 36
    for sp in m.get_spawn_points():
        assert m.get_waypoint(sp.location).lane_type == carla.LaneType.Driving
    assert {"/Game/Carla/Maps/grid_small", "/Game/Carla/Maps/ring_multilane"} <= set(c.get_available_maps())


def test_load_world_switches_towns_and_names_the_ones_it_knows(client):
    # No Traffic Manager in this process: beside an asynchronous one, the wheel's load_world
    # segfaults (its TM thread reads the episode load_world drops; docs/towns.md).
    c, _ = client
    world = c.load_world("ring_multilane")
    assert world.get_map().name == "ring_multilane"
    assert len(world.get_map().get_spawn_points()) == len(load_town("ring_multilane").spawn_points)
    with pytest.raises(RuntimeError, match="unknown map 'Town99'; available: .*grid_small"):
        c.load_world("Town99")
    assert c.load_world("/Game/Carla/Maps/grid_small").get_map().name == "grid_small"


def test_synchronous_mode_py_never_runs_out_of_road(client):
    c, _ = client
    world = c.get_world()
    m = world.get_map()
    sp = m.get_spawn_points()[7]
    ego = world.spawn_actor(world.get_blueprint_library().find("vehicle.lincoln.mkz_2020"), sp)
    _sync(world, True)
    try:
        wp, junctions = m.get_waypoint(sp.location), set()
        for i in range(800):  # 1.2 km: several times round a block
            nxt = wp.next(1.5)
            assert nxt, f"waypoint.next ran dry after {1.5 * i:.0f} m"
            wp = nxt[0]
            if wp.is_junction:
                junctions.add(wp.junction_id)
            ego.set_transform(wp.transform)
            world.tick()
            assert ego.get_location().distance(wp.transform.location) < 0.05
        assert len(junctions) >= 3
    finally:
        _sync(world, False)
        ego.destroy()


TM_SCRIPT = """
import sys
sys.path.insert(0, "tests")
import carla
port = int(sys.argv[1])
c = carla.Client("127.0.0.1", port)
c.set_timeout(20.0)
world = c.get_world()
m = world.get_map()
tm = c.get_trafficmanager(8000 + port % 1000)
tm.set_synchronous_mode(True)
s = world.get_settings()
s.synchronous_mode, s.fixed_delta_seconds = True, 0.05
world.apply_settings(s)
ego = world.spawn_actor(world.get_blueprint_library().find("vehicle.lincoln.mkz_2020"), m.get_spawn_points()[3])
world.tick()
ego.set_autopilot(True, tm.get_port())
junctions, start, off = set(), ego.get_location(), 0
for _ in range(700):  # 35 s
    world.tick()
    wp = m.get_waypoint(ego.get_location(), project_to_road=False)
    if wp is None:
        off += 1
    elif wp.is_junction:
        junctions.add(wp.junction_id)
print("RESULT", off, len(junctions), ego.get_location().distance(start), ego.is_alive, flush=True)
import os
os._exit(0)  # the TM's client thread would abort the process once the server is gone
"""


def test_the_traffic_manager_drives_the_ego_through_junctions_on_the_roads():
    # In a child process with its own server, as tests/test_serve.py's TM test: a client that made a
    # Traffic Manager aborts ("terminate called ...") some 20 s after its server is gone.
    from served_world import run_client_script

    out = run_client_script(TM_SCRIPT, town="grid_small", timeout_s=60.0, tries=5)  # see test_serve_traffic
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")]
    assert line, out.stdout[-2000:] + out.stderr[-2000:]
    _, off, junctions, distance, alive = line[0].split()
    assert int(off) == 0, "the ego left the roads"
    assert int(junctions) >= 1 and float(distance) > 50.0 and alive == "True"




def test_the_first_state_of_a_loaded_world_says_the_map_changed():
    """CARLA's MapChange bit (episode header ``simulation_state``): the wheel re-reads the map it
    cached only when a state carries it, so without it a client that read the old map may get it
    again from ``load_world(...).get_map()`` (seen beside a Traffic Manager)."""
    from carla_agent.server.publish import MAP_CHANGE
    from carla_agent.server.world_service import WorldService
    from carla_agent.sim.embedded.town_route import served_town_scenario
    from served_world import episode_flags

    world = WorldService(served_town_scenario("grid_small"))
    flags = episode_flags(world)

    assert flags() == {0}
    world.load_new_episode("ring_multilane")
    assert flags() == {MAP_CHANGE} and flags() == {0}
