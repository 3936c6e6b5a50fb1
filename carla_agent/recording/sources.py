"""Map sources: what turns camera frames into saliency maps for a video or a report.

* :class:`ExplainerSource`: a saliency method (any method, target, layer and options)
  on a steering model; :class:`FunctionSource`: any callable ``frame -> map``.
* :func:`parse_method` reads a method with options from text (``occlusion:window_px=10+20``).
* :func:`resolve_model` finds the model to explain a log with (the run's own by default);
  :func:`model_label` names it in captions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Protocol, Sequence, Tuple

import numpy as np

from carla_agent.recording.drive_log import DriveLog
from carla_agent.errors import CarlaAgentError, ModelError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MapBatch:
    """Maps for a batch of frames.

    Attributes:
        maps: ``(N, h, w)`` float32 raw maps (not normalised) at the model's input size.
        steer: ``(N,)`` float32 steering predicted for each frame, in [-1, 1].
        targets: per-frame target label for captions (``auto->right``, ``right``, ``-``).
    """

    maps: np.ndarray
    steer: np.ndarray
    targets: Tuple[str, ...]


class MapSource(Protocol):
    """Camera frames -> maps. What the video renderer needs from a saliency method.

    Attributes:
        name: method name for captions and statistics.
        label: model label in an A/B video ("" otherwise).
        signed: the maps keep their sign.
        preprocessing: the :class:`~carla_agent.network.preprocess.Preprocessing` whose crop the
            maps live in (None: the maps cover the whole frame).
    """

    name: str
    label: str
    signed: bool
    preprocessing: Any

    def __call__(self, frames: np.ndarray, commands: Optional[Sequence[int]] = None) -> MapBatch:
        """``(N, H, W, 3)`` uint8 RGB camera frames -> :class:`MapBatch`; ``commands``: the route's
        command (RoadOption value) each frame was driven with, for models that take one."""


class ExplainerSource:
    """A saliency method on a steering model, as a :class:`MapSource`.

    Args:
        model: a :class:`~carla_agent.network.steering_model.SteeringModel`.
        method: registry name (``visual_backprop``, ``gradcam``, ``occlusion`` ...).
        target: ``auto``, ``right``, ``left``, ``straight``.
        output: explained output (default the steering output).
        layer: conv layer for methods that use one.
        label: model label for A/B captions.
        options: method options (``window_px=(10, 20, 40)`` for occlusion ...).
    """

    def __init__(self, model: Any, method: str = "visual_backprop", target: str = "auto",
                 output: Optional[int | str] = None, layer: Optional[str] = None, label: str = "",
                 options: Optional[Mapping[str, Any]] = None) -> None:
        from carla_agent.saliency import make_explainer

        self.model = model
        self.output = model.steer_index if output is None else output
        self.explainer = make_explainer(model, method, output=self.output, target=target, layer=layer,
                                        **dict(options or {}))
        self.name = method if not options else f"{method}({_format_options(options)})"
        self.spec = method if not options else f"{method}:{_format_options(options)}"  # parse_method() text
        self.label = label
        self.signed = bool(self.explainer.signed)
        self.preprocessing = model.preprocessing
        self.target = target
        self.settings = {"method": method, "target": target, "output": self.explainer.output_name,
                         "layer": self.explainer.layer, "options": dict(options or {})}

    def __call__(self, frames: np.ndarray, commands: Optional[Sequence[int]] = None) -> MapBatch:
        """Maps of ``frames``; with ``commands`` and a model that takes a command, each frame is
        explained (and its steering predicted) with the branch of the command it was driven with,
        as the HUD did live; the model's held command is put back afterwards."""
        pre = self.preprocessing
        x = pre.to_input(np.stack([pre.crop_resize(f) for f in frames]))
        if commands is None or not getattr(self.model, "takes_command", False):
            return self._explain(x)
        commands = np.asarray(commands, np.int64).reshape(-1)
        held = self.model.command
        parts = []
        try:
            for command in dict.fromkeys(commands.tolist()):  # each command once, in order of appearance
                rows = np.flatnonzero(commands == command)
                self.model.set_command(command)
                parts.append((rows, self._explain(x[rows])))
        finally:
            self.model.set_command(held)
        maps = np.empty((len(commands),) + parts[0][1].maps.shape[1:], np.float32)
        steer = np.empty(len(commands), np.float32)
        targets = [""] * len(commands)
        for rows, part in parts:
            maps[rows], steer[rows] = part.maps, part.steer
            for k, target in zip(rows.tolist(), part.targets):
                targets[k] = target
        return MapBatch(maps, steer, tuple(targets))

    def _explain(self, x: np.ndarray) -> MapBatch:
        res = self.explainer(x)
        steer = np.clip(res.prediction[:, self.model.steer_index], -1.0, 1.0).astype(np.float32)
        per = tuple(res.target_per_frame) or (res.target,) * len(res)
        targets = tuple(f"auto->{t}" if res.target == "auto" else str(t) for t in per)
        return MapBatch(np.asarray(res.maps, np.float32), steer, targets)


class FunctionSource:
    """Any callable ``frame (H, W, 3) uint8 -> map (h, w)`` as a :class:`MapSource` (tests, custom maps).

    Args:
        fn: the map function.
        name: caption name.
        signed: the maps keep their sign.
        preprocessing: crop the maps live in; None = the whole frame.
        steer_fn: ``frame -> steer``; default 0.
    """

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], name: str = "custom", signed: bool = False,
                 preprocessing: Any = None, steer_fn: Optional[Callable[[np.ndarray], float]] = None,
                 label: str = "") -> None:
        self.fn, self.name, self.signed, self.preprocessing = fn, name, signed, preprocessing
        self.steer_fn, self.label = steer_fn, label

    def __call__(self, frames: np.ndarray, commands: Optional[Sequence[int]] = None) -> MapBatch:
        maps = np.stack([np.asarray(self.fn(f), np.float32) for f in frames])
        steer = np.array([self.steer_fn(f) if self.steer_fn else 0.0 for f in frames], np.float32)
        return MapBatch(maps, steer, ("-",) * len(frames))


def parse_method(text: str) -> Tuple[str, Dict[str, Any]]:
    """``"occlusion:window_px=10+20+40,stride_px=5"`` -> ``("occlusion", {"window_px": (10, 20, 40), "stride_px": 5})``.

    Options follow a colon as ``key=value`` pairs separated by commas; ``+`` separates
    the items of a tuple; values are int, float, true/false or text.
    """
    name, _, rest = text.strip().partition(":")
    options: Dict[str, Any] = {}
    for pair in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = pair.partition("=")
        if not eq:
            raise CarlaAgentError(f"method option {pair!r} in {text!r}: expected key=value, e.g. "
                                  "occlusion:window_px=10+20,stride_px=5")
        items = [_parse_value(v) for v in value.split("+")]
        options[key.strip()] = tuple(items) if "+" in value else items[0]
    return name.strip(), options


def _parse_value(v: str) -> Any:
    v = v.strip()
    if v.lower() in ("true", "false"):
        return v.lower() == "true"
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def _format_options(options: Mapping[str, Any]) -> str:
    def fmt(v):
        return "+".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)

    return ",".join(f"{k}={fmt(v)}" for k, v in options.items())


# -- models ----------------------------------------------------------------------------------------------------

def resolve_model(drive_log: DriveLog, model: Any = None):
    """The :class:`~carla_agent.network.steering_model.SteeringModel` to explain a log with.

    ``model`` may be a loaded model, a path, or None (the run's own model file, from
    ``meta.json``; a warning when its SHA-256 changed since the run).

    Raises:
        ModelError: no model given and the run's model file is gone.
    """
    if model is not None and hasattr(model, "keras_model"):
        return model
    from carla_agent.network.steering_model import SteeringModel

    recorded = drive_log.meta.get("model") or {}
    path = model or recorded.get("path")
    if not path:
        raise ModelError(f"{drive_log.path}: the run was not driven by a model file; pass a model (--model PATH)")
    if not Path(path).exists():
        raise ModelError(f"{drive_log.path}: the run's model {path} is not there any more; pass --model PATH")
    loaded = SteeringModel.load(path)
    if model is None and recorded.get("sha256") and loaded.sha256 != recorded["sha256"]:
        log.warning("%s: model file %s changed since the run (sha256 %s..., was %s...)", drive_log.path, path,
                    (loaded.sha256 or "")[:12], recorded["sha256"][:12])
    return loaded


def model_label(model: Any) -> str:
    """Short label of a model for captions: file stem and the first 8 hex digits of its hash."""
    path = getattr(model, "path", None)
    sha = getattr(model, "sha256", None)
    name = Path(path).stem if path else getattr(getattr(model, "keras_model", None), "name", "model")
    return f"{name}@{sha[:8]}" if sha else str(name)
