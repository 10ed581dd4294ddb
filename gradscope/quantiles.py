"""Exact quantiles of a 1-D sample: what `np.quantile(x, qs)` (method "linear") returns, bit for bit.

The interpolation is numpy's `_lerp` (a + (b-a)·t, or b - (b-a)·(1-t) for t ≥ 0.5); only the order
statistics it reads are found differently. `quantiles(x, qs)` takes them from np.partition around the
wanted ranks (`order_statistics`; 2-4x faster than np.sort from ~2,000 entries on the AMD EPYC measured,
whose np.sort takes a slow AVX-512 path: 37-55 ns an entry).

`quantiles_of_parts(parts, qs)`, for the |∂L/∂W| samples of a report (non-negative, finite, in parts: one
per seed range), orders nothing large. A pilot of (8n)^(2/3) entries (PILOT to PILOT_MAX) drawn at fixed
pseudo-random positions brackets every wanted rank between two pilot values; one comparison per bracket end
(x > lo, x > hi, accumulated into a label per entry, and counted) says which ranks fall inside; the entries
with an odd label (inside a bracket: a few per cent of the sample) are gathered in one pass, put in bracket
order by a radix sort of their labels, and each bracket's slice is partitioned around its ranks. A rank in a
run of entries equal to lo takes lo. The values read off are the sample's order statistics themselves, so
the figures are np.quantile's whatever the pilot drew; a bracket that misses its ranks (a 3.5-sigma event
of the pilot's binomial rank count, whatever the data) falls back to the whole sample. 65k entries: 2.7 ms
sorted, 0.56 ms selected; 262k: 12 and 1.5 ms.
"""

from __future__ import annotations

import math
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


PARTITION_FROM = 1024  # arrays at least this long are partitioned around the wanted ranks, smaller ones sorted


def order_statistics(x: np.ndarray, ranks: list[int], nonnegative: bool = False) -> dict[int, float]:
    """{rank: the value at that 0-based rank of x sorted ascending} for in-range ranks (no NaN in x).

    np.partition around the ranks puts at each of them the value a sort would (introselect, O(n)): 2-4x
    faster than np.sort from ~2,000 entries here, ties and sorted input included; below PARTITION_FROM a
    sort is as fast. It is always handed two ranks at least: with one, NumPy takes its AVX-512 selection,
    3x slower than introselect on the AMD EPYC measured (as its sort: 37-55 ns an entry). nonnegative=True
    (floats without -0.0): the values' bits are partitioned as integers (the same order), ~1.3x faster."""
    keys = x.view(np.int64 if x.dtype == np.float64 else np.int32) if nonnegative and x.dtype.kind == "f" else x
    if x.size < PARTITION_FROM or not ranks:
        v = np.sort(keys)
    else:
        kth = sorted(set(ranks))
        v = np.partition(keys, kth if len(kth) > 1 else kth + [x.size - 1 if kth[0] < x.size - 1 else 0])
    if keys is not x:
        v = v.view(x.dtype)
    return {r: v[r] for r in ranks}


# ---------------------------------------------------------------- selection without a full sort

SELECT_FROM = 16_384  # samples smaller than this are sorted (the selection's fixed cost is ~0.1 ms)
PILOT = 4096          # pilot entries that bracket the wanted ranks: at least this many, (8n)^(2/3) up to PILOT_MAX
PILOT_MAX = 12_288    # (introselect with 14 ranks slows 2-4x per entry from ~16k entries, measured)
_MARGIN_SIGMAS = 3.5  # bracket half-width in standard deviations of the pilot's binomial rank count
_pilot_positions: dict[int, np.ndarray] = {}


def _pilot_size(n: int) -> int:
    """The pilot's size for a sample of n. The pilot is ordered (~m entries' work) and so are the brackets'
    entries (~15 n/sqrt(m) of them for the 7 report quantiles at 3.5 sigma): least in all near m = (8n)^(2/3)."""
    return min(PILOT_MAX, max(PILOT, int((8.0 * n) ** (2.0 / 3.0))))


def _pilot_uniform(m: int) -> np.ndarray:
    """m fixed pseudo-random numbers in [0, 1), ascending: where the pilot is drawn (the same on every call,
    so a run does the same work each time; the results never depend on them). Ascending, so that each
    part's share of the pilot is one slice of the positions, gathered in memory order."""
    if m not in _pilot_positions:
        draw = np.random.Generator(np.random.PCG64(20261208)).random(max(m, PILOT_MAX))[:m]
        _pilot_positions[m] = np.sort(draw)
    return _pilot_positions[m]


# what Selection.count returns for one part: per bracket (#x <= lo, #x <= hi); the part's entries inside any
# bracket, and for each its bracket's label 2g+1
Counts = tuple[list[tuple[int, int]], np.ndarray, np.ndarray]


class Selection:
    """Brackets of the wanted ranks of a sample held in parts: `groups` is a list of (ranks, lo, hi), lo and hi
    pilot values (None: unbounded) such that, with high probability, every rank's value lies in [lo, hi].
    The brackets (lo, hi] are disjoint and ascending (hi of one <= lo of the next).

    The three steps split so that the counting (`count`) can run on each part in its own thread:
    plan = Selection(parts, ranks); per part counts = plan.count(part); plan.values(parts, [counts...])."""

    def __init__(self, parts: Sequence[np.ndarray], ranks: list[int]) -> None:
        n = sum(p.size for p in parts)
        self.dtype = np.result_type(*parts)  # np.concatenate's: what the values are compared and returned in
        pos = (_pilot_uniform(_pilot_size(n)) * n).astype(np.intp)  # ascending, in [0, n)
        start, cut, shares = 0, 0, []
        for p in parts:  # part k holds positions [start, start + size): a slice of the ascending positions
            stop = cut + int(np.searchsorted(pos[cut:], start + p.size))
            shares.append(p[pos[cut:stop] - start])
            start, cut = start + p.size, stop
        pilot = (shares[0] if len(shares) == 1 else np.concatenate(shares)).astype(self.dtype, copy=False)
        m = pilot.size
        spans: list[tuple[list[int], int, int]] = []
        for r in sorted(ranks):
            frac = r / n
            half = _MARGIN_SIGMAS * math.sqrt(m * frac * (1.0 - frac)) + 3.0
            j_lo, j_hi = math.floor(m * r / n - half), math.ceil(m * (r + 1) / n + half)
            if spans and j_lo <= spans[-1][2]:  # overlaps the previous bracket: one bracket for both
                spans[-1] = (spans[-1][0] + [r], spans[-1][1], max(spans[-1][2], j_hi))
            else:
                spans.append(([r], j_lo, j_hi))
        # pilot ranks of each bracket's ends (None: unbounded), and the pilot's values there
        ends_at = [(rs, min(j_lo, m - 1) if j_lo >= 0 else None, max(j_hi, 0) if j_hi < m else None)
                   for rs, j_lo, j_hi in spans]
        at = order_statistics(pilot, sorted({j for _, a, b in ends_at for j in (a, b) if j is not None}),
                              nonnegative=True)
        self.groups = [(rs, None if a is None else at[a], None if b is None else at[b]) for rs, a, b in ends_at]

    def count(self, x: np.ndarray) -> Counts:
        """For one part x: per group (#x <= lo, #x <= hi), the entries in any bracket (lo, hi] (unsorted), and
        for each of them its bracket's label 2g+1.

        An entry's label is the number of bracket ends it exceeds (x > lo, x > hi in turn), taken in one
        accumulating comparison per end; odd labels are inside a bracket, and those entries are gathered in
        one pass. Fewer passes than masking each bracket and joining the masks."""
        x = np.ascontiguousarray(x, dtype=self.dtype)  # a strided share: one copy, every pass runs on it
        size = x.size
        label = np.zeros(size, np.uint8)
        above = np.empty(size, np.bool_)
        step = above.view(np.uint8)
        bounds: list[tuple[int, int]] = []
        for _, lo, hi in self.groups:
            at_or_below, upto = 0, size
            if lo is None:
                label += 1
            else:
                np.greater(x, lo, out=above)
                at_or_below = size - int(np.count_nonzero(above))
                label += step
            if hi is not None:
                np.greater(x, hi, out=above)
                upto = size - int(np.count_nonzero(above))
                label += step
            bounds.append((at_or_below, upto))
        np.bitwise_and(label, 1, out=step)
        where = np.flatnonzero(above)
        return bounds, x.take(where), label.take(where)

    def values(self, parts: Sequence[np.ndarray], counts: Sequence[Counts],
               map_parts: Callable[[Callable[[int], object]], list[object]] | None = None) -> dict[int, float]:
        """{rank: value} from every part's counts; ranks a bracket missed come from a sort of the whole.
        With map_parts, the brackets are shared out among its threads (bracket g to thread g mod threads)."""
        lanes = len(parts) if map_parts is not None and len(parts) > 1 else 1
        inside = counts[0][1] if len(counts) == 1 else np.concatenate([c[1] for c in counts])
        if len(self.groups) > 1:  # the entries in bracket order (a radix sort of the labels): bracket g's are
            labels = counts[0][2] if len(counts) == 1 else np.concatenate([c[2] for c in counts])
            inside = inside.take(np.argsort(labels, kind="stable"))  # one slice, at its (#x <= lo) offset
        sizes = [sum(c[0][g][1] - c[0][g][0] for c in counts) for g in range(len(self.groups))]
        offsets = np.cumsum([0] + sizes).tolist()

        def solve(k: int) -> tuple[dict[int, float], list[int]]:
            out: dict[int, float] = {}
            missed: list[int] = []
            for g in range(k, len(self.groups), lanes):
                rs, lo, _ = self.groups[g]
                at_or_below = sum(c[0][g][0] for c in counts)
                upto = sum(c[0][g][1] for c in counts)
                below: int | None = None
                held = [r - at_or_below for r in rs if at_or_below <= r < upto]
                if held:
                    found = order_statistics(inside[offsets[g]:offsets[g + 1]], held, nonnegative=True)
                for r in rs:
                    if at_or_below <= r < upto:
                        out[r] = found[r - at_or_below]
                        continue
                    if r < at_or_below and lo is not None:  # in a run of entries equal to lo, or below the bracket
                        if below is None:
                            below = sum(int(np.count_nonzero(np.less(p, lo))) for p in parts)
                        if r >= below:
                            out[r] = lo
                            continue
                    missed.append(r)
            return out, missed

        solved = map_parts(solve) if lanes > 1 else [solve(0)]  # type: ignore[misc]
        out: dict[int, float] = {}
        missed: list[int] = []
        for part_out, part_missed in solved:  # type: ignore[misc]
            out.update(part_out)
            missed += part_missed
        if missed:
            out.update(order_statistics(np.concatenate(parts).astype(self.dtype, copy=False), missed,
                                        nonnegative=True))
        return out


def select_unsorted(parts: Sequence[np.ndarray], ranks: list[int],
                    map_parts: Callable[[Callable[[int], object]], list[object]] | None = None) -> dict[int, float]:
    """{rank: value at that 0-based rank of the union of the parts sorted ascending}, for 1-D parts of
    non-negative finite values (no -0.0, no NaN), without sorting them. map_parts(fn) runs fn(k) for every part
    index k (in threads, say) and returns the results in order; by default one after the other."""
    n = sum(p.size for p in parts)
    if n < SELECT_FROM:
        return order_statistics(parts[0] if len(parts) == 1 else np.concatenate(parts), ranks, nonnegative=True)
    plan = Selection(parts, ranks)
    counts = map_parts(lambda k: plan.count(parts[k])) if map_parts else [plan.count(p) for p in parts]
    return plan.values(parts, counts, map_parts)  # type: ignore[arg-type]


def quantiles_of_parts(parts: Sequence[np.ndarray], qs: Sequence[float],
                       map_parts: Callable[[Callable[[int], object]], list[object]] | None = None) -> np.ndarray:
    """quantiles(np.concatenate(parts), qs), bit for bit, for 1-D parts of non-negative finite values (at least
    one entry in all), unsorted: select_unsorted's order statistics."""
    kept = [p for p in parts if p.size]
    n = sum(p.size for p in kept)
    if map_parts is not None and len(kept) != len(parts):
        map_parts = None
    dtype = np.result_type(*kept) if len(kept) > 1 else kept[0].dtype  # np.concatenate's dtype
    return _interpolate(n, qs, dtype, lambda ranks: select_unsorted(kept, ranks, map_parts))
