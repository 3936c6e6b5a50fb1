"""The report and index pages as a browser shows them, from runs made by the real commands.

``record`` (two methods) and ``drive --headless --record`` each record a short
drive into one runs folder; then every page (the index, both reports, and a report
whose video is linked instead of embedded) is opened in headless Chromium
(Debian's ``chromium``, which ``.ci/run`` installs, driven over the DevTools
protocol: tests/chromium.py) at 1280 px and at a phone's 390 px. Each page must
load without a console error, fit the width (no horizontal scroll of the page; wide
tables scroll in their own box), and every link, image and video must resolve:
videos are H.264 (ffmpeg says so) and Chromium decodes their first frame.

Without chromium the browser tests are skipped, except under CI, where they fail.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from chromium import Chromium, find_chromium

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = "straight_clear"
WIDTHS = (1280, 390)


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-m", "carla_agent", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A runs folder: one ``record`` run (2 s, two methods) and one ``drive --record`` run (1 s)."""
    root = tmp_path_factory.mktemp("pages") / "runs"
    _cli("record", "--scenarios", SCENARIO, "--methods", "visual_backprop,gradcam", "--duration", "2",
         "--out", str(root))
    _cli("drive", "--headless", "--record", "--scenario", SCENARIO, "--duration", "1", "--out", str(root))
    return root


def _run_dirs(root: Path):
    found = sorted(p for p in root.iterdir() if (p / "meta.json").is_file())
    assert len(found) == 2, found
    return found  # by time: the record run, then the drive run


def _chromium_or_skip() -> None:
    if find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    import importlib.util

    if importlib.util.find_spec("websocket") is None:  # websocket-client
        if os.environ.get("CI"):
            pytest.fail("websocket-client is not installed; it is in requirements.txt")
        pytest.skip("websocket-client is not installed (pip install -r requirements.txt)")


# -- what the commands wrote ------------------------------------------------------------------------------------

def test_record_and_drive_record_write_reports_and_the_index_but_no_gif(runs):
    recorded, driven = _run_dirs(runs)
    index = (runs / "index.html").read_text()
    for run in (recorded, driven):
        assert (run / "report.html").is_file() and (run / "attention.mp4").is_file()
        assert f"href='{run.name}/report.html'" in index  # drive --record updated the index too
    assert not list(runs.rglob("*.gif")), "a GIF only comes with record --gif or replay --format gif"


def test_meta_records_the_saliency_settings_of_every_video(runs):
    recorded, driven = _run_dirs(runs)
    meta = json.loads((recorded / "meta.json").read_text())
    assert meta["saliency"] is None  # record drives with the network alone: no live maps
    sources = meta["videos"]["attention.mp4"]["sources"]
    assert [s["method"] for s in sources] == ["visual_backprop", "gradcam"]
    assert all(s["target"] == "auto" and s["output"] == "steer" and s["layer"] for s in sources)
    assert sources[1]["layer"].split("/")[-1] == "conv3"  # Grad-CAM's default layer on PilotNet (nested in the branched model)
    assert meta["videos"]["attention.mp4"]["frames"] == len((recorded / "rows.csv").read_text().splitlines()) - 1
    meta = json.loads((driven / "meta.json").read_text())
    assert meta["saliency"]["method"] == "visual_backprop"  # drive --record computes maps while driving
    assert [s["method"] for s in meta["videos"]["attention.mp4"]["sources"]] == ["visual_backprop"]


def test_runs_cut_short_are_marked_partial_with_their_scores_set_apart(runs):
    index = (runs / "index.html").read_text()
    scenario_s = json.loads((_run_dirs(runs)[0] / "meta.json").read_text())["scenario"]["duration_s"]
    assert f"partial: 2 s of {scenario_s:.0f} s" in index and f"partial: 1 s of {scenario_s:.0f} s" in index
    assert ">complete<" not in index
    assert len(re.findall(r"data-label='driving score'>[0-9.]+\*<", index)) == 2
    assert "cannot be compared with a full run" in index
    report = (_run_dirs(runs)[0] / "report.html").read_text()
    assert "partial: 2 s of" in report and "cut short by a 2 s time limit" in report


# -- the pages in a browser -------------------------------------------------------------------------------------

def _ffmpeg_codec(path: Path) -> str:
    import imageio_ffmpeg

    proc = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True,
                          text=True, timeout=60)
    found = re.search(r"Video: (\w+)", proc.stderr)
    return found.group(1) if found else proc.stderr[-300:]


def _pages(runs: Path):
    from carla_agent.recording.report import write_report_info

    recorded, driven = _run_dirs(runs)
    linked = write_report_info(recorded, out=recorded / "report_linked.html", max_embed_mb=0.0)
    assert linked.video == "linked"
    return {"index": runs / "index.html", "record report": recorded / "report.html",
            "drive report": driven / "report.html", "linked-video report": linked.path}


_VIDEOS_JS = """Promise.all([...document.querySelectorAll('video')].map(v => new Promise(done => {
  const report = () => done({src: v.currentSrc.slice(0, 64), ready: v.readyState, error: v.error && v.error.code,
                             width: v.videoWidth});
  if (v.readyState >= 2 || v.error) return report();
  v.addEventListener('loadeddata', report); v.addEventListener('error', report); v.preload = 'auto'; v.load();
})))"""

_IMAGES_JS = """Promise.all([...document.images].map(img => img.decode().then(
  () => ({src: img.src.slice(0, 64), width: img.naturalWidth}), () => ({src: img.src.slice(0, 64), width: 0}))))"""


def _check_target(page_path: Path, url: str, ids) -> None:
    parts = urllib.parse.urlsplit(url)
    assert parts.scheme in ("file", "data", ""), f"{page_path.name}: {url} is not offline"
    if parts.scheme == "file":
        target = Path(urllib.request.url2pathname(parts.path))
        assert target.exists(), f"{page_path.name}: link to {target} does not resolve"
        if parts.fragment and target.resolve() == page_path.resolve():
            assert parts.fragment in ids, f"{page_path.name}: no element #{parts.fragment}"
    elif parts.scheme == "data":
        head, _, data = url.partition(",")
        assert head.endswith(";base64") and base64.b64decode(data[:4096] + "=" * (-len(data[:4096]) % 4))


def test_pages_in_chromium_load_cleanly_fit_the_width_and_resolve_everything(runs, tmp_path):
    _chromium_or_skip()
    pages = _pages(runs)
    videos = [p for p in runs.rglob("*.mp4")]
    assert videos and all(_ffmpeg_codec(v) == "h264" for v in videos), {v.name: _ffmpeg_codec(v) for v in videos}
    with Chromium() as browser:
        for name, path in pages.items():
            for width in WIDTHS:
                page = browser.open(path, width_px=width, height_px=900 if width > 600 else 844)
                where = f"{name} at {width} px"
                inner = page.evaluate("window.innerWidth")
                scroll = page.evaluate("document.documentElement.scrollWidth")
                assert inner == width, where
                assert scroll <= inner, f"{where}: the page scrolls sideways ({scroll} > {inner} px)"
                ids = set(page.evaluate("[...document.querySelectorAll('[id]')].map(e => e.id)"))
                links = page.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.href)")
                if name == "index":
                    assert len(links) == 2, links
                for url in links:
                    _check_target(path, url, ids)
                images = page.evaluate(_IMAGES_JS)
                assert all(i["width"] > 0 for i in images), f"{where}: image(s) did not load: {images}"
                played = page.evaluate(_VIDEOS_JS)
                assert len(played) == (0 if name == "index" else 1), where
                for v in played:
                    assert v["error"] is None and v["ready"] >= 2 and v["width"] > 0, f"{where}: {v}"
                for src in page.evaluate("[...document.querySelectorAll('video[src]')].map(v => v.src)"):
                    _check_target(path, src, ids)
                shot = page.screenshot(tmp_path / f"{name.replace(' ', '_')}_{width}.png")
                assert page.errors == [], f"{where}: {page.errors}"
                _assert_drawn(shot)


def _assert_drawn(png: Path) -> None:
    import imageio.v3 as iio

    image = iio.imread(png)
    assert image.shape[0] > 200 and np.unique(image.reshape(-1, image.shape[-1])[::97], axis=0).shape[0] > 20
