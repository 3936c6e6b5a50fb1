"""``steer_function``: a batch of network inputs -> the steering column, for any model."""

from __future__ import annotations

import numpy as np


def steer_function(model, output=None):
    """``f(images) -> (N,)`` for a :class:`~carla_agent.network.steering_model.SteeringModel` or a keras model."""
    if hasattr(model, "predict_inputs"):
        col = model.steer_index if output is None else model.output_index(output)
        return lambda x: model.predict_inputs(np.asarray(x, np.float32))[:, col]
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    col = 0 if output is None else int(output)

    def f(x):
        out = fn(tf.convert_to_tensor(np.asarray(x, np.float32)))
        if isinstance(out, (list, tuple)):
            out = out[col] if len(out) > 1 else out[0]
            return np.asarray(out).reshape(len(x), -1)[:, 0]
        return np.asarray(out).reshape(len(x), -1)[:, col]

    return f
