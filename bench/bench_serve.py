"""Ticks per second through `serve` (real carla 0.9.16 client, loopback TCP, 800x600 RGB camera)
beside the embedded backend direct, in the same run.

    python bench/bench_serve.py [--ticks 100] [--rounds 5] [--scenario gentle_curves] [--size 800x600]

Direct and served blocks of ``--ticks`` ticks alternate ``--rounds`` times (one server process,
one direct simulator), so both see the same machine load; the table gives the best block (the
least disturbed by other work on a shared machine) and the median, in milliseconds per tick.
It also gives the CPU time per tick (median over blocks): of this process for the direct
backend; of the server process and of the client (this process) for the served one. CPU time is
far less disturbed by other load than wall-clock time.

Goal (issue 8): >= 50 ticks/s on the 2-core CPU and <= 1.5x the direct backend's time per tick.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class Direct:
    """The embedded backend, rendering the camera at the benchmark's size."""

    def __init__(self, scenario: str, w: int, h: int) -> None:
        from carla_agent.control import VehicleControl
        from carla_agent.sim.embedded.simulator import EmbeddedSimulator
        from carla_agent.sim.scenario import load_scenario

        sc = load_scenario(scenario)
        self.scenario = replace(sc, camera=replace(sc.camera, image_size_x=w, image_size_y=h))
        self.sim = EmbeddedSimulator(render=True)
        self.control = VehicleControl(throttle=0.5)

    def block(self, ticks: int) -> dict:
        """Wall and CPU seconds per tick over ``ticks`` ticks of a fresh episode (5 warm-up ticks first)."""
        self.sim.reset(self.scenario, 0)
        for _ in range(5):
            self.sim.step(self.control)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(ticks):
            self.sim.step(self.control)
        return {"wall": (time.perf_counter() - t0) / ticks, "cpu": (time.process_time() - c0) / ticks}


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Served:
    """A `serve` subprocess and a synchronous-mode carla client with an RGB camera."""

    def __init__(self, scenario: str, w: int, h: int) -> None:
        import carla

        self.carla = carla
        self.w, self.h = w, h
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen([sys.executable, "-u", "-m", "carla_agent.server", "--scenario", scenario,
                                      "--port", "0"], cwd=str(ROOT), env=env, stdout=subprocess.PIPE, text=True)
        m = None
        deadline = time.time() + 30
        while m is None and time.time() < deadline:
            m = re.search(r"on 127\.0\.0\.1:(\d+)", self.proc.stdout.readline())
        if m is None:
            self.close()
            raise RuntimeError("server did not start")
        self.client = carla.Client("127.0.0.1", int(m.group(1)))
        self.client.set_timeout(10.0)
        self.world = self.client.get_world()
        s = self.world.get_settings()
        s.synchronous_mode, s.fixed_delta_seconds = True, 0.05
        self.world.apply_settings(s)

    def block(self, ticks: int) -> dict:
        """Wall seconds per tick (tick + the camera frame of that tick received), and the server's and
        the client's CPU seconds per tick, over ``ticks`` ticks."""
        carla, world = self.carla, self.world
        lib = world.get_blueprint_library()
        ego = world.spawn_actor(lib.find("vehicle.lincoln.mkz_2020"), world.get_map().get_spawn_points()[0])
        bp = lib.find("sensor.camera.rgb")
        bp.set_attribute("image_size_x", str(self.w))
        bp.set_attribute("image_size_y", str(self.h))
        cam = world.spawn_actor(bp, carla.Transform(carla.Location(x=0.8, z=1.5), carla.Rotation(pitch=-8)),
                                attach_to=ego)
        images: "queue.Queue" = queue.Queue()
        cam.listen(images.put)
        ego.apply_control(carla.VehicleControl(throttle=0.5))

        def tick() -> None:
            frame = world.tick()
            while images.get(timeout=10.0).frame < frame:
                pass

        try:
            for _ in range(5):
                tick()
            t0, c0, s0 = time.perf_counter(), time.process_time(), process_cpu_s(self.proc.pid)
            for _ in range(ticks):
                tick()
            return {"wall": (time.perf_counter() - t0) / ticks, "client_cpu": (time.process_time() - c0) / ticks,
                    "server_cpu": (process_cpu_s(self.proc.pid) - s0) / ticks}
        finally:
            cam.stop()
            cam.destroy()
            ego.destroy()

    def close(self) -> None:
        try:
            if hasattr(self, "world"):
                s = self.world.get_settings()
                s.synchronous_mode = False
                self.world.apply_settings(s)
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks", type=int, default=100, help="ticks per block")
    ap.add_argument("--rounds", type=int, default=5, help="direct/served block pairs, interleaved")
    ap.add_argument("--scenario", default="gentle_curves")
    ap.add_argument("--size", default="800x600")
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    direct, served = Direct(a.scenario, w, h), Served(a.scenario, w, h)
    blocks = {"direct": [], "served": []}
    try:
        for _ in range(a.rounds):
            blocks["direct"].append(direct.block(a.ticks))
            blocks["served"].append(served.block(a.ticks))
    finally:
        served.close()
    best = {k: min(b["wall"] for b in v) for k, v in blocks.items()}
    med = {k: statistics.median(b["wall"] for b in v) for k, v in blocks.items()}

    def cpu(kind: str, key: str) -> float:
        return 1000 * statistics.median(b[key] for b in blocks[kind])

    print(f"scenario {a.scenario}, camera {w}x{h}, {a.rounds} interleaved rounds of {a.ticks} ticks")
    print("          best ms/tick  ticks/s   median ms/tick   CPU ms/tick (median)")
    print(f"direct    {1000 * best['direct']:12.2f}  {1 / best['direct']:7.1f}   {1000 * med['direct']:14.2f}"
          f"   {cpu('direct', 'cpu'):.2f}")
    print(f"served    {1000 * best['served']:12.2f}  {1 / best['served']:7.1f}   {1000 * med['served']:14.2f}"
          f"   {cpu('served', 'server_cpu') + cpu('served', 'client_cpu'):.2f}"
          f" = server {cpu('served', 'server_cpu'):.2f} + client {cpu('served', 'client_cpu'):.2f}")
    ratio_best, ratio_med = best["served"] / best["direct"], med["served"] / med["direct"]
    print(f"served / direct: {ratio_best:.2f}x (best), {ratio_med:.2f}x (median)")
    print(f"goal: >= 50 ticks/s: {'met' if 1 / best['served'] >= 50 else 'NOT met'}; "
          f"<= 1.5x direct: {'met' if ratio_best <= 1.5 else 'NOT met'} (best blocks)")


if __name__ == "__main__":
    main()
