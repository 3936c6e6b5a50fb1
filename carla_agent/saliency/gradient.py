"""Vanilla gradient saliency (Simonyan et al. 2013).

Unsigned (``gradient``): ``max over channels of |d target / d pixel|``, as
tf-keras-vis ``Saliency``. Signed (``gradient_signed``): the sum over channels
of ``d output / d pixel``: positive where brightening a pixel pushes the output
up (steer right), negative where it pushes it down (steer left).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

import tensorflow as tf

from carla_agent.saliency.base import Pass, SaliencyMethod


@dataclass(frozen=True)
class GradientOptions:
    """Attributes:
        signed: keep the sign (sum over channels of the raw output's gradient).
    """

    signed: bool = False


class Gradient(SaliencyMethod):
    """d target / d input in one forward + backward pass."""

    Options = GradientOptions
    default_name = "gradient"
    gradient = "input"

    def maps_from(self, p: Pass) -> Dict[str, tf.Tensor]:
        return {"maps": self.reduce_channels(p.grads)}
