"""NVIDIA PilotNet / DAVE-2 (Bojarski et al., arXiv 1604.07316) in Keras 3.

Layout as in the paper's figure 4: a normalisation layer, five conv layers
(three 5x5 stride 2, two 3x3 stride 1), three dense layers and one output.
The input is the 66 x 200 image from :class:`~carla_agent.network.preprocess.Preprocessing`
(YUV, float32 in [0, 255]); the normalisation layer maps it to [-1, 1].

With ``commands=True`` it is branched as conditional imitation learning's network
(Codevilla et al. 2018, arXiv 1710.02410): the conv trunk is shared, each route
command (:data:`~carla_agent.network.command.COMMAND_ORDER`: LANEFOLLOW, LEFT,
RIGHT, STRAIGHT, CHANGELANELEFT, CHANGELANERIGHT) has its own dense head (``fc1_left`` ...), and the one output
``steer`` is the dot product of the stacked heads with the one-hot ``command``
input: exactly the head of the command given, so gradients and saliency maps
of ``steer`` are those of the branch that drives.

With ``junction_trunk=True`` as well, the junction commands (LEFT, RIGHT, STRAIGHT) get a conv
trunk of their own (``conv1_junction`` ... ``conv5_junction``): trained for turns (e.g. to look at
the lane turned into) while lane keeping and lane changes keep theirs. The saliency methods
that pick a conv layer take it from the trunk of the branch that drives
(:mod:`carla_agent.saliency.branch`).
"""

from __future__ import annotations

from typing import Tuple

CONV_SPECS = (  # filters, kernel, stride
    (24, 5, 2),
    (36, 5, 2),
    (48, 5, 2),
    (64, 3, 1),
    (64, 3, 1),
)
DENSE_UNITS = (100, 50, 10)
JUNCTION_SUFFIX = "_junction"  # the junction trunk's layers: conv1_junction ...
JUNCTION_HEADS = ("left", "right", "straight")


def build_pilotnet(input_shape: Tuple[int, int, int] = (66, 200, 3), dropout: float = 0.2,
                   seed: int = 0, commands: bool = False, junction_trunk: bool = False):
    """Build an untrained PilotNet.

    Args:
        input_shape: ``(height, width, channels)`` of the network input.
        dropout: dropout rate before each dense layer (0 disables it).
        seed: seed of the weight initialisers, for reproducible training.
        commands: branched, with a second input ``command`` ``(N, 6)`` one-hot float32.
        junction_trunk: (with ``commands``) a second conv trunk for the LEFT, RIGHT and
            STRAIGHT heads.

    Returns:
        ``keras.Model`` with one output named ``steer``, shape ``(N, 1)``,
        linear, trained on normalised steering in [-1, 1]; inputs ``image``
        (and ``command`` when ``commands``).
    """
    import keras
    from keras import layers

    if junction_trunk and not commands:
        raise ValueError("junction_trunk=True needs commands=True: the junction trunk feeds the turn branches")
    init = keras.initializers.HeNormal(seed=seed)
    inp = keras.Input(shape=input_shape, name="image")
    x = _trunk(inp, "", init)
    if not commands:
        return keras.Model(inp, _head(x, "", init, dropout, seed, "steer"), name="pilotnet")
    from carla_agent.network.command import COMMAND_INPUT, COMMAND_ORDER

    turns = _trunk(inp, JUNCTION_SUFFIX, keras.initializers.HeNormal(seed=seed + 1)) if junction_trunk else x
    command = keras.Input(shape=(len(COMMAND_ORDER),), name=COMMAND_INPUT)
    heads = [_head(turns if o.name.lower() in JUNCTION_HEADS else x, f"_{o.name.lower()}", init, dropout,
                   seed + 10 * k, f"steer_{o.name.lower()}")
             for k, o in enumerate(COMMAND_ORDER)]
    stacked = layers.Concatenate(name="branches")(heads)
    out = layers.Dot(axes=1, name="steer")([stacked, command])
    return keras.Model([inp, command], out, name="pilotnet_two_trunks" if junction_trunk else "pilotnet_branched")


def has_junction_trunk(model) -> bool:
    """Whether ``model`` has the junction trunk of ``build_pilotnet(junction_trunk=True)``."""
    return any(layer.name == f"conv1{JUNCTION_SUFFIX}" for layer in model.layers)


def _trunk(image, suffix: str, init):
    """The normalisation, ``conv1{suffix}``..``conv5{suffix}`` and ``flatten{suffix}`` on ``image``."""
    from keras import layers

    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name=f"normalize{suffix}")(image)
    for i, (filters, kernel, stride) in enumerate(CONV_SPECS, start=1):
        x = layers.Conv2D(filters, kernel, strides=stride, padding="valid", activation="relu",
                          kernel_initializer=init, name=f"conv{i}{suffix}")(x)
    return layers.Flatten(name=f"flatten{suffix}")(x)


def _head(x, suffix: str, init, dropout: float, seed: int, out_name: str):
    """The dense layers ``fc1{suffix}``..``fc3{suffix}`` and a linear output ``out_name``, ``(N, 1)``."""
    from keras import layers

    for i, units in enumerate(DENSE_UNITS, start=1):
        if dropout > 0:
            x = layers.Dropout(dropout, seed=seed + i, name=f"dropout{i}{suffix}")(x)
        x = layers.Dense(units, activation="relu", kernel_initializer=init, name=f"fc{i}{suffix}")(x)
    return layers.Dense(1, name=out_name)(x)


LANE_CHANGE_HEADS = ("changelaneleft", "changelaneright")


def has_heads(model, names) -> bool:
    """Whether ``model`` has the dense heads ``names`` (e.g. :data:`LANE_CHANGE_HEADS`)."""
    have = {layer.name for layer in model.layers}
    return all(f"steer_{n}" in have for n in names)


def copy_head(model, src: str, dst) -> None:
    """Copy the dense head ``src`` (``fc1_<src>`` .. ``steer_<src>``) into each head of ``dst``."""
    for name in dst:
        for stem in [f"fc{i}" for i in range(1, len(DENSE_UNITS) + 1)] + ["steer"]:
            model.get_layer(f"{stem}_{name}").set_weights(model.get_layer(f"{stem}_{src}").get_weights())


def init_from(model, base) -> int:
    """Copy ``base``'s weights into ``model`` by layer name; a plain PilotNet's dense head (``fc1``..
    ``fc3``, ``steer``) goes into every branch of a branched one, so each branch starts as the
    lane-keeping model; a branch ``base`` lacks (the lane changes, from a 4-command model) starts
    as its LANEFOLLOW branch, and a junction trunk ``base`` lacks starts as its (shared) trunk.
    Layers whose shapes differ are left as they are.

    Returns:
        The number of layers copied.
    """
    src = {layer.name: layer for layer in base.layers if layer.get_weights()}
    copied = 0
    for layer in model.layers:
        if not layer.get_weights():
            continue
        name = layer.name
        stem = name.split("_")[0] if name.startswith(("fc", "steer_")) else name
        match = src.get(name) or src.get(stem)
        if match is None and name.startswith(("fc", "steer_")) and "_" in name:
            match = src.get(name.split("_")[0] + "_lanefollow")
        if match is None and name.endswith(JUNCTION_SUFFIX):
            match = src.get(name[:-len(JUNCTION_SUFFIX)])
        if match is None or [w.shape for w in match.get_weights()] != [w.shape for w in layer.get_weights()]:
            continue
        layer.set_weights(match.get_weights())
        copied += 1
    return copied
