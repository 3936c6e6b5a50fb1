"""The background saliency worker: newest frame wins, never blocks, maps tied to their frames."""

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from carla_agent.hud.worker import AttentionWorker


class FrameExplainer:
    """A fake explainer whose map says which frame it saw (the frame id is painted in the image).

    ``gate`` (optional) holds each call until set, so tests control when the worker finishes.
    """

    def __init__(self, delay_s: float = 0.0, gate: threading.Event | None = None, fail_on: int | None = None):
        self.delay_s = delay_s
        self.gate = gate
        self.fail_on = fail_on
        self.calls = []
        self.threads = set()

    def __call__(self, x):
        self.threads.add(threading.current_thread().name)
        frame = int(x[0, 0, 0, 0])
        self.calls.append(frame)
        if self.gate is not None:
            assert self.gate.wait(10.0)
        if self.delay_s:
            time.sleep(self.delay_s)
        if frame == self.fail_on:
            raise ValueError(f"cannot explain frame {frame}")
        maps = np.full((1, 4, 6), float(frame), np.float32)
        return SimpleNamespace(maps=maps, prediction=np.zeros((1, 1), np.float32), signed=False)


def image_of(frame: int) -> np.ndarray:
    img = np.zeros((8, 12, 3), np.uint8)
    img[..., 0] = frame % 256
    return img


def preprocess(image):
    return image.astype(np.float32)


def make_worker(explainer, built_keys=None):
    def resolve(key):
        if built_keys is not None:
            built_keys.append((key, threading.current_thread().name))
        return SimpleNamespace(explainer=explainer)

    return AttentionWorker(resolve, preprocess)


def test_map_is_tied_to_its_frame_and_image():
    exp = FrameExplainer()
    with make_worker(exp) as w:
        amap = w.compute(7, image_of(7), "k", timeout_s=5)
        assert amap.frame == 7 and amap.key == "k" and amap.error is None
        assert float(amap.map[0, 0]) == 7.0  # computed from frame 7's pixels
        assert int(amap.image[0, 0, 0]) == 7  # and it carries frame 7's image
        assert amap.latency_ms >= 0 and w.latest() is amap


def test_newest_frame_wins_and_submit_never_blocks():
    gate = threading.Event()
    exp = FrameExplainer(gate=gate)
    with make_worker(exp) as w:
        w.submit(1, image_of(1), "k")
        deadline = time.monotonic() + 5
        while w.busy_frame != 1 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert w.busy_frame == 1
        times = []
        for f in range(2, 7):
            t0 = time.perf_counter()
            w.submit(f, image_of(f), "k")
            times.append(time.perf_counter() - t0)
        assert max(times) < 0.01, "submit waited for the computation"
        assert w.pending_frame == 6 and w.stats.dropped == 4  # 2..5 replaced by newer frames
        gate.set()
        amap = w.wait_for(6, timeout_s=5)
        assert amap is not None and amap.frame == 6
        assert exp.calls == [1, 6]  # the stale frames were never computed
        assert w.stats.submitted == 6 and w.stats.computed == 2


def test_image_is_copied_at_submit():
    gate = threading.Event()
    with make_worker(FrameExplainer(gate=gate)) as w:
        img = image_of(3)
        w.submit(3, img, "k")
        img[...] = 99  # a backend reusing its buffer
        gate.set()
        amap = w.wait_for(3, timeout_s=5)
        assert int(amap.image[0, 0, 0]) == 3 and float(amap.map[0, 0]) == 3.0


def test_errors_are_published_and_the_thread_survives():
    with make_worker(FrameExplainer(fail_on=4)) as w:
        bad = w.compute(4, image_of(4), "k", timeout_s=5)
        assert bad.frame == 4 and bad.result is None and bad.map is None
        assert "ValueError" in bad.error and "frame 4" in bad.error
        good = w.compute(5, image_of(5), "k", timeout_s=5)
        assert good.error is None and float(good.map[0, 0]) == 5.0
        assert w.stats.failed == 1 and w.stats.computed == 1


def test_clear_discards_maps_of_the_previous_episode():
    gate = threading.Event()
    with make_worker(FrameExplainer(gate=gate)) as w:
        w.submit(300, image_of(300), "k")
        while w.busy_frame != 300:
            time.sleep(0.001)
        w.clear()  # new episode: frame ids restart
        gate.set()
        amap = w.compute(0, image_of(0), "k", timeout_s=5)
        assert amap.frame == 0
        assert w.latest().frame == 0  # frame 300 of the old episode never shows up


def test_prepare_builds_on_the_worker_thread_newest_first():
    built = []
    gate = threading.Event()
    with make_worker(FrameExplainer(gate=gate), built) as w:
        w.submit(1, image_of(1), "busy")  # keep the thread busy while keys are pressed
        while w.busy_frame != 1:
            time.sleep(0.001)
        for key in ("a", "b", "c", "b"):
            w.prepare(key)
        gate.set()
        deadline = time.monotonic() + 5
        while len(built) < 4 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert [k for k, _ in built] == ["busy", "b", "c", "a"]  # the newest request first, once each
        assert {t for _, t in built} == {"attention-worker"} != {threading.current_thread().name}


def test_wait_for_times_out_and_close_is_idempotent():
    gate = threading.Event()
    w = make_worker(FrameExplainer(gate=gate))
    w.submit(1, image_of(1), "k")
    assert w.wait_for(1, timeout_s=0.05) is None
    gate.set()
    w.close()
    w.close()
    with pytest.raises(RuntimeError, match="closed"):
        w.submit(2, image_of(2), "k")


def test_a_map_names_the_conv_layer_it_came_from():
    """The HUD's 'layer' line shows the layer a map was computed on (with a trunk per group of
    branches, the driving branch's trunk), not just 'default'."""
    from carla_agent.hud.worker import AttentionMap

    image = np.zeros((4, 4, 3), np.uint8)
    on_junction_trunk = SimpleNamespace(maps=np.zeros((1, 4, 4), np.float32), layer="pilotnet_two_trunks/conv3_junction")
    assert AttentionMap(1, image, "gradcam", on_junction_trunk, 1.0).layer_name == "conv3_junction"
    assert AttentionMap(1, image, "gradient", SimpleNamespace(maps=None, layer=None), 1.0).layer_name == "default"
    assert AttentionMap(1, image, "gradcam", None, 1.0, error="boom").layer_name == "default"


def test_the_layer_line_names_the_maps_layer_over_the_one_asked_for():
    """``--layer conv3`` on a model with a trunk per group of branches gives conv3_junction's map at a
    turn: the line said 'conv3' (the key's), whatever layer the map was computed on."""
    from carla_agent.hud.explainers import layer_shown, make_key

    asked = make_key("gradcam", "auto", "conv3")
    assert layer_shown(asked, "conv3_junction") == "conv3_junction"
    assert layer_shown(asked, None) == "conv3"  # before the first map
    assert layer_shown(make_key("gradcam"), "default") == "default"
    assert layer_shown(make_key("gradient"), "conv3") == "-"  # a method without a layer
