"""Tiny models and images for the saliency tests (imported by conftest.py and the tests).

PilotNet itself (66x200, 'valid' convs, one output) comes from carla_agent.network.pilotnet;
here: a 120x160 model with two outputs (steering, throttle) and a conv followed
by a separate ReLU layer, a model with 'same' padding, a dilated conv, batch norm
and pooling layers, and a Functional model with a Sequential backbone inside.
"""

from __future__ import annotations

import numpy as np


def _seeded(seed: int):
    import keras

    return keras.initializers.HeNormal(seed=seed)


def build_two_head(seed: int = 1):
    import keras
    from keras import layers

    inp = keras.Input((120, 160, 3), name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inp)
    x = layers.Conv2D(8, 5, strides=2, activation="relu", kernel_initializer=_seeded(seed), name="c1")(x)
    x = layers.Conv2D(12, 3, strides=2, activation="relu", kernel_initializer=_seeded(seed + 1), name="c2")(x)
    x = layers.Conv2D(16, 3, strides=2, kernel_initializer=_seeded(seed + 2), name="c3")(x)
    x = layers.ReLU(name="c3_relu")(x)
    x = layers.Conv2D(16, 3, strides=2, activation="relu", kernel_initializer=_seeded(seed + 3), name="c4")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu", kernel_initializer=_seeded(seed + 4))(x)
    steer = layers.Dense(1, name="steering", kernel_initializer=_seeded(seed + 5))(x)
    throttle = layers.Dense(1, activation="sigmoid", name="throttle", kernel_initializer=_seeded(seed + 6))(x)
    return keras.Model(inp, [steer, throttle], name="two_head")


def build_same_pool(seed: int = 2, pooling: bool = True, dilation: bool = True):
    import keras
    from keras import layers

    inp = keras.Input((36, 52, 3))
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inp)
    x = layers.Conv2D(6, 3, padding="same", activation="relu", kernel_initializer=_seeded(seed), name="s1")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x) if pooling else \
        layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", kernel_initializer=_seeded(seed + 9),
                      name="s1b")(x)
    x = layers.Conv2D(8, 3, padding="same", kernel_initializer=_seeded(seed + 1), name="s2")(x)
    x = layers.BatchNormalization(name="s2_bn")(x)
    x = layers.Activation("relu", name="s2_act")(x)
    if pooling:
        x = layers.AveragePooling2D(2, padding="same", name="pool2")(x)
    x = layers.Conv2D(8, 3, padding="same", dilation_rate=2 if dilation else 1, activation="relu",
                      kernel_initializer=_seeded(seed + 2), name="s3")(x)
    x = layers.Conv2D(8, 5, strides=2, padding="same", activation="relu", kernel_initializer=_seeded(seed + 3),
                      name="s4")(x)
    x = layers.Flatten()(x)
    out = layers.Dense(1, name="steer", kernel_initializer=_seeded(seed + 4))(x)
    return keras.Model(inp, out, name="same_pool" if pooling else "same_nopool")


def build_nested(seed: int = 3):
    import keras
    from keras import layers

    backbone = keras.Sequential([
        keras.Input((40, 56, 3)),
        layers.Conv2D(6, 3, strides=2, activation="relu", kernel_initializer=_seeded(seed), name="conv1"),
        layers.Conv2D(8, 3, activation="relu", kernel_initializer=_seeded(seed + 1), name="conv2"),
    ], name="backbone")
    inp = keras.Input((40, 56, 3))
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inp)
    x = backbone(x)
    x = layers.Conv2D(8, 3, activation="relu", kernel_initializer=_seeded(seed + 2), name="head_conv")(x)
    x = layers.Flatten()(x)
    out = layers.Dense(1, name="steer", kernel_initializer=_seeded(seed + 3))(x)
    return keras.Model(inp, out, name="nested")


def smooth_images(n: int, hw, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Smooth random images in [0, 255] (random colour blobs)."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = hw
    out = []
    for _ in range(n):
        small = rng.uniform(0, 255, (max(2, h // 8), max(2, w // 8), channels)).astype(np.float32)
        big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, channels)
        out.append(big)
    return np.clip(np.stack(out), 0, 255).astype(np.float32)
