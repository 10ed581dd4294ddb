"""Exact quantiles of a large 1-D sample: `quantiles(x, qs)` returns what `np.quantile(x, qs)` (method
"linear") returns, bit for bit, an order of magnitude faster on ~10⁵–10⁶ entries.

Why: np.quantile partitions around all the ranks it needs at once (two per quantile, plus the ends), and
NumPy's multi-kth introselect is scalar code, ~7× slower than a full sort; a partition around one rank
runs NumPy's SIMD selection. So the ranks are selected one at a time, recursively: partition around the
middle rank, then each side around the middle of its ranks, on views of one copy (n·log₂(ranks) work at
worst). The interpolation is numpy's `_lerp` (a + (b-a)·t, or b - (b-a)·(1-t) for t ≥ 0.5), so the
figures a report prints are unchanged (tests/test_quantiles.py compares against np.quantile).
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
    """{rank: the value at that 0-based rank of x sorted ascending} for sorted, unique, in-range ranks."""
    out: dict[int, float] = {}

    def go(a: np.ndarray, off: int, rs: list[int]) -> None:
        if not rs:
            return
        if a.size <= 64:
            a.sort()
            out.update((r, a[r - off]) for r in rs)
            return
        mid = len(rs) // 2
        k = rs[mid] - off
        if k == 0 and len(rs) == 1:
            out[rs[mid]] = a.min()
            return
        if k == a.size - 1 and len(rs) == 1:
            out[rs[mid]] = a.max()
            return
        a.partition(k)
        out[rs[mid]] = a[k]
        go(a[:k], off, rs[:mid])
        go(a[k + 1:], off + k + 1, rs[mid + 1:])

    go(x.copy(), 0, ranks)
    return out
