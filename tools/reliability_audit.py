"""Re-run the reliability audit of issue 18 and print its table (Markdown).

    python tools/reliability_audit.py            # about 3 minutes on 2 cores
    python tools/reliability_audit.py --quick    # fewer random cases

What it tries, with the corpora the tests use (so the tool and the tests never drift apart):

* scenario files: the audit's bad scenarios (``tests/test_scenario_fuzz.py``'s ``AUDIT``), an
  invalid UTF-8 file and a folder, and random mutations of the shipped scenarios (the same
  values and operations as the hypothesis test), each loaded under a 2 s alarm;
* drive logs: the audit's damaged logs and random damage (``tests/log_corpus.py``), each read
  through everything replay and the report read, under a 2 s alarm;
* serve: the audit's poisoning inputs and random arguments to every CARLA call, through the
  RPC layer of an in-process server (``tests/test_rpc_fuzz.py``); a call that fails inside
  its handler instead of being refused by a check counts as a traceback; afterwards the
  world must still tick;
* the command line: the audit's cases as real ``python -m carla_agent`` processes (one line
  and exit code 2 is a clean error);
* frames lost when a recording is killed (SIGKILL at a random moment, several times) and
  when the disk fills (``record`` into a 3 MB tmpfs; needs root, else "not measured").

Outcomes: *clean error* (a ``CarlaAgentError`` / one ``error:`` line and exit code 2 / CARLA's
error result), *accepted* (read, loaded or answered), *traceback* (anything else), *hang*
(over the time limit).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
CASE_LIMIT_S = 2.0
ENV = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


@dataclass
class Tally:
    name: str
    tried: int = 0
    clean: int = 0
    accepted: int = 0
    tracebacks: int = 0
    hangs: int = 0
    notes: List[str] = field(default_factory=list)

    def add(self, outcome: str, detail: str = "") -> None:
        self.tried += 1
        setattr(self, outcome, getattr(self, outcome) + 1)
        if outcome in ("tracebacks", "hangs") and len(self.notes) < 5:
            self.notes.append(detail[:300])


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


def within(fn: Callable[[], object], limit_s: float = CASE_LIMIT_S):
    """``(outcome, detail)`` of ``fn()`` under an alarm: clean / accepted / tracebacks / hangs."""
    from carla_agent.errors import CarlaAgentError

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limit_s)
    try:
        fn()
        return "accepted", ""
    except _Hang:
        return "hangs", f"over {limit_s} s"
    except CarlaAgentError as exc:
        return ("clean", "") if "\n" not in str(exc) else ("tracebacks", f"a message of several lines: {exc}")
    except Exception as exc:  # noqa: BLE001 - what the audit counts
        return "tracebacks", f"{type(exc).__name__}: {exc}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _random_value(rng: random.Random, specials: list):
    pick = rng.random()
    if pick < 0.5:
        return rng.choice(specials)
    if pick < 0.7:
        return rng.choice([rng.uniform(-1e6, 1e6), rng.randint(-10 ** 12, 10 ** 12), 10.0 ** rng.randint(-300, 300)])
    if pick < 0.85:
        return "".join(rng.choice("abc1e.-_ ") for _ in range(rng.randint(0, 6)))
    return [rng.choice(specials) for _ in range(rng.randint(0, 3))]


# -- scenarios ------------------------------------------------------------------------------------

def scenarios(n: int, rng: random.Random, work: Path) -> Tally:
    import yaml

    import test_scenario_fuzz as sf
    from carla_agent.sim.scenario import load_scenario_file

    tally = Tally("scenario files")
    path = work / "scenario.yaml"
    for text, _field, _allowed in sf.AUDIT:
        path.write_text(text)
        tally.add(*within(lambda: load_scenario_file(path)))
    path.write_bytes(b"road: {segments: [{line: 200}]}\nname: \xff\xfe\n")
    tally.add(*within(lambda: load_scenario_file(path)))
    tally.add(*within(lambda: load_scenario_file(work)))  # a folder
    for _ in range(n):
        data = copy.deepcopy(rng.choice(sf.BASES))
        for _ in range(rng.randint(1, 3)):
            paths = sf._paths(data)
            if not paths:
                break
            sf._mutate(data, rng.choice(paths), rng.choice(["replace", "replace", "delete", "add"]),
                       _random_value(rng, sf.SPECIALS))
        path.write_text(yaml.safe_dump(data))
        tally.add(*within(lambda: load_scenario_file(path)))
    return tally


# -- drive logs -----------------------------------------------------------------------------------

KINDS = ["delete", "empty", "folder", "truncate", "truncate", "flip", "flip", "flip", "garbage", "meta_set",
         "meta_set", "meta_set", "meta_del", "meta_whole", "row_set", "row_set", "header"]


def logs(n: int, rng: random.Random, work: Path) -> Tally:
    import log_corpus as lc

    tally = Tally("drive logs")
    template = lc.make_log(work / "template")
    cases = [damages for _, damages in lc.AUDIT]
    for _ in range(n):
        cases.append([(rng.choice(KINDS), rng.randrange(10 ** 6), rng.random(), _random_value(rng, lc.SPECIALS))
                      for _ in range(rng.randint(1, 3))])
    for damages in cases:
        run = lc.copy_log(template, work / "run")
        for d in damages:
            lc.damage(run, *d)
        tally.add(*within(lambda: lc.read_everything(run)))
    return tally


# -- serve ----------------------------------------------------------------------------------------

def serve(n: int, rng: random.Random) -> Tally:
    import math

    import test_rpc_fuzz as rf
    from carla_agent.server import Server

    tally = Tally("serve calls")
    specials = [0, -1, 1e300, math.nan, math.inf, "sensor.camera.rgb", "vehicle.lincoln.mkz_2020", "fov", 2 ** 32,
                None, True, "", [], {}, [0, 0, 0], [[0, 0, 0], [0, 0, 0]], b"\x00"]
    outcomes = {"refused": "clean", "closed": "clean", "accepted": "accepted", "failed": "tracebacks"}
    with Server("straight_clear", port=0) as srv:
        for name, method, args in rf.POISON:
            ego = rf.spawn_ego(srv)
            result = {}
            verdict = within(lambda: result.update(out=rf.call(srv, method, [ego if a == rf.EGO else a
                                                                             for a in args])), 10.0)
            rf.call(srv, "destroy_actor", [ego])
            if verdict[0] != "accepted":
                tally.add(*verdict)
                continue
            outcome, text = result["out"]
            tally.add(outcomes[outcome], f"{name}: {text}")
        for _ in range(n):
            method = rng.choice(rf.METHODS)
            args = [_random_value(rng, specials) for _ in range(rng.randint(0, 4))]
            result = {}
            verdict = within(lambda: result.update(out=rf.call(srv, method, args)), 10.0)
            if verdict[0] != "accepted":
                tally.add(*verdict)
                continue
            outcome, text = result["out"]
            tally.add(outcomes[outcome], f"{method}{args!r:.100}: {text}")
        frame = srv.world.frame
        ticked = rf.call(srv, "tick_cue", [], cid=9)[0] == "accepted" and srv.world.frame > frame
        if not (ticked and srv.world._ticker.is_alive()):
            tally.notes.append("the world no longer ticks after the calls")
            tally.tracebacks += 1
    return tally


# -- the command line -----------------------------------------------------------------------------

def _nan_model(path: Path) -> Path:
    import keras
    import numpy as np

    inp = keras.Input((66, 200, 3), name="image")
    head = keras.layers.Dense(1, name="steer")
    model = keras.Model(inp, head(keras.layers.GlobalAveragePooling2D()(inp)))
    head.set_weights([head.get_weights()[0], np.array([np.nan], np.float32)])
    model.save(path)
    return path


def cli(work: Path) -> Tally:
    import log_corpus as lc
    from carla_agent.resources import DEFAULT_MODEL

    tally = Tally("command line")
    template = lc.make_log(work / "cli_template")
    a_file, a_folder = work / "a_file", work / "a_folder"
    a_file.write_text("x")
    a_folder.mkdir(exist_ok=True)

    def damaged(name: str, meta) -> str:
        run = lc.copy_log(template, work / name)
        if isinstance(meta, dict):
            meta = {**json.loads((run / "meta.json").read_text()), **meta}
        (run / "meta.json").write_text(json.dumps(meta))
        return str(run)

    no_frames = lc.copy_log(template, work / "no_frames")
    (no_frames / "frames.zst").unlink()
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    cases = [
        ["replay", damaged("dt0", {"dt_s": 0})], ["report", damaged("dt0r", {"dt_s": 0})],
        ["replay", damaged("list", [1, 2])], ["report", damaged("listr", [1, 2])],
        ["replay", damaged("nan", {"dt_s": float("nan")})],
        ["replay", str(no_frames), "--model", str(DEFAULT_MODEL), "--quiet"],
        ["drive", "--headless", "--quiet", "--duration", "1", "--model", str(_nan_model(work / "nan.keras"))],
        ["drive", "--record", "--headless", "--out", str(a_file)],
        ["record", "--scenarios", "straight_clear", "--out", str(a_file)],
        ["evaluate", "--out", str(a_file)], ["explain", "x.png", "--out", str(a_file)],
        ["collect", "--out", str(a_file)], ["replay", damaged("ok", {}), "--out", str(a_folder)],
        ["report", damaged("ok2", {}), "--out", str(a_folder)], ["train", "--data", str(a_folder), "--out",
                                                                 str(a_folder)],
        ["record", "--scenarios", ","], ["drive", "--headless", "--camera-res", "16000x16000"],
        ["drive", "--headless", "--scenario", str(a_folder)],
        ["serve", "--port", str(busy.getsockname()[1])],
    ]
    try:
        for argv in cases:
            try:
                proc = subprocess.run([sys.executable, "-m", "carla_agent", *argv], cwd=ROOT, env=ENV,
                                      capture_output=True, text=True, timeout=120)
            except subprocess.TimeoutExpired:
                tally.add("hangs", " ".join(argv))
                continue
            errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
            if "Traceback" in proc.stderr or proc.returncode not in (0, 2):
                tally.add("tracebacks", f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr[-300:]}")
            elif proc.returncode == 0:
                tally.add("accepted")
            elif len(errors) == 1 or "usage:" in proc.stderr:  # argparse: usage and one error line
                tally.add("clean")
            else:
                tally.add("tracebacks", f"{' '.join(argv)}: {proc.stderr[-300:]}")
    finally:
        busy.close()
    return tally


# -- frames lost ----------------------------------------------------------------------------------

CHILD = """
import sys, time
sys.path[:0] = [{root!r}, {tests!r}]
from pathlib import Path
import log_corpus as lc
from carla_agent.recording.drive_log import DriveLogWriter
w = DriveLogWriter(Path({run!r}), lc.run_meta("killed"))
for i in range(100000):
    w.append({{"i": i, "frame": i, "sim_time_s": i * 0.05, "steer": 0.0, "throttle": 0.5}}, lc.image(i), lc.labels(i))
    print(i + 1, flush=True)
    time.sleep(0.005)
"""


def killed(kills: int, rng: random.Random, work: Path) -> str:
    """Frames appended to a drive log (the writer ``record`` uses, at 20 frames per simulated second)
    but not readable after a SIGKILL at a random moment: the worst of ``kills``."""
    from carla_agent.recording.drive_log import DriveLog

    worst = 0
    for k in range(kills):
        run = work / f"killed_{k}"
        code = CHILD.format(root=str(ROOT), tests=str(ROOT / "tests"), run=str(run))
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=ENV)
        appended, deadline = 0, time.monotonic() + rng.uniform(1.0, 4.0)
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            appended = int(line)
        proc.kill()
        proc.wait()
        appended += sum(1 for _ in proc.stdout)  # appended before the kill, still in the pipe
        readable = sum(1 for _ in DriveLog.open(run).iter_frames(on_error="skip"))
        worst = max(worst, appended - readable)
    return f"at most {worst} frames ({worst * 0.05:.2f} s of driving) over {kills} kills"


def disk_full(work: Path) -> str:
    from carla_agent.recording.drive_log import DriveLog

    mnt = work / "tmpfs"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        return "not measured (mounting a tmpfs needs root)"
    try:
        proc = subprocess.run([sys.executable, "-m", "carla_agent", "record", "--scenarios", "straight_clear",
                               "--duration", "20", "--out", str(mnt), "--quiet"], cwd=ROOT, env=ENV,
                              capture_output=True, text=True, timeout=300)
        m = re.search(r"disk full: (\d+) frames kept in (\S+)", proc.stderr)
        if not m:
            return f"no disk-full line (exit {proc.returncode}): {proc.stderr[-200:]}"
        kept, run = int(m.group(1)), Path(m.group(2))
        readable = sum(1 for _ in DriveLog.open(run).iter_frames(on_error="skip"))
        empty = [p.name for p in mnt.rglob("*") if p.is_file() and p.stat().st_size == 0]
        return (f"{kept - readable} of {kept} kept frames unreadable (exit {proc.returncode}, "
                f"{len(empty)} empty files)")
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 mutations, 100 damaged logs, 100 calls, 2 kills")
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # the cases' own warnings; the table says what happened
    n_scen, n_logs, n_calls, kills = (200, 100, 100, 2) if args.quick else (2000, 500, 400, 5)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="reliability_audit_") as tmp:
        work = Path(tmp)
        tallies = [scenarios(n_scen, rng, work), logs(n_logs, rng, work), serve(n_calls, rng), cli(work)]
        kill_text, disk_text = killed(kills, rng, work), disk_full(work)
    print("| cases | tried | clean errors | accepted | tracebacks (goal 0) | hangs (goal 0) |")
    print("|---|---|---|---|---|---|")
    for t in tallies:
        print(f"| {t.name} | {t.tried} | {t.clean} | {t.accepted} | {t.tracebacks} | {t.hangs} |")
    total = Tally("all", *(sum(getattr(t, f) for t in tallies)
                           for f in ("tried", "clean", "accepted", "tracebacks", "hangs")))
    print(f"| **all** | {total.tried} | {total.clean} | {total.accepted} | {total.tracebacks} | {total.hangs} |")
    print()
    print(f"frames lost when `record` is killed: {kill_text}")
    print(f"frames lost on a full disk: {disk_text}")
    for t in tallies:
        for note in t.notes:
            print(f"{t.name}: {note}", file=sys.stderr)
    return 0 if total.tracebacks == 0 and total.hangs == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
