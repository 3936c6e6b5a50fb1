"""Where a stretch of the route's lane lies in the camera image: a pixel mask.

Used to measure whether a saliency map sits on the lane being turned into at a
junction (``tools/turn_attention.py``). The stretch is the route lane between two
distances along the corridor, centre line +- half its width, on flat ground; it
is cut into 1 m quads, each projected with the camera's current pose (the pose of
the last frame drawn) and filled. Parts behind the camera are left out; nothing
occludes (a parked car in front of the lane does not hide it).
"""

from __future__ import annotations

import cv2
import numpy as np

#: [m] length of each quad along the lane.
STEP_M = 1.0


def lane_stretch_mask(road, lane_t_m: float, lane_width_m: float, camera, s_from_m: float,
                      s_to_m: float) -> np.ndarray:
    """``(H, W)`` bool: the pixels of the lane stretch ``[s_from_m, s_to_m]`` along ``road``.

    Args:
        road: the corridor road (:class:`~carla_agent.sim.embedded.road.Road`, ``to_world(s, t)``).
        lane_t_m: [m] the lane centre's lateral coordinate on ``road`` (left positive).
        lane_width_m: [m] the lane's width.
        camera: the renderer's :class:`~carla_agent.sim.embedded.camera.Camera`, posed for the frame.
        s_from_m, s_to_m: [m] the stretch along ``road`` (clipped to the road).
    """
    h, w = camera.height_px, camera.width_px
    mask = np.zeros((h, w), np.uint8)
    s0, s1 = max(float(s_from_m), 0.0), min(float(s_to_m), float(road.length_m))
    if s1 <= s0:
        return mask.astype(bool)
    s = np.linspace(s0, s1, max(int(np.ceil((s1 - s0) / STEP_M)) + 1, 2))
    half = 0.5 * float(lane_width_m)
    lx, ly = road.to_world(s, lane_t_m + half)
    rx, ry = road.to_world(s, lane_t_m - half)
    pts = np.stack([np.concatenate([lx, rx]), np.concatenate([ly, ry]), np.zeros(2 * len(s))], axis=1)
    uv, _ = camera.project(pts)
    left, right = uv[:len(s)], uv[len(s):]
    for i in range(len(s) - 1):
        quad = np.stack([left[i], left[i + 1], right[i + 1], right[i]])
        if not np.all(np.isfinite(quad)):
            continue  # partly behind the camera
        # Far beyond the image a quad's corners overflow OpenCV's fixed-point drawing.
        quad = np.clip(quad, -4 * w, 5 * w)
        cv2.fillConvexPoly(mask, np.round(quad).astype(np.int32), 1)
    return mask.astype(bool)
