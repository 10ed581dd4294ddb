"""Mean-field theory of signal propagation (Poole et al. 2016, Schoenholz et al. 2017).

For a wide network with i.i.d. zero-mean weights of variance σ_w²/fan_in and
biases of variance σ_b², pre-activations are Gaussian with variance q_l:

    length map      q_l   = σ_w² E[φ(√q_{l-1} z)²] + σ_b²,          z ~ N(0, 1)
    backward factor χ(q)  = σ_w² E[φ'(√q z)²]      (‖δ_l‖² = χ(q_l) ‖δ_{l+1}‖²)

χ₁ = χ(q*) at the fixed point q* of the length map; χ₁ < 1 is the ordered
phase (gradients vanish as χ₁^(depth/2)), χ₁ > 1 the chaotic phase (they
explode). Expectations are Gauss–Hermite quadrature with an even number of
nodes (no node at the kink of ReLU-like functions).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .activations import ACTIVATIONS
from .parallel import map_seeds

_HERMITE_MAX_Q = 1.5
_Z = 12.0

Fn = Callable[[np.ndarray], np.ndarray]


# The Gauss rules of the 1-D quadratures, as numpy.polynomial computes them (hermegauss(200), leggauss(600)),
# stored once: the nodes and weights are constants, and leggauss(600) — an eigenvalue problem of order 600
# — cost 35 ms of the first quadrature in every process (every `gradscope run`). Written by
# `python -m gradscope.theory` (one .npy of (nodes, weights) per rule: np.load reads it without zipfile);
# tests/test_theory.py checks them against numpy.polynomial.
RULES_DIR = Path(__file__).with_name("quadrature")
_RULES = {"hermegauss200": lambda: np.polynomial.hermite_e.hermegauss(200),
          "leggauss600": lambda: np.polynomial.legendre.leggauss(600),
          "hermegauss16": lambda: np.polynomial.hermite_e.hermegauss(16)}  # _hermite_2d's (imports numpy.polynomial)


@functools.cache
def gauss_rule(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(nodes, weights) of a rule in _RULES: from RULES_DIR, or computed when its file is absent."""
    try:
        xw = np.load(RULES_DIR / f"{name}.npy")
    except (OSError, ValueError):
        return _RULES[name]()
    return xw[0], xw[1]


@functools.cache
def _hermite() -> tuple[np.ndarray, np.ndarray]:
    """200 probabilists' Gauss–Hermite nodes (none at 0) and weights normalized to N(0, 1)."""
    nodes, weights = gauss_rule("hermegauss200")
    return nodes, weights / math.sqrt(2.0 * math.pi)


@functools.cache
def _split_legendre() -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre (600 nodes) on [-12, 0] and [0, 12], weighted by the N(0, 1) density.

    For large q, φ(√q z) varies on a scale finer than the Hermite nodes near 0; Legendre nodes
    cluster at the ends of each half, i.e. at 0, and the split makes kinks at 0 exact.
    """
    x, w = gauss_rule("leggauss600")
    half_x = 0.5 * _Z * (x + 1.0)
    half_w = 0.5 * _Z * w * np.exp(-0.5 * half_x**2) / math.sqrt(2.0 * math.pi)
    return np.concatenate([-half_x, half_x]), np.concatenate([half_w, half_w])


def gaussian_expectation(f: Fn, q: float) -> float:
    """E[f(√q z)] for z ~ N(0, 1): Gauss–Hermite for q ≤ 1.5, split Gauss–Legendre above."""
    nodes, weights = _hermite() if q <= _HERMITE_MAX_Q else _split_legendre()
    return float(np.dot(weights, f(math.sqrt(max(q, 0.0)) * nodes)))


def _phi(name: str, params: dict[str, Any] | None = None) -> tuple[Fn, Fn]:
    act = ACTIVATIONS.get(name)
    p = dict(params or {})

    def fn(x: np.ndarray) -> np.ndarray:
        return act.fn(x, **p)

    def grad(x: np.ndarray) -> np.ndarray:
        return act.grad(x, act.fn(x, **p), **p)

    return fn, grad


def length_map(q: float, sigma_w2: float, sigma_b2: float, activation: str,
               params: dict[str, Any] | None = None) -> float:
    """q_next = σ_w² E[φ(√q z)²] + σ_b²."""
    fn, _ = _phi(activation, params)
    return sigma_w2 * gaussian_expectation(lambda x: fn(x) ** 2, q) + sigma_b2


def chi(q: float, sigma_w2: float, activation: str, params: dict[str, Any] | None = None) -> float:
    """Backward factor χ(q) = σ_w² E[φ'(√q z)²]: the expected ‖δ_l‖²/‖δ_{l+1}‖²."""
    _, grad = _phi(activation, params)
    return sigma_w2 * gaussian_expectation(lambda x: grad(x) ** 2, q)


def fixed_point(sigma_w2: float, sigma_b2: float, activation: str, params: dict[str, Any] | None = None,
                q0: float = 1.0, tol: float = 1e-13, max_iter: int = 100) -> float | None:
    """The fixed point q* that iterating the length map from q0 approaches; None if q grows without bound.

    Plain iteration converges geometrically unless χ is near 1 (e.g. tanh at σ_w² = 1, σ_b = 0, where
    q_l ~ 1/l); then the attracting root of map(q) - q is located by a sign change on a log grid and
    bisection, and 0 is returned when the map stays below the diagonal all the way down.
    """
    def g(q: float) -> float:
        return length_map(q, sigma_w2, sigma_b2, activation, params) - q

    q = q0
    for _ in range(max_iter):
        nq = q + g(q)
        if not math.isfinite(nq) or nq > 1e12:
            return None
        if abs(nq - q) <= tol * max(1.0, q):
            return nq
        q = nq
    if g(q) < 0:  # still decreasing: the largest root below q, or 0
        grid = np.geomspace(1e-12, q, 200)[::-1]
    else:  # still increasing: the smallest root above q
        grid = np.geomspace(q, 1e12, 200)
    values = _length_map_grid(grid, sigma_w2, sigma_b2, activation, params) - grid  # g on the whole grid at once
    for a, b, ga, gb in zip(grid[:-1], grid[1:], values[:-1], values[1:], strict=True):
        if ga == 0.0:
            return float(a)
        if (ga < 0) != (gb < 0):
            lo, hi = (float(a), float(b)) if ga < 0 else (float(b), float(a))
            for _ in range(200):  # to the float resolution of the bracket
                mid = 0.5 * (lo + hi)
                if mid in (lo, hi):
                    break
                if g(mid) < 0:
                    lo = mid
                else:
                    hi = mid
            return 0.5 * (lo + hi)
    return 0.0 if g(q) < 0 else None


def _length_map_grid(qs: np.ndarray, sigma_w2: float, sigma_b2: float, activation: str,
                     params: dict[str, Any] | None = None) -> np.ndarray:
    """length_map at every q of a grid in one evaluation per quadrature rule (the rule each q would use)."""
    fn, _ = _phi(activation, params)
    out = np.empty(qs.shape)
    for nodes, weights, mask in ((*_hermite(), qs <= _HERMITE_MAX_Q), (*_split_legendre(), qs > _HERMITE_MAX_Q)):
        if mask.any():
            x = np.sqrt(np.maximum(qs[mask], 0.0))[:, None] * nodes[None, :]
            out[mask] = sigma_w2 * (fn(x) ** 2 @ weights) + sigma_b2
    return out


@dataclass(frozen=True)
class MeanField:
    """Mean-field figures of one activation at one (σ_w², σ_b²)."""

    activation: str
    sigma_w2: float
    sigma_b2: float
    q_star: float | None
    chi1: float
    depth_scale_grad: float | None   # ξ_∇ = 1/|ln χ₁|: layers over which gradients change by e
    depth_scale_q: float | None      # ξ_q = 1/|ln χ_q|: layers over which q approaches q*
    note: str = ""


def mean_field(activation: str, sigma_w2: float, sigma_b2: float,
               params: dict[str, Any] | None = None) -> MeanField:
    """q*, χ₁ and the depth scales. ReLU-like (positively homogeneous) maps have no nontrivial q*."""
    homogeneous = activation in ("relu", "leaky_relu", "identity")
    if homogeneous:
        # q_next = σ_w²·c·q + σ_b² with c = E[φ(z)²]: the only fixed point is σ_b²/(1 - σ_w² c), if c σ_w² < 1
        fn, _ = _phi(activation, params)
        c = gaussian_expectation(lambda x: fn(x) ** 2, 1.0)
        slope = sigma_w2 * c
        q_star = None
        chi1 = chi(1.0, sigma_w2, activation, params)  # independent of q
        note = (f"{activation} is positively homogeneous: the length map is linear (slope {slope:.4g}), so there "
                "is no nontrivial fixed point; χ₁ does not depend on q")
        xi_q = 1.0 / abs(math.log(slope)) if slope > 0 and abs(slope - 1.0) > 1e-9 else None
    else:
        q_star = fixed_point(sigma_w2, sigma_b2, activation, params)
        if q_star is not None and sigma_b2 == 0.0 and q_star < 1e-3:
            q_star = 0.0  # the trivial fixed point, approached geometrically (or like 1/l when χ₁ = 1)
        chi1 = chi(q_star if q_star is not None else 1.0, sigma_w2, activation, params)
        note = "" if q_star is not None else "the length map diverges: no fixed point"
        xi_q = None
        if q_star is not None:
            h = max(1e-6, 1e-4 * q_star)
            slope = (length_map(q_star + h, sigma_w2, sigma_b2, activation, params)
                     - length_map(max(q_star - h, 0.0), sigma_w2, sigma_b2, activation, params)) / (
                         q_star + h - max(q_star - h, 0.0))
            xi_q = 1.0 / abs(math.log(slope)) if 0 < slope and abs(slope - 1.0) > 1e-9 else None
    xi_grad = 1.0 / abs(math.log(chi1)) if chi1 > 0 and abs(chi1 - 1.0) > 1e-9 else None
    return MeanField(activation, sigma_w2, sigma_b2, q_star, chi1, xi_grad, xi_q, note)


# critical_sigma_w2 by (activation, params, σ_b², lo, hi): a sweep's points share these (a σ_w² × σ_b² grid has
# one value per σ_b²), and `gradscope sweep` hands the ones it computed to its workers (prime_critical).
_CRITICAL: dict[tuple[Any, ...], float | None] = {}


def _critical_key(activation: str, sigma_b2: float, params: dict[str, Any] | None, lo: float,
                  hi: float) -> tuple[Any, ...]:
    return (activation, tuple(sorted((k, repr(v)) for k, v in (params or {}).items())), float(sigma_b2),
            float(lo), float(hi))


def critical_entries() -> dict[tuple[Any, ...], float | None]:
    """A copy of the critical_sigma_w2 values computed so far in this process (to send to workers)."""
    return dict(_CRITICAL)


def prime_critical(entries: dict[tuple[Any, ...], float | None]) -> None:
    """Add values computed elsewhere (by the same code, so the same numbers) to this process's cache."""
    _CRITICAL.update(entries)


# The values of every registered activation at its default parameters and σ_b² = 0 (the zero bias every
# init uses unless told otherwise), stored beside the Gauss rules by `python -m gradscope.theory`: computing
# one takes 6-12 ms for sigmoid or tanh and ~0.2 s for GELU (its χ₁ jumps across 1, which only the scalar
# bisection finds) — of every run's start, for a constant. tests/test_theory.py recomputes every entry.
CRITICAL_FILE = RULES_DIR / "critical.txt"
_stored_loaded = False


def _critical_line(key: tuple[Any, ...], value: float | None) -> str:
    activation, params, sigma_b2, lo, hi = key
    return "\t".join([activation, ";".join(f"{k}={v}" for k, v in params), float.hex(sigma_b2), float.hex(lo),
                      float.hex(hi), "none" if value is None else float.hex(value)])


def stored_critical() -> dict[tuple[Any, ...], float | None]:
    """The stored critical_sigma_w2 values (CRITICAL_FILE), by _critical_key; {} when the file is absent."""
    out: dict[tuple[Any, ...], float | None] = {}
    try:
        text = CRITICAL_FILE.read_text(encoding="utf-8")
    except OSError:
        return out
    for line in text.splitlines():
        activation, params, sigma_b2, lo, hi, value = line.split("\t")
        pairs = tuple(tuple(p.split("=", 1)) for p in params.split(";")) if params else ()
        out[(activation, pairs, float.fromhex(sigma_b2), float.fromhex(lo), float.fromhex(hi))] = (
            None if value == "none" else float.fromhex(value))
    return out


def critical_table_entries() -> dict[tuple[Any, ...], float | None]:
    """What CRITICAL_FILE holds, computed now: every hidden activation at its defaults, σ_b² = 0, lo, hi default."""
    out: dict[tuple[Any, ...], float | None] = {}
    for name in ACTIVATIONS.names():
        params = ACTIVATIONS.get(name).defaults()
        out[_critical_key(name, 0.0, params, 1e-3, 100.0)] = critical_sigma_w2_uncached(name, 0.0, params)
    return out


def critical_sigma_w2(activation: str, sigma_b2: float, params: dict[str, Any] | None = None,
                      lo: float = 1e-3, hi: float = 100.0) -> float | None:
    """critical_sigma_w2_uncached, computed once per process for each (activation, params, σ_b², lo, hi), or
    read from the stored table (CRITICAL_FILE) for an activation's defaults at σ_b² = 0."""
    global _stored_loaded
    key = _critical_key(activation, sigma_b2, params, lo, hi)
    if key not in _CRITICAL and not _stored_loaded:
        _stored_loaded = True
        for k, v in stored_critical().items():
            _CRITICAL.setdefault(k, v)
    if key not in _CRITICAL:
        _CRITICAL[key] = critical_sigma_w2_uncached(activation, sigma_b2, params, lo, hi)
    return _CRITICAL[key]


def critical_sigma_w2_uncached(activation: str, sigma_b2: float, params: dict[str, Any] | None = None,
                               lo: float = 1e-3, hi: float = 100.0) -> float | None:
    """The smallest σ_w² in [lo, hi] at which χ₁ = 1 (the edge of chaos) for this activation and σ_b², or None.

    Solved along the fixed-point curve (Poole et al. 2016): every q > σ_b² is the fixed point of
    σ_w²(q) = (q - σ_b²)/E[φ(√q z)²], where χ₁(q) = σ_w²(q) E[φ'(√q z)²]; a grid of q and a bisection
    on it, all vectorized, find χ₁ = 1 without iterating the length map. The candidate is accepted when
    `mean_field` at it gives χ₁ = 1 (so it is the fixed point the length map really reaches from q = 1);
    otherwise (e.g. where the length map diverges) the scalar bisection over σ_w² decides.
    """
    if activation in ("relu", "leaky_relu", "identity"):
        # homogeneous: χ₁ = σ_w² E[φ'(z)²] is linear in σ_w²
        _, grad = _phi(activation, params)
        c = gaussian_expectation(lambda x: grad(x) ** 2, 1.0)
        crit = 1.0 / c if c > 0 else math.inf
        return crit if lo <= crit <= hi else None
    for cand in _critical_candidates(activation, sigma_b2, params, lo, hi):
        if abs(mean_field(activation, cand, sigma_b2, params).chi1 - 1.0) <= 1e-7:
            return cand
    return _critical_by_bisection(activation, sigma_b2, params, lo, hi)


def gaussian_expectations(f: Fn, q: np.ndarray) -> np.ndarray:
    """E[f(√q_i z)] for every q_i of a 1-D array: the rules of gaussian_expectation, one call per rule."""
    q = np.maximum(np.asarray(q, dtype=np.float64), 0.0)
    out = np.empty_like(q)
    small = q <= _HERMITE_MAX_Q
    for mask, (nodes, weights) in ((small, _hermite()), (~small, _split_legendre())):
        if mask.any():
            out[mask] = f(np.sqrt(q[mask])[:, None] * nodes[None, :]) @ weights
    return out


def _critical_candidates(activation: str, sigma_b2: float, params: dict[str, Any] | None, lo: float,
                         hi: float) -> list[float]:
    """σ_w² where χ₁ = 1 along the fixed-point curve (smallest first), and the trivial branch q* = 0."""
    fn, grad = _phi(activation, params)

    def curve(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(all="ignore"):
            sw2 = (q - sigma_b2) / gaussian_expectations(lambda x: fn(x) ** 2, q)
            return sw2, sw2 * gaussian_expectations(lambda x: grad(x) ** 2, q)

    out: list[float] = []
    if sigma_b2 == 0.0 and float(fn(np.zeros(1))[0]) == 0.0:
        g0 = float(grad(np.zeros(1))[0])
        g0 = g0 * g0  # q* = 0: χ₁ = σ_w² φ'(0)² (x*x overflows to inf, never OverflowError)
        if g0 > 0 and lo <= 1.0 / g0 <= hi:
            out.append(1.0 / g0)
    q = np.geomspace(max(sigma_b2, 1e-8) * (1.0 + 1e-6), 1e4 * (1.0 + sigma_b2), 400)
    sw2, chi1 = curve(q)
    ok = np.isfinite(sw2) & np.isfinite(chi1) & (sw2 > 0)
    excess = np.where(ok, chi1 - 1.0, np.nan)
    idx = np.flatnonzero((excess[:-1] < 0) != (excess[1:] < 0) & ok[:-1] & ok[1:])
    if idx.size:
        a, b = q[idx], q[idx + 1]
        ea = excess[idx]
        for _ in range(60):  # bisection in q on every bracket at once
            mid = np.sqrt(a * b)
            em = curve(mid)[1] - 1.0
            left = (em < 0) == (ea < 0)
            a, ea = np.where(left, mid, a), np.where(left, em, ea)
            b = np.where(left, b, mid)
        roots = curve(np.sqrt(a * b))[0]
        out.extend(float(r) for r in roots if lo <= r <= hi)
    return sorted(out)


def _critical_by_bisection(activation: str, sigma_b2: float, params: dict[str, Any] | None = None,
                           lo: float = 1e-3, hi: float = 100.0) -> float | None:
    """Bisection over σ_w² of mean_field's χ₁ - 1 (each step iterates the length map to its fixed point)."""
    def excess(sw2: float) -> float:
        return mean_field(activation, sw2, sigma_b2, params).chi1 - 1.0

    f_lo, f_hi = excess(lo), excess(hi)
    if f_lo > 0 or f_hi < 0:
        return None
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        if excess(mid) < 0:
            lo = mid
        else:
            hi = mid
        if hi / lo < 1 + 1e-8:
            break
    return math.sqrt(lo * hi)


@dataclass(frozen=True)
class LayerPrediction:
    """Per-layer mean-field prediction for a network (layers 1..L)."""

    q: list[float]                    # q_l, variance of z_l per unit
    chi: list[float | None]           # χ_l = ‖δ_l‖²/‖δ_{l+1}‖² (None for the output layer)
    delta_ratio: list[float]          # ‖δ_l‖/‖δ_L‖
    gradient_ratio: list[float]       # ‖∂L/∂W_l‖/‖∂L/∂W_L‖ per sample (batch cross terms ignored)
    notes: list[str] = field(default_factory=list)


def _hermite_rule(k: int) -> tuple[np.ndarray, np.ndarray]:
    """hermegauss(k): the stored rule when there is one (_RULES), else computed."""
    name = f"hermegauss{k}"
    return gauss_rule(name) if name in _RULES else np.polynomial.hermite_e.hermegauss(k)


@functools.cache
def _hermite_1d(k: int = 16) -> np.ndarray:
    """The k probabilists' Gauss–Hermite nodes the 2-D rule is the tensor product of."""
    return _hermite_rule(k)[0]


@functools.cache
def _hermite_2d(k: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tensor Gauss–Hermite nodes (z1, z2) and weights for two independent N(0, 1) variables."""
    x, w = _hermite_rule(k)
    w = w / math.sqrt(2.0 * math.pi)
    z1, z2 = np.meshgrid(x, x, indexing="ij")
    return z1.ravel(), z2.ravel(), np.outer(w, w).ravel()


def pair_expectation(f: Fn, g: Fn, cov: np.ndarray) -> np.ndarray:
    """E[f(u_b) g(u_b')] for (u_b, u_b') ~ N(0, cov[[b, b], [b, b']]) for every pair of an (m, m) covariance.

    The plain form of the quadrature: _pair_kernels computes the same numbers faster, and is tested against this."""
    u1, u2, w, bi, bj = _pair_nodes(cov)
    return _pair_fill((f(u1) * g(u2)) @ w, bi, bj, cov.shape[0])


def _pair_nodes(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The quadrature points (u1, u2) (pairs, nodes), weights and pair indices (bi, bj) of pair_expectation."""
    z1, z2, w = _hermite_2d()
    sd, rho = _correlations(cov)
    m = cov.shape[0]
    bi, bj = np.triu_indices(m)
    u1 = sd[bi, None] * z1[None, :]
    u2 = sd[bj, None] * (rho[bi, bj, None] * z1[None, :] + np.sqrt(1.0 - rho[bi, bj, None] ** 2) * z2[None, :])
    return u1, u2, w, bi, bj


def _correlations(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The standard deviations (m,) of a covariance (m, m) and its correlations, 0 where a variance is 0."""
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.clip(np.where(np.outer(sd, sd) > 0, cov / np.outer(sd, sd), 0.0), -1.0, 1.0)
    return sd, rho


def _pair_fill(vals: np.ndarray, bi: np.ndarray, bj: np.ndarray, m: int) -> np.ndarray:
    out = np.empty((m, m))
    out[bi, bj] = vals
    out[bj, bi] = vals
    return out


def _arccos_kernels(cov: np.ndarray, slope: float) -> tuple[np.ndarray, np.ndarray]:
    """Closed forms for φ = leaky ReLU (slope 0: ReLU): E[φ(u)φ(v)] and E[φ'(u)φ'(v)] (Cho & Saul's kernels)."""
    sd, rho = _correlations(cov)
    norm = np.outer(sd, sd)

    def k1(r: np.ndarray) -> np.ndarray:  # E[relu(u)relu(v)] / (sd_u sd_v)
        t = np.arccos(r)
        return (np.sin(t) + (np.pi - t) * np.cos(t)) / (2.0 * np.pi)

    def k0(r: np.ndarray) -> np.ndarray:  # E[step(u)step(v)]
        return (np.pi - np.arccos(r)) / (2.0 * np.pi)

    a = slope
    value = norm * ((1.0 + a * a) * k1(rho) - 2.0 * a * k1(-rho))
    deriv = (1.0 + a * a) * k0(rho) + 2.0 * a * k0(-rho)
    return value, deriv


def _pair_kernels(activation: tuple[str, dict[str, Any]], cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """E[φ(u_b)φ(u_b')] and E[φ'(u_b)φ'(u_b')] for every pair: closed forms for ReLU-like, else quadrature."""
    name, params = activation
    if name == "identity":
        return cov.copy(), np.ones_like(cov)
    if name in ("relu", "leaky_relu"):
        return _arccos_kernels(cov, float(params.get("negative_slope", 0.01)) if name == "leaky_relu" else 0.0)
    # pair_expectation(φ, φ, cov) and pair_expectation(φ', φ', cov) on one set of nodes, φ evaluated once
    # (φ' reuses it, as _phi's grad does): the same numbers, a third of the evaluations
    # u1 = sd_b·z1 takes only k distinct values per sample (z1 runs over the k Hermite nodes, each repeated k
    # times): φ and φ' there are evaluated once per sample and node and broadcast, the same numbers
    act = ACTIVATIONS.get(name)
    p = dict(params or {})
    z1, z2, w = _hermite_2d()
    nodes = _hermite_1d()
    k = nodes.size
    sd, rho = _correlations(cov)
    m = cov.shape[0]
    bi, bj = np.triu_indices(m)
    s1 = sd[:, None] * nodes[None, :]  # (m, k): the values of u1
    F1 = act.fn(s1, **p)
    G1 = act.grad(s1, F1, **p)
    r = rho[bi, bj]
    c = np.sqrt(1.0 - r**2)
    fprod, gprod = np.empty((bi.size, k * k)), np.empty((bi.size, k * k))

    def work(sl: slice) -> None:
        # a range of pairs in a thread: u2 = sd_b'·(ρ z1 + √(1-ρ²) z2) (_pair_nodes' products and sums, in
        # place), φ(u2) and φ'(u2), times φ(u1), φ'(u1) broadcast over the k z2 nodes of each z1 node (the
        # same products as with u1's values repeated): the same numbers as pair_expectation's
        u2 = r[sl, None] * z1[None, :]
        u2 += c[sl, None] * z2[None, :]
        u2 *= sd[bj[sl], None]
        f2 = act.fn(u2, **p)
        g2 = act.grad(u2, f2, **p)
        np.multiply(f2.reshape(-1, k, k), F1[bi[sl], :, None], out=fprod[sl].reshape(-1, k, k))
        np.multiply(g2.reshape(-1, k, k), G1[bi[sl], :, None], out=gprod[sl].reshape(-1, k, k))

    map_seeds(work, bi.size, bi.size * k * k)
    # the weighted sums over the whole (pairs, nodes) arrays at once, as pair_expectation's: BLAS's matrix-vector
    # kernels add a block of rows in one order and the rows left over in another, so ranges would change bits
    return _pair_fill(fprod @ w, bi, bj, m), _pair_fill(gprod @ w, bi, bj, m)


def batch_gradient_ratio(sizes: Sequence[int], activations: Sequence[tuple[str, dict[str, Any]]],
                         sigma_w2: Sequence[float], sigma_b2: Sequence[float], x: np.ndarray,
                         delta_out_gram: np.ndarray) -> list[float]:
    """‖∂L/∂W_l‖/‖∂L/∂W_L‖ predicted for a batch: ‖∂L/∂W_l‖² = Σ_bb' (a_b·a_b')(δ_b·δ_b').

    The Gram matrices of the activations go forward through the covariance map
    Q_l = σ_w² A_{l-1}/n_{l-1} + σ_b², A_l = n_l E[φ(u_b)φ(u_b')], and those of δ backward through
    D_l = σ_w²(l+1) E[φ'(u_b)φ'(u_b')] ⊙ D_{l+1}, from the output-layer δ Gram `delta_out_gram`
    (the boundary condition: what the loss hands back). x: (m, n_0), a subset of the batch.
    """
    L = len(sizes) - 1
    A = [x @ x.T]
    dphi: list[np.ndarray] = []
    for l in range(1, L):
        Ql = sigma_w2[l - 1] * A[-1] / sizes[l - 1] + sigma_b2[l - 1]
        value, deriv = _pair_kernels(activations[l - 1], Ql)
        A.append(sizes[l] * value)
        dphi.append(deriv)
    D = [delta_out_gram]
    for l in range(L - 1, 0, -1):
        D.insert(0, sigma_w2[l] * dphi[l - 1] * D[0])
    sq = [float(np.sum(A[l] * D[l])) for l in range(L)]
    return [math.sqrt(v / sq[-1]) if sq[-1] > 0 and v >= 0 else math.nan for v in sq]


def predict_layers(sizes: Sequence[int], activations: Sequence[tuple[str, dict[str, Any]]],
                   sigma_w2: Sequence[float], sigma_b2: Sequence[float], input_sq: float) -> LayerPrediction:
    """Propagate q through the hidden layers and χ back; `input_sq` = mean ‖x‖² per sample.

    sizes = [n_0, ..., n_L]; activations[l-1] and sigma_w2[l-1] belong to hidden layer l (1..L-1);
    sigma_w2 has L entries (the output layer's too).
    """
    L = len(sizes) - 1
    q: list[float] = []
    sq_norm = [input_sq]  # per-sample ‖a_l‖², l = 0..L-1
    prev_sq = input_sq / sizes[0]
    for l in range(1, L + 1):
        ql = sigma_w2[l - 1] * prev_sq + sigma_b2[l - 1]
        q.append(ql)
        if l < L:
            fn, _ = _phi(*activations[l - 1])
            prev_sq = gaussian_expectation(lambda x, f=fn: f(x) ** 2, ql)
            sq_norm.append(sizes[l] * prev_sq)
    chis: list[float | None] = [chi(q[l - 1], sigma_w2[l], *activations[l - 1]) for l in range(1, L)] + [None]
    delta_sq = [1.0] * L
    for l in range(L - 1, 0, -1):
        delta_sq[l - 1] = delta_sq[l] * float(chis[l - 1])  # type: ignore[arg-type]
    delta_ratio = [math.sqrt(d) for d in delta_sq]
    grad_ratio = [math.sqrt(delta_sq[l - 1] * sq_norm[l - 1] / sq_norm[L - 1]) if sq_norm[L - 1] > 0 else math.nan
                  for l in range(1, L + 1)]
    return LayerPrediction(q, chis, delta_ratio, grad_ratio)


if __name__ == "__main__":  # python -m gradscope.theory: (re)write the stored rules and critical values
    RULES_DIR.mkdir(exist_ok=True)
    for rule, make in _RULES.items():
        np.save(RULES_DIR / f"{rule}.npy", np.stack(make()))
        print(f"wrote {RULES_DIR / rule}.npy")
    entries = critical_table_entries()
    CRITICAL_FILE.write_text("".join(_critical_line(k, v) + "\n" for k, v in entries.items()), encoding="utf-8")
    print(f"wrote {CRITICAL_FILE} ({len(entries)} values)")
