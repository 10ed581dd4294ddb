"""Per-layer statistics over the ensemble, mean-field predictions, verdicts and findings.

Input: one engine `Pass` and its `Params` (arrays with a leading seed axis).
Output: `LayerReport`s, a `Summary` and `Finding`s of plain floats and strings.

Thresholds (scenario `diagnostics:` block, defaults in scenario.DIAGNOSTICS_KEYS):
a layer is *vanishing* when the median of its gradient ratio ‖∂L/∂W_l‖/‖∂L/∂W_L‖
or of its δ ratio ‖δ_l‖/‖δ_L‖ is below `vanishing_ratio` (1e-2), *exploding*
when either is above `exploding_ratio` (1e2), *dead* when more than
`dead_threshold` of its units are dead, *saturated* when more than
`saturation_threshold` of its unit-samples are saturated, *overflow* when any
seed has NaN/Inf there. A layer gets the first status that applies in the order
overflow > dead > exploding > vanishing > saturated > healthy (dead units are a cause of
vanishing gradients, so they are named first), and the verdict is the worst layer status
in that order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .activations import ACTIVATIONS
from .engine import Params, Pass, dense_rows
from .inits import INITS, LayerContext, layer_sigmas
from .layers import BATCHNORM_RELU_GRADIENT_GROWTH, Dense, Norm, Residual, dropout_keep, stream_moments, walk
from .numerics import _div, _norm, mean_std
from .optimizers import first_step_ratio
from .parallel import map_seeds, seed_slices
from .quantiles import quantiles_of_parts
from .report import Finding, LayerReport, Stat, Summary, stats_of
from .rules import (  # noqa: F401  (CODES, find, _fmt and MIN_DEAD_SAMPLES are also read from here)
    _ZERO_INPUT,
    CODES,
    MIN_DEAD_SAMPLES,
    _chi1_trend,
    _exact_zero_derivative,
    _fmt,
    _ranges,
    _zero_gradient_layers,
    find,
)
from .scenario import Scenario
from .theory import batch_gradient_ratio, critical_sigma_w2, mean_field, predict_layers

SEVERITY_ORDER = {"overflow": 5, "dead": 4, "exploding": 3, "vanishing": 2, "saturated": 1, "healthy": 0}
QUANTILES = (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99)
SATURATION_LEVEL = 0.1   # a unit-sample is saturated when φ'(z) < 10% of max φ'
DEAD_LEVEL = 1e-3        # a unit is dead when φ'(z) < 0.1% of max φ' for every sample of the batch
SOFTMAX_CONFIDENT = 0.99  # an output sample is saturated when its largest softmax probability exceeds this
EXTRAPOLATION_DEPTHS = (20, 50, 100)
THEORY_GAP = 0.02             # measured vs predicted backward factor: a caveat states a larger relative gap


@dataclass
class LayerArrays:
    """Per-seed (S,) statistics of one layer, before summarizing."""

    values: dict[str, np.ndarray]
    nonfinite: np.ndarray     # (S,) bool
    quantiles: dict[str, float | None]


# |dW| statistics are split over the seed ranges from this many entries: below it the two hand-offs to the
# other thread cost more than they save (one thread measured faster at 65k entries, even at 131k, 20% slower
# at 262k), the reductions being memory-bound and the quantile selection's pilot serial.
DW_PARALLEL_VALUES = 1 << 18
QUANTILE_SAMPLE = 1 << 18  # |∂L/∂W| quantiles use at most this many entries (an evenly strided subset)


def act_grad_statistics(scenario: Scenario) -> Callable[[int, np.ndarray], dict[str, np.ndarray]]:
    """engine.backward's reduce_act_grad: from φ'(z_l) of a seed range (k, B, n), the per-seed saturation,
    dead fraction and mean φ' of hidden layer l, taken while backward has φ' (it is then not computed again)."""
    return lambda l, fprime: _fprime_statistics(scenario, l, fprime)


def _fprime_statistics(scenario: Scenario, l: int, fprime: np.ndarray) -> dict[str, np.ndarray]:
    """Per seed of hidden layer l's (k, B, n) φ': saturation (φ' < 10% of its max), dead fraction (units below
    0.1% of it for every sample), mean φ' — zero where the activation cannot saturate / die."""
    comp = scenario.activations[l - 1]
    act = ACTIVATIONS.get(comp.name)
    gmax = float(act.max_grad(**comp.params))
    k = fprime.shape[0]
    with np.errstate(all="ignore"):
        return {"saturation": ((fprime < SATURATION_LEVEL * gmax).mean(axis=(1, 2), dtype=np.float64)
                               if act.saturating else np.zeros(k)),
                "dead_fraction": ((fprime < DEAD_LEVEL * gmax).all(axis=1).mean(axis=1, dtype=np.float64)
                                  if act.can_die else np.zeros(k)),
                "act_grad_mean": fprime.mean(axis=(1, 2), dtype=np.float64)}


def layer_arrays(scenario: Scenario, params: Params, p: Pass, update: list[np.ndarray] | None
                 ) -> list[LayerArrays]:
    """Every per-seed statistic of every layer, shape (S,) each; `update`: ‖ΔW_l‖/‖W_l‖ per layer, or None.

    The reductions over the big arrays (δ, W, z, a, φ') are made per seed range in threads, all layers of a
    range in one go (_range_statistics); the same numbers as over the whole ensemble."""
    L = scenario.n_layers
    out: list[LayerArrays] = []
    with np.errstate(all="ignore"):
        gstats = p.dW_stats if p.dW_stats is not None else [
            dW_statistics(l, p.dW[l - 1], p.z, p.a, p.delta[l - 1]) for l in range(1, L + 1)]
        wgn = [g.norm for g in gstats]
        S = params.W[0].shape[0]
        taken = {l: {k: np.concatenate([r[k] for _, r in sorted(parts, key=lambda sr: sr[0])]) for k in parts[0][1]}
                 for l, parts in (p.act_grad_stats or {}).items()}  # φ' statistics backward took, per layer
        ranges = map_seeds(lambda sl: _range_statistics(scenario, params, p, sl, taken), S,
                           sum(z.size for z in p.z))
        big = [{k: np.concatenate([r[l][k] for r in ranges]) for k in ranges[0][l]} for l in range(L)]
        dn = [g.delta_norm for g in gstats]
        for l in range(1, L + 1):
            v: dict[str, np.ndarray] = {}
            v["weight_grad_norm"] = wgn[l - 1]
            v["bias_grad_norm"] = _norm(p.db[l - 1], (1,)) if p.db is not None else np.full(S, np.nan)
            v["delta_norm"] = dn[l - 1]
            v["grad_weight_ratio"] = _div(wgn[l - 1], big[l - 1]["weight_norm"])
            v["gradient_ratio"] = _div(wgn[l - 1], wgn[L - 1])
            for k in ("preact_mean", "preact_std", "act_mean", "act_std", "saturation", "dead_fraction",
                      "act_grad_mean"):
                v[k] = big[l - 1][k]
            v["mean_abs_grad"] = gstats[l - 1].mean_abs
            v["max_abs_grad"] = gstats[l - 1].max_abs
            v["delta_ratio"] = _div(dn[l - 1], dn[L - 1])
            v["backward_gain"] = _div(dn[l - 1], dn[l]) if l < L else np.full(S, np.nan)
            v["update_ratio"] = (np.asarray(update[l - 1], dtype=np.float64) if update is not None
                                 else np.full(S, np.nan))
            out.append(LayerArrays(v, gstats[l - 1].nonfinite, gstats[l - 1].quantiles))
    return out


def _range_statistics(scenario: Scenario, params: Params, p: Pass, sl: slice,
                      taken: dict[int, dict[str, np.ndarray]] | None = None) -> list[dict[str, np.ndarray]]:
    """Per layer, the per-seed reductions of seeds `sl` over the big arrays: ‖W‖, mean and std of
    what the activation sees (z, or norm(z)) and of a, and the φ'-based saturation, dead fraction, mean φ'
    (from `taken`, layer -> (S,) arrays backward reduced, where it has them)."""
    L = scenario.n_layers
    u = p.trace.u if p.trace is not None else p.z  # what each activation sees (z, or norm(z))
    out = []
    with np.errstate(all="ignore"):
        for l in range(1, L + 1):
            z, a, W = u[l - 1][sl], p.a[l][sl], params.W[l - 1][sl]
            k = W.shape[0]
            zm, zs = mean_std(z, (1, 2))
            am, ast = mean_std(a, (1, 2))
            v = {"weight_norm": _norm(W, (1, 2)), "preact_mean": zm, "preact_std": zs, "act_mean": am,
                 "act_std": ast}
            if taken is not None and l in taken:
                v.update({key: arr[sl] for key, arr in taken[l].items()})
            elif l <= scenario.depth:  # a hidden layer: φ' of what its activation saw
                comp = scenario.activations[l - 1]
                v.update(_fprime_statistics(scenario, l, ACTIVATIONS.get(comp.name).grad(z, a, **comp.params)))
            else:
                v["saturation"] = _output_saturation(scenario.output_activation, a)
                v["dead_fraction"] = np.zeros(k)
                v["act_grad_mean"] = np.full(k, np.nan)
            out.append(v)
    return out


@dataclass
class WeightGradStats:
    """What the diagnostics need of one layer's dW (S, n_{l-1}, n_l): computed as backward produces it."""

    norm: np.ndarray          # (S,) ‖dW‖_F
    mean_abs: np.ndarray      # (S,)
    max_abs: np.ndarray       # (S,)
    nonfinite: np.ndarray     # (S,) bool: NaN/Inf in z_l, a_l, δ_l or dW_l
    quantiles: dict[str, float | None]
    delta_norm: np.ndarray    # (S,) ‖δ_l‖ (the pass may drop δ_l once this is taken)


def dW_statistics(l: int, dW: np.ndarray, z: list[np.ndarray], a: list[np.ndarray],
                  delta: np.ndarray, scratch: bool = False) -> WeightGradStats:
    """Statistics of layer l's weight gradient (engine.backward's reduce_dW): norms, |dW| mean, max, quantiles.

    Seed ranges in threads (parallel.map_seeds): each range reduces its seeds, then counts its share of the
    quantile sample (every k-th entry of the finite seeds' |dW| flattened in seed order, at most
    QUANTILE_SAMPLE of them) against the brackets of the wanted ranks (quantiles.quantiles_of_parts): the
    same figures as np.quantile of the whole sample, without sorting it. scratch=True: dW is the pass's to
    drop after this, and |dW| is taken in place (no second array of its size)."""
    S = dW.shape[0]
    zl, al = z[l - 1], a[l]

    def reduce(sl: slice) -> tuple[np.ndarray, ...]:
        with np.errstate(all="ignore"):
            absd = np.abs(dW[sl], out=dW[sl] if scratch else None)  # ‖|dW|‖ = ‖dW‖ bit for bit; finite alike
            norm, dnorm = _norm(absd, (1, 2)), _norm(delta[sl], (1, 2))
            nonfinite = ~(all_finite(zl[sl]) & all_finite(al[sl]) & all_finite(delta[sl], dnorm)
                          & all_finite(absd, norm))
            return (norm, absd.mean(axis=(1, 2), dtype=np.float64),
                    absd.max(axis=(1, 2)).astype(np.float64), nonfinite, dnorm, absd)

    parts = map_seeds(reduce, S, dW.size, DW_PARALLEL_VALUES)
    norm, mean_abs, max_abs, nonfinite, delta_norm = (np.concatenate([p[i] for p in parts]) for i in range(5))
    per_seed = dW[0].size
    finite = [int((~p[3]).sum()) * per_seed for p in parts]
    total = sum(finite)
    step = -(-total // QUANTILE_SAMPLE) if total > QUANTILE_SAMPLE else 1
    offsets = np.cumsum([0] + finite[:-1]).tolist()  # where each range's finite entries start in the sample

    shares = []
    for p, offset in zip(parts, offsets, strict=True):
        absd, nf = p[5], p[3]
        flat = (absd[~nf] if nf.any() else absd).ravel()
        shares.append(flat[(-offset) % step::step])
    index_of = {sl.start: k for k, sl in enumerate(seed_slices(S, len(parts)))}

    def on_ranges(fn: Callable[[int], Any]) -> list[Any]:  # fn(k) for share k, in the range's own thread
        return map_seeds(lambda sl: fn(index_of[sl.start]), S, dW.size, DW_PARALLEL_VALUES)

    quant: dict[str, float | None] = {f"q{int(round(q * 100)):02d}": None for q in QUANTILES}
    if total:
        qs = quantiles_of_parts(shares, QUANTILES, map_parts=on_ranges)
        quant = {k: float(x) for k, x in zip(quant, qs, strict=True)}
    return WeightGradStats(norm, mean_abs, max_abs, nonfinite, quant, delta_norm)


def all_finite(x: np.ndarray, norm: np.ndarray | None = None) -> np.ndarray:
    """(S,) bool: every entry of seed k finite. A finite per-seed sum proves it (an inf or NaN entry makes the
    sum inf or NaN), as does a finite norm already taken (numerics._norm, `norm`); only seeds whose sum or norm
    is not finite — overflow or a non-finite entry — are checked entry by entry."""
    with np.errstate(all="ignore"):
        ok = np.isfinite(x.sum(axis=tuple(range(1, x.ndim))) if norm is None else norm)
    if not ok.all():
        bad = ~ok
        ok[bad] = np.isfinite(x[bad]).all(axis=tuple(range(1, x.ndim)))
    return ok


def _output_saturation(head: str, yhat: np.ndarray) -> np.ndarray:
    """Output layer: sigmoid unit-samples with ŷ(1-ŷ) < 0.025; softmax samples with max p > 0.99."""
    if head == "sigmoid":
        return (yhat * (1.0 - yhat) < SATURATION_LEVEL * 0.25).mean(axis=(1, 2), dtype=np.float64)
    if head == "softmax":
        return (yhat.max(axis=2) > SOFTMAX_CONFIDENT).mean(axis=1, dtype=np.float64)
    return np.zeros(yhat.shape[0])


def _status(med: dict[str, float | None], overflow: bool, diag: dict[str, Any], output: bool,
            batch: int = MIN_DEAD_SAMPLES) -> str:
    if overflow:
        return "overflow"
    if batch >= MIN_DEAD_SAMPLES and (med["dead_fraction"] or 0.0) > diag["dead_threshold"]:
        return "dead"
    ratios = [r for r in (med["gradient_ratio"], med["delta_ratio"]) if r is not None]
    if not output and any(r > diag["exploding_ratio"] for r in ratios):
        return "exploding"
    if not output and any(r < diag["vanishing_ratio"] for r in ratios):
        return "vanishing"
    if (med["saturation"] or 0.0) > diag["saturation_threshold"]:
        return "saturated"
    return "healthy"


# ---------------------------------------------------------------- theory


BATCH_THEORY_SAMPLES = 24  # samples whose Gram matrices the batch prediction of weight gradients follows


def theory_for(scenario: Scenario, x: np.ndarray, delta_out: np.ndarray | None = None, dropout: bool = True
               ) -> tuple[dict[str, Any], Any]:
    """Mean-field figures for the scenario (summary dict) and per-layer predictions (or None).

    delta_out: the output layer's δ (S, B, k), the boundary condition of the batch prediction of
    the weight-gradient ratio. dropout=False: the pass ran without dropout (eval), whose layers are then identities.
    """
    init = INITS.get(scenario.init.name)
    info: dict[str, Any] = {"applies": True, "caveats": []}
    if scenario.init.name in ("orthogonal", "zeros", "constant"):
        why = {"orthogonal": "orthogonal weights are not i.i.d. Gaussian (the theory of dynamical isometry "
                             "applies instead)",
               "zeros": "zero weights carry no signal", "constant": "constant weights are not random"}
        return {"applies": False, "reason": why[scenario.init.name]}, None
    if scenario.init.name == "normal" and scenario.init.params.get("mean", 0.0) != 0.0:
        return {"applies": False, "reason": "weights with a non-zero mean"}, None
    if scenario.bias and scenario.bias_init.name == "constant" and scenario.bias_init.params.get("value", 0.0):
        return {"applies": False, "reason": "biases with a non-zero mean (constant bias_init)"}, None
    sizes = scenario.sizes
    L = scenario.n_layers
    sw2, sb2 = layer_sigmas(scenario)
    acts = [(a.name, dict(a.params)) for a in scenario.activations]
    input_sq = float(np.mean(np.sum(np.square(x, dtype=np.float64), axis=-1)))
    keep = _dropout_keep(scenario)
    if not scenario.plain and keep is None:
        return _structured_theory(scenario, sw2, sb2, input_sq), None
    if not dropout:
        keep = None
    actual_sw2 = list(sw2)
    if keep is not None:  # dropout before layer l scales its forward variance and backward factor by 1/keep
        sw2 = [s / k for s, k in zip(sw2, keep, strict=True)]
    pred = predict_layers(sizes, acts, sw2, sb2, input_sq) if L >= 1 else None
    info["gradient_ratio_model"] = "per-sample"
    if pred is not None and delta_out is not None and L > 1 and np.isfinite(delta_out).all() and keep is None:
        homogeneous = all(a in ("relu", "leaky_relu", "identity") for a, _ in acts)
        if homogeneous or max(pred.q[:-1]) <= 4.0:
            m = min(BATCH_THEORY_SAMPLES, x.shape[0])
            d = np.asarray(delta_out[:, :m, :], dtype=np.float64)
            gram = np.einsum("sbk,sck->bc", d, d) / d.shape[0]
            ratios = batch_gradient_ratio(sizes, acts, sw2, sb2, np.asarray(x[:m], dtype=np.float64), gram)
            if all(math.isfinite(r) for r in ratios):
                pred.gradient_ratio[:] = ratios
                info["gradient_ratio_model"] = f"batch ({m} samples)"
    if scenario.depth > 0 and len({(a, tuple(sorted(p.items()))) for a, p in acts}) == 1 \
            and len(set(sw2[1:L - 1] or sw2[:1])) == 1:
        hidden_sw2 = sw2[1] if L > 2 else sw2[0]
        mf = mean_field(acts[0][0], hidden_sw2, sb2[1] if L > 2 else sb2[0], acts[0][1])
        info.update({"activation": mf.activation, "sigma_w2": hidden_sw2, "sigma_b2": mf.sigma_b2,
                     "chi1": mf.chi1, "q_star": mf.q_star, "depth_scale_grad": mf.depth_scale_grad,
                     "depth_scale_q": mf.depth_scale_q,
                     "critical_sigma_w2": critical_sigma_w2(acts[0][0], mf.sigma_b2, acts[0][1])})
        if mf.note:
            info["caveats"].append(mf.note)
        if keep is not None:
            q = keep[1] if L > 2 else keep[0]
            info.update({"sigma_w2": actual_sw2[1] if L > 2 else actual_sw2[0], "dropout_keep": q,
                         "effective_sigma_w2": hidden_sw2,
                         "critical_sigma_w2": q * info["critical_sigma_w2"]
                         if info["critical_sigma_w2"] is not None else None})
    else:
        info["caveats"].append("hidden layers differ in activation or σ_w²: no single χ₁; per-layer "
                               "predictions only")
    narrow = min(sizes[1:-1]) if scenario.depth else sizes[-1]
    if narrow < 32:
        info["caveats"].append(f"layers as narrow as {narrow} units: mean-field is a wide-network limit, "
                               "finite-width fluctuations are large")
    if not init.gaussian:
        info["caveats"].append("uniform weights: pre-activations are Gaussian only by the central limit "
                               "theorem (wide layers)")
    if not scenario.center and abs(float(np.mean(x))) > 0.1 * (float(np.std(x)) + 1e-12):
        info["caveats"].append("inputs are not zero-centered")
    return info, pred


def _dropout_keep(scenario: Scenario) -> list[float] | None:
    """layers.dropout_keep of the scenario's network (None for a plain MLP)."""
    return None if scenario.plain else dropout_keep(scenario.items)


def _structured_theory(scenario: Scenario, sw2: list[float], sb2: list[float], input_sq: float) -> dict[str, Any]:
    """Mean-field figures of networks with norm layers or skip connections: the residual stream's predicted
    second moments, and BatchNorm's predicted gradient growth (Yang et al. 2019) where they apply."""
    info: dict[str, Any] = {"applies": False, "caveats": [],
                            "reason": "χ₁ of a plain chain does not describe norm layers or skip connections; the "
                                      "predictions given are the residual stream and BatchNorm growth"}
    rows = dense_rows(scenario)
    sigmas = {r: (w, b) for r, w, b in zip(rows, sw2, sb2, strict=True)}
    init = scenario.init
    for it in walk(scenario.items):
        if isinstance(it, Residual) and it.projection is not None:
            d = it.projection
            var = INITS.get(init.name).variance(d.fan_in, d.fan_out, LayerContext("identity", {}), **init.params)
            sigmas[d.row] = (d.fan_in * float(var) if var is not None else math.nan, 0.0)
    n0 = scenario.sizes[0]
    if input_sq > 0 and all(math.isfinite(w) for w, _ in sigmas.values()):
        at, m_out = stream_moments(scenario.items, sigmas, input_sq / n0)
        blocks = {it.block: it.n_in for it in walk(scenario.items) if isinstance(it, Residual)}
        if blocks:
            info["residual_input_second_moment"] = [at[b] * n / input_sq for b, n in sorted(blocks.items())]
            info["residual_growth"] = m_out * scenario.sizes[-2] / input_sq
    norms = [it for it in walk(scenario.items) if isinstance(it, Norm)]
    acts = {a.name for a in scenario.activations}
    if norms and all(it.kind == "batchnorm" for it in norms) and acts == {"relu"} and not any(
            isinstance(it, Residual) for it in scenario.items):
        info["batchnorm_gradient_growth"] = BATCHNORM_RELU_GRADIENT_GROWTH
    return info


# ---------------------------------------------------------------- rows other than dense layers


def row_blocks(scenario: Scenario) -> dict[int, int]:
    """Row -> the residual block holding it (layers inside a branch, and the block's projection)."""
    out: dict[int, int] = {}

    def visit(items: tuple, block: int | None) -> None:
        for it in items:
            if isinstance(it, Residual):
                visit(it.layers, it.block)
                if it.projection is not None:
                    out[it.projection.row] = it.block
            elif block is not None and isinstance(it, Dense | Norm):
                out[it.row] = block
                if isinstance(it, Dense) and it.norm is not None:
                    out[it.norm.row] = block

    visit(scenario.items, None)
    return out


def other_rows(scenario: Scenario, params: Params, p: Pass, out_wgn: np.ndarray, out_delta: np.ndarray
               ) -> dict[int, tuple[str, tuple[int, int], LayerArrays]]:
    """Norm (γ, β) and projection rows: row -> (kind, (fan_in, fan_out), per-seed statistics).

    For a norm row: weight_grad_norm = ‖∂L/∂γ‖, bias_grad_norm = ‖∂L/∂β‖ (NaN for rmsnorm, which has no β),
    delta_norm = ‖∂L/∂y‖ at its output, pre-activation = its input, activation = its output. For a projection
    row: ‖∂L/∂P‖, delta_norm at the skip path's output. Ratios are to the output layer's, as for dense rows."""
    out: dict[int, tuple[str, tuple[int, int], LayerArrays]] = {}
    tr = p.trace
    if tr is None:
        return out
    with np.errstate(all="ignore"):
        for it in walk(scenario.items):
            if isinstance(it, Norm):
                c = tr.norms.get(it.row)
                g = p.extra.get(f"dgamma{it.row}")
                if c is None or g is None:
                    continue
                gb = p.extra.get(f"dbeta{it.row}")
                out[it.row] = (it.kind, (it.n, it.n), _row_arrays(
                    g, gb, params.extra[f"gamma{it.row}"], c.x, c.y, p.norm_delta[it.row], out_wgn, out_delta))
            elif isinstance(it, Residual) and it.projection is not None:
                r = it.projection.row
                P = params.extra[f"W{r}"]
                y = tr.blocks[it.block] @ P
                out[r] = ("projection", (it.projection.fan_in, it.projection.fan_out), _row_arrays(
                    p.extra[f"dW{r}"], None, P, tr.blocks[it.block], y, p.norm_delta[r], out_wgn, out_delta))
    return out


def _row_arrays(g: np.ndarray, gb: np.ndarray | None, w: np.ndarray, x: np.ndarray, y: np.ndarray,
                delta: np.ndarray, out_wgn: np.ndarray, out_delta: np.ndarray) -> LayerArrays:
    axes = tuple(range(1, g.ndim))
    S = g.shape[0]
    wgn = _norm(g, axes)
    absg = np.abs(g)
    nonfinite = ~(np.isfinite(g).all(axis=axes) & np.isfinite(y).all(axis=(1, 2)))
    pooled = absg[~nonfinite].ravel()
    qs = quantiles_of_parts([pooled], QUANTILES) if pooled.size else [None] * len(QUANTILES)
    nan = np.full(S, np.nan)
    xm, xs = mean_std(x, (-2, -1))
    ym, ys = mean_std(y, (1, 2))
    v = {"weight_grad_norm": wgn, "bias_grad_norm": _norm(gb, (1,)) if gb is not None else nan,
         "delta_norm": delta, "grad_weight_ratio": _div(wgn, _norm(w, axes)), "gradient_ratio": _div(wgn, out_wgn),
         "preact_mean": np.broadcast_to(xm, (S,)).copy(), "preact_std": np.broadcast_to(xs, (S,)).copy(),
         "act_mean": ym, "act_std": ys,
         "saturation": np.zeros(S), "dead_fraction": np.zeros(S), "act_grad_mean": nan,
         "mean_abs_grad": absg.mean(axis=axes, dtype=np.float64),
         "max_abs_grad": absg.max(axis=axes).astype(np.float64),
         "delta_ratio": _div(delta, out_delta), "backward_gain": nan, "update_ratio": nan}
    quant = {f"q{int(round(q * 100)):02d}": (float(x) if x is not None else None)
             for q, x in zip(QUANTILES, qs, strict=True)}
    return LayerArrays(v, nonfinite, quant)


def residual_stream(scenario: Scenario, p: Pass, layers: list[LayerReport]) -> tuple[dict[str, Any], ...] | None:
    """Per residual block: ‖∂L/∂x‖ at its input, the parts through the skip path and through the branch,
    the skip path's share ‖skip‖/(‖skip‖ + ‖branch‖), and the stream's second moment E‖x‖² at the block input
    relative to the network input's (medians etc. over seeds)."""
    if not p.blocks or p.trace is None:
        return None
    x2 = float(np.mean(np.sum(np.square(p.x, dtype=np.float64), axis=-1)))
    out = []
    blocks = {it.block: it for it in walk(scenario.items) if isinstance(it, Residual)}
    last_h = p.trace.h[-1]
    for b in p.blocks:
        xin = p.trace.blocks[b.block]
        with np.errstate(all="ignore"):
            m2 = np.mean(np.sum(np.square(xin, dtype=np.float64), axis=-1), axis=-1) / x2 if x2 > 0 else None
            share = _div(b.skip_norm, b.skip_norm + b.branch_norm)
        out.append({"block": b.block, "alpha": blocks[b.block].alpha,
                    "layers": [lay.layer for lay in layers if lay.block == b.block],
                    "delta_norm": Stat.of(b.delta_norm).to_dict(), "skip_grad_norm": Stat.of(b.skip_norm).to_dict(),
                    "branch_grad_norm": Stat.of(b.branch_norm).to_dict(), "skip_share": Stat.of(share).to_dict(),
                    "input_second_moment": Stat.of(m2).to_dict() if m2 is not None else None})
    with np.errstate(all="ignore"):
        m2 = np.mean(np.sum(np.square(last_h, dtype=np.float64), axis=-1), axis=-1) / x2 if x2 > 0 else None
    out.append({"block": None, "output_second_moment": Stat.of(m2).to_dict() if m2 is not None else None})
    return tuple(out)


# ---------------------------------------------------------------- the report


@dataclass
class Diagnosis:
    layers: list[LayerReport]
    summary: Summary
    findings: list[Finding]
    per_seed: dict[str, np.ndarray]
    residual: tuple[dict[str, Any], ...] | None = None   # residual nets: the stream at each block input


def diagnose(scenario: Scenario, params: Params, p: Pass, *, with_theory: bool = True,
             update_ratio: list[np.ndarray] | None = None, dropout: bool = True) -> Diagnosis:
    """Per-layer statistics over seeds, status per layer, verdict, theory and findings.

    update_ratio: ‖ΔW_l‖/‖W_l‖ (S,) per layer of an optimizer step already taken (training); when None
    and the scenario has a `train:` block, the optimizer's first step from `params` with this pass's
    gradients, taken on copies (when the pass kept every layer's dW).
    """
    lr = float(scenario.train["lr"]) if scenario.train and scenario.train.get("lr") is not None else None
    diag = dict(scenario.diagnostics)
    if update_ratio is None and scenario.train and all(g is not None for g in p.dW):
        update_ratio = first_step_ratio(scenario.train, params.W, p.dW)
    arrays = layer_arrays(scenario, params, p, update_ratio)
    L = scenario.n_layers
    theory, pred = (theory_for(scenario, p.x, p.delta[-1], dropout=dropout) if with_theory
                    else ({"applies": False}, None))

    rows = dense_rows(scenario)
    block_of = row_blocks(scenario)
    layers: list[LayerReport] = []
    for l, la in enumerate(arrays, start=1):
        stats = stats_of(la.values)
        med = {k: s.median for k, s in stats.items()}
        status = _status(med, bool(la.nonfinite.any()), diag, output=(l == L), batch=scenario.batch_size)
        layers.append(LayerReport(
            layer=rows[l - 1], fan_in=scenario.sizes[l - 1], fan_out=scenario.sizes[l],
            activation=scenario.layer_activation(l), status=status, stats=stats, grad_quantiles=la.quantiles,
            nonfinite_seeds=int(la.nonfinite.sum()),
            predicted_gradient_ratio=_clean(pred.gradient_ratio[l - 1]) if pred else None,
            predicted_delta_ratio=_clean(pred.delta_ratio[l - 1]) if pred else None,
            block=block_of.get(rows[l - 1]), index=l))
    other = other_rows(scenario, params, p, arrays[-1].values["weight_grad_norm"], arrays[-1].values["delta_norm"])
    for row, (kind, n, la) in other.items():
        stats = stats_of(la.values)
        med = {k: s.median for k, s in stats.items()}
        layers.append(LayerReport(
            layer=row, fan_in=n[0], fan_out=n[1], activation="identity", kind=kind, block=block_of.get(row),
            status=_status(med, bool(la.nonfinite.any()), diag, output=False, batch=scenario.batch_size),
            stats=stats, grad_quantiles=la.quantiles, nonfinite_seeds=int(la.nonfinite.sum())))
    dense_layers = layers[:L]
    layers.sort(key=lambda lay: lay.layer)
    arrays_by_row = {**dict(zip(rows, arrays, strict=True)), **{r: v[2] for r, v in other.items()}}

    per_seed = {f"{k}{r}": la.values[k] for r, la in arrays_by_row.items() for k in la.values}
    wgn = np.stack([la.values["weight_grad_norm"] for la in arrays])  # (L, S) of the dense layers
    with np.errstate(all="ignore"):
        spread = _div(wgn.max(axis=0), wgn.min(axis=0))
    overflow_seeds = np.stack([la.nonfinite for la in arrays_by_row.values()]).any(axis=0)
    verdict = _verdict(layers)

    # backward gain: geometric mean over hidden layers, per seed; fitted rate over depth
    gains = np.stack([la.values["backward_gain"] for la in arrays[:-1]]) if L > 1 else np.zeros((0, 1))
    with np.errstate(all="ignore"):
        geo = np.exp(np.mean(np.log(gains), axis=0)) if L > 1 else np.full(1, np.nan)
        # between hidden layers (through hidden weights W_2..W_{L-1}); the output layer's σ_w² differs
        n_tr = max(L - 2, 1)
        measured_factor = np.exp(np.mean(np.log(gains[:n_tr] ** 2), axis=0)) if L > 1 else None
    mean_gain = Stat.of(geo).median
    extrapolation = _extrapolate(dense_layers)
    if pred is not None and L > 1 and measured_factor is not None:
        chis = [c for c in pred.chi[:n_tr] if c is not None]
        theory["predicted_backward_factor"] = _clean(math.exp(np.mean(np.log(chis)))) if chis and min(
            chis) > 0 else None
        theory["measured_backward_factor"] = Stat.of(measured_factor).median
        q_star = theory.get("q_star")
        if q_star is not None and q_star > 0:
            # transitions whose pre-activations have reached the fixed point: comparable with χ₁ itself
            settled = [i for i in range(n_tr) if abs(pred.q[i] - q_star) <= 0.02 * q_star]
            if settled:
                with np.errstate(all="ignore"):
                    at_q = np.exp(np.mean(np.log(gains[settled] ** 2), axis=0))
                theory["settled_layers"] = [i + 1 for i in settled]
                theory["measured_backward_factor_at_q_star"] = Stat.of(at_q).median
    if pred is not None and theory.get("applies"):
        theory.setdefault("caveats", []).extend(_theory_disagreement(scenario, p, layers, theory, pred.q))
    summary = Summary(verdict=verdict, gradient_spread=Stat.of(spread).median, loss=Stat.of(p.loss),
                      seeds=scenario.seeds, n_layers=len(layers), overflow_seeds=int(overflow_seeds.sum()),
                      mean_backward_gain=mean_gain, extrapolation=extrapolation,
                      chi1=_clean(theory.get("chi1")), q_star=_clean(theory.get("q_star")), theory=theory, lr=lr)
    findings = find(scenario, params, p, dense_layers, arrays, summary)
    return Diagnosis(layers, summary, findings, per_seed, residual_stream(scenario, p, layers))


def _verdict(layers: list[LayerReport]) -> str:
    """The worst layer status; when some layers vanish and others explode, the one nearest the input decides.

    A net whose early layers get (exactly) zero gradient while a few late layers blow up does not train its
    early layers: what reaches layer 1 is the measurement that matters, not the order of the two statuses.
    """
    statuses = [lay.status for lay in layers]
    if "vanishing" in statuses and "exploding" in statuses and not {"overflow", "dead"} & set(statuses):
        return next(s for s in statuses if s in ("vanishing", "exploding"))
    return max(statuses, key=lambda s: SEVERITY_ORDER[s], default="healthy")


def _theory_disagreement(scenario: Scenario, p: Pass, layers: list[LayerReport], theory: dict[str, Any],
                         q_pred: list[float]) -> list[str]:
    """Caveats, in numbers, where the mean-field prediction printed beside a measurement does not match it."""
    out: list[str] = []
    zero = _zero_gradient_layers(layers)
    chi1 = theory.get("chi1")
    if zero:
        found = _exact_zero_derivative(scenario, p)
        cause = (f"φ'(z) is exactly 0 in {p.z[0].dtype} for {_fmt(100 * found[0])}% of the hidden unit-samples "
                 "(saturation underflow), and δ is exactly 0 below any layer where all of a sample's units have "
                 "φ' = 0" if found else "δ is exactly 0 there")
        pred_txt = f"mean-field χ₁ = {_fmt(chi1)} predicts {_chi1_trend(chi1)}, " if chi1 else ""
        if not np.any(p.x):
            cause = _ZERO_INPUT
        out.append(f"{_ranges(zero)} get exactly zero gradient: {pred_txt}{cause}; the theory's Gaussian average "
                   "does not describe exact zeros of finite-precision arithmetic")
        return out
    pbf, mbf = theory.get("predicted_backward_factor"), theory.get("measured_backward_factor")
    if pbf and mbf and abs(mbf / pbf - 1.0) > THEORY_GAP:
        L = scenario.n_layers
        q_meas = [Stat.of(np.mean(np.square(p.z[l - 1], dtype=np.float64), axis=(1, 2))).median for l in range(1, L)]
        drift = [(abs(qm / qp - 1.0), l, qm, qp) for l, (qm, qp) in enumerate(zip(q_meas, q_pred, strict=False),
                                                                              start=1)
                 if qm is not None and qp and math.isfinite(qp)]
        worst = max(drift) if drift else None
        widths = scenario.sizes[1:-1]
        q_txt = (f"; the measured q_l = mean z_l² drifts from the predicted by up to {_fmt(100 * worst[0])}% "
                 f"(layer {worst[1]}: {_fmt(worst[2])} vs {_fmt(worst[3])})") if worst else ""
        out.append(f"measured backward factor {_fmt(mbf)} is {100 * (mbf / pbf - 1.0):+.1f}% from the predicted "
                   f"{_fmt(pbf)}{q_txt}: mean-field is the infinite-width limit, and its corrections grow like "
                   f"depth/width (here {scenario.depth}/{min(widths) if widths else scenario.sizes[-1]})")
    return out


def _clean(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _extrapolate(layers: list[LayerReport]) -> dict[str, Any]:
    """Fit log‖δ_l‖ (median over seeds) linearly over l; extrapolate layer 1's ratio to deeper nets."""
    pts = [(lay.index, lay.median("delta_norm")) for lay in layers]
    pts = [(l, v) for l, v in pts if v is not None and v > 0]
    if len(pts) < 3:
        return {}
    ls = np.array([l for l, _ in pts], dtype=float)
    logs = np.log([v for _, v in pts])
    slope = float(np.polyfit(ls, logs, 1)[0])
    # ‖δ_l‖/‖δ_{l+1}‖ = e^{-slope}; layer 1's ratio at depth d = e^{-slope (d-1)}: computed in log space, the
    # ratio itself is None (JSON null) where it leaves the float range, its log10 is always given
    out: dict[str, Any] = {"per_layer_factor": _exp_or_none(-slope),
                           "log10_per_layer_factor": -slope / math.log(10.0)}
    for depth in EXTRAPOLATION_DEPTHS:
        ln_ratio = -slope * (depth - 1)
        out[f"layer1_ratio_at_depth_{depth}"] = _exp_or_none(ln_ratio)
        out[f"layer1_log10_ratio_at_depth_{depth}"] = ln_ratio / math.log(10.0)
    return out


def _exp_or_none(ln_x: float) -> float | None:
    """e^ln_x, or None when it over- or underflows float64 (|ln x| beyond the normal range)."""
    if not math.isfinite(ln_x) or ln_x > math.log(np.finfo(np.float64).max) or ln_x < math.log(
            np.finfo(np.float64).tiny):
        return None
    return math.exp(ln_x)
