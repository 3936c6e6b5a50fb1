"""The run's metadata: what ``meta.json`` holds, package versions, and new run folders."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib.metadata
import math
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

import cv2
import numpy as np

from carla_agent.recording.drive_log.format import DriveLogError


def utc_now() -> str:
    """Current UTC time, ISO 8601 with a ``Z``, to the millisecond."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def package_versions() -> Dict[str, Optional[str]]:
    """Versions of the packages that shape a run, read from metadata (nothing heavy is imported).

    Keys: python, carla_agent, numpy, tensorflow, keras, opencv, carla, imageio,
    imageio_ffmpeg, pandas; ``None`` when a package is not installed.
    """
    def first(*dists: str) -> Optional[str]:
        for dist in dists:
            try:
                return importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
        return None

    from carla_agent import __version__

    return {
        "python": platform.python_version(),
        "carla_agent": __version__,
        "numpy": np.__version__,
        "tensorflow": first("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tf-nightly"),
        "keras": first("keras"),
        "opencv": cv2.__version__,
        "carla": first("carla"),
        "imageio": first("imageio"),
        "imageio_ffmpeg": first("imageio-ffmpeg"),
        "pandas": first("pandas"),
    }


@dataclass(frozen=True)
class SaliencySettings:
    """How the live attention maps of a run were made (``None`` fields: not applicable).

    Attributes:
        method: registry name (``visual_backprop``).
        output: explained output column name.
        target: ``auto``/``right``/``left``/``straight``.
        layer: conv layer, for methods that use one.
        options: method options as given to ``make_explainer``.
    """

    method: str
    output: Optional[str] = None
    target: Optional[str] = None
    layer: Optional[str] = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_explainer(cls, explainer: Any) -> Optional["SaliencySettings"]:
        """Read the settings off a saliency explainer (duck-typed), or None for no explainer."""
        if explainer is None:
            return None
        options = getattr(explainer, "options", None)
        opts = dataclasses.asdict(options) if dataclasses.is_dataclass(options) else {}
        return cls(method=str(getattr(explainer, "method", type(explainer).__name__)),
                   output=getattr(explainer, "output_name", None),
                   target=getattr(explainer, "target_label", None),
                   layer=getattr(explainer, "layer", None), options=opts)

    def to_dict(self) -> dict:
        return {"method": self.method, "output": self.output, "target": self.target, "layer": self.layer,
                "options": _jsonable(dict(self.options))}


@dataclass(frozen=True)
class RunMeta:
    """What is known about a run when it starts. Written to ``meta.json`` with the end fields.

    Attributes:
        run_id: the run folder's name.
        scenario_name: the scenario's name.
        scenario_file: path of the scenario YAML it was loaded from (``None`` for in-memory).
        scenario: the exact scenario driven, as a JSON mapping
            (``dataclasses.asdict(Scenario)``; rebuilt by :func:`scenario_from_meta`).
        seed: episode seed.
        backend: backend name (``embedded``, ``carla``).
        server_version: the CARLA server version, ``None`` for the embedded backend.
        backend_options: options a re-simulation needs (embedded: ``{"render": bool}``).
        dt_s: [s] fixed time step.
        duration_s: [s] time limit of the drive.
        intervention_m: [m] lateral offset that triggers an intervention (and a recover).
        camera_hw: ``(H, W)`` of the camera frames, pixels.
        model: ``SteeringModel.summary()`` (includes ``sha256``), ``None`` for the expert.
        agent: the agent's class name.
        saliency: live saliency settings, ``None`` when no map was computed while driving.
        packages: :func:`package_versions`.
        started_utc: ISO 8601 UTC start time.
        first_frame: backend frame id of row 0 (> the reset frame when recording began mid-drive).
    """

    run_id: str
    scenario_name: str
    scenario_file: Optional[str]
    scenario: Mapping[str, Any]
    seed: int
    backend: str
    server_version: Optional[str]
    backend_options: Mapping[str, Any]
    dt_s: float
    duration_s: float
    intervention_m: float
    camera_hw: Tuple[int, int]
    model: Optional[Mapping[str, Any]] = None
    agent: Optional[str] = None
    saliency: Optional[Mapping[str, Any]] = None
    packages: Mapping[str, Any] = field(default_factory=package_versions)
    started_utc: str = field(default_factory=utc_now)
    first_frame: int = 0

    def to_dict(self) -> dict:
        return _jsonable({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})


def _jsonable(value: Any) -> Any:
    """Tuples, NumPy scalars and mapping proxies -> plain JSON types."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def scenario_to_dict(scenario: Any) -> dict:
    """A :class:`~carla_agent.sim.scenario.Scenario` as JSON-ready data (``source`` dropped)."""
    data = _jsonable(dataclasses.asdict(scenario))
    data.pop("source", None)
    return data


def scenario_from_meta(meta: Mapping[str, Any], source: str = "meta.json"):
    """Rebuild the exact :class:`~carla_agent.sim.scenario.Scenario` a run drove.

    Raises:
        DriveLogError: ``meta`` has no ``scenario`` mapping.
        ScenarioError: a field of it is wrong (named, as for a scenario file).
    """
    from carla_agent.sim.scenario import Scenario
    from carla_agent.schema import build

    if not isinstance(meta.get("scenario"), Mapping):
        raise DriveLogError(f"{source}: field 'scenario' is missing or not a mapping; the run cannot be "
                            "re-simulated (an older carla_agent wrote it, or the file is damaged)")
    sc = build(Scenario, dict(meta["scenario"]), source)
    return dataclasses.replace(sc, source=meta.get("scenario_file") or source)


def new_run_dir(out_dir: str | Path, scenario_name: str, when: Optional[_dt.datetime] = None) -> Path:
    """Create and return ``out_dir/<UTC YYYYmmddTHHMMSSZ>_<scenario>[_k]/`` (never reuses a folder)."""
    when = when or _dt.datetime.now(_dt.timezone.utc)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in scenario_name) or "run"
    base = f"{when.strftime('%Y%m%dT%H%M%SZ')}_{safe}"
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    for k in range(1, 1000):
        path = root / (base if k == 1 else f"{base}_{k}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise DriveLogError(f"{root}: cannot create a new run folder for {base}; clean up {root}")
