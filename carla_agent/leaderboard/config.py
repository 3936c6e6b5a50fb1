"""The Leaderboard agent's ``--agent-config``: a YAML file.

Example (every key optional; paths relative to the file)::

    model: carla_agent/models/pilotnet.keras   # .keras or .h5; the shipped model by default
    method: visual_backprop      # the saliency method the HUD and the live video show
    hud: false                   # a pygame window with the camera and the map, live
    record: true                 # a drive log, an attention video and a report per route
    out: results/carla_agent     # where they go (default: beside the evaluator's --checkpoint file, else runs/leaderboard)
    target_speed_kmh: 25
    camera: {image_size_x: 480, image_size_y: 270, fov: 90, x_m: 0.8, z_m: 1.5, pitch_deg: -8}

Bad values get one line naming the file, the field and the range, as scenario files do.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Tuple

from carla_agent.errors import ScenarioError
from carla_agent.resources import DEFAULT_MODEL
from carla_agent.schema import build, field
from carla_agent.sim.scenario import CameraSpec
from carla_agent.yaml_load import load_yaml_text


class AgentConfigError(ScenarioError):
    """A bad ``--agent-config`` file or field."""


@dataclass(frozen=True)
class AgentConfig:
    """What the Leaderboard agent drives with (see the module docstring)."""

    model: str = field(str(DEFAULT_MODEL), help="the steering model, .keras or .h5")
    method: str = field("visual_backprop", help="saliency method of the HUD and the live video")
    hud: bool = field(False, help="show the HUD window while the route runs")
    hud_res: Tuple[int, int] = field((1280, 720), min=320, max=7680, help="HUD window size, pixels")
    record: bool = field(False, help="write a drive log, an attention video and a report per route")
    video: bool = field(True, help="with record: render the attention video and report at the route's end")
    out: Optional[str] = field(None, help="folder of the runs")
    target_speed_kmh: float = field(25.0, min=1.0, max=130.0)
    tf_threads: int = field(1, min=0, max=256, help="TensorFlow threads per op (0: all cores)")
    camera: CameraSpec = field(default_factory=CameraSpec)

    def out_dir(self) -> Path:
        """Where runs go: ``out``, else beside the Leaderboard's results file, else ``runs/leaderboard``."""
        if self.out:
            return Path(self.out)
        endpoint = _checkpoint_arg(sys.argv) or os.environ.get("CHECKPOINT_ENDPOINT")
        if endpoint:
            return Path(endpoint).resolve().parent / "carla_agent_runs"
        return Path("runs") / "leaderboard"


def _checkpoint_arg(argv) -> Optional[str]:
    """The evaluator's ``--checkpoint`` (the agent runs in its process), or None."""
    for k, arg in enumerate(argv):
        if arg.startswith("--checkpoint="):
            return arg.split("=", 1)[1] or None
        if arg == "--checkpoint" and k + 1 < len(argv):
            return argv[k + 1]
    return None


def load_agent_config(path: Optional[str]) -> AgentConfig:
    """Read ``--agent-config``; an empty or missing path gives the defaults.

    Raises:
        AgentConfigError: the file is missing or unreadable, not a mapping, or a field is bad
            (the message names the file and the field).
    """
    if not path:
        return AgentConfig()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise AgentConfigError(f"{p}: cannot read the agent config ({exc.strerror}); pass a YAML file "
                               f"to --agent-config") from None
    except UnicodeDecodeError as exc:
        raise AgentConfigError(f"{p}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    data = load_yaml_text(text, str(p), AgentConfigError)
    try:
        cfg = build(AgentConfig, data, str(p))
    except AgentConfigError:
        raise
    except ScenarioError as exc:
        raise AgentConfigError(str(exc)) from None
    model = Path(cfg.model).expanduser()
    if not model.is_absolute() and not model.exists() and (p.parent / model).exists():
        model = p.parent / model
    if not model.is_file():
        raise AgentConfigError(f"{p}: field 'model': {cfg.model} is not a file; give a .keras or .h5 model")
    out = cfg.out
    if out and not Path(out).is_absolute():
        out = str(p.parent / out)
    return replace(cfg, model=str(model), out=out)


__all__ = ["AgentConfig", "AgentConfigError", "load_agent_config"]
