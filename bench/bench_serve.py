"""Ticks per second through `serve` (real carla 0.9.16 client, loopback TCP, 800x600 RGB camera)
beside the embedded backend direct, in the same run.

    python bench/bench_serve.py [--ticks 200] [--scenario gentle_curves] [--size 800x600]

Goal (issue 8): >= 50 ticks/s on the 2-core CPU and <= 1.5x the direct backend's time per tick.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def bench_direct(scenario: str, w: int, h: int, ticks: int) -> float:
    from carla_agent.control import VehicleControl
    from carla_agent.embedded.simulator import EmbeddedSimulator
    from carla_agent.scenario import load_scenario

    sc = load_scenario(scenario)
    sc = replace(sc, camera=replace(sc.camera, image_size_x=w, image_size_y=h))
    sim = EmbeddedSimulator(render=True)
    sim.reset(sc, 0)
    ctl = VehicleControl(throttle=0.5)
    for _ in range(5):
        sim.step(ctl)
    t0 = time.perf_counter()
    for _ in range(ticks):
        sim.step(ctl)
    return (time.perf_counter() - t0) / ticks


def bench_served(scenario: str, w: int, h: int, ticks: int) -> float:
    import carla

    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-u", "-m", "carla_agent.server", "--scenario", scenario,
                             "--port", "0"], cwd=str(ROOT), env=env, stdout=subprocess.PIPE, text=True)
    try:
        m = None
        deadline = time.time() + 30
        while m is None and time.time() < deadline:
            m = re.search(r"on 127\.0\.0\.1:(\d+)", proc.stdout.readline())
        if m is None:
            raise RuntimeError("server did not start")
        client = carla.Client("127.0.0.1", int(m.group(1)))
        client.set_timeout(10.0)
        world = client.get_world()
        s = world.get_settings()
        s.synchronous_mode, s.fixed_delta_seconds = True, 0.05
        world.apply_settings(s)
        lib = world.get_blueprint_library()
        ego = world.spawn_actor(lib.find("vehicle.lincoln.mkz_2020"), world.get_map().get_spawn_points()[0])
        bp = lib.find("sensor.camera.rgb")
        bp.set_attribute("image_size_x", str(w))
        bp.set_attribute("image_size_y", str(h))
        cam = world.spawn_actor(bp, carla.Transform(carla.Location(x=0.8, z=1.5), carla.Rotation(pitch=-8)),
                                attach_to=ego)
        images: "queue.Queue" = queue.Queue()
        cam.listen(images.put)
        ego.apply_control(carla.VehicleControl(throttle=0.5))

        def tick() -> None:
            frame = world.tick()
            while images.get(timeout=10.0).frame < frame:
                pass

        for _ in range(5):
            tick()
        t0 = time.perf_counter()
        for _ in range(ticks):
            tick()
        per_tick = (time.perf_counter() - t0) / ticks
        cam.stop()
        cam.destroy()
        ego.destroy()
        s.synchronous_mode = False
        world.apply_settings(s)
        return per_tick
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks", type=int, default=200)
    ap.add_argument("--scenario", default="gentle_curves")
    ap.add_argument("--size", default="800x600")
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    direct = bench_direct(a.scenario, w, h, a.ticks)
    served = bench_served(a.scenario, w, h, a.ticks)
    print(f"scenario {a.scenario}, camera {w}x{h}, {a.ticks} ticks")
    print(f"direct : {1000 * direct:7.2f} ms/tick  {1 / direct:6.1f} ticks/s")
    print(f"served : {1000 * served:7.2f} ms/tick  {1 / served:6.1f} ticks/s  ({served / direct:.2f}x direct)")
    print(f"goal   : >= 50 ticks/s: {'met' if 1 / served >= 50 else 'NOT met'}; "
          f"<= 1.5x direct: {'met' if served <= 1.5 * direct else 'NOT met'}")


if __name__ == "__main__":
    main()
