"""TensorFlow's threads per op for this process: :func:`set_tf_threads`, :data:`DRIVE_TF_THREADS`.

TensorFlow is imported only when a setting is applied, so importing this module is cheap.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

#: TensorFlow threads per op for closed-loop driving. One: PilotNet's batch-1 inference is no faster
#: on two cores (bench/bench_recording.py: 146-149 frames/s either way), and a single thread leaves
#: the other core to the recorder's encoder and the HUD's saliency worker instead of competing with them.
DRIVE_TF_THREADS = 1


def set_tf_threads(threads: int) -> bool:
    """Limit TensorFlow's threads per op (intra-op parallelism) for this process.

    Args:
        threads: threads per op; 0 keeps TensorFlow's default (all cores).

    Returns:
        True when the setting took effect; False (with a warning) when TensorFlow
        had already run an op, after which it can no longer be changed.
    """
    if threads <= 0:
        return True
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
    except RuntimeError as exc:
        log.warning("could not set TensorFlow to %d thread(s) per op: %s", threads, exc)
        return False
    return True
