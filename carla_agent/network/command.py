"""The route's high-level command as a network input (conditional imitation learning).

A command-conditioned steering model has two inputs: the image, and an input
named ``command`` of shape ``(N, 6)`` float32, the one-hot of the command in the
order of :data:`COMMAND_ORDER` (LANEFOLLOW, LEFT, RIGHT, STRAIGHT, CHANGELANELEFT,
CHANGELANERIGHT; the :class:`~carla_agent.sim.routing.road_option.RoadOption` values
4, 1, 2, 3, 5, 6). Models of the first four only (``(N, 4)``, as this project's up to
2026-12-06 and conditional imitation learning's) keep working: for them a lane change
counts as LANEFOLLOW. Other values (VOID) count as LANEFOLLOW.

:class:`CommandView` wraps such a model into a one-input model of the image alone,
whose command is held in a non-trainable variable (:meth:`CommandView.set`): every
saliency method, the drive loop and the HUD then see an ordinary steering model,
and what they explain is the branch the held command selects. Setting the variable
changes already-traced ``tf.function`` s' results without retracing them.

This module imports Keras only inside the functions that build models.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from carla_agent.errors import ModelError
from carla_agent.sim.routing.road_option import RoadOption

#: Column order of the one-hot command input.
COMMAND_ORDER: Tuple[RoadOption, ...] = (RoadOption.LANEFOLLOW, RoadOption.LEFT, RoadOption.RIGHT,
                                         RoadOption.STRAIGHT, RoadOption.CHANGELANELEFT,
                                         RoadOption.CHANGELANERIGHT)
#: Widths a command input may have: all of :data:`COMMAND_ORDER`, or its first four (no lane changes).
COMMAND_WIDTHS = (len(COMMAND_ORDER), 4)
#: Name of the command input (how a model is recognised as command-conditioned).
COMMAND_INPUT = "command"
_COLUMN = {int(o): i for i, o in enumerate(COMMAND_ORDER)}
_PAIRS = ((RoadOption.LEFT, RoadOption.RIGHT), (RoadOption.CHANGELANELEFT, RoadOption.CHANGELANERIGHT))


def command_column(command: int, width: int = len(COMMAND_ORDER)) -> int:
    """Column of ``command`` (a RoadOption value) in a one-hot of ``width`` columns; unknown values,
    and those past the width (lane changes for a 4-wide model) -> LANEFOLLOW's (0)."""
    col = _COLUMN.get(int(command), 0)
    return col if col < width else 0


def command_one_hot(commands: Any, width: int = len(COMMAND_ORDER)) -> np.ndarray:
    """``(N,)`` RoadOption values -> ``(N, width)`` float32 one-hot in :data:`COMMAND_ORDER`."""
    values = np.asarray(commands, np.int64).reshape(-1)
    cols = np.array([command_column(v, width) for v in values.tolist()], np.int64)
    out = np.zeros((len(values), width), np.float32)
    out[np.arange(len(values)), cols] = 1.0
    return out


def mirror_command(commands: np.ndarray) -> np.ndarray:
    """LEFT <-> RIGHT and CHANGELANELEFT <-> CHANGELANERIGHT (what a horizontally flipped image asks
    for); others unchanged. Same shape/dtype."""
    c = np.asarray(commands)
    out = c.copy()
    for a, b in _PAIRS:
        out[c == int(a)] = int(b)
        out[c == int(b)] = int(a)
    return out


def command_name(command: int) -> str:
    """``"LEFT"`` etc. for a RoadOption value (``"LANEFOLLOW"`` for unknown values)."""
    try:
        return RoadOption(int(command)).name
    except ValueError:
        return RoadOption.LANEFOLLOW.name


def find_command_input(keras_model: Any, where: str) -> Optional[Tuple[int, int]]:
    """``(image_index, command_index)`` among the model's inputs, or None for a one-input model.

    Raises:
        ModelError: two inputs but none named ``command``, or a command input not of shape (N, 6) or (N, 4).
    """
    try:
        inputs = list(keras_model.inputs)
    except (AttributeError, ValueError, TypeError):
        return None
    if len(inputs) != 2:
        return None
    names = [str(getattr(t, "name", "")).split(":")[0] for t in inputs]
    hits = [i for i, n in enumerate(names) if n == COMMAND_INPUT or n.endswith("/" + COMMAND_INPUT)]
    if len(hits) != 1:
        raise ModelError(f"{where}: model has 2 inputs {names}; a steering model takes one image input, "
                         f"plus optionally one named '{COMMAND_INPUT}' (the one-hot route command)")
    c = hits[0]
    shape = tuple(inputs[c].shape)
    if len(shape) != 2 or shape[1] not in COMMAND_WIDTHS:
        raise ModelError(f"{where}: input '{COMMAND_INPUT}' has shape {shape}; expected (N, {len(COMMAND_ORDER)}), "
                         f"the one-hot of {', '.join(o.name for o in COMMAND_ORDER)} (or (N, 4): the first four)")
    return 1 - c, c


class CommandView:
    """A one-input (image) view of a command-conditioned model, the command held in a variable.

    Args:
        keras_model: the two-input model (image, ``command``).
        indices: ``(image_index, command_index)`` from :func:`find_command_input`.

    Attributes:
        model: the one-input ``keras.Model`` (the original is nested inside it, shares its weights).
        command: the RoadOption value held now.
        width: the model's command columns (6, or 4 for a model without lane changes).
    """

    def __init__(self, keras_model: Any, indices: Tuple[int, int]) -> None:
        import keras

        image_index, command_index = indices
        self.width = int(keras_model.inputs[command_index].shape[1])
        held = _held_command_layer()(self.width, name="held_command")
        image_spec = keras_model.inputs[image_index]
        image = keras.Input(shape=tuple(image_spec.shape[1:]), name="image")
        cmd = held(image)
        args = [None, None]
        args[image_index], args[command_index] = image, cmd
        self.model = keras.Model(image, keras_model(args), name=keras_model.name)
        self._held = held
        self.command = int(RoadOption.LANEFOLLOW)
        self.set(self.command)

    @property
    def commands(self) -> Tuple[int, ...]:
        """The RoadOption values this model has a branch for, in its one-hot order."""
        return tuple(int(o) for o in COMMAND_ORDER[:self.width])

    def set(self, command: int) -> None:
        """Hold ``command`` (a RoadOption value) for every later call of :attr:`model`."""
        self.command = int(command)
        self._held.value.assign(command_one_hot([command], self.width)[0])


def _held_command_layer():
    import keras

    class HeldCommand(keras.layers.Layer):
        """Outputs its held one-hot command, tiled to the batch of its (image) input: ``(N, size)``."""

        def __init__(self, size: int, **kwargs) -> None:
            super().__init__(**kwargs)
            self.size = int(size)
            self.value = self.add_weight(shape=(self.size,), initializer="zeros", trainable=False,
                                         name="command")

        def call(self, image):
            n = keras.ops.shape(image)[0]
            return keras.ops.broadcast_to(keras.ops.expand_dims(keras.ops.cast(self.value, "float32"), 0),
                                          (n, self.size))

        def compute_output_shape(self, input_shape):
            return (input_shape[0], self.size)

    return HeldCommand
