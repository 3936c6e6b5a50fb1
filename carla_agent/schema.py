"""Build frozen dataclasses from YAML mappings, with errors that say how to fix them.

Each dataclass field may carry ``metadata={"help": ..., "min": ..., "max": ...,
"choices": (...)}``. Unknown keys are rejected. Error messages name the file
and the dotted field, e.g.::

    scenarios/fog.yaml: field 'road.lanes.width_m': expected a number >= 2.0, got 'wide'

Numbers must be finite: NaN and infinities are refused for every numeric field,
whatever its range.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from carla_agent.errors import ScenarioError


def build(cls, data: Any, source: str, path: str = ""):
    """Build ``cls`` (a dataclass) from ``data`` (a mapping), validating every field."""
    where = f"{source}: field '{path}'" if path else source
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: expected a mapping of {_field_list(cls)}, got {type(data).__name__}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(map(str, data)) - names)
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(names))}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if not f.init or f.name not in data:
            continue
        sub = f"{path}.{f.name}" if path else f.name
        kwargs[f.name] = _convert(hints[f.name], data[f.name], source, sub, f.metadata)
    try:
        return cls(**kwargs)
    except ScenarioError:
        raise
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f"{where}: {exc}") from None


def _field_list(cls) -> str:
    return ", ".join(f.name for f in dataclasses.fields(cls) if f.init)


def _convert(tp, value: Any, source: str, path: str, meta) -> Any:
    where = f"{source}: field '{path}'"
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            if type(None) in get_args(tp):
                return None
            raise ScenarioError(f"{where}: must not be empty")
        errors = []
        for arg in args:
            try:
                return _convert(arg, value, source, path, meta)
            except ScenarioError as exc:
                errors.append(str(exc))
        raise ScenarioError(errors[-1])
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ScenarioError(f"{where}: {_show(value)} is not one of {', '.join(map(str, choices))}")
        return value
    if origin in (tuple, typing.Tuple):
        args = get_args(tp)
        if not isinstance(value, (list, tuple)):
            value = [value] if (args and args[-1] is Ellipsis) else value
        if not isinstance(value, (list, tuple)):
            raise ScenarioError(f"{where}: expected a list, got {_show(value)}")
        if args and args[-1] is Ellipsis:
            return tuple(_convert(args[0], v, source, f"{path}[{i}]", meta) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ScenarioError(f"{where}: expected a list of {len(args)} values, got {len(value)}")
        return tuple(_convert(a, v, source, f"{path}[{i}]", meta) for i, (a, v) in enumerate(zip(args, value)))
    if dataclasses.is_dataclass(tp):
        return build(tp, value, source, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise ScenarioError(f"{where}: expected true or false, got {_show(value)}")
        return value
    if tp in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ScenarioError(f"{where}: expected a number{_range(meta)}, got {_show(value)}")
        try:
            number = float(value)
        except OverflowError:  # an int with hundreds of digits
            number = math.inf
        # NaN compares false with every bound, so it must be refused before the range check.
        if not math.isfinite(number):
            raise ScenarioError(f"{where}: {_show(value)} is not a finite number; expected a number{_range(meta)}")
        if tp is int and number != int(value):
            raise ScenarioError(f"{where}: expected a whole number{_range(meta)}, got {_show(value)}")
        value = tp(value)
        lo, hi = meta.get("min"), meta.get("max")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ScenarioError(f"{where}: {_show(value)} is out of range; expected a number{_range(meta)}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ScenarioError(f"{where}: expected text, got {_show(value)}")
        choices = meta.get("choices")
        if choices and value not in choices:
            raise ScenarioError(f"{where}: {_show(value)} is not one of {', '.join(choices)}")
        return value
    if tp is dict or get_origin(tp) is dict:
        if not isinstance(value, dict):
            raise ScenarioError(f"{where}: expected a mapping, got {_show(value)}")
        return dict(value)
    raise TypeError(f"schema: unsupported type {tp} at {path}")


def _show(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, so one bad value keeps the error to one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _range(meta) -> str:
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and hi is not None:
        return f" in [{lo}, {hi}]"
    if lo is not None:
        return f" >= {lo}"
    if hi is not None:
        return f" <= {hi}"
    return ""


def field(default: Any = dataclasses.MISSING, *, help: str = "", min: float | None = None,
          max: float | None = None, choices: tuple | None = None, default_factory: Any = dataclasses.MISSING):
    """A dataclass field with validation metadata."""
    meta = {"help": help, "min": min, "max": max, "choices": choices}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)
