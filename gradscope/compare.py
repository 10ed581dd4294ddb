"""`gradscope compare`: one scenario, one axis varied (loss, activation, init, or whole scenario files).

For losses it also computes the output-layer curve — ∂L/∂z of the true class against the predicted
probability p of that class — and the loss and gradient at given prediction vectors, both with the
engine's own loss code (losses.evaluate), never with separate formulas.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .activations import ACTIVATIONS
from .api import run
from .errors import GradscopeError, shown
from .inits import INITS
from .losses import LOSSES, evaluate
from .report import RunReport
from .scenario import Scenario, bundled_path, load_scenario
from .training import race_summary

AXES = ("loss", "activation", "init", "scenario")
CURVE_P = (1e-4, 1e-3, 1e-2, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999)
DEFAULT_COMPARE_SCENARIO = "classify-blobs.yaml"
SMALL_FRACTION = 0.01  # a gradient under 1% of the largest at the same p is highlighted

_REGISTRIES = {"loss": LOSSES, "activation": ACTIVATIONS, "init": INITS}


def _is_file(name: str) -> bool:
    if name.endswith((".yaml", ".yml")):
        return True
    try:
        return Path(name).is_file()
    except (OSError, ValueError):  # a name too long for the OS, or with a NUL byte, is no file
        return False


def _names(names: Sequence[str]) -> str:
    """Variant names for a message: each escaped and cut, at most 8 of them."""
    more = f" and {len(names) - 8} more" if len(names) > 8 else ""
    return ", ".join(shown(n) for n in names[:8]) + more


_PLURAL = {"loss": "losses"}


def detect_axis(names: Sequence[str], forced: str | None = None) -> str:
    """The axis the names vary: loss, activation, init or scenario; GradscopeError when unclear."""
    if len(names) < 2:
        raise GradscopeError("compare needs two or more variants, e.g. `gradscope compare mse ce`")
    if len(set(names)) != len(names):
        raise GradscopeError(f"variants repeat a name: {_names(names)}")
    if forced is not None:
        if forced not in AXES:
            raise GradscopeError(f"--axis {shown(forced)}: choose one of {', '.join(AXES)}")
        if forced != "scenario":
            reg = _REGISTRIES[forced]
            bad = [n for n in names if n not in reg]
            if bad:
                raise GradscopeError(f"not {forced} names: {_names(bad)}; known {_PLURAL.get(forced, forced + 's')}: "
                                     f"{', '.join(reg.names())}")
        return forced
    if all(_is_file(n) for n in names):
        return "scenario"
    fits = [axis for axis, reg in _REGISTRIES.items() if all(n in reg for n in names)]
    if len(fits) == 1:
        return fits[0]
    if len(fits) > 1:
        raise GradscopeError(f"{_names(names)} could be {' or '.join(fits)} names; say which with --axis")
    unknown = [n for n in names if not any(n in reg for reg in _REGISTRIES.values()) and not _is_file(n)]
    if unknown:
        from .registry import suggest

        hints = "".join(suggest(n, [x for r in _REGISTRIES.values() for x in r.names(aliases=True)])
                        for n in unknown[:5] if len(n) <= 100)
        raise GradscopeError(
            f"unknown variant(s) {_names(unknown)}{hints}; give losses ({', '.join(LOSSES.names())}), "
            f"activations ({', '.join(ACTIVATIONS.names())}), init schemes ({', '.join(INITS.names())}) "
            "or scenario files")
    raise GradscopeError(f"{_names(names)} mixes axes (losses, activations, inits, files); compare one at a time")


def _classification_head(k: int) -> str:
    return "softmax" if k >= 2 else "sigmoid"


def variant_scenarios(base: Scenario, axis: str, names: Sequence[str], overrides: Sequence[str] = (),
                      seed: int | None = None, seeds: int | None = None) -> list[Scenario]:
    """One scenario per variant; the base's other keys unchanged. For losses, MSE-like variants apply to the
    softmax (sigmoid for one output) when any variant is a classification loss, as in the derivations."""
    if axis == "scenario":
        return [load_scenario(n, overrides=overrides, seed=seed, seeds=seeds) for n in names]
    out = []
    any_classification = axis == "loss" and any(LOSSES.get(n).head for n in names)
    for name in names:
        d = copy.deepcopy(base.to_dict())
        net = d["network"]
        if axis == "loss":
            d["loss"] = name
            loss = LOSSES.get(name)
            if loss.head:
                net["output_activation"] = None
            elif any_classification:
                net["output_activation"] = _classification_head(net["output_dim"])
        elif axis == "activation":
            if "layers" in net:  # the explicit form: every dense item with an activation (a branch's linear
                _set_activation(net["layers"], name)  # last layer stays linear)
            else:
                net["activation"] = name
        else:
            net["init"] = name
        d["name"] = f"{base.name}[{name}]"
        # the base already carries the overrides; a network given as layers cannot take shorthand keys again
        out.append(load_scenario(d, overrides=overrides if base.plain else (), seed=seed, seeds=seeds))
    return out


def _set_activation(items: list[dict[str, Any]], name: str) -> None:
    """Give every dense item of an explicit `network.layers` list whose activation is not identity `name`."""
    for it in items:
        if "dense" in it and isinstance(it["dense"], dict):
            act = it["dense"].get("activation")
            if (act if isinstance(act, str) else (act or {}).get("name")) != "identity":
                it["dense"]["activation"] = name
        elif "residual" in it:
            _set_activation(it["residual"]["layers"], name)


# ---------------------------------------------------------------- the output-layer curve


def _logits(probs: np.ndarray, head: str) -> np.ndarray:
    """Logits whose head gives `probs` (..., k): log p for softmax, logit p per output for sigmoid."""
    if head == "softmax":
        return np.log(probs)
    return np.log(probs) - np.log1p(-probs)


def _target(loss_name: str, head: str, k: int, true: int, n: int) -> np.ndarray:
    kind = LOSSES.get(loss_name).target
    if kind == "class":
        return np.full(n, true, dtype=np.int64)
    if k == 1:  # a single sigmoid output: the probability of class 1, target 1.0 for class 1 and 0.0 for class 0
        return np.full((n, 1), float(true == 1))
    return np.broadcast_to(np.eye(k)[true], (n, k)).copy()


def loss_at(sc: Scenario, probs: np.ndarray, true: int) -> tuple[np.ndarray, np.ndarray]:
    """Loss and ∂L/∂z for prediction vectors probs (n, k) of one sample each, by the engine's loss code.

    Each vector is its own ensemble member with a batch of one, so the scenario's reduction applies
    exactly as in `run` (mean over the k outputs for mse, over the batch of one for cross_entropy).
    A single-output (binary) scenario takes the probability of the positive class: probs (n, 1).
    """
    head = sc.output_activation
    z = _logits(probs, head)[:, None, :]
    t = _target(sc.loss.name, head, probs.shape[1], true, 1)
    value, grad = evaluate(sc.loss.name, dict(sc.loss.params), head, z, t)
    return value, grad[:, 0, :]


def curve(scenarios: Sequence[Scenario], labels: Sequence[str]) -> list[dict[str, Any]]:
    """For p in CURVE_P: loss and ∂L/∂z_true per loss, the other k-1 classes sharing 1-p equally."""
    k = scenarios[0].sizes[-1]
    p = np.array(CURVE_P)
    if k == 1:
        probs = p[:, None]
    else:
        probs = np.empty((p.size, k))
        probs[:] = ((1.0 - p) / (k - 1))[:, None]
        probs[:, 0] = p
    rows: list[dict[str, Any]] = [{"p": float(x)} for x in p]
    for sc, label in zip(scenarios, labels, strict=True):
        if sc.output_activation == "identity":
            raise GradscopeError(f"{label}: the curve needs a probability output (softmax or sigmoid); this "
                                 "scenario's output is identity")
        value, grad = loss_at(sc, probs, 1 if k == 1 else 0)  # one output: p is the positive class's probability
        for i, row in enumerate(rows):
            row[label] = {"loss": float(value[i]), "grad_true_logit": float(grad[i, 0])}
    return rows


def closed_form(sc: Scenario, p: float) -> float | None:
    """The derivations' closed form of ∂L/∂z_true at true-class probability p (others share 1-p), or None.

    softmax+CE and sigmoid+BCE: p-1; softmax+MSE: (2/k)·[-p(1-p)² - (k-1)q²p], q = (1-p)/(k-1) (mean;
    ×k for sum, ×k/2 for half_sum); sigmoid+MSE: 2(p-1)p(1-p) (mean or sum; half that for half_sum).
    None where no closed form is stated (label smoothing, class weights, other losses).
    """
    params = dict(sc.loss.params)
    red = params.get("reduction", "mean")
    head, k = sc.output_activation, sc.sizes[-1]
    name = sc.loss.name
    if name == "cross_entropy" and head == "softmax":
        if params.get("label_smoothing") or params.get("weight") is not None:
            return None
        return p - 1.0
    if name == "bce" and head == "sigmoid" and k == 1 and params.get("pos_weight", 1.0) == 1.0:
        return p - 1.0
    if name == "mse" and head == "softmax" and k >= 2:
        q = (1.0 - p) / (k - 1)
        inner = -p * (1.0 - p) ** 2 - (k - 1) * q * q * p
        return {"mean": 2.0 / k, "sum": 2.0, "half_sum": 1.0}.get(red, 0.0) * inner or None
    if name == "mse" and head == "sigmoid" and k == 1:
        return {"mean": 2.0, "sum": 2.0, "half_sum": 1.0}.get(red, 0.0) * (p - 1.0) * p * (1.0 - p) or None
    return None


def probs_table(scenarios: Sequence[Scenario], labels: Sequence[str], vectors: Sequence[Sequence[float]],
                target: int) -> list[dict[str, Any]]:
    """Loss and the full gradient vector at each given prediction vector, per loss."""
    rows = []
    for vec in vectors:
        probs = np.asarray(vec, dtype=float)[None, :]
        row: dict[str, Any] = {"probs": [float(x) for x in vec], "target": target}
        for sc, label in zip(scenarios, labels, strict=True):
            if sc.output_activation == "softmax" and probs.shape[1] < 2:
                raise GradscopeError(f"{label}: a softmax output needs two or more probabilities per --probs")
            value, grad = loss_at(sc, probs, target)
            row[label] = {"loss": float(value[0]), "grad": [float(g) for g in grad[0]]}
        rows.append(row)
    return rows


def parse_probs(texts: Sequence[str], target: int) -> list[list[float]]:
    """'0.8,0.1,0.1' -> [0.8, 0.1, 0.1], checked: same length, in (0, 1), summing to 1, target in range."""
    vectors = []
    for text in texts:
        try:
            vec = [float(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise GradscopeError(f"--probs {shown(text)}: expected comma-separated numbers, e.g. 0.8,0.1,0.1"
                                 ) from None
        if not vec or any(not (0.0 < v < 1.0) for v in vec):
            raise GradscopeError(f"--probs {shown(text)}: every probability must be strictly between 0 and 1")
        if len(vec) > 1 and not math.isclose(sum(vec), 1.0, abs_tol=1e-6):
            raise GradscopeError(f"--probs {shown(text)}: the probabilities sum to {sum(vec):.6g}, not 1")
        vectors.append(vec)
    if len({len(v) for v in vectors}) > 1:
        raise GradscopeError("every --probs vector needs the same number of classes")
    k = len(vectors[0])
    if not 0 <= target < max(k, 2) or (k > 1 and target >= k):
        raise GradscopeError(f"--target {target}: must be a class index below {k}")
    return vectors


# ---------------------------------------------------------------- the comparison


@dataclass(frozen=True)
class Comparison:
    """Variants side by side: full run reports, and for losses the curve and the given-probs table."""

    axis: str
    labels: tuple[str, ...]
    reports: tuple[RunReport, ...]
    curve: list[dict[str, Any]] | None = None
    probs: list[dict[str, Any]] | None = None
    race: dict[str, Any] | None = None
    notes: tuple[str, ...] = ()
    scenario_source: str = ""
    differing: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"gradscope_version": __version__, "axis": self.axis, "labels": list(self.labels),
                               "scenario_source": self.scenario_source,
                               "variants": [r.to_dict() for r in self.reports],
                               "differing_findings": self.differing}
        if self.curve is not None:
            out["curve"] = self.curve
        if self.probs is not None:
            out["probs"] = self.probs
        if self.race is not None:
            out["race"] = self.race
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def differing_findings(reports: Sequence[RunReport], labels: Sequence[str]) -> dict[str, list[str]]:
    """{finding code: labels that report it} for codes not reported by every variant."""
    have = {label: {f.code for f in r.findings} for r, label in zip(reports, labels, strict=True)}
    codes = sorted(set().union(*have.values()))
    return {c: [lab for lab in labels if c in have[lab]] for c in codes
            if not all(c in have[lab] for lab in labels)}


def compare(scenario: Scenario | str | Path | dict[str, Any] | None, variants: Sequence[str], *,
            axis: str | None = None, overrides: Sequence[str] = (), seed: int | None = None,
            seeds: int | None = None, probs: Sequence[Sequence[float]] | None = None, target: int | None = None,
            train_steps: int | None = None, max_memory: int = 2 * 2**30,
            progress: Callable[[int, int], None] | None = None, jacobian: bool | None = None) -> Comparison:
    """Run every variant of `scenario` (None = the bundled classification scenario) along one axis.

    `progress(steps done, total steps)` counts the training steps of all variants together."""
    if target is not None and probs is None:
        raise GradscopeError("--target needs --probs (it is the true class of the --probs vectors)")
    target = 0 if target is None else target
    names = list(variants)
    ax = detect_axis(names, axis)
    extra = list(overrides)
    if train_steps is not None:
        extra.append(f"train.steps={train_steps}")
    if ax == "scenario":
        base = None
        source = "files"
        scs = variant_scenarios(None, ax, names, extra, seed, seeds)  # type: ignore[arg-type]
    else:
        src = bundled_path(DEFAULT_COMPARE_SCENARIO) if scenario is None else scenario
        base = scenario if isinstance(scenario, Scenario) else load_scenario(src)
        if not base.plain and extra:  # layers: the shorthand overrides apply to the file, before it expands
            base = load_scenario(base.to_dict() if isinstance(scenario, Scenario) else src, overrides=extra,
                                 seed=seed, seeds=seeds)
        source = base.source if scenario is not None else f"<bundled {DEFAULT_COMPARE_SCENARIO}>"
        scs = variant_scenarios(base, ax, names, extra, seed, seeds)
    if probs is not None and ax != "loss":
        raise GradscopeError("--probs compares losses: give loss names, e.g. `gradscope compare mse ce --probs ...`")
    total = sum(sc.train["steps"] for sc in scs if sc.train is not None)
    reports = []
    done = 0
    for sc, name in zip(scs, names, strict=True):
        step_of = None
        if progress is not None and sc.train is not None:
            def step_of(step: int, _steps: int, offset: int = done) -> None:
                progress(offset + step, total)
        reports.append(run(sc, max_memory=max_memory, label=name, progress=step_of, jacobian=jacobian))
        done += sc.train["steps"] if sc.train is not None else 0
    notes: list[str] = []
    crv = None
    if ax == "loss":
        if all(sc.output_activation != "identity" for sc in scs):
            crv = curve(scs, names)
        else:
            notes.append("no output-layer curve: a variant has an identity output (a regression scenario)")
    ptab = probs_table(scs, names, probs, target) if probs is not None else None
    race = None
    if any(r.training is not None for r in reports):
        race = race_summary(reports, names)
    return Comparison(axis=ax, labels=tuple(names), reports=tuple(reports), curve=crv, probs=ptab, race=race,
                      notes=tuple(notes), scenario_source=source, differing=differing_findings(reports, names))
