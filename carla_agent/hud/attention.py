"""Which map the HUD shows each tick, and where it was computed. No pygame.

:class:`AttentionFeed` owns the explainer cache and the background worker and,
for every :class:`~carla_agent.drive.runner.StepRecord`, returns the map to show with
how it was scheduled:

* ``inline``: a cheap method. The feed gives the agent a
  :class:`~carla_agent.hud.explainers.TimedExplainer` (``runner.agent.explainer``),
  so the prediction and the map come from one graph call
  (``Decision.attention``, same frame id). If the agent cannot carry it (an
  agent without an ``explainer`` attribute, or the tick a method was switched)
  the feed computes the map itself on this frame.
* ``worker``: a slow method. The frame goes to the
  :class:`~carla_agent.hud.worker.AttentionWorker` (never blocking) and
  the newest finished map of the same key is shown, with its own frame.
* ``lock-step``: recording (or ``lockstep=True``): the frame waits for its own map.
* ``building``: the method's graph is still being traced on the worker thread.
* ``error``: the method failed; :meth:`AttentionFeed.failure` says why.

Every map returned is an :class:`~carla_agent.hud.worker.AttentionMap`
holding the frame id and the image it was computed from.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Optional, Tuple

import numpy as np

from carla_agent.hud.worker import AttentionMap, AttentionWorker
from carla_agent.hud.explainers import (BuiltExplainer, ExplainerCache, ExplainerFactory, SaliencyKey,
                                        TimedExplainer, make_key, model_explainer_factory)
from carla_agent.saliency.normalize import make_normalizer

log = logging.getLogger(__name__)

SCHEDULES = ("inline", "worker", "lock-step", "building", "error")


class AttentionFeed:
    """Maps for the HUD, one per tick, each tied to its frame.

    Args:
        model: the steering model (``preprocessing`` and ``input_shape`` are used).
        key: the saliency shown first.
        explainer_factory: ``SaliencyKey -> explainer``; default ``make_explainer`` on ``model``.
        inline_budget_ms: [ms] cheap methods slower than this go to the worker (None: by name only).
        lockstep_timeout_s: [s] longest wait for one lock-step map.
    """

    def __init__(self, model: Any, key: SaliencyKey, explainer_factory: Optional[ExplainerFactory] = None,
                 inline_budget_ms: Optional[float] = None, lockstep_timeout_s: float = 60.0) -> None:
        self.preprocessing = model.preprocessing
        self.cache = ExplainerCache(explainer_factory or model_explainer_factory(model), model.input_shape,
                                    inline_budget_ms)
        self.worker = AttentionWorker(self.cache.get, self.preprocessing)
        self.lockstep_timeout_s = float(lockstep_timeout_s)
        self.key = key
        self._agent = None
        self._agent_own = None
        self._normalizer = None
        self._norm_of: Optional[AttentionMap] = None
        self._norm_map: Optional[np.ndarray] = None
        self._last_error: Optional[str] = None

    # -- lifetime ------------------------------------------------------------------
    def attach(self, agent: Any) -> None:
        """A new episode with ``agent``: forget old maps; drive its ``explainer`` when it has one
        (the agent's own explainer is put back by :meth:`detach`)."""
        self.detach()
        self._agent = agent if hasattr(agent, "explainer") else None
        self._agent_own = None if self._agent is None else agent.explainer
        self.worker.clear()
        self._reset_normalizer()
        self.select(self.key)

    def detach(self) -> None:
        """Give the agent back the explainer it had before :meth:`attach`."""
        if self._agent is not None:
            self._agent.explainer = self._agent_own
        self._agent = self._agent_own = None

    def close(self) -> None:
        """Stop the worker and release the agent. Idempotent."""
        self.detach()
        self.worker.close()

    # -- choosing ------------------------------------------------------------------
    def select(self, key: SaliencyKey) -> Optional[BuiltExplainer]:
        """Show ``key`` from now on. Returns its explainer when built; otherwise it is
        built on the worker thread (the drive goes on without maps meanwhile)."""
        if key != self.key:
            self._reset_normalizer()
        self.key = key
        self._last_error = None
        built = self.cache.ready(key)
        if built is None and self.cache.failed(key) is None:
            self.worker.prepare(key)
        self._install(built)
        return built

    def select_names(self, method: str, target: str, layer: Optional[str]) -> Optional[BuiltExplainer]:
        """:meth:`select` by names (normalised with :func:`~carla_agent.hud.explainers.make_key`)."""
        return self.select(make_key(method, target, layer))

    def prebuild(self) -> Optional[str]:
        """Build the current key now (blocking); returns the error line, or None."""
        try:
            self.cache.get(self.key)
        except RuntimeError as exc:
            return str(exc)
        return None

    def failure(self) -> Optional[str]:
        """Why the current key shows no map (a build or compute error), or None."""
        return self.cache.failed(self.key) or self._last_error

    def _install(self, built: Optional[BuiltExplainer]) -> None:
        if self._agent is None:
            return
        if built is not None and built.schedule == "inline":
            if getattr(self._agent.explainer, "key", None) != built.key:
                self._agent.explainer = TimedExplainer(built)
        elif self._agent.explainer is not None:
            self._agent.explainer = None

    # -- per tick ----------------------------------------------------------------------
    def for_record(self, record: Any, lockstep: bool = False, wait: bool = False
                   ) -> Tuple[Optional[AttentionMap], str]:
        """The map to show for ``record`` and its schedule (one of :data:`SCHEDULES`).

        Args:
            record: the tick (``obs``, ``decision``).
            lockstep: wait for this frame's own map (recording).
            wait: block for a build or a map (used while paused).
        """
        obs, key = record.obs, self.key
        built = self.cache.ready(key)
        if built is None:
            if self.cache.failed(key):
                return None, "error"
            if not (lockstep or wait):
                return None, "building"
            try:
                built = self.cache.get(key)
            except RuntimeError:
                return None, "error"
        self._install(built)
        if built.schedule == "inline":
            return self._inline(record, built), "inline"
        if lockstep or wait:
            amap = self.worker.compute(obs.frame, obs.image, key, self.lockstep_timeout_s)
            if amap is None:
                log.warning("lock-step map of frame %d timed out after %.0f s", obs.frame, self.lockstep_timeout_s)
            return self._checked(amap), "lock-step"
        self.worker.submit(obs.frame, obs.image, key)
        latest = self.worker.latest()
        if latest is not None and latest.key == key and latest.frame <= obs.frame:
            return self._checked(latest), "worker"
        return None, "worker"

    def _inline(self, record: Any, built: BuiltExplainer) -> Optional[AttentionMap]:
        obs, decision, key = record.obs, record.decision, built.key
        explainer = getattr(self._agent, "explainer", None)
        att = decision.attention
        if (att is not None and decision.frame == obs.frame and isinstance(explainer, TimedExplainer)
                and explainer.key == key):
            return AttentionMap(obs.frame, obs.image, key, att, explainer.last_ms)
        t0 = time.perf_counter()
        try:
            result = built.explainer(np.asarray(self.preprocessing(obs.image), np.float32)[None])
        except Exception as exc:  # show the error, keep driving
            lines = str(exc).strip().splitlines()
            self._last_error = f"{type(exc).__name__}: {lines[-1] if lines else ''}"[:200]
            log.debug("inline saliency failed", exc_info=True)
            return None
        return AttentionMap(obs.frame, obs.image, key, result, (time.perf_counter() - t0) * 1e3)

    def _checked(self, amap: Optional[AttentionMap]) -> Optional[AttentionMap]:
        if amap is not None and amap.error is not None:
            self._last_error = amap.error
            return None
        return amap

    # -- display scaling ---------------------------------------------------------------------
    def _reset_normalizer(self) -> None:
        self._normalizer = None
        self._norm_of = None
        self._norm_map = None

    def normalized(self, amap: AttentionMap) -> np.ndarray:
        """``(h, w)`` float32 map scaled for display by a running normaliser (per key, once per map).

        Unsigned maps come back in [0, 1], signed ones in [-1, 1].
        """
        if self._norm_of is not amap:
            if self._normalizer is None:
                self._normalizer = make_normalizer("running", signed=bool(amap.result.signed))
            self._norm_map = self._normalizer(amap.map)
            self._norm_of = amap
        return self._norm_map

    @property
    def dropped(self) -> int:
        """Frames the worker skipped because a newer frame replaced them (newest wins)."""
        return self.worker.stats.dropped
