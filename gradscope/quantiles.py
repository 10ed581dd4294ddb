"""Exact quantiles of a large 1-D sample: `quantiles(x, qs)` returns what `np.quantile(x, qs)` (method
"linear") returns, bit for bit, several times faster on ~10⁵–10⁶ entries.

Why: np.quantile partitions around all the ranks it needs at once (two per quantile, plus the ends), and
NumPy's multi-kth introselect is scalar code, slower than a full sort — and a single-rank partition slows
down badly on the many tied zeros of a ReLU net's gradients — while np.sort runs NumPy's SIMD sort. So x
is sorted once and the ranks read off. The interpolation is numpy's `_lerp` (a + (b-a)·t, or
b - (b-a)·(1-t) for t ≥ 0.5), so the figures a report prints are unchanged (tests/test_fast_paths.py
compares against np.quantile). The |∂L/∂W| sample of every layer goes further (quantiles_of_buckets): the keys
of its values' bits are counted, and only the few buckets holding the wanted ranks are sorted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def quantiles(x: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """np.quantile(x, qs) for a non-empty 1-D array x, bit for bit (NaN-containing x is handed to NumPy)."""
    x = np.asarray(x)
    if x.ndim != 1 or not x.size or x.dtype.kind != "f" or np.isnan(x).any():
        return np.quantile(x, qs)
    return _interpolate(x.size, qs, x.dtype, lambda ranks: order_statistics(x, ranks))


def _interpolate(n: int, qs: Sequence[float], dtype: np.dtype, values_at: Callable[[list[int]], dict[int, float]]
                 ) -> np.ndarray:
    """np.quantile's method "linear" for n sorted values of which values_at(ranks) gives those needed."""
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
    values = values_at(sorted(set(pi) | set(ni)))
    a = np.array([values[k] for k in pi], dtype=dtype)
    b = np.array([values[k] for k in ni], dtype=dtype)
    t = vi - prev
    diff = b - a
    out = np.add(a, diff * t)
    np.subtract(b, diff * (1 - t), out=out, where=t >= 0.5, casting="unsafe", dtype=out.dtype)
    return out


def order_statistics(x: np.ndarray, ranks: list[int]) -> dict[int, float]:
    """{rank: the value at that 0-based rank of x sorted ascending} for in-range ranks."""
    v = np.sort(x)
    return {r: v[r] for r in ranks}


# ---------------------------------------------------------------- order statistics by buckets of the float bits

# A non-negative float's bits, read as an integer, grow with its value. Rounded up to a multiple of
# 2^(mantissa bits - KEY_MANTISSA_BITS), they put every value in one of 64 buckets per power of two, in order,
# with +0.0 alone in bucket 0: counting the keys finds the bucket holding each wanted rank, and only those
# buckets' values need sorting — a few thousand of a 262,144-entry sample, where sorting all of it took ~10 ns
# an entry. Zeros (a ReLU net's dead units: 64% of a deep one's |dW|) are never sorted.
KEY_MANTISSA_BITS = 6


def bucket_keys(x: np.ndarray) -> np.ndarray:
    """Integer keys (int64 for float64, int32 for float32) of non-negative finite floats (+0.0, never -0.0),
    non-decreasing in x (a < b implies key(a) ≤ key(b)); key 0 is +0.0's alone. x may be a strided view."""
    if x.dtype == np.float64:
        shift, ints = 52 - KEY_MANTISSA_BITS, np.int64
    elif x.dtype == np.float32:
        shift, ints = 23 - KEY_MANTISSA_BITS, np.int32
    else:
        raise TypeError(f"bucket_keys wants float32 or float64, not {x.dtype}")
    keys = x.view(ints) + ints((1 << shift) - 1)  # rounded up: only the bits of +0.0 stay below 1 << shift
    return np.right_shift(keys, shift, out=keys)


def quantiles_of_buckets(parts: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], qs: Sequence[float]
                         ) -> np.ndarray:
    """quantiles(np.concatenate(values), qs), bit for bit, from parts (values, bucket_keys(values),
    np.bincount(keys)) of non-negative finite floats (the shares of a sample keyed in threads), at least one
    value in all: the buckets holding the wanted ranks are found from the counts and only their values sorted."""
    parts = [p for p in parts if p[0].size]
    n = sum(p[0].size for p in parts)
    return _interpolate(n, qs, parts[0][0].dtype, lambda ranks: _select_in_buckets(parts, ranks))


def _select_in_buckets(parts: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], ranks: list[int]
                       ) -> dict[int, float]:
    counts = np.zeros(max(p[2].size for p in parts), dtype=np.int64)
    for _, _, c in parts:
        counts[:c.size] += c
    ends = np.cumsum(counts)                             # how many values lie in buckets 0..b
    bucket = np.searchsorted(ends, ranks, side="right")  # the bucket holding each rank
    wanted = np.unique(bucket[bucket > 0])               # bucket 0 holds only +0.0: nothing to sort there
    values, before = np.empty(0, dtype=parts[0][0].dtype), {}
    if wanted.size:
        chosen = np.zeros(counts.size, dtype=bool)
        chosen[wanted] = True
        values = np.sort(np.concatenate([v[chosen[k]] for v, k, _ in parts]))  # the wanted buckets' values
        # where each wanted bucket starts among them: the sizes of the wanted buckets before it
        before = dict(zip(wanted.tolist(), (np.cumsum(counts[wanted]) - counts[wanted]).tolist(), strict=True))
    zero = parts[0][0].dtype.type(0.0)
    return {r: zero if b == 0 else values[before[b] + r - (ends[b] - counts[b])]
            for r, b in zip(ranks, bucket.tolist(), strict=True)}
