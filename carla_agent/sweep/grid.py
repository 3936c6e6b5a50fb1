"""The sweep's grid: scenarios x models x seeds x weathers, from the command line or a YAML file.

A :class:`Cell` is one drive: one scenario, one model file, one seed, one weather
preset (or the scenario's own). :class:`SweepSpec` holds the axes and the settings
every cell shares (time limit, video methods, faithfulness, retries); :meth:`SweepSpec.cells`
expands them in a fixed order (scenario, model, weather, seed), so that two runs of the
same sweep list the same cells with the same ids.

A sweep file (``--file suite.yaml``) has the same keys as the options::

    scenarios: [gentle_curves, s_curve_fog]     # names, YAML paths, or "all"
    models: [carla_agent/models/pilotnet.keras, other.h5]
    seeds: "0-4"                                # or [0, 1, 2], or "0,3,7"
    weathers: [scenario, night_rain]            # "scenario" keeps the scenario's own
    duration_s: 20
    methods: [visual_backprop]                  # attention videos; [] for none
    faithfulness: [visual_backprop, gradcam]    # optional measures per cell
    retries: 1
    timeout_s: 600

Relative paths in a sweep file are read from the file's folder.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from carla_agent.errors import CarlaAgentError
from carla_agent.resources import DEFAULT_MODEL
from carla_agent.yaml_load import load_yaml_text

#: The weather axis value that keeps each scenario's own weather.
SCENARIO_WEATHER = "scenario"
#: Keys a sweep file may have.
FILE_KEYS = ("scenarios", "models", "seeds", "weathers", "duration_s", "methods", "faithfulness",
             "faithfulness_frames", "retries", "timeout_s", "backend")
#: Seeds above this are refused (the simulator takes 32-bit seeds).
MAX_SEED = 2 ** 31 - 1
#: A grid larger than this is refused (a typo such as seeds "0-100000").
MAX_CELLS = 100_000
#: The numeric settings: (type, low, high); a float's low end is excluded, an int's included.
NUMBER_FIELDS = {
    "duration_s": (float, 0.0, 86400.0),       # [s] simulated time per drive, up to a day
    "timeout_s": (float, 0.0, 7 * 86400.0),    # [s] wall clock per attempt, up to a week
    "retries": (int, 0, 10),                   # extra attempts per cell
    "faithfulness_frames": (int, 2, 1000),     # frames per cell for the faithfulness measures
}


def check_number(key: str, value: Any, source: str = "sweep") -> float | int:
    """``value`` of the numeric setting ``key``, checked against :data:`NUMBER_FIELDS` (finite, in range,
    whole for an int) and converted to its type.

    Raises:
        SweepError: ``"SOURCE: field 'KEY': VALUE ...; expected ... in RANGE"``, one line.
    """
    kind, lo, hi = NUMBER_FIELDS[key]
    allowed = f"a whole number in [{lo}, {hi}]" if kind is int else f"a number in ({lo:g}, {hi:g}]"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SweepError(f"{source}: field '{key}': expected {allowed}, got {value!r}")
    if not math.isfinite(value):
        raise SweepError(f"{source}: field '{key}': {value!r} is not a finite number; expected {allowed}")
    if kind is int and value != int(value):
        raise SweepError(f"{source}: field '{key}': {value!r} is not a whole number; expected {allowed}")
    if not ((lo <= value <= hi) if kind is int else (lo < value <= hi)):
        raise SweepError(f"{source}: field '{key}': {value!r} is out of range; expected {allowed}")
    return kind(value)


def check_backend(value: Any, source: str = "sweep") -> str:
    """``value`` if it names a registered simulator backend.

    Raises:
        SweepError: naming ``source``, the field, the value and the known backends.
    """
    from carla_agent.sim.simulator import BACKENDS

    if not isinstance(value, str) or value not in BACKENDS:
        raise SweepError(f"{source}: field 'backend': {value!r} is not a backend; expected one of "
                         f"{', '.join(BACKENDS.names())}")
    return value


class SweepError(CarlaAgentError):
    """A sweep's grid, file or options are wrong."""


@dataclass(frozen=True)
class Cell:
    """One drive of a sweep.

    Attributes:
        scenario: a shipped scenario name or a scenario YAML path, as given.
        model: the model file (``.keras`` / ``.h5``), as given.
        seed: episode seed, in [0, 2**31 - 1].
        weather: a weather preset name, or ``"scenario"`` for the scenario's own.
    """

    scenario: str
    model: str
    seed: int
    weather: str = SCENARIO_WEATHER

    @property
    def cell_id(self) -> str:
        """A folder-safe id, the manifest's key: ``gentle_curves__pilotnet.keras__clear_noon__s3``.

        A path's file name stands for it; when two paths share a file name a short hash of the
        whole path tells them apart (:meth:`SweepSpec.cells` refuses a clash it cannot resolve)."""
        return "__".join((_slug(self.scenario), _slug(self.model), self.weather, f"s{self.seed}"))

    def to_dict(self) -> dict:
        return asdict(self)


def _slug(text: str) -> str:
    name = Path(text).name if ("/" in text or "\\" in text) else text
    if name.endswith((".yaml", ".yml")):
        name = name.rsplit(".", 1)[0]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "x"
    if safe != os.path.normpath(text):  # a path: the name alone could clash with another folder's file of the same name
        safe += "-" + hashlib.sha1(os.path.normpath(text).encode()).hexdigest()[:6]  # ./m.keras == m.keras
    return safe


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: its axes and what every cell shares.

    Attributes:
        scenarios: scenario names or YAML paths (``all``: every shipped scenario).
        models: model files.
        seeds: episode seeds.
        weathers: weather presets, ``scenario`` for each scenario's own.
        duration_s: [s] simulated time limit per drive (None: each scenario's own).
        methods: saliency methods of each cell's attention video (empty: no video, no report).
        faithfulness: saliency methods whose faithfulness is measured on each cell's frames.
        faithfulness_frames: frames per cell for those measures.
        retries: extra attempts for a cell that crashes or times out.
        timeout_s: [s] wall-clock limit of one attempt.
        backend: ``embedded`` or ``carla`` (None: each scenario's own).
    """

    scenarios: Tuple[str, ...]
    models: Tuple[str, ...] = (str(DEFAULT_MODEL),)
    seeds: Tuple[int, ...] = (0,)
    weathers: Tuple[str, ...] = (SCENARIO_WEATHER,)
    duration_s: Optional[float] = None
    methods: Tuple[str, ...] = ("visual_backprop",)
    faithfulness: Tuple[str, ...] = ()
    faithfulness_frames: int = 32
    retries: int = 1
    timeout_s: float = 1800.0
    backend: Optional[str] = None
    tf_threads: int = field(default=1)

    def cells(self) -> List[Cell]:
        """Every cell, in order: scenario, model, weather, seed."""
        cells = [Cell(s, m, seed, w) for s in self.scenarios for m in self.models for w in self.weathers
                 for seed in self.seeds]
        seen: Dict[str, Cell] = {}
        for c in cells:
            if c.cell_id in seen and seen[c.cell_id] != c:
                raise SweepError(f"cells {seen[c.cell_id]} and {c} share the id {c.cell_id}; give the "
                                 f"scenarios or models different file names")
            seen[c.cell_id] = c
        return list(seen.values())

    def settings(self) -> dict:
        """What a finished cell must have been run with to count as done on a rerun."""
        return {"duration_s": self.duration_s, "methods": list(self.methods),
                "faithfulness": list(self.faithfulness), "faithfulness_frames": self.faithfulness_frames,
                "backend": self.backend}

    def check(self) -> "SweepSpec":
        """Every name and file checked before any driving; returns self.

        Raises:
            SweepError / ScenarioError / UnknownNameError: an empty axis, a missing model file,
                an unknown scenario, weather or method, a bad number.
        """
        from carla_agent.sim.scenario import WEATHER_PRESETS, load_scenario
        from carla_agent.recording.batch import check_methods

        for name, axis in (("scenarios", self.scenarios), ("models", self.models), ("seeds", self.seeds),
                           ("weathers", self.weathers)):
            if not axis:
                raise SweepError(f"sweep: '{name}' is empty; give at least one")
        for sc in self.scenarios:
            load_scenario(sc)
        for m in self.models:
            if not Path(m).is_file():
                raise SweepError(f"sweep: model {m!r} is not a file; pass .keras or .h5 files to --models")
        for w in self.weathers:
            if w != SCENARIO_WEATHER and w not in WEATHER_PRESETS:
                raise SweepError(f"sweep: unknown weather {w!r}; known: {SCENARIO_WEATHER}, "
                                 f"{', '.join(WEATHER_PRESETS)}")
        check_methods(self.methods)
        check_methods(self.faithfulness)
        for key in NUMBER_FIELDS:
            if getattr(self, key) is not None:  # duration_s None: each scenario's own
                check_number(key, getattr(self, key))
        if self.backend is not None:
            check_backend(self.backend)
        if len(self.scenarios) * len(self.models) * len(self.seeds) * len(self.weathers) > MAX_CELLS:
            raise SweepError(f"sweep: more than {MAX_CELLS} cells; split the grid")
        self.cells()
        return self


def parse_seeds(value: Any, source: str = "--seeds") -> Tuple[int, ...]:
    """Seeds from ``"0,1"``, ``"0-4"`` (both ends included), ``"0-4,9"``, an int or a list of ints.

    Raises:
        SweepError: naming ``source`` and the value.
    """
    if isinstance(value, bool):
        raise SweepError(f"{source}: expected seeds like 0-4 or 0,1,2, got {value!r}")
    if isinstance(value, int):
        value = [value]
    if isinstance(value, (list, tuple)):
        parts = [str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in value]
    else:
        parts = [p.strip() for p in str(value).split(",") if p.strip()]
    seeds: List[int] = []
    for part in parts:
        m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise SweepError(f"{source}: {part!r} is not a seed or a range; expected e.g. 0-4 or 0,1,2")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi > MAX_SEED or hi - lo >= MAX_CELLS:
            raise SweepError(f"{source}: {part!r}: seeds must be in [0, {MAX_SEED}] and ranges under {MAX_CELLS}")
        seeds += [s for s in range(lo, hi + 1) if s not in seeds]
    if not seeds:
        raise SweepError(f"{source}: no seeds in {value!r}; expected e.g. 0-4 or 0,1,2")
    return tuple(seeds)


def parse_scenarios(names: Sequence[str]) -> Tuple[str, ...]:
    """``all`` becomes every shipped scenario; everything else is kept as given."""
    out: List[str] = []
    for n in names:
        if n == "all":
            from carla_agent.sim.scenario import shipped_scenarios

            out += [s for s in shipped_scenarios().names() if s not in out]
        elif n not in out:
            out.append(n)
    return tuple(out)


def _names(value: Any, key: str, source: str) -> Tuple[str, ...]:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise SweepError(f"{source}: field '{key}': expected a list of names or a comma-separated string, "
                     f"got {value!r}")


def load_sweep_file(path: str | Path, **overrides: Any) -> SweepSpec:
    """A :class:`SweepSpec` from a YAML sweep file; ``overrides`` (not None) win over its keys.

    Raises:
        SweepError: a missing or malformed file, an unknown key, a value of the wrong type.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SweepError(f"{p}: cannot read the sweep file ({exc.strerror}); check --file") from None
    except UnicodeDecodeError as exc:
        raise SweepError(f"{p}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    data = load_yaml_text(text, str(p), SweepError)
    if not isinstance(data, dict):
        raise SweepError(f"{p}: a sweep file is a mapping with keys {', '.join(FILE_KEYS)}")
    unknown = sorted(set(data) - set(FILE_KEYS))
    if unknown:
        raise SweepError(f"{p}: field '{unknown[0]}' is unknown; known: {', '.join(FILE_KEYS)}")

    def rel(v: str) -> str:
        q = Path(v)
        looks_like_path = v.endswith((".yaml", ".yml", ".keras", ".h5", ".hdf5")) or "/" in v
        return str(p.parent / q) if looks_like_path and not q.is_absolute() else v

    kw: Dict[str, Any] = {}
    if "scenarios" in data:
        kw["scenarios"] = parse_scenarios([rel(s) for s in _names(data["scenarios"], "scenarios", str(p))])
    if "models" in data:
        kw["models"] = tuple(rel(m) for m in _names(data["models"], "models", str(p)))
    if "seeds" in data:
        kw["seeds"] = parse_seeds(data["seeds"], f"{p}: field 'seeds'")
    for key in ("weathers", "methods", "faithfulness"):
        if key in data:
            kw[key] = _names(data[key] if data[key] is not None else [], key, str(p))
    for key in NUMBER_FIELDS:
        if key in data and data[key] is not None:
            kw[key] = check_number(key, data[key], str(p))
    if data.get("backend") is not None:
        kw["backend"] = check_backend(data["backend"], str(p))
    kw.update({k: v for k, v in overrides.items() if v is not None})
    if "scenarios" not in kw:
        raise SweepError(f"{p}: field 'scenarios' is missing; add e.g. scenarios: [gentle_curves]")
    return SweepSpec(**kw)


def with_axes(spec: SweepSpec, **axes: Any) -> SweepSpec:
    """``spec`` with some fields replaced (those given and not None)."""
    return replace(spec, **{k: v for k, v in axes.items() if v is not None})


__all__ = ["Cell", "FILE_KEYS", "NUMBER_FIELDS", "check_backend", "check_number", "SCENARIO_WEATHER", "SweepError", "SweepSpec", "load_sweep_file", "parse_scenarios",
           "parse_seeds", "with_axes"]
