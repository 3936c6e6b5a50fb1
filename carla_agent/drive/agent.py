"""Agents turn an observation into a control: the network driver and the expert.

Both share the verb ``run_step(obs) -> Decision``, like CARLA's agents.
Throttle comes from the model's throttle output when it has one, otherwise a
PID holds the scenario's target speed, capped at the road's speed limit, at the speed
the bends ahead allow (``control/curve_speed.py``: a town's junction turns) and, before
a red light (``truth.red_light_distance_m``), at the speed that stops the car at its
stop line, with a gap keeper behind a lead car (``truth.lead_distance_m``), as CARLA's
``BasicAgent`` stops for red lights and vehicles ahead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Protocol, Tuple

import numpy as np

from carla_agent.control import VehicleControl
from carla_agent.drive.expert import Expert
from carla_agent.errors import ModelError
from carla_agent.sim.observation import Observation
from carla_agent.control.curve_speed import curve_speed_mps
from carla_agent.control.pid import SpeedController


@dataclass(frozen=True)
class Decision:
    """What an agent decided for one frame.

    Attributes:
        control: the control to apply.
        predicted_steer: the steering the agent (network or expert) asked for, in [-1, 1].
        predicted_throttle: the model's throttle output, when it has one.
        outputs: every scalar model output, in model order (empty for the expert).
        attention: the saliency result computed from this frame in the same
            graph as the prediction, when a saliency method is active.
        frame: the frame id the decision was made from.
    """

    control: VehicleControl
    predicted_steer: float
    predicted_throttle: Optional[float] = None
    outputs: Tuple[float, ...] = ()
    attention: Any = None
    frame: int = -1


class Agent(Protocol):
    """Decides a control from each observation (``run_step``), like CARLA's agents.

    ``model`` is the steering network driving (None for the expert) and ``explainer``
    the saliency explainer run in the same graph as the prediction (None when off);
    hooks read them through :class:`~carla_agent.drive.runner.DriveContext`.
    """

    model: Any
    explainer: Any

    def reset(self) -> None: ...

    def run_step(self, obs: Observation) -> Decision: ...


#: Where the agents stop before a red light's stop line, metres ...
STOP_BEFORE_LINE_M = 1.5
#: ... braking at most this hard, m/s^2 (a comfortable stop).
STOP_DECEL_MPS2 = 2.5


class _Cruise:
    """Longitudinal control shared by the agents."""

    def __init__(self, target_speed_mps: float) -> None:
        self.target_speed_mps = target_speed_mps
        self.speed = SpeedController()

    def reset(self) -> None:
        self.speed.reset()

    def pedals(self, obs: Observation) -> Tuple[float, float]:
        """``(throttle, brake)`` holding the target speed, never above the road's speed limit
        (an exit ramp's 40 km/h after an 80 km/h highway)."""
        t = obs.truth
        target = min(self.target_speed_mps, t.speed_limit_mps, curve_speed_mps(t.route_ahead))
        if t.red_light_distance_m is not None:
            # The speed from which STOP_DECEL_MPS2 stops the car STOP_BEFORE_LINE_M short of the line.
            room_m = max(t.red_light_distance_m - STOP_BEFORE_LINE_M, 0.0)
            target = min(target, math.sqrt(2.0 * STOP_DECEL_MPS2 * room_m))
        return self.speed.run_step(target, obs.speed_mps, obs.dt_s, t.lead_distance_m, t.lead_speed_mps)


def _non_finite(model, outputs: np.ndarray, frame: int) -> ModelError:
    """The one-line error for a network that gave NaN or an infinity: the model file, the output, the fix."""
    names = list(getattr(model, "output_names", ())) or [str(k) for k in range(len(outputs))]
    k = int(np.flatnonzero(~np.isfinite(outputs))[0])
    where = getattr(model, "path", None) or "the model"
    return ModelError(f"{where}: output '{names[k] if k < len(names) else k}' is {float(outputs[k])} at frame "
                      f"{frame}, not a finite number; the model is broken (NaN or infinite weights?): retrain it "
                      "or pass another --model")


def check_takes_command(scenario, agent) -> None:
    """Refuse, before driving, a network without a ``command`` input on a town route (it cannot know
    which way to turn at a junction). One line naming the model file, the scenario and the fix."""
    model = getattr(agent, "model", None)
    if model is None or getattr(scenario, "town", None) is None or getattr(model, "takes_command", False):
        return
    where = getattr(model, "path", None) or "the model"
    raise ModelError(f"{where}: has no 'command' input, but scenario '{scenario.name}' ({scenario.source}) is a "
                     f"route through town '{scenario.town}' that needs the route's command at junctions; drive it "
                     "with a command-conditioned model (the shipped one, see README 'Training the model') or "
                     "pick a single-road scenario")


class NetworkAgent:
    """Drives with a :class:`~carla_agent.network.steering_model.SteeringModel`.

    Args:
        model: the steering model (its preprocessing is applied to each frame).
        target_speed_mps: cruise speed when the model has no throttle output.
        explainer: optional saliency explainer; when set, the prediction and the
            map come from its single graph call and the map rides along in
            :attr:`Decision.attention`.
    """

    def __init__(self, model, target_speed_mps: float, explainer=None) -> None:
        self.model = model
        self.explainer = explainer
        self.cruise = _Cruise(target_speed_mps)

    def reset(self) -> None:
        self.cruise.reset()
        reset = getattr(self.explainer, "reset", None)
        if callable(reset):
            reset()

    def run_step(self, obs: Observation) -> Decision:
        set_command = getattr(self.model, "set_command", None)
        if set_command is not None:  # the branch of the route's command drives (and is explained)
            set_command(obs.command)
        x = self.model.preprocessing(obs.image)[None]
        attention = None
        if self.explainer is not None:
            attention = self.explainer(x)
            outputs = np.asarray(attention.prediction[0], dtype=np.float64)
        else:
            outputs = self.model.predict_inputs(x)[0].astype(np.float64)
        if not np.all(np.isfinite(outputs)):
            raise _non_finite(self.model, outputs, obs.frame)
        steer = float(np.clip(outputs[self.model.steer_index], -1.0, 1.0))
        throttle_pred = None
        if self.model.throttle_index is not None:
            throttle_pred = float(outputs[self.model.throttle_index])
            throttle, brake = float(np.clip(throttle_pred, 0.0, 1.0)), float(np.clip(-throttle_pred, 0.0, 1.0))
        else:
            throttle, brake = self.cruise.pedals(obs)
        return Decision(VehicleControl(steer=steer, throttle=throttle, brake=brake), steer, throttle_pred,
                        tuple(float(v) for v in outputs), attention, obs.frame)


class ExpertAgent:
    """Pure pursuit on the lane centre (optionally noisy, for data collection)."""

    model = None
    explainer = None

    def __init__(self, target_speed_mps: float, expert: Optional[Expert] = None) -> None:
        self.expert = expert if expert is not None else Expert()
        self.cruise = _Cruise(target_speed_mps)
        self.last_label = 0.0

    def reset(self) -> None:
        self.cruise.reset()
        self.expert.reset()

    def run_step(self, obs: Observation) -> Decision:
        label, applied = self.expert.run_step(obs)
        self.last_label = label
        throttle, brake = self.cruise.pedals(obs)
        return Decision(VehicleControl(steer=applied, throttle=throttle, brake=brake), label, frame=obs.frame)
