"""Layer kinds of a network, in the spirit of stax: each kind is an `init`, a `forward` returning its output
and what backward needs, and a `vjp`; the network is a list of items the engine walks generically.

Items (frozen specs, what a scenario's `network:` expands to):
- `Dense`: z = h @ W + b, then an optional norm (post placement in a plain net: z → norm → φ), then the
  activation φ; the network's last Dense is the output layer, whose head (softmax, …) the loss applies;
- `Norm`: layernorm | batchnorm | rmsnorm, y = γ·x̂ + β (rmsnorm has γ only, as torch.nn.RMSNorm);
- `Dropout`: y = x·m/(1-p), m ~ Bernoulli(1-p) per seed, sample and unit (inverted scaling, as PyTorch);
- `Residual`: y = skip(x) + α·branch(x), skip(x) = x, or x @ P with a learned projection P.

Arrays are (S, B, n); the input x may be (B, n), shared by the ensemble, and broadcasts. Every kind's
vjp is checked against central finite differences and against PyTorch in the tests by looping over
NORMS and the item types, so a new kind gets its tests by being registered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from .parallel import map_seeds
from .registry import Entry, Param, Registry

Array = np.ndarray


# ---------------------------------------------------------------- normalization kinds


@dataclass(frozen=True)
class NormKind(Entry):
    """Normalize over `axis` (-1: per sample, over features; 1: per feature, over the batch)."""

    axis: int = field(kw_only=True)
    center: bool = field(kw_only=True)      # subtract the mean (layernorm, batchnorm) or not (rmsnorm)
    has_beta: bool = field(kw_only=True)    # a shift β besides the scale γ
    torch: str = field(kw_only=True)        # the torch.nn module it matches
    min_batch: int = field(kw_only=True, default=1)


NORMS: Registry[NormKind] = Registry("norm")
_EPS = Param("eps", float, 1e-5, "added to the variance before the square root", minimum=0.0,
             exclusive_minimum=True)
NORMS.register(NormKind("layernorm", "per sample over the features: (x - mean)/√(var + eps)·γ + β",
                        params=(_EPS,), axis=-1, center=True, has_beta=True, torch="nn.LayerNorm"))
NORMS.register(NormKind("batchnorm", "per feature over the batch (training mode, as at init in PyTorch): "
                        "(x - mean_B)/√(var_B + eps)·γ + β",
                        params=(_EPS,), axis=1, center=True, has_beta=True, torch="nn.BatchNorm1d", min_batch=2))
NORMS.register(NormKind("rmsnorm", "per sample over the features: x/√(mean(x²) + eps)·γ (no β, as "
                        "torch.nn.RMSNorm)",
                        params=(Param("eps", float, None, "added to mean(x²); default: the dtype's machine "
                                      "epsilon, as torch.nn.RMSNorm", minimum=0.0, exclusive_minimum=True,
                                      nullable=True),),
                        axis=-1, center=False, has_beta=False, torch="nn.RMSNorm"))


# ---------------------------------------------------------------- specs


@dataclass(frozen=True)
class Norm:
    kind: str
    n: int
    eps: float | None
    row: int = 0            # report row (1-based), filled by number()

    @property
    def entry(self) -> NormKind:
        return NORMS.get(self.kind)

    def eps_for(self, dtype: np.dtype) -> float:
        return float(np.finfo(dtype).eps) if self.eps is None else self.eps


@dataclass(frozen=True)
class Dense:
    fan_in: int
    fan_out: int
    activation: str                       # the hidden activation; for the output layer its head
    act_params: tuple[tuple[str, Any], ...] = ()
    norm: Norm | None = None              # between the linear map and the activation (post placement)
    init: Any = None                      # a scenario Component overriding network.init for this layer
    output: bool = False
    projection: bool = False              # a residual block's skip projection: no bias, no activation
    row: int = 0
    index: int = 0                        # 1-based position among the network's Dense items (weight stream)


@dataclass(frozen=True)
class Dropout:
    p: float
    n: int
    index: int = 0                        # 1-based position among the network's Dropout items (mask stream)


@dataclass(frozen=True)
class Residual:
    alpha: float
    layers: tuple[Item, ...]
    n_in: int
    n_out: int
    projection: Dense | None = None
    block: int = 0                        # 1-based block number


Item = Union[Dense, Norm, Dropout, Residual]  # noqa: UP007 (a runtime alias of dataclasses)


def walk(items: tuple[Item, ...]) -> list[Item]:
    """Every item in forward order, blocks' contents before their projection, norms inside Dense after it."""
    out: list[Item] = []
    for it in items:
        if isinstance(it, Residual):
            out.append(it)
            out.extend(walk(it.layers))
            if it.projection is not None:
                out.append(it.projection)
        else:
            out.append(it)
            if isinstance(it, Dense) and it.norm is not None:
                out.append(it.norm)
    return out


def number(items: tuple[Item, ...]) -> tuple[Item, ...]:
    """The same items with rows (1.. over layers with parameters, forward order), Dense/Dropout indices and
    block numbers filled in."""
    counter = {"row": 0, "dense": 0, "dropout": 0, "block": 0}

    def bump(key: str) -> int:
        counter[key] += 1
        return counter[key]

    def one(it: Item) -> Item:
        if isinstance(it, Dense):
            d = Dense(**{**it.__dict__, "row": bump("row"), "index": 0 if it.projection else bump("dense")})
            if it.norm is not None:
                d = Dense(**{**d.__dict__, "norm": Norm(it.norm.kind, it.norm.n, it.norm.eps, bump("row"))})
            return d
        if isinstance(it, Norm):
            return Norm(it.kind, it.n, it.eps, bump("row"))
        if isinstance(it, Dropout):
            return Dropout(it.p, it.n, bump("dropout"))
        block = bump("block")
        inner = tuple(one(x) for x in it.layers)
        proj = one(it.projection) if it.projection is not None else None
        return Residual(it.alpha, inner, it.n_in, it.n_out, proj, block)  # type: ignore[arg-type]

    return tuple(one(it) for it in items)


def dense_items(items: tuple[Item, ...]) -> list[Dense]:
    return [it for it in walk(items) if isinstance(it, Dense)]


def is_plain(items: tuple[Item, ...]) -> bool:
    """Only Dense layers without norms (today's MLP)."""
    return all(isinstance(it, Dense) and it.norm is None and not it.projection for it in items)


# ---------------------------------------------------------------- norm forward / vjp


@dataclass
class NormCache:
    x: Array          # input
    xhat: Array       # normalized input
    inv: Array        # 1/σ, broadcastable to x
    y: Array          # output


def norm_forward(spec: Norm, gamma: Array, beta: Array | None, x: Array) -> NormCache:
    """y = γ·x̂ + β, γ and β (S, n) broadcast over the batch. Per seed range in threads (parallel.map_seeds)."""
    kind = spec.entry
    ax = kind.axis
    eps = spec.eps_for(x.dtype)
    S = x.shape[0]
    inv = np.empty(tuple(1 if i == ax % x.ndim else n for i, n in enumerate(x.shape)), dtype=x.dtype)
    xhat = np.empty(x.shape, dtype=x.dtype)
    y = np.empty(x.shape, dtype=np.result_type(x, gamma))

    def work(sl: slice) -> None:
        xs = x[sl]
        if kind.center:
            xc = xs - xs.mean(axis=ax, keepdims=True)
            var = np.mean(xc * xc, axis=ax, keepdims=True)
        else:
            xc = xs
            var = np.mean(xs * xs, axis=ax, keepdims=True)
        inv[sl] = 1.0 / np.sqrt(var + eps)
        np.multiply(xc, inv[sl], out=xhat[sl])
        np.multiply(xhat[sl], gamma[sl, None, :], out=y[sl])
        if beta is not None:
            y[sl] += beta[sl, None, :]

    map_seeds(work, S, x.size)
    return NormCache(x, xhat, inv, y)


def norm_vjp(spec: Norm, gamma: Array, c: NormCache, dy: Array) -> tuple[Array, Array, Array | None]:
    """(∂L/∂x, ∂L/∂γ, ∂L/∂β) from ∂L/∂y; γ, β gradients summed over the batch, (S, n). Per seed range."""
    kind = spec.entry
    ax = kind.axis
    S, n = dy.shape[0], dy.shape[-1]
    dgamma = np.empty((S, n), dtype=np.result_type(dy, c.xhat))
    dbeta = np.empty((S, n), dtype=dy.dtype) if kind.has_beta else None
    dx = np.empty(dy.shape, dtype=np.result_type(dy, gamma, c.xhat, c.inv))

    def work(sl: slice) -> None:
        d, xh = dy[sl], c.xhat[sl]
        np.sum(d * xh, axis=-2, out=dgamma[sl])
        if dbeta is not None:
            np.sum(d, axis=-2, out=dbeta[sl])
        g = d * gamma[sl, None, :]
        proj = np.mean(g * xh, axis=ax, keepdims=True)
        out = dx[sl]
        np.subtract(g, xh * proj, out=out)
        if kind.center:
            out -= np.mean(g, axis=ax, keepdims=True)
        out *= c.inv[sl]

    map_seeds(work, S, dy.size)
    return dx, dgamma, dbeta


# ---------------------------------------------------------------- dropout


def dropout_mask(seed: int, index: int, step: int, shape: tuple[int, int, int], p: float,
                 dtype: type) -> Array:
    """The keep mask scaled by 1/(1-p), (S, B, n), of dropout layer `index` at training step `step`.

    Drawn seed-major from the stream SeedSequence(seed, spawn_key=(2, index, step)): seed k's block is the
    k-th of a prefix-stable sequence, so adding seeds changes none of the existing seeds' masks, and the
    data (spawn key 0) and weight (spawn key 1) streams are untouched."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2, index, step)))
    keep = rng.random(shape) >= p
    return keep.astype(dtype) * dtype(1.0 / (1.0 - p))


# ---------------------------------------------------------------- mean-field maps


def dropout_keep(items: tuple[Item, ...]) -> list[float] | None:
    """Keep probability of the dropout in front of each main-path dense layer (1 where none), for a network of
    dense and dropout layers only; None for any other network (norms, skip connections) or one without dropout."""
    if all(isinstance(it, Dense) and it.norm is None for it in items):
        return None
    keep: list[float] = []
    q = 1.0
    for it in items:
        if isinstance(it, Dense) and it.norm is None:
            keep.append(q)
            q = 1.0
        elif isinstance(it, Dropout):
            q *= 1.0 - it.p
        else:
            return None
    return keep


def dropout_critical_sigma_w2(keep: float, chi_per_sigma: float) -> float:
    """Critical σ_w² of a layer whose backward factor is σ_w²·E[φ'²]/keep: keep/E[φ'²] (ReLU: 2·keep)."""
    return keep / chi_per_sigma


def residual_growth(alpha: float, blocks: int, branch_gain: float = 1.0) -> float:
    """E‖x_L‖²/‖x_0‖² of x_{l+1} = x_l + α·branch(x_l) when the branch maps second moment q to branch_gain·q
    and is uncorrelated with its input: (1 + α²·branch_gain)^blocks."""
    return float(math.exp(blocks * math.log1p(alpha * alpha * branch_gain)))


BATCHNORM_RELU_GRADIENT_GROWTH = math.pi / (math.pi - 1.0)  # Yang et al. 2019: ‖∇‖² per layer backward


def stream_moments(items: tuple[Item, ...], sigmas: dict[int, tuple[float, float]], m0: float
                   ) -> tuple[dict[int, float], float]:
    """Mean-field second moment per unit, E[h_i²], walked through the items from the input's m0.

    sigmas: Dense row -> (σ_w², σ_b²). A dense layer maps m to q = σ_w²·m + σ_b² and then E[φ(√q ξ)²]; a norm
    (γ = 1, β = 0) outputs unit second moment; dropout with keep q divides by q; a residual block gives
    m_skip + α²·m_branch (the branch's output is uncorrelated with its input over random weights), with
    m_skip = σ_P²·m through a projection. Returns ({block: E‖x‖² per unit at its input}, m at the end of the
    hidden layers)."""
    from .theory import _phi, gaussian_expectation

    at: dict[int, float] = {}

    def go(its: tuple[Item, ...], m: float) -> float:
        for it in its:
            if isinstance(it, Dense):
                if it.output:
                    return m
                sw2, sb2 = sigmas[it.row]
                q = sw2 * m + sb2
                if it.norm is not None:
                    q = 1.0
                fn, _ = _phi(it.activation, dict(it.act_params))
                m = q if it.activation == "identity" else gaussian_expectation(lambda x, fn=fn: fn(x) ** 2, q)
            elif isinstance(it, Norm):
                m = 1.0
            elif isinstance(it, Dropout):
                m = m / (1.0 - it.p)
            else:
                at[it.block] = m
                mb = go(it.layers, m)
                skip = m if it.projection is None else sigmas[it.projection.row][0] * m
                m = skip + it.alpha * it.alpha * mb
        return m

    return at, go(items, m0)

