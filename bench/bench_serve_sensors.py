"""Cost per tick of each served sensor (carla_agent/server/sensors/) at CARLA's default attributes.

    python bench/bench_serve_sensors.py [--ticks 40] [--scenario lead_vehicle] [--lidar-pps 56000]

In one process, without sockets: a ``WorldService`` with the ego spawned at the scenario's start
and driving; for each sensor type, one sensor on the ego (lidar at z = 2.4 with range 50 m as well
as CARLA's default 10 m; cameras 800x600) is measured every tick (``Sensor.measure``: the ray casts
and the message body; not the send). Prints milliseconds per tick (median and best over ``--ticks``)
and the message size. The machine is shared: take the best as the cost, the median as the typical.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = [
    ("sensor.lidar.ray_cast", "default (range 10 m)", {}, ((0.0, 0.0, 2.4), (0.0, 0.0, 0.0))),
    ("sensor.lidar.ray_cast", "range 50 m", {"range": "50"}, ((0.0, 0.0, 2.4), (0.0, 0.0, 0.0))),
    ("sensor.lidar.ray_cast_semantic", "range 50 m", {"range": "50"}, ((0.0, 0.0, 2.4), (0.0, 0.0, 0.0))),
    ("sensor.other.radar", "default", {}, ((2.5, 0.0, 1.0), (0.0, 0.0, 0.0))),
    ("sensor.camera.depth", "800x600", {}, ((0.8, 0.0, 1.5), (-8.0, 0.0, 0.0))),
    ("sensor.camera.instance_segmentation", "800x600", {}, ((0.8, 0.0, 1.5), (-8.0, 0.0, 0.0))),
    ("sensor.other.gnss", "default", {}, ((0.0, 0.0, 1.0), (0.0, 0.0, 0.0))),
    ("sensor.other.imu", "default", {}, ((0.0, 0.0, 1.0), (0.0, 0.0, 0.0))),
    ("sensor.other.obstacle", "distance 50 m", {"distance": "50"}, ((2.5, 0.0, 0.7), (0.0, 0.0, 0.0))),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=40)
    ap.add_argument("--scenario", default="lead_vehicle")
    ap.add_argument("--lidar-pps", type=int, default=56000, help="points_per_second of the lidar cases")
    args = ap.parse_args()

    from carla_agent.control import VehicleControl
    from carla_agent.server import actors
    from carla_agent.server.publish import sensor_view
    from carla_agent.server.world_service import WorldService
    from carla_agent.sim.scenario import load_scenario

    world = WorldService(load_scenario(args.scenario))
    world.streams = type("NoStreams", (), {"register": lambda self, i: None, "unregister": lambda self, i: None,
                                           "token": lambda self, i, host=None: b"\0" * 24})()
    world.local_host = lambda cid: None
    print(f"{'sensor':40s} {'settings':22s} {'median ms':>9s} {'best ms':>8s} {'bytes':>9s}")
    for type_id, label, attrs, mount in CASES:
        with world.lock:
            for a in list(world.actors):
                actors.destroy_actor(world, a)
            ego = actors.spawn_actor(world, [1, "vehicle.lincoln.mkz_2020", []], [[0, 0, 0], [0, 0, 0]])
            world.ego_id = ego[0]
            if "lidar" in type_id:
                attrs = {"points_per_second": str(args.lidar_pps), **attrs}
            wire = actors.spawn_actor_with_parent(world, [2, type_id, [[k, 3, v] for k, v in attrs.items()]],
                                                  [list(mount[0]), list(mount[1])], ego[0])
            sensor = world.actors[wire[0]]
        dt = world.sim.scenario.dt_s
        times, size = [], 0
        for _ in range(args.ticks):
            world.sim.step(VehicleControl(throttle=0.4))
            world.elapsed_s += dt
            view = sensor_view(world, sensor)
            t0 = time.perf_counter()
            body = sensor.sensor.measure(world, sensor, view, dt)
            times.append(time.perf_counter() - t0)
            size = sum(len(bytes(p)) for p in body) if body else 0
        print(f"{type_id:40s} {label:22s} {1e3 * statistics.median(times):9.2f} {1e3 * min(times):8.2f} {size:9d}")


if __name__ == "__main__":
    main()
