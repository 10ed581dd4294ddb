"""Training dynamics: the whole ensemble trained at once, gradient flow recorded over steps.

Every member trains independently on the same data (arrays keep the seed axis first, one NumPy
call updates all members). Every `record_every` steps the per-layer statistics of the run report
are measured on a fixed probe batch (the first `data.batch_size` training samples), with the loss
on the training set and the loss and accuracy on a held-out split.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from .datasets import DATASETS, Data
from .diagnostics import diagnose
from .engine import Params, check_memory, draw_data, init_params, loss_target, run_pass
from .losses import LOSSES
from .optimizers import OPTIMIZERS
from .report import Finding, RunReport, Stat
from .scenario import Scenario

FADE_FACTOR = 10.0      # a layer whose gradient falls more than this is reported as fading
PLATEAU_GAIN = 0.01     # held-out loss improving less than 1% over the second half is a plateau


def _split(data: Data, n_train: int) -> tuple[Data, Data]:
    def part(sl: slice) -> Data:
        return Data(data.x[sl], data.labels[sl], data.values[sl], data.multilabel[sl], data.probs[sl])

    return part(slice(0, n_train)), part(slice(n_train, None))


def accuracy(sc: Scenario, out: np.ndarray, data: Data) -> np.ndarray | None:
    """Per-seed accuracy (S,) of network outputs a_L (S, B, k); None for regression scenarios."""
    loss = LOSSES.get(sc.loss.name)
    if not loss.classification and sc.output_activation == "identity" and not DATASETS.get(sc.data.name).clustered:
        return None  # real-valued regression targets: no classes to be right about
    k = out.shape[-1]
    if k == 1:
        pred = (out[..., 0] > (0.5 if sc.output_activation == "sigmoid" else 0.0)).astype(np.int64)
    else:
        pred = out.argmax(axis=-1)
    return (pred == data.labels[None, :]).mean(axis=1)


def _evaluate(sc: Scenario, params: Params, data: Data) -> tuple[np.ndarray, np.ndarray | None]:
    with np.errstate(all="ignore"):
        p = run_pass(sc, params, data.x.astype(params.W[0].dtype, copy=False), loss_target(sc, data))
        return p.loss, accuracy(sc, p.a[-1], data)


def _record(sc: Scenario, params: Params, step: int, probe: Data, train: Data, hold: Data) -> dict[str, Any]:
    p = run_pass(sc, params, probe.x.astype(params.W[0].dtype, copy=False), loss_target(sc, probe))
    with np.errstate(all="ignore"):
        d = diagnose(sc, params, p, with_theory=False)
    train_loss, train_acc = _evaluate(sc, params, train)
    hold_loss, hold_acc = _evaluate(sc, params, hold)
    return {"step": step, "verdict": d.summary.verdict,
            "train_loss": Stat.of(train_loss).to_dict(), "holdout_loss": Stat.of(hold_loss).to_dict(),
            "train_accuracy": Stat.of(train_acc).to_dict() if train_acc is not None else None,
            "holdout_accuracy": Stat.of(hold_acc).to_dict() if hold_acc is not None else None,
            "layers": [layer.to_dict() for layer in d.layers]}


Progress = Callable[[int, int], None]   # progress(steps done, total steps), called after every step


def train_ensemble(sc: Scenario, params: Params, train: Data, probe: Data, hold: Data,
                   progress: Progress | None = None) -> tuple[Params, list[dict[str, Any]]]:
    """Train every member from `params` for train.steps steps; returns the final params and the history."""
    cfg = dict(sc.train or {})
    opt = OPTIMIZERS.get(cfg["optimizer"])
    hyper = {k: cfg[k] for k in ("lr", "momentum", "beta1", "beta2", "eps")}
    n = train.x.shape[0]
    batch = cfg.get("batch_size") or n
    order_rng = np.random.default_rng(np.random.SeedSequence(sc.seed, spawn_key=(7,)))
    target = loss_target(sc, train)
    x = train.x.astype(params.W[0].dtype, copy=False)
    state: dict[str, Any] = {}
    tensors = params.W + (params.b or [])
    history = [_record(sc, params, 0, probe, train, hold)]
    perm = np.arange(n)
    pos = n
    for step in range(1, cfg["steps"] + 1):
        if batch >= n:
            idx = None
        else:
            if pos + batch > n:
                perm = order_rng.permutation(n)
                pos = 0
            idx = perm[pos:pos + batch]
            pos += batch
        xb = x if idx is None else x[idx]
        tb = target if idx is None else target[idx]
        p = run_pass(sc, params, xb, tb)
        grads = p.dW + (p.db or [])
        with np.errstate(all="ignore"):
            opt.step(tensors, grads, state, step, **hyper)
        if step % cfg["record_every"] == 0 or step == cfg["steps"]:
            history.append(_record(sc, params, step, probe, train, hold))
        if progress is not None:
            progress(step, cfg["steps"])
    return params, history


def _median_norm(entry: dict[str, Any], layer: int) -> float | None:
    return entry["layers"][layer]["weight_grad_norm"]["median"]


def dynamics(sc: Scenario, history: list[dict[str, Any]]) -> tuple[dict[str, Any], list[Finding]]:
    """Summary of how gradient flow changed over training, and findings about it."""
    first, last = history[0], history[-1]
    L = len(first["layers"])
    falls = []
    for l in range(L):
        a, b = _median_norm(first, l), _median_norm(last, l)
        falls.append(a / b if a and b and b > 0 else None)
    acc = last["holdout_accuracy"]["median"] if last["holdout_accuracy"] else None
    loss0, loss1 = first["holdout_loss"]["median"], last["holdout_loss"]["median"]
    half = history[len(history) // 2]["holdout_loss"]["median"]
    summary: dict[str, Any] = {
        "steps": last["step"], "optimizer": sc.train["optimizer"] if sc.train else None,
        "lr": sc.train["lr"] if sc.train else None,
        "final_loss": loss1, "initial_loss": loss0, "final_accuracy": acc,
        "final_train_loss": last["train_loss"]["median"],
        "gradient_fall": {str(l + 1): falls[l] for l in range(L)},
        "steps_to_accuracy": _steps_to(history, 0.9),
    }
    findings: list[Finding] = []
    f1, fL = falls[0], falls[-1]
    if f1 is not None and fL is not None and f1 > FADE_FACTOR and f1 > 3 * fL:
        findings.append(Finding(
            "gradient-fade", "warning", (1,),
            f"layer 1 gradient fell {f1:.3g}× during training while the output layer's fell {fL:.3g}× "
            f"(median ‖∂L/∂W‖ {_median_norm(first, 0):.3g} → {_median_norm(last, 0):.3g})",
            "the early layers stop learning first as their units saturate: lower the learning rate, or use relu + "
            "he_normal (or tanh + xavier), whose derivatives do not vanish"
            + ("" if sc.train and sc.train["optimizer"] == "adam" else
               ", or adam, which rescales each parameter's step")))
    if loss0 is None or loss1 is None or not math.isfinite(loss1):
        findings.append(Finding("training-diverged", "error", tuple(range(1, L + 1)),
                                "the held-out loss became NaN/Inf during training",
                                "lower the learning rate or the init scale"))
    elif loss1 > 2 * loss0:
        findings.append(Finding("training-diverged", "error", tuple(range(1, L + 1)),
                                f"the held-out loss rose from {loss0:.3g} to {loss1:.3g}",
                                "lower the learning rate"))
    elif half is not None and half > 0 and (half - loss1) / half < PLATEAU_GAIN and (acc is None or acc < 0.9):
        out_sat = last["layers"][-1]["saturation"]["median"] or 0.0
        why = (f"saturated outputs ({100 * out_sat:.0f}% of output samples pinned near 0/1)" if out_sat > 0.3
               else "vanishing gradients" if last["verdict"] == "vanishing" else "a small gradient at the output")
        findings.append(Finding(
            "loss-plateau", "warning", (L,),
            f"loss plateaued: held-out loss {half:.3g} at step {history[len(history) // 2]['step']} and {loss1:.3g} "
            f"at step {last['step']}" + (f", accuracy {acc:.3g}" if acc is not None else "") + f": {why}",
            "use cross_entropy on softmax outputs (bce on sigmoid), a better-scaled init, or a larger learning "
            "rate"))
    return summary, findings


def _steps_to(history: list[dict[str, Any]], level: float) -> int | None:
    for h in history:
        acc = h["holdout_accuracy"]
        if acc and acc["median"] is not None and acc["median"] >= level:
            return int(h["step"])
    return None


def train(sc: Scenario, *, label: str | None = None, max_memory: int = 2 * 2**30,
          progress: Progress | None = None) -> RunReport:
    """Train the scenario's ensemble; the report keeps step 0's analysis and adds history and dynamics."""
    from .api import analyze

    cfg = dict(sc.train or {})
    n_train, n_hold = cfg["train_size"], cfg["holdout"]
    check_memory(sc, max_memory, batch=max(n_train, n_hold, sc.batch_size))
    data = draw_data(sc, n=n_train + n_hold)
    train_set, hold = _split(data, n_train)
    probe = _split(train_set, min(sc.batch_size, n_train))[0]
    params = init_params(sc)
    start = analyze(sc, params, probe.x, loss_target(sc, probe), label=label)
    work = Params([W.copy() for W in params.W], [b.copy() for b in params.b] if params.b is not None else None)
    _, history = train_ensemble(sc, work, train_set, probe, hold, progress)
    summary, findings = dynamics(sc, history)
    return replace(start, history=tuple(history), training=summary,
                   findings=tuple(start.findings) + tuple(findings))


def race_summary(reports: list[RunReport], labels: list[str]) -> dict[str, Any]:
    """Loss and accuracy per recorded step per variant, and who got where first."""
    per: dict[str, Any] = {}
    for r, lab in zip(reports, labels, strict=True):
        hist = r.history or ()
        per[lab] = {"steps": [h["step"] for h in hist],
                    "holdout_loss": [h["holdout_loss"]["median"] for h in hist],
                    "holdout_accuracy": [h["holdout_accuracy"]["median"] if h["holdout_accuracy"] else None
                                         for h in hist],
                    "final_loss": r.training["final_loss"] if r.training else None,
                    "final_accuracy": r.training["final_accuracy"] if r.training else None}
    accs = [v["final_accuracy"] for v in per.values() if v["final_accuracy"] is not None]
    out: dict[str, Any] = {"variants": per}
    if accs:
        level = round(0.9 * max(accs), 4)
        firsts = {}
        for lab, v in per.items():
            firsts[lab] = next((s for s, a in zip(v["steps"], v["holdout_accuracy"], strict=True)
                                if a is not None and a >= level), None)
        reached = {k: s for k, s in firsts.items() if s is not None}
        out["accuracy_level"] = level
        out["first_to_level"] = firsts
        out["leader"] = min(reached, key=lambda k: (reached[k], labels.index(k))) if reached else None
    else:
        losses = {lab: v["final_loss"] for lab, v in per.items() if v["final_loss"] is not None}
        out["leader"] = min(losses, key=lambda k: losses[k]) if losses else None
    return out

