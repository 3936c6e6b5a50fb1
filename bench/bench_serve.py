"""Where a served tick's time goes (real carla 0.9.16 client, loopback TCP, one RGB camera), and
ticks per second through `serve` beside the embedded backend direct.

    python bench/bench_serve.py [--ticks 100] [--rounds 5] [--scenario gentle_curves] [--sizes 800x600,200x66]
    python bench/bench_serve.py --compare [--size 800x600]     # the served / direct ratio (issue 8)

Split (default): per camera size, ``--rounds`` blocks of ``--ticks`` synchronous ticks, each
``world.tick()`` followed by waiting for that frame's image in the client. Per tick, median over
blocks, milliseconds of CPU: the server's phases as ``serve`` times them itself
(:mod:`carla_agent.server.tick_profile`, read through its ``carla_agent_tick_profile`` call):
simulate, render, encode (RGB to BGRA + header), send (into the sockets), episode state; the
server's other CPU (RPC, stream threads: its whole CPU, all threads, less the phases); and the client's
receive (the wheel's copy of the frame into its ``Image`` and the callback: the client's CPU per tick
less that of a block in which the camera does not listen). **serve's own share** = everything but
simulate, render and the client's receive: encode + send + episode + other. Goal (issue 15): <= 0.5 ms
per tick at 800x600.

Compare (``--compare``): direct and served blocks alternate (one server process, one direct
simulator), so both see the same machine load; best and median ms per tick. Goal (issue 8):
>= 50 ticks/s on the 2-core CPU.
"""

from __future__ import annotations

import argparse
import socket
import os
import queue
import re
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
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
        self.port = int(m.group(1))
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()  # keep its pipe drained
        self.client = carla.Client("127.0.0.1", self.port)
        self.client.set_timeout(10.0)
        self.world = self.client.get_world()
        s = self.world.get_settings()
        s.synchronous_mode, s.fixed_delta_seconds = True, 0.05
        self.world.apply_settings(s)

    def profile(self) -> dict:
        """``{phase: [count, wall s, cpu s]}`` since the last call (serve's ``carla_agent_tick_profile``)."""
        import msgpack

        with socket.create_connection(("127.0.0.1", self.port), timeout=10.0) as sock:
            sock.sendall(msgpack.packb([0, 1, "carla_agent_tick_profile", [[False]]]))
            unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
            while True:
                unpacker.feed(sock.recv(1 << 16))
                for reply in unpacker:
                    return reply[3][0][1]

    @contextmanager
    def _camera_car(self, listen: bool = True):
        """An ego at the first spawn point with a ``w`` x ``h`` camera, at half throttle, 5 ticks in;
        yields ``tick()``: one tick and, when listening, the camera frame of that tick received."""
        carla, world = self.carla, self.world
        lib = world.get_blueprint_library()
        ego = world.spawn_actor(lib.find("vehicle.lincoln.mkz_2020"), world.get_map().get_spawn_points()[0])
        bp = lib.find("sensor.camera.rgb")
        bp.set_attribute("image_size_x", str(self.w))
        bp.set_attribute("image_size_y", str(self.h))
        cam = world.spawn_actor(bp, carla.Transform(carla.Location(x=0.8, z=1.5), carla.Rotation(pitch=-8)),
                                attach_to=ego)
        images: "queue.Queue" = queue.Queue()
        if listen:
            cam.listen(images.put)
        ego.apply_control(carla.VehicleControl(throttle=0.5))

        def tick() -> None:
            frame = world.tick()
            while listen and images.get(timeout=10.0).frame < frame:
                pass

        try:
            for _ in range(5):
                tick()
            yield tick
        finally:
            if listen:
                cam.stop()
            cam.destroy()
            ego.destroy()

    def split_block(self, ticks: int, listen: bool = True) -> dict:
        """Per tick, over ``ticks`` ticks: the server's phases' CPU seconds (``profile``), the server's
        and the client's whole CPU seconds and the wall seconds; ``listen=False``: the camera exists
        but does not listen (nothing is rendered or sent), the baseline of the client's receive."""
        with self._camera_car(listen) as tick:
            s0 = self.profile()["process"][2]
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(ticks):
                tick()
            out = {"wall": (time.perf_counter() - t0) / ticks, "client_cpu": (time.process_time() - c0) / ticks}
            prof = self.profile()
            out["server_cpu"] = (prof.pop("process")[2] - s0) / ticks
            out.update({k: v[2] / ticks for k, v in prof.items()})
            return out

    def block(self, ticks: int) -> dict:
        """Wall seconds per tick (tick + the camera frame of that tick received), and the server's and
        the client's CPU seconds per tick, over ``ticks`` ticks."""
        with self._camera_car() as tick:
            t0, c0, s0 = time.perf_counter(), time.process_time(), process_cpu_s(self.proc.pid)
            for _ in range(ticks):
                tick()
            return {"wall": (time.perf_counter() - t0) / ticks, "client_cpu": (time.process_time() - c0) / ticks,
                    "server_cpu": (process_cpu_s(self.proc.pid) - s0) / ticks}

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


def compare(a) -> None:
    """The served / direct ratio at ``a.size``, blocks interleaved."""
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


def loopback_floor_ms(nbytes: int, count: int = 200) -> float:
    """CPU ms of this process per ``sendall`` of ``nbytes`` over loopback TCP to a reader in another
    process (the kernel's share of handing a frame to a client: the floor of ``send``)."""
    reader = subprocess.Popen([sys.executable, "-c", (
        "import socket,sys\n"
        "s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(1); print(s.getsockname()[1], flush=True)\n"
        "c,_=s.accept(); b=bytearray(1<<20)\n"
        "while c.recv_into(b): pass\n")], stdout=subprocess.PIPE, text=True)
    try:
        port = int(reader.stdout.readline())
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        frame = bytes(nbytes)
        for _ in range(10):
            sock.sendall(frame)
        c0 = time.process_time()
        for _ in range(count):
            sock.sendall(frame)
        cpu = (time.process_time() - c0) / count
        sock.close()
        return 1000 * cpu
    finally:
        reader.kill()


def split(a) -> None:
    """The per-tick split at each of ``a.sizes``."""
    rows = []
    for size in a.sizes.split(","):
        w, h = (int(v) for v in size.split("x"))
        served = Served(a.scenario, w, h)
        try:
            quiet = [served.split_block(a.ticks, listen=False) for _ in range(a.rounds)]
            loud = [served.split_block(a.ticks) for _ in range(a.rounds)]
        finally:
            served.close()

        def ms(blocks, key):
            return 1000 * statistics.median(b.get(key, 0.0) for b in blocks)

        phases = {k: ms(loud, k) for k in ("simulate", "render", "encode", "send", "episode", "tick")}
        other = ms(loud, "server_cpu") - phases["tick"]
        receive = ms(loud, "client_cpu") - ms(quiet, "client_cpu")
        own = phases["encode"] + phases["send"] + phases["episode"] + other
        rows.append((size, phases, other, receive, own, ms(loud, "wall")))
    print(f"scenario {a.scenario}, {a.rounds} blocks of {a.ticks} ticks per size; ms of CPU per tick (median)")
    print("size     simulate  render  encode   send  episode  server other  client receive  serve's own  wall")
    for size, p, other, receive, own, wall in rows:
        print(f"{size:8} {p['simulate']:8.2f} {p['render']:7.2f} {p['encode']:7.2f} {p['send']:6.2f} "
              f"{p['episode']:8.2f} {other:13.2f} {receive:15.2f} {own:12.2f} {wall:5.2f}")
    for size, *_ in rows:
        w, h = (int(v) for v in size.split("x"))
        print(f"floor of send at {size}: a bare sendall of {w * h * 4} bytes over loopback TCP to another process "
              f"costs {loopback_floor_ms(w * h * 4):.2f} ms of CPU")
    own800 = [r[4] for r in rows if r[0] == "800x600"]
    if own800:
        print(f"goal: serve's own share <= 0.5 ms per tick at 800x600: {'met' if own800[0] <= 0.5 else 'NOT met'}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks", type=int, default=100, help="ticks per block")
    ap.add_argument("--rounds", type=int, default=5, help="blocks (per size; with --compare: direct/served pairs)")
    ap.add_argument("--scenario", default="gentle_curves")
    ap.add_argument("--sizes", default="800x600,200x66", help="camera sizes of the split")
    ap.add_argument("--compare", action="store_true", help="served / direct ratio instead of the split")
    ap.add_argument("--size", default="800x600", help="camera size of --compare")
    a = ap.parse_args()
    compare(a) if a.compare else split(a)


if __name__ == "__main__":
    main()
