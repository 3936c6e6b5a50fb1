"""The sweep's parts that need no Ray: the grid and its file, the server pool, the manifest's
completeness check, the statistics and ranking of the comparison, the table, the progress
bar, and the command line's errors. tests/test_sweep_ray.py runs sweeps on Ray."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from carla_agent.resources import DEFAULT_MODEL
from carla_agent.sweep.grid import Cell, SweepError, SweepSpec, load_sweep_file, parse_seeds
from carla_agent.sweep.pool import CarlaServer, SlotPool, parse_servers

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("text, seeds", [("0-4", (0, 1, 2, 3, 4)), ("3,0,1-2", (3, 0, 1, 2)), ("7", (7,)),
                                         ("0-2,1", (0, 1, 2)), ([5, 6], (5, 6))])
def test_seeds_are_lists_and_ranges(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["4-2", "a", "-1", "", "1.5", "0-99999999999"])
def test_bad_seeds_are_refused_with_the_value(text):
    with pytest.raises(SweepError, match="--seeds"):
        parse_seeds(text)


def test_the_grid_is_every_combination_in_a_fixed_order_with_distinct_ids(tmp_path):
    b = tmp_path / "b.h5"
    spec = SweepSpec(scenarios=("gentle_curves", "highway"), models=(str(DEFAULT_MODEL), str(b)), seeds=(0, 1),
                     weathers=("scenario", "fog"))
    cells = spec.cells()
    assert len(cells) == 16 and len({c.cell_id for c in cells}) == 16
    assert cells[0] == Cell("gentle_curves", str(DEFAULT_MODEL), 0, "scenario")
    assert cells[1] == Cell("gentle_curves", str(DEFAULT_MODEL), 1, "scenario")
    assert spec.cells() == cells
    # two model files of the same name in different folders stay apart
    same = SweepSpec(scenarios=("highway",), models=(str(tmp_path / "x" / "m.keras"), str(tmp_path / "y" / "m.keras")))
    assert len({c.cell_id for c in same.cells()}) == 2
    # one file typed two ways is one cell (a resumed sweep finds its cells)
    assert Cell("highway", "./m.keras", 0).cell_id == Cell("highway", "m.keras", 0).cell_id
    assert Cell("highway", "a/./m.keras", 0).cell_id == Cell("highway", "a/m.keras", 0).cell_id


def test_a_sweep_file_reads_paths_from_its_folder_and_names_bad_fields(tmp_path):
    (tmp_path / "m.keras").write_bytes(b"")
    f = tmp_path / "suite.yaml"
    f.write_text("scenarios: [gentle_curves, all]\nmodels: [m.keras]\nseeds: '0-2'\nweathers: [fog]\n"
                 "duration_s: 5\nmethods: []\nretries: 2\n")
    spec = load_sweep_file(f, duration_s=3.0)
    assert spec.models == (str(tmp_path / "m.keras"),) and spec.seeds == (0, 1, 2) and spec.weathers == ("fog",)
    assert spec.duration_s == 3.0 and spec.methods == () and spec.retries == 2
    assert spec.scenarios[0] == "gentle_curves" and "highway" in spec.scenarios and len(set(spec.scenarios)) > 5
    f.write_text("scenarios: [gentle_curves]\nseed: 3\n")
    with pytest.raises(SweepError, match=r"suite.yaml: field 'seed' is unknown"):
        load_sweep_file(f)
    f.write_text("scenarios: [gentle_curves]\nretries: many\n")
    with pytest.raises(SweepError, match=r"field 'retries': expected a whole number in \[0, 10\], got 'many'"):
        load_sweep_file(f)


@pytest.mark.parametrize("line, message", [
    ("retries: .nan", "field 'retries': nan is not a finite number; expected a whole number in [0, 10]"),
    ("retries: .inf", "field 'retries': inf is not a finite number"),
    ("retries: 11", "field 'retries': 11 is out of range; expected a whole number in [0, 10]"),
    ("retries: -1", "field 'retries': -1 is out of range"),
    ("retries: 1.5", "field 'retries': 1.5 is not a whole number"),
    ("faithfulness_frames: 1e9", "field 'faithfulness_frames': 1000000000.0 is out of range; "
                                 "expected a whole number in [2, 1000]"),
    ("faithfulness_frames: -.inf", "field 'faithfulness_frames': -inf is not a finite number"),
    ("timeout_s: .nan", "field 'timeout_s': nan is not a finite number; expected a number in (0, 604800]"),
    ("timeout_s: 0", "field 'timeout_s': 0 is out of range; expected a number in (0, 604800]"),
    ("duration_s: .inf", "field 'duration_s': inf is not a finite number; expected a number in (0, 86400]"),
    ("duration_s: true", "field 'duration_s': expected a number in (0, 86400], got True"),
    ("backend: warp", "field 'backend': 'warp' is not a backend; expected one of carla, embedded"),
    ("backend: [embedded]", "field 'backend': ['embedded'] is not a backend"),
])
def test_bad_sweep_file_numbers_and_backends_name_file_field_value_and_range(tmp_path, line, message):
    f = tmp_path / "suite.yaml"
    f.write_text(f"scenarios: [highway]\n{line}\n")
    with pytest.raises(SweepError) as err:
        load_sweep_file(f)
    assert str(err.value) == f"{f}: {message}" or str(err.value).startswith(f"{f}: {message}")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("change, message", [
    ({"retries": 11}, "sweep: field 'retries': 11 is out of range; expected a whole number in [0, 10]"),
    ({"timeout_s": math.nan}, "sweep: field 'timeout_s': nan is not a finite number"),
    ({"timeout_s": -5.0}, "sweep: field 'timeout_s': -5.0 is out of range"),
    ({"faithfulness_frames": 1}, "sweep: field 'faithfulness_frames': 1 is out of range"),
    ({"duration_s": math.inf}, "sweep: field 'duration_s': inf is not a finite number"),
    ({"backend": "warp"}, "sweep: field 'backend': 'warp' is not a backend; expected one of carla, embedded"),
])
def test_check_bounds_the_command_line_numbers_and_the_backend(change, message):
    with pytest.raises(SweepError) as err:
        SweepSpec(scenarios=("highway",), **change).check()
    assert str(err.value).startswith(message)
    SweepSpec(scenarios=("highway",), retries=10, timeout_s=1.0, faithfulness_frames=2, backend="embedded").check()


def test_a_sweep_file_reads_exponent_numbers_as_numbers(tmp_path):
    f = tmp_path / "suite.yaml"
    f.write_text("scenarios: [highway]\nduration_s: 1e1\ntimeout_s: 6e2\nretries: 2e0\n")
    spec = load_sweep_file(f)
    assert (spec.duration_s, spec.timeout_s, spec.retries) == (10.0, 600.0, 2)
    f.write_text("scenarios: [highway\n")
    with pytest.raises(SweepError, match=r"suite.yaml: not valid YAML at line \d+"):
        load_sweep_file(f)


def test_check_names_the_unknown_weather_and_the_missing_model(tmp_path):
    with pytest.raises(SweepError, match="unknown weather 'hail'; known: scenario, clear_noon"):
        SweepSpec(scenarios=("highway",), weathers=("hail",)).check()
    with pytest.raises(SweepError, match="nope.keras' is not a file"):
        SweepSpec(scenarios=("highway",), models=(str(tmp_path / "nope.keras"),)).check()


def test_the_pool_gives_each_server_one_cell_at_a_time():
    servers = parse_servers("127.0.0.1:2000,10.0.0.2:2000,10.0.0.2:3000")
    assert servers[1] == CarlaServer("10.0.0.2", 2000) and servers[2].name == "10.0.0.2:3000"
    pool = SlotPool(servers)
    queue, running, log = list(range(10)), {}, []
    while queue or running:  # run cells; end the oldest running one when no server is free
        server = pool.acquire() if queue else None
        if server is not None:
            assert server not in running.values()
            running[queue.pop(0)] = server
            continue
        cell = min(running)
        log.append((cell, running.pop(cell)))
        pool.release(log[-1][1])
    assert sorted(c for c, _ in log) == list(range(10))
    assert {s for _, s in log} == set(servers) and pool.busy == 0
    with pytest.raises(ValueError):
        pool.release(servers[0])


@pytest.mark.parametrize("text, why", [("host", "not host:port"), ("a:1,a:1", "listed twice"), ("a:0", "not host"),
                                       ("", "no server given")])
def test_bad_server_lists_are_refused(text, why):
    with pytest.raises(SweepError, match=why):
        parse_servers(text)


def test_interval_is_students_t_over_seeds():
    from scipy import stats

    from carla_agent.sweep.compare import interval95

    values = [98.0, 100.0, 91.5, 99.0]
    mean, half = interval95(values)
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=sum(values) / 4, scale=stats.sem(values))
    assert mean == pytest.approx((lo + hi) / 2) and half == pytest.approx((hi - lo) / 2)
    assert math.isnan(interval95([3.0])[1]) and interval95([3.0])[0] == 3.0


def _result(scenario, model, seed, score, autonomy=100.0, offset=0.1, status="done"):
    from carla_agent.sweep.cell import CellResult

    metrics = dict(driving_score=score, autonomy_pct=autonomy, mean_abs_offset_m=offset, interventions=0,
                   route_completion_pct=score)
    return CellResult(Cell(scenario, model, seed), status, f"runs/{scenario}{model}{seed}",
                      metrics if status == "done" else {}, error="" if status == "done" else "boom")


def test_cells_where_b_is_worse_than_a_are_ranked_by_how_much(tmp_path):
    from carla_agent.sweep.compare import regressions, write_compare
    from carla_agent.sweep.table import results_frame

    results = [_result("s", "A", 0, 90), _result("s", "B", 0, 60), _result("s", "A", 1, 90),
               _result("s", "B", 1, 90, autonomy=80), _result("t", "A", 0, 50), _result("t", "B", 0, 70),
               _result("t", "A", 1, 50), _result("t", "B", 1, 50, offset=0.3), _result("u", "B", 0, 1, status="failed")]
    frame = results_frame(results)
    worse = regressions(frame, "A")
    assert [(w["scenario"], w["seed"]) for w in worse] == [("s", 0), ("s", 1), ("t", 1)]
    assert worse[0]["d_score"] == -30 and worse[1]["d_autonomy"] == -20 and worse[2]["d_offset_m"] == pytest.approx(0.2)
    page = write_compare(frame, tmp_path, ["A", "B"]).read_text()
    assert page.count("<tr><td class='num'>") == 3 and "boom" in page and (tmp_path / "compare_driving_score.png").is_file()


def test_the_table_round_trips_through_parquet_and_csv_with_a_failed_cell(tmp_path):
    import pandas as pd

    from carla_agent.sweep.table import write_table

    write_table([_result("s", "A", 0, 90), _result("s", "B", 0, 1, status="failed")], tmp_path)
    for t in (pd.read_parquet(tmp_path / "results.parquet"), pd.read_csv(tmp_path / "results.csv")):
        assert list(t["status"]) == ["done", "failed"] and t["driving_score"].iloc[0] == 90
        assert math.isnan(t["driving_score"].iloc[1]) and t["error"].iloc[1] == "boom"


def test_the_manifest_counts_a_cell_done_only_with_a_complete_log_and_the_same_settings(tmp_path):
    from carla_agent.sweep.manifest import Manifest

    r = _result("s", "A", 0, 90)
    (tmp_path / r.run_dir).mkdir(parents=True)
    meta = tmp_path / r.run_dir / "meta.json"
    meta.write_text(json.dumps({"complete": True}))
    Manifest(tmp_path, {"duration_s": 2}).record(r)
    assert Manifest(tmp_path, {"duration_s": 2}).is_done(r.cell)
    assert not Manifest(tmp_path, {"duration_s": 3}).is_done(r.cell)
    meta.write_text(json.dumps({"complete": False}))
    assert not Manifest(tmp_path, {"duration_s": 2}).is_done(r.cell)
    meta.unlink()
    assert not Manifest(tmp_path, {"duration_s": 2}).is_done(r.cell)


def test_the_progress_bar_in_a_log_writes_done_failed_running_and_eta():
    from carla_agent.sweep.progress import SweepProgress

    stream = io.StringIO()
    with SweepProgress(4, stream=stream) as bar:
        for ok in (True, False, True, True):
            bar.started()
            bar.ended(ok)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4 and "\r" not in stream.getvalue()
    assert lines[0].startswith("sweep:  25% 1/4 cell") and "done 1 failed 0" in lines[0] and "ETA" in lines[0]
    assert "100% 4/4" in lines[-1] and "done 3 failed 1 running 0" in lines[-1]


@pytest.mark.parametrize("args, message", [
    (["--scenarios", "no_such_scenario"], "no_such_scenario"),
    (["--scenarios", "highway", "--seeds", "3-1"], "--seeds: '3-1' is not a seed or a range"),
    (["--scenarios", "highway", "--carla-servers", "127.0.0.1:2000"], "add --backend carla"),
    ([], "give --scenarios"),
])
def test_the_command_line_refuses_a_bad_sweep_with_one_line(args, message, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "carla_agent", "sweep", "--out", str(tmp_path / "o"), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and message in proc.stderr and proc.stderr.count("\n") == 1
    assert not (tmp_path / "o" / "manifest.json").exists()


def test_out_must_be_new_empty_or_this_sweeps_folder_unless_forced(tmp_path):
    from carla_agent.sweep.manifest import Manifest, check_out_dir

    settings = SweepSpec(scenarios=("highway",), duration_s=2.0).settings()
    check_out_dir(tmp_path / "new", settings)
    (tmp_path / "empty").mkdir()
    check_out_dir(tmp_path / "empty", settings)
    other = tmp_path / "precious"
    other.mkdir()
    (other / "thesis.tex").write_text("x")
    with pytest.raises(SweepError) as err:
        check_out_dir(other, settings)
    assert str(err.value).startswith(f"--out {other}: exists, is not empty and is not a sweep folder")
    assert "--force" in str(err.value) and "\n" not in str(err.value)
    check_out_dir(other, settings, force=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(SweepError, match="is a file, not a folder"):
        check_out_dir(tmp_path / "file", settings, force=True)
    # a sweep folder: same settings resume, other settings are refused (naming what differs)
    sweep = tmp_path / "sweep"
    Manifest(sweep, settings).record(_result("highway", "m.keras", 0, 90))
    check_out_dir(sweep, settings)
    longer = SweepSpec(scenarios=("highway",), duration_s=3.0).settings()
    with pytest.raises(SweepError) as err:
        check_out_dir(sweep, longer)
    assert str(err.value).startswith(f"--out {sweep}: holds a sweep with other settings (duration_s 2.0 there, "
                                     f"3.0 now)") and "--force" in str(err.value)
    check_out_dir(sweep, longer, force=True)
    # a manifest written before the top-level settings: its cells' settings count
    data = json.loads((sweep / "manifest.json").read_text())
    del data["settings"]
    (sweep / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(SweepError, match="duration_s 2.0 there, 3.0 now"):
        check_out_dir(sweep, longer)


def test_the_command_line_refuses_another_sweeps_folder_with_one_line_and_resumes_its_own(tmp_path):
    from carla_agent.sweep.manifest import Manifest
    from carla_agent.sweep.run import run_sweep

    spec = SweepSpec(scenarios=("highway",), duration_s=2.0, methods=())
    r = _result("highway", str(DEFAULT_MODEL), 0, 90)
    out = tmp_path / "o"
    (out / r.run_dir).mkdir(parents=True)
    (out / r.run_dir / "meta.json").write_text(json.dumps({"complete": True}))
    Manifest(out, spec.settings()).record(r)
    before = (out / "manifest.json").read_text()
    proc = subprocess.run([sys.executable, "-m", "carla_agent", "sweep", "--scenarios", "highway", "--duration", "3",
                           "--methods", "none", "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"error: --out {out}: holds a sweep with other settings (duration_s 2.0 there, "
                                  f"3.0 now)") and proc.stderr.count("\n") == 1
    assert (out / "manifest.json").read_text() == before
    # the same settings resume: the finished cell is skipped, nothing is driven (so no Ray starts)
    result = run_sweep(spec, out, progress=False)
    assert result.ran == () and result.skipped == (r.cell.cell_id,)
