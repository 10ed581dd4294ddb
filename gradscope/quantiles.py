"""Exact quantiles of a large 1-D sample: `quantiles(x, qs)` returns what `np.quantile(x, qs)` (method
"linear") returns, bit for bit, several times faster on ~10⁵–10⁶ entries.

Why: np.quantile partitions around all the ranks it needs at once (two per quantile, plus the ends), and
NumPy's multi-kth introselect is scalar code, slower than a full sort — and a single-rank partition slows
down badly on the many tied zeros of a ReLU net's gradients — while np.sort runs NumPy's SIMD sort. So x
is sorted once and the ranks read off. The interpolation is numpy's `_lerp` (a + (b-a)·t, or
b - (b-a)·(1-t) for t ≥ 0.5), so the figures a report prints are unchanged (tests/test_fast_paths.py
compares against np.quantile).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def quantiles(x: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """np.quantile(x, qs) for a non-empty 1-D array x, bit for bit (NaN-containing x is handed to NumPy)."""
    x = np.asarray(x)
    if x.ndim != 1 or not x.size or x.dtype.kind != "f" or np.isnan(x).any():
        return np.quantile(x, qs)
    n = x.size
    vi = (n - 1) * np.asarray(qs, dtype=np.float64)
    prev = np.floor(vi)
    nxt = prev + 1
    above = vi >= n - 1
    prev[above] = n - 1
    nxt[above] = n - 1
    below = vi < 0
    prev[below] = 0
    nxt[below] = 0
    pi, ni = prev.astype(np.intp).tolist(), nxt.astype(np.intp).tolist()
    values = order_statistics(x, sorted(set(pi) | set(ni)))
    a = np.array([values[k] for k in pi], dtype=x.dtype)
    b = np.array([values[k] for k in ni], dtype=x.dtype)
    t = vi - prev
    diff = b - a
    out = np.add(a, diff * t)
    np.subtract(b, diff * (1 - t), out=out, where=t >= 0.5, casting="unsafe", dtype=out.dtype)
    return out


def order_statistics(x: np.ndarray, ranks: list[int]) -> dict[int, float]:
    """{rank: the value at that 0-based rank of x sorted ascending} for in-range ranks."""
    v = np.sort(x)
    return {r: v[r] for r in ranks}
