"""Many vehicles in ``serve --town``, through the real ``carla`` wheel: batch commands with CARLA's
per-command answers, the Traffic Manager driving 10 cars, vehicle-vehicle collisions, a crashed
client's leftovers, and ``load_world`` after a (synchronous) Traffic Manager.

The long runs (10 TM cars for 5 minutes, ...) are ``tools/serve_town_soak.py``; numbers in docs/towns.md.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from served_world import run_client_script, served_client, set_sync

carla = pytest.importorskip("carla")


@pytest.fixture(scope="module")
def client():
    with served_client(town="grid_small") as c:
        yield c


_sync = set_sync


def test_batch_commands_answer_each_for_itself(client):
    world = client.get_world()
    points = world.get_map().get_spawn_points()
    bp = world.get_blueprint_library().find("vehicle.tesla.model3")
    C = carla.command
    spawned = client.apply_batch_sync([C.SpawnActor(bp, points[k]) for k in range(10)], False)
    assert [r.error for r in spawned] == [""] * 10
    ids = [r.actor_id for r in spawned]
    assert len(set(ids)) == 10 and len(world.get_actors(ids)) == 10
    # one on top of another is refused, as CARLA does
    taken = client.apply_batch_sync([C.SpawnActor(bp, points[0])])[0]
    assert taken.error == "Spawn failed because of collision at spawn position"
    _sync(world, True)
    try:
        a, b, c, d = ids[:4]
        moved = carla.Transform(carla.Location(x=points[1].location.x, y=points[1].location.y, z=0.3),
                                points[1].rotation)
        answers = client.apply_batch_sync([
            C.ApplyVehicleControl(a, carla.VehicleControl(throttle=1.0)),
            C.ApplyTargetVelocity(b, carla.Vector3D(3.0, 4.0, 0.0)),
            C.SetSimulatePhysics(c, False),
            C.ApplyTargetVelocity(c, carla.Vector3D(9.0, 0.0, 0.0)),
            C.SetVehicleLightState(d, carla.VehicleLightState.HighBeam),
            C.ApplyVehicleControl(999_999, carla.VehicleControl()),
            C.DestroyActor(999_999),
            C.ApplyWalkerControl(a, carla.WalkerControl()),
        ], True)
        errors = [r.error for r in answers]
        assert errors[:5] == [""] * 5
        assert errors[5] == ("Responding error from function apply_control_to_vehicle: Actor could not be found "
                             "in the registry.  Actor Id: 999999")
        assert errors[6] == "unable to destroy actor: not found"
        assert errors[7] == ("Responding error from function apply_control_to_walker: Actor is not a walker.  "
                             f"Actor Id: {a}")
        for _ in range(20):
            world.tick()
        start = {i: p for i, p in zip(ids, points)}
        va, vb = world.get_actor(a), world.get_actor(b)
        assert va.get_location().distance_2d(start[a].location) > 1.0, "full throttle for 1 s: about 1.9 m"
        assert va.get_control().throttle == pytest.approx(1.0), "the control of every vehicle is reported"
        assert vb.get_velocity().length() > 1.0, "a target velocity of 5 m/s"
        assert world.get_actor(c).get_location().distance_2d(start[c].location) < 0.1, "physics off: it stays"
        assert world.get_actor(ids[4]).get_location().distance_2d(start[ids[4]].location) < 0.1, "no control: it stays"
        assert client.apply_batch_sync([C.ApplyTransform(d, moved)], True)[0].error == ""
        assert world.get_actor(d).get_location().distance_2d(moved.location) < 0.1
        assert world.get_actor(d).get_light_state() == carla.VehicleLightState.HighBeam
    finally:
        _sync(world, False)
        gone = client.apply_batch_sync([C.DestroyActor(i) for i in ids], True)
    world.wait_for_tick(5.0)
    assert [r.error for r in gone] == [""] * 10
    assert not set(ids) & {a.id for a in world.get_actors()}


def test_two_vehicles_that_meet_are_a_collision_for_both(client):
    world = client.get_world()
    sp = world.get_map().get_spawn_points()[5]
    lib = world.get_blueprint_library()
    behind = carla.Transform(sp.location - 12.0 * sp.get_forward_vector(), sp.rotation)
    front = world.spawn_actor(lib.find("vehicle.audi.a2"), sp)
    back = world.spawn_actor(lib.find("vehicle.toyota.prius"), behind)
    events = {front.id: [], back.id: []}
    sensors = []
    for car in (front, back):
        s = world.spawn_actor(lib.find("sensor.other.collision"), carla.Transform(), attach_to=car)
        s.listen(lambda e, i=car.id: events[i].append(e.other_actor.id))
        sensors.append(s)
    _sync(world, True)
    try:
        back.apply_control(carla.VehicleControl(throttle=1.0))
        for _ in range(60):
            world.tick()
        world.tick()
        assert events[back.id][:1] == [front.id] and events[front.id][:1] == [back.id]
        assert back.get_location().distance(front.get_location()) < 6.0
    finally:
        _sync(world, False)
        for a in sensors + [front, back]:
            a.destroy()


def _fresh_state(world) -> None:
    """Wait for an episode state sent after the calls made so far. ``world.get_actors()`` lists the
    actors of the last episode state the client received (as in CARLA): an actor spawned or destroyed
    since shows up at the next tick. Two ticks: the first to arrive may have been sent before the call."""
    world.wait_for_tick(5.0)
    world.wait_for_tick(5.0)


def test_a_crashed_clients_vehicles_are_destroyable_and_a_second_ego_spawns(client):
    code = ("import carla, os, sys\n"
            "c = carla.Client('127.0.0.1', int(sys.argv[1])); c.set_timeout(20.0); w = c.get_world()\n"
            "ego = w.spawn_actor(w.get_blueprint_library().find('vehicle.lincoln.mkz_2020'), "
            "w.get_map().get_spawn_points()[2])\n"
            "print(ego.id, flush=True); os._exit(1)\n")
    port = client.port
    out = subprocess.run([sys.executable, "-c", code, str(port)], capture_output=True, text=True, timeout=120)
    left = int(out.stdout.split()[0])
    world = client.get_world()
    lib = world.get_blueprint_library()
    ego = world.spawn_actor(lib.find("vehicle.lincoln.mkz_2020"), world.get_map().get_spawn_points()[9])
    cam = world.spawn_actor(lib.find("sensor.camera.rgb"), carla.Transform(carla.Location(x=0.8, z=1.5)),
                            attach_to=ego)
    try:
        _fresh_state(world)
        assert ego.id != left and left in {a.id for a in world.get_actors()}
        assert client.apply_batch_sync([carla.command.DestroyActor(left)])[0].error == ""
        _fresh_state(world)
        assert left not in {a.id for a in world.get_actors()}
    finally:
        cam.destroy()
        ego.destroy()


TM_SCRIPT = """
import sys, os
sys.path.insert(0, "tests")
import carla
port = int(sys.argv[1])
c = carla.Client("127.0.0.1", port); c.set_timeout(20.0)
world = c.get_world()
tm = c.get_trafficmanager(8000 + port % 1000)
tm.set_synchronous_mode(True)
s = world.get_settings(); s.synchronous_mode, s.fixed_delta_seconds = True, 0.05; world.apply_settings(s)
bps = world.get_blueprint_library().filter("vehicle.*")
points = world.get_map().get_spawn_points()
C = carla.command
batch = [C.SpawnActor(bps[k % len(bps)], points[3 * k]).then(C.SetAutopilot(C.FutureActor, True, tm.get_port()))
         for k in range(10)]
ids = [r.actor_id for r in c.apply_batch_sync(batch, True) if not r.error]
start = {a.id: a.get_location() for a in world.get_actors(ids)}
m = world.get_map()
off = 0
for k in range(400):  # 20 s
    world.tick()
    if k % 40 == 39:
        off += sum(m.get_waypoint(a.get_location(), project_to_road=False) is None for a in world.get_actors(ids))
alive = world.get_actors(ids)
moved = min(a.get_location().distance_2d(start[a.id]) for a in alive)
print("RESULT", len(ids), len(alive), off, round(moved, 1), flush=True)
os._exit(0)
"""


def test_the_traffic_manager_drives_ten_cars_spawned_in_one_batch():
    # A try takes about 4 s; one in 3 to 10 hangs in the wheel's lost wake-up (docs/serve.md "Known
    # issue"), so tries are short and several. load_world with the TM holding cars, which this
    # script used to call too, is tests/test_serve_load_world_tm.py's (it tolerates the wheel's
    # SIGSEGV there and checks every clean try).
    out = run_client_script(TM_SCRIPT, town="grid_small", timeout_s=45.0, tries=5)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")]
    assert line, out.stdout[-2000:] + out.stderr[-2000:]
    _, spawned, alive, off, moved = line[0].split()
    assert spawned == "10" and alive == "10", "every car spawned and none destroyed"
    assert off == "0", "a car left the roads"
    assert float(moved) > 30.0, "every car drove"
