"""Fuzzing the drive-log reader: damaged logs give a clean one-line error or read what is whole.

* a hypothesis run of 500 damaged logs (files deleted, emptied, made folders, truncated,
  bytes flipped, garbage appended; ``meta.json`` fields set to NaN, infinities, huge
  numbers, text, lists, nulls or deleted, or the whole file a list or text; rows rewritten
  with a valid checksum around a bad value; header names replaced), each read through
  everything replay and the report read (``log_corpus.read_everything``) under a 2 s
  alarm: no traceback, no hang;
* the reliability audit's damaged logs (``log_corpus.AUDIT``), kept as regression tests.

The damages and the audit's cases live in ``tests/log_corpus.py``, which
``tools/reliability_audit.py`` shares.
"""

import json
import math
import signal
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import log_corpus as lc
from carla_agent.errors import CarlaAgentError
from carla_agent.recording.drive_log import DriveLog, DriveLogError

CASE_LIMIT_S = 2.0


class _Hang(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Hang()


def read_within_limit(run: Path):
    """(frames decoded, None) or (None, the clean error); a hang or any other exception fails the test."""
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_LIMIT_S)
    try:
        return lc.read_everything(run), None
    except _Hang:
        pytest.fail(f"reading {run} took more than {CASE_LIMIT_S} s")
    except CarlaAgentError as exc:
        return None, exc
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def assert_clean(err, run: Path):
    msg = str(err)
    assert isinstance(err, DriveLogError), f"{type(err).__name__}: {msg}"
    assert "\n" not in msg and len(msg) < 400, msg
    assert str(run) in msg, msg  # names the file (the run folder or a file in it)


_WORKDIR = Path(tempfile.mkdtemp(prefix="log_fuzz_"))
_TEMPLATE = lc.make_log(_WORKDIR / "template")
_COUNTS = {"cases": 0, "accepted": 0, "errors": 0}

values = st.one_of(st.sampled_from(lc.SPECIALS), st.floats(allow_nan=True, allow_infinity=True),
                   st.integers(min_value=-10 ** 20, max_value=10 ** 20), st.text(max_size=6))
damage = st.tuples(
    st.sampled_from(["delete", "empty", "folder", "truncate", "truncate", "flip", "flip", "flip", "garbage",
                     "meta_set", "meta_set", "meta_set", "meta_del", "meta_whole", "row_set", "row_set", "header"]),
    st.integers(0, 10 ** 6), st.floats(0.0, 1.0), values)


@settings(max_examples=500, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(damages=st.lists(damage, min_size=1, max_size=3))
def test_five_hundred_damaged_logs_read_or_give_one_clean_line(damages):
    run = lc.copy_log(_TEMPLATE, _WORKDIR / "run")
    for d in damages:
        lc.damage(run, *d)
    decoded, err = read_within_limit(run)
    _COUNTS["cases"] += 1
    if err is not None:
        _COUNTS["errors"] += 1
        assert_clean(err, run)
    else:
        _COUNTS["accepted"] += 1
        assert 0 <= decoded <= lc.FRAMES


def test_the_fuzz_run_covered_both_outcomes():
    # Runs after the fuzz test in file order; guards against damage that never bites or always does.
    if _COUNTS["cases"] == 0:
        pytest.skip("run with the fuzz test above")
    assert _COUNTS["cases"] >= 500
    assert _COUNTS["errors"] > 50 and _COUNTS["accepted"] > 50, _COUNTS


@pytest.mark.parametrize("name,damages", lc.AUDIT, ids=[name for name, _ in lc.AUDIT])
def test_audit_case_reads_or_is_one_clean_line(tmp_path, name, damages):
    run = lc.copy_log(_TEMPLATE, tmp_path / "run")
    for d in damages:
        lc.damage(run, *d)
    decoded, err = read_within_limit(run)
    if err is not None:
        assert_clean(err, run)
    else:
        assert decoded < lc.FRAMES or name.startswith(("scenario.yaml", "row sim_time_s", "row steer", "row speed",
                                                               "row collisions", "row interventions", "every row")), \
            f"{name}: every frame decoded from a damaged log"


@pytest.mark.parametrize("field,value", [("dt_s", 0), ("dt_s", math.nan), ("dt_s", -0.05), ("camera_hw", [0, 0]),
                                         ("seed", "3"), ("duration_s", math.inf), ("complete", "yes")])
def test_a_bad_meta_field_is_named_with_its_value_and_range(tmp_path, field, value):
    run = lc.copy_log(_TEMPLATE, tmp_path / "run")
    meta = json.loads((run / "meta.json").read_text())
    meta[field] = value
    (run / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DriveLogError) as info:
        DriveLog.open(run)
    msg = str(info.value)
    assert f"meta.json: field '{field}': expected " in msg and repr(value) in msg and "\n" not in msg


def test_a_whole_log_reads_every_frame():
    assert read_within_limit(lc.copy_log(_TEMPLATE, _WORKDIR / "whole")) == (lc.FRAMES, None)


def test_a_crafted_row_pointing_outside_the_file_names_the_frame(tmp_path):
    run = lc.copy_log(_TEMPLATE, tmp_path / "run")
    lc.damage(run, "row_set", lc.ROW_FIELDS.index("frame_bytes"), 0.5, 10 ** 15)
    log = DriveLog.open(run)
    bad = [p for p in log.check() if "impossible place" in p.what]
    assert len(bad) == 1 and "frames.zst: frame i=" in bad[0].what
    assert len(list(log.iter_frames(on_error="skip"))) == lc.FRAMES - 1


def test_rows_with_a_repeated_or_non_whole_index_are_dropped_not_fatal(tmp_path):
    run = lc.copy_log(_TEMPLATE, tmp_path / "run")
    lc.damage(run, "row_set", lc.ROW_FIELDS.index("i"), 0.5, "0")  # a second row 0
    log = DriveLog.open(run)
    assert len(log) == lc.FRAMES - 1 and len(set(log.indices)) == len(log.indices)
    assert any("'i' must be a new whole number" in p.what for p in log.problems)
