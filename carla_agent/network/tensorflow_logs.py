"""TensorFlow's C++ start-up lines, silenced: :func:`quiet_tensorflow_import`.

Importing TensorFlow 2.21 on a CPU prints, on file descriptor 2::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1796402869.464969    5500 port.cc:153] oneDNN custom operations are on. ...

twice (``libtensorflow_framework.so.2`` and the profiler plugin each carry the
message), and a ``cpu_feature_guard.cc`` line with its continuation. Why
``TF_CPP_MIN_LOG_LEVEL`` does not stop the first two: they are logged through absl
from a static initializer while the shared library loads, before anything has
called ``absl::InitializeLog()``; until then absl writes every message to stderr,
and absl has no environment variable for a threshold (tried: ``TF_CPP_MIN_LOG_LEVEL=3``
still shows them). ``cpu_feature_guard`` runs later, through TensorFlow's own
filter, and does obey the variable, if it is set before the import.

So the only handle on those lines is the file descriptor: while ``tensorflow``
executes its import, fd 2 points at a temporary file; afterwards every captured
line is written back to stderr except TensorFlow's log records below
``TF_CPP_MIN_LOG_LEVEL`` (0 info, 1 warning, 2 error, 3 fatal: the variable's own
meaning) and absl's "before InitializeLog" notice. Anything else (a Python
warning, an error, a line from another library) is replayed as it was. oneDNN
stays on (``TF_ENABLE_ONEDNN_OPTS`` is not touched): the numerics do not change.

The hook is a :data:`sys.meta_path` finder, so it covers whichever module imports
TensorFlow first (``keras`` does too), not one call site. It is installed by the
command line; a program of its own can call :func:`quiet_tensorflow_import` before
its first TensorFlow or Keras import.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile
from contextlib import contextmanager
from typing import Iterator, List

LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"

# glog/absl record header: severity letter, MMDD, time, thread id, file:line]
_RECORD = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ [^\s\]]+:\d+\] ")
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
_ABSL_NOTICE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# The second line of cpu_feature_guard's info record (it has no header of its own).
_CONTINUATIONS = ("To enable the following instructions:",)


def min_log_level() -> int:
    """``TF_CPP_MIN_LOG_LEVEL`` as an int in [0, 3]; 0 (TensorFlow's default) when unset or not a number."""
    try:
        return max(0, min(3, int(os.environ.get(LEVEL_ENV, "0"))))
    except ValueError:
        return 0


def filter_startup_lines(text: str, level: int) -> List[str]:
    """The lines of captured stderr ``text`` to show at ``TF_CPP_MIN_LOG_LEVEL=level``.

    Drops TensorFlow's log records less severe than ``level`` (with their known
    continuation lines) and, when ``level`` >= 1, absl's notice; keeps every other
    line, newline included.
    """
    kept: List[str] = []
    dropping = False
    for line in text.splitlines(keepends=True):
        record = _RECORD.match(line)
        if record:
            dropping = _SEVERITY[record.group(1)] < level
        elif line.startswith(_ABSL_NOTICE):
            dropping = level >= 1
        elif not (dropping and line.startswith(_CONTINUATIONS)):
            dropping = False
        if not dropping:
            kept.append(line)
    return kept


@contextmanager
def filtered_stderr(level: int) -> Iterator[None]:
    """Send file descriptor 2 to a temporary file, then replay what :func:`filter_startup_lines` keeps.

    Works on the descriptor, not on :data:`sys.stderr`, because the C++ libraries
    write to it directly. Python's own writes in between are captured as well and
    replayed in order.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to redirect: nothing would show anyway
        saved = None
    if saved is None or sys.stderr is None:  # pythonw: no sys.stderr to replay into
        if saved is not None:
            os.close(saved)
        yield
        return
    with tempfile.TemporaryFile() as capture:
        sys.stderr.flush()
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            kept = filter_startup_lines(text, level)
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    """Runs the wrapped loader's ``exec_module`` inside :func:`filtered_stderr`, once."""

    def __init__(self, loader, finder: "_QuietTensorFlowFinder") -> None:
        self._loader = loader
        self._finder = finder

    def __getattr__(self, name):  # get_resource_reader, is_package, ...: the real loader's
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        try:
            with filtered_stderr(self._finder.level):
                self._loader.exec_module(module)
        finally:
            # The module keeps the real loader; the finder has done its one job.
            module.__loader__ = self._loader
            if getattr(module, "__spec__", None) is not None:
                module.__spec__.loader = self._loader
            if self._finder in sys.meta_path:
                sys.meta_path.remove(self._finder)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` through the other finders and wraps its loader in :class:`_QuietLoader`."""

    def __init__(self, level: int) -> None:
        self.level = level
        self._busy = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow" or self._busy:
            return None
        self._busy = True  # importlib.util.find_spec below asks the meta path again, us included
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._busy = False
        if spec is None or spec.loader is None:
            return None
        spec.loader = _QuietLoader(spec.loader, self)
        return spec


def quiet_tensorflow_import(level: int | None = None) -> bool:
    """Make the first ``import tensorflow`` (direct, or through Keras) hide its C++ start-up lines.

    Sets ``TF_CPP_MIN_LOG_LEVEL`` to ``level`` when the environment has no value
    (TensorFlow reads it for the lines that come later), and installs the import
    hook described in the module docstring. Imports nothing itself.

    Args:
        level: the threshold when ``TF_CPP_MIN_LOG_LEVEL`` is unset (2: errors only);
            a value in the environment wins.

    Returns:
        True when the hook is in place; False when there is nothing to hide
        (TensorFlow already imported, or the threshold is 0).
    """
    if level is not None:
        os.environ.setdefault(LEVEL_ENV, str(int(level)))
    effective = min_log_level()
    if "tensorflow" in sys.modules or effective == 0:
        return False
    for finder in sys.meta_path:
        if isinstance(finder, _QuietTensorFlowFinder):
            finder.level = effective
            return True
    sys.meta_path.insert(0, _QuietTensorFlowFinder(effective))
    return True


__all__ = ["LEVEL_ENV", "filter_startup_lines", "filtered_stderr", "min_log_level", "quiet_tensorflow_import"]
