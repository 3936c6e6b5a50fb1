"""Train PilotNet on a dataset written by ``collect``.

On a dataset with route commands (town routes) the model is the branched,
command-conditioned PilotNet (:func:`~carla_agent.network.pilotnet.build_pilotnet`
with ``commands``), fed ``(image, one-hot command)``; ``init_from`` fine-tunes
from an earlier model's weights.

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
negated; never a junction frame, whose mirror is left-hand traffic) and small horizontal shifts with a steering correction proportional to
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

import numpy as np

from carla_agent.network.augment import Augmenter  # noqa: F401  (re-exported)
from carla_agent.network.command import COMMAND_INPUT, COMMAND_ORDER, command_name, command_one_hot
from carla_agent.network.dataset import load_dataset
from carla_agent.errors import DatasetError, ModelError
from carla_agent.network.preprocess import Preprocessing, sidecar_path
from carla_agent.sim.routing.road_option import RoadOption

#: Commands whose frames ``turn_repeat`` repeats.
JUNCTION_COMMANDS = (int(RoadOption.LEFT), int(RoadOption.RIGHT), int(RoadOption.STRAIGHT))

log = logging.getLogger(__name__)

MIN_FRAMES = 10


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


# -- pipeline ------------------------------------------------------------------
def _make_dataset(images: np.ndarray, steer: np.ndarray, indices: np.ndarray, prep: Preprocessing, *,
                  batch_size: int, shuffle: bool, augmenter: Augmenter | None, seed: int,
                  command: np.ndarray | None = None):
    """``tf.data.Dataset`` of ``((B, H, W, C) float32 in [0, 255], (B, 1) float32)`` batches; with
    ``command`` (``(N,)`` RoadOption values) the input is ``(image, (B, 6) one-hot command)``."""
    import tensorflow as tf

    h, w, c = prep.height, prep.width, prep.channels
    k = len(COMMAND_ORDER)

    def load(idx: np.ndarray):
        x = images[idx]
        y = steer[idx].astype(np.float32)
        cmd = command[idx] if command is not None else np.full(len(idx), 4)
        if augmenter is not None:
            x, y, cmd = augmenter(x, y, cmd)
        return prep.to_input(x), command_one_hot(cmd), y.reshape(-1, 1)

    def tf_load(idx):
        x, cmd, y = tf.numpy_function(load, [idx], [tf.float32, tf.float32, tf.float32],
                                      stateful=augmenter is not None)
        x.set_shape((None, h, w, c))
        cmd.set_shape((None, k))
        y.set_shape((None, 1))
        return ((x, cmd), y) if command is not None else (x, y)

    ds = tf.data.Dataset.from_tensor_slices(indices.astype(np.int64))
    if shuffle:
        ds = ds.shuffle(len(indices), seed=seed, reshuffle_each_iteration=True)
    # Sequential map: the augmenter's generator is shared, so order must be fixed.
    return ds.batch(batch_size).map(tf_load).prefetch(tf.data.AUTOTUNE)


def _build(prep: Preprocessing, dataset_dir, dropout: float, seed: int, commands: bool, init_from):
    """The model to train: PilotNet (branched with ``commands``), started from ``init_from``'s weights,
    and whether its lane-change heads came from there (a model that has them)."""
    from carla_agent.network.pilotnet import LANE_CHANGE_HEADS, build_pilotnet, has_heads, init_from as copy_weights

    try:
        model = build_pilotnet(input_shape=(prep.height, prep.width, prep.channels), dropout=dropout,
                               seed=seed, commands=commands)
    except ValueError as exc:
        raise ModelError(f"{dataset_dir}: PilotNet cannot take {prep.height}x{prep.width} inputs "
                         f"({str(exc).splitlines()[0][:150]}); collect with at least 66x200") from None
    if init_from is not None:
        import keras

        try:
            base = keras.saving.load_model(str(init_from), compile=False)
        except Exception as exc:  # Keras raises many types for a bad file
            raise ModelError(f"{init_from}: cannot read the model to start from ({type(exc).__name__}); "
                             "pass --init-from PATH to a .keras model") from None
        copied = copy_weights(model, base)
        if copied == 0:
            raise ModelError(f"{init_from}: no layer matches PilotNet's by name and shape; "
                             "pass --init-from a PilotNet trained by this project")
        log.info("started from %s: %d layers' weights copied", init_from, copied)
        return model, has_heads(base, LANE_CHANGE_HEADS)
    return model, False


def _command_mask(command: np.ndarray, names: Tuple[str, ...]) -> np.ndarray:
    """``(N,)`` bool: frames whose command (RoadOption values, others count as LANEFOLLOW) is named in
    ``names``; an unknown name -> ``ValueError`` listing the known ones."""
    from carla_agent.network.command import COMMAND_ORDER, command_column

    known = {o.name: i for i, o in enumerate(COMMAND_ORDER)}
    unknown = [n for n in names if n.upper() not in known]
    if unknown:
        raise ValueError(f"only_commands: unknown {', '.join(unknown)}; known: {', '.join(known)}")
    values = np.unique(command)
    wanted = [int(v) for v in values if command_column(int(v)) in {known[n.upper()] for n in names}]
    return np.isin(command, wanted)


def _freeze(model, names: Tuple[str, ...]) -> None:
    """Mark the layers ``names`` not trainable; an unknown name -> ``ValueError`` listing the known ones."""
    known = [layer.name for layer in model.layers if layer.weights]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"freeze: no layer named {', '.join(unknown)}; layers with weights: {', '.join(known)}")
    for layer in model.layers:
        if layer.name in names:
            layer.trainable = False
    if names:
        log.info("frozen (kept at their starting weights): %s", ", ".join(names))


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
          max_shift: float = 0.1, dropout: float = 0.2, commands: str = "auto",
          init_from: str | Path | None = None, turn_repeat: int = 1,
          freeze: Tuple[str, ...] = (), only_commands: Tuple[str, ...] = ()) -> Dict[str, Any]:
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
        commands: ``"on"``: the branched, command-conditioned PilotNet (inputs image and
            ``command``); ``"off"``: the plain one; ``"auto"``: branched when any frame's
            command is not LANEFOLLOW (a dataset collected on town routes).
        init_from: a ``.keras`` PilotNet whose weights start the training (fine-tuning):
            layers copied by name, a plain model's dense head into every branch, its LANEFOLLOW
            head into lane-change heads it lacks. Lane-change heads that neither come from it nor
            see a lane-change frame are saved as copies of the trained LANEFOLLOW head.
        turn_repeat: training frames whose command is LEFT, RIGHT or STRAIGHT appear this
            many times per epoch (junctions are a small share of the driving).
        freeze: names of layers (e.g. ``("conv1", "conv2", "conv3")``) kept at their starting weights:
            with ``init_from``, the low-level features (and what the saliency maps see) stay.
        only_commands: command names (``LANEFOLLOW``, ``LEFT``, ``RIGHT``, ``STRAIGHT``,
            ``CHANGELANELEFT``, ``CHANGELANERIGHT``): train and
            validate on these commands' frames only (with the other branches frozen, their frames
            would only cost time: a branch's frames move no other branch's weights).

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
    if commands not in ("auto", "on", "off") or turn_repeat < 1:
        raise ValueError(f"need commands in auto/on/off and turn_repeat >= 1; got {commands!r}, {turn_repeat}")

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

    command = data.arrays["command"]
    branched = commands == "on" or (commands == "auto" and bool(np.any(command != 4)))
    train_idx, val_idx = split_indices(episode, val_fraction, seed)
    if only_commands:
        keep = _command_mask(command, only_commands)
        train_idx, val_idx = train_idx[keep[train_idx]], val_idx[keep[val_idx]]
        if len(train_idx) == 0 or len(val_idx) == 0:
            raise DatasetError(f"{dataset_dir}: no {'training' if len(train_idx) == 0 else 'validation'} "
                               f"frame has a command in {', '.join(only_commands)}; collect on town routes")
    if turn_repeat > 1:
        turns = train_idx[np.isin(command[train_idx], JUNCTION_COMMANDS)]
        train_idx = np.sort(np.concatenate([train_idx] + [turns] * (turn_repeat - 1)))
    train_eps, val_eps = np.unique(episode[train_idx]), np.unique(episode[val_idx])
    log.info("dataset %s: %d frames, %d episodes; train %d frames (%d episodes), validation %d frames "
             "(%d episodes)", dataset_dir, n, len(np.unique(episode)), len(train_idx), len(train_eps),
             len(val_idx), len(val_eps))

    import keras
    import tensorflow as tf  # noqa: F401  (used by the pipeline)

    keras.utils.set_random_seed(seed)
    model, lane_changes_given = _build(prep, dataset_dir, dropout, seed, branched, init_from)
    _freeze(model, freeze)
    keras_loss = keras.losses.Huber(delta=0.1) if loss == "huber" else "mse"
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=keras_loss, metrics=["mae"])

    augmenter = (Augmenter(seed, max_shift=max_shift, shift_steer_per_px=shift_steer_per_px)
                 if augment else None)
    cmd = command if branched else None
    train_ds = _make_dataset(images, steer, train_idx, prep, batch_size=batch_size, shuffle=True,
                             augmenter=augmenter, seed=seed, command=cmd)
    val_ds = _make_dataset(images, steer, val_idx, prep, batch_size=batch_size, shuffle=False,
                           augmenter=None, seed=seed, command=cmd)

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
    lane_change_values = (int(RoadOption.CHANGELANELEFT), int(RoadOption.CHANGELANERIGHT))
    if branched and not lane_changes_given and not np.isin(command[train_idx], lane_change_values).any():
        # Untrained, they would steer at random once a car is a lane off: they keep the lane instead.
        from carla_agent.network.pilotnet import LANE_CHANGE_HEADS, copy_head

        copy_head(model, "lanefollow", LANE_CHANGE_HEADS)
        log.info("no lane-change frames: the lane-change heads are copies of the LANEFOLLOW head")
    # Rebuilt from the config, uncompiled: the file holds no optimizer state (a third the size; Keras
    # 3.15's clone_model copies the compiled optimizer along) and no layer stays frozen.
    export = keras.Model.from_config(model.get_config())
    for layer in export.layers:
        layer.trainable = True
    export.set_weights(model.get_weights())
    export.save(out_path)

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
        "command_input": branched,
        "init_from": None if init_from is None else str(init_from),
        "turn_repeat": turn_repeat,
        "only_commands": list(only_commands),
        "frozen": list(freeze),
        "command_frames": {command_name(c): int(np.sum(command == c)) for c in np.unique(command).tolist()},
        "history": history,
        "files": {"model": str(out_path), "sidecar": str(side_path), "curves": str(curves_path),
                  "metrics": str(metrics_path)},
    }
    sidecar = {
        "preprocessing": prep.to_dict(),
        "command": ({"input": COMMAND_INPUT, "one_hot_order": [o.name for o in COMMAND_ORDER],
                     "values": {o.name: int(o) for o in COMMAND_ORDER}} if branched else None),
        "training": {k: metrics[k] for k in (
            "dataset", "frames", "train_frames", "val_frames", "epochs_run", "best_epoch",
            "best_val_loss", "best_val_mae", "baseline_val_mae", "loss", "augment", "seed", "date",
            "init_from", "turn_repeat", "frozen", "only_commands", "command_frames")},
    }
    side_path.write_text(json.dumps(sidecar, indent=2))
    _plot(history, y_true, y_pred, best + 1, curves_path)
    metrics["seconds"] = round(time.perf_counter() - t_start, 2)
    metrics_path.write_text(json.dumps(metrics, indent=2))
    log.info("saved %s (best epoch %d: val_loss %.4f, val_mae %.4f; predicting the mean: %.4f) in %.0fs",
             out_path, best + 1, metrics["best_val_loss"], metrics["best_val_mae"], baseline,
             metrics["seconds"])
    return metrics
