"""Attention videos: MP4 and GIF decode back with the expected frame count and size; layout; renderer."""

import math

import numpy as np
import pandas as pd
import pytest

from carla_agent.network.preprocess import Preprocessing
from carla_agent.drive.telemetry import DriveTelemetry
from carla_agent.recording.compose import AttentionLayout, LayoutSpec, MapPanel
from carla_agent.recording.render import render_log_video
from carla_agent.recording.sources import FunctionSource
from carla_agent.recording.video_io import GifWriter, Mp4Writer, open_writer, probe_video, read_video, write_video
from test_drive_log import H, W, write_log


def frames(n, h=75, w=101):
    rng = np.random.default_rng(0)
    return [np.full((h, w, 3), 10 * k, np.uint8) + rng.integers(0, 20, (h, w, 3), dtype=np.uint8) for k in range(n)]


def test_mp4_is_h264_yuv420p_even_sized(tmp_path):
    info = write_video(frames(12), tmp_path / "a.mp4", fps=20, total=12, progress=False)
    assert info.frames == 12 and info.size_wh == (102, 76)
    meta = probe_video(tmp_path / "a.mp4")
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p") and meta["size"] == (102, 76)
    v = read_video(tmp_path / "a.mp4")
    assert v.shape == (12, 76, 102, 3)
    assert abs(int(v[6, 30, 50].mean()) - int(frames(12)[6][30, 50].mean())) < 12  # content survives


def test_gif_round_trip(tmp_path):
    with GifWriter(tmp_path / "a.gif", fps=10, scale=0.5) as w:
        for f in frames(5, 80, 120):
            w.write(f)
    v = read_video(tmp_path / "a.gif")
    assert v.shape == (5, 40, 60, 3)


def test_writer_rejects_size_changes_and_unknown_formats(tmp_path):
    with Mp4Writer(tmp_path / "b.mp4", 10) as w:
        w.write(frames(1)[0])
        with pytest.raises(ValueError, match="the video is 102x76"):
            w.write(np.zeros((80, 80, 3), np.uint8))
    with pytest.raises(KeyError, match=r"\.gif, \.mp4"):
        open_writer(tmp_path / "c.avi", 10)


def test_layout_grid_with_captions():
    pre = Preprocessing()
    lay = AttentionLayout((270, 480), 3, LayoutSpec(tile_width_px=200, columns=3), pre)
    assert lay.tile_hw == (112, 200) and lay.rows == 2 and lay.size_wh == (600, 2 * (112 + 18))
    tel = DriveTelemetry(frame=7, sim_time_s=0.35, speed_mps=8.0, steer_predicted=0.2, steer_applied=0.1,
                         lateral_offset_m=-0.3)
    cam = np.full((270, 480, 3), 90, np.uint8)
    m = lay.project(np.ones((66, 200), np.float32))
    assert m.shape == (112, 200) and m[0].max() == 0  # zero above the crop
    panels = [MapPanel(m, False, "visual_backprop", "-", 0.2), MapPanel(m * 0.5, True, "gradient_signed", "right", 0.2),
              MapPanel(m, False, "gradcam", "auto->left", -0.1, label="B")]
    out = lay.compose(cam, panels, tel)
    assert out.shape == (260, 600, 3) and out.dtype == np.uint8
    tile = out[18:130, 200:400]
    assert not np.array_equal(tile[100], cam[0, :200])  # the map is drawn inside the crop
    assert np.array_equal(tile[5], np.full((200, 3), 90, np.uint8))  # the camera above it is untouched
    assert panels[2].caption(7) == "B: gradcam | auto->left | frame 7 | steer -0.10"
    with pytest.raises(ValueError, match="3 map tile"):
        lay.compose(cam, panels[:1], tel)


def test_telemetry_chart_is_readable_small_steering_included():
    """The rolling chart scales the steering to what it shows, draws 2 px lines and a legible legend."""
    from carla_agent.recording.compose import LABEL_RGB, PREDICTED_RGB, TelemetryStrip

    strip = TelemetryStrip((270, 480), history_s=6.0)
    for k in range(120):  # 6 s of small corrections, +-0.04, as the shipped model steers on gentle curves
        steer = 0.04 * math.sin(k / 10.0)
        tile = strip.draw(DriveTelemetry(frame=k, sim_time_s=k * 0.05, speed_mps=10.0, steer_predicted=steer,
                                         steer_applied=steer, lateral_offset_m=0.3))
    top, bottom = strip._chart
    chart = tile[top:bottom].astype(int)
    orange = np.all(np.abs(chart - PREDICTED_RGB) < 40, axis=-1)
    rows = np.flatnonzero(orange.any(axis=1))
    assert rows.size and rows[-1] - rows[0] > 0.6 * (bottom - top)  # +-0.04 fills most of the chart
    assert np.median(orange.sum(axis=0)[orange.any(axis=0)]) >= 2  # lines at least 2 px thick
    label = np.all(np.abs(chart - LABEL_RGB) < 40, axis=-1)
    assert label.sum() > 50 and min(LABEL_RGB) > 150  # legend and scales in a light grey, not the grid's


def test_telemetry_from_row_with_missing_expert():
    t = DriveTelemetry.from_row({"i": 3, "frame": 9, "sim_time_s": 0.15, "predicted_steer": 0.1, "steer": 0.2,
                                 "expert_steer": float("nan"), "lateral_offset_m": 0.5, "speed_mps": 3.0})
    assert t.steer_expert is None and t.steer_applied == 0.2 and t.frame == 9 and t.row == 3


@pytest.mark.parametrize("suffix,step", [(".mp4", 1), (".gif", 2)])
def test_render_from_log_decodes_back(tmp_path, suffix, step):
    run = tmp_path / "run"
    write_log(run, 9)
    pre = Preprocessing(height=12, width=32)
    src = FunctionSource(lambda f: f[..., 0][:12, :32].astype(np.float32), "red", preprocessing=pre,
                         steer_fn=lambda f: 0.5)
    res = render_log_video(run, tmp_path / f"v{suffix}", [src, src], step=step, batch_size=4, progress=False)
    n = math.ceil(9 / step)
    v = read_video(res.video.path)
    assert res.video.frames == n and v.shape[0] == n
    assert (v.shape[2], v.shape[1]) == res.video.size_wh
    lay = AttentionLayout((H, W), 2, LayoutSpec(), pre)
    assert res.video.size_wh == lay.size_wh
    stats = pd.read_csv(res.stats_path)
    assert len(stats) == 2 * n and set(stats["source"]) == {"red"}
    assert {"top10_mass", "centroid_x", "stability", "mass_road", "mass_vehicle"} <= set(stats.columns)
    assert (stats["steer"] == 0.5).all()
