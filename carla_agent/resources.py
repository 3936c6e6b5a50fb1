"""Where the package's own data lies: the shipped model and the scenarios.

In a checkout, scenarios are the top-level ``scenarios/`` folder; an installed copy
(``pip install .``) carries the same files as the data package ``carla_agent/scenarios``.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = PACKAGE_DIR / "models" / "pilotnet.keras"


def scenario_dir() -> Path:
    """The folder of the shipped scenario YAML files (installed data first, then the checkout's)."""
    installed = PACKAGE_DIR / "scenarios"
    if installed.is_dir() and any(installed.glob("*.yaml")):
        return installed
    return PACKAGE_DIR.parent / "scenarios"
