"""Input–output Jacobian spectra: dynamical isometry measured and predicted (SPEC §10, issue 14).

J = ∂h/∂x per seed and per sample, h = the last hidden layer's output a_depth (`at: last_hidden`) or the
logits z_L (`at: logits`). In the engine's row convention (z = a @ W + b) J has shape (d_in, n_h) and is
built one layer at a time from the pre-activations of the pass the report already made:

    dense      J ← J @ W_l                  (jvp)      T ← T @ W_lᵀ        (vjp)
    activation J ← J ⊙ φ'(z_l)              (jvp)      T ← T ⊙ φ'(z_l)     (vjp)

over a leading axis of directions: arrays (S, samples, directions, n). Forward mode (jvp, d_in
directions) is used when d_in ≤ n_h, reverse mode (vjp, n_h directions) otherwise; both give the same J.
A new layer kind only has to provide a `Step` (its jvp and vjp at the pass's cached values).

Normalization of the mean. Mean-field theory gives E‖J‖²_F = n_h · Π_l χ_l with χ_l = σ_w,l² E[φ'(z_l)²]
(σ_w² = fan_in·Var(W), q_l from the length map; the logits add σ_w,L² for the output layer). The mean of
σ² over the k = min(d_in, n_h) singular values is therefore predicted as (n_h / k) · Π χ_l: for square
nets k = n_h and the prediction is χ₁^L; a linear net with σ_w² = 1 has mean σ² = 1 (square) or n_h/d_in.

Variance of JJᵀ's eigenvalues (free probability, wide limit; Pennington, Schoenholz & Ganguli 2017): when
every layer on the path is square and the weights are i.i.d. (s = 1) or orthogonal (s = 0),
    Var(λ) / E[λ]² = Σ_l (μ₂,l/μ₁,l² - 1 + s_l),   μ_k,l = E[φ'(√q_l z)^(2k)]
(the output layer, with no activation, adds s_L only). Linear Gaussian: Var = L·E[λ]² (the mean 1 ⇒ L);
linear orthogonal: 0. Elsewhere the theory gives no number ('none', with the reason).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from .activations import ACTIVATIONS
from .errors import GradscopeError
from .inits import INITS, LayerContext, bias_variance, layer_sigmas
from .scenario import jacobian_options
from .theory import chi, gaussian_expectation, predict_layers

Array = np.ndarray

JACOBIAN_AT = ("last_hidden", "logits")
DEFAULT_SAMPLES = 8
MAX_SAMPLES = 1024            # a Jacobian per sample: more samples add nothing but time
JACOBIAN_VERDICTS = ("isometric", "broad", "degenerate")
ISOMETRY_FACTOR = 2.0         # a singular value is "near 1" when it lies in [1/2, 2]
ISOMETRIC_FRACTION = 0.9      # isometric: at least 90% of the singular values (pooled) are near 1
DEGENERATE_FRACTION = 0.01    # degenerate: at least 1% of the singular values are numerically zero
# zero: structurally, i.e. the k - r smallest when a layer lets only r < k directions through (units with
# φ'(z) = 0 exactly, e.g. inactive ReLU units, or a narrower layer); tiny but nonzero values are "broad"
MEAN_OK_FACTOR = 2.0          # "the mean is right": mean σ² within [1/2, 2] (finding broad-jacobian-spectrum)
SV_QUANTILES = (("min", 0.0), ("q10", 0.1), ("median", 0.5), ("q90", 0.9), ("max", 1.0))


# ---------------------------------------------------------------- per-layer steps


class Step(Protocol):
    """One layer's linearization at the pass's cached values; t has shape (S, samples, directions, n)."""

    def jvp(self, t: Array) -> Array: ...

    def vjp(self, t: Array) -> Array: ...

    def rank_bound(self) -> Array | int: ...  # an upper bound on the rank this layer lets through


@dataclass(frozen=True)
class Dense:
    """z = a @ W + b: the bias drops out of J."""

    W: Array  # (S, n_in, n_out)

    def jvp(self, t: Array) -> Array:
        S, m, r, n = t.shape
        return (t.reshape(S, m * r, n) @ self.W).reshape(S, m, r, self.W.shape[-1])

    def vjp(self, t: Array) -> Array:
        S, m, r, n = t.shape
        return (t.reshape(S, m * r, n) @ np.swapaxes(self.W, -1, -2)).reshape(S, m, r, self.W.shape[-2])

    def rank_bound(self) -> int:
        return min(self.W.shape[-2:])

    def jvp_identity(self, S: int, m: int) -> Array:
        """jvp of the identity (the input directions themselves): W, broadcast over the samples."""
        return np.broadcast_to(self.W[:, None], (S, m, *self.W.shape[1:]))


@dataclass(frozen=True)
class Elementwise:
    """a = φ(z): multiply by φ'(z) of each sample."""

    fprime: Array  # (S, samples, n)

    def jvp(self, t: Array) -> Array:
        return t * self.fprime[:, :, None, :]

    vjp = jvp

    def rank_bound(self) -> Array:
        """Units with φ'(z) exactly 0 (dead ReLU units, clipped hardtanh) remove a direction: (S, samples)."""
        return np.count_nonzero(self.fprime, axis=-1)


def steps_for(scenario: Any, params: Any, z: list[Array], a: list[Array], m: int, at: str) -> list[Step]:
    """The layers from the input to `at`, linearized at the first m samples of the pass (z, a)."""
    steps: list[Step] = []
    last = scenario.depth if at == "last_hidden" else scenario.n_layers
    for l in range(1, last + 1):
        steps.append(Dense(params.W[l - 1]))
        if l <= scenario.depth:
            act = scenario.activations[l - 1]
            steps.append(Elementwise(ACTIVATIONS.get(act.name).grad(z[l - 1][:, :m], a[l][:, :m], **act.params)))
    return steps


def input_output_jacobian(steps: list[Step], S: int, m: int, d_in: int, n_out: int, dtype: Any) -> Array:
    """J (S, m, d_in, n_out) through the steps: forward mode if d_in ≤ n_out, else reverse mode."""
    if d_in <= n_out:
        first = steps[0]
        if isinstance(first, Dense):
            t, rest = first.jvp_identity(S, m), steps[1:]
        else:
            t, rest = np.broadcast_to(np.eye(d_in, dtype=dtype), (S, m, d_in, d_in)), steps
        for step in rest:
            t = step.jvp(t)
        return np.ascontiguousarray(np.broadcast_to(t, (S, m, *t.shape[2:])))
    t = np.ascontiguousarray(np.broadcast_to(np.eye(n_out, dtype=dtype), (S, m, n_out, n_out)))
    for step in reversed(steps):
        t = step.vjp(t)
    return np.ascontiguousarray(np.swapaxes(t, -1, -2))


def rank_bound(steps: list[Step], S: int, m: int, d_in: int) -> Array:
    """(S, m): the fewest directions any layer lets through (widths, units with φ'(z) = 0 exactly)."""
    bound = np.full((S, m), d_in)
    for step in steps:
        bound = np.minimum(bound, step.rank_bound())
    return bound


def singular_values(J: Array) -> Array:
    """(S, m, k) singular values, descending; NaN for a Jacobian with a non-finite entry."""
    ok = np.isfinite(J).all(axis=(-2, -1))
    safe = np.where(ok[..., None, None], J, 0.0) if not ok.all() else J
    sv = np.linalg.svd(safe, compute_uv=False)
    if not ok.all():
        sv[~ok] = np.nan
    return sv


def jacobian_bytes(scenario: Any, samples: int, at: str) -> int:
    """Peak bytes of the Jacobian: two (S, samples, directions, n) arrays of the widest layer, and the SVD."""
    sizes = scenario.sizes[: (scenario.depth if at == "last_hidden" else scenario.n_layers) + 1]
    r = min(sizes[0], sizes[-1])
    item = 4 if scenario.dtype == "float32" else 8
    return int(item * scenario.seeds * samples * r * max(sizes) * 3)


# ---------------------------------------------------------------- prediction


_IID_EXCLUDED = ("orthogonal", "zeros", "constant")


def predict(scenario: Any, x: Array, at: str) -> dict[str, Any]:
    """Mean-field mean of σ² (Π χ_l · n_h/k) and, where free probability gives it, Var of JJᵀ's eigenvalues."""
    sizes = list(scenario.sizes)
    L = scenario.n_layers
    last = scenario.depth if at == "last_hidden" else L
    d_in, n_h = sizes[0], sizes[last]
    k = min(d_in, n_h)
    name = scenario.init.name
    out: dict[str, Any] = {"chi": None, "chi_product": None, "width_factor": n_h / k, "mean_sv2": None,
                           "var_eig": None, "var_model": None}
    if name in ("zeros", "constant") or (name == "normal" and scenario.init.params.get("mean", 0.0) != 0.0):
        out["mean_reason"] = out["var_reason"] = f"init {name}: weights are not zero-mean random"
        return out
    if scenario.bias and scenario.bias_init.name == "constant" and scenario.bias_init.params.get("value", 0.0):
        out["mean_reason"] = out["var_reason"] = "biases with a non-zero mean (constant bias_init)"
        return out
    sw2, sb2 = layer_sigmas(scenario)
    acts = [(c.name, dict(c.params)) for c in scenario.activations]
    input_sq = float(np.mean(np.sum(np.square(np.asarray(x, dtype=np.float64)), axis=-1)))
    q = predict_layers(sizes, acts, sw2, sb2, input_sq).q
    chis: list[float] = []
    norm_var = 0.0
    s = 0.0 if name == "orthogonal" else 1.0
    for l in range(1, last + 1):
        if l <= scenario.depth:
            act, p = acts[l - 1]
            chis.append(chi(q[l - 1], sw2[l - 1], act, p))
            grad = ACTIVATIONS.get(act).grad
            fn = ACTIVATIONS.get(act).fn

            def d2(v: Array, act_p: dict[str, Any] = p, g: Any = grad, f: Any = fn) -> Array:
                return g(v, f(v, **act_p), **act_p) ** 2

            mu1 = gaussian_expectation(d2, q[l - 1])
            mu2 = gaussian_expectation(lambda v, h=d2: h(v) ** 2, q[l - 1])
            norm_var += (mu2 / mu1**2 - 1.0 if mu1 > 0 else math.inf) + s
        else:
            chis.append(sw2[l - 1])
            norm_var += s
    prod = float(np.prod(chis))
    mean = prod * n_h / k
    out.update({"chi": chis, "chi_product": prod, "mean_sv2": mean})
    if len(set(sizes[: last + 1])) != 1:
        out["var_reason"] = (f"layer sizes {sizes[: last + 1]} are not all equal: the free-probability "
                             "prediction here is for square layers")
    elif math.isfinite(norm_var):
        out["var_eig"] = mean * mean * norm_var
        out["var_model"] = ("free probability, wide limit: Var(λ) = E[λ]²·Σ_l (μ₂/μ₁² - 1 + s), s = "
                            + ("0 (orthogonal weights)" if s == 0.0 else "1 (i.i.d. weights)"))
    else:
        out["var_reason"] = "φ'(z) is zero almost surely at the predicted q"
    return out


# ---------------------------------------------------------------- the analysis


def _quantiles(v: Array, axis: int | None = None) -> dict[str, Any]:
    qs = np.nanquantile(v, [q for _, q in SV_QUANTILES], axis=axis) if np.isfinite(v).any() else None
    if qs is None:
        return {key: None for key, _ in SV_QUANTILES}
    return {key: _jsonable(qs[i]) for i, (key, _) in enumerate(SV_QUANTILES)}


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return [_jsonable(v) for v in x]
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass(frozen=True)
class JacobianReport:
    """The spectrum of J for every seed and sample; `sv` (S, samples, k) are the raw singular values."""

    summary: dict[str, Any]
    sv: Array = field(compare=False, repr=False)

    @property
    def verdict(self) -> str:
        return str(self.summary["verdict"])

    def to_dict(self) -> dict[str, Any]:
        return dict(self.summary)


def analyze_jacobian(scenario: Any, params: Any, z: list[Array], a: list[Array], x: Array, *,
                     samples: int, at: str) -> JacobianReport:
    """J at the first `samples` samples of the pass (z, a): singular values, statistics, prediction, verdict."""
    S = params.W[0].shape[0]
    m = min(samples, x.shape[0])
    last = scenario.depth if at == "last_hidden" else scenario.n_layers
    d_in, n_h = scenario.sizes[0], scenario.sizes[last]
    steps = steps_for(scenario, params, z, a, m, at)
    with np.errstate(all="ignore"):
        J = input_output_jacobian(steps, S, m, d_in, n_h, params.W[0].dtype)
        sv = singular_values(J)
    del J
    rank = rank_bound(steps, S, m, d_in)
    structural = (np.arange(sv.shape[-1]) >= rank[..., None]) & np.isfinite(sv).all(axis=-1, keepdims=True)
    sv[structural] = 0.0   # exactly zero: what rounding left there is not a singular value
    return JacobianReport(summarize(sv, rank, d_in, n_h, predict(scenario, x[:m], at),
                                    eps=float(np.finfo(sv.dtype).eps),
                                    at=at, layer=last, samples=m, mode="forward (jvp)" if d_in <= n_h
                                    else "reverse (vjp)"), sv)


def summarize(sv: Array, rank: Array, d_in: int, n_h: int, pred: dict[str, Any], eps: float = 2.0**-52,
              **meta: Any) -> dict[str, Any]:
    """Every number of the JSON `jacobian` object, from the (S, m, k) singular values and the (S, m) rank bounds.

    The smallest k - rank singular values of each Jacobian are exactly zero (a structural zero: a unit
    with φ'(z) = 0 or a narrower layer), whatever rounding makes of them; they count as zero.
    """
    S, m, k = sv.shape
    sv64 = sv.astype(np.float64)
    finite = np.isfinite(sv64).all(axis=-1)                                   # (S, m)
    good = sv64[finite]                                                       # (n, k)
    rank = rank[finite]                                                       # (n,)
    zero = np.arange(k)[None, :] >= rank[:, None]
    good = np.where(zero, 0.0, good)
    lam = good**2
    with np.errstate(divide="ignore", invalid="ignore"):
        cond = np.where(zero[:, -1], np.inf, good[:, 0] / good[:, -1]) if good.size else np.zeros(0)
    floor = max(d_in, n_h) * eps * good[:, :1] if good.size else np.zeros((0, 1))
    below = float(np.mean((good < floor) & ~zero)) if good.size else None
    near = float(np.mean((good >= 1.0 / ISOMETRY_FACTOR) & (good <= ISOMETRY_FACTOR))) if good.size else None
    zero_frac = float(np.mean(zero)) if good.size else None
    mean_sv2 = float(lam.mean()) if good.size else None
    var_eig = float(lam.var()) if good.size else None
    sv64[finite] = good
    per_seed_lam = np.where(finite[..., None], sv64, np.nan) ** 2
    with np.errstate(all="ignore"):
        seed_mean = np.nanmean(per_seed_lam.reshape(S, -1), axis=1) if S else np.zeros(0)
        seed_var = np.nanvar(per_seed_lam.reshape(S, -1), axis=1) if S else np.zeros(0)
    per_seed = _quantiles(np.where(finite[..., None], sv64, np.nan).reshape(S, -1), axis=1)
    per_seed_list = [{key: per_seed[key][s] for key, _ in SV_QUANTILES}
                     | {"mean_sv2": _jsonable(seed_mean[s]), "var_eig": _jsonable(seed_var[s])} for s in range(S)]
    pooled = _quantiles(good.ravel()) if good.size else _quantiles(np.full(1, np.nan))
    verdict, reason = _verdict(near, zero_frac, mean_sv2, pooled)
    return {
        **meta, "d_in": d_in, "n_out": n_h, "k": k, "seeds": S, "nonfinite": int((~finite).sum()),
        "singular_values": pooled, "per_seed": per_seed_list,
        "mean_sv2": mean_sv2, "predicted_mean_sv2": pred["mean_sv2"],
        "mean_sv2_normalized": mean_sv2 * k / n_h if mean_sv2 is not None else None,
        "chi_product": pred["chi_product"], "chi": pred["chi"], "width_factor": pred["width_factor"],
        **({"mean_reason": pred["mean_reason"]} if "mean_reason" in pred else {}),
        "var_eig": var_eig, "predicted_var_eig": pred["var_eig"],
        "var_model": pred["var_model"] or f"none: {pred.get('var_reason', 'no theory')}",
        "condition_number": {"median": _jsonable(np.median(cond)) if cond.size else None,
                             "max": _jsonable(cond.max()) if cond.size else None},
        "rank": {"min": int(rank.min()) if rank.size else None, "median": float(np.median(rank)) if rank.size
                 else None},
        "zero_fraction": zero_frac, "near_one_fraction": near,
        "rounding_floor": _jsonable(np.median(floor)) if good.size else None, "below_rounding": below,
        "q90_q10": (pooled["q90"] / pooled["q10"]) if pooled["q10"] and pooled["q90"] is not None else None,
        "verdict": verdict, "reason": reason,
        "thresholds": {"isometry_factor": ISOMETRY_FACTOR, "isometric_fraction": ISOMETRIC_FRACTION,
                       "degenerate_fraction": DEGENERATE_FRACTION},
    }


def _verdict(near: float | None, zero_frac: float | None, mean_sv2: float | None,
             pooled: dict[str, Any]) -> tuple[str, str]:
    if near is None or zero_frac is None or mean_sv2 is None:
        return "degenerate", "no finite Jacobian (NaN/Inf in the forward pass)"
    if zero_frac >= DEGENERATE_FRACTION:
        return "degenerate", (f"{zero_frac:.1%} of the singular values are zero: J loses input directions")
    if near >= ISOMETRIC_FRACTION:
        return "isometric", (f"{near:.1%} of the singular values lie within a factor {ISOMETRY_FACTOR:g} of 1")
    if 1.0 / MEAN_OK_FACTOR <= mean_sv2 <= MEAN_OK_FACTOR:
        return "broad", (f"mean σ² = {mean_sv2:.3g} is near 1, but only {near:.1%} of the singular values lie "
                         f"within a factor {ISOMETRY_FACTOR:g} of 1 (q10 {pooled['q10']:.3g}, q90 "
                         f"{pooled['q90']:.3g})")
    return "broad", (f"only {near:.1%} of the singular values lie within a factor {ISOMETRY_FACTOR:g} of 1: the "
                     f"spectrum sits away from 1 (mean σ² = {mean_sv2:.3g})")


# ---------------------------------------------------------------- what the findings (rules.py) cite


_ODD_SIGMOIDAL = ("tanh", "hardtanh", "softsign")
_RELU_LIKE = ("relu", "leaky_relu", "elu", "selu", "gelu", "silu", "softplus")


def _g(x: float | None) -> str:
    return "none" if x is None else f"{x:.3g}"


def _remedy(scenario: Any, act: str | None) -> str:
    if act == "identity":
        return ("use init {scheme: orthogonal, gain: 1}: a product of orthogonal matrices is exactly isometric "
                "(Saxe et al. 2014)")
    if act in _ODD_SIGMOIDAL:
        sb2 = bias_variance(scenario.bias_init.name, dict(scenario.bias_init.params), scenario.sizes[0]) \
            if scenario.bias else 0.0
        if scenario.init.name != "orthogonal":
            return ("use init {scheme: orthogonal, gain: 1} at criticality (σ_w² = 1, small σ_b²): orthogonal "
                    f"weights remove the weights' share of the spread (Pennington et al. 2017); σ_b² is now {sb2:.3g}.")
        return ("the weights are orthogonal already: the remaining spread comes from φ'(z) varying across units; "
                f"move closer to the critical point with smaller pre-activations (σ_b² is {sb2:.3g}; smaller "
                "inputs or σ_b² make tanh nearly linear where it matters)")
    if act in _RELU_LIKE:
        return ("no initialization fixes this for ReLU-like activations (Pennington et al. 2017): orthogonal "
                "weights only remove the weights' share (the predicted Var(λ) per layer drops from 2 to 1 at χ₁ = 1); "
                "use fewer layers, or tanh with orthogonal init at criticality")
    return "use orthogonal init at criticality: orthogonal weights remove the weights' share of the spread"


# ---------------------------------------------------------------- options


def options(scenario: Any) -> dict[str, Any] | None:
    """The scenario's analysis.jacobian options, or None when the analysis is off (scenario.jacobian_options)."""
    return jacobian_options(scenario)


def enable(scenario: Any, samples: int | None = None, at: str | None = None) -> Any:
    """The scenario with the Jacobian analysis switched on (--jacobian); the file's options are kept."""
    if not getattr(scenario, "plain", True):
        raise GradscopeError(f"{scenario.source}: the Jacobian analysis covers networks of dense layers; this one "
                             "has norm, dropout or residual layers (network.norm/dropout/residual/layers)")
    have = dict(options(scenario) or {})
    opts = {"samples": samples or have.get("samples", DEFAULT_SAMPLES), "at": at or have.get("at", "last_hidden")}
    if opts["samples"] > scenario.batch_size:
        raise GradscopeError(f"{scenario.source}: --jacobian uses {opts['samples']} samples but data.batch_size "
                             f"is {scenario.batch_size}; set analysis.jacobian.samples to at most "
                             f"{scenario.batch_size}")
    if opts["at"] == "last_hidden" and scenario.depth == 0:
        raise GradscopeError(f"{scenario.source}: --jacobian at the last hidden layer needs a hidden layer; "
                             "set analysis.jacobian.at: logits")
    return replace(scenario, analysis={**dict(getattr(scenario, "analysis", None) or {}), "jacobian": opts})


# ---------------------------------------------------------------- references (for pictures)


REFERENCE_SEEDS = 4
REFERENCE_MAX_MACS = 2 * 10**9   # references of larger nets are left out (the figure says so)


def reference_spectra(sizes: list[int] | tuple[int, ...], seed: int = 0) -> dict[str, Array] | None:
    """Singular values of J for linear nets of the same layer sizes: i.i.d. Gaussian (σ_w² = 1) and
    orthogonal weights, REFERENCE_SEEDS draws each, through the same Dense steps; None above the cost cap."""

    sizes = list(sizes)
    r = min(sizes[0], sizes[-1])
    macs = REFERENCE_SEEDS * 2 * sum(r * fi * fo for fi, fo in zip(sizes[:-1], sizes[1:], strict=True))
    if macs > REFERENCE_MAX_MACS or len(sizes) < 2:
        return None
    rng = np.random.default_rng(seed)
    out: dict[str, Array] = {}
    ortho = INITS.get("orthogonal")
    ctx = LayerContext("identity")
    for name in ("gaussian", "orthogonal"):
        steps: list[Step] = []
        for fi, fo in zip(sizes[:-1], sizes[1:], strict=True):
            if name == "gaussian":
                W = rng.standard_normal((REFERENCE_SEEDS, fi, fo)) / math.sqrt(fi)
            else:
                W = np.stack([ortho.sample(rng, fi, fo, ctx, gain=1.0) for _ in range(REFERENCE_SEEDS)])
            steps.append(Dense(W))
        J = input_output_jacobian(steps, REFERENCE_SEEDS, 1, sizes[0], sizes[-1], np.float64)
        out[name] = singular_values(J)
    return out
