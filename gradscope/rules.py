"""Findings: one rule per finding code, in a registry that `find` loops over in a fixed order.

A rule is a function of a context (what the analysis measured) that returns a `Finding`, several, or
None; it is registered with the code(s) it may emit and the one-line description of each, which is
the code table (`CODES`, listed in the README). Its thresholds are named constants beside it, and its
prose is written next to the numbers it cites. Adding a finding is one function and one decorator:

    NEW_THRESHOLD = 0.5  # what crossing it means, in one line

    @rule({"my-code": "one line for the code table"})
    def my_code(c: PassContext) -> Finding | None:
        frac = c.hidden[0].median("saturation") or 0.0
        if frac <= NEW_THRESHOLD:
            return None
        return Finding("my-code", "warning", (1,), f"cause citing {_fmt(frac)}", "remedy that moves it")

`find` runs the rules in the order they are defined in this module, which is the order of the report.
A test checks that every code a module constructs is registered here (and README lists each code).

Stages: "pass" rules read one forward/backward pass (`PassContext`, built once per diagnosis with the
shared derived values: χ₁, the critical σ_w², the backward gain, ...); "jacobian" rules read the
input–output Jacobian report (`JacobianContext`). Training findings are computed inside the training
loop's dynamics (gradscope.training) from its trace and its re-runs at other learning rates; their
codes are declared here (`declare`) so that the code table is still this one registry.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from .activations import ACTIVATIONS
from .engine import Params, Pass
from .inits import INITS, LayerContext, bias_variance
from .layers import Norm, Residual, dropout_keep, walk
from .losses import LOSSES
from .numerics import _div, _norm, median
from .report import Finding, LayerReport, Stat, Summary
from .scenario import Scenario
from .theory import mean_field

if TYPE_CHECKING:  # the Jacobian rules import jacobian when they run: a run without the analysis never does
    from .jacobian import JacobianReport

STAGES = ("pass", "jacobian", "training")

# ---------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Rule:
    """One finding rule: the codes it may emit (code → description), its stage, and its check.

    check is None for codes produced outside the registry (their `producer` module computes them).
    """

    name: str
    stage: str
    codes: dict[str, str]
    check: Callable[[Any], Finding | Iterable[Finding] | None] | None
    producer: str


class Rules:
    """The registry: rules in registration order, which is the order their findings are reported in."""

    def __init__(self) -> None:
        self._rules: list[Rule] = []

    def register(self, codes: dict[str, str], stage: str = "pass"
                 ) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
        """Decorator: register `check` for `codes` (code → one-line description) at `stage`."""
        def add(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
            self._add(Rule(check.__name__, stage, dict(codes), check, check.__module__))
            return check
        return add

    def declare(self, codes: dict[str, str], stage: str, producer: str) -> None:
        """Codes whose findings `producer` (a module name) computes itself: listed, not run."""
        self._add(Rule(producer, stage, dict(codes), None, producer))

    def _add(self, r: Rule) -> None:
        if r.stage not in STAGES:
            raise ValueError(f"rule {r.name}: unknown stage {r.stage!r} (known: {', '.join(STAGES)})")
        taken = set(r.codes) & set(self.codes)
        if taken:
            raise ValueError(f"rule {r.name}: code(s) {', '.join(sorted(taken))} already registered")
        self._rules.append(r)

    def __iter__(self) -> Any:
        return iter(self._rules)

    @property
    def codes(self) -> dict[str, str]:
        """code → description, in registration order (the code table)."""
        return {code: text for r in self._rules for code, text in r.codes.items()}

    def run(self, stage: str, ctx: Any) -> list[Finding]:
        """Every rule of `stage` in registration order; each may only emit the codes it registered."""
        out: list[Finding] = []
        for r in self._rules:
            if r.stage != stage or r.check is None:
                continue
            got = r.check(ctx)
            found = [] if got is None else [got] if isinstance(got, Finding) else list(got)
            for f in found:
                if f.code not in r.codes:
                    raise AssertionError(f"rule {r.name} emitted {f.code!r}, registered: {', '.join(r.codes)}")
            out.extend(found)
        return out


RULES = Rules()
rule = RULES.register


# ---------------------------------------------------------------- what the rules read


@dataclass(frozen=True)
class PassContext:
    """One diagnosed pass: the scenario, its weights, the pass's arrays, the layer reports and summary.

    Derived values shared by several rules are computed once (cached properties).
    """

    scenario: Scenario
    params: Params
    p: Pass
    layers: list[LayerReport]
    arrays: list[Any]        # diagnostics.LayerArrays per layer
    summary: Summary

    @property
    def L(self) -> int:
        return self.scenario.n_layers

    @property
    def diag(self) -> dict[str, Any]:
        """The scenario's `diagnostics:` thresholds (vanishing_ratio, exploding_ratio, ...)."""
        return self.scenario.diagnostics

    @property
    def hidden(self) -> list[LayerReport]:
        return self.layers[:-1]

    @cached_property
    def act_names(self) -> set[str]:
        """The activations of the hidden layers."""
        return {self.scenario.layer_activation(l) for l in range(1, self.L)}

    @property
    def ratio1(self) -> float | None:
        """Layer 1's weight-gradient ratio ‖∂L/∂W_1‖/‖∂L/∂W_L‖ (median over seeds)."""
        return self.layers[0].median("gradient_ratio")

    @property
    def dratio1(self) -> float | None:
        """Layer 1's δ ratio ‖δ_1‖/‖δ_L‖ (median over seeds)."""
        return self.layers[0].median("delta_ratio")

    @property
    def chi1(self) -> float | None:
        return self.summary.chi1

    @property
    def crit(self) -> float | None:
        """The mean-field critical σ_w² (χ₁ = 1), when the theory applies."""
        return self.summary.theory.get("critical_sigma_w2")

    @cached_property
    def zero(self) -> list[int]:
        """Hidden layers whose gradient is exactly zero (median over seeds)."""
        return _zero_gradient_layers(self.layers)

    @cached_property
    def gain_txt(self) -> str:
        """The measured backward gain per layer, as a clause."""
        gain = self.summary.mean_backward_gain
        return (f"; each layer multiplies ‖δ‖ by {_fmt(gain)} on the way back (geometric mean)"
                if gain is not None and math.isfinite(gain) and gain > 0 else "")

    @cached_property
    def chi_txt(self) -> str:
        """What mean-field χ₁ predicts for the backward gain, as a clause."""
        chi1 = self.chi1
        chi_txt = f"; mean-field χ₁ = {_fmt(chi1)} predicts a factor √χ₁ = {_fmt(math.sqrt(chi1))}" if chi1 else ""
        if self.zero and chi1 and chi1 >= CHI1_CRITICAL_BAND[0]:
            chi_txt = (f"; mean-field χ₁ = {_fmt(chi1)} predicts {_chi1_trend(chi1)}, but its Gaussian average does "
                       "not describe these exact zeros (see the note under mean-field)")
        return chi_txt

    @cached_property
    def flat(self) -> str:
        """Why layer 1's weight gradient stays flat while its δ does not ('' when the two ratios agree)."""
        return _flat_weight_gradient(self.p, self.layers, self.diag)


@dataclass(frozen=True)
class JacobianContext:
    """The input–output Jacobian report of a pass, and its scenario."""

    scenario: Scenario
    rep: JacobianReport

    @property
    def j(self) -> dict[str, Any]:
        return self.rep.summary

    @property
    def layers(self) -> tuple[int, ...]:
        return tuple(range(1, int(self.j["layer"]) + 1))

    @property
    def act(self) -> str | None:
        """The hidden activation when all hidden layers share one, else None."""
        acts = {c.name for c in self.scenario.activations}
        return next(iter(acts)) if len(acts) == 1 else None


def find(scenario: Scenario, params: Params, p: Pass, layers: list[LayerReport], arrays: list[Any],
         summary: Summary) -> list[Finding]:
    """Findings of one pass with stable codes, the layers concerned, a cause in numbers and a remedy."""
    return RULES.run("pass", PassContext(scenario, params, p, layers, arrays, summary))


def jacobian_findings(scenario: Scenario, rep: JacobianReport) -> list[Finding]:
    """Findings about the input–output Jacobian's spectrum."""
    return RULES.run("jacobian", JacobianContext(scenario, rep))


# ---------------------------------------------------------------- shared thresholds

CHI1_CRITICAL_BAND = (0.9, 1.1)  # an init whose χ₁ is in this band is "at the critical σ_w²" for the remedies
RATIO_DISAGREEMENT = 10.0     # δ ratio and weight-gradient ratio this far apart: the forward signal explains it


# ---------------------------------------------------------------- pass rules, in report order


@rule({"overflow": "NaN or Inf in the forward or backward pass"})
def overflow(c: PassContext) -> Finding | None:
    """First layer (forward order) and first seed where NaN/Inf appears."""
    scenario, summary = c.scenario, c.summary
    bad = [(lay.layer, np.flatnonzero(c.arrays[lay.index - 1].nonfinite)) for lay in c.layers if lay.nonfinite_seeds]
    if not bad:
        return None
    first_l, seeds_bad = bad[0]
    fwd = _first_nonfinite_forward(c.p)
    where = f"the forward pass at layer {fwd[0]} (seed {fwd[1]})" if fwd else (
        f"the backward pass at layer {first_l} (seed {int(seeds_bad[0])})")
    stats = ("no seed is finite, so there are no statistics" if summary.overflow_seeds >= scenario.seeds
             else "statistics use the finite seeds only")
    # float64 is a remedy only for a float32 run; a float64 run has no wider dtype to move to
    wider = ", or use float64" if scenario.dtype == "float32" else ""
    return Finding("overflow", "error", tuple(lay for lay, _ in bad),
                   f"NaN/Inf first appears in {where}; {summary.overflow_seeds} of {scenario.seeds} seeds "
                   f"are affected, {stats}",
                   "lower the init scale (e.g. xavier_uniform or he_normal instead of a large std), "
                   f"check the input scale{wider}")


SYMMETRIC_INITS = ("zeros", "constant")  # inits that give every unit of a layer the same weights


@rule({"symmetric-init": "constant initialization: all units of a layer stay identical"})
def symmetric_init(c: PassContext) -> Finding | None:
    scenario = c.scenario
    if scenario.init.name not in SYMMETRIC_INITS:
        return None
    return Finding("symmetric-init", "error", tuple(lay.layer for lay in c.layers),
                   f"{scenario.init.name} init gives every hidden unit of a layer the same weights, so they "
                   "get the same gradient and stay identical; with zeros, hidden gradients are exactly 0",
                   "use a random init: he_normal for ReLU-like, xavier_uniform for tanh/sigmoid")


SIGMOID_MAX_GRAD = 0.25  # σ'(z) = σ(z)(1 - σ(z)) ≤ 1/4


@rule({"vanishing-gradient": "early layers get a tiny fraction of the output layer's gradient"})
def vanishing_gradient(c: PassContext) -> Finding | None:
    """Hidden layers with status `vanishing` (below diagnostics.vanishing_ratio), and why."""
    scenario, p, hidden, diag = c.scenario, c.p, c.hidden, c.diag
    van = [lay for lay in hidden if lay.status == "vanishing"]
    if not van:
        return None
    ratio1, dratio1, zero = c.ratio1, c.dratio1, c.zero
    first = c.layers[0].layer
    got = (f"layer {first} gets {_fmt(ratio1)} of the output layer's weight gradient" if ratio1 is not None else
           f"layer {first}'s weight-gradient ratio is undefined (the output layer's weight gradient is 0 too)")
    cause = [f"{got} and its δ is {_fmt(dratio1)} of the output's{c.gain_txt}{c.chi_txt}"]
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
        cause.insert(0, f"{len(sig)} sigmoid layers: each σ' ≤ {SIGMOID_MAX_GRAD}, measured mean σ' "
                     f"{_fmt(float(np.mean([d for d in dmean if d is not None])))}, product {_fmt(prod)} "
                     f"between layer 1 and the output (bound {SIGMOID_MAX_GRAD}^{len(sig)} = "
                     f"{_fmt(SIGMOID_MAX_GRAD ** len(sig))})")
    if c.flat:
        cause.append(c.flat)
    return Finding("vanishing-gradient", "error", tuple(lay.layer for lay in van),
                   f"{_ranges([lay.layer for lay in van])} below the vanishing ratio "
                   f"{_fmt(diag['vanishing_ratio'])}: " + "; ".join(cause),
                   "use a batch of 2 or more samples, or data.center: false (centering one sample leaves 0)"
                   if not np.any(p.x) else _remedy_vanishing(scenario, c.act_names, c.crit, c.chi1))


@rule({"exploding-gradient": "early layers get a huge multiple of the output layer's gradient"})
def exploding_gradient(c: PassContext) -> Finding | None:
    """Hidden layers with status `exploding` (above diagnostics.exploding_ratio), and the init that tames them."""
    scenario, act_names, crit = c.scenario, c.act_names, c.crit
    exp = [lay for lay in c.hidden if lay.status == "exploding"]
    if not exp:
        return None
    sw2 = c.summary.theory.get("sigma_w2")
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
    names = " or ".join(target)
    if _hidden_keep(scenario) < 1 and crit is not None:  # dropout moved the critical init: name it, not He/Xavier
        names = f"init {{scheme: normal, std: {math.sqrt(crit / _hidden_layer(scenario)[0]):.4g}}}"
    hint = f"use a smaller init scale: {names}{advice}, or gradient clipping while training"
    structural = batchnorm_gradient_explosion(c) or residual_branch_scale(c)
    if structural is not None:  # the init scale does not set this gradient: the network's structure does
        hint = f"{structural.hint} (see {structural.code}; a smaller init scale does not change this gradient)"
    flat = c.flat
    return Finding("exploding-gradient", "error", tuple(lay.layer for lay in exp),
                   f"{_ranges([lay.layer for lay in exp])} above the exploding ratio "
                   f"{_fmt(c.diag['exploding_ratio'])}: layer {c.layers[0].layer}'s δ is {_fmt(c.dratio1)}× the "
                   "output's, "
                   f"its weight gradient {_fmt(c.ratio1)}×{c.gain_txt}{c.chi_txt}.{std_txt}"
                   + (f" {flat[0].upper()}{flat[1:]}." if flat else ""),
                   hint)


@rule({"saturated-units": "many hidden units sit in the flat region of their activation"})
def saturated_units(c: PassContext) -> Finding | None:
    """Hidden layers whose saturated unit-sample fraction is above diagnostics.saturation_threshold."""
    sat = [lay for lay in c.hidden if (lay.median("saturation") or 0) > c.diag["saturation_threshold"]]
    if not sat:
        return None
    worst = max(sat, key=lambda lay: lay.median("saturation") or 0)
    return Finding("saturated-units", "warning", tuple(lay.layer for lay in sat),
                   f"{_ranges([lay.layer for lay in sat])}: up to {_fmt(100 * (worst.median('saturation') or 0))}% "
                   f"of unit-samples have φ'(z) below 10% of its maximum (layer {worst.layer}: pre-activation "
                   f"std {_fmt(worst.median('preact_std'))}); little gradient passes through them",
                   "shrink the pre-activations: xavier init instead of a large std, zero-centered and "
                   "standardized inputs, or a non-saturating activation (relu + he_normal)")


# A ReLU-like unit that is active for about half of the inputs (zero-mean pre-activation) is off for all B
# independent samples with probability 2^-B; from 10 samples on that is ≤ 2^-10 ≈ 0.1%, far below the
# fractions the dead-unit rules act on (DEAD_FINDING_FRACTION, dead_threshold). With fewer samples a unit
# inactive for the whole batch is not evidence of a dead unit: no `dead` status, only an info finding.
MIN_DEAD_SAMPLES = 10
DEAD_FINDING_FRACTION = 0.1   # dead-units is reported from this median fraction of dead units in a layer
COLLINEAR_COSINE = 0.8        # samples whose mean cosine exceeds this switch units on/off together


@rule({"dead-units": "ReLU-like units inactive for the whole batch"})
def dead_units(c: PassContext) -> Finding | None:
    """Hidden layers with more than DEAD_FINDING_FRACTION dead units; error above diagnostics.dead_threshold."""
    scenario, params, diag = c.scenario, c.params, c.diag
    dead = [lay for lay in c.hidden if (lay.median("dead_fraction") or 0) > DEAD_FINDING_FRACTION]
    if not dead:
        return None
    worst = max(dead, key=lambda lay: lay.median("dead_fraction") or 0)
    frac = worst.median("dead_fraction") or 0.0
    bias_txt = ""
    if params.b is not None:
        bias_txt = f", mean bias {_fmt(float(np.mean(params.b[worst.index - 1])))}"
    B = scenario.batch_size
    where = (f"{_ranges([lay.layer for lay in dead])}: up to {_fmt(100 * frac)}% of units are inactive for all "
             f"{B} sample{'s' if B != 1 else ''} (layer {worst.layer}: pre-activation mean "
             f"{_fmt(worst.median('preact_mean'))}{bias_txt})")
    cos = _sample_cosine(c.p.a[worst.index - 1])
    if B < MIN_DEAD_SAMPLES:
        return Finding("dead-units", "info", tuple(lay.layer for lay in dead),
                       f"{where}; with {B} sample{'s' if B != 1 else ''} this does not show dead units: a "
                       f"live unit active for half of the inputs is off for all of them with probability "
                       f"2^-{B} = {_fmt(0.5 ** B)}; telling dead units from chance needs at least "
                       f"{MIN_DEAD_SAMPLES} samples (2^-{MIN_DEAD_SAMPLES} = "
                       f"{_fmt(0.5 ** MIN_DEAD_SAMPLES)}), so no layer is called dead",
                       f"set data.batch_size to {MIN_DEAD_SAMPLES} or more to measure dead units")
    if cos > COLLINEAR_COSINE and frac <= diag["dead_threshold"]:
        return Finding("dead-units", "info", tuple(lay.layer for lay in dead),
                       f"{where}; the samples reaching layer {worst.layer} are nearly collinear (mean cosine "
                       f"{_fmt(cos)}), so each unit is on or off for all of them at once (correlations grow "
                       "with depth in ReLU nets): a unit off for this batch is not shown to be off for "
                       "other inputs",
                       "usually harmless at initialization; if it matters use fewer layers, residual "
                       "connections, or leaky_relu/gelu")
    severity = "error" if frac > diag["dead_threshold"] else "warning"
    return Finding("dead-units", severity, tuple(lay.layer for lay in dead),
                   f"{where}; they get no gradient from this data and may never recover",
                   "use leaky_relu (its units always pass negative_slope·δ back, so none is dead), "
                   "keep bias_init at zeros, and he_normal init")


PROBABILITY_HEADS = ("sigmoid", "softmax")
CONFIDENTLY_WRONG_P = 0.1  # a prediction is confidently wrong when it gives the true class p below this


@rule({"mse-on-probabilities": "MSE/MAE/Huber on sigmoid/softmax outputs: the gradient carries ŷ(1-ŷ)"})
def mse_on_probabilities(c: PassContext) -> Finding | None:
    """A regression loss on a probability head: ∂L/∂z carries ŷ(1-ŷ) ≤ 1/4."""
    scenario, p = c.scenario, c.p
    head = scenario.output_activation
    if LOSSES.get(scenario.loss.name).classification or head not in PROBABILITY_HEADS:
        return None
    yhat = p.a[-1]
    factor = float(np.mean(yhat * (1.0 - yhat)))
    better = "cross_entropy" if head == "softmax" else "bce"
    wrong = _confidently_wrong(p, head)
    return Finding("mse-on-probabilities", "warning", (c.layers[-1].layer,),
                   f"{scenario.loss.name} on {head} outputs: ∂L/∂z carries the factor ŷ(1-ŷ) (mean "
                   f"{_fmt(factor)} here, at most 0.25), so the gradient vanishes exactly when a prediction "
                   f"is confidently wrong ({_fmt(100 * wrong)}% of samples give the true class "
                   f"p < {CONFIDENTLY_WRONG_P:g})",
                   f"use {better}: its gradient at the logits is ŷ - y, which stays near -1 when the "
                   "prediction is confidently wrong")


@rule({"saturated-output": "output probabilities pinned near 0/1"})
def saturated_output(c: PassContext) -> Finding | None:
    """A probability head whose saturated fraction is above diagnostics.saturation_threshold."""
    head = c.scenario.output_activation
    out_layer = c.layers[-1]
    if head not in PROBABILITY_HEADS or (out_layer.median("saturation") or 0) <= c.diag["saturation_threshold"]:
        return None
    pinned = ("samples have a largest probability above 0.99" if head == "softmax"
              else "unit-samples have ŷ(1-ŷ) below 0.025")
    return Finding("saturated-output", "warning", (c.layers[-1].layer,),
                   f"{_fmt(100 * (out_layer.median('saturation') or 0))}% of {head} {pinned}: outputs "
                   f"pinned near 0/1 at initialization (logit std {_fmt(out_layer.median('preact_std'))})",
                   "lower the init scale so that the initial logits are O(1): xavier_uniform (σ_w² ≈ 1 "
                   "per layer) instead of a large std, and standardized inputs")


NON_CENTERED_RATIO = 0.5      # non-centered-inputs: median over features of |mean|/std above this


@rule({"non-centered-inputs": "inputs are far from zero-mean"})
def non_centered_inputs(c: PassContext) -> Finding | None:
    """Input features whose median |mean|/std exceeds NON_CENTERED_RATIO: one-sign first-layer gradients."""
    x = c.p.x
    col_mean, col_std = x.mean(axis=0), x.std(axis=0)
    rel = float(median(np.abs(col_mean) / (col_std + 1e-12)))
    if rel <= NON_CENTERED_RATIO:
        return None
    same = _one_sign_fraction(c.p.dW[0])
    n_in = c.scenario.sizes[0]
    return Finding("non-centered-inputs", "warning", (c.layers[0].layer,),
                   f"input features have |mean|/std = {_fmt(rel)} (median over features), "
                   f"{_fmt(100 * float(np.mean(x > 0)))}% of the input values are positive: for one sample "
                   "with positive inputs all of a first-layer unit's weight gradients x_i δ_j share the sign "
                   "of δ_j; over the batch, all "
                   f"{n_in} entries of ∂L/∂W_:j = Σ_b x_bi δ_bj share one sign for {_fmt(100 * same)}% of "
                   "the first-layer units (median over seeds; for zero-mean inputs of random sign "
                   f"about 2^(1-{n_in})), so those units' weights can only all grow or all shrink together "
                   "in a step (zig-zag updates)",
                   "set data.center: true (subtract the mean) or standardize the inputs")


FORWARD_RATIO_LOW, FORWARD_RATIO_HIGH = 1e-2, 1e2  # forward-collapse / -explosion: last/first hidden z std


@rule({"forward-collapse": "the forward signal shrinks layer by layer",
       "forward-explosion": "the forward signal grows layer by layer"})
def forward_signal(c: PassContext) -> Finding | None:
    """The last hidden layer's pre-activation std over the first's, outside FORWARD_RATIO_LOW..HIGH."""
    scenario, hidden = c.scenario, c.hidden
    if scenario.depth < 2:
        return None
    s_first = hidden[0].median("preact_std")
    s_last = hidden[-1].median("preact_std")
    if not (s_first and s_last is not None and s_first > 0):
        return None
    r = s_last / s_first
    fwd_act, fwd_params = _scenario_act(scenario)
    fwd_advice = ""
    if len(c.act_names - {"identity"}) <= 1 and (r < FORWARD_RATIO_LOW or r > FORWARD_RATIO_HIGH):
        fwd_advice = _init_advice(scenario, fwd_act, fwd_params,
                                  ("he_normal",) if fwd_act in ("relu", "leaky_relu") else ("xavier_uniform",),
                                  c.crit)
    which = "(he_normal for ReLU, xavier for tanh)"
    if _hidden_keep(c.scenario) < 1 and c.crit is not None:  # dropout moved the critical init
        which = (f"(with this dropout: init {{scheme: normal, std: "
                 f"{math.sqrt(c.crit / _hidden_layer(c.scenario)[0]):.4g}}})")
    if r < FORWARD_RATIO_LOW:
        return Finding("forward-collapse", "warning", tuple(lay.layer for lay in hidden),
                       f"the pre-activation std falls from {_fmt(s_first)} (layer {hidden[0].layer}) to {_fmt(s_last)} "
                       f"(layer {hidden[-1].layer}), a factor {_fmt(r)}: deep layers see almost no "
                       "signal",
                       f"raise the init variance to the activation's critical value {which}" + fwd_advice)
    if r > FORWARD_RATIO_HIGH:
        return Finding("forward-explosion", "warning", tuple(lay.layer for lay in hidden),
                       f"the pre-activation std grows from {_fmt(s_first)} (layer {hidden[0].layer}) to {_fmt(s_last)} "
                       f"(layer {hidden[-1].layer}), a factor {_fmt(r)}",
                       f"lower the init variance {which}" + fwd_advice)
    return None


UPDATE_RATIO_HIGH, UPDATE_RATIO_LOW = 10, 0.01  # update-ratio: outside [LOW, HIGH] × diagnostics.update_ratio_guide


# ---------------------------------------------------------------- skip connections, norms, dropout


RESIDUAL_GROWTH_LIMIT = 4.0   # the stream's E‖x‖² may grow this much over all blocks before residual-branch-scale
RESIDUAL_GROWTH_TARGET = 2.0  # the α the remedy computes makes it grow about this much


def _seed_sq(a: np.ndarray) -> np.ndarray:
    """Mean over the batch of ‖a_b‖², per seed (S,) — or a scalar for the shared input (B, n)."""
    return np.mean(np.sum(np.square(a, dtype=np.float64), axis=-1), axis=-1)


@rule({"residual-branch-scale": "residual branches too large for the depth: the stream grows block after block"})
def residual_branch_scale(c: PassContext) -> Finding | None:
    """x + α·branch(x) adds α²·(branch gain) of the stream's second moment per block: over B blocks it grows as
    (1 + α²g)^B. Only for branches without a norm at their input (with one the growth is additive)."""
    blocks = [it for it in walk(c.scenario.items) if isinstance(it, Residual)]
    if not blocks or c.p.trace is None or any(isinstance(x, Norm) for b in blocks for x in walk(b.layers)):
        return None
    x2 = float(_seed_sq(c.p.x))
    with np.errstate(all="ignore"):
        growth = Stat.of(_seed_sq(c.p.trace.h[-1]) / x2).median if x2 > 0 else None
    if growth is None or not growth > RESIDUAL_GROWTH_LIMIT:
        return None
    B = len(blocks)
    per = growth ** (1.0 / B)
    pred = c.summary.theory.get("residual_growth")
    pred_txt = f" (mean-field predicts {_fmt(pred)}×)" if pred else ""
    alphas = {b.alpha for b in blocks}
    hint = "scale every branch down (network.residual.alpha about 1/√blocks) or put a norm at the start of each " \
           "branch (norm: layernorm, norm_placement: pre)"
    cause = ""
    if len(alphas) == 1 and (alpha := next(iter(alphas))) != 0 and per > 1:
        gain = (per - 1.0) / (alpha * alpha)
        new = math.sqrt((RESIDUAL_GROWTH_TARGET ** (1.0 / B) - 1.0) / gain)
        cause = (f": each block multiplies it by {_fmt(per)} = 1 + α²·g with α = {_fmt(alpha)} and a measured branch "
                 f"gain g = {_fmt(gain)}")
        hint = (f"network.residual.alpha {new:.3g} makes each block add α²·g = {_fmt(new * new * gain)} and the stream "
                f"grow about {_fmt(RESIDUAL_GROWTH_TARGET)}× over {B} blocks (α ≈ {_fmt(new * math.sqrt(B))}/√{B}); "
                "or a norm at the start of each branch (norm: layernorm, norm_placement: pre)")
    rows = tuple(lay.layer for lay in c.layers[:-1] if lay.block is not None)
    return Finding("residual-branch-scale", "warning", rows,
                   f"the residual stream's second moment E‖x‖² grows {_fmt(growth)}× from the input to the last of "
                   f"{B} blocks{pred_txt}{cause}; the gradient grows the same way toward the input",
                   hint)


BN_GROWTH_LIMIT = 10.0  # batchnorm-gradient-explosion: ‖∂L/∂y‖ at the first batchnorm over the last one


@rule({"batchnorm-gradient-explosion": "BatchNorm at initialization: the gradient grows toward the input"})
def batchnorm_gradient_explosion(c: PassContext) -> Finding | None:
    """Yang et al. 2019: in a deep linear → BatchNorm → ReLU net ‖∂L/∂y‖² grows by π/(π−1) per layer backward."""
    bns = [it for it in walk(c.scenario.items) if isinstance(it, Norm) and it.kind == "batchnorm"]
    if len(bns) < 2 or any(n.row not in c.p.norm_delta for n in bns):
        return None
    first, last = c.p.norm_delta[bns[0].row], c.p.norm_delta[bns[-1].row]
    with np.errstate(all="ignore"):
        total = Stat.of(_div(first, last)).median
        per = Stat.of(np.exp(2.0 * np.log(_div(first, last)) / (len(bns) - 1))).median
    if total is None or not total > BN_GROWTH_LIMIT:
        return None
    pred = c.summary.theory.get("batchnorm_gradient_growth")
    pred_txt = (f"; Yang et al. 2019 predict π/(π−1) = {_fmt(pred)} per layer for linear → batchnorm → relu at "
                "large width and batch" if pred else "")
    return Finding("batchnorm-gradient-explosion", "error", tuple(n.row for n in bns),
                   f"the gradient at the output of the {len(bns)} batchnorm layers grows toward the input: "
                   f"‖∂L/∂y‖² by {_fmt(per)} per layer (geometric mean over seeds' medians), ‖∂L/∂y‖ {_fmt(total)}× "
                   f"from layer {bns[-1].row} to layer {bns[0].row}{pred_txt}. Batch statistics couple the samples: "
                   "backward through each batchnorm removes the batch mean and the component along x̂, and what is "
                   "left is rescaled by 1/σ, whatever the init scale",
                   "use norm: layernorm (per-sample statistics, no coupling across the batch), or skip connections "
                   "(network.residual) so the gradient has a path around the batchnorm layers, or fewer layers")


POST_NORM_SHRINK = 0.5  # post-norm-gradient-shrink: first hidden layer's weight gradient below this × the last's


@rule({"post-norm-gradient-shrink": "post-norm residual net: gradients shrink toward the input"})
def post_norm_gradient_shrink(c: PassContext) -> Finding | None:
    """A norm after each residual addition divides the gradient by the std of the sum on its way back."""
    items = c.scenario.items
    post = any(isinstance(a, Residual) and isinstance(b, Norm) for a, b in zip(items, items[1:], strict=False))
    hidden = c.layers[:-1]
    if not post or len(hidden) < 2:
        return None
    r = Stat.of(_div(c.arrays[hidden[0].index - 1].values["weight_grad_norm"],
                     c.arrays[hidden[-1].index - 1].values["weight_grad_norm"])).median
    if r is None or not r < POST_NORM_SHRINK:
        return None
    return Finding("post-norm-gradient-shrink", "warning", tuple(lay.layer for lay in hidden),
                   f"with a norm after each residual addition, layer {hidden[0].layer}'s weight gradient is {_fmt(r)} "
                   f"of layer {hidden[-1].layer}'s (median over seeds): each norm divides the gradient on its way back "
                   "by the std of the sum it normalizes, so layers near the input learn slower (Xiong et al. 2020)",
                   "norm_placement: pre (the norm inside each branch leaves the skip path an identity, so the "
                   "gradient reaches the input undivided)")


@rule({"dropout-critical-init": "dropout moves the critical init: σ_w² = q·(critical without dropout)"})
def dropout_critical_init(c: PassContext) -> Finding | None:
    """Dropout with keep probability q rescales kept units by 1/q: the backward factor is σ_w²·E[φ'²]/q."""
    th = c.summary.theory
    keep, chi1, crit, sw2 = th.get("dropout_keep"), th.get("chi1"), th.get("critical_sigma_w2"), th.get("sigma_w2")
    if keep is None or keep >= 1 or chi1 is None or crit is None or sw2 is None:
        return None
    if CHI1_CRITICAL_BAND[0] <= chi1 <= CHI1_CRITICAL_BAND[1]:
        return None
    n = _hidden_layer(c.scenario)[0]
    depth = c.scenario.depth
    over = _fmt(math.exp(0.5 * depth * math.log(chi1))) if chi1 > 0 else "0"
    return Finding("dropout-critical-init", "warning", tuple(lay.layer for lay in c.hidden),
                   f"dropout p = {_fmt(1 - keep)} keeps q = {_fmt(keep)} of the units and scales them by 1/q, so each "
                   f"layer's backward factor is σ_w²·E[φ'²]/q: χ₁ = {_fmt(chi1)} with σ_w² = {_fmt(sw2)} (it would be "
                   f"{_fmt(chi1 * keep)} without dropout), about {over}× on ‖δ‖ over {depth} layers. The critical "
                   f"σ_w² moves from {_fmt(crit / keep)} to q·{_fmt(crit / keep)} = {_fmt(crit)}",
                   f"init {{scheme: normal, std: {math.sqrt(crit / n):.4g}}} (σ_w² = {_fmt(crit)} with fan_in {n}) "
                   "gives χ₁ = 1 with this dropout")


@rule({"update-ratio": "the optimizer's first step ‖ΔW‖/‖W‖ far from the 1e-3 guide"})
def update_ratio(c: PassContext) -> Finding | None:
    """Layers whose first optimizer step ‖ΔW‖/‖W‖ (median over seeds) is far from the guide."""
    summary = c.summary
    if summary.lr is None:
        return None
    ur = [(lay.layer, lay.median("update_ratio")) for lay in c.layers]
    guide = c.diag["update_ratio_guide"]
    off = [(l, u) for l, u in ur if u is not None and (u > UPDATE_RATIO_HIGH * guide or u < UPDATE_RATIO_LOW * guide)]
    moving = [(l, u) for l, u in off if u > 0]
    still = [l for l, u in off if u == 0]
    opt = c.scenario.train["optimizer"] if c.scenario.train else "optimizer"
    if moving:
        l0, u0 = max(moving, key=lambda t: abs(math.log10(t[1] / guide)))
        rest = [l for l, _ in off if l != l0]
        band = f"{_fmt(UPDATE_RATIO_LOW * guide)}–{_fmt(UPDATE_RATIO_HIGH * guide)}"
        return Finding("update-ratio", "info", tuple(l for l, _ in off),
                       f"the first {opt} step changes layer {l0}'s weights by ‖ΔW‖/‖W‖ = {_fmt(u0)} "
                       f"(lr {_fmt(summary.lr)}, median over seeds), against the usual guide of about "
                       f"{_fmt(guide)}" + (f"; also outside {band}: {_ranges(rest)}" if rest else ""),
                       f"lr {summary.lr * guide / u0:.3g} would make layer {l0}'s first step "
                       f"{_fmt(guide)} (the first step of sgd, momentum and adam is proportional to lr); "
                       "the guide is a rule of thumb, not a promise that training goes better")
    if still:
        return Finding("update-ratio", "info", tuple(still),
                       f"the first {opt} step leaves the weights of {_ranges(still)} unchanged "
                       "(‖ΔW‖/‖W‖ = 0: their gradient is zero)",
                       "no learning rate moves a layer whose gradient is zero: see the other findings")
    return None


# ---------------------------------------------------------------- Jacobian rules


@rule({"broad-jacobian-spectrum": "input–output Jacobian: mean σ² near 1 but the singular values spread widely"},
      stage="jacobian")
def broad_jacobian_spectrum(c: JacobianContext) -> Finding | None:
    """Verdict broad with mean σ² within MEAN_OK_FACTOR of 1: the mean is right, the spectrum is not."""
    from .jacobian import ISOMETRY_FACTOR, MEAN_OK_FACTOR, _g, _remedy

    j = c.j
    if not (j["verdict"] == "broad" and j["mean_sv2"] is not None
            and 1.0 / MEAN_OK_FACTOR <= j["mean_sv2"] <= MEAN_OK_FACTOR):
        return None
    pq = j["singular_values"]
    msg = (f"J = ∂{'a' if j['at'] == 'last_hidden' else 'z'}_{j['layer']}/∂x has mean σ² = {j['mean_sv2']:.3g} "
           f"(predicted {_g(j['predicted_mean_sv2'])}) but its singular values spread from q10 "
           f"{pq['q10']:.3g} to q90 {pq['q90']:.3g} (ratio {_g(j['q90_q10'])}); only "
           f"{j['near_one_fraction']:.0%} lie within a factor {ISOMETRY_FACTOR:g} of 1, so some input "
           f"directions' gradients shrink while others grow. Var(λ) = {j['var_eig']:.3g}, predicted "
           f"{_g(j['predicted_var_eig'])}.")
    return Finding("broad-jacobian-spectrum", "warning", c.layers, msg, _remedy(c.scenario, c.act))


@rule({"degenerate-jacobian": "input–output Jacobian: rank-deficient (numerically zero singular values)"},
      stage="jacobian")
def degenerate_jacobian(c: JacobianContext) -> Finding | None:
    """Verdict degenerate: zero singular values, from a bottleneck, inactive ReLU units or saturation."""
    from .jacobian import _RELU_LIKE

    j, scenario, act = c.j, c.scenario, c.act
    if not (j["verdict"] == "degenerate" and j["zero_fraction"] is not None):
        return None
    narrow = min(scenario.sizes[1: int(j["layer"]) + 1] or [j["k"]])
    if narrow < j["k"]:
        cause = f"a layer of {narrow} units is narrower than the {j['k']} input directions J could keep"
        hint = f"widen the bottleneck to at least {j['k']} units, or accept that J has rank ≤ {narrow}"
    elif act in _RELU_LIKE or act is None:
        cause = ("ReLU-like units with φ'(z) = 0 remove their direction for that sample: each sample sees "
                 f"only its active units (rank ≥ {j['rank']['min']} of {j['k']})")
        hint = ("no initialization makes a ReLU net isometric (Pennington et al. 2017): the inactive half of "
                "every layer is a zero block of D. Use fewer layers, widen the layers well beyond input_dim "
                "(more active units than input directions), or use tanh with orthogonal init at criticality")
    else:
        cause = "units in the flat region of their activation (φ'(z) ≈ 0) remove their direction"
        hint = "shrink the pre-activations (smaller σ_w² or σ_b²) so fewer units saturate"
    msg = (f"{j['zero_fraction']:.1%} of J's singular values are exactly zero (rank as low as {j['rank']['min']} "
           f"of {j['k']}): {cause}.")
    return Finding("degenerate-jacobian", "info", c.layers, msg, hint)


# ---------------------------------------------------------------- training codes
# Computed by gradscope.training.dynamics from the training trace (and re-runs at other learning rates);
# listed here so that the code table is one registry.

RULES.declare({
    "gradient-fade": "training: layer 1's gradient fell far more than the output layer's",
    "loss-plateau": "training: the held-out loss stopped improving",
    "training-diverged": "training: the training loss became non-finite or ended >25% above its start in some seeds",
    "overfitting": "training: the held-out loss rose while the training loss kept falling",
    "training-unstable": "training: the training loss rose well above its lowest value",
    "units-died": "training: hidden units that were alive at step 0 died",
}, stage="training", producer="gradscope.training")

# The stable finding codes (README lists them): code → one-line description, from the registry.
CODES = RULES.codes


# ---------------------------------------------------------------- prose and causes the rules share


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
    keep = _hidden_keep(scenario)  # dropout in front of the layer: its backward factor is σ_w²·E[φ'²]/q
    return sw2, mean_field(activation, sw2 / keep, sb2, act_params).chi1


def _hidden_keep(scenario: Scenario) -> float:
    """The dropout keep probability in front of a representative hidden layer (1 without dropout)."""
    keep = None if scenario.plain else dropout_keep(scenario.items)
    return (keep[1] if len(keep) > 2 else keep[0]) if keep else 1.0


def _init_advice(scenario: Scenario, activation: str, act_params: dict[str, Any], inits: tuple[str, ...],
                 crit: float | None) -> str:
    """What the named inits give (σ_w², χ₁ computed for this activation and σ_b²) and the init at χ₁ = 1."""
    fan_in, _, _ = _hidden_layer(scenario)
    parts = []
    keep = _hidden_keep(scenario)
    with_dropout = f" with dropout keep {_fmt(keep)}" if keep < 1 else ""
    for name in inits:
        got = _init_chi1(scenario, activation, act_params, name)
        if got is not None:
            parts.append(f"{name} gives {activation} σ_w² = {_fmt(got[0])}, χ₁ = {_fmt(got[1])}{with_dropout}")
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
    return float(median((pos | neg).mean(axis=1)))


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
    return float(median(off))


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
