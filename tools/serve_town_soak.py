"""Long runs of CARLA's own client patterns against ``serve --town`` (numbers for docs/towns.md).

    python tools/serve_town_soak.py sync  --minutes 10    # synchronous_mode.py's teleport along waypoint.next(1.5)
    python tools/serve_town_soak.py tm    --minutes 5 -n 10   # generate_traffic.py: 10 cars on the Traffic Manager
    python tools/serve_town_soak.py agent --destinations 10 --agents DIR   # BasicAgent, 10 random spawn points

Each run starts its own server (``tests/served_world.py``), drives the real ``carla`` wheel in
synchronous mode at 0.05 s, and prints one ``RESULT`` line: wall time, frames, and what went wrong
(vehicles destroyed or stuck, destinations missed). ``--agents`` is a folder holding CARLA's
``agents`` package (PythonAPI/carla/agents), which this project does not ship.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import carla  # noqa: E402

from served_world import start_server, stop_server  # noqa: E402

DT_S = 0.05


def _sync(world, on: bool) -> None:
    s = world.get_settings()
    s.synchronous_mode, s.fixed_delta_seconds = on, (DT_S if on else None)
    world.apply_settings(s)


def run_sync(world, minutes: float) -> dict:
    """synchronous_mode.py: an ego teleported along waypoint.next(1.5), an RGB and a semantic camera
    read every tick (queues, as the example's CarlaSyncMode)."""
    import queue

    m = world.get_map()
    lib = world.get_blueprint_library()
    start = random.Random(0).choice(m.get_spawn_points())
    ego = world.spawn_actor(lib.find("vehicle.lincoln.mkz_2020"), start)
    ego.set_simulate_physics(False)
    cams, queues = [], []
    for name in ("sensor.camera.rgb", "sensor.camera.semantic_segmentation"):
        bp = lib.find(name)
        bp.set_attribute("image_size_x", "800")
        bp.set_attribute("image_size_y", "600")
        cam = world.spawn_actor(bp, carla.Transform(carla.Location(x=-5.5, z=2.8), carla.Rotation(pitch=-15)),
                                attach_to=ego)
        q: queue.Queue = queue.Queue()
        cam.listen(q.put)
        cams.append(cam)
        queues.append(q)
    wp = m.get_waypoint(start.location)
    frames, junctions, dry, late = 0, set(), 0, 0
    for _ in range(int(minutes * 60 / DT_S)):
        nxt = wp.next(1.5)
        if not nxt:
            dry += 1
            break
        wp = random.choice(nxt)
        if wp.is_junction:
            junctions.add(wp.junction_id)
        ego.set_transform(wp.transform)
        frame = world.tick()
        for q in queues:
            image = q.get(timeout=5.0)
            late += image.frame != frame
        frames += 1
    for c in cams:
        c.destroy()
    ego.destroy()
    return {"frames": frames, "simulated_s": frames * DT_S, "junctions": len(junctions), "ran_dry": dry,
            "images_off_frame": late}


def run_tm(client, world, minutes: float, n: int) -> dict:
    """generate_traffic.py: SpawnActor(...).then(SetAutopilot(FutureActor, True, port)) in one
    apply_batch_sync, then the Traffic Manager drives them."""
    tm = client.get_trafficmanager(8000 + os.getpid() % 1000)
    tm.set_synchronous_mode(True)
    tm.set_global_distance_to_leading_vehicle(2.5)
    lib = world.get_blueprint_library().filter("vehicle.*")
    points = world.get_map().get_spawn_points()
    random.Random(1).shuffle(points)
    batch = [carla.command.SpawnActor(random.Random(k).choice(lib), points[k])
             .then(carla.command.SetAutopilot(carla.command.FutureActor, True, tm.get_port())) for k in range(n)]
    responses = client.apply_batch_sync(batch, True)
    ids = [r.actor_id for r in responses if not r.error]
    errors = [r.error for r in responses if r.error]
    m = world.get_map()
    moved = {i: 0.0 for i in ids}
    last = {i: world.get_actor(i).get_location() for i in ids}
    still = {i: 0 for i in ids}
    stuck, off_road, frames = set(), 0, 0
    for _ in range(int(minutes * 60 / DT_S)):
        world.tick()
        frames += 1
        if frames % 20:
            continue
        actors = {a.id: a for a in world.get_actors(ids)}
        for i in ids:
            a = actors.get(i)
            if a is None:
                continue
            loc = a.get_location()
            step = loc.distance(last[i])
            moved[i] += step
            last[i] = loc
            still[i] = still[i] + 1 if step < 0.5 else 0
            if still[i] >= 30:  # 30 s without moving 0.5 m in a second
                stuck.add(i)
            if m.get_waypoint(loc, project_to_road=False) is None:
                off_road += 1
    alive = [a.id for a in world.get_actors(ids)]
    client.apply_batch_sync([carla.command.DestroyActor(i) for i in alive], True)
    return {"spawned": len(ids), "spawn_errors": errors, "frames": frames, "simulated_s": frames * DT_S,
            "destroyed": len(ids) - len(alive), "stuck_30s": len(stuck), "off_road_samples": off_road,
            "min_km": round(min(moved.values()) / 1000, 2), "mean_km": round(sum(moved.values()) / len(ids) / 1000, 2)}


def run_agent(world, destinations: int, agents_dir: str, seconds_each: float = 240.0) -> dict:
    """CARLA's BasicAgent from a spawn point to ``destinations`` random spawn points in a row."""
    sys.path.insert(0, agents_dir)
    from agents.navigation.basic_agent import BasicAgent  # noqa: PLC0415 - CARLA's, not shipped

    m = world.get_map()
    points = m.get_spawn_points()
    rng = random.Random(2)
    ego = world.spawn_actor(world.get_blueprint_library().find("vehicle.lincoln.mkz_2020"), rng.choice(points))
    world.tick()
    agent = BasicAgent(ego, 30)
    reached, frames, times = 0, 0, []
    for _ in range(destinations):
        goal = rng.choice(points)
        while goal.location.distance(ego.get_location()) < 50.0:
            goal = rng.choice(points)
        agent.set_destination(goal.location)
        t0 = frames
        while not agent.done() and frames - t0 < seconds_each / DT_S:
            ego.apply_control(agent.run_step())
            world.tick()
            frames += 1
        ok = agent.done() and ego.get_location().distance(goal.location) < 10.0
        reached += ok
        times.append(round((frames - t0) * DT_S, 1))
    ego.destroy()
    return {"reached": reached, "of": destinations, "frames": frames, "simulated_s": frames * DT_S,
            "seconds_each": times}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("sync", "tm", "agent"))
    ap.add_argument("--town", default="grid_small")
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("--destinations", type=int, default=2)
    ap.add_argument("--agents", default="", help="folder holding CARLA's agents package")
    ap.add_argument("--port", type=int, default=0, help="use a server already running there (its log is yours)")
    args = ap.parse_args()
    proc, port = (None, args.port) if args.port else start_server(town=args.town)
    t0 = time.time()
    try:
        client = carla.Client("127.0.0.1", port)
        client.set_timeout(30.0)
        world = client.get_world()
        _sync(world, True)
        if args.mode == "sync":
            out = run_sync(world, args.minutes)
        elif args.mode == "tm":
            out = run_tm(client, world, args.minutes, args.n)
        else:
            out = run_agent(world, args.destinations, args.agents)
        out["wall_s"] = round(time.time() - t0, 1)
        print("RESULT", args.mode, args.town, out, flush=True)
    finally:
        if proc is not None:
            stop_server(proc)
    os._exit(0)  # a client that made a Traffic Manager aborts once its server is gone


if __name__ == "__main__":
    main()
