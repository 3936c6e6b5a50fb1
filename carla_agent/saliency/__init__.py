"""Saliency maps for steering networks: every method, on any Keras CNN, one graph per call.

Importing this package does not import TensorFlow: the registry, results,
targets, normalisation and overlays are NumPy/OpenCV only. TensorFlow is
imported when :func:`make_explainer` builds a method.

Typical use::

    from carla_agent.saliency import make_explainer, make_normalizer, overlay
    explain = make_explainer(model, "gradcam", output="steer", target="auto")
    norm = make_normalizer("running", signed=explain.signed)   # video: running
    res = explain(batch)              # res.prediction (N, n_out), res.maps (N, H, W)
    frame_maps = res.project(preprocessing, frame.shape[:2])
    shown = overlay(frame, norm(frame_maps[0]), "jet")

Normalisation: ``running`` (default for live driving and videos) scales by a
moving average of a high percentile over recent frames and does not flicker;
``frame`` scales each frame on its own, for stills and reports.
"""

from carla_agent.saliency.methods import METHODS, MethodSpec, OptionError, make_explainer
from carla_agent.saliency.normalize import (NORMALIZERS, FrameNormalizer, RunningNormalizer, make_normalizer,
                                            normalize_frame)
from carla_agent.saliency.overlay import (COLORMAPS, blend, blur_background, colorize, default_cmap, green_mask,
                                          overlay, salient_mask)
from carla_agent.saliency.result import FilterImages, SaliencyResult, project_maps
from carla_agent.saliency.targets import TARGETS, make_target


def first_layer_filters(model, layer=None, cell_px: int = 24) -> FilterImages:
    """First conv layer's kernels as images (imports TensorFlow); see :mod:`.activations`."""
    from carla_agent.saliency.activations import first_layer_filters as impl

    return impl(model, layer, cell_px)


def saliency_grid(frames, model, methods, **kwargs):
    """Figure grid, one row per method: camera | map | overlay; see :mod:`.grid`."""
    from carla_agent.saliency.grid import saliency_grid as impl

    return impl(frames, model, methods, **kwargs)


def explain_images(image_paths, model, method="visual_backprop", target="auto", output=0, out_dir="out",
                   layer=None, **options):
    """Map, overlay and prediction files for image files; see :mod:`.explain`."""
    from carla_agent.saliency.explain import explain_images as impl

    return impl(image_paths, model, method, target, output, out_dir, layer, **options)


__all__ = [
    "METHODS", "MethodSpec", "OptionError", "make_explainer", "SaliencyResult", "FilterImages", "project_maps",
    "TARGETS", "make_target", "NORMALIZERS", "FrameNormalizer", "RunningNormalizer", "make_normalizer",
    "normalize_frame", "COLORMAPS", "colorize", "blend", "overlay", "green_mask", "blur_background",
    "salient_mask", "default_cmap", "first_layer_filters", "saliency_grid", "explain_images",
]
