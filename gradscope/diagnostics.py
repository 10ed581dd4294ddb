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
from dataclasses import dataclass
from typing import Any

import numpy as np

from .activations import ACTIVATIONS
from .engine import Params, Pass
from .inits import INITS, LayerContext, bias_variance, layer_sigmas
from .losses import LOSSES
from .optimizers import first_step_ratio
from .report import Finding, LayerReport, Stat, Summary
from .scenario import Scenario
from .theory import batch_gradient_ratio, critical_sigma_w2, mean_field, predict_layers

SEVERITY_ORDER = {"overflow": 5, "dead": 4, "exploding": 3, "vanishing": 2, "saturated": 1, "healthy": 0}
QUANTILES = (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99)
SATURATION_LEVEL = 0.1   # a unit-sample is saturated when φ'(z) < 10% of max φ'
DEAD_LEVEL = 1e-3        # a unit is dead when φ'(z) < 0.1% of max φ' for every sample of the batch
SOFTMAX_CONFIDENT = 0.99  # an output sample is saturated when its largest softmax probability exceeds this
EXTRAPOLATION_DEPTHS = (20, 50, 100)
# A ReLU-like unit that is active for about half of the inputs (zero-mean pre-activation) is off for all B
# independent samples with probability 2^-B; from 10 samples on that is ≤ 2^-10 ≈ 0.1%, far below the
# fractions the dead-unit rules act on (DEAD_FINDING_FRACTION, dead_threshold). With fewer samples a unit
# inactive for the whole batch is not evidence of a dead unit: no `dead` status, only an info finding.
MIN_DEAD_SAMPLES = 10
DEAD_FINDING_FRACTION = 0.1   # dead-units is reported from this median fraction of dead units in a layer
THEORY_GAP = 0.02             # measured vs predicted backward factor: a caveat states a larger relative gap
RATIO_DISAGREEMENT = 10.0     # δ ratio and weight-gradient ratio this far apart: the forward signal explains it
FORWARD_RATIO_LOW, FORWARD_RATIO_HIGH = 1e-2, 1e2  # forward-collapse / -explosion: last/first hidden z std
CHI1_CRITICAL_BAND = (0.9, 1.1)  # an init whose χ₁ is in this band is "at the critical σ_w²" for the remedies
NON_CENTERED_RATIO = 0.5      # non-centered-inputs: median over features of |mean|/std above this

# Stable finding codes (README lists them).
CODES = {
    "overflow": "NaN or Inf in the forward or backward pass",
    "vanishing-gradient": "early layers get a tiny fraction of the output layer's gradient",
    "exploding-gradient": "early layers get a huge multiple of the output layer's gradient",
    "saturated-units": "many hidden units sit in the flat region of their activation",
    "dead-units": "ReLU-like units inactive for the whole batch",
    "saturated-output": "output probabilities pinned near 0/1",
    "mse-on-probabilities": "MSE/MAE/Huber on sigmoid/softmax outputs: the gradient carries ŷ(1-ŷ)",
    "non-centered-inputs": "inputs are far from zero-mean",
    "forward-collapse": "the forward signal shrinks layer by layer",
    "forward-explosion": "the forward signal grows layer by layer",
    "symmetric-init": "constant initialization: all units of a layer stay identical",
    "broad-jacobian-spectrum": "input–output Jacobian: mean σ² near 1 but the singular values spread widely",
    "degenerate-jacobian": "input–output Jacobian: rank-deficient (numerically zero singular values)",
    "update-ratio": "the optimizer's first step ‖ΔW‖/‖W‖ far from the 1e-3 guide",
    "gradient-fade": "training: layer 1's gradient fell far more than the output layer's",
    "loss-plateau": "training: the held-out loss stopped improving",
    "training-diverged": "training: the training loss became non-finite or ended >25% above its start in some seeds",
    "overfitting": "training: the held-out loss rose while the training loss kept falling",
    "training-unstable": "training: the training loss rose well above its lowest value",
    "units-died": "training: hidden units that were alive at step 0 died",
}


@dataclass
class LayerArrays:
    """Per-seed (S,) statistics of one layer, before summarizing."""

    values: dict[str, np.ndarray]
    nonfinite: np.ndarray     # (S,) bool
    quantiles: dict[str, float | None]


QUANTILE_SAMPLE = 1 << 18  # |∂L/∂W| quantiles use at most this many entries (an evenly strided subset)


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


def _act_grad(scenario: Scenario, l: int, z: np.ndarray, a: np.ndarray) -> tuple[np.ndarray | None, float]:
    """φ'(z_l) of hidden layer l and max φ'; (None, 1) for the output layer."""
    if l > scenario.depth:
        return None, 1.0
    comp = scenario.activations[l - 1]
    act = ACTIVATIONS.get(comp.name)
    return act.grad(z, a, **comp.params), float(act.max_grad(**comp.params))


def layer_arrays(scenario: Scenario, params: Params, p: Pass, update: list[np.ndarray] | None
                 ) -> list[LayerArrays]:
    """Every per-seed statistic of every layer, shape (S,) each; `update`: ‖ΔW_l‖/‖W_l‖ per layer, or None."""
    L = scenario.n_layers
    out: list[LayerArrays] = []
    with np.errstate(all="ignore"):
        gstats = p.dW_stats if p.dW_stats is not None else [
            dW_statistics(l, p.dW[l - 1], p.z, p.a, p.delta[l - 1]) for l in range(1, L + 1)]
        wgn = [g.norm for g in gstats]
        dn = [_norm(d, (1, 2)) for d in p.delta]
        for l in range(1, L + 1):
            z, a, W = p.z[l - 1], p.a[l], params.W[l - 1]
            S = W.shape[0]
            v: dict[str, np.ndarray] = {}
            v["weight_grad_norm"] = wgn[l - 1]
            v["bias_grad_norm"] = _norm(p.db[l - 1], (1,)) if p.db is not None else np.full(S, np.nan)
            v["delta_norm"] = dn[l - 1]
            v["grad_weight_ratio"] = _div(wgn[l - 1], _norm(W, (1, 2)))
            v["gradient_ratio"] = _div(wgn[l - 1], wgn[L - 1])
            v["preact_mean"] = z.mean(axis=(1, 2), dtype=np.float64)
            v["preact_std"] = z.std(axis=(1, 2), dtype=np.float64)
            v["act_mean"] = a.mean(axis=(1, 2), dtype=np.float64)
            v["act_std"] = a.std(axis=(1, 2), dtype=np.float64)
            fprime, gmax = _act_grad(scenario, l, z, a)
            act = ACTIVATIONS.get(scenario.activations[l - 1].name) if l <= scenario.depth else None
            if act is not None and fprime is not None:
                v["saturation"] = ((fprime < SATURATION_LEVEL * gmax).mean(axis=(1, 2), dtype=np.float64)
                                   if act.saturating else np.zeros(S))
                v["dead_fraction"] = ((fprime < DEAD_LEVEL * gmax).all(axis=1).mean(axis=1, dtype=np.float64)
                                      if act.can_die else np.zeros(S))
                v["act_grad_mean"] = fprime.mean(axis=(1, 2), dtype=np.float64)
            else:
                v["saturation"] = _output_saturation(scenario.output_activation, a)
                v["dead_fraction"] = np.zeros(S)
                v["act_grad_mean"] = np.full(S, np.nan)
            v["mean_abs_grad"] = gstats[l - 1].mean_abs
            v["max_abs_grad"] = gstats[l - 1].max_abs
            v["delta_ratio"] = _div(dn[l - 1], dn[L - 1])
            v["backward_gain"] = _div(dn[l - 1], dn[l]) if l < L else np.full(S, np.nan)
            v["update_ratio"] = (np.asarray(update[l - 1], dtype=np.float64) if update is not None
                                 else np.full(S, np.nan))
            out.append(LayerArrays(v, gstats[l - 1].nonfinite, gstats[l - 1].quantiles))
    return out


@dataclass
class WeightGradStats:
    """What the diagnostics need of one layer's dW (S, n_{l-1}, n_l): computed as backward produces it."""

    norm: np.ndarray          # (S,) ‖dW‖_F
    mean_abs: np.ndarray      # (S,)
    max_abs: np.ndarray       # (S,)
    nonfinite: np.ndarray     # (S,) bool: NaN/Inf in z_l, a_l, δ_l or dW_l
    quantiles: dict[str, float | None]


def dW_statistics(l: int, dW: np.ndarray, z: list[np.ndarray], a: list[np.ndarray],
                  delta: np.ndarray) -> WeightGradStats:
    """Statistics of layer l's weight gradient (engine.backward's reduce_dW): norms, |dW| mean, max, quantiles."""
    with np.errstate(all="ignore"):
        abs_dW = np.abs(dW)
        nonfinite = ~(np.isfinite(z[l - 1]).all(axis=(1, 2)) & np.isfinite(a[l]).all(axis=(1, 2))
                      & np.isfinite(delta).all(axis=(1, 2)) & np.isfinite(dW).all(axis=(1, 2)))
        absg = abs_dW[~nonfinite].ravel()
        if absg.size > QUANTILE_SAMPLE:
            absg = absg[:: -(-absg.size // QUANTILE_SAMPLE)]
        qs = np.quantile(absg, QUANTILES) if absg.size else [None] * len(QUANTILES)
        quant = {f"q{int(round(q * 100)):02d}": (float(x) if x is not None else None)
                 for q, x in zip(QUANTILES, qs, strict=True)}
        return WeightGradStats(_norm(dW, (1, 2)), abs_dW.mean(axis=(1, 2), dtype=np.float64),
                               abs_dW.max(axis=(1, 2)).astype(np.float64), nonfinite, quant)


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


def theory_for(scenario: Scenario, x: np.ndarray, delta_out: np.ndarray | None = None
               ) -> tuple[dict[str, Any], Any]:
    """Mean-field figures for the scenario (summary dict) and per-layer predictions (or None).

    delta_out: the output layer's δ (S, B, k), the boundary condition of the batch prediction of
    the weight-gradient ratio.
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
    pred = predict_layers(sizes, acts, sw2, sb2, input_sq) if L >= 1 else None
    info["gradient_ratio_model"] = "per-sample"
    if pred is not None and delta_out is not None and L > 1 and np.isfinite(delta_out).all():
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


# ---------------------------------------------------------------- the report


@dataclass
class Diagnosis:
    layers: list[LayerReport]
    summary: Summary
    findings: list[Finding]
    per_seed: dict[str, np.ndarray]


def diagnose(scenario: Scenario, params: Params, p: Pass, *, with_theory: bool = True,
             update_ratio: list[np.ndarray] | None = None) -> Diagnosis:
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
    theory, pred = theory_for(scenario, p.x, p.delta[-1]) if with_theory else ({"applies": False}, None)

    layers: list[LayerReport] = []
    for l, la in enumerate(arrays, start=1):
        stats = {k: Stat.of(v) for k, v in la.values.items()}
        med = {k: s.median for k, s in stats.items()}
        status = _status(med, bool(la.nonfinite.any()), diag, output=(l == L), batch=scenario.batch_size)
        layers.append(LayerReport(
            layer=l, fan_in=scenario.sizes[l - 1], fan_out=scenario.sizes[l],
            activation=scenario.layer_activation(l), status=status, stats=stats, grad_quantiles=la.quantiles,
            nonfinite_seeds=int(la.nonfinite.sum()),
            predicted_gradient_ratio=_clean(pred.gradient_ratio[l - 1]) if pred else None,
            predicted_delta_ratio=_clean(pred.delta_ratio[l - 1]) if pred else None))

    per_seed = {f"{k}{l}": la.values[k] for l, la in enumerate(arrays, start=1) for k in la.values}
    wgn = np.stack([la.values["weight_grad_norm"] for la in arrays])  # (L, S)
    with np.errstate(all="ignore"):
        spread = _div(wgn.max(axis=0), wgn.min(axis=0))
    overflow_seeds = np.stack([la.nonfinite for la in arrays]).any(axis=0)
    verdict = _verdict(layers)

    # backward gain: geometric mean over hidden layers, per seed; fitted rate over depth
    gains = np.stack([la.values["backward_gain"] for la in arrays[:-1]]) if L > 1 else np.zeros((0, 1))
    with np.errstate(all="ignore"):
        geo = np.exp(np.mean(np.log(gains), axis=0)) if L > 1 else np.full(1, np.nan)
        # between hidden layers (through hidden weights W_2..W_{L-1}); the output layer's σ_w² differs
        n_tr = max(L - 2, 1)
        measured_factor = np.exp(np.mean(np.log(gains[:n_tr] ** 2), axis=0)) if L > 1 else None
    mean_gain = Stat.of(geo).median
    extrapolation = _extrapolate(layers)
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
                      seeds=scenario.seeds, n_layers=L, overflow_seeds=int(overflow_seeds.sum()),
                      mean_backward_gain=mean_gain, extrapolation=extrapolation,
                      chi1=_clean(theory.get("chi1")), q_star=_clean(theory.get("q_star")), theory=theory, lr=lr)
    findings = find(scenario, params, p, layers, arrays, summary)
    return Diagnosis(layers, summary, findings, per_seed)


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
    pts = [(lay.layer, lay.median("delta_norm")) for lay in layers]
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


# ---------------------------------------------------------------- findings


def _fmt(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e4:
        return f"{x:.3g}"
    return f"{x:.2g}"


def _ranges(ls: list[int]) -> str:
    if not ls:
        return ""
    if len(ls) == 1:
        return f"layer {ls[0]}"
    if ls == list(range(ls[0], ls[-1] + 1)):
        return f"layers {ls[0]}–{ls[-1]}"
    return "layers " + ", ".join(map(str, ls))


def _hidden_layer(scenario: Scenario) -> tuple[int, int, float]:
    """fan_in, fan_out and σ_b² of a representative hidden layer (layer 2, or 1 in a one-hidden-layer net)."""
    l = 2 if scenario.depth >= 2 else 1
    fan_in, fan_out = scenario.sizes[l - 1], scenario.sizes[l]
    sb2 = bias_variance(scenario.bias_init.name, dict(scenario.bias_init.params), fan_in) if scenario.bias else 0.0
    return fan_in, fan_out, sb2


def _init_chi1(scenario: Scenario, activation: str, act_params: dict[str, Any], init: str,
               init_params: dict[str, Any] | None = None) -> tuple[float, float] | None:
    """σ_w² of a hidden layer under `init` and the mean-field χ₁ it gives `activation` at the scenario's σ_b²."""
    fan_in, fan_out, sb2 = _hidden_layer(scenario)
    var = INITS.get(init).variance(fan_in, fan_out, LayerContext(activation, dict(act_params)), **(init_params or {}))
    if var is None:
        return None
    sw2 = fan_in * float(var)
    return sw2, mean_field(activation, sw2, sb2, act_params).chi1


def _init_advice(scenario: Scenario, activation: str, act_params: dict[str, Any], inits: tuple[str, ...],
                 crit: float | None) -> str:
    """What the named inits give (σ_w², χ₁ computed for this activation and σ_b²) and the init at χ₁ = 1."""
    fan_in, _, _ = _hidden_layer(scenario)
    parts = []
    for name in inits:
        got = _init_chi1(scenario, activation, act_params, name)
        if got is not None:
            parts.append(f"{name} gives {activation} σ_w² = {_fmt(got[0])}, χ₁ = {_fmt(got[1])}")
    if crit is not None:
        parts.append(f"χ₁ = 1 exactly at σ_w² = {_fmt(crit)}: init {{scheme: normal, std: "
                     f"{math.sqrt(crit / fan_in):.4g}}} for fan_in {fan_in}")
    return " (mean-field: " + "; ".join(parts) + ")" if parts else ""


def _scenario_act(scenario: Scenario) -> tuple[str, dict[str, Any]]:
    comp = scenario.activations[0] if scenario.depth else None
    return (comp.name, dict(comp.params)) if comp else ("identity", {})


def _remedy_vanishing(scenario: Scenario, acts: set[str], crit: float | None, chi1: float | None = None) -> str:
    init = scenario.init.name
    act, act_params = _scenario_act(scenario)
    if acts & {"sigmoid"}:
        relu = _init_advice(scenario, "relu", {}, ("he_normal",), None)
        tanh = _init_advice(scenario, "tanh", {}, ("xavier_uniform",), None)
        return (f"use relu with he_normal init{relu}, or tanh with xavier_uniform{tanh}; sigmoid's derivative is "
                "at most 0.25, so a sigmoid layer passes back at most a quarter of what its weights pass back")
    if len(acts - {"identity"}) == 1 and act in acts:
        if act in ("relu", "leaky_relu", "elu", "gelu", "silu", "selu", "softplus"):
            candidates: tuple[str, ...] = ("he_normal",)
            why = " (ReLU-like units pass about half of their inputs, so the weights need about twice the variance)"
        elif act in ("tanh", "softsign", "hardtanh"):
            candidates, why = ("xavier_uniform",), ""
        else:
            candidates, why = ("xavier_uniform", "he_normal"), ""
        advice = _init_advice(scenario, act, act_params, candidates, crit)
        if chi1 is None and init not in ("orthogonal", "zeros", "constant"):  # theory withheld: the weights' own χ₁
            own = _init_chi1(scenario, act, act_params, init, dict(scenario.init.params))
            chi1 = own[1] if own else None
        if chi1 is not None and CHI1_CRITICAL_BAND[0] <= chi1 <= CHI1_CRITICAL_BAND[1]:
            return (f"the init is already near the critical σ_w² ({init}: χ₁ = {_fmt(chi1)}), so a different init "
                    "will not help: the gradient is lost elsewhere — see the dead-units and saturated-units "
                    "findings (biases that switch units off, inputs that saturate them), or use fewer layers")
        if chi1 is not None and chi1 > CHI1_CRITICAL_BAND[1]:
            return f"lower the init variance toward the critical σ_w² instead of {init}" + advice
        return f"raise the init variance toward the critical σ_w² instead of {init}{why}" + advice
    return "use an init whose σ_w² makes χ₁ ≈ 1 for each layer's activation (he_normal for ReLU, xavier for tanh), " \
           "or fewer layers"


def find(scenario: Scenario, params: Params, p: Pass, layers: list[LayerReport], arrays: list[LayerArrays],
         summary: Summary) -> list[Finding]:
    """Findings with stable codes, the layers concerned, a cause in numbers and a remedy."""
    out: list[Finding] = []
    L = scenario.n_layers
    diag = scenario.diagnostics
    hidden = layers[:-1]
    act_names = {scenario.layer_activation(l) for l in range(1, L)}

    # overflow: first layer (forward order) and first seed where NaN/Inf appears
    bad = [(lay.layer, np.flatnonzero(arrays[lay.layer - 1].nonfinite)) for lay in layers if lay.nonfinite_seeds]
    if bad:
        first_l, seeds_bad = bad[0]
        fwd = _first_nonfinite_forward(p)
        where = f"the forward pass at layer {fwd[0]} (seed {fwd[1]})" if fwd else (
            f"the backward pass at layer {first_l} (seed {int(seeds_bad[0])})")
        stats = ("no seed is finite, so there are no statistics" if summary.overflow_seeds >= scenario.seeds
                 else "statistics use the finite seeds only")
        # float64 is a remedy only for a float32 run; a float64 run has no wider dtype to move to
        wider = ", or use float64" if scenario.dtype == "float32" else ""
        out.append(Finding("overflow", "error", tuple(lay for lay, _ in bad),
                           f"NaN/Inf first appears in {where}; {summary.overflow_seeds} of {scenario.seeds} seeds "
                           f"are affected, {stats}",
                           "lower the init scale (e.g. xavier_uniform or he_normal instead of a large std), "
                           f"check the input scale{wider}"))

    # symmetric init
    if scenario.init.name in ("zeros", "constant"):
        out.append(Finding("symmetric-init", "error", tuple(range(1, L + 1)),
                           f"{scenario.init.name} init gives every hidden unit of a layer the same weights, so they "
                           "get the same gradient and stay identical; with zeros, hidden gradients are exactly 0",
                           "use a random init: he_normal for ReLU-like, xavier_uniform for tanh/sigmoid"))

    # vanishing / exploding
    van = [lay for lay in hidden if lay.status == "vanishing"]
    exp = [lay for lay in hidden if lay.status == "exploding"]
    first = layers[0]
    ratio1 = first.median("gradient_ratio")
    dratio1 = first.median("delta_ratio")
    gain = summary.mean_backward_gain
    chi1 = summary.chi1
    zero = _zero_gradient_layers(layers)
    gain_txt = (f"; each layer multiplies ‖δ‖ by {_fmt(gain)} on the way back (geometric mean)"
                if gain is not None and math.isfinite(gain) and gain > 0 else "")
    chi_txt = f"; mean-field χ₁ = {_fmt(chi1)} predicts a factor √χ₁ = {_fmt(math.sqrt(chi1))}" if chi1 else ""
    if zero and chi1 and chi1 >= CHI1_CRITICAL_BAND[0]:
        chi_txt = (f"; mean-field χ₁ = {_fmt(chi1)} predicts {_chi1_trend(chi1)}, but its Gaussian average does "
                   "not describe these exact zeros (see the note under mean-field)")
    crit = summary.theory.get("critical_sigma_w2")
    if van:
        got = (f"layer 1 gets {_fmt(ratio1)} of the output layer's weight gradient" if ratio1 is not None else
               "layer 1's weight-gradient ratio is undefined (the output layer's weight gradient is 0 too)")
        cause = [f"{got} and its δ is {_fmt(dratio1)} of the output's{gain_txt}{chi_txt}"]
        if zero:
            cause.insert(0, f"{_ranges(zero)} get exactly zero gradient (median over seeds)"
                         + _zero_cause(scenario, p, zero))
        dead_layers = [lay.layer for lay in hidden if lay.status == "dead"]
        if dead_layers:
            cause.insert(0, f"dead units in {_ranges(dead_layers)} pass no gradient back (see dead-units)")
        sig = [lay for lay in hidden if lay.activation == "sigmoid"]
        if sig:
            dmean = [lay.median("act_grad_mean") for lay in sig]
            prod = float(np.prod([d for d in dmean if d is not None]))
            cause.insert(0, f"{len(sig)} sigmoid layers: each σ' ≤ 0.25, measured mean σ' "
                         f"{_fmt(float(np.mean([d for d in dmean if d is not None])))}, product {_fmt(prod)} "
                         f"between layer 1 and the output (bound 0.25^{len(sig)} = {_fmt(0.25 ** len(sig))})")
        flat = _flat_weight_gradient(p, layers, diag)
        if flat:
            cause.append(flat)
        out.append(Finding("vanishing-gradient", "error", tuple(lay.layer for lay in van),
                           f"{_ranges([lay.layer for lay in van])} below the vanishing ratio "
                           f"{_fmt(diag['vanishing_ratio'])}: " + "; ".join(cause),
                           "use a batch of 2 or more samples, or data.center: false (centering one sample leaves 0)"
                           if not np.any(p.x) else _remedy_vanishing(scenario, act_names, crit, chi1)))
    if exp:
        sw2 = summary.theory.get("sigma_w2")
        std_txt = ""
        if scenario.init.name in ("normal", "uniform") and sw2 is not None:
            n = _hidden_layer(scenario)[0]
            std_txt = (f" With fan_in {n}, init std {_fmt(math.sqrt(sw2 / n))} gives σ_w² = fan_in·Var(W) = "
                       f"{_fmt(sw2)}.")
        act, act_params = _scenario_act(scenario)
        if act_names <= {"relu", "leaky_relu"}:
            target: tuple[str, ...] = ("he_normal",)
        elif act_names <= {"identity"}:
            target = ("lecun_normal",)
        else:
            target = ("xavier_uniform",)
        advice = _init_advice(scenario, act, act_params, target, crit) if len(act_names) == 1 else ""
        out.append(Finding("exploding-gradient", "error", tuple(lay.layer for lay in exp),
                           f"{_ranges([lay.layer for lay in exp])} above the exploding ratio "
                           f"{_fmt(diag['exploding_ratio'])}: layer 1's δ is {_fmt(dratio1)}× the output's, "
                           f"its weight gradient {_fmt(ratio1)}×{gain_txt}{chi_txt}.{std_txt}"
                           + (f" {flat[0].upper()}{flat[1:]}." if (flat := _flat_weight_gradient(p, layers, diag))
                              else ""),
                           f"use a smaller init scale: {' or '.join(target)}{advice}, or gradient clipping while "
                           "training"))

    # saturated / dead hidden units
    sat = [lay for lay in hidden if (lay.median("saturation") or 0) > diag["saturation_threshold"]]
    if sat:
        worst = max(sat, key=lambda lay: lay.median("saturation") or 0)
        out.append(Finding("saturated-units", "warning", tuple(lay.layer for lay in sat),
                           f"{_ranges([lay.layer for lay in sat])}: up to {_fmt(100 * (worst.median('saturation') or 0))}% "  # noqa: E501
                           f"of unit-samples have φ'(z) below 10% of its maximum (layer {worst.layer}: pre-activation "
                           f"std {_fmt(worst.median('preact_std'))}); little gradient passes through them",
                           "shrink the pre-activations: xavier init instead of a large std, zero-centered and "
                           "standardized inputs, or a non-saturating activation (relu + he_normal)"))
    dead = [lay for lay in hidden if (lay.median("dead_fraction") or 0) > DEAD_FINDING_FRACTION]
    if dead:
        worst = max(dead, key=lambda lay: lay.median("dead_fraction") or 0)
        frac = worst.median("dead_fraction") or 0.0
        bias_txt = ""
        if params.b is not None:
            bias_txt = f", mean bias {_fmt(float(np.mean(params.b[worst.layer - 1])))}"
        B = scenario.batch_size
        where = (f"{_ranges([lay.layer for lay in dead])}: up to {_fmt(100 * frac)}% of units are inactive for all "
                 f"{B} sample{'s' if B != 1 else ''} (layer {worst.layer}: pre-activation mean "
                 f"{_fmt(worst.median('preact_mean'))}{bias_txt})")
        cos = _sample_cosine(p.a[worst.layer - 1])
        if B < MIN_DEAD_SAMPLES:
            out.append(Finding("dead-units", "info", tuple(lay.layer for lay in dead),
                               f"{where}; with {B} sample{'s' if B != 1 else ''} this does not show dead units: a "
                               f"live unit active for half of the inputs is off for all of them with probability "
                               f"2^-{B} = {_fmt(0.5 ** B)}; telling dead units from chance needs at least "
                               f"{MIN_DEAD_SAMPLES} samples (2^-{MIN_DEAD_SAMPLES} = "
                               f"{_fmt(0.5 ** MIN_DEAD_SAMPLES)}), so no layer is called dead",
                               f"set data.batch_size to {MIN_DEAD_SAMPLES} or more to measure dead units"))
        elif cos > 0.8 and frac <= diag["dead_threshold"]:
            out.append(Finding("dead-units", "info", tuple(lay.layer for lay in dead),
                               f"{where}; the samples reaching layer {worst.layer} are nearly collinear (mean cosine "
                               f"{_fmt(cos)}), so each unit is on or off for all of them at once (correlations grow "
                               "with depth in ReLU nets): a unit off for this batch is not shown to be off for "
                               "other inputs",
                               "usually harmless at initialization; if it matters use fewer layers, residual "
                               "connections, or leaky_relu/gelu"))
        else:
            severity = "error" if frac > diag["dead_threshold"] else "warning"
            out.append(Finding("dead-units", severity, tuple(lay.layer for lay in dead),
                               f"{where}; they get no gradient from this data and may never recover",
                               "use leaky_relu (its units always pass negative_slope·δ back, so none is dead), "
                               "keep bias_init at zeros, and he_normal init"))

    # the output: MSE on probabilities, saturated outputs
    loss = LOSSES.get(scenario.loss.name)
    head = scenario.output_activation
    out_layer = layers[-1]
    if not loss.classification and head in ("sigmoid", "softmax"):
        yhat = p.a[-1]
        factor = float(np.mean(yhat * (1.0 - yhat)))
        better = "cross_entropy" if head == "softmax" else "bce"
        wrong = _confidently_wrong(p, head)
        out.append(Finding("mse-on-probabilities", "warning", (L,),
                           f"{scenario.loss.name} on {head} outputs: ∂L/∂z carries the factor ŷ(1-ŷ) (mean "
                           f"{_fmt(factor)} here, at most 0.25), so the gradient vanishes exactly when a prediction "
                           f"is confidently wrong ({_fmt(100 * wrong)}% of samples give the true class p < 0.1)",
                           f"use {better}: its gradient at the logits is ŷ - y, which stays near -1 when the "
                           "prediction is confidently wrong"))
    if head in ("sigmoid", "softmax") and (out_layer.median("saturation") or 0) > diag["saturation_threshold"]:
        pinned = ("samples have a largest probability above 0.99" if head == "softmax"
                  else "unit-samples have ŷ(1-ŷ) below 0.025")
        out.append(Finding("saturated-output", "warning", (L,),
                           f"{_fmt(100 * (out_layer.median('saturation') or 0))}% of {head} {pinned}: outputs "
                           f"pinned near 0/1 at initialization (logit std {_fmt(out_layer.median('preact_std'))})",
                           "lower the init scale so that the initial logits are O(1): xavier_uniform (σ_w² ≈ 1 "
                           "per layer) instead of a large std, and standardized inputs"))

    # inputs
    x = p.x
    col_mean, col_std = x.mean(axis=0), x.std(axis=0)
    rel = float(np.median(np.abs(col_mean) / (col_std + 1e-12)))
    if rel > NON_CENTERED_RATIO:
        same = _one_sign_fraction(p.dW[0])
        n_in = scenario.sizes[0]
        out.append(Finding("non-centered-inputs", "warning", (1,),
                           f"input features have |mean|/std = {_fmt(rel)} (median over features), "
                           f"{_fmt(100 * float(np.mean(x > 0)))}% of the input values are positive: for one sample "
                           "with positive inputs all of a first-layer unit's weight gradients x_i δ_j share the sign "
                           "of δ_j; over the batch, all "
                           f"{n_in} entries of ∂L/∂W_:j = Σ_b x_bi δ_bj share one sign for {_fmt(100 * same)}% of "
                           "the first-layer units (median over seeds; for zero-mean inputs of random sign "
                           f"about 2^(1-{n_in})), so those units' weights can only all grow or all shrink together "
                           "in a step (zig-zag updates)",
                           "set data.center: true (subtract the mean) or standardize the inputs"))

    # forward signal
    if scenario.depth >= 2:
        s_first = hidden[0].median("preact_std")
        s_last = hidden[-1].median("preact_std")
        if s_first and s_last is not None and s_first > 0:
            r = s_last / s_first
            fwd_act, fwd_params = _scenario_act(scenario)
            fwd_advice = ""
            if len(act_names - {"identity"}) <= 1 and (r < FORWARD_RATIO_LOW or r > FORWARD_RATIO_HIGH):
                fwd_advice = _init_advice(scenario, fwd_act, fwd_params,
                                          ("he_normal",) if fwd_act in ("relu", "leaky_relu") else ("xavier_uniform",),
                                          summary.theory.get("critical_sigma_w2"))
            if r < FORWARD_RATIO_LOW:
                out.append(Finding("forward-collapse", "warning", tuple(lay.layer for lay in hidden),
                                   f"the pre-activation std falls from {_fmt(s_first)} (layer 1) to {_fmt(s_last)} "
                                   f"(layer {hidden[-1].layer}), a factor {_fmt(r)}: deep layers see almost no "
                                   "signal",
                                   "raise the init variance to the activation's critical value (he_normal for "
                                   "ReLU, xavier for tanh)" + fwd_advice))
            elif r > FORWARD_RATIO_HIGH:
                out.append(Finding("forward-explosion", "warning", tuple(lay.layer for lay in hidden),
                                   f"the pre-activation std grows from {_fmt(s_first)} (layer 1) to {_fmt(s_last)} "
                                   f"(layer {hidden[-1].layer}), a factor {_fmt(r)}",
                                   "lower the init variance (he_normal for ReLU, xavier for tanh)" + fwd_advice))

    # update ratio
    if summary.lr is not None:
        ur = [(lay.layer, lay.median("update_ratio")) for lay in layers]
        guide = diag["update_ratio_guide"]
        off = [(l, u) for l, u in ur if u is not None and (u > 10 * guide or u < 0.01 * guide)]
        moving = [(l, u) for l, u in off if u > 0]
        still = [l for l, u in off if u == 0]
        opt = scenario.train["optimizer"] if scenario.train else "optimizer"
        if moving:
            l0, u0 = max(moving, key=lambda t: abs(math.log10(t[1] / guide)))
            rest = [l for l, _ in off if l != l0]
            band = f"{_fmt(guide / 100)}–{_fmt(10 * guide)}"
            out.append(Finding("update-ratio", "info", tuple(l for l, _ in off),
                               f"the first {opt} step changes layer {l0}'s weights by ‖ΔW‖/‖W‖ = {_fmt(u0)} "
                               f"(lr {_fmt(summary.lr)}, median over seeds), against the usual guide of about "
                               f"{_fmt(guide)}" + (f"; also outside {band}: {_ranges(rest)}" if rest else ""),
                               f"lr {summary.lr * guide / u0:.3g} would make layer {l0}'s first step "
                               f"{_fmt(guide)} (the first step of sgd, momentum and adam is proportional to lr); "
                               "the guide is a rule of thumb, not a promise that training goes better"))
        elif still:
            out.append(Finding("update-ratio", "info", tuple(still),
                               f"the first {opt} step leaves the weights of {_ranges(still)} unchanged "
                               "(‖ΔW‖/‖W‖ = 0: their gradient is zero)",
                               "no learning rate moves a layer whose gradient is zero: see the other findings"))
    return out


def _zero_gradient_layers(layers: list[LayerReport]) -> list[int]:
    """Hidden layers whose median ‖∂L/∂W‖ and ‖δ‖ are exactly 0."""
    return [lay.layer for lay in layers[:-1]
            if lay.median("weight_grad_norm") == 0.0 and lay.median("delta_norm") == 0.0]


def _exact_zero_derivative(scenario: Scenario, p: Pass) -> tuple[float, str, float | None] | None:
    """Fraction of hidden unit-samples of saturating activations whose φ'(z) is exactly 0 in the array's dtype,
    the activation, and the smallest |z| from which its φ' rounds to 0 (None if it never does)."""
    fracs, name = [], ""
    for l in range(1, scenario.depth + 1):
        comp = scenario.activations[l - 1]
        act = ACTIVATIONS.get(comp.name)
        if not act.saturating:
            continue
        with np.errstate(all="ignore"):
            fracs.append(float(np.mean(act.grad(p.z[l - 1], p.a[l], **comp.params) == 0)))
        name = comp.name
    if not fracs or max(fracs) == 0.0:
        return None
    comp = next(c for c in scenario.activations if c.name == name)
    act = ACTIVATIONS.get(name)
    zs = np.linspace(0.0, 60.0, 600_001, dtype=p.z[0].dtype)
    with np.errstate(all="ignore"):
        g = act.grad(zs, act.fn(zs, **comp.params), **comp.params)
    nz = np.flatnonzero(g == 0)
    return float(np.mean(fracs)), name, (float(zs[nz[0]]) if nz.size else None)


_ZERO_INPUT = ("the input batch is exactly 0 (data.center subtracts the batch mean: a batch of one sample becomes "
               "0), so ∂L/∂W_1 = xᵀδ_1 = 0, and with zero biases every pre-activation is 0, where a ReLU-like "
               "φ'(0) = 0 cuts off δ")


def _chi1_trend(chi1: float) -> str:
    if chi1 > CHI1_CRITICAL_BAND[1]:
        return "growth"
    return "decay" if chi1 < CHI1_CRITICAL_BAND[0] else "a steady gradient"


def _zero_cause(scenario: Scenario, p: Pass, zero: list[int]) -> str:
    if not np.any(p.x):
        return ": " + _ZERO_INPUT
    found = _exact_zero_derivative(scenario, p)
    if found is None:
        return ""
    frac, name, thr = found
    where = f" ({name}' rounds to 0 for |z| ≥ {thr:.4g})" if thr is not None else ""
    return (f": φ'(z) is exactly 0 in {p.z[0].dtype} for {_fmt(100 * frac)}% of the hidden unit-samples{where}, "
            "and δ is exactly 0 below any layer where all of a sample's units have φ' = 0")


def _flat_weight_gradient(p: Pass, layers: list[LayerReport], diag: dict[str, Any]) -> str:
    """Why layer 1's weight gradient can stay flat while its δ vanishes (Glorot & Bengio 2010), in numbers."""
    r, d = layers[0].median("gradient_ratio"), layers[0].median("delta_ratio")
    if len(layers) < 2 or not r or not d or max(r / d, d / r) < RATIO_DISAGREEMENT:
        return ""
    fwd = Stat.of(_div(np.linalg.norm(np.asarray(p.x, dtype=np.float64)), _norm(p.a[-2], (1, 2)))).median
    return (f"layer 1's weight gradient ({_fmt(r)} of the output layer's) does not follow its δ ({_fmt(d)}) "
            "because ∂L/∂W_l = a_{l-1}ᵀ δ_l also scales with the layer's input, and the forward signal changes "
            f"from the input up by about the inverse factor: ‖x‖/‖a_{len(layers) - 1}‖ = {_fmt(fwd)} against "
            f"1/(δ ratio) = {_fmt(1 / d)} (median over seeds; Glorot & Bengio 2010): at this init all layers' "
            "weight gradients are similar, while the back-propagated δ is not")


def _one_sign_fraction(dW1: np.ndarray) -> float:
    """Median over seeds of the fraction of first-layer units j whose ∂L/∂W_ij (all i) share one strict sign."""
    pos = (dW1 > 0).all(axis=1)
    neg = (dW1 < 0).all(axis=1)
    return float(np.median((pos | neg).mean(axis=1)))


def _sample_cosine(a: np.ndarray) -> float:
    """Mean cosine similarity between different samples' input vectors a (S, B, n) or (B, n)."""
    a = a if a.ndim == 3 else a[None]
    if a.shape[1] < 2:
        return 0.0
    norm = np.linalg.norm(a, axis=-1, keepdims=True)
    u = np.divide(a, norm, out=np.zeros_like(a), where=norm > 0)
    g = u @ np.swapaxes(u, -1, -2)
    B = a.shape[1]
    off = (g.sum(axis=(1, 2)) - np.trace(g, axis1=1, axis2=2)) / (B * (B - 1))
    return float(np.median(off))


def _confidently_wrong(p: Pass, head: str) -> float:
    yhat = p.a[-1]
    t = p.target
    if head == "softmax" and t.ndim == 2:
        true_p = (yhat * t[None]).sum(axis=-1)
        return float(np.mean(true_p < 0.1))
    if head == "sigmoid" and t.ndim == 2:
        return float(np.mean(np.abs(yhat - t[None]) > 0.9))
    return 0.0


def _first_nonfinite_forward(p: Pass) -> tuple[int, int] | None:
    for l, z in enumerate(p.z, start=1):
        bad = ~np.isfinite(z).all(axis=(1, 2)) | ~np.isfinite(p.a[l]).all(axis=(1, 2))
        if bad.any():
            return l, int(np.flatnonzero(bad)[0])
    return None
