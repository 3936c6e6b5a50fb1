"""Train PilotNet on a dataset written by ``collect``.

:func:`train` splits the frames by episode, streams them through a
``tf.data`` pipeline with NumPy/OpenCV augmentation, fits
:func:`~carla_agent.network.pilotnet.build_pilotnet` with Adam, and writes next to the
model file::

    <out>.keras                 the model (Keras 3 format)
    <out>.json                  sidecar: preprocessing + training summary
    <stem>_training_curves.png  loss / MAE per epoch, predicted vs true steering
    <stem>_metrics.json         the dict that :func:`train` returns

Augmentation works on the dataset's uint8 RGB images (already cropped and
resized) before :meth:`Preprocessing.to_input` converts the colour space:
random brightness, a random shadow quadrilateral, horizontal flips (steering
negated) and small horizontal shifts with a steering correction proportional to
the shift. Validation frames are never augmented.

TensorFlow is imported inside :func:`train`, so importing this module is cheap.
"""

from __future__ import annotations

import json
import logging
import math
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Tuple

import cv2
import numpy as np

from carla_agent.network.dataset import load_dataset
from carla_agent.errors import DatasetError, ModelError
from carla_agent.network.preprocess import Preprocessing, sidecar_path

log = logging.getLogger(__name__)

MIN_FRAMES = 10
REFERENCE_WIDTH = 200  # the width at which shift_steer_per_px is given


# -- split -------------------------------------------------------------------
def split_indices(episode: np.ndarray, val_fraction: float, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Deterministic train/validation split of frame indices.

    The contiguous tail of ``val_fraction`` of every episode is validation.
    Every scenario and weather is then on both sides (holding out whole
    episodes once left the only hairpin episodes out of training), while
    neighbouring, near-identical frames meet at one boundary per episode only.

    Args:
        episode: ``(N,)`` int episode index per frame, frames in driving order.
        val_fraction: wanted fraction of frames in validation, in (0, 1).
        seed: unused; kept so callers need not change when the rule does.

    Returns:
        ``(train_idx, val_idx)``, sorted int64 index arrays, disjoint, both non-empty.
    """
    del seed
    n = int(episode.shape[0])
    is_val = np.zeros(n, bool)
    for e in np.unique(episode):
        idx = np.flatnonzero(episode == e)
        n_val = int(round(val_fraction * len(idx)))
        if len(idx) >= 2 and n_val >= 1:
            is_val[idx[len(idx) - min(n_val, len(idx) - 1):]] = True
    if not is_val.any():
        is_val[n - 1] = True
    if is_val.all():
        is_val[0] = False
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


# -- augmentation --------------------------------------------------------------
class Augmenter:
    """Random photometric and geometric changes of uint8 RGB image batches.

    Args:
        seed: seeds the generator; batches augmented in the same order give the same result.
        brightness: factor range for pixel values, e.g. ``(0.6, 1.3)``.
        shadow_prob: probability of a shadow per image.
        shadow_darkness: factor range applied inside the shadow, e.g. ``(0.4, 0.8)``.
        flip_prob: probability of a horizontal flip (steering negated).
        max_shift: largest horizontal shift as a fraction of the width.
        shift_steer_per_px: steering added per pixel of shift to the right, given
            for a 200 px wide image and scaled by ``200 / width`` for other widths.
            Positive because content moving right means the car sits left of
            where it was and must steer right (CARLA: positive steers right).
    """

    def __init__(self, seed: int = 0, *, brightness: Tuple[float, float] = (0.6, 1.3),
                 shadow_prob: float = 0.5, shadow_darkness: Tuple[float, float] = (0.4, 0.8),
                 flip_prob: float = 0.5, max_shift: float = 0.1,
                 shift_steer_per_px: float = 0.004) -> None:
        self.rng = np.random.default_rng(seed)
        self.brightness = brightness
        self.shadow_prob = shadow_prob
        self.shadow_darkness = shadow_darkness
        self.flip_prob = flip_prob
        self.max_shift = max_shift
        self.shift_steer_per_px = shift_steer_per_px

    def __call__(self, images: np.ndarray, steer: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Augment a batch.

        Args:
            images: ``(B, H, W, 3)`` uint8 RGB.
            steer: ``(B,)`` float32 steering labels in [-1, 1].

        Returns:
            New ``(B, H, W, 3)`` uint8 images and ``(B,)`` float32 labels clipped to [-1, 1].
        """
        rng = self.rng
        b, h, w, _ = images.shape
        out = np.empty_like(images)
        steer = np.asarray(steer, np.float32).copy()
        per_px = self.shift_steer_per_px * REFERENCE_WIDTH / w
        max_px = self.max_shift * w
        for i in range(b):
            img = images[i].astype(np.float32)
            img *= rng.uniform(*self.brightness)
            if rng.random() < self.shadow_prob:
                xs_top = np.sort(rng.uniform(0, w, 2))
                xs_bot = np.sort(rng.uniform(0, w, 2))
                poly = np.array([[xs_top[0], 0], [xs_top[1], 0], [xs_bot[1], h - 1], [xs_bot[0], h - 1]],
                                np.int32)
                mask = np.zeros((h, w), np.uint8)
                cv2.fillConvexPoly(mask, poly, 1)
                img[mask.astype(bool)] *= rng.uniform(*self.shadow_darkness)
            img = np.clip(img, 0, 255).astype(np.uint8)
            if rng.random() < self.flip_prob:
                img = img[:, ::-1]
                steer[i] = -steer[i]
            if max_px > 0:
                dx = rng.uniform(-max_px, max_px)
                m = np.float32([[1, 0, dx], [0, 1, 0]])
                img = cv2.warpAffine(np.ascontiguousarray(img), m, (w, h), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REPLICATE)
                steer[i] += dx * per_px
            out[i] = img
        return out, np.clip(steer, -1.0, 1.0).astype(np.float32)


# -- pipeline ------------------------------------------------------------------
def _make_dataset(images: np.ndarray, steer: np.ndarray, indices: np.ndarray, prep: Preprocessing, *,
                  batch_size: int, shuffle: bool, augmenter: Augmenter | None, seed: int):
    """``tf.data.Dataset`` of ``((B, H, W, C) float32 in [0, 255], (B, 1) float32)`` batches."""
    import tensorflow as tf

    h, w, c = prep.height, prep.width, prep.channels

    def load(idx: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        x = images[idx]
        y = steer[idx].astype(np.float32)
        if augmenter is not None:
            x, y = augmenter(x, y)
        return prep.to_input(x), y.reshape(-1, 1)

    def tf_load(idx):
        x, y = tf.numpy_function(load, [idx], [tf.float32, tf.float32], stateful=augmenter is not None)
        x.set_shape((None, h, w, c))
        y.set_shape((None, 1))
        return x, y

    ds = tf.data.Dataset.from_tensor_slices(indices.astype(np.int64))
    if shuffle:
        ds = ds.shuffle(len(indices), seed=seed, reshuffle_each_iteration=True)
    # Sequential map: the augmenter's generator is shared, so order must be fixed.
    return ds.batch(batch_size).map(tf_load).prefetch(tf.data.AUTOTUNE)


def _epoch_logger():
    import keras

    class EpochLog(keras.callbacks.Callback):
        """One log line per epoch."""

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            log.info("epoch %d/%d: loss %.4f mae %.4f | val_loss %.4f val_mae %.4f | lr %.2g | %.1fs",
                     epoch + 1, self.params.get("epochs", 0), logs.get("loss", math.nan),
                     logs.get("mae", math.nan), logs.get("val_loss", math.nan),
                     logs.get("val_mae", math.nan), lr, time.perf_counter() - self._t0)

    return EpochLog()


def _plot(history: Dict[str, list], y_true: np.ndarray, y_pred: np.ndarray, best_epoch: int,
          path: Path) -> None:
    """Loss and MAE per epoch, and predicted vs true validation steering, to a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(15, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for ax, key, title in ((fig.add_subplot(1, 3, 1), "loss", "loss"),
                           (fig.add_subplot(1, 3, 2), "mae", "MAE (steer)")):
        ax.plot(epochs, history.get(key, []), "o-", label="train")
        ax.plot(epochs, history.get(f"val_{key}", []), "o-", label="validation")
        ax.axvline(best_epoch, color="gray", ls="--", lw=1, label=f"best (epoch {best_epoch})")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    ax = fig.add_subplot(1, 3, 3)
    ax.scatter(y_true, y_pred, s=6, alpha=0.5)
    ax.plot([-1, 1], [-1, 1], "k--", lw=1)
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("true steer")
    ax.set_ylabel("predicted steer")
    ax.set_title("validation: predicted vs true")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


def train(dataset_dir: str | Path, out_path: str | Path, *, epochs: int = 30, batch_size: int = 64,
          val_fraction: float = 0.15, patience: int = 5, learning_rate: float = 1e-3, seed: int = 0,
          augment: bool = True, loss: str = "mse", shift_steer_per_px: float = 0.004,
          max_shift: float = 0.1, dropout: float = 0.2) -> Dict[str, Any]:
    """Train PilotNet on a dataset directory and save it with its sidecar.

    Args:
        dataset_dir: directory written by ``collect`` (see :mod:`carla_agent.network.dataset`).
        out_path: model file to write; must end in ``.keras``. Parent folders are created.
        epochs: maximum number of epochs (early stopping may end sooner).
        batch_size: frames per batch.
        val_fraction: fraction of frames for validation, in (0, 1); split by episode.
        patience: epochs without val_loss improvement before stopping; the
            learning rate halves after ``max(1, patience // 2)`` such epochs.
        learning_rate: initial Adam learning rate.
        seed: seeds the split, the weights, the shuffling and the augmentation.
        augment: augment training frames (brightness, shadow, flip, shift).
        loss: ``"mse"`` or ``"huber"`` (delta 0.1, robust to outlier labels).
        shift_steer_per_px: steering correction per pixel of horizontal shift
            at 200 px width (scaled with the width).
        max_shift: largest augmentation shift, as a fraction of the width.
        dropout: PilotNet dropout rate.

    Returns:
        Metrics dict (also written to ``<stem>_metrics.json``): ``model``,
        ``dataset``, ``frames``, ``train_frames``, ``val_frames``,
        ``train_episodes``, ``val_episodes``, ``epochs_run``, ``best_epoch`` (1-based),
        ``best_val_loss``, ``best_val_mae``, ``val_mae``, ``val_rmse``,
        ``baseline_val_mae`` (predicting the training mean), ``history``
        (per-epoch lists), ``seed``, ``date``, ``seconds``, ``files``...

    Raises:
        DatasetError: missing/malformed dataset, too few frames, bad labels.
        ModelError: bad ``out_path``, or the input size is too small for PilotNet.
        ValueError: a bad hyper-parameter.
    """
    t_start = time.perf_counter()
    dataset_dir = Path(dataset_dir)
    out_path = Path(out_path)
    if out_path.suffix != ".keras":
        raise ModelError(f"{out_path}: the trained model is saved in Keras format; pass --out PATH "
                         f"ending in .keras")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if epochs < 1 or batch_size < 1 or patience < 0:
        raise ValueError(f"need epochs >= 1, batch_size >= 1, patience >= 0; got {epochs}, "
                         f"{batch_size}, {patience}")
    if loss not in ("mse", "huber"):
        raise ValueError(f"loss must be 'mse' or 'huber', got {loss!r}")

    data = load_dataset(dataset_dir)
    prep = data.preprocessing
    images, steer, episode = data.arrays["images"], data.arrays["steer"], data.arrays["episode"]
    n = len(data)
    if n < MIN_FRAMES:
        raise DatasetError(f"{dataset_dir}: only {n} frames; collect at least {MIN_FRAMES} "
                           f"(thousands for a useful model)")
    if images.shape[1:] != (prep.height, prep.width, 3) or images.dtype != np.uint8:
        raise DatasetError(f"{dataset_dir}: images are {images.shape[1:]} {images.dtype} but meta.json "
                           f"says {prep.height}x{prep.width} RGB uint8; collect the dataset again")
    if not np.all(np.isfinite(steer)):
        raise DatasetError(f"{dataset_dir}: {int(np.sum(~np.isfinite(steer)))} steer labels are not "
                           f"finite; collect the dataset again")
    steer = np.clip(steer.astype(np.float32), -1.0, 1.0)

    train_idx, val_idx = split_indices(episode, val_fraction, seed)
    train_eps, val_eps = np.unique(episode[train_idx]), np.unique(episode[val_idx])
    log.info("dataset %s: %d frames, %d episodes; train %d frames (%d episodes), validation %d frames "
             "(%d episodes)", dataset_dir, n, len(np.unique(episode)), len(train_idx), len(train_eps),
             len(val_idx), len(val_eps))

    import keras
    import tensorflow as tf  # noqa: F401  (used by the pipeline)

    from carla_agent.network.pilotnet import build_pilotnet

    keras.utils.set_random_seed(seed)
    try:
        model = build_pilotnet(input_shape=(prep.height, prep.width, prep.channels), dropout=dropout,
                               seed=seed)
    except ValueError as exc:
        raise ModelError(f"{dataset_dir}: PilotNet cannot take {prep.height}x{prep.width} inputs "
                         f"({str(exc).splitlines()[0][:150]}); collect with at least 66x200") from None
    keras_loss = keras.losses.Huber(delta=0.1) if loss == "huber" else "mse"
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=keras_loss, metrics=["mae"])

    augmenter = (Augmenter(seed, max_shift=max_shift, shift_steer_per_px=shift_steer_per_px)
                 if augment else None)
    train_ds = _make_dataset(images, steer, train_idx, prep, batch_size=batch_size, shuffle=True,
                             augmenter=augmenter, seed=seed)
    val_ds = _make_dataset(images, steer, val_idx, prep, batch_size=batch_size, shuffle=False,
                           augmenter=None, seed=seed)

    early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                          restore_best_weights=True)
    reduce = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5,
                                               patience=max(1, patience // 2), min_lr=1e-6)
    fit = model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=0, shuffle=False,
                    callbacks=[_epoch_logger(), early, reduce])
    history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
    epochs_run = len(history.get("loss", []))
    best = int(np.argmin(history["val_loss"]))

    # Evaluate the restored best weights without augmentation or dropout.
    y_true = steer[val_idx]
    y_pred = model.predict(val_ds, verbose=0).reshape(-1)
    err = y_pred - y_true
    baseline = float(np.mean(np.abs(y_true - float(np.mean(steer[train_idx])))))
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")

    out_path.parent.mkdir(parents=True, exist_ok=True)
    curves_path = out_path.with_name(f"{out_path.stem}_training_curves.png")
    metrics_path = out_path.with_name(f"{out_path.stem}_metrics.json")
    side_path = sidecar_path(out_path)
    model.save(out_path)

    metrics: Dict[str, Any] = {
        "model": str(out_path),
        "dataset": str(dataset_dir),
        "frames": n,
        "train_frames": int(len(train_idx)),
        "val_frames": int(len(val_idx)),
        "train_episodes": [int(e) for e in train_eps],
        "val_episodes": [int(e) for e in val_eps],
        "epochs_run": epochs_run,
        "best_epoch": best + 1,
        "best_val_loss": history["val_loss"][best],
        "best_val_mae": history["val_mae"][best],
        "val_mae": float(np.mean(np.abs(err))),
        "val_rmse": float(np.sqrt(np.mean(err ** 2))),
        "baseline_val_mae": baseline,
        "loss": loss,
        "augment": augment,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "date": date,
        "history": history,
        "files": {"model": str(out_path), "sidecar": str(side_path), "curves": str(curves_path),
                  "metrics": str(metrics_path)},
    }
    sidecar = {
        "preprocessing": prep.to_dict(),
        "training": {k: metrics[k] for k in (
            "dataset", "frames", "train_frames", "val_frames", "epochs_run", "best_epoch",
            "best_val_loss", "best_val_mae", "baseline_val_mae", "loss", "augment", "seed", "date")},
    }
    side_path.write_text(json.dumps(sidecar, indent=2))
    _plot(history, y_true, y_pred, best + 1, curves_path)
    metrics["seconds"] = round(time.perf_counter() - t_start, 2)
    metrics_path.write_text(json.dumps(metrics, indent=2))
    log.info("saved %s (best epoch %d: val_loss %.4f, val_mae %.4f; predicting the mean: %.4f) in %.0fs",
             out_path, best + 1, metrics["best_val_loss"], metrics["best_val_mae"], baseline,
             metrics["seconds"])
    return metrics
