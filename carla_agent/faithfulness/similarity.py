"""Map similarity: SSIM (Wang et al. 2004) in NumPy/OpenCV and Spearman rank correlation."""

from __future__ import annotations

import cv2
import numpy as np

_C1 = 0.01 ** 2  # (K1 * L)^2 with L = 1 (maps scaled to [0, 1])
_C2 = 0.03 ** 2


def _unit(m: np.ndarray) -> np.ndarray:
    m = np.abs(np.asarray(m, np.float64))
    top = m.max()
    return m / top if top > 0 else m


def ssim(a: np.ndarray, b: np.ndarray, sigma_px: float = 1.5) -> float:
    """Mean SSIM of two maps ``(H, W)``, each |map| scaled to [0, 1]; 11x11 Gaussian window."""
    x, y = _unit(a), _unit(b)
    blur = lambda z: cv2.GaussianBlur(z, (11, 11), sigma_px, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cxy = blur(x * y) - mx * my
    s = ((2 * mx * my + _C1) * (2 * cxy + _C2)) / ((mx * mx + my * my + _C1) * (vx + vy + _C2))
    return float(s.mean())


def _ranks(v: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(v)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of |a| and |b| over all pixels (0 when either is constant)."""
    ra = _ranks(np.abs(np.ravel(a)))
    rb = _ranks(np.abs(np.ravel(b)))
    sa, sb = ra.std(), rb.std()
    if sa == 0 or sb == 0:
        return 0.0
    return float(((ra - ra.mean()) * (rb - rb.mean())).mean() / (sa * sb))
