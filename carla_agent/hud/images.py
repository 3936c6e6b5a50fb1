"""Image helpers of the HUD's panels: resizing camera frames to a panel, and the
feature-map mosaic of per-layer methods. NumPy/OpenCV only."""

from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np


def resize_rgb(image: np.ndarray, size_wh: Tuple[int, int], nearest: bool = False) -> np.ndarray:
    """Resize an ``(H, W, 3)`` uint8 image to ``size_wh``: area when shrinking, linear when growing."""
    w, h = size_wh
    if image.shape[1] == w and image.shape[0] == h:
        return np.ascontiguousarray(image)
    if nearest:
        interp = cv2.INTER_NEAREST
    else:
        interp = cv2.INTER_AREA if w < image.shape[1] else cv2.INTER_LINEAR
    return cv2.resize(image, (w, h), interpolation=interp)


def feature_grid(features: np.ndarray, box_wh: Tuple[int, int] = (300, 100), max_tiles: int = 24,
                 cell_h_px: int = 24) -> np.ndarray:
    """Tile a conv layer's channels into one mosaic for the network panel.

    Args:
        features: ``(h, w, C)`` float activations of one frame.
        box_wh: ``(width, height)`` of the area it will be shown in; the number of
            columns is chosen so the tiles come out as large as possible there.
        max_tiles: channels shown (the most active first).
        cell_h_px: [px] height of each tile in the returned mosaic.

    Returns:
        ``(rows * (cell_h + 1), cols * (cell_w + 1), 3)`` uint8 RGB (inferno), each
        tile min-max scaled on its own.
    """
    f = np.asarray(features, np.float32)
    if f.ndim != 3:
        raise ValueError(f"expected (h, w, C) features, got shape {f.shape}")
    order = np.argsort(-f.reshape(-1, f.shape[2]).mean(axis=0))[:max_tiles]
    tiles = f[..., order]
    lo = tiles.min(axis=(0, 1), keepdims=True)
    hi = tiles.max(axis=(0, 1), keepdims=True)
    tiles = ((tiles - lo) / np.maximum(hi - lo, 1e-6) * 255.0).astype(np.uint8)
    n = tiles.shape[2]
    cell_w = max(1, round(f.shape[1] * cell_h_px / max(f.shape[0], 1)))
    bw, bh = box_wh

    def tile_scale(cols: int) -> float:
        rows = -(-n // cols)
        return min(bw / (cols * (cell_w + 1)), bh / (rows * (cell_h_px + 1)))

    cols = max(range(1, n + 1), key=tile_scale)
    rows = -(-n // cols)
    grid = np.zeros((rows * (cell_h_px + 1), cols * (cell_w + 1)), np.uint8)
    for k in range(n):
        r, c = divmod(k, cols)
        tile = cv2.resize(tiles[..., k], (cell_w, cell_h_px), interpolation=cv2.INTER_NEAREST)
        y, x = r * (cell_h_px + 1), c * (cell_w + 1)
        grid[y:y + cell_h_px, x:x + cell_w] = tile
    return cv2.cvtColor(cv2.applyColorMap(grid, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
