"""Training-time augmentation of uint8 RGB image batches and their steering labels (and commands)."""

from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np

from carla_agent.network.command import mirror_command
from carla_agent.sim.routing.road_option import RoadOption

REFERENCE_WIDTH = 200  # the width at which shift_steer_per_px is given


class Augmenter:
    """Random photometric and geometric changes of uint8 RGB image batches.

    Args:
        seed: seeds the generator; batches augmented in the same order give the same result.
        brightness: factor range for pixel values, e.g. ``(0.6, 1.3)``.
        shadow_prob: probability of a shadow per image.
        shadow_darkness: factor range applied inside the shadow, e.g. ``(0.4, 0.8)``.
        flip_prob: probability of a horizontal flip (steering negated). A junction frame (command
            LEFT, RIGHT or STRAIGHT) is never flipped: its mirror is a left-hand-traffic junction,
            where a left turn ends in the near lane, which in right-hand traffic is the oncoming
            one (trained with them, the turn heads ended 18 of 30 left turns in the oncoming lane).
            Nor is a lane-change frame: the mirror of a return from the oncoming lane is a move into it.
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

    def __call__(self, images: np.ndarray, steer: np.ndarray, command: Optional[np.ndarray] = None,
                 masks: Optional[np.ndarray] = None):
        """Augment a batch.

        Args:
            images: ``(B, H, W, 3)`` uint8 RGB.
            steer: ``(B,)`` float32 steering labels in [-1, 1].
            command: ``(B,)`` int route commands (RoadOption values), or None; a flipped
                frame's LEFT becomes RIGHT and its RIGHT LEFT.
            masks: ``(B, H, W)`` bool pixel masks (e.g. the lane a turn goes into), or None; each
                is flipped and shifted with its image (nearest neighbour), never darkened.

        Returns:
            New ``(B, H, W, 3)`` uint8 images and ``(B,)`` float32 labels clipped to [-1, 1],
            then the ``(B,)`` commands when ``command`` was given, then the ``(B, H, W)`` bool
            masks when ``masks`` was given.
        """
        rng = self.rng
        b, h, w, _ = images.shape
        out = np.empty_like(images)
        steer = np.asarray(steer, np.float32).copy()
        flipped = np.zeros(b, bool)
        masks_out = None if masks is None else np.asarray(masks, bool).copy()
        never_flip = np.zeros(b, bool) if command is None else np.isin(
            np.asarray(command), [int(RoadOption.LEFT), int(RoadOption.RIGHT), int(RoadOption.STRAIGHT),
                                  int(RoadOption.CHANGELANELEFT), int(RoadOption.CHANGELANERIGHT)])
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
            if rng.random() < self.flip_prob and not never_flip[i]:
                img = img[:, ::-1]
                if masks_out is not None:
                    masks_out[i] = masks_out[i, :, ::-1]
                steer[i] = -steer[i]
                flipped[i] = True
            if max_px > 0:
                dx = rng.uniform(-max_px, max_px)
                m = np.float32([[1, 0, dx], [0, 1, 0]])
                img = cv2.warpAffine(np.ascontiguousarray(img), m, (w, h), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REPLICATE)
                steer[i] += dx * per_px
                if masks_out is not None:
                    masks_out[i] = cv2.warpAffine(masks_out[i].astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST,
                                                  borderMode=cv2.BORDER_REPLICATE) > 0
            out[i] = img
        steer = np.clip(steer, -1.0, 1.0).astype(np.float32)
        result: tuple = (out, steer)
        if command is not None:
            command = np.asarray(command)
            result += (np.where(flipped, mirror_command(command), command),)
        if masks_out is not None:
            result += (masks_out,)
        return result
