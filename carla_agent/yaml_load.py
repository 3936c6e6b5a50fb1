"""One YAML reader for every input file (scenarios, towns, sweeps).

PyYAML follows YAML 1.1, where ``1e3`` and ``5e1`` (no dot) are strings; :class:`NumberLoader`
adds YAML 1.2's float forms so they read as numbers. It is a ``SafeLoader``: no Python objects.
:func:`load_yaml_text` turns every YAML problem into one line, raised as the caller's error type.
"""

from __future__ import annotations

import re
from typing import Any, Type

import yaml

from carla_agent.errors import CarlaAgentError


class NumberLoader(yaml.SafeLoader):
    """PyYAML's safe loader that also reads ``1e12`` and ``5e1`` as numbers (YAML 1.2 floats)."""


NumberLoader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
NumberLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def load_yaml_text(text: str, source: str, error: Type[CarlaAgentError] = CarlaAgentError) -> Any:
    """The Python value of YAML ``text`` (dicts, lists, str, int, float, bool, None).

    Raises:
        error: ``"SOURCE: not valid YAML at line L, column C: PROBLEM"`` (or "nested too deeply").
    """
    try:
        return yaml.load(text, Loader=NumberLoader)  # a SafeLoader: no Python objects
    except RecursionError:
        raise error(f"{source}: not valid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{source}: not valid YAML{where}: {problem}") from None


__all__ = ["NumberLoader", "load_yaml_text"]
