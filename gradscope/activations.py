"""Activation functions, each with its derivative written beside it.

Elementwise hidden activations take `z` of any shape (usually (S, B, n)) and
return arrays of the same shape; `grad(z, a)` reuses the forward output `a`.
Output activations (identity, sigmoid, softmax) act on the last axis and give
a vector-Jacobian product instead of an elementwise derivative.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .registry import Entry, Param, Registry

Array = np.ndarray


@dataclass(frozen=True)
class Activation(Entry):
    """a = fn(z, **params); grad(z, a, **params) = dφ/dz, both elementwise, same shape as z."""

    fn: Callable[..., Array] = field(kw_only=True)
    grad: Callable[..., Array] = field(kw_only=True)
    max_grad: Callable[..., float] = field(kw_only=True, default=lambda **_: 1.0)
    saturating: bool = field(kw_only=True, default=False)  # flat on both sides (sigmoid, tanh, ...)
    can_die: bool = field(kw_only=True, default=False)     # flat on the negative side (relu-like)
    torch_gain: Callable[..., float] | None = field(kw_only=True, default=None)
    into: Callable[..., None] | None = field(kw_only=True, default=None)  # into(z, out, **params): fn(z) written to out


ACTIVATIONS: Registry[Activation] = Registry("activation")


def _sigmoid(z: Array, out: Array | None = None) -> Array:
    # 1/(1 + e^-z), in place on one buffer (`out`, or a new one): e^-z overflows to inf for z < -709 and the
    # result is then exactly 0, as it should be
    e = np.negative(z, out=out)
    with np.errstate(over="ignore"):
        np.exp(e, out=e)
    e += 1.0
    return np.reciprocal(e, out=e)


def _sigmoid_grad(z: Array, a: Array) -> Array:
    g = 1.0 - a
    g *= a
    return g


def _tanh_grad(z: Array, a: Array) -> Array:
    g = a * a
    np.subtract(1.0, g, out=g)
    return g


def _erf(x: Array) -> Array:
    from scipy.special import erf  # exact erf, vectorized; imported only when GELU is used

    return erf(x)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _gelu(z: Array, approximate: str = "none") -> Array:
    if approximate == "tanh":
        return 0.5 * z * (1.0 + np.tanh(_SQRT_2_OVER_PI * (z + 0.044715 * z**3)))
    return 0.5 * z * (1.0 + _erf(z / math.sqrt(2.0)))


def _gelu_grad(z: Array, a: Array, approximate: str = "none") -> Array:
    if approximate == "tanh":
        inner = _SQRT_2_OVER_PI * (z + 0.044715 * z**3)
        t = np.tanh(inner)
        return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * _SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * z * z)
    cdf = 0.5 * (1.0 + _erf(z / math.sqrt(2.0)))
    pdf = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return cdf + z * pdf


def _softplus(z: Array, beta: float = 1.0, threshold: float = 20.0) -> Array:
    bz = beta * z
    return np.where(bz > threshold, z, np.logaddexp(0.0, bz) / beta)


def _softplus_grad(z: Array, a: Array, beta: float = 1.0, threshold: float = 20.0) -> Array:
    bz = beta * z
    return np.where(bz > threshold, 1.0, _sigmoid(bz))


def _elu(z: Array, alpha: float = 1.0) -> Array:
    return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0.0)))


def _elu_grad(z: Array, a: Array, alpha: float = 1.0) -> Array:
    return np.where(z > 0, 1.0, alpha * np.exp(np.minimum(z, 0.0)))


def _leaky_gain(negative_slope: float = 0.01, **_: Any) -> float:
    return math.sqrt(2.0 / (1.0 + negative_slope * negative_slope))  # x*x: inf, never OverflowError


_reg = ACTIVATIONS.register
_reg(Activation("identity", "φ(z) = z (a linear layer)", fn=lambda z: z,
                grad=lambda z, a: np.ones_like(z), torch_gain=lambda: 1.0), "linear")
_reg(Activation("sigmoid", "logistic 1/(1+e^-z); φ' = a(1-a) ≤ 0.25",
                fn=_sigmoid, grad=_sigmoid_grad, max_grad=lambda: 0.25,
                saturating=True, torch_gain=lambda: 1.0, into=_sigmoid))
_reg(Activation("tanh", "hyperbolic tangent; φ' = 1 - a² ≤ 1",
                fn=np.tanh, grad=_tanh_grad, saturating=True,
                torch_gain=lambda: 5.0 / 3.0, into=lambda z, out: np.tanh(z, out=out)))
_reg(Activation("relu", "max(0, z); φ' is 1 for z > 0 and 0 otherwise",
                fn=lambda z: np.maximum(z, 0.0), grad=lambda z, a: (z > 0).astype(z.dtype),
                can_die=True, torch_gain=lambda: math.sqrt(2.0), into=lambda z, out: np.maximum(z, 0.0, out=out)))
_reg(Activation("leaky_relu", "z for z > 0, negative_slope·z otherwise",
                fn=lambda z, negative_slope=0.01: np.where(z > 0, z, negative_slope * z),
                grad=lambda z, a, negative_slope=0.01: np.where(z > 0, 1.0, negative_slope).astype(z.dtype),
                can_die=True, torch_gain=_leaky_gain,
                params=(Param("negative_slope", float, 0.01, "slope for z < 0", minimum=0.0),)))
_reg(Activation("elu", "z for z > 0, alpha·(e^z - 1) otherwise", fn=_elu, grad=_elu_grad,
                max_grad=lambda alpha=1.0: max(1.0, alpha), can_die=True,
                params=(Param("alpha", float, 1.0, "value approached for z → -∞ is -alpha",
                              minimum=0.0),)))
_reg(Activation("selu", "scale·elu(z, alpha) with the self-normalizing constants",
                fn=lambda z: _SELU_SCALE * _elu(z, _SELU_ALPHA),
                grad=lambda z, a: _SELU_SCALE * _elu_grad(z, a, _SELU_ALPHA),
                max_grad=lambda: _SELU_SCALE * _SELU_ALPHA, can_die=True, torch_gain=lambda: 0.75))
_reg(Activation("gelu", "z·Φ(z) (exact, erf) or its tanh approximation",
                fn=_gelu, grad=_gelu_grad, max_grad=lambda approximate="none": 1.13, can_die=True,
                params=(Param("approximate", str, "none", "'none' (erf) or 'tanh'",
                              choices=("none", "tanh")),)))
_reg(Activation("silu", "z·σ(z) (swish)", fn=lambda z: z * _sigmoid(z),
                grad=lambda z, a: _sigmoid(z) * (1.0 + z * (1.0 - _sigmoid(z))),
                max_grad=lambda: 1.1, can_die=True), "swish")
_reg(Activation("softplus", "log(1 + e^(beta·z))/beta, linear above threshold",
                fn=_softplus, grad=_softplus_grad, can_die=True,
                params=(Param("beta", float, 1.0, "sharpness (≥ 1e-150: log(2)/beta must be a finite float)",
                              minimum=1e-150),
                        Param("threshold", float, 20.0, "beta·z above which softplus is z"))))
_reg(Activation("hardtanh", "clip(z, min_val, max_val); φ' is 1 inside, 0 outside",
                fn=lambda z, min_val=-1.0, max_val=1.0: np.clip(z, min_val, max_val),
                grad=lambda z, a, min_val=-1.0, max_val=1.0: ((z > min_val) & (z < max_val)).astype(z.dtype),
                saturating=True,
                params=(Param("min_val", float, -1.0, "lower clip"), Param("max_val", float, 1.0, "upper clip"))))
_reg(Activation("softsign", "z/(1 + |z|); φ' = 1/(1 + |z|)²",
                fn=lambda z: z / (1.0 + np.abs(z)), grad=lambda z, a: 1.0 / (1.0 + np.abs(z)) ** 2,
                saturating=True))


def torch_gain(name: str, params: dict[str, Any] | None = None) -> float:
    """torch.nn.init.calculate_gain for an activation name; ValueError where torch has none."""
    act = ACTIVATIONS.get(name)
    if act.torch_gain is None:
        raise ValueError(f"torch.nn.init.calculate_gain has no gain for '{act.name}'; give a number")
    return float(act.torch_gain(**(params or {})))


# ---------------------------------------------------------------- output heads


@dataclass(frozen=True)
class OutputActivation(Entry):
    """ŷ = fn(z) over the last axis; vjp(z, ŷ, g) = (∂ŷ/∂z)ᵀ g, both shaped like z."""

    fn: Callable[[Array], Array] = field(kw_only=True)
    vjp: Callable[[Array, Array, Array], Array] = field(kw_only=True)


# Over a short last axis (a handful of classes), NumPy's reductions cost ~20-40 ns per row of calling their
# inner loop; the same reduction written as one elementwise op per column is 2-3x faster there.
SHORT_AXIS = 16


def max_last(z: Array) -> Array:
    """z.max(axis=-1, keepdims=True), the same values (max is exact, NaN propagates alike)."""
    k = z.shape[-1]
    if not 1 < k <= SHORT_AXIS:
        return z.max(axis=-1, keepdims=True)
    m = z[..., 0:1].copy()
    for j in range(1, k):
        np.maximum(m, z[..., j:j + 1], out=m)
    return m


def sum_last(z: Array) -> Array:
    """z.sum(axis=-1, keepdims=True) of a floating array, added in NumPy's order for k ≤ SHORT_AXIS columns:
    one after another below 8, else eight partial sums (column j into j mod 8) combined pairwise and the
    remaining columns added after them — its pairwise summation's base case, so the same bits."""
    k = z.shape[-1]
    if not 1 < k <= SHORT_AXIS:
        return z.sum(axis=-1, keepdims=True)
    col = [z[..., j:j + 1] for j in range(k)]
    if k < 8:
        r = col[0] + col[1]
        for j in range(2, k):
            r += col[j]
    else:
        done = 16 if k == 16 else 8  # k = 16: a second row of eight added into the partial sums
        acc = [col[j] + col[j + 8] if done == 16 else col[j] for j in range(8)]
        r = (acc[0] + acc[1]) + (acc[2] + acc[3])
        r += (acc[4] + acc[5]) + (acc[6] + acc[7])
        for j in range(done, k):
            r += col[j]
    r += 0.0  # NumPy's sum starts from +0.0: a sum of -0.0s is +0.0
    return r


def softmax(z: Array) -> Array:
    """Stable softmax over the last axis."""
    e = np.exp(z - max_last(z))
    e /= sum_last(e)
    return e


def log_softmax(z: Array) -> Array:
    """z - logsumexp(z) over the last axis, never log(softmax(z))."""
    zm = z - max_last(z)
    lse = np.log(sum_last(np.exp(zm)))
    zm -= lse
    return zm


OUTPUT_ACTIVATIONS: Registry[OutputActivation] = Registry("output activation")
OUTPUT_ACTIVATIONS.register(OutputActivation("identity", "ŷ = z", fn=lambda z: z, vjp=lambda z, y, g: g),
                            "linear")
OUTPUT_ACTIVATIONS.register(OutputActivation("sigmoid", "ŷ = σ(z) per output",
                                             fn=_sigmoid, vjp=lambda z, y, g: g * y * (1.0 - y)))
OUTPUT_ACTIVATIONS.register(OutputActivation(
    "softmax", "ŷ = softmax(z) over the outputs", fn=softmax,
    vjp=lambda z, y, g: y * (g - (g * y).sum(axis=-1, keepdims=True))))
