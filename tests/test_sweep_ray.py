"""Sweeps on a local Ray (``num_cpus=2``), one Ray runtime for the whole module.

One 2 scenarios x 2 models x 2 seeds grid (2.5 s drives, 160x90 camera) is run
three times into one folder (the ``sweep`` fixture):

1. with a cell whose worker is killed mid-drive on its first attempt (``os._exit`` from
   a timer, once, by a marker file) and a cell that always raises: the first is retried
   and completes, the second is reported failed with its error, the other 6 complete;
2. plainly: the 7 finished cells are skipped and the failed one runs;
3. plainly again: all 8 are skipped, nothing runs.

Its 8 rows must equal what ``python -m carla_agent record`` gives for the same
scenarios, models and seeds, run serially in another process. The second model is
the shipped one with its last layer randomised by ``carla_agent.network.randomise``,
saved as ``.h5``. Ctrl-C is a SIGINT to a ``python -m carla_agent sweep`` subprocess
joining this module's Ray, with ``--ship-runs`` (its run folders come back through
Ray). Four cells run on two ``serve`` worlds as CARLA servers, one actor each. The
comparison page is opened in headless Chromium.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from chromium import Chromium, find_chromium  # noqa: E402

from carla_agent.sweep.cell import run_cell  # noqa: E402
from carla_agent.sweep.grid import SweepSpec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DURATION_S = 2.5
SEEDS = (0, 1)
# Ray pickles functions of importable modules by reference; the workers cannot import this test file.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

SERIAL = r"""
import json, shutil, sys
from pathlib import Path
import numpy as np
from carla_agent.network.steering_model import SteeringModel
from carla_agent.network.randomise import clone, randomise_layer, weighted_layers
from carla_agent.resources import DEFAULT_MODEL
from carla_agent.cli import main

tmp, scenarios, seeds, duration = Path(sys.argv[1]), sys.argv[2], sys.argv[3].split(","), sys.argv[4]
b = tmp / "models" / "randomised_head.h5"
b.parent.mkdir()
keras_model = clone(SteeringModel.load(DEFAULT_MODEL).file_model)
randomise_layer(weighted_layers(keras_model)[-1], np.random.default_rng(7))
keras_model.save(b)
shutil.copy(DEFAULT_MODEL.with_suffix(".json"), b.with_suffix(".json"))
out = {}
for model in (str(DEFAULT_MODEL), str(b)):
    for seed in seeds:
        root = tmp / "serial" / f"{Path(model).suffix[1:]}_{seed}"
        assert main(["record", "--scenarios", scenarios, "--model", model, "--seed", seed, "--duration", duration,
                     "--out", str(root), "--quiet"]) == 0
        for run in sorted(p for p in root.iterdir() if (p / "meta.json").is_file()):
            meta = json.loads((run / "meta.json").read_text())
            out[f"{meta['scenario_file']}|{model}|{seed}"] = meta["metrics"]
(tmp / "serial.json").write_text(json.dumps(out))
"""


def _scenario_file(folder: Path, name: str) -> str:
    text = (ROOT / "scenarios" / f"{name}.yaml").read_text()
    lines = [("  image_size_x: 160" if ln.startswith("  image_size_x:") else
              "  image_size_y: 90" if ln.startswith("  image_size_y:") else ln) for ln in text.splitlines()]
    path = folder / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def dies_once_or_fails(cell, spec, out_dir, token, backend_options=None):
    """Test cell: the first model's seed-1 straight_clear cell kills its worker mid-drive once;
    the second model's seed-0 gentle_curves cell always raises; the rest run as usual."""
    marker = Path(out_dir).parent / "killed_once"
    if cell.scenario.endswith("straight_clear.yaml") and cell.seed == 1 and cell.model.endswith(".keras") \
            and not marker.exists():
        marker.write_text("x")
        threading.Timer(0.8, os._exit, (1,)).start()  # mid-drive: the worker dies, no Python cleanup
    if cell.scenario.endswith("gentle_curves.yaml") and cell.seed == 0 and cell.model.endswith(".h5"):
        raise RuntimeError("deliberate failure of this cell")
    return run_cell(cell, spec, out_dir, token, backend_options)



def hangs(cell, spec, out_dir, token, backend_options=None):
    """Test cell: says it started, then holds its CPU for two minutes (longer than the test waits)."""
    (Path(out_dir).parent / f"started_{cell.seed}").write_text("x")
    time.sleep(120.0)
    raise AssertionError("never cancelled")

@pytest.fixture(scope="module")
def ray_runtime():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("sweep")


@pytest.fixture(scope="module")
def grid(tmp) -> SweepSpec:
    scen = tmp / "scenarios"
    scen.mkdir()
    scenarios = (_scenario_file(scen, "straight_clear"), _scenario_file(scen, "gentle_curves"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", SERIAL, str(tmp), ",".join(scenarios), ",".join(map(str, SEEDS)),
                           str(DURATION_S)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from carla_agent.resources import DEFAULT_MODEL

    return SweepSpec(scenarios=scenarios, models=(str(DEFAULT_MODEL), str(tmp / "models" / "randomised_head.h5")),
                     seeds=SEEDS, duration_s=DURATION_S, retries=1, timeout_s=300)


@pytest.fixture(scope="module")
def sweep(ray_runtime, grid, tmp):
    from carla_agent.sweep.run import run_sweep

    out = tmp / "out"
    first = run_sweep(grid, out, cell_fn=dies_once_or_fails, progress=False)
    second = run_sweep(grid, out, progress=False)
    third = run_sweep(grid, out, progress=False)
    return out, first, second, third


def test_a_killed_worker_is_retried_and_a_failing_cell_is_reported_while_the_others_complete(sweep):
    out, first, _, _ = sweep
    by_id = {r.cell.cell_id: r for r in first.results}
    assert len(by_id) == 8 and len(first.ran) == 8
    failed = [r for r in first.results if r.status != "done"]
    assert [(r.cell.scenario.endswith("gentle_curves.yaml"), r.cell.seed, r.cell.model.endswith(".h5"))
            for r in failed] == [(True, 0, True)]
    assert "deliberate failure of this cell" in failed[0].error and failed[0].attempts == 2
    killed = [r for r in first.results if r.attempts == 2 and r.status == "done"]
    assert len(killed) == 1 and killed[0].cell.seed == 1 and killed[0].complete
    assert (out.parent / "killed_once").exists()
    assert all(r.complete and (out / r.run_dir / "meta.json").is_file() for r in first.results if r.status == "done")


def test_the_grid_gives_8_rows_equal_to_the_serial_record_path(sweep, tmp):
    import pandas as pd

    out, _, second, _ = sweep
    assert len(second.ran) == 1 and len(second.skipped) == 7
    serial = json.loads((tmp / "serial.json").read_text())
    for table in (pd.read_parquet(out / "results.parquet"), pd.read_csv(out / "results.csv")):
        assert len(table) == 8 and set(table["status"]) == {"done"}
        assert sorted(zip(table["scenario"], table["model"], table["seed"])) == sorted(
            tuple(k.split("|")[:2]) + (int(k.split("|")[2]),) for k in serial)
        for row in table.itertuples():
            expected = serial[f"{row.scenario}|{row.model}|{row.seed}"]
            for key, value in expected.items():
                if key != "scenario":
                    assert getattr(row, key) == pytest.approx(value, abs=1e-9), (row.cell_id, key)
    manifest = json.loads((out / "manifest.json").read_text())["cells"]
    assert {e["status"] for e in manifest.values()} == {"done"} and len(manifest) == 8


def test_a_rerun_skips_all_8_cells(sweep):
    out, _, _, third = sweep
    assert third.ran == () and len(third.skipped) == 8 and len(third.results) == 8


def test_a_cell_whose_log_was_cut_short_since_is_driven_again(sweep, grid):
    from carla_agent.sweep.manifest import Manifest

    out, first, _, _ = sweep
    cell = grid.cells()[0]
    manifest = Manifest(out, grid.settings())
    assert manifest.is_done(cell)
    meta_path = out / manifest.entries[cell.cell_id]["run_dir"] / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "complete": False}))
    try:
        assert not manifest.is_done(cell)
    finally:
        meta_path.write_text(json.dumps(meta))


def _manifest_done(path: Path) -> list:
    try:
        return [k for k, e in json.loads(path.read_text())["cells"].items() if e["status"] == "done"]
    except (OSError, ValueError, KeyError):
        return []


def test_ctrl_c_keeps_the_finished_cells_and_the_rerun_resumes(ray_runtime, grid, tmp):
    out = tmp / "ctrl_c"
    cmd = [sys.executable, "-m", "carla_agent", "sweep", "--scenarios", ",".join(grid.scenarios),
           "--seeds", "5-6", "--duration", "40", "--methods", "none", "--address", ray_runtime, "--ship-runs", "--out", str(out)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not _manifest_done(out / "manifest.json") and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    done = _manifest_done(out / "manifest.json")
    # SIGINT came within 0.2 s of the first finished cell, while the third and fourth still had to run
    assert 1 <= len(done) < 4, err[-2000:]
    assert proc.returncode == 130 and "interrupted" in err, err[-2000:]
    # the cells that were in flight end with the sweep's Ray job: the cluster's CPUs come back
    cpus = ray.cluster_resources()["CPU"]
    deadline = time.monotonic() + 30
    while ray.available_resources().get("CPU", 0) < cpus and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ray.available_resources().get("CPU", 0) == cpus
    for cell_id in done:
        assert json.loads((out / "runs" / cell_id / "meta.json").read_text())["complete"]
    rerun = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{4 - len(done)} run now, {len(done)} already done, 0 failed" in rerun.stdout
    assert len(_manifest_done(out / "manifest.json")) == 4



def test_ctrl_c_of_a_sweep_in_the_callers_own_ray_session_cancels_its_cells(ray_runtime, grid, tmp):
    """run_sweep called with Ray already up: Ray outlives the sweep, so nothing but the sweep
    can stop its cells. Before, nothing checked that Ctrl-C gives the session's CPUs back."""
    from dataclasses import replace

    from carla_agent.sweep.run import run_sweep

    out = tmp / "own_session" / "out"
    out.parent.mkdir()
    spec = replace(grid, scenarios=grid.scenarios[:1], models=grid.models[:1], retries=0)
    cpus = ray.cluster_resources()["CPU"]
    main = threading.main_thread().ident

    def ctrl_c_once_both_run():
        deadline = time.monotonic() + 120
        while len(list(out.parent.glob("started_*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        signal.pthread_kill(main, signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=ctrl_c_once_both_run, daemon=True).start()
        result = run_sweep(spec, out, cell_fn=hangs, progress=False)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert result.interrupted and len(list(out.parent.glob("started_*"))) == 2
    deadline = time.monotonic() + 30
    while ray.available_resources().get("CPU", 0) < cpus and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ray.available_resources().get("CPU", 0) == cpus, "the two hanging cells still hold the CPUs"

def test_the_comparison_page_loads_cleanly_and_every_link_resolves(sweep):
    out, *_ = sweep
    if find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    page_path = out / "compare.html"
    text = page_path.read_text()
    assert "runs/" in text and "report.html" in text and "attention.mp4" in text
    with Chromium() as browser:
        page = browser.open(page_path, width_px=1280)
        links = page.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.href)")
        images = page.evaluate("[...document.images].map(i => i.naturalWidth)")
        assert page.errors == [], page.errors
    assert len(images) == 5 and all(w > 0 for w in images), images
    reports = [u for u in links if u.endswith("report.html")]
    videos = [u for u in links if u.endswith(".mp4")]
    assert len(set(reports)) == 8 and len(set(videos)) == 8, links
    for url in links:
        parts = urllib.parse.urlsplit(url)
        assert parts.scheme == "file", url
        assert Path(urllib.request.url2pathname(parts.path)).is_file(), f"{url} does not resolve"


def test_on_carla_each_served_world_drives_one_cell_at_a_time(ray_runtime, tmp):
    """Two ``python -m carla_agent serve`` worlds as CARLA servers, one actor each, four cells."""
    import pandas as pd

    from carla_agent.sweep.pool import CarlaServer
    from carla_agent.sweep.run import run_sweep
    from served_world import start_server, stop_server

    started = [start_server("straight_clear") for _ in range(2)]
    try:
        servers = [CarlaServer("127.0.0.1", port) for _, port in started]
        spec = SweepSpec(scenarios=("straight_clear", "gentle_curves"), seeds=(0, 1), duration_s=1.5, methods=(),
                         backend="carla", timeout_s=300)
        result = run_sweep(spec, tmp / "carla", carla_servers=servers, progress=False)
    finally:
        for proc, _ in started:
            stop_server(proc)
    assert [r.status for r in result.results] == ["done"] * 4, [r.error for r in result.results]
    assert {r.server for r in result.results} == {s.name for s in servers}
    assert set(pd.read_parquet(tmp / "carla" / "results.parquet")["backend"]) == {"carla"}
    for s in servers:  # one drive at a time per server: its cells' recorded spans do not overlap
        spans = sorted((json.loads((tmp / "carla" / r.run_dir / "meta.json").read_text())["started_utc"],
                        json.loads((tmp / "carla" / r.run_dir / "meta.json").read_text())["ended_utc"])
                       for r in result.results if r.server == s.name)
        assert all(end <= nxt for (_, end), (nxt, _) in zip(spans, spans[1:])), spans


def test_ctrl_c_on_carla_leaves_the_server_asynchronous_and_without_our_actors(ray_runtime, tmp):
    """Ctrl-C while a cell drives on a CARLA server (a ``serve`` world): the drive ends as Ctrl-C
    would before its actor is killed, so the server is back in asynchronous mode and has none of
    the cell's vehicles or sensors (killed outright, the actor left it synchronous with its hero)."""
    carla = pytest.importorskip("carla")
    from served_world import start_server, stop_server

    server, port = start_server("straight_clear")
    try:
        client = carla.Client("127.0.0.1", port)
        client.set_timeout(20.0)
        out = tmp / "carla_ctrl_c"
        cmd = [sys.executable, "-m", "carla_agent", "sweep", "--scenarios", "straight_clear", "--seeds", "0",
               "--duration", "300", "--methods", "none", "--backend", "carla", "--carla-servers",
               f"127.0.0.1:{port}", "--address", ray_runtime, "--out", str(out)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ours = lambda w: [a for a in w.get_actors() if a.type_id.startswith(("vehicle.", "sensor."))]  # noqa: E731
        deadline = time.monotonic() + 240
        while proc.poll() is None and time.monotonic() < deadline:
            world = client.get_world()
            if world.get_settings().synchronous_mode and ours(world):
                break
            time.sleep(0.5)
        time.sleep(2.0)  # a few seconds into the drive
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 130 and "interrupted" in err, err[-2000:]
        world = client.get_world()
        assert not world.get_settings().synchronous_mode
        assert ours(world) == [], [a.type_id for a in ours(world)]
    finally:
        stop_server(server)


def test_a_local_sweep_drops_only_rays_token_auth_by_default_note():
    import logging

    from carla_agent.sweep.ray_runner import _token_auth_by_default

    def record(msg):
        return logging.LogRecord("ray._private.authentication.authentication_token_setup", logging.WARNING,
                                 __file__, 1, msg, None, None)

    assert not _token_auth_by_default(record("Token authentication is enabled for this Ray cluster. Set "
                                             "RAY_AUTH_MODE=disabled to opt out."))
    assert _token_auth_by_default(record("Token authentication is disabled for this Ray cluster. Anyone ..."))
    assert _token_auth_by_default(record("could not read the token file"))
