"""Where a served tick's time goes, by phase, for ``bench/bench_serve.py``.

Phases (each a wall-clock total and the process's CPU meanwhile, seconds, with a count): ``simulate`` (the
embedded step of every vehicle and walker), ``episode`` (building and sending the episode state),
``render`` (the camera's renderer), ``encode`` (RGB to CARLA's BGRA), ``send`` (handing the frame to
the subscribers' sockets), ``tick`` (the whole ``tick_cue``, all of the above included). The
non-CARLA RPC call ``carla_agent_tick_profile`` answers the totals since the last such call and
clears them. Timing costs about 1 µs per phase. Phases nest (``tick`` holds the others).
"""

from __future__ import annotations

import time
from typing import Dict, List

_totals: Dict[str, List[float]] = {}  # phase -> [count, wall s, cpu s]


class phase:
    """``with phase("render"): ...`` adds the block's wall time and the process's CPU time meanwhile (all
    threads: OpenCV's workers too) to ``render``."""

    __slots__ = ("name", "t0", "c0")

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> "phase":
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        t = _totals.get(self.name)
        if t is None:
            t = _totals[self.name] = [0, 0.0, 0.0]
        t[0] += 1
        t[1] += time.perf_counter() - self.t0
        t[2] += time.process_time() - self.c0


def take(*a) -> Dict[str, list]:
    """``{phase: [count, wall s, cpu s]}`` since the last call (the totals start again from zero),
    and ``process``: ``[1, monotonic s, the whole process's CPU s so far]`` (all threads, ns resolution)."""
    out = {k: list(v) for k, v in _totals.items()}
    _totals.clear()
    out["process"] = [1, time.monotonic(), time.process_time()]
    return out
