"""Numeric helpers shared by the statistics (diagnostics.py) and the findings (rules.py)."""

from __future__ import annotations

import numpy as np

_SQUARE_SAFE = (1e-150, 1e150)  # norms outside this range may have squares that under- or overflowed


def _norm(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Frobenius norm over `axes` (the trailing ones), accumulated in float64, no squared temporary.

    Finite entries always give a finite, non-zero-when-non-zero norm: seeds whose sum of squares left
    float64's range (entries beyond ~1e154 or below ~1e-154) are recomputed scaled by their largest entry.
    """
    flat = x.reshape(x.shape[0], -1) if axes == tuple(range(1, x.ndim)) else None
    with np.errstate(over="ignore", under="ignore"):
        if flat is not None:
            out = np.sqrt(np.einsum("si,si->s", flat, flat, dtype=np.float64))
        else:
            out = np.sqrt(np.sum(np.square(x, dtype=np.float64), axis=axes))
    suspect = ~((out > _SQUARE_SAFE[0]) & (out < _SQUARE_SAFE[1]))
    if suspect.any():
        sub = np.asarray(x[suspect], dtype=np.float64)  # (k, ...) the suspect seeds
        with np.errstate(all="ignore"):
            m = np.max(np.abs(sub), axis=axes, keepdims=True)
            rescale = np.isfinite(m) & (m > 0)  # zero rows stay 0, rows holding inf/NaN stay inf/NaN
            scale = np.where(rescale, m, 1.0)
            out[suspect] = np.squeeze(scale, axis=axes) * np.sqrt(np.sum(np.square(sub / scale), axis=axes))
    return out


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(a, dtype=np.float64) / np.asarray(b, dtype=np.float64)


def median(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """np.median(values, axis) of a float array (axis None or 0), the same numbers by the same steps (a
    partition, the mean of the middle one or two, NaN where a NaN sorted last), without importing numpy.ma:
    np.median's NaN check does, ~10 ms of a run's start-up. Other arrays go to np.median."""
    if axis is None:
        values = values.ravel()
    n = values.shape[0] if values.ndim else 0
    if n == 0 or axis not in (None, 0) or values.dtype.kind != "f":
        return np.median(values, axis=axis)
    half = n // 2
    part = np.partition(values, [half - 1, half, -1] if n % 2 == 0 else [half, -1], axis=0)
    out = np.mean(part[half - 1: half + 1] if n % 2 == 0 else part[half: half + 1], axis=0)
    last = part[-1]
    nan = np.isnan(last)
    if not nan.any():
        return out
    if isinstance(out, np.generic):
        return last
    np.copyto(out, last, where=nan)
    return out


_STD_TAKES_MEAN = int(np.__version__.split(".")[0]) >= 2  # NumPy 2.0 added std(..., mean=)


def mean_std(x: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """x.mean(axes) and x.std(axes) in float64, the same numbers; std is handed the mean (NumPy ≥ 2) instead of
    summing x a second time to find it — one pass fewer of the five."""
    m = x.mean(axis=axes, dtype=np.float64, keepdims=True)
    s = x.std(axis=axes, dtype=np.float64, mean=m) if _STD_TAKES_MEAN else x.std(axis=axes, dtype=np.float64)
    return m.reshape(s.shape), s
