"""A scrolling strip chart: the last few seconds of a few signals, as polylines. NumPy only.

:class:`StripChart` keeps a ring buffer of samples ``(t_s, value per series)``
and turns each series into pixel points for a plot rectangle, newest sample at
the right edge. Drawing the points (``pygame.draw.lines``) is the HUD's job;
nothing here imports pygame.

A series value may be missing (``None`` or NaN, e.g. the expert's steering on a
backend that does not know it): the polyline is split there instead of being
drawn through zero.
"""

from __future__ import annotations

import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

Rect = Tuple[int, int, int, int]  # x, y, width, height in pixels


class StripChart:
    """Ring buffer of samples for a scrolling chart.

    Args:
        series: names of the signals, e.g. ``("predicted", "applied", "expert")``.
        window_s: [s] time span shown (the last ``window_s`` seconds).
        capacity: samples kept; at least the number of ticks in ``window_s``
            (20 Hz x 10 s = 200 fits the default 1024 easily).
    """

    def __init__(self, series: Sequence[str], window_s: float = 10.0, capacity: int = 1024) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        if capacity < 2:
            raise ValueError(f"capacity must be >= 2, got {capacity}")
        self.series: Tuple[str, ...] = tuple(series)
        if len(set(self.series)) != len(self.series) or not self.series:
            raise ValueError(f"series names must be unique and non-empty, got {self.series}")
        self.window_s = float(window_s)
        self.capacity = int(capacity)
        self._t = np.zeros(self.capacity, np.float64)
        self._v = np.full((self.capacity, len(self.series)), np.nan, np.float64)
        self._head = 0  # next write position
        self._count = 0

    def clear(self) -> None:
        """Forget every sample (a new episode)."""
        self._head = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, t_s: float, values: Mapping[str, Optional[float]]) -> None:
        """Append one sample at time ``t_s`` [s]. Missing or ``None`` values are gaps.

        Raises:
            KeyError: a name not in :attr:`series`.
        """
        unknown = set(values) - set(self.series)
        if unknown:
            raise KeyError(f"unknown series {sorted(unknown)}; known: {list(self.series)}")
        if self._count and t_s < self.latest_t_s:
            self.clear()  # time went back: a restarted episode
        row = self._v[self._head]
        for i, name in enumerate(self.series):
            v = values.get(name)
            row[i] = np.nan if v is None else float(v)
        self._t[self._head] = float(t_s)
        self._head = (self._head + 1) % self.capacity
        self._count = min(self._count + 1, self.capacity)

    @property
    def latest_t_s(self) -> float:
        """Time of the newest sample [s] (0 when empty)."""
        return float(self._t[(self._head - 1) % self.capacity]) if self._count else 0.0

    def window(self) -> Tuple[np.ndarray, np.ndarray]:
        """Samples inside the time window, oldest first.

        Returns:
            ``t`` ``(N,)`` float64 seconds and ``values`` ``(N, n_series)`` float64 (NaN = gap).
        """
        if not self._count:
            return np.zeros(0), np.zeros((0, len(self.series)))
        idx = (self._head - self._count + np.arange(self._count)) % self.capacity
        t, v = self._t[idx], self._v[idx]
        keep = t >= self.latest_t_s - self.window_s - 1e-9
        return t[keep], v[keep]

    def polylines(self, rect: Rect, ranges: Mapping[str, Tuple[float, float]]) -> Dict[str, List[np.ndarray]]:
        """Pixel polylines of each series for a plot rectangle.

        Args:
            rect: ``(x, y, w, h)`` plot area in pixels; the newest sample sits at
                the right edge, ``window_s`` seconds earlier at the left edge.
            ranges: value range ``(lo, hi)`` per series drawn (series not named
                are skipped); ``hi`` maps to the top edge. Values are clipped.

        Returns:
            For each series, a list of ``(n, 2)`` int32 arrays of ``(x, y)``
            points, one per run without gaps, each with at least 2 points.
        """
        x0, y0, w, h = rect
        t, v = self.window()
        out: Dict[str, List[np.ndarray]] = {}
        if len(t) < 2 or w < 2 or h < 2:
            return {name: [] for name in ranges}
        px = x0 + (w - 1) * (1.0 - (self.latest_t_s - t) / self.window_s)
        for name, (lo, hi) in ranges.items():
            col = v[:, self.series.index(name)]
            if hi <= lo:
                raise ValueError(f"range of {name!r} must have hi > lo, got ({lo}, {hi})")
            frac = (np.clip(col, lo, hi) - lo) / (hi - lo)
            py = y0 + (h - 1) * (1.0 - frac)
            good = np.isfinite(col)
            runs: List[np.ndarray] = []
            # Split at gaps: indices where 'good' changes.
            edges = np.flatnonzero(np.diff(np.concatenate(([0], good.astype(np.int8), [0]))))
            for start, stop in zip(edges[0::2], edges[1::2]):
                if stop - start >= 2:
                    pts = np.stack([px[start:stop], py[start:stop]], axis=1)
                    runs.append(np.round(pts).astype(np.int32))
            out[name] = runs
        return out

    def time_ticks(self, step_s: float = 2.0) -> List[float]:
        """Seconds before now of the vertical grid lines: ``0, step, 2 step, ...`` within the window."""
        n = int(math.floor(self.window_s / step_s + 1e-9))
        return [i * step_s for i in range(n + 1)]
