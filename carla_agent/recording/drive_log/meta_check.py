"""Checks of a ``meta.json`` read from disk: every field the package reads, for type, finiteness and range.

A run folder comes from a disk that may have been damaged, edited by hand or written by
another tool, and everything that reads a log (replay, reports, the index, re-simulation)
trusts :attr:`DriveLog.meta <carla_agent.recording.drive_log.reader.DriveLog.meta>`. So
:func:`check_meta` runs when a log is opened and refuses, with one line naming the file,
the field, the value and the allowed range, what would otherwise surface later as a
traceback or a silent nonsense (``dt_s: 0`` divides by zero; a JSON list has no fields).

Fields missing from older logs keep their defaults; unknown fields are left alone (a
newer writer may add some). Limits:

* ``dt_s``: (0, 1] s (the server's and the simulators' bound on a time step);
* ``duration_s``: (0, 86400] s, ``intervention_m``: (0, 100] m;
* ``camera_hw``: two whole numbers in [1, 8192] pixels;
* ``seed``, ``first_frame``, ``frames``, ``dropped_frames``: whole numbers in [0, 2**63);
* ``metrics``: a mapping of names to finite numbers, text, true/false or null.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

from carla_agent.recording.drive_log.format import FORMAT_NAME, READABLE_VERSIONS, DriveLogError

MAX_WHOLE = 2 ** 63 - 1
_JSON_KINDS = {list: "a list", str: "text", type(None): "null", int: "a number", float: "a number", bool: "true/false"}
#: A check returns None when the value is fine, what is allowed when it is not, or, for a field
#: inside a mapping, ``(sub-field, what is allowed, its value)``.
Check = Callable[[Any], Any]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(lo: float, hi: float, lo_open: bool = True, nullable: bool = False) -> Tuple[Check, str]:
    allowed = f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}]" + (" or null" if nullable else "")

    def check(value: Any) -> Optional[str]:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return allowed
        v = float(value) if abs(value) < 1e308 else math.inf
        if not math.isfinite(v) or v > hi or v < lo or (lo_open and v == lo):
            return allowed
        return None
    return check, allowed


def _whole(lo: int = 0, hi: int = MAX_WHOLE, nullable: bool = False) -> Tuple[Check, str]:
    allowed = f"a whole number in [{lo}, {hi}]" + (" or null" if nullable else "")

    def check(value: Any) -> Optional[str]:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            return allowed
        return None
    return check, allowed


def _kind(types: tuple, allowed: str, nullable: bool = True) -> Tuple[Check, str]:
    allowed = allowed + (" or null" if nullable else "")

    def check(value: Any) -> Optional[str]:
        if value is None and nullable:
            return None
        if bool in types:
            ok = isinstance(value, bool)
        else:  # a JSON true is not a number nor text
            ok = isinstance(value, types) and not isinstance(value, bool)
        return None if ok else allowed
    return check, allowed


def _camera_hw() -> Tuple[Check, str]:
    allowed = "[height, width]: two whole numbers in [1, 8192] pixels, or null"

    def check(value: Any) -> Optional[str]:
        if value is None:
            return None
        if not isinstance(value, list) or len(value) != 2 or any(
                isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 8192 for v in value):
            return allowed
        return None
    return check, allowed


def _metrics() -> Tuple[Check, str]:
    allowed = "a mapping of metric names to finite numbers, text, true/false or null; or null"

    def check(value: Any) -> Optional[str]:
        if value is None:
            return None
        if not isinstance(value, dict):
            return allowed
        for name, v in value.items():
            if (isinstance(v, float) and not math.isfinite(v)) or (
                    v is not None and not isinstance(v, (bool, int, float, str))):
                return f"{name}", "a finite number, text, true/false or null", v
        return None
    return check, allowed


def _videos() -> Tuple[Check, str]:
    allowed = "a mapping of video file names to mappings of their settings, or null"

    def check(value: Any) -> Optional[str]:
        if value is None:
            return None
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            return allowed
        if any(not isinstance(v.get("sources") or [], list) for v in value.values()):
            return allowed
        return None
    return check, allowed


def _model() -> Tuple[Check, str]:
    allowed = ("a mapping (path, sha256: text or null; preprocessing: a mapping or null), "
               "or null for the expert")

    def check(value: Any) -> Optional[str]:
        if value is None:
            return None
        if not isinstance(value, dict):
            return allowed
        if any(value.get(k) is not None and not isinstance(value.get(k), str) for k in ("path", "sha256")):
            return allowed
        if "\x00" in (value.get("path") or ""):  # no file system takes it; pathlib would raise
            return "path", "a path without NUL characters", value["path"]
        if value.get("preprocessing") is not None and not isinstance(value["preprocessing"], dict):
            return allowed
        return None
    return check, allowed


def _scalars() -> Tuple[Check, str]:
    allowed = "a mapping of option names to numbers, text, true/false or null"

    def check(value: Any) -> Optional[str]:
        if value is None:
            return None
        if not isinstance(value, dict) or any(v is not None and not isinstance(v, (bool, int, float, str))
                                              for v in value.values()):
            return allowed
        return None
    return check, allowed


def _scenario() -> Tuple[Check, str]:
    # The whole scenario is checked by the scenario schema when a run is re-simulated
    # (scenario_from_meta); here only what reports read without rebuilding it.
    duration, allowed_duration = _number(0.0, 86400.0, nullable=True)
    allowed = f"a mapping of the scenario's fields (duration_s: {allowed_duration})"

    def check(value: Any) -> Optional[str]:
        if value is None:
            return None
        if not isinstance(value, dict):
            return allowed
        if duration(value.get("duration_s")) is not None:
            return "duration_s", allowed_duration, value.get("duration_s")
        return None
    return check, allowed


def _saliency() -> Tuple[Check, str]:
    allowed = "a mapping (method: text, options: a mapping), or null when no map was computed while driving"

    def check(value: Any) -> Optional[str]:
        if value is None:
            return None
        if not isinstance(value, dict) or not isinstance(value.get("method", ""), str) \
                or not isinstance(value.get("options") or {}, dict):
            return allowed
        return None
    return check, allowed


_TEXT = (str,)
_MAPPING = (dict,)
#: Every field read by the package, with its check.
FIELDS: Dict[str, Tuple[Check, str]] = {
    "run_id": _kind(_TEXT, "text"),
    "scenario_name": _kind(_TEXT, "text"),
    "scenario_file": _kind(_TEXT, "a path, as text"),
    "scenario": _scenario(),
    "seed": _whole(),
    "backend": _kind(_TEXT, "a backend name, as text"),
    "server_version": _kind(_TEXT, "text"),
    "backend_options": _scalars(),
    "dt_s": _number(0.0, 1.0),
    "duration_s": _number(0.0, 86400.0, nullable=True),
    "intervention_m": _number(0.0, 100.0, nullable=True),
    "camera_hw": _camera_hw(),
    "model": _model(),
    "agent": _kind(_TEXT, "a class name, as text"),
    "saliency": _saliency(),
    "packages": _kind(_MAPPING, "a mapping of package names to versions"),
    "started_utc": _kind(_TEXT, "an ISO 8601 time, as text"),
    "ended_utc": _kind(_TEXT, "an ISO 8601 time, as text"),
    "first_frame": _whole(),
    "complete": _kind((bool,), "true or false", nullable=False),
    "interrupted": _kind((bool,), "true or false"),
    "frames": _whole(nullable=True),
    "dropped_frames": _whole(nullable=True),
    "metrics": _metrics(),
    "stop_reason": _kind(_TEXT, "text"),
    "videos": _videos(),
    "live_video": _kind(_TEXT, "a file name, as text"),
    "carla_recorder_file": _kind(_TEXT, "a path, as text"),
}


def check_meta(meta: Any, path: Path) -> dict:
    """Check a parsed ``meta.json``; returns it (a dict) when every known field is fine.

    Args:
        meta: what ``json.loads`` gave.
        path: the ``meta.json`` file, for the message.

    Raises:
        DriveLogError: not a drive log (no object, wrong ``format``), an unreadable ``version``,
            or a field of the wrong type, not finite or out of range (one line: file, field,
            value, what is allowed, and the fix).
    """
    if not isinstance(meta, dict):
        raise DriveLogError(f"{path}: expected a JSON object of the run's fields, got {_JSON_KINDS.get(type(meta), type(meta).__name__)}; "
                            "the run folder is damaged (restore meta.json, or record the run again)")
    if meta.get("format") != FORMAT_NAME:
        raise DriveLogError(f"{path}: not a drive log (field 'format' is {_show(meta.get('format'))}, "
                            f"expected {FORMAT_NAME!r})")
    version = meta.get("version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        raise DriveLogError(f"{path}: drive log format version {_show(version)}; this carla_agent "
                            f"reads versions {', '.join(map(str, READABLE_VERSIONS))} (a newer one wrote it?)")
    for name, (check, _allowed) in FIELDS.items():
        if name not in meta:
            continue
        problem = check(meta[name])
        if problem is None:
            continue
        field, value = name, meta[name]
        if isinstance(problem, tuple):
            sub, problem, value = problem
            field = f"{name}.{sub}"
        raise DriveLogError(f"{path}: field '{field}': expected {problem}, got {_show(value)}; "
                            "the run folder is damaged (fix the field by hand, or record the run again)")
    return meta

