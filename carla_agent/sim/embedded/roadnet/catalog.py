"""The shipped towns by name: ``scenarios/towns/*.yaml``.

Apart from :mod:`.town` so that the scenario reader can check a ``town:``
name without importing the network builder (which imports the scenario
limits: a cycle).
"""

from __future__ import annotations

from pathlib import Path

from carla_agent.registry import Registry
from carla_agent.resources import scenario_dir


def town_dir() -> Path:
    """The folder of the shipped town files (``scenarios/towns``)."""
    return scenario_dir() / "towns"


def shipped_towns() -> Registry:
    """The shipped town files, by name (the file's stem)."""
    reg: Registry = Registry("town")
    for path in sorted(town_dir().glob("*.yaml")):
        reg.register(path.stem, path)
    return reg
