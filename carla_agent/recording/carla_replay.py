"""``replay RUN --backend carla``: the run's CARLA recording replayed on the server, the hero's
camera rendered again and explained (:class:`~carla_agent.sim.carla_backend.replay.CarlaReplay`).

A drive recorded with CARLA's recorder on (``record --backend carla``, ``drive --record
--backend carla``) names its recording in ``meta.json`` (``carla_recorder_file``). Replaying it
renders the camera afresh on the server (recordings hold no sensor data), so the video shows what
the server draws now (another quality level, weather preset or resolution) with the saliency of
the run's model on each frame. Each video frame is the camera as the model sees it (cropped and
resized) followed by one overlay per method.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from carla_agent.errors import CarlaAgentError
from carla_agent.progress import progress_bar
from carla_agent.recording.drive_log import DriveLog, scenario_from_meta
from carla_agent.recording.sources import ExplainerSource, parse_method, resolve_model
from carla_agent.recording.video_io import VideoInfo, open_writer

log = logging.getLogger(__name__)

#: Options of ``CarlaReplay`` the CLI's backend options may carry.
_REPLAY_OPTIONS = ("host", "port", "timeout_s", "load_timeout_s", "sensor_timeout_s", "allow_version_mismatch")
BATCH = 16


def replay_carla(run: str | Path, methods: Sequence[str] = ("visual_backprop",), model: Any = None,
                 target: str = "auto", layer: Optional[str] = None, out: Optional[str | Path] = None,
                 step: int = 1, backend_options: Optional[Mapping[str, Any]] = None,
                 progress: bool = True) -> VideoInfo:
    """Replay ``run``'s CARLA recording and write ``RUN/carla_replay_<methods>.mp4`` (or ``out``).

    Raises:
        CarlaAgentError: the run has no CARLA recording (one line naming ``meta.json`` and the fix).
        BackendError: the server cannot be reached or cannot read the recording.
    """
    from carla_agent.saliency.overlay import overlay
    from carla_agent.sim.carla_backend.replay import replay

    dlog = DriveLog.open(run)
    recording = dlog.meta.get("carla_recorder_file")
    if not recording:
        raise CarlaAgentError(f"{dlog.path / 'meta.json'}: field 'carla_recorder_file': the run has no CARLA "
                              f"recording (backend {dlog.meta.get('backend')!r}); record it with "
                              "`record --backend carla` (CARLA's recorder is on there), or replay without "
                              "--backend carla")
    scenario = scenario_from_meta(dlog.meta, str(dlog.path / "meta.json"))
    m = resolve_model(dlog, model)
    parsed = [parse_method(t) for t in methods]
    sources = [ExplainerSource(m, name, target, layer=layer, options=opts) for name, opts in parsed]
    tag = "_".join(name for name, _ in parsed) or "camera"
    out_path = Path(out) if out else dlog.path / f"carla_replay_{tag}.mp4"
    options = {k: v for k, v in dict(backend_options or {}).items() if k in _REPLAY_OPTIONS}
    pre = m.preprocessing
    step = max(1, int(step))
    with replay(recording, scenario, semantic=False, **options) as rp:
        total = rp.frame_count()
        writer = open_writer(out_path, fps=1.0 / (scenario.dt_s * step))
        written, size = 0, (0, 0)
        try:
            bar = progress_bar(total, "carla replay", enabled=progress)
            images: list = []
            for frame in rp.frames():
                bar.update(1)
                if frame.index % step == 0:
                    images.append(pre.crop_resize(frame.image))
                if len(images) == BATCH:
                    written, size = _flush(images, sources, overlay, writer, written)
            if images:
                written, size = _flush(images, sources, overlay, writer, written)
            bar.close()
        except BaseException:
            writer.abort()
            raise
        writer.close()
    log.info("replayed %s from %s: %d frames -> %s", recording, dlog.path, written, out_path)
    return VideoInfo(out_path, written, size, 1.0 / (scenario.dt_s * step), 0.0)


def _flush(images: list, sources, overlay, writer, written: int):
    """Write one video frame per image (the model's view, then one overlay per source) and empty
    ``images``; returns ``(frames written so far, (width, height))``."""
    batch = np.stack(images)
    maps = [src(batch).maps for src in sources]
    size = (0, 0)
    for i, image in enumerate(images):
        tiles = [image]
        for src, m in zip(sources, maps):
            tiles.append(overlay(image, _normalised(m[i], src.signed), "diverging" if src.signed else "jet"))
        row = np.concatenate(tiles, axis=1)
        writer.write(row)
        written, size = written + 1, (row.shape[1], row.shape[0])
    images.clear()
    return written, size


def _normalised(raw: np.ndarray, signed: bool) -> np.ndarray:
    """A raw map scaled into [0, 1] (or [-1, 1] when signed), per frame."""
    raw = np.nan_to_num(raw.astype(np.float32))
    if signed:
        return raw / max(float(np.abs(raw).max()), 1e-12)
    lo = float(raw.min())
    return (raw - lo) / max(float(raw.max()) - lo, 1e-12)
