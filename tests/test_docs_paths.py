"""The README and docs name code that exists: every ``carla_agent.x.y`` dotted name and
every ``carla_agent/x/y.py`` path they mention resolves (a module, a package, or a name
defined in one)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
DOTTED = re.compile(r"\bcarla_agent(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
PATH = re.compile(r"\bcarla_agent/[A-Za-z0-9_/]*(?:\.py|/)")
NOT_CODE = {
    "carla_agent.drive_log",  # the drive-log format name stored in meta.json, not a module
    "carla_agent.scenarios",  # the scenarios' data package, which exists in an installed copy only
}


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def _mentions(pattern):
    for doc in DOCS:
        for match in pattern.finditer(doc.read_text()):
            yield doc.relative_to(ROOT).as_posix(), match.group(0).rstrip(".")


@pytest.mark.parametrize("doc", [d.relative_to(ROOT).as_posix() for d in DOCS])
def test_dotted_names_in_docs_resolve(doc):
    missing = sorted({name for where, name in _mentions(DOTTED)
                      if where == doc and name not in NOT_CODE and not _resolves(name)})
    assert missing == []


@pytest.mark.parametrize("doc", [d.relative_to(ROOT).as_posix() for d in DOCS])
def test_paths_in_docs_exist(doc):
    missing = sorted({path for where, path in _mentions(PATH) if where == doc and not (ROOT / path).exists()})
    assert missing == []
