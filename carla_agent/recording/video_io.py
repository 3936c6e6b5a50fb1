"""Video files: H.264 MP4 and GIF writers, reading back, probing.

Writers (:func:`open_writer`, by file suffix):

* ``.mp4``: H.264 (libx264) in yuv420p through imageio-ffmpeg, even width and
  height (odd sizes are padded by one black pixel), ``+faststart``: plays in
  browsers and slide decks;
* ``.gif``: Pillow, looping, adaptive palette per frame; keep GIFs short.

Everything here is NumPy / OpenCV; no TensorFlow.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Protocol, Tuple

import cv2
import numpy as np

from carla_agent.errors import DiskFullError
from carla_agent.progress import progress_bar
from carla_agent.recording.disk_space import commit_partial, discard, is_disk_full, partial_path
from carla_agent.registry import Registry

log = logging.getLogger(__name__)


class VideoWriter(Protocol):
    """``write(frame)`` RGB uint8 frames of one size, then ``close()`` (idempotent), or ``abort()``.

    The file is written to a temporary name in the same folder (:func:`partial_path`) and
    appears under ``path`` only when :meth:`close` finished it with at least one frame;
    :meth:`abort` (or a failed close) removes the temporary and leaves ``path`` untouched.
    """

    path: Path
    frames: int

    def write(self, frame: np.ndarray) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


def _even(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return cv2.copyMakeBorder(frame, 0, h % 2, 0, w % 2, cv2.BORDER_CONSTANT, value=(0, 0, 0))


class Mp4Writer:
    """H.264 MP4 (yuv420p, even size, faststart) through imageio-ffmpeg's bundled ffmpeg.

    Frames are converted to YUV 4:2:0 with OpenCV and piped raw to an ``ffmpeg`` process
    (which runs on its own threads, in parallel with the caller).

    Args:
        path: output ``.mp4`` file.
        fps: frames per second of the video.
        crf: x264 quality, 0 (lossless) .. 51; 23 (x264's default) keeps maps clean at ~1/3 the size of 18.
        preset: x264 speed preset (``veryfast`` encodes ~3x faster than ``medium``, slightly larger).
    """

    def __init__(self, path: str | Path, fps: float, crf: int = 23, preset: str = "veryfast") -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.crf = int(crf)
        self.preset = preset
        self.frames = 0
        self.size_wh: Optional[Tuple[int, int]] = None
        self._gen = None
        self._closed = False
        self._tmp = partial_path(self.path)

    def _open(self, w: int, h: int) -> None:
        import imageio_ffmpeg

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._gen = imageio_ffmpeg.write_frames(
            str(self._tmp), (w, h), pix_fmt_in="yuv420p", pix_fmt_out="yuv420p", fps=self.fps, quality=None,
            # "fatal": ffmpeg writes to our stderr, and on a full disk its half a dozen "No space left"
            # errors would bury the one line the recorder gives (DiskFullError, raised below).
            codec="libx264", macro_block_size=2, ffmpeg_log_level="fatal",
            output_params=["-crf", str(self.crf), "-preset", self.preset, "-movflags", "+faststart"])
        self._gen.send(None)

    def write(self, frame: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` uint8 RGB frame (all frames the same size)."""
        if self._closed:
            raise ValueError(f"{self.path}: writer is closed")
        frame = _even(np.asarray(frame))
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected (H, W, 3) uint8 RGB frames, got {frame.dtype} {frame.shape}")
        h, w = frame.shape[:2]
        if self._gen is None:
            self.size_wh = (w, h)
            self._open(w, h)
        elif (w, h) != self.size_wh:
            raise ValueError(f"{self.path}: frame is {w}x{h}, the video is {self.size_wh[0]}x{self.size_wh[1]}")
        # RGB -> YUV 4:2:0 (BT.601, limited range) here: ~0.2 ms with OpenCV, where ffmpeg's
        # swscale takes ~1 ms of the encoder's CPU and is less exact on sharp colour edges.
        try:
            self._gen.send(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2YUV_I420))
        except OSError as exc:  # ffmpeg died: on a full disk this reads "Broken pipe"
            self.abort()
            if is_disk_full(exc, self.path.parent):
                raise DiskFullError(f"disk full: {self.path} not written ({self.frames} frames encoded); "
                                    f"free some space and render it again") from None
            raise
        self.frames += 1

    def close(self) -> None:
        """Finish the video and give it its final name (nothing is left when no frame was written)."""
        if self._closed:
            return
        self._closed = True
        if self._gen is None:
            return
        try:
            self._gen.close()
            commit_partial(self._tmp, self.path)
        except OSError as exc:
            discard(self._tmp)
            if is_disk_full(exc, self.path.parent):
                raise DiskFullError(f"disk full: {self.path} not written; free some space and render it "
                                    f"again") from None
            raise

    def abort(self) -> None:
        """Stop without a video: the temporary is removed, ``path`` is left as it was."""
        self._closed = True
        gen, self._gen = self._gen, None
        if gen is not None:
            try:
                gen.close()
            except Exception:  # ffmpeg may already be gone (broken pipe): nothing to keep anyway
                pass
        discard(self._tmp)

    def __enter__(self) -> "Mp4Writer":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.abort() if exc_type is not None else self.close()


class GifWriter:
    """Looping GIF through Pillow. Frames are palette-quantised as they come and kept in memory
    (about W*H bytes each) until :meth:`close`.

    Args:
        path: output ``.gif`` file.
        fps: frames per second (GIF timing is in 10 ms steps; above ~25 fps browsers slow it down,
            so pass a frame step to the renderer rather than a high fps).
        scale: resize factor applied to each frame (GIFs get large quickly).
    """

    def __init__(self, path: str | Path, fps: float, scale: float = 1.0) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.scale = float(scale)
        self.frames = 0
        self._images: list = []
        self._closed = False

    def write(self, frame: np.ndarray) -> None:
        from PIL import Image

        if self._closed:
            raise ValueError(f"{self.path}: writer is closed")
        frame = np.asarray(frame)
        if self.scale != 1.0:
            frame = cv2.resize(frame, None, fx=self.scale, fy=self.scale, interpolation=cv2.INTER_AREA)
        if self._images and self._images[0].size != (frame.shape[1], frame.shape[0]):
            raise ValueError(f"{self.path}: frame size changed to {frame.shape[1]}x{frame.shape[0]}")
        self._images.append(Image.fromarray(frame).quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                                             dither=Image.Dither.NONE))
        self.frames += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._images:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        first, rest = self._images[0], self._images[1:]
        self._images = []
        tmp = partial_path(self.path)
        try:
            first.save(tmp, format="GIF", save_all=True, append_images=rest,
                       duration=int(round(1000.0 / self.fps)), loop=0, optimize=False, disposal=1)
            commit_partial(tmp, self.path)
        except BaseException as exc:
            discard(tmp)
            if isinstance(exc, OSError) and is_disk_full(exc, self.path.parent):
                raise DiskFullError(f"disk full: {self.path} not written; free some space") from None
            raise

    def abort(self) -> None:
        """Drop the frames; nothing is written."""
        self._closed = True
        self._images = []

    def __enter__(self) -> "GifWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.abort() if exc_type is not None else self.close()


#: Writers by file suffix.
WRITERS: Registry[type] = Registry("video format")
WRITERS.register(".mp4", Mp4Writer)
WRITERS.register(".gif", GifWriter)


def open_writer(path: str | Path, fps: float, **options) -> VideoWriter:
    """A writer chosen by the file suffix (``.mp4`` or ``.gif``); options go to its constructor."""
    return WRITERS.get(Path(path).suffix.lower())(path, fps, **options)


@dataclass(frozen=True)
class VideoInfo:
    """A written video.

    Attributes:
        path: the file.
        frames: frames written.
        size_wh: ``(width, height)`` in pixels.
        fps: frames per second of the video.
        wall_s: [s] wall-clock time the render took.
    """

    path: Path
    frames: int
    size_wh: Tuple[int, int]
    fps: float
    wall_s: float

    @property
    def render_fps(self) -> float:
        """Frames rendered per wall-clock second."""
        return self.frames / max(self.wall_s, 1e-9)


def write_video(frames: Iterable[np.ndarray], path: str | Path, fps: float, total: Optional[int] = None,
                progress: bool = True, desc: str = "video", **options) -> VideoInfo:
    """Write RGB frames to ``path`` (format by suffix) with a progress bar and ETA.

    Args:
        frames: ``(H, W, 3)`` uint8 RGB frames, all one size.
        fps: frames per second of the video.
        total: number of frames, for the ETA.
        options: writer options (``crf``, ``preset`` for MP4; ``scale`` for GIF).
    """
    start = time.perf_counter()
    writer = open_writer(path, fps, **options)
    size = (0, 0)
    try:
        with progress_bar(total, desc, unit="frame", enabled=progress, leave=False) as bar:
            for frame in frames:
                writer.write(frame)
                size = (frame.shape[1] + frame.shape[1] % 2, frame.shape[0] + frame.shape[0] % 2)
                bar.update(1)
    except BaseException:  # Ctrl-C too: a cut-short video never takes the final name
        writer.abort()
        raise
    writer.close()
    return VideoInfo(Path(path), writer.frames, size, float(fps), time.perf_counter() - start)


def read_video(path: str | Path) -> np.ndarray:
    """Decode a whole video: ``(N, H, W, 3)`` uint8 RGB (for tests and checks; loads it all)."""
    path = Path(path)
    if path.suffix.lower() == ".gif":
        import imageio.v3 as iio

        return np.asarray(iio.imread(path, index=None, mode="RGB"))
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    meta = next(gen)
    w, h = meta["size"]
    frames = [np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in gen]
    return np.stack(frames) if frames else np.zeros((0, h, w, 3), np.uint8)


def probe_video(path: str | Path) -> dict:
    """ffmpeg's header info of a video: ``codec``, ``pix_fmt``, ``size`` (w, h), ``fps``, ``duration``."""
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path))
    try:
        return dict(next(gen))
    finally:
        gen.close()
