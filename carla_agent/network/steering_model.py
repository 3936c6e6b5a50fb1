"""Load any Keras model that steers, and run it on camera frames.

A *steering model* is a ``keras.Model`` with one image input
``(N, H, W, C)``, ``C`` in {1, 3}, fed with float32 values in [0, 255] in the
colour space of its :class:`~carla_agent.network.preprocess.Preprocessing`, and one or
more outputs that are scalars per sample (``(N,)`` or ``(N, 1)``) or one
vector head ``(N, k)`` whose columns are separate scalars. PilotNet from
:func:`carla_agent.network.pilotnet.build_pilotnet` is one; a model trained elsewhere
is fine too. A second input named ``command``, ``(N, 6)`` (or ``(N, 4)``), makes it
command-conditioned (:mod:`carla_agent.network.command`): :meth:`SteeringModel.set_command`
holds the route's command, and :attr:`SteeringModel.keras_model` is a one-input view
of the image whose output is the branch of that command.

The preprocessing comes, in this order, from an explicit argument, from the
JSON sidecar next to the model file (``model.keras`` -> ``model.json``, key
``"preprocessing"``), or from the model's input size with the default crops
and ``rgb`` (3 channels) or ``gray`` (1 channel).

TensorFlow is imported only when a model is built or loaded, so importing this
module is cheap.

Example::

    model = SteeringModel.load("runs/pilotnet.keras")
    pred = model.predict(frame)          # frame: (H, W, 3) uint8 RGB
    control_steer = pred.steer           # in [-1, 1], positive = right
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from carla_agent.errors import ModelError
from carla_agent.network.command import CommandView, find_command_input
from carla_agent.network.preprocess import Preprocessing, sidecar_path, sidecar_preprocessing

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
_FIX_HINT = "pass --model PATH to a .keras or .h5 file"


@dataclass(frozen=True)
class Prediction:
    """One frame's model outputs.

    Attributes:
        steer: steering output clipped to [-1, 1] (positive steers right, CARLA).
        throttle: throttle output as the model gives it (not clipped), or
            ``None`` when the model has no throttle output.
        outputs: every scalar output, unclipped, in the order of
            :attr:`SteeringModel.output_names`.
    """

    steer: float
    throttle: Optional[float]
    outputs: Tuple[float, ...]


def _one_line(exc: BaseException, limit: int = 200) -> str:
    """``TypeName: first line of the message`` shortened to ``limit`` characters."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_container(path: Path) -> None:
    """Name what is wrong with a file that is no model container at all: Keras says "File not found"
    of an empty or damaged ``.keras`` file that exists."""
    import zipfile

    size = path.stat().st_size
    if size == 0:
        raise ModelError(f"{path}: the model file is empty (0 bytes: a copy or download cut short?); {_FIX_HINT}")
    with path.open("rb") as f:  # HDF5's signature sits at 0 or after a user block of 512 * 2**k bytes
        heads = [(f.seek(at), f.read(8))[1] for at in (0, 512, 1024, 2048, 4096) if at < size]
    if path.suffix.lower() == ".keras" and not zipfile.is_zipfile(path):
        raise ModelError(f"{path}: not a .keras file ({size} bytes, no zip archive inside: a copy cut short, "
                         f"or another format renamed?); {_FIX_HINT}")
    if path.suffix.lower() != ".keras" and b"\x89HDF\r\n\x1a\n" not in heads:
        raise ModelError(f"{path}: not an HDF5 file ({size} bytes, no HDF5 signature: a copy cut short, "
                         f"or another format renamed?); {_FIX_HINT}")


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _conv_layer_classes():
    from keras import layers

    names = ("Conv1D", "Conv2D", "Conv3D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose")
    return tuple(getattr(layers, n) for n in names if hasattr(layers, n))


class SteeringModel:
    """A Keras model that steers, with its preprocessing and one compiled inference function.

    Args:
        keras_model: a built ``keras.Model`` (see the module docstring for what it must look like).
        preprocessing: wins over the sidecar and the default when given.
        path: the file the model came from; used for the sidecar, :attr:`sha256`
            and error messages. ``None`` for a model built in memory.

    Attributes:
        keras_model: the wrapped ``keras.Model`` (the saliency engine uses it); for a model with a
            ``command`` input, its one-input view with the command held (:meth:`set_command`).
        file_model: the model as loaded or given (two inputs for a command-conditioned one).
        preprocessing: camera frame -> network input, size equal to the model's input.
        path: model file or ``None``.
        input_shape: ``(H, W, C)`` of the network input, ints.
        output_names: names of the scalar outputs, ``len == n_outputs``.
        steer_index: index into :attr:`output_names` of the steering output.
        throttle_index: index of the throttle output, or ``None``.

    Raises:
        ModelError: the model cannot steer (input/output shapes), or the
            preprocessing size or channels disagree with the model's input.
    """

    def __init__(self, keras_model: Any, preprocessing: Preprocessing | None = None,
                 path: str | Path | None = None) -> None:
        self.path: Optional[Path] = Path(path) if path is not None else None
        self._where = str(self.path) if self.path is not None else f"model {getattr(keras_model, 'name', '?')!r}"
        self.file_model = keras_model
        found = find_command_input(keras_model, self._where)
        self.command_view: Optional[CommandView] = None if found is None else CommandView(keras_model, found)
        self.keras_model = keras_model if self.command_view is None else self.command_view.model
        self.input_shape: Tuple[int, int, int] = self._check_input()
        self.output_names: List[str] = self._flat_output_names()
        self.preprocessing: Preprocessing = self._resolve_preprocessing(preprocessing)
        h, w, c = self.input_shape
        if h is None or w is None:  # size-agnostic model: take it from the preprocessing
            self.input_shape = (self.preprocessing.height, self.preprocessing.width, c)
        steer = self._find("steer", "angle")
        self.steer_index: int = 0 if steer is None else steer
        throttle = self._find("throttle")
        if throttle is None and self.n_outputs == 2:
            throttle = 1 - self.steer_index
        self.throttle_index: Optional[int] = None if throttle == self.steer_index else throttle
        self._sha256: Optional[str] = None
        self._fn = self._build_function()
        self._warm_up()
        log.info("steering model %s: input %s, outputs %s (steer=%s, throttle=%s), preprocessing %s",
                 self._where, self.input_shape, self.output_names, self.steer_index,
                 self.throttle_index, self.preprocessing)

    # -- loading -------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, preprocessing: Preprocessing | None = None) -> "SteeringModel":
        """Load a ``.keras`` or legacy ``.h5`` model file (``compile=False``).

        Args:
            path: model file; its sidecar ``<stem>.json`` is read when present.
            preprocessing: overrides the sidecar / default preprocessing.

        Raises:
            ModelError: missing file, wrong extension, unreadable/corrupt file,
                or a model that cannot steer.
        """
        path = Path(path)
        if not path.exists():
            raise ModelError(f"{path}: no such model file; {_FIX_HINT}")
        if path.is_dir():
            raise ModelError(f"{path}: is a directory (a TF SavedModel?); re-save the model with "
                             f"model.save('model.keras') and {_FIX_HINT}")
        if path.suffix.lower() not in MODEL_SUFFIXES:
            raise ModelError(f"{path}: unsupported model file extension {path.suffix!r}; "
                             f"{_FIX_HINT}")
        _check_container(path)
        import keras

        try:
            model = keras.saving.load_model(str(path), compile=False)
        except Exception as exc:  # Keras raises many types for a bad file
            raise ModelError(f"{path}: cannot read the model file ({_one_line(exc)}); "
                             f"re-save it with Keras 3 model.save() or {_FIX_HINT}") from None
        if not isinstance(model, keras.Model):
            raise ModelError(f"{path}: holds a {type(model).__name__}, not a keras.Model; {_FIX_HINT}")
        return cls(model, preprocessing=preprocessing, path=path)

    # -- checks --------------------------------------------------------------
    def _check_input(self) -> Tuple[int, int, int]:
        try:
            inputs = list(self.keras_model.inputs)
        except (AttributeError, ValueError, TypeError):
            raise ModelError(f"{self._where}: model has no defined inputs; build it with keras.Input("
                             f"shape=(H, W, C)) (functional or Sequential)") from None
        if len(inputs) != 1:
            raise ModelError(f"{self._where}: model has {len(inputs)} inputs, a steering model needs "
                             f"exactly one (N, H, W, C) image input")
        shape = tuple(inputs[0].shape)
        if len(shape) != 4:
            raise ModelError(f"{self._where}: model input has shape {shape}, a steering model needs "
                             f"an image input (N, H, W, C)")
        _, h, w, c = shape
        if c not in (1, 3):
            raise ModelError(f"{self._where}: model input has {c} channels (shape {shape}); "
                             f"a steering model needs 1 (gray) or 3 (colour)")
        if (h is None) != (w is None):
            raise ModelError(f"{self._where}: model input shape {shape} fixes only one of height and "
                             f"width; fix both or neither")
        return (None if h is None else int(h), None if w is None else int(w), int(c))

    def _flat_output_names(self) -> List[str]:
        outputs = list(self.file_model.outputs)
        names = list(getattr(self.file_model, "output_names", None) or [])
        if len(names) != len(outputs):
            names = [f"output_{i}" for i in range(len(outputs))]
        flat: List[str] = []
        for name, out in zip(names, outputs):
            per_sample = tuple(out.shape)[1:]
            if any(d is None for d in per_sample):
                raise ModelError(f"{self._where}: output {name!r} has shape {tuple(out.shape)} with an "
                                 f"unknown size; a steering model needs scalar outputs (N, 1)")
            size = int(np.prod(per_sample)) if per_sample else 1
            if size == 1:
                flat.append(name)
            elif len(per_sample) == 1:
                flat.extend(f"{name}_{i}" for i in range(size))
            else:
                raise ModelError(f"{self._where}: output {name!r} has shape {tuple(out.shape)}, not a "
                                 f"scalar per sample; a steering model needs outputs (N, 1) or (N, k)")
        if not flat:
            raise ModelError(f"{self._where}: model has no outputs")
        return flat

    def _resolve_preprocessing(self, explicit: Preprocessing | None) -> Preprocessing:
        h, w, c = self.input_shape
        source = "the --preprocessing argument"
        prep = explicit
        if prep is None and self.path is not None:
            prep = sidecar_preprocessing(self.path)  # checked field by field; None without a sidecar
            if prep is not None:
                source = str(sidecar_path(self.path))
        if prep is None:
            if h is None:
                raise ModelError(f"{self._where}: model input size is not fixed and there is no "
                                 f"sidecar {sidecar_path(self.path) if self.path else ''}; pass a "
                                 f"Preprocessing with height and width")
            prep = Preprocessing(height=h, width=w, color_space="rgb" if c == 3 else "gray")
            if self.path is not None:  # a wrong guess drives badly with no error, so say it
                log.warning("%s: no sidecar %s; assuming %s, rows %.2f-%.2f of the frame; if the model "
                            "was trained otherwise, write the sidecar (README \"The sidecar\")", self.path,
                            sidecar_path(self.path).name, prep.color_space, prep.crop_top, prep.crop_bottom)
            return prep
        if h is not None and (prep.height, prep.width) != (h, w):
            raise ModelError(f"{source}: preprocessing size {prep.height}x{prep.width} (HxW) disagrees "
                             f"with the model input {h}x{w}; fix height/width to match the model")
        if prep.channels != c:
            raise ModelError(f"{source}: preprocessing color_space {prep.color_space!r} gives "
                             f"{prep.channels} channel(s) but the model input has {c}; use "
                             f"{'gray' if c == 1 else 'rgb, yuv or bgr'}")
        return prep

    def _find(self, *words: str) -> Optional[int]:
        for i, name in enumerate(self.output_names):
            low = name.lower()
            if any(word in low for word in words):
                return i
        return None

    # -- inference -----------------------------------------------------------
    def _build_function(self):
        import keras
        import tensorflow as tf

        h, w, c = self.input_shape
        model = self.keras_model

        @tf.function(input_signature=[tf.TensorSpec((None, h, w, c), tf.float32, name="image")])
        def infer(x):
            out = keras.tree.flatten(model(x, training=False))
            n = tf.shape(x)[0]
            cols = [tf.reshape(tf.cast(o, tf.float32), (n, -1)) for o in out]
            return cols[0] if len(cols) == 1 else tf.concat(cols, axis=1)

        return infer

    def _warm_up(self) -> None:
        """Trace the inference function once and check the output width."""
        try:
            out = self._fn(np.zeros((1, *self.input_shape), np.float32)).numpy()
        except Exception as exc:  # a model that breaks on a zero batch cannot drive
            raise ModelError(f"{self._where}: model fails on a zero input batch "
                             f"({_one_line(exc)}); check that it runs on (1, {', '.join(map(str, self.input_shape))})") from None
        if out.shape != (1, self.n_outputs):
            raise ModelError(f"{self._where}: model returned shape {out.shape} for one sample, "
                             f"expected (1, {self.n_outputs}) from outputs {self.output_names}")

    @property
    def takes_command(self) -> bool:
        """Whether the model has a ``command`` input (it can follow a route through junctions)."""
        return self.command_view is not None

    @property
    def command(self) -> int:
        """The RoadOption value held for the next predictions (LANEFOLLOW, 4, for a model without one)."""
        return self.command_view.command if self.command_view is not None else 4

    def set_command(self, command: int) -> None:
        """Hold the route's command (a RoadOption value) for every later prediction and explanation;
        ignored by a model without a ``command`` input."""
        if self.command_view is not None and int(command) != self.command_view.command:
            self.command_view.set(int(command))

    @property
    def n_outputs(self) -> int:
        """Number of scalar outputs per sample."""
        return len(self.output_names)

    def output_index(self, name_or_index: str | int) -> int:
        """Resolve an output name (exact) or index (negative counts from the end) to an index.

        Raises:
            ModelError: unknown name or index out of range; lists the valid ones.
        """
        valid = f"valid names: {', '.join(self.output_names)}; valid indices: 0..{self.n_outputs - 1}"
        if isinstance(name_or_index, (int, np.integer)) and not isinstance(name_or_index, bool):
            idx = int(name_or_index)
            if -self.n_outputs <= idx < self.n_outputs:
                return idx % self.n_outputs
            raise ModelError(f"{self._where}: output index {idx} out of range; {valid}")
        if isinstance(name_or_index, str):
            if name_or_index in self.output_names:
                return self.output_names.index(name_or_index)
            if name_or_index.lstrip("-").isdigit():
                return self.output_index(int(name_or_index))
        raise ModelError(f"{self._where}: unknown output {name_or_index!r}; {valid}")

    def preprocess(self, frame: np.ndarray) -> np.ndarray:
        """``(Hc, Wc, 3)`` uint8 RGB camera frame -> ``(H, W, C)`` float32 network input in [0, 255]."""
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB camera frame, got shape {frame.shape} "
                             f"dtype {frame.dtype}")
        return self.preprocessing(frame)

    def predict_inputs(self, batch: np.ndarray) -> np.ndarray:
        """Run the network on preprocessed inputs.

        Args:
            batch: ``(N, H, W, C)`` network inputs (float32, values in [0, 255],
                model colour space), e.g. from :meth:`preprocess`.

        Returns:
            ``(N, n_outputs)`` float32, columns in the order of :attr:`output_names`.

        Raises:
            ValueError: ``batch`` is not ``(N, H, W, C)`` with the model's H, W, C.
        """
        batch = np.asarray(batch)
        if batch.ndim != 4 or tuple(batch.shape[1:]) != self.input_shape:
            expected = "(N, " + ", ".join(map(str, self.input_shape)) + ")"
            raise ValueError(f"predict_inputs expects a batch of shape {expected}, got {batch.shape}; "
                             f"use predict(frame) for camera frames")
        if batch.shape[0] == 0:
            return np.zeros((0, self.n_outputs), np.float32)
        return self._fn(batch.astype(np.float32, copy=False)).numpy()

    def prediction_from_row(self, row: Sequence[float]) -> Prediction:
        """Turn one row of :meth:`predict_inputs` into a :class:`Prediction`."""
        values = tuple(float(v) for v in row)
        bad = [name for name, v in zip(self.output_names, values) if not np.isfinite(v)]
        if bad:  # a broken network, not a frame to steer straight on: stop with the model's name
            raise ModelError(f"{self._where}: output '{bad[0]}' is {values[self.output_names.index(bad[0])]}, "
                             "not a finite number; the model is broken (NaN or infinite weights?): retrain it "
                             "or pass another --model")
        steer = float(np.clip(values[self.steer_index], -1.0, 1.0))
        throttle = values[self.throttle_index] if self.throttle_index is not None else None
        return Prediction(steer=steer, throttle=throttle, outputs=values)

    def predict(self, frame: np.ndarray, command: Optional[int] = None) -> Prediction:
        """Steer from one camera frame.

        Args:
            frame: ``(Hc, Wc, 3)`` uint8 RGB camera frame of any size; it is
                cropped, resized and colour-converted by :attr:`preprocessing`.
            command: the route's command (RoadOption value) to hold from now on (see
                :meth:`set_command`); None keeps the one held.

        Returns:
            :class:`Prediction`; ``steer`` in [-1, 1].

        Raises:
            ModelError: an output is NaN or infinite (the message names the model file and the output).
        """
        if command is not None:
            self.set_command(command)
        x = self.preprocess(frame)
        return self.prediction_from_row(self.predict_inputs(x[None])[0])

    # -- provenance ----------------------------------------------------------
    @property
    def sha256(self) -> Optional[str]:
        """Hex SHA-256 of the model file, or ``None`` for an in-memory model."""
        if self._sha256 is None and self.path is not None and self.path.is_file():
            self._sha256 = file_sha256(self.path)
        return self._sha256

    @property
    def conv_layer_names(self) -> List[str]:
        """Names of the top-level convolution layers of :attr:`keras_model`, input to output.

        Only top-level layers are listed: their outputs can be tapped with
        ``keras_model.get_layer(name).output`` (e.g. for Grad-CAM).
        """
        classes = _conv_layer_classes()
        return [layer.name for layer in self.file_model.layers if isinstance(layer, classes)]

    def summary(self) -> Dict[str, Any]:
        """JSON-ready description for drive logs.

        Keys: ``name``, ``path``, ``sha256``, ``params`` (int), ``input_shape``
        ([H, W, C]), ``output_names``, ``steer_output``, ``throttle_output``
        (name or None), ``conv_layers`` (list of names), ``preprocessing`` (dict),
        ``command_input`` (bool: the model takes the route's command).
        """
        return {
            "name": self.file_model.name,
            "path": str(self.path) if self.path is not None else None,
            "sha256": self.sha256,
            "params": int(self.file_model.count_params()),
            "input_shape": list(self.input_shape),
            "output_names": list(self.output_names),
            "steer_output": self.output_names[self.steer_index],
            "throttle_output": (self.output_names[self.throttle_index]
                                if self.throttle_index is not None else None),
            "conv_layers": self.conv_layer_names,
            "preprocessing": self.preprocessing.to_dict(),
            "command_input": self.takes_command,
        }

    def __repr__(self) -> str:
        return (f"SteeringModel({self._where}, input={self.input_shape}, outputs={self.output_names}, "
                f"steer={self.steer_index}, throttle={self.throttle_index})")


from carla_agent.network.steer_function import steer_function  # noqa: E402,F401  (re-exported)
