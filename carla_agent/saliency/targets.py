"""Targets: what a map explains, as tiny callables on the explained output column.

A target maps the output column ``y`` (shape ``(N,)``, a TensorFlow tensor inside
the explainer's graph) to a per-frame score whose gradient or change the method
explains, as pytorch-grad-cam's ``BinaryClassifierOutputTarget`` does
(``output * sign``). Steering is normalised: 1.0 = ``max_steer_deg`` of wheel
angle (the simulator maps steer 1.0 to 30 degrees).

- ``right``: ``+y`` (what pushes the output up, steering right);
- ``left``: ``-y``;
- ``straight``: ``-|y|`` (what keeps steering near zero);
- ``auto``: ``right`` above the dead band, ``left`` below it, ``straight`` inside it.

This module imports TensorFlow only when a target is evaluated (inside the graph).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Tuple

import numpy as np

from carla_agent.registry import Registry

DEFAULT_MAX_STEER_DEG = 30.0  # [deg] of wheel angle at normalised steer 1.0
DEFAULT_DEADBAND_DEG = 5.0  # [deg] half-width of the 'straight' band of the auto target


@dataclass(frozen=True)
class Right:
    name: str = "right"

    def __call__(self, y):
        return y

    def per_frame(self, y: np.ndarray) -> Tuple[str, ...]:
        return ("right",) * len(y)


@dataclass(frozen=True)
class Left:
    name: str = "left"

    def __call__(self, y):
        return -y

    def per_frame(self, y: np.ndarray) -> Tuple[str, ...]:
        return ("left",) * len(y)


@dataclass(frozen=True)
class Straight:
    name: str = "straight"

    def __call__(self, y):
        return -abs(y)

    def per_frame(self, y: np.ndarray) -> Tuple[str, ...]:
        return ("straight",) * len(y)


@dataclass(frozen=True)
class Auto:
    """``right`` / ``left`` / ``straight`` chosen per frame from the predicted output.

    Attributes:
        deadband: half-width of the straight band in normalised steer units
            (``deadband_deg / max_steer_deg``).
    """

    deadband: float = DEFAULT_DEADBAND_DEG / DEFAULT_MAX_STEER_DEG
    name: str = "auto"

    def __call__(self, y):
        import tensorflow as tf

        y = tf.convert_to_tensor(y)
        band = tf.constant(self.deadband, y.dtype)
        return tf.where(y > band, y, tf.where(y < -band, -y, -tf.abs(y)))

    def per_frame(self, y: np.ndarray) -> Tuple[str, ...]:
        return tuple("right" if v > self.deadband else "left" if v < -self.deadband else "straight"
                     for v in np.asarray(y, np.float64))


TARGETS: Registry[Callable[[float], object]] = Registry("target")
TARGETS.register("right", lambda deadband: Right())
TARGETS.register("left", lambda deadband: Left())
TARGETS.register("straight", lambda deadband: Straight())
TARGETS.register("auto", lambda deadband: Auto(deadband))


def make_target(target, max_steer_deg: float = DEFAULT_MAX_STEER_DEG,
                deadband_deg: float = DEFAULT_DEADBAND_DEG):
    """A target from a name in :data:`TARGETS` or a callable ``f(y) -> score``.

    Args:
        target: ``auto``, ``right``, ``left``, ``straight``, or a callable.
        max_steer_deg: [deg] wheel angle at normalised steer 1.0.
        deadband_deg: [deg] half-width of the auto target's straight band.
    """
    if callable(target):
        return target
    if max_steer_deg <= 0:
        raise ValueError(f"max_steer_deg must be > 0, got {max_steer_deg}")
    return TARGETS.get(str(target))(float(deadband_deg) / float(max_steer_deg))


def target_name(target) -> str:
    return getattr(target, "name", None) or getattr(target, "__name__", None) or type(target).__name__


def targets_per_frame(target, y: np.ndarray) -> Tuple[str, ...]:
    """The target used for each frame (``auto`` resolved); the name repeated for custom callables."""
    if hasattr(target, "per_frame"):
        return target.per_frame(y)
    return (target_name(target),) * len(y)
