"""Plain frozen dataclasses of floats and strings; `to_dict()` is exactly the JSON of SPEC §3."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STAT_KEYS = ("median", "mean", "std", "min", "max", "q10", "q90")

# Per-layer statistics, in JSON and table order. The first eleven are SPEC §3's contract.
LAYER_STATS = ("weight_grad_norm", "bias_grad_norm", "delta_norm", "grad_weight_ratio", "gradient_ratio",
               "preact_mean", "preact_std", "act_mean", "act_std", "saturation", "dead_fraction",
               "mean_abs_grad", "max_abs_grad", "delta_ratio", "backward_gain", "update_ratio", "act_grad_mean")


def _f(x: Any) -> float | None:
    """A JSON-safe float: None for NaN/Inf."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _quantile(sorted_v: np.ndarray, q: float) -> float:
    """Linear-interpolation quantile of sorted values (numpy's default method), without np.quantile's overhead."""
    pos = q * (sorted_v.size - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, sorted_v.size - 1)
    frac = pos - lo
    a, b = float(sorted_v[lo]), float(sorted_v[hi])
    return a + (b - a) * frac if frac < 0.5 else b - (b - a) * (1.0 - frac)


@dataclass(frozen=True)
class Stat:
    """A statistic over the ensemble: median, mean, std, min, max, q10, q90 of the finite seeds."""

    median: float | None = None
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    q10: float | None = None
    q90: float | None = None

    @classmethod
    def of(cls, values: np.ndarray | None) -> Stat:
        if values is None:
            return cls()
        v = np.asarray(values, dtype=np.float64).ravel()
        v = v[np.isfinite(v)]
        if v.size == 0:
            return cls()
        v = np.sort(v)
        with np.errstate(all="ignore"):
            return cls(median=_f(_quantile(v, 0.5)), mean=_f(v.mean()), std=_f(v.std()), min=_f(v[0]),
                       max=_f(v[-1]), q10=_f(_quantile(v, 0.1)), q90=_f(_quantile(v, 0.9)))

    def to_dict(self) -> dict[str, float | None]:
        return {k: getattr(self, k) for k in STAT_KEYS}


def stats_of(values: dict[str, np.ndarray | None]) -> dict[str, Stat]:
    """{key: Stat.of(v)} for many arrays at once, the same numbers bit for bit.

    A report row has ~17 per-seed arrays of the same length; those with every value finite are stacked and
    reduced together (row-wise sort, sum and the same interpolation), the others go through Stat.of."""
    out: dict[str, Stat] = {}
    batch: dict[str, np.ndarray] = {}
    for k, v in values.items():
        a = None if v is None else np.asarray(v, dtype=np.float64).ravel()
        if a is not None and a.size and np.isfinite(a).all():
            batch[k] = a
        else:
            out[k] = Stat.of(v)
    by_size: dict[int, list[str]] = {}
    for k, a in batch.items():
        by_size.setdefault(a.size, []).append(k)
    for keys in by_size.values():
        if len(keys) == 1:
            out[keys[0]] = Stat.of(batch[keys[0]])
            continue
        v = np.sort(np.stack([batch[k] for k in keys]), axis=1)
        with np.errstate(all="ignore"):
            mean, std = v.mean(axis=1), v.std(axis=1)
            med, q10, q90 = (_quantile_rows(v, q) for q in (0.5, 0.1, 0.9))
        for i, k in enumerate(keys):
            out[k] = Stat(median=_f(med[i]), mean=_f(mean[i]), std=_f(std[i]), min=_f(v[i, 0]), max=_f(v[i, -1]),
                          q10=_f(q10[i]), q90=_f(q90[i]))
    return {k: out[k] for k in values}


def _quantile_rows(sorted_v: np.ndarray, q: float) -> np.ndarray:
    """_quantile of every row of a (K, n) array sorted along rows (the same float operations)."""
    n = sorted_v.shape[1]
    pos = q * (n - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    a, b = sorted_v[:, lo], sorted_v[:, hi]
    return a + (b - a) * frac if frac < 0.5 else b - (b - a) * (1.0 - frac)


@dataclass(frozen=True)
class LayerReport:
    """One linear layer l (1 = first hidden layer, L = output layer) summarized over the ensemble."""

    layer: int
    fan_in: int
    fan_out: int
    activation: str
    status: str
    stats: dict[str, Stat]
    grad_quantiles: dict[str, float | None]   # |∂L/∂W| entries pooled over seeds: q01..q99
    nonfinite_seeds: int = 0
    predicted_gradient_ratio: float | None = None
    predicted_delta_ratio: float | None = None
    kind: str = "dense"         # the layer kind (SPEC §3); every layer of today's networks is dense + activation
    block: int | None = None    # the residual block holding the layer; None outside blocks
    index: int = 0              # position among the main-path dense layers (their W list); 0 for other rows

    def median(self, key: str) -> float | None:
        return self.stats[key].median

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"layer": self.layer, "kind": self.kind, "block": self.block, "fan_in": self.fan_in,
                               "fan_out": self.fan_out, "activation": self.activation, "status": self.status}
        for k in LAYER_STATS:
            out[k] = self.stats[k].to_dict()
        out["grad_quantiles"] = dict(self.grad_quantiles)
        out["predicted_gradient_ratio"] = self.predicted_gradient_ratio
        out["predicted_delta_ratio"] = self.predicted_delta_ratio
        out["nonfinite_seeds"] = self.nonfinite_seeds
        return out


@dataclass(frozen=True)
class Finding:
    """A diagnosis: stable code, severity (error | warning | info), layers, cause in numbers, remedy."""

    code: str
    severity: str
    layers: tuple[int, ...]
    message: str
    hint: str

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "layers": list(self.layers),
                "message": self.message, "hint": self.hint}


@dataclass(frozen=True)
class Summary:
    """Whole-network figures: verdict, gradient spread, loss, backward gain and theory."""

    verdict: str
    gradient_spread: float | None
    loss: Stat
    seeds: int
    n_layers: int
    overflow_seeds: int = 0
    mean_backward_gain: float | None = None     # geometric mean of ‖δ_l‖/‖δ_{l+1}‖ over hidden layers
    extrapolation: dict[str, Any] = field(default_factory=dict)
    chi1: float | None = None
    q_star: float | None = None
    theory: dict[str, Any] = field(default_factory=dict)
    lr: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "gradient_spread": self.gradient_spread, "loss": self.loss.to_dict(),
                "seeds": self.seeds, "n_layers": self.n_layers, "overflow_seeds": self.overflow_seeds,
                "mean_backward_gain": self.mean_backward_gain, "extrapolation": dict(self.extrapolation),
                "chi1": self.chi1, "q_star": self.q_star, "theory": dict(self.theory), "lr": self.lr}


@dataclass(frozen=True)
class HistoryRecord:
    """One recorded training step: the probe batch's per-layer statistics (the step-0 report's LayerReport rows),
    its verdict, and the losses and accuracies over the seeds. `to_dict()` is one entry of JSON `history[]`."""

    step: int
    verdict: str
    train_loss: Stat
    holdout_loss: Stat
    train_accuracy: Stat | None     # None for a regression scenario (no classes)
    holdout_accuracy: Stat | None
    layers: tuple[LayerReport, ...]

    def median(self, key: str, layer: int) -> float | None:
        """The median over seeds of per-layer statistic `key` of layer `layer` (1-based)."""
        return self.layers[layer - 1].median(key)

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "verdict": self.verdict,
                "train_loss": self.train_loss.to_dict(), "holdout_loss": self.holdout_loss.to_dict(),
                "train_accuracy": self.train_accuracy.to_dict() if self.train_accuracy is not None else None,
                "holdout_accuracy": self.holdout_accuracy.to_dict() if self.holdout_accuracy is not None else None,
                "layers": [layer.to_dict() for layer in self.layers]}


@dataclass(frozen=True)
class RunReport:
    """The result of `gradscope.run`. `to_dict()` is the JSON; `arrays` keeps the per-seed engine arrays."""

    version: str
    scenario: dict[str, Any]
    summary: Summary
    layers: tuple[LayerReport, ...]
    findings: tuple[Finding, ...]
    history: tuple[HistoryRecord, ...] | None = None   # training runs: one record per recorded step
    training: dict[str, Any] | None = None
    label: str | None = None
    arrays: Any = field(default=None, compare=False, repr=False)
    per_seed: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)
    trace: Any = field(default=None, compare=False, repr=False)   # training.Trace: per-seed training arrays
    jacobian: Any = None   # a jacobian.JacobianReport when the Jacobian analysis ran
    residual_stream: tuple[dict[str, Any], ...] | None = None   # residual nets: one entry per block

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.label is not None:
            out["label"] = self.label
        out.update({"gradscope_version": self.version, "scenario": self.scenario,
                    "summary": self.summary.to_dict(), "layers": [layer.to_dict() for layer in self.layers],
                    "findings": [f.to_dict() for f in self.findings]})
        if self.residual_stream is not None:
            out["residual_stream"] = [dict(b) for b in self.residual_stream]
        if self.history is not None:
            out["history"] = [h.to_dict() for h in self.history]
        if self.training is not None:
            out["training"] = self.training
        if self.jacobian is not None:
            out["jacobian"] = self.jacobian.to_dict()
        return out
