"""The simulator contract every backend implements, and the backend registry.

The contract is four verbs, in the spirit of Gymnasium:

* ``reset(scenario, seed)`` starts an episode and returns the first observation;
* ``step(control)`` applies one control, advances one fixed time step and
  returns the new observation (CARLA's synchronous mode: one tick per step);
* ``recover()`` puts the ego back on its lane centre, aligned with the lane,
  at its current progress: NVIDIA's intervention. It takes effect at the next
  ``step``;
* ``close()`` releases everything (idempotent). Simulators are context managers.

:func:`carla_agent.sim.contract.check_simulator` checks a backend against it.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Optional

from carla_agent.control import VehicleControl
from carla_agent.sim.observation import Observation
from carla_agent.registry import Registry, lazy

if TYPE_CHECKING:
    from carla_agent.sim.scenario import Scenario


class Simulator(abc.ABC):
    """Base class of the backends. See the module docstring for the contract."""

    name: str = "abstract"
    #: the server's version (CARLA), None for a simulator without a server
    server_version: Optional[str] = None
    #: where the simulator itself records this episode (CARLA's recorder), or None
    recorder_file: Optional[str] = None
    #: ticks by which ``truth.expert_steer`` lags the image: 1 when an autopilot that acts on the
    #: state before each tick labels it (CARLA's Traffic Manager), so the label of frame N is
    #: known only with frame N + 1; 0 when the label is computed from the frame's own state
    expert_lag_ticks: int = 0

    def options(self) -> dict:
        """The options that make this backend again as it is now (stored in drive logs)."""
        return {}

    @abc.abstractmethod
    def reset(self, scenario: "Scenario", seed: int = 0) -> Observation:
        """Start an episode of ``scenario``. Same scenario, seed and controls give
        the same observations (bit-identical frames on the embedded backend)."""

    @abc.abstractmethod
    def step(self, control: VehicleControl) -> Observation:
        """Apply ``control`` and advance one time step of ``scenario.dt_s`` seconds."""

    @abc.abstractmethod
    def recover(self) -> None:
        """Put the ego on its lane centre at its current route progress."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release resources. Safe to call more than once."""

    def __enter__(self) -> "Simulator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


#: Backends by name. Values are factories taking keyword options.
BACKENDS: Registry = Registry("backend")
BACKENDS.register("embedded", lazy("carla_agent.sim.embedded.simulator", "EmbeddedSimulator"))
BACKENDS.register("carla", lazy("carla_agent.sim.carla_backend.simulator", "CarlaSimulator"))


def make_simulator(name: str, **options) -> Simulator:
    """Build a backend by name, e.g. ``make_simulator("embedded")``."""
    return BACKENDS.get(name)(**options)
