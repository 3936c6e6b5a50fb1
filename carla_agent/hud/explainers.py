"""Which saliency explainer the HUD shows, built once each and scheduled inline or in the worker.

* :class:`SaliencyKey`: what a map explains (method, target, conv layer). Keys
  that build the same graph compare equal (a method without a target ignores
  the target, and a method without a layer ignores the layer).
* :class:`ExplainerCache`: builds each key's explainer once (tracing its graph
  and timing one warm call), thread-safe, so the worker thread can build while
  the car drives. A build that fails is remembered with its one-line error.
* Scheduling: cheap methods run *inline* (inside the agent, prediction and map
  from one graph call); slow methods (:data:`SLOW_METHODS`) run in the
  :class:`~carla_agent.hud.worker.AttentionWorker`. The rule is by name, so
  a loaded machine never moves VisualBackProp off the frame; an optional
  ``inline_budget_ms`` also sends any method whose warm call is slower to the worker.
* :class:`TimedExplainer`: the inline explainer handed to the agent; it
  remembers how long its last call took (the HUD's saliency latency).
* :class:`MethodMenu`: the number keys 1-9 over the method registry.

TensorFlow is imported only by the explainer factory (``make_explainer``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from carla_agent.saliency.methods import METHODS
from carla_agent.saliency.targets import TARGETS as TARGET_REGISTRY

log = logging.getLogger(__name__)

#: Methods that never run inline: many forward passes per map (issue 4, "Timing");
#: the registry's ``slow`` methods.
SLOW_METHODS = frozenset(n for n in METHODS.names() if METHODS.get(n).slow)
#: Method families on the number keys, in this order (the registry's ``key_order``);
#: other registry names follow. A family is a name and every registry name that extends
#: it (``gradient`` -> ``gradient_signed``); pressing its key again cycles through the family.
KEY_ORDER = tuple(sorted((n for n in METHODS.names() if METHODS.get(n).key_order is not None),
                         key=lambda n: METHODS.get(n).key_order))
#: The targets T cycles through, in name order (the saliency target registry).
TARGETS = tuple(TARGET_REGISTRY.names())
NO_TARGET = "-"


@dataclass(frozen=True)
class SaliencyKey:
    """What one map explains.

    Attributes:
        method: registry name (:data:`carla_agent.saliency.methods.METHODS`).
        target: ``auto`` / ``left`` / ``right`` / ``straight``, or ``-`` for
            methods without a target (VisualBackProp, activations, signed maps).
        layer: conv layer name, or None for the method's default.
    """

    method: str
    target: str = "auto"
    layer: Optional[str] = None

    @property
    def label(self) -> str:
        """One line for the HUD: ``gradcam / target auto / layer conv3``."""
        parts = [self.method]
        if self.target != NO_TARGET:
            parts.append(f"target {self.target}")
        elif METHODS.get(self.method).signed:
            parts.append("signed")
        if self.layer:
            parts.append(f"layer {self.layer}")
        return " / ".join(parts)


def uses_target(method: str) -> bool:
    """Whether ``method``'s maps depend on the target (False for signed and target-free methods)."""
    spec = METHODS.get(method)
    if spec.signed:
        return False
    return bool(getattr(spec.load(), "uses_target", True))


def uses_layer(method: str) -> bool:
    """Whether ``method`` takes a conv layer (the L key)."""
    return bool(METHODS.get(method).needs_conv)


def layer_shown(key: SaliencyKey, map_layer: Optional[str]) -> str:
    """The HUD's layer line: the layer the map came from (``map_layer``; on a model with a trunk
    per group of branches ``--layer conv3`` is conv3_junction at a turn), else the one asked for,
    else ``default``; ``-`` for a method without a layer."""
    if not uses_layer(key.method):
        return NO_TARGET
    return map_layer if map_layer and map_layer != "default" else key.layer or "default"

def make_key(method: str, target: str = "auto", layer: Optional[str] = None) -> SaliencyKey:
    """A normalised key: the target and layer are dropped where the method ignores them.

    Raises:
        UnknownNameError: unknown method (lists the known ones).
        ValueError: unknown target.
    """
    METHODS.get(method)
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; known targets: {', '.join(TARGETS)}")
    return SaliencyKey(method, target if uses_target(method) else NO_TARGET, layer if uses_layer(method) else None)


ExplainerFactory = Callable[[SaliencyKey], Any]


def model_explainer_factory(model: Any, **options: Any) -> ExplainerFactory:
    """The default factory: :func:`carla_agent.saliency.make_explainer` on ``model``'s steering output."""
    output = getattr(model, "steer_index", 0)

    def factory(key: SaliencyKey):
        from carla_agent.saliency.methods import make_explainer

        target = "auto" if key.target == NO_TARGET else key.target
        return make_explainer(model, key.method, output=output, target=target, layer=key.layer, **options)

    return factory


@dataclass(frozen=True)
class BuiltExplainer:
    """A ready explainer.

    Attributes:
        key: what it explains.
        explainer: callable ``(N, h, w, c) float32 -> SaliencyResult``.
        warm_ms: [ms] duration of one warm call on one frame (after tracing).
        schedule: ``inline`` (in the agent's graph call) or ``worker``.
    """

    key: SaliencyKey
    explainer: Any
    warm_ms: float
    schedule: str


class ExplainerCache:
    """Builds and keeps one explainer per :class:`SaliencyKey`. Thread-safe.

    Args:
        factory: ``key -> explainer``.
        input_shape: ``(h, w, c)`` network input, for the warm-up call.
        inline_budget_ms: [ms] warm calls slower than this are scheduled in the worker
            (None: by name only, see :data:`SLOW_METHODS`).
        slow_methods: methods always scheduled in the worker.
    """

    def __init__(self, factory: ExplainerFactory, input_shape: Tuple[int, int, int],
                 inline_budget_ms: Optional[float] = None, slow_methods=SLOW_METHODS) -> None:
        self.factory = factory
        self.input_shape = tuple(int(v) for v in input_shape)
        self.inline_budget_ms = inline_budget_ms
        self.slow_methods = frozenset(slow_methods)
        self._lock = threading.Lock()
        self._key_locks: Dict[SaliencyKey, threading.Lock] = {}
        self._built: Dict[SaliencyKey, BuiltExplainer] = {}
        self._failed: Dict[SaliencyKey, str] = {}

    def ready(self, key: SaliencyKey) -> Optional[BuiltExplainer]:
        """The built explainer, or None when it is not built (yet). Never blocks on a build."""
        with self._lock:
            return self._built.get(key)

    def failed(self, key: SaliencyKey) -> Optional[str]:
        """The one-line error of a failed build, or None."""
        with self._lock:
            return self._failed.get(key)

    def get(self, key: SaliencyKey) -> BuiltExplainer:
        """The explainer for ``key``, building it (trace + one timed warm call) when needed.

        Raises:
            RuntimeError: the build failed (now or before); the message is one line.
        """
        with self._lock:
            built = self._built.get(key)
            if built is not None:
                return built
            if key in self._failed:
                raise RuntimeError(self._failed[key])
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one build per key; a second caller waits for it
            with self._lock:
                if key in self._built:
                    return self._built[key]
                if key in self._failed:
                    raise RuntimeError(self._failed[key])
            t0 = time.perf_counter()
            try:
                explainer = self.factory(key)
                x = np.zeros((1, *self.input_shape), np.float32)
                explainer(x)  # traces the graph
                t1 = time.perf_counter()
                explainer(x)
                warm_ms = (time.perf_counter() - t1) * 1e3
            except Exception as exc:  # any method error must not stop the drive
                text = str(exc).strip().splitlines()
                message = f"{key.method}: {type(exc).__name__}: {text[-1] if text else ''}"[:200]
                log.warning("cannot build saliency %s: %s", key.label, message)
                log.debug("build failure of %s", key.label, exc_info=True)
                with self._lock:
                    self._failed[key] = message
                raise RuntimeError(message) from None
            slow = key.method in self.slow_methods or (
                self.inline_budget_ms is not None and warm_ms > self.inline_budget_ms)
            built = BuiltExplainer(key, explainer, warm_ms, "worker" if slow else "inline")
            log.info("saliency %s ready in %.0f ms (warm call %.1f ms, %s)", key.label,
                     (time.perf_counter() - t0) * 1e3, warm_ms, built.schedule)
            with self._lock:
                self._built[key] = built
            return built

    def force_schedule(self, key: SaliencyKey, schedule: str) -> None:
        """Override where a built key runs (``inline`` or ``worker``); for tests and tools."""
        if schedule not in ("inline", "worker"):
            raise ValueError(f"schedule must be 'inline' or 'worker', got {schedule!r}")
        with self._lock:
            if key in self._built:
                self._built[key] = replace(self._built[key], schedule=schedule)


class TimedExplainer:
    """The inline explainer given to the agent: calls the built explainer and times each call.

    Attributes:
        key: what it explains.
        last_ms: [ms] duration of the last call (prediction and map together).
    """

    def __init__(self, built: BuiltExplainer) -> None:
        self.key = built.key
        self._explainer = built.explainer
        self.last_ms = built.warm_ms

    def __call__(self, x: np.ndarray):
        t0 = time.perf_counter()
        result = self._explainer(x)
        self.last_ms = (time.perf_counter() - t0) * 1e3
        return result


class MethodMenu:
    """Number keys 1-9 over the registered methods.

    Families (a name and the registry names extending it, e.g. ``gradcam`` and
    ``gradcam_multi``) get one key each, in :data:`KEY_ORDER` then registry
    order; pressing the key of the current family again moves to its next
    member. With more than nine families the ninth key cycles through the rest.

    Args:
        names: registry names (default: every registered method).
    """

    def __init__(self, names: Sequence[str] | None = None) -> None:
        names = list(names) if names is not None else METHODS.names()
        roots = sorted((n for n in names if not any(n != r and n.startswith(r + "_") for r in names)),
                       key=lambda n: (KEY_ORDER.index(n) if n in KEY_ORDER else len(KEY_ORDER), n))
        families: List[List[str]] = [[r] + sorted(n for n in names if n.startswith(r + "_")) for r in roots]
        if len(families) > 9:
            families = families[:8] + [[n for fam in families[8:] for n in fam]]
        self.families: Tuple[Tuple[str, ...], ...] = tuple(tuple(f) for f in families)

    def select(self, digit: int, current: str) -> Optional[str]:
        """The method for key ``digit`` (1-9) given the current one; None for an unused key."""
        if not 1 <= digit <= len(self.families):
            return None
        family = self.families[digit - 1]
        if current in family:
            return family[(family.index(current) + 1) % len(family)]
        return family[0]

    def digit_of(self, method: str) -> Optional[int]:
        """The key (1-9) that selects ``method``, or None."""
        for i, fam in enumerate(self.families, start=1):
            if method in fam:
                return i
        return None
