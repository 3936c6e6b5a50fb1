"""Quiet by default: no TensorFlow C++ lines on any command, progress without carriage
returns when stderr is not a terminal, ``--quiet`` for no progress at all, ``-v`` for
TensorFlow's lines back."""

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from carla_agent.network.tensorflow_logs import filter_startup_lines, filtered_stderr
from carla_agent.progress import LineProgress, progress_bar

ROOT = Path(__file__).resolve().parent.parent

# What TensorFlow's C++ side prints: a glog/absl record, absl's notice, cpu_feature_guard's second line.
TF_LINE = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\]|absl::InitializeLog|oneDNN|cpu_feature_guard"
                     r"|To enable the following instructions", re.M)

# Captured from ``python -c "import tensorflow"`` (TensorFlow 2.21, TF_CPP_MIN_LOG_LEVEL unset).
STARTUP = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796402902.588575    6081 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders. "
    "To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.\n"
    "I0000 00:00:1796402902.663739    6081 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.\n"
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the "
    "appropriate compiler flags.\n"
)


def env_without_tf_level():
    """The test environment minus conftest's TF_CPP_MIN_LOG_LEVEL: the command's own default is tested."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run(*args, timeout=300):
    # stderr is a pipe here: not a terminal, as in a log or CI.
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env=env_without_tf_level())


@pytest.fixture(scope="module")
def bare_import_is_noisy():
    """Whether a plain ``import tensorflow`` prints C++ lines on this machine (it does on x86 CPUs)."""
    proc = run("-c", "import tensorflow")
    assert proc.returncode == 0, proc.stderr
    return bool(TF_LINE.search(proc.stderr))


def test_drive_headless_prints_no_tensorflow_line_and_no_carriage_return():
    proc = run("-m", "carla_agent", "drive", "--headless", "--duration", "2")
    assert proc.returncode == 0, proc.stderr
    assert "driving score" in proc.stdout
    assert not TF_LINE.search(proc.stderr), proc.stderr
    assert "\r" not in proc.stderr
    # The progress bar still reports, as whole lines: the last one at 100 %.
    lines = proc.stderr.splitlines()
    assert 1 <= len(lines) <= 5, proc.stderr
    assert re.search(r"gentle_curves: 100% 2\.0/2\.0 sim s", lines[-1]), proc.stderr


def test_record_prints_no_tensorflow_line_and_no_carriage_return(tmp_path):
    proc = run("-m", "carla_agent", "record", "--scenarios", "gentle_curves", "--duration", "1",
               "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "index:" in proc.stdout
    assert not TF_LINE.search(proc.stderr), proc.stderr
    assert "\r" not in proc.stderr
    assert re.search(r"^video attention\.mp4: 100% \d+/\d+ frame", proc.stderr, re.M), proc.stderr


def test_quiet_drive_prints_nothing_on_stderr():
    proc = run("-m", "carla_agent", "drive", "--headless", "--duration", "1", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_verbose_brings_tensorflows_lines_back(bare_import_is_noisy):
    if not bare_import_is_noisy:
        pytest.skip("this TensorFlow prints no start-up lines here; nothing to bring back")
    proc = run("-m", "carla_agent", "drive", "-v", "--headless", "--duration", "1", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^[IWEF]\d{4} .*\] ", proc.stderr, re.M), proc.stderr
    assert "INFO carla_agent" in proc.stderr  # and the package's own INFO logging


def test_filter_keeps_what_is_not_tensorflows_startup():
    warning = "/x/y.py:3: UserWarning: something the user should see\n"
    error = "E0000 00:00:1.0    1 foo.cc:1] a real error\n"
    kept = filter_startup_lines(STARTUP + warning + error, level=2)
    assert kept == [warning, error]
    assert filter_startup_lines(STARTUP + error, level=3) == []
    assert "".join(filter_startup_lines(STARTUP, level=0)) == STARTUP  # 0 shows everything


def test_filtered_stderr_works_on_the_file_descriptor(capfd):
    with filtered_stderr(level=2):
        os.write(2, STARTUP.encode())  # as the C++ libraries write: below sys.stderr
        sys.stderr.write("python says hello\n")
    err = capfd.readouterr().err
    assert err == "python says hello\n"


def test_line_progress_writes_a_few_whole_lines():
    stream = io.StringIO()
    with progress_bar(200, "collect", unit="frame", stream=stream) as bar:
        assert isinstance(bar, LineProgress)
        for _ in range(200):
            bar.update(1)
    text = stream.getvalue()
    assert "\r" not in text
    assert [line.split(" [")[0] for line in text.splitlines()] == [
        "collect:  25% 50/200 frame", "collect:  50% 100/200 frame", "collect:  75% 150/200 frame",
        "collect: 100% 200/200 frame"]


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_terminal_gets_an_animated_bar_and_quiet_gets_nothing():
    tty = FakeTerminal()
    with progress_bar(10, "video", stream=tty) as bar:
        assert not isinstance(bar, LineProgress)
        for _ in range(10):
            bar.update(1)
    assert "\r" in tty.getvalue()
    silent = io.StringIO()
    with progress_bar(10, "video", enabled=False, stream=silent) as bar:
        bar.update(10)
    assert silent.getvalue() == ""
