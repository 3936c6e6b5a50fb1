"""Closed-loop causal test: drive with the most salient pixels blurred, with as many random pixels blurred, and clean.

A faithful map points at what the network steers by, so blurring its top k %
pixels every frame hurts the drive (autonomy, lateral offset) more than
blurring the same share of random pixels. Needs a simulator (embedded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

import numpy as np

from carla_agent.faithfulness.baseline import blur_baseline

MODES = ("clean", "random", "salient")


@dataclass(frozen=True)
class DriveOutcome:
    """One drive: NVIDIA autonomy [%], mean and max |lateral offset| [m], interventions."""

    autonomy_pct: float
    mean_abs_offset_m: float
    max_abs_offset_m: float
    interventions: int


def blur_top(x: np.ndarray, maps: Optional[np.ndarray], share: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` ``(N, H, W, C)`` with its top ``share`` pixels by |map| blurred; ``maps`` None: random pixels."""
    n, h, w = x.shape[:3]
    k = int(round(share * h * w))
    score = rng.random((n, h * w)) if maps is None else np.abs(np.asarray(maps)).reshape(n, -1)
    top = np.argsort(-score, axis=1, kind="stable")[:, :k]
    mask = np.zeros((n, h * w), bool)
    np.put_along_axis(mask, top, True, axis=1)
    return np.where(mask.reshape(n, h, w, 1), blur_baseline(x), x).astype(np.float32)


class MaskedModel:
    """A steering model whose preprocessing blurs part of every frame; everything else is the wrapped model's."""

    def __init__(self, model: Any, explain: Optional[Callable], share: float, mode: str, seed: int = 0) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
        self._model, self._explain, self._share, self._mode = model, explain, share, mode
        self._rng = np.random.default_rng(seed)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def preprocessing(self, frame: np.ndarray) -> np.ndarray:
        x = self._model.preprocessing(frame)
        if self._mode == "clean":
            return x
        maps = np.asarray(self._explain(x[None]).maps) if self._mode == "salient" else None
        return blur_top(x[None], maps, self._share, self._rng)[0]


def closed_loop_test(model: Any, scenario: str, explain: Callable, share: float = 0.1, seed: int = 0,
                     duration_s: Optional[float] = None) -> Dict[str, DriveOutcome]:
    """Drive ``scenario`` three ways (``clean``, ``random``, ``salient``); outcome per mode."""
    from carla_agent.drive.agent import NetworkAgent
    from carla_agent.drive.session import drive_scenario
    from carla_agent.sim.scenario import load_scenario
    from carla_agent.sim.simulator import make_simulator

    sc = load_scenario(scenario)
    out = {}
    with make_simulator("embedded") as sim:
        for mode in MODES:
            agent = NetworkAgent(MaskedModel(model, explain, share, mode, seed), sc.target_speed_mps)
            m = drive_scenario(sc, agent, sim=sim, seed=seed, duration_s=duration_s).metrics
            out[mode] = DriveOutcome(m.autonomy_pct, m.mean_abs_offset_m, m.max_abs_offset_m, m.interventions)
    return out
