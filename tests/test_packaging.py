"""Packaging: `pip install .` gives a working `carla-agent` command, with the model and
the scenarios as package data, away from the checkout."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pins(lines) -> dict:
    out = {}
    for line in lines:
        line = line.split("#")[0].strip()
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^;\s]+)", line)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def test_pyproject_pins_match_requirements():
    project = _pyproject()["project"]
    declared = _pins(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared.update(_pins(extra))
    required = _pins((ROOT / "requirements.txt").read_text().splitlines())
    assert declared == required


def test_every_package_of_the_tree_is_packaged():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    tree = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "carla_agent").rglob("__init__.py")}
    assert tree | {"carla_agent.models", "carla_agent.scenarios"} == listed


def test_pip_install_gives_a_carla_agent_command_that_drives(tmp_path):
    """A non-editable install into a fresh venv (the dependencies come from this
    interpreter's site-packages, so nothing is downloaded), run from outside the checkout."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    py = env_dir / "bin" / "python"
    build = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--quiet", "--no-deps",
                            "--no-build-isolation", "--disable-pip-version-check", str(ROOT)],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path)
    if build.returncode != 0 and "no such option: --python" in build.stderr:
        pytest.skip("this pip cannot install into another interpreter (pip >= 22.3 needed)")
    assert build.returncode == 0, build.stderr[-3000:]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    where = subprocess.run([str(py), "-c", "import carla_agent; print(carla_agent.__file__)"],
                           capture_output=True, text=True, cwd=outside, env=env, timeout=60)
    assert where.returncode == 0, where.stderr
    assert str(env_dir) in where.stdout and str(ROOT) not in where.stdout, where.stdout
    proc = subprocess.run([str(env_dir / "bin" / "carla-agent"), "drive", "--headless", "--json"],
                          capture_output=True, text=True, cwd=outside, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    assert metrics["scenario"] == "gentle_curves"
    assert metrics["autonomy_pct"] == pytest.approx(100.0)
    assert metrics["route_completion_pct"] == pytest.approx(100.0, abs=0.5)
    listed = subprocess.run([str(env_dir / "bin" / "carla-agent"), "scenarios"], capture_output=True, text=True,
                            cwd=outside, env=env, timeout=120)
    assert listed.returncode == 0 and "night_rain" in listed.stdout
