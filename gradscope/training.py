"""Training dynamics: the whole ensemble trained at once, gradient flow recorded over steps.

Every member trains independently on the same data (arrays keep the seed axis first, one NumPy
call updates all members). Every `record_every` steps the per-layer statistics of the run report
are measured on a fixed probe batch (the first `data.batch_size` training samples), with the loss
on the training set and the loss and accuracy on a held-out split.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .activations import ACTIVATIONS
from .analysis import analyze, measure
from .datasets import DATASETS, Data
from .diagnostics import _fmt
from .engine import Params, Pass, check_memory, dense_rows, draw_data, init_params, loss_target, run_pass
from .losses import LOSSES
from .optimizers import OPTIMIZERS, hyperparameters, relative_change
from .report import Finding, HistoryRecord, RunReport, Stat
from .scenario import Scenario

FADE_FACTOR = 10.0      # a layer whose gradient falls more than this is reported as fading
PLATEAU_GAIN = 0.01     # held-out loss improving less than 1% over the second half is a plateau
LR_STEP = 10.0          # remedies that change the learning rate change it by this factor
RISE = 0.25             # a loss ending more than 25% above its lowest recorded value rose ...
OVERFIT_RISE = 0.1      # a held-out loss ending more than 10% above its lowest, while training loss fell, overfits
GIVE_BACK = 0.1         # ... if it also gave back more than 10% of the improvement from step 0 to that low
DIED = 0.25             # a layer whose median dead-unit fraction grew by more than 25 points lost units
ACCURACY_DROP = 0.02    # held-out accuracy this far below its best is reported as fallen


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
    """Per-seed loss and accuracy; a seed whose loss is NaN/Inf has no accuracy (NaN), not a chance one."""
    with np.errstate(all="ignore"):
        p = run_pass(sc, params, data.x.astype(params.W[0].dtype, copy=False), loss_target(sc, data),
                     dropout=False)  # evaluation, as model.eval(): no dropout
    return _loss_accuracy(sc, p, data)


def _loss_accuracy(sc: Scenario, p: Pass, data: Data) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-seed loss and accuracy of a pass over `data` (run without dropout)."""
    with np.errstate(all="ignore"):
        acc = accuracy(sc, p.a[-1], data)
        if acc is not None:
            acc = np.where(np.isfinite(p.loss), acc, np.nan)
        return p.loss, acc


@dataclass
class Trace:
    """Per-seed arrays of a training run: what the training findings read and `--save-arrays` writes.

    R recorded steps, S seeds, L layers. Step t means "after t optimizer steps".
    """

    steps: np.ndarray                       # (R,) the recorded steps, 0 first
    train_loss: np.ndarray                  # (R, S) on the whole training set
    holdout_loss: np.ndarray                # (R, S)
    train_accuracy: np.ndarray | None       # (R, S), NaN for a seed whose loss is NaN/Inf
    holdout_accuracy: np.ndarray | None     # (R, S)
    dead_fraction: np.ndarray               # (R, L, S) on the probe batch
    update_ratio: np.ndarray                # (R, L, S) ‖ΔW_l‖/‖W_l‖ of step t's update; row 0: the first step's
    first_nonfinite: np.ndarray             # (S,) first step whose minibatch loss was NaN/Inf, -1 if none
    batch: int                              # minibatch size (n for full-batch training)
    permutations: list[np.ndarray]          # one permutation of the n training samples per epoch
    final: Params                           # the weights after the last step
    train_set: Data
    holdout_set: Data
    target_train: np.ndarray
    target_holdout: np.ndarray
    rows: tuple[int, ...] = ()              # report row of each dense layer (npz keys W{row}_final)

    def batch_order(self) -> np.ndarray:
        """(steps, batch) int32 training-sample indices of every step's minibatch, in order."""
        steps = int(self.steps[-1])
        n = self.train_set.x.shape[0]
        if self.batch >= n:
            return np.broadcast_to(np.arange(n, dtype=np.int32), (steps, n)).copy()
        per_epoch = n // self.batch
        rows = [perm[i * self.batch:(i + 1) * self.batch] for perm in self.permutations for i in range(per_epoch)]
        return np.stack(rows[:steps]).astype(np.int32)

    def arrays(self) -> dict[str, np.ndarray]:
        """The npz entries a training run adds (README, Training dynamics)."""
        out: dict[str, np.ndarray] = {}
        for l, (W, r) in enumerate(zip(self.final.W, self.rows, strict=True), start=1):
            out[f"W{r}_final"] = W
            if self.final.b is not None:
                out[f"b{r}_final"] = self.final.b[l - 1]
        out.update({f"{k}_final": v for k, v in self.final.extra.items()})
        out.update({"batch_order": self.batch_order(), "x_train": self.train_set.x, "y_train": self.target_train,
                    "x_holdout": self.holdout_set.x, "y_holdout": self.target_holdout,
                    "record_steps": self.steps, "train_loss": self.train_loss, "holdout_loss": self.holdout_loss,
                    "dead_fraction": self.dead_fraction, "update_ratio": self.update_ratio})
        if self.train_accuracy is not None and self.holdout_accuracy is not None:
            out["train_accuracy"] = self.train_accuracy
            out["holdout_accuracy"] = self.holdout_accuracy
        return out


def _record(sc: Scenario, params: Params, step: int, probe: Data, train: Data, hold: Data,
            update: list[np.ndarray], dropout: bool = True) -> tuple[HistoryRecord, dict[str, np.ndarray | None]]:
    """One history record (the probe batch measured as step 0 is, without theory) and its per-seed arrays."""
    p, d = measure(sc, params, probe.x, loss_target(sc, probe), with_theory=False, update_ratio=update,
                   dropout=dropout)
    # the probe batch is the first samples of the training set: when it is all of it and the pass drew no dropout
    # mask, that pass is the training set's evaluation (the same forward, bit for bit)
    whole = probe.x.shape[0] == train.x.shape[0] and p.trace is not None and not p.trace.masks
    train_loss, train_acc = _loss_accuracy(sc, p, train) if whole else _evaluate(sc, params, train)
    hold_loss, hold_acc = _evaluate(sc, params, hold)
    L = len(d.layers)
    entry = HistoryRecord(step=step, verdict=d.summary.verdict,
                          train_loss=Stat.of(train_loss), holdout_loss=Stat.of(hold_loss),
                          train_accuracy=Stat.of(train_acc) if train_acc is not None else None,
                          holdout_accuracy=Stat.of(hold_acc) if hold_acc is not None else None,
                          layers=tuple(d.layers))
    seeds = {"train_loss": train_loss, "holdout_loss": hold_loss, "train_accuracy": train_acc,
             "holdout_accuracy": hold_acc,
             "dead_fraction": np.stack([d.per_seed[f"dead_fraction{l}"] for l in range(1, L + 1)]),
             "update_ratio": np.stack([np.asarray(u, dtype=np.float64) for u in update])}
    return entry, seeds


def _copy(params: Params) -> Params:
    return params.copy()


Progress = Callable[[int, int], None]   # progress(steps done, total steps), called after every step


def train_ensemble(sc: Scenario, params: Params, train: Data, probe: Data, hold: Data,
                   progress: Progress | None = None, dropout: bool = True
                   ) -> tuple[Params, list[HistoryRecord], Trace]:
    """Train every member from `params` (in place) for train.steps steps; the final params, history and trace.

    Minibatches: every epoch draws a permutation of the n training samples from
    np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7,))) and takes consecutive slices of
    `batch_size` (a remainder shorter than a batch is skipped); full-batch training uses every sample.
    """
    cfg = dict(sc.train or {})
    opt = OPTIMIZERS.get(cfg["optimizer"])
    hyper = hyperparameters(cfg)
    n = train.x.shape[0]
    batch = min(cfg.get("batch_size") or n, n)
    order_rng = np.random.default_rng(np.random.SeedSequence(sc.seed, spawn_key=(7,)))
    target = loss_target(sc, train)
    x = train.x.astype(params.W[0].dtype, copy=False)
    state: dict[str, Any] = {}
    tensors = params.tensors()
    S = params.W[0].shape[0]
    first_bad = np.full(S, -1, dtype=np.int64)
    perms: list[np.ndarray] = []
    entries: list[tuple[HistoryRecord, dict[str, Any]]] = []
    perm = np.arange(n)
    pos = n
    for step in range(1, cfg["steps"] + 1):
        if batch >= n:
            idx = None
        else:
            if pos + batch > n:
                perm = order_rng.permutation(n)
                perms.append(perm)
                pos = 0
            idx = perm[pos:pos + batch]
            pos += batch
        xb = x if idx is None else x[idx]
        tb = target if idx is None else target[idx]
        p = run_pass(sc, params, xb, tb, step=step, head=False)  # dropout masks of this step; ŷ not needed
        newly = ~np.isfinite(p.loss) & (first_bad < 0)
        first_bad[newly] = step - 1   # the loss of the weights after step-1 updates
        grads = p.grads(params)
        recording = step == 1 or step % cfg["record_every"] == 0 or step == cfg["steps"]
        before = _copy(params) if recording else None
        with np.errstate(all="ignore"):
            opt.step(tensors, grads, state, step, **hyper)
        if before is not None:
            update = relative_change(before.W, params.W)
            if step == 1:   # step 0's record carries the update the first step actually made
                entries.append(_record(sc, before, 0, probe, train, hold, update, dropout))
            if step % cfg["record_every"] == 0 or step == cfg["steps"]:
                entries.append(_record(sc, params, step, probe, train, hold, update, dropout))
        if progress is not None:
            progress(step, cfg["steps"])
    history = [e for e, _ in entries]
    per = [a for _, a in entries]
    has_acc = per[0]["holdout_accuracy"] is not None
    trace = Trace(steps=np.array([e.step for e in history], dtype=np.int64),
                  train_loss=np.stack([a["train_loss"] for a in per]),
                  holdout_loss=np.stack([a["holdout_loss"] for a in per]),
                  train_accuracy=np.stack([a["train_accuracy"] for a in per]) if has_acc else None,
                  holdout_accuracy=np.stack([a["holdout_accuracy"] for a in per]) if has_acc else None,
                  dead_fraction=np.stack([a["dead_fraction"] for a in per]),
                  update_ratio=np.stack([a["update_ratio"] for a in per]),
                  first_nonfinite=first_bad, batch=batch, permutations=perms, final=params, train_set=train,
                  holdout_set=hold, target_train=target, target_holdout=loss_target(sc, hold),
                  rows=tuple(dense_rows(sc)))
    return params, history, trace


def _median_norm(entry: HistoryRecord, layer: int) -> float | None:
    return entry.layers[layer].median("weight_grad_norm")


def _seed_list(seeds: np.ndarray, most: int = 6) -> str:
    shown = ", ".join(str(int(s)) for s in seeds[:most])
    return shown + (", …" if len(seeds) > most else "")


def _median_over_seeds(values: np.ndarray) -> np.ndarray:
    """Median over the last (seed) axis of the finite values, NaN where none is finite."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(np.where(np.isfinite(values), values, np.nan), axis=-1)


def diverged_seeds(trace: Trace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per seed: non-finite training loss (S,) bool, training loss that ended more than RISE (25%) above its
    step-0 value (S,) bool, and the first step (S,) at which each happened (-1 for a seed that did neither)."""
    tl = trace.train_loss
    rec_bad = ~np.isfinite(tl)
    nonfinite = (trace.first_nonfinite >= 0) | rec_bad.any(axis=0)
    first = np.full(tl.shape[1], -1, dtype=np.int64)
    for s in np.flatnonzero(nonfinite):
        cands = [int(trace.first_nonfinite[s])] if trace.first_nonfinite[s] >= 0 else []
        cands += [int(trace.steps[r]) for r in np.flatnonzero(rec_bad[:, s])[:1]]
        first[s] = min(cands)
    with np.errstate(invalid="ignore"):
        grew = ~nonfinite & (tl[-1] > tl[0] * (1 + RISE))
    for s in np.flatnonzero(grew):
        first[s] = int(trace.steps[np.flatnonzero(tl[:, s] > tl[0, s] * (1 + RISE))[0]])
    return nonfinite, grew, first


Retry = Callable[[float], tuple[list[HistoryRecord], Trace]]


@dataclass(frozen=True)
class Outcome:
    """What a training trace says about its losses, medians over the seeds that did not diverge."""

    steps: list[int]
    nonfinite: np.ndarray     # (S,) bool
    grew: np.ndarray          # (S,) bool
    first_step: np.ndarray    # (S,) int
    train: np.ndarray         # (R,) median training loss
    holdout: np.ndarray       # (R,) median held-out loss
    accuracy: np.ndarray | None   # (R,) median held-out accuracy
    dead: np.ndarray          # (R, L) median dead-unit fraction

    @classmethod
    def of(cls, trace: Trace) -> Outcome:
        nonfinite, grew, first = diverged_seeds(trace)
        ok = ~(nonfinite | grew)
        use = ok if ok.any() else np.ones_like(ok)
        acc = trace.holdout_accuracy
        return cls([int(s) for s in trace.steps], nonfinite, grew, first,
                   _median_over_seeds(trace.train_loss[:, use]), _median_over_seeds(trace.holdout_loss[:, use]),
                   _median_over_seeds(acc[:, use]) if acc is not None else None,
                   np.median(trace.dead_fraction[:, :, use], axis=-1))

    @property
    def over(self) -> str:
        """Which seeds the medians are over (every seed when none is left that did not diverge)."""
        if self.diverged and self.diverged == self.nonfinite.size:
            return "median over all seeds: every seed diverged"
        return "median over the seeds that did not diverge" if self.diverged else "median over seeds"

    @property
    def diverged(self) -> int:
        return int((self.nonfinite | self.grew).sum())

    def lowest_train(self) -> int:
        return int(np.nanargmin(self.train)) if np.isfinite(self.train).any() else 0

    def lowest_holdout(self) -> int:
        return int(np.nanargmin(self.holdout)) if np.isfinite(self.holdout).any() else 0

    def train_rise(self) -> float:
        """How far the final training loss sits above its lowest recorded value, relative to it."""
        tb = self.lowest_train()
        return float(self.train[-1] / self.train[tb] - 1.0) if self.train[tb] > 0 else 0.0

    def unstable(self) -> bool:
        tb = self.lowest_train()
        tr = self.train
        return bool(tb < len(tr) - 1 and tr[-1] > tr[tb] * (1 + RISE)
                    and tr[-1] - tr[tb] > GIVE_BACK * (tr[0] - tr[tb]))

    def overfit(self) -> bool:
        b = self.lowest_holdout()
        ho, tr = self.holdout, self.train
        return bool(b < len(ho) - 1 and ho[-1] > ho[b] * (1 + OVERFIT_RISE) and tr[-1] < tr[b])

    def died(self, depth: int) -> list[int]:
        """Hidden layers (1-based) whose median dead-unit fraction grew by more than DIED; none when every seed's
        training loss became NaN/Inf (its weights are NaN/Inf: no unit's activity is measured)."""
        if self.nonfinite.all():
            return []
        return [l for l in range(1, depth + 1) if self.dead[-1, l - 1] - self.dead[0, l - 1] > DIED]


def dynamics(sc: Scenario, history: list[HistoryRecord], trace: Trace, retry: Retry | None = None
             ) -> tuple[dict[str, Any], list[Finding]]:
    """Summary of how gradient flow and the losses changed over training, and findings about it.

    retry(lr) trains the same initial weights on the same data with another learning rate; remedies that
    change the learning rate state what that re-run measured instead of promising it.
    """
    first, last = history[0], history[-1]
    cfg = dict(sc.train or {})
    lr = cfg.get("lr")
    L = len(first.layers)
    falls = []
    for l in range(L):
        a, b = _median_norm(first, l), _median_norm(last, l)
        falls.append(a / b if a and b and b > 0 else None)
    acc = last.holdout_accuracy.median if last.holdout_accuracy is not None else None
    loss0, loss1 = first.holdout_loss.median, last.holdout_loss.median
    o = Outcome.of(trace)
    steps = o.steps
    best = int(np.nanargmax(o.accuracy)) if o.accuracy is not None and np.isfinite(o.accuracy).any() else None
    summary: dict[str, Any] = {
        "steps": last.step, "optimizer": cfg.get("optimizer"), "lr": lr,
        "final_loss": loss1, "initial_loss": loss0, "final_accuracy": acc,
        "final_train_loss": last.train_loss.median,
        "gradient_fall": {str(l + 1): falls[l] for l in range(L)},
        "steps_to_accuracy": _steps_to(history, 0.9),
        "best_accuracy": _clean(o.accuracy[best]) if o.accuracy is not None and best is not None else None,
        "best_accuracy_step": steps[best] if best is not None else None,
        "diverged_seeds": o.diverged, "nonfinite_seeds": int(o.nonfinite.sum()),
        # the step at which each diverged seed's loss became NaN/Inf or rose past RISE, earliest first
        "diverged_steps": sorted(int(x) for x in o.first_step[o.nonfinite | o.grew]),
    }
    tries: dict[float, Outcome] = {}

    def at(new_lr: float) -> Outcome | None:
        if retry is None:
            return None
        if new_lr not in tries:
            tries[new_lr] = Outcome.of(retry(new_lr)[1])
        return tries[new_lr]

    findings: list[Finding] = []
    f1, fL = falls[0], falls[-1]
    if f1 is not None and fL is not None and f1 > FADE_FACTOR and f1 > 3 * fL:
        findings.append(_fade(sc, f1, fL, first, last, lr))
    acc_txt = _accuracy_fall(o.accuracy, steps, best)
    died = o.died(sc.depth)
    if o.diverged:
        findings.append(_diverged(sc, trace, o, lr, at))
    elif o.overfit():
        findings.append(_overfitting(sc, trace, o, acc_txt))
    elif o.unstable():
        findings.append(_unstable(sc, o, lr, acc_txt, at))
    elif not died:
        plateau = _plateau(sc, history, o, acc, lr, at)
        if plateau is not None:
            findings.append(plateau)
    if died:
        findings.append(_units_died(sc, o, died, lr, at))
    return summary, findings


def _clean(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _rise(rise: float, of: str = "it") -> str:
    """'75% above it' for a rise of 0.75, '1.1e+05× it' for 1.1e5 - 1."""
    return f"{_fmt(100 * rise)}% above {of}" if rise <= 1 else f"{_fmt(1 + rise)}× {of}"


def _accuracy_fall(accs: np.ndarray | None, steps: list[int], best: int | None) -> str:
    if accs is None or best is None or not math.isfinite(accs[-1]) or accs[best] - accs[-1] < ACCURACY_DROP:
        return ""
    return (f"; held-out accuracy fell from its best {_fmt(accs[best])} (step {steps[best]}) to {_fmt(accs[-1])}"
            f" (step {steps[-1]})")


def _fade(sc: Scenario, f1: float, fL: float, first: HistoryRecord, last: HistoryRecord, lr: float | None
          ) -> Finding:
    acts = {sc.layer_activation(l) for l in range(1, sc.n_layers)}
    remedies = []
    if lr:
        remedies.append(f"lower the learning rate (lr {_fmt(lr)} → {_fmt(lr / LR_STEP)}): smaller steps drive "
                        "fewer units into their flat region")
    if acts & {"sigmoid", "tanh", "softsign", "hardtanh"}:
        remedies.append("use relu + he_normal, whose derivative does not shrink as units grow")
    if sc.train and sc.train["optimizer"] != "adam":
        remedies.append("or adam, which rescales each parameter's step")
    return Finding(
        "gradient-fade", "warning", (1,),
        f"layer 1 gradient fell {_fmt(f1)}× during training while the output layer's fell {_fmt(fL)}× "
        f"(median ‖∂L/∂W‖ {_fmt(_median_norm(first, 0))} → {_fmt(_median_norm(last, 0))})",
        "the early layers stop learning first as their units saturate: " + "; ".join(remedies))


RERUN = "re-run from the same initial weights and data"


def _diverged(sc: Scenario, trace: Trace, o: Outcome, lr: float | None, at: Any) -> Finding:
    S = o.nonfinite.size
    parts = []
    if o.nonfinite.any():
        bad = np.flatnonzero(o.nonfinite)
        parts.append(f"the training loss became NaN/Inf in {bad.size} of {S} seeds (first at step "
                     f"{int(o.first_step[bad].min())}; seeds {_seed_list(bad)})")
    if o.grew.any():
        g = np.flatnonzero(o.grew)
        tl = trace.train_loss
        parts.append(f"the training loss ended more than {_fmt(100 * RISE)}% above its step-0 value in {g.size} of "
                     f"{S} seeds (median {_fmt(float(np.median(tl[0, g])))} → {_fmt(float(np.median(tl[-1, g])))}; "
                     f"first that high at step {int(o.first_step[g].min())}; seeds {_seed_list(g)})")
    if not np.isfinite(trace.train_loss[0]).all():
        hint = "the loss is NaN/Inf before any step (see the overflow finding): lower the init scale"
    elif not lr:
        hint = "lower the learning rate"
    else:
        hint = "lower the learning rate"
        tried = []
        for k in (1, 2):
            new = lr / LR_STEP**k
            r = at(new)
            if r is None:
                hint += f" (lr {_fmt(lr)} → {_fmt(lr / LR_STEP)})"
                break
            tried.append((new, r.diverged))
            if not r.diverged:
                break
        if tried:
            res = "; ".join(f"at lr {_fmt(x)}: {'no seed diverged' if n == 0 else f'{n} of {S} seeds still diverged'}"
                            for x, n in tried)
            hint += f": {RERUN}, {res}"
            if tried[-1][1]:
                hint += "; a smaller init scale or a different optimizer may be needed too"
    return Finding("training-diverged", "error", tuple(range(1, sc.n_layers + 1)), "; ".join(parts), hint)


def _overfitting(sc: Scenario, trace: Trace, o: Outcome, acc_txt: str) -> Finding:
    n = trace.train_set.x.shape[0]
    b, steps, ho, tr = o.lowest_holdout(), o.steps, o.holdout, o.train
    msg = (f"the held-out loss rose from its lowest {_fmt(ho[b])} (step {steps[b]}) to {_fmt(ho[-1])} (step "
           f"{steps[-1]}) while the training loss fell from {_fmt(tr[b])} to {_fmt(tr[-1])}: the network fits its "
           f"{n} training samples better and new samples worse" + acc_txt + " (medians over seeds)")
    if steps[b] == 0:
        hint = (f"the held-out loss never went below its step-0 value: train on more data (train.train_size "
                f"above {n}) or use a smaller network; gradscope has not measured how much either helps")
    else:
        hint = (f"stop at step {steps[b]} (train.steps: {steps[b]}, early stopping at the lowest held-out loss "
                f"measured) to keep held-out loss {_fmt(ho[b])}; more training data (train.train_size above {n}) "
                "usually narrows the gap, by an amount gradscope has not measured")
    return Finding("overfitting", "warning", tuple(range(1, sc.n_layers + 1)), msg, hint)


def _unstable(sc: Scenario, o: Outcome, lr: float | None, acc_txt: str, at: Any) -> Finding:
    tb, steps, tr = o.lowest_train(), o.steps, o.train
    msg = (f"the training loss rose from its lowest {_fmt(tr[tb])} (step {steps[tb]}) to {_fmt(tr[-1])} (step "
           f"{steps[-1]}), {_rise(o.train_rise())}; held-out loss {_fmt(o.holdout[-1])}" + acc_txt
           + " (medians over seeds)")
    hint = f"stop at step {steps[tb]} (train.steps: {steps[tb]}), where the training loss was lowest"
    if lr:
        new = lr / LR_STEP
        r = at(new)
        if r is None:
            hint = f"lower the learning rate (lr {_fmt(lr)} → {_fmt(new)}), or " + hint
        elif not r.diverged and not r.unstable() and r.train[-1] < tr[-1]:
            hint = (f"lower the learning rate: {RERUN} at lr {_fmt(new)}, the training loss ended "
                    f"{_fmt(r.train[-1])}, {_rise(r.train_rise(), 'its lowest')}; or " + hint)
        elif not r.diverged and not r.unstable():
            hint += (f"; a smaller learning rate is no cure here: {RERUN} at lr {_fmt(new)}, the training loss no "
                     f"longer rose but ended at {_fmt(r.train[-1])}, above this run's {_fmt(tr[-1])} (slower "
                     "progress in the same steps)")
        else:
            hint += (f"; at lr {_fmt(new)} ({RERUN}) the training loss still rose, so gradscope cannot say that "
                     "a smaller learning rate fixes it")
    return Finding("training-unstable", "warning", tuple(range(1, sc.n_layers + 1)), msg, hint)


def _units_died(sc: Scenario, o: Outcome, died: list[int], lr: float | None, at: Any) -> Finding:
    d0, d1 = o.dead[0], o.dead[-1]
    parts = ", ".join(f"layer {l} from {_fmt(100 * d0[l - 1])}% to {_fmt(100 * d1[l - 1])}%" for l in died)
    remedies = []
    if lr:
        new = lr / LR_STEP
        r = at(new)
        if r is None:
            remedies.append(f"lower the learning rate (lr {_fmt(lr)} → {_fmt(new)}): a large step can push a "
                            "unit's pre-activation below zero for every input")
        else:
            after = ", ".join(f"layer {l} {_fmt(100 * r.dead[-1, l - 1])}%" for l in died)
            if all(r.dead[-1, l - 1] < d1[l - 1] for l in died):
                remedies.append(f"lower the learning rate: {RERUN} at lr {_fmt(new)}, the dead fractions ended at "
                                f"{after} (a large step can push a unit's pre-activation below zero for every input)")
            else:
                remedies.append(f"at lr {_fmt(new)} ({RERUN}) the dead fractions ended at {after}: a smaller "
                                "learning rate does not keep these units alive")
    if sc.depth and any(ACTIVATIONS.get(sc.activations[l - 1].name).can_die for l in died):
        remedies.append("leaky_relu keeps a slope of negative_slope below zero, so its units cannot die")
    return Finding(
        "units-died", "warning", tuple(died),
        f"units died during training: the fraction of hidden units inactive for all {sc.batch_size} probe "
        f"samples grew in {parts} (step {o.steps[0]} → {o.steps[-1]}, {o.over}); a dead unit passes no "
        "gradient and does not recover", "; ".join(remedies) or "see the dead-units finding for causes")


def _plateau(sc: Scenario, history: list[HistoryRecord], o: Outcome, acc: float | None, lr: float | None,
             at: Any) -> Finding | None:
    """Held-out loss improving under 1% over the second half below 90% accuracy, with advice from the facts."""
    h = len(history) // 2
    ho, tr = o.holdout, o.train
    half, end = ho[h], ho[-1]
    if not (math.isfinite(half) and half > 0 and (half - end) / half < PLATEAU_GAIN and (acc is None or acc < 0.9)):
        return None
    last = history[-1]
    L = len(last.layers)
    out_sat = last.layers[-1].median("saturation") or 0.0
    why = (f"saturated outputs ({_fmt(100 * out_sat)}% of output samples pinned near 0/1)" if out_sat > 0.3
           else "vanishing gradients" if last.verdict == "vanishing" else "a small gradient at the output")
    loss = LOSSES.get(sc.loss.name)
    head = sc.output_activation
    remedies = []
    if not loss.classification and head in ("sigmoid", "softmax"):
        better = "cross_entropy" if head == "softmax" else "bce"
        remedies.append(f"use {better} instead of {sc.loss.name}: its gradient at the logits is ŷ - y, which does "
                        f"not vanish when a {head} output is pinned at the wrong value")
    if history[0].verdict in ("saturated", "vanishing", "exploding"):
        remedies.append(f"a better-scaled init (the step-0 verdict is {history[0].verdict})")
    steady = bool(np.isfinite(tr).all() and np.all(np.diff(tr) <= 0) and np.all(np.diff(ho) <= 0))
    if lr and steady:
        new = lr * LR_STEP
        r = at(new)
        if r is None:
            remedies.append(f"a larger learning rate (lr {_fmt(lr)} → {_fmt(new)}): both losses fell at every "
                            "recorded step")
        elif not r.diverged and r.holdout[-1] < end:
            remedies.append(f"a larger learning rate: {RERUN} at lr {_fmt(new)}, the held-out loss ended at "
                            f"{_fmt(r.holdout[-1])} instead of {_fmt(end)}")
    hint = "; ".join(remedies) if remedies else (
        "the loss, the outputs and the init look right and a larger learning rate did not help: gradscope cannot "
        "tell which change would (a wider network, more data or more steps are candidates)")
    return Finding(
        "loss-plateau", "warning", (L,),
        f"loss plateaued: held-out loss {_fmt(half)} at step {history[h].step} and {_fmt(end)} at step "
        f"{last.step}" + (f", accuracy {_fmt(acc)}" if acc is not None else "") + f": {why}", hint)


def _steps_to(history: list[HistoryRecord], level: float) -> int | None:
    for h in history:
        acc = h.holdout_accuracy
        if acc is not None and acc.median is not None and acc.median >= level:
            return int(h.step)
    return None


def train(sc: Scenario, *, label: str | None = None, max_memory: int = 2 * 2**30,
          progress: Progress | None = None, dropout: bool = True) -> RunReport:
    """Train the scenario's ensemble; the report keeps step 0's analysis and adds history and dynamics.

    dropout=False measures step 0 and every record without dropout (`--eval`); the training steps keep it.

    Step 0's `update_ratio` is the update the first training step actually made (‖ΔW_l‖/‖W_l‖).
    """
    cfg = dict(sc.train or {})
    n_train, n_hold = cfg["train_size"], cfg["holdout"]
    check_memory(sc, max_memory, batch=max(n_train, n_hold, sc.batch_size))
    data = draw_data(sc, n=n_train + n_hold)
    train_set, hold = _split(data, n_train)
    probe = _split(train_set, min(sc.batch_size, n_train))[0]
    params = init_params(sc)
    _, history, trace = train_ensemble(sc, _copy(params), train_set, probe, hold, progress, dropout)
    start = analyze(sc, params, probe.x, loss_target(sc, probe), label=label, update_ratio=list(trace.update_ratio[0]),
                    dropout=dropout)

    def retry(lr: float) -> tuple[list[HistoryRecord], Trace]:
        other = replace(sc, train={**dict(sc.train or {}), "lr": lr})
        _, h, t = train_ensemble(other, _copy(params), train_set, probe, hold)
        return h, t

    summary, findings = dynamics(sc, history, trace, retry)
    return replace(start, history=tuple(history), training=summary,
                   findings=tuple(start.findings) + tuple(findings), trace=trace)


def race_summary(reports: list[RunReport], labels: list[str]) -> dict[str, Any]:
    """Loss and accuracy per recorded step per variant, and who got where first."""
    per: dict[str, Any] = {}
    for r, lab in zip(reports, labels, strict=True):
        hist = r.history or ()
        per[lab] = {"steps": [h.step for h in hist],
                    "holdout_loss": [h.holdout_loss.median for h in hist],
                    "holdout_accuracy": [h.holdout_accuracy.median if h.holdout_accuracy is not None else None
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

