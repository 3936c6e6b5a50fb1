"""``rows.csv``: one line per frame, its last field a CRC-32 of the rest; written and checked here."""

from __future__ import annotations

import csv
import io
import math
import zlib
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from carla_agent.recording.drive_log.format import BASE_COLUMNS, CRC_COLUMN, DriveLogError, LogProblem


def _num(value: Optional[float]) -> Any:
    """A float for the CSV: exact repr, empty for None/NaN."""
    if value is None:
        return ""
    value = float(value)
    return "" if not math.isfinite(value) else value


def make_row(i: int, record: Any, wall_time_s: float) -> Dict[str, Any]:
    """One CSV row (without model outputs) from a runner :class:`~carla_agent.drive.runner.StepRecord`.

    Floats keep their exact ``repr`` in the file, so controls read back bit-identical.
    """
    obs, decision, control = record.obs, record.decision, record.control
    truth, pose = obs.truth, obs.pose
    return {
        "i": i, "frame": obs.frame, "sim_time_s": obs.sim_time_s, "wall_time_s": round(wall_time_s, 4),
        "predicted_steer": _num(decision.predicted_steer), "predicted_throttle": _num(decision.predicted_throttle),
        "agent_steer": decision.control.steer,
        "steer": control.steer, "throttle": control.throttle, "brake": control.brake,
        "hand_brake": int(control.hand_brake), "reverse": int(control.reverse),
        "overridden": int(record.taken_over),
        "expert_steer": _num(truth.expert_steer), "speed_mps": obs.speed_mps,
        "x_m": pose.x_m, "y_m": pose.y_m, "z_m": pose.z_m, "yaw_deg": pose.yaw_deg,
        "pitch_deg": pose.pitch_deg, "roll_deg": pose.roll_deg,
        "lateral_offset_m": truth.lateral_offset_m, "heading_error_rad": truth.heading_error_rad,
        "route_s_m": truth.route_s_m, "route_length_m": truth.route_length_m, "lane_width_m": truth.lane_width_m,
        "lead_distance_m": _num(truth.lead_distance_m), "lead_speed_mps": _num(truth.lead_speed_mps),
        "interventions": record.interventions, "autonomy_pct": _num(record.autonomy_pct),
        "sim_fps": round(float(record.sim_fps), 2),
        "collisions": len(obs.collisions),
        "collision_with": ";".join(f"{c.other_kind}:{c.other}" for c in obs.collisions),
        "collision_impulse_ns": _num(sum(c.impulse_ns for c in obs.collisions)),
        "lane_invasions": len(obs.lane_invasions),
        "lane_markings": ";".join(m for ev in obs.lane_invasions for m in ev.markings),
        "weather": obs.weather, "done": int(bool(obs.done)), "command": int(obs.command),
    }


def output_columns(names: Sequence[str]) -> List[str]:
    """CSV column names of the model outputs: ``out_<name>``."""
    return [f"out_{n}" for n in names]


def _format_line(values: Sequence[Any]) -> str:
    """CSV text of ``values`` plus the CRC-32 field, ending in a newline."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(values)
    body = buf.getvalue()
    return f"{body},{zlib.crc32(body.encode('utf-8'))}\n"


def _header_line(columns: Sequence[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([*columns, CRC_COLUMN])
    return buf.getvalue() + "\n"


#: Columns holding text; every other column is read as numbers (a value that is not one reads as NaN).
TEXT_COLUMNS = ("collision_with", "lane_markings", "weather")
#: Largest row index a log may hold (a day at 1 kHz): a bigger ``i`` is a damaged row.
MAX_ROW_INDEX = 10 ** 8


def _read_rows(path: Path, required: Sequence[str] = ()):
    """Parse ``rows.csv``, checking each line's field count and CRC. Returns (DataFrame, problems).

    Args:
        path: the file; a missing one reads as no rows.
        required: columns the header must hold (those the reader relies on).

    Raises:
        DriveLogError: the file cannot be read, or its header line is damaged or lacks a required column.
    """
    import pandas as pd

    problems: List[LogProblem] = []
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raw = b""
    except OSError as exc:
        raise DriveLogError(f"{path}: cannot be read ({exc}); the run folder is damaged") from None
    text = raw.decode("utf-8", errors="replace")
    lines = text.split("\n")
    torn_tail = bool(lines and lines[-1] != "")
    if not torn_tail:
        lines = lines[:-1]
    if not lines:
        return pd.DataFrame(columns=list(BASE_COLUMNS)), problems
    header = _fields(lines[0]) or []
    if not header or header[0] != "i" or header[-1] != CRC_COLUMN or len(set(header)) != len(header):
        raise DriveLogError(f"{path}: the header line is corrupt; expected columns i, frame, ... {CRC_COLUMN} "
                            "(the run folder is damaged)")
    missing = [c for c in required if c not in header]
    if missing:
        raise DriveLogError(f"{path}: the header line lacks column(s) {', '.join(missing[:5])}; the run folder "
                            "is damaged (the header has no checksum: restore the names by hand)")
    good = [lines[0]]
    last_i = -1
    for lineno, line in enumerate(lines[1:], start=2):
        is_tail = torn_tail and lineno == len(lines)
        guess = last_i + 1
        body, _, crc = line.rpartition(",")
        fields = _fields(body) if body else []
        try:
            guess = int(fields[0])
        except (ValueError, IndexError, TypeError):
            pass
        problem = None
        if is_tail:
            problem = "row is torn (the writer stopped while writing it)"
        elif fields is None:
            problem = f"row is corrupt (line {lineno}: not CSV)"
        elif len(fields) + 1 != len(header):
            problem = f"row is corrupt (line {lineno}: {len(fields) + 1} fields, expected {len(header)})"
        elif not (crc.isascii() and crc.isdigit() and len(crc) <= 10) or zlib.crc32(body.encode("utf-8")) != int(crc):
            problem = f"row is corrupt (line {lineno}: checksum mismatch)"
        if problem is not None:
            problems.append(LogProblem(guess, f"frame i={guess}: {problem}; the other rows still read"))
            last_i = guess
            continue
        last_i = guess
        good.append(line)
    try:
        frame = pd.read_csv(io.StringIO("\n".join(good) + "\n"))
    except (ValueError, csv.Error) as exc:  # pandas' ParserError is a ValueError
        raise DriveLogError(f"{path}: cannot be parsed ({str(exc).splitlines()[0] if str(exc) else exc}); "
                            "the run folder is damaged") from None
    frame = frame.drop(columns=[CRC_COLUMN])
    for column in frame.columns:
        if column not in TEXT_COLUMNS:
            frame[column] = _numeric(frame[column])
    frame, bad = _valid_indices(frame)
    problems += bad
    frame.index = frame["i"].to_numpy(dtype="int64")
    frame["i"] = frame.index
    return frame, problems


def _numeric(column):
    """A column as numbers; what is not a finite number becomes NaN (the writer never writes an
    infinity: it writes an empty cell), a number too large for a float too."""
    import numpy as np
    import pandas as pd

    try:
        out = pd.to_numeric(column, errors="coerce")
    except OverflowError:  # pandas coerces text, not a 400-digit integer
        def one(value: Any) -> float:
            try:
                return float(value)
            except (TypeError, ValueError, OverflowError):
                return math.nan
        out = column.map(one).astype(float)
    if out.dtype.kind == "f":
        out = out.where(np.isfinite(out))
    return out


def _fields(line: str) -> Optional[List[str]]:
    """The CSV fields of one line; None when it is not CSV (a stray carriage return, say)."""
    try:
        return next(csv.reader([line]), [])
    except csv.Error:
        return None


def _valid_indices(frame):
    """Drop rows whose ``i`` is not a whole number in [0, MAX_ROW_INDEX] or repeats an earlier one
    (only a row crafted with a matching checksum gets here)."""
    i = frame["i"]
    whole = i.notna() & (i >= 0) & (i <= MAX_ROW_INDEX) & (i == i.round())
    keep = whole & ~i.where(whole).duplicated()
    problems = [LogProblem(None, f"row {n} (i={v!r}) is corrupt: 'i' must be a new whole number; skipped")
                for n, v in zip(frame.index[~keep], i[~keep])]
    return frame[keep].copy(), problems
