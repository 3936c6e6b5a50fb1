"""The shape of the house, as a test: who may import what.

Rules (README, "Layout"):

* ``carla`` is imported in one module only, ``sim/carla_backend/client.py``;
* ``pygame`` only under ``hud/``; TensorFlow and Keras only under ``network/`` and
  ``saliency/``;
* packages import only packages below them, in this order (bottom first):
  base modules -> ``control`` -> ``sim`` -> ``drive``, ``server`` -> ``network`` ->
  ``saliency`` -> ``hud``, ``recording`` -> ``faithfulness`` -> ``sweep``, ``leaderboard`` -> ``cli``;
  packages on the same floor do not import each other;
* ``ray`` only in ``sweep/ray_runner.py``; the Leaderboard and ScenarioRunner only in
  ``leaderboard/entry/pilotnet_agent.py``;
* no import cycle between modules, lazy (function-level) imports included;
* no module over 510 lines.

Imports are read with :mod:`ast`, so nothing is executed. The checker runs on the
package and, in :func:`test_the_checker_sees_a_pygame_import_in_sim`, on a copy of
it with one deliberate violation, so a checker that sees nothing cannot pass.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Set

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "carla_agent"

FLOOR = {"": 0, "control": 1, "sim": 2, "drive": 3, "server": 3, "network": 4, "saliency": 5,
         "hud": 6, "recording": 6, "faithfulness": 7, "sweep": 8, "leaderboard": 8, "cli": 9,
         "__main__": 10}
ONLY_IN = {  # third-party top-level name -> the package paths (under carla_agent/) allowed to import it
    "carla": ("sim/carla_backend/client.py",),
    "pygame": ("hud/",),
    "tensorflow": ("network/", "saliency/"),
    "keras": ("network/", "saliency/"),
    "tf_keras_vis": ("network/", "saliency/"),
    "ray": ("sweep/ray_runner.py",),
    "leaderboard": ("leaderboard/entry/pilotnet_agent.py",),
    "srunner": ("leaderboard/entry/pilotnet_agent.py",),
}
MAX_LINES = 510


@dataclass(frozen=True)
class Import:
    module: str  # importing module, dotted
    target: str  # imported name, dotted (absolute)
    line: int


def modules(package: Path) -> Dict[str, Path]:
    out = {}
    for f in sorted(package.rglob("*.py")):
        parts = list(f.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def imports(package: Path) -> List[Import]:
    """Every import statement of the package, at any depth of the code (lazy ones too)."""
    found = []
    for mod, f in modules(package).items():
        pkg = mod if f.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Import):
                found += [Import(mod, a.name, node.lineno) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                found.append(Import(mod, base, node.lineno))
                found += [Import(mod, f"{base}.{a.name}", node.lineno) for a in node.names]
    return found


def floor_of(module: str) -> str:
    """The package a module belongs to, for the floor order ("" for the base modules)."""
    parts = module.split(".")[1:]
    if not parts:
        return ""
    if len(parts) == 1 and parts[0] not in FLOOR:
        return ""  # errors, registry, schema, ...
    return parts[0]


def third_party_breaks(package: Path) -> List[str]:
    out = []
    for imp in imports(package):
        top = imp.target.split(".")[0]
        if top not in ONLY_IN:
            continue
        rel = modules(package)[imp.module].relative_to(package).as_posix()
        if not any(rel == allowed or rel.startswith(allowed) for allowed in ONLY_IN[top] if allowed.endswith("/")) \
                and rel not in ONLY_IN[top]:
            out.append(f"{rel}:{imp.line} imports {top}")
    return sorted(set(out))


def resolve(target: str, mods: Dict[str, Path]) -> str | None:
    while target and target not in mods:
        target = target.rpartition(".")[0]
    return target or None


def upward_imports(package: Path) -> List[str]:
    mods = modules(package)
    out = []
    for imp in imports(package):
        to = resolve(imp.target, mods)
        if to is None or to == package.name:
            continue
        a, b = floor_of(imp.module), floor_of(to)
        if a == b or a not in FLOOR or b not in FLOOR:
            continue
        if FLOOR[b] >= FLOOR[a]:
            out.append(f"{imp.module}:{imp.line} ({a or 'base'}, floor {FLOOR[a]}) imports {to} "
                       f"({b or 'base'}, floor {FLOOR[b]})")
    return sorted(set(out))


def cycles(package: Path) -> List[List[str]]:
    """Strongly connected module groups of more than one module. A module importing its own
    package's face (``__init__``) is not an edge: that is how a package re-exports."""
    mods = modules(package)
    edges: Dict[str, Set[str]] = {m: set() for m in mods}
    for imp in imports(package):
        to = resolve(imp.target, mods)
        if to is None or to == imp.module:
            continue
        if mods[to].name == "__init__.py" and imp.module.startswith(to + "."):
            continue
        edges[imp.module].add(to)
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    groups: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            # a group held together only through a package face is a re-export, not a cycle of code
            if sum(1 for m in group if mods[m].name != "__init__.py") > 1:
                groups.append(sorted(group))

    for v in list(edges):
        if v not in index:
            visit(v)
    return groups


def long_modules(package: Path) -> List[str]:
    return [f"{f.relative_to(package.parent)}: {n} lines" for f in package.rglob("*.py")
            if (n := len(f.read_text().splitlines())) > MAX_LINES]


# -- the rules on the package -----------------------------------------------------------------
def test_third_party_imports_stay_in_their_modules():
    assert third_party_breaks(PACKAGE) == []


def test_no_package_imports_one_above_it():
    assert upward_imports(PACKAGE) == []


def test_no_import_cycle():
    assert cycles(PACKAGE) == []


def test_no_module_over_510_lines():
    assert long_modules(PACKAGE) == []


def test_every_package_has_a_floor():
    top = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert top - set(FLOOR) == set(), "a new package needs a floor in FLOOR and in the README's layout"


def test_importing_the_package_loads_no_heavy_dependency():
    code = ("import sys, carla_agent, carla_agent.cli, carla_agent.sim.simulator, carla_agent.drive.runner, "
            "carla_agent.sim.embedded.simulator, carla_agent.recording.drive_log, carla_agent.server.server, "
            "carla_agent.sweep, carla_agent.sweep.run, carla_agent.sweep.compare, carla_agent.cli.sweep\n"
            "heavy = sorted(m for m in ('tensorflow', 'keras', 'pygame', 'carla', 'ray') if m in sys.modules)\n"
            "print(','.join(heavy))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


# -- the checker itself fails where it should -------------------------------------------------
def _copy_package(tmp_path: Path) -> Path:
    dst = tmp_path / "carla_agent"
    shutil.copytree(PACKAGE, dst, ignore=shutil.ignore_patterns("__pycache__", "models"))
    return dst


def test_the_checker_sees_a_pygame_import_in_sim(tmp_path):
    pkg = _copy_package(tmp_path)
    target = pkg / "sim" / "simulator.py"
    target.write_text(target.read_text() + "\n\ndef _draw():\n    import pygame  # deliberately misplaced\n")
    added = set(third_party_breaks(pkg)) - set(third_party_breaks(PACKAGE))
    assert added == {f"sim/simulator.py:{len(target.read_text().splitlines())} imports pygame"}


def test_the_checker_sees_an_upward_import_and_a_cycle(tmp_path):
    pkg = _copy_package(tmp_path)
    (pkg / "control" / "pid.py").write_text((pkg / "control" / "pid.py").read_text()
                                           + "\nfrom carla_agent.drive.runner import Runner\n")
    added = set(upward_imports(pkg)) - set(upward_imports(PACKAGE))
    assert len(added) == 1 and next(iter(added)).startswith("carla_agent.control.pid:")
    assert "carla_agent.drive.runner" in next(iter(added))
    assert any("carla_agent.control.pid" in group for group in cycles(pkg))
    assert not any("carla_agent.control.pid" in group for group in cycles(PACKAGE))
