"""NVIDIA PilotNet / DAVE-2 (Bojarski et al., arXiv 1604.07316) in Keras 3.

Layout as in the paper's figure 4: a normalisation layer, five conv layers
(three 5x5 stride 2, two 3x3 stride 1), three dense layers and one output.
The input is the 66 x 200 image from :class:`~carla_agent.network.preprocess.Preprocessing`
(YUV, float32 in [0, 255]); the normalisation layer maps it to [-1, 1].
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


def build_pilotnet(input_shape: Tuple[int, int, int] = (66, 200, 3), dropout: float = 0.2,
                   seed: int = 0):
    """Build an untrained PilotNet.

    Args:
        input_shape: ``(height, width, channels)`` of the network input.
        dropout: dropout rate before each dense layer (0 disables it).
        seed: seed of the weight initialisers, for reproducible training.

    Returns:
        ``keras.Model`` with one output named ``steer``, shape ``(N, 1)``,
        linear, trained on normalised steering in [-1, 1].
    """
    import keras
    from keras import layers

    init = keras.initializers.HeNormal(seed=seed)
    x = inp = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalize")(x)
    for i, (filters, kernel, stride) in enumerate(CONV_SPECS, start=1):
        x = layers.Conv2D(filters, kernel, strides=stride, padding="valid", activation="relu",
                          kernel_initializer=init, name=f"conv{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    for i, units in enumerate(DENSE_UNITS, start=1):
        if dropout > 0:
            x = layers.Dropout(dropout, seed=seed + i, name=f"dropout{i}")(x)
        x = layers.Dense(units, activation="relu", kernel_initializer=init, name=f"fc{i}")(x)
    out = layers.Dense(1, name="steer")(x)
    return keras.Model(inp, out, name="pilotnet")
