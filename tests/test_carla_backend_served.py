"""Issue 19 through ``serve`` and the real ``carla`` wheel: the documented CLI features
(``--allow-version-mismatch``, CARLA's recorder with ``record --backend carla``, ``replay RUN
--backend carla``), a server that stops answering mid-drive, SIGTERM, a second ticker and
``no_rendering_mode``. Each test failed before its fix."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

carla = pytest.importorskip("carla")

from served_world import ROOT, start_server, stop_server  # noqa: E402

from carla_agent.errors import BackendError  # noqa: E402
from carla_agent.recording.drive_log import DriveLog  # noqa: E402

TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def server():
    proc, port = start_server("gentle_curves")
    yield port
    stop_server(proc)


def cli(*args, **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-m", "carla_agent", *args], cwd=str(ROOT), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def finish(proc, timeout=240):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def client(port):
    c = carla.Client("127.0.0.1", port)
    c.set_timeout(5.0)
    return c


def wait_for_rows(out_dir: Path, rows: int, proc, limit_s: float = 120.0) -> Path:
    """The run folder once its drive log holds ``rows`` rows (the drive is under way)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        for csv in out_dir.glob("*/rows.csv"):
            if sum(1 for _ in csv.open()) > rows:
                return csv.parent
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    raise AssertionError("the drive never got going")


#: glibc's own words when it finds the heap corrupted, and aborts.
GLIBC_HEAP_ABORT = re.compile(r"corrupted|double free|free\(\): invalid|malloc\(\)|malloc_consolidate")


def remove_our_actors(port) -> int:
    """Destroy what a drive that died left (sensors first); how many there were."""
    world = client(port).get_world()
    s = world.get_settings()
    if s.synchronous_mode:  # first: a synchronous world nobody ticks shows a stale actor list
        s.synchronous_mode = False
        world.apply_settings(s)
    world.wait_for_tick()
    ours = [a for a in world.get_actors() if a.type_id.startswith("sensor.") or a.type_id == "vehicle.lincoln.mkz_2020"]
    for a in sorted(ours, key=lambda a: not a.type_id.startswith("sensor.")):
        a.destroy()
    return len(ours)


def our_actors(port):
    return [a.type_id for a in client(port).get_world().get_actors()
            if a.type_id.startswith("sensor.") or a.type_id == "vehicle.lincoln.mkz_2020"]


def test_record_with_carlas_recorder_and_replay_it_on_the_server(server, tmp_path):
    """Defect 3: --allow-version-mismatch was rejected, `record --backend carla` never switched
    CARLA's recorder on and `replay RUN --backend carla` was rejected."""
    code, out, err = finish(cli("record", "--backend", "carla", "--port", str(server), "--allow-version-mismatch",
                                "--scenarios", "gentle_curves", "--duration", "1", "--out", str(tmp_path),
                                "--quiet"))
    assert code == 0, err
    run = Path(out.splitlines()[0])
    meta = DriveLog.open(run).meta
    recording = meta["carla_recorder_file"]
    info = client(server).show_recorder_file_info(recording, False)
    assert "Map: gentle_curves" in info
    # CARLA's layout: frame 1 at 0 s, then one per tick; the replay ticks through the duration
    frames = round(float(info.split("Duration: ")[1].split()[0]) / 0.05)
    assert frames >= 20 and int(info.split("Frames: ")[1].split()[0]) > frames  # 1 s at 0.05 s, and settling
    code, out, err = finish(cli("replay", str(run), "--backend", "carla", "--port", str(server), "--quiet"))
    assert code == 0, err
    assert out.startswith(f"video: {run / 'carla_replay_visual_backprop.mp4'} ({frames} frames replayed")
    assert (run / "carla_replay_visual_backprop.mp4").stat().st_size > 1000
    assert not our_actors(server), "the replay's hero and cameras are gone"
    assert not client(server).get_world().get_settings().synchronous_mode


def test_a_run_without_a_carla_recording_is_refused_by_replay_backend_carla(server, tmp_path):
    code, out, err = finish(cli("record", "--scenarios", "gentle_curves", "--duration", "0.2", "--out",
                                str(tmp_path), "--quiet"))
    assert code == 0, err
    run = out.splitlines()[0]
    code, out, err = finish(cli("replay", run, "--backend", "carla", "--port", str(server), "--quiet"))
    assert code == 2 and err.startswith("error: ") and "field 'carla_recorder_file'" in err
    assert len(err.strip().splitlines()) == 1


def test_a_server_that_stops_answering_mid_drive_ends_it_with_one_line_and_a_readable_log(tmp_path):
    """The watchdog: SIGSTOP the served world mid-drive. Before, the cleanup's own warnings and the
    wheel's followed the error; now one line says what happened and what was (not) restored."""
    proc, port = start_server("gentle_curves")
    try:
        drive = cli("drive", "--backend", "carla", "--port", str(port), "--allow-version-mismatch",
                    "--scenario", "gentle_curves", "--headless", "--record", "--out", str(tmp_path),
                    "--duration", "60", "--quiet", "--timeout", str(TIMEOUT_S))
        run = wait_for_rows(tmp_path, 10, drive)
        os.kill(proc.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        code, _, err = finish(drive)
        took = time.monotonic() - stopped
        os.kill(proc.pid, signal.SIGCONT)
    finally:
        stop_server(proc)
    lines = [line for line in err.splitlines() if "route ends after" not in line]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: CARLA server at "), err
    assert "time-out" in lines[0] or "did not finish world.tick()" in lines[0]
    assert "restart the server" in lines[0]
    # the tick's time-out (or the watchdog 1 s later), one cleanup call's, and the process's exit
    assert took < TIMEOUT_S + 1.0 + TIMEOUT_S + 20.0, took
    log = DriveLog.open(run)
    assert len(log) >= 10 and log.frame(len(log) - 1).shape[2] == 3


def test_sigterm_mid_drive_cleans_up_like_ctrl_c(server, tmp_path):
    """Defect 7: SIGTERM killed the drive without cleanup (the ego and its sensors stayed)."""
    drive = cli("drive", "--backend", "carla", "--port", str(server), "--scenario", "gentle_curves",
                "--headless", "--record", "--out", str(tmp_path), "--duration", "60", "--quiet")
    run = wait_for_rows(tmp_path, 5, drive)
    drive.send_signal(signal.SIGTERM)
    code, _, err = finish(drive)
    if code == -signal.SIGABRT and GLIBC_HEAP_ABORT.search(err):
        # Known, not fixed: now and then the process aborts in glibc inside the carla client
        # library before the cleanup ends (2 of about 8 CI runs; 1 in about 265 runs here). The
        # logged frames must still be there; the leftovers go, so the next tests start clean.
        assert len(DriveLog.open(run)) >= 5
        left = remove_our_actors(server)
        pytest.xfail(f"the drive aborted in glibc ({err.strip().splitlines()[-1]}); {left} actors left, removed")
    assert code == 130 and "interrupted" in err, err
    assert not our_actors(server), "our actors were destroyed"
    assert len(DriveLog.open(run)) >= 5


# It leaves by os._exit once its settings are restored: the wheel's own teardown at interpreter exit
# can hang on a busy machine (its streaming threads), which is not what this test is about.
TICKER = """
import os, sys, time, carla
c = carla.Client('127.0.0.1', int(sys.argv[1])); c.set_timeout(5.0)
w = c.get_world(); s = w.get_settings(); s.synchronous_mode = True; s.fixed_delta_seconds = 0.05
w.apply_settings(s)
print('ticking', flush=True)
try:
    while True:
        w.tick(); time.sleep(0.05)
except KeyboardInterrupt:
    pass
finally:
    s.synchronous_mode = False; w.apply_settings(s)
    print('restored', flush=True)
    os._exit(0)
"""


def test_a_server_another_client_ticks_is_refused(server):
    """Defect 7: CARLA (and now serve) takes ticks from every client: both would step the world."""
    from carla_agent.sim.carla_backend import CarlaSimulator
    from carla_agent.sim.scenario import load_scenario

    child = subprocess.Popen([sys.executable, "-c", TICKER, str(server)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ticking"
        with CarlaSimulator(port=server, timeout_s=TIMEOUT_S) as sim:
            with pytest.raises(BackendError, match="another client is ticking it"):
                sim.reset(load_scenario("gentle_curves"), seed=0)
    finally:
        child.send_signal(signal.SIGINT)
        try:
            rest, _ = child.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # never leave it ticking the module's server for the next test
            child.kill()
            child.wait()
            raise
    assert "restored" in rest, "the other client put its settings back and left"
    assert not our_actors(server)


def test_no_rendering_mode_is_turned_off_for_the_drive_and_restored(server):
    """Defect 9: serve now sends no camera frames in no_rendering_mode, as CARLA; the backend kept the
    mode and failed with an 'overloaded' sensor time-out."""
    from carla_agent.control import VehicleControl
    from carla_agent.sim.carla_backend import CarlaSimulator
    from carla_agent.sim.scenario import load_scenario

    world = client(server).get_world()
    s = world.get_settings()
    s.no_rendering_mode = True
    world.apply_settings(s)
    try:
        with CarlaSimulator(port=server, timeout_s=TIMEOUT_S) as sim:
            obs = sim.reset(load_scenario("gentle_curves"), seed=0)
            obs = sim.step(VehicleControl(throttle=0.3))
            assert obs.image.std() > 1.0
        assert world.get_settings().no_rendering_mode, "restored as found"
    finally:
        s.no_rendering_mode = False
        world.apply_settings(s)


def test_each_scenario_drives_its_own_map_and_one_the_server_lacks_says_so(server, caplog):
    """A town route drove whatever map was loaded (a town scenario against ``serve --scenario
    gentle_curves`` reported gentle_curves' road as the town's), silently. Now the scenario's town is
    loaded, the served single road comes back by its name, and a scenario whose map the server
    lacks keeps the loaded map with a warning that names both."""
    import logging

    from carla_agent.control import VehicleControl
    from carla_agent.sim.carla_backend import CarlaSimulator
    from carla_agent.sim.scenario import load_scenario

    def map_name():
        return client(server).get_world().get_map().name.split("/")[-1]

    with CarlaSimulator(port=server, timeout_s=TIMEOUT_S, load_timeout_s=30.0) as sim:
        sim.reset(load_scenario("town_grid_small"), seed=0)
        sim.step(VehicleControl(throttle=0.3))
        assert map_name() == "grid_small"
        sim.reset(load_scenario("gentle_curves"), seed=0)
        assert map_name() == "gentle_curves"
        with caplog.at_level(logging.WARNING, logger="carla_agent.sim.carla_backend.simulator"):
            sim.reset(load_scenario("straight_clear"), seed=0)
            sim.step(VehicleControl(throttle=0.3))
        assert map_name() == "gentle_curves"
    said = [r.getMessage() for r in caplog.records if r.name.endswith("carla_backend.simulator")]
    assert any("scenario straight_clear names no map" in m and m.endswith("gentle_curves") for m in said), said


def test_a_town_scenario_drives_its_own_route_planned_on_the_served_map(server):
    """The CARLA backend drove a town scenario from spawn point 0 straight on at every junction; now it
    plans the scenario's start, via and end on the map's topology with the global route planner and
    walks that route: the same start, length and junction commands as the embedded simulator's."""
    from carla_agent.control import VehicleControl
    from carla_agent.sim.carla_backend import CarlaSimulator
    from carla_agent.sim.embedded.simulator import EmbeddedSimulator
    from carla_agent.sim.scenario import load_scenario

    sc = load_scenario("town_grid_small")  # straight at C, right at E, right at S, straight at C
    with EmbeddedSimulator(render=False) as emb:
        emb.reset(sc, seed=0)
        want = [o.name for o in emb.route.junction_commands()]
        want_length = emb.route.length_m  # the planner's, on the embedded town's lane graph
        want_start = sc.route.start
    with CarlaSimulator(port=server, timeout_s=TIMEOUT_S, load_timeout_s=30.0) as sim:
        obs = sim.reset(sc, seed=0)
        route = sim.route
        sim.step(VehicleControl(throttle=0.3))
    assert obs.pose.x_m == pytest.approx(want_start[0], abs=0.5)
    assert obs.pose.y_m == pytest.approx(-want_start[1], abs=0.5)  # CARLA's y points south
    assert sim.route_length_m == pytest.approx(want_length, abs=3.0)
    got, previous = [], 4
    for s in np.arange(0.0, sim.route_length_m, 1.0):
        c = route.command_at(float(s), ahead_m=0.0)
        if c != 4 and c != previous:
            got.append({1: "LEFT", 2: "RIGHT", 3: "STRAIGHT"}[c])
        previous = c
    assert got == want


def test_a_car_moved_a_lane_left_is_asked_to_change_right_on_the_carla_backend_too(server):
    from carla_agent.control import VehicleControl
    from carla_agent.sim.carla_backend import CarlaSimulator
    from carla_agent.sim.scenario import load_scenario

    with CarlaSimulator(port=server, timeout_s=TIMEOUT_S, load_timeout_s=30.0) as sim:
        obs = sim.reset(load_scenario("town_grid_small"), seed=0)
        assert obs.command == 4
        ego = sim._session.ego
        t = ego.get_transform()
        right = t.get_right_vector()
        t.location = carla.Location(x=t.location.x - 3.5 * right.x, y=t.location.y - 3.5 * right.y,
                                    z=t.location.z + 0.2)
        ego.set_transform(t)  # the oncoming lane, as after too tight a left turn
        obs = sim.step(VehicleControl())
        assert obs.truth.lateral_offset_m == pytest.approx(-3.5, abs=0.3)
        assert obs.command == 6  # CHANGELANERIGHT


def test_a_town_route_whose_start_is_taken_says_so(server):
    from carla_agent.errors import BackendError
    from carla_agent.sim.carla_backend import CarlaSimulator
    from carla_agent.sim.scenario import load_scenario

    sc = load_scenario("town_grid_small")
    with CarlaSimulator(port=server, timeout_s=TIMEOUT_S, load_timeout_s=30.0) as sim:
        sim.reset(sc, seed=0)  # loads the town
    world = client(server).get_world()
    x, y = sc.route.start
    bp = world.get_blueprint_library().find("vehicle.lincoln.mkz_2020")
    blocker = world.spawn_actor(bp, carla.Transform(carla.Location(x=x, y=-y, z=0.5)))
    try:
        with CarlaSimulator(port=server, timeout_s=TIMEOUT_S, load_timeout_s=30.0) as sim:
            with pytest.raises(BackendError, match="field 'route.start': the spot is occupied"):
                sim.reset(sc, seed=0)
    finally:
        blocker.destroy()
