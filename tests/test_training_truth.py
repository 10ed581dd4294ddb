"""Training findings say what the arrays say: every number recomputed, every remedy applied."""

import copy
import re

import numpy as np
import pytest

import gradscope
from gradscope.diagnostics import _fmt
from gradscope.engine import Params, run_pass
from gradscope.optimizers import OPTIMIZERS
from gradscope.report import Stat
from gradscope.scenario import load_scenario

TINY = {"seed": 3, "seeds": 3,
        "network": {"input_dim": 4, "widths": [8, 8], "output_dim": 3, "activation": "tanh"},
        "data": {"kind": "blobs", "batch_size": 16},
        "train": {"steps": 1, "optimizer": "sgd", "lr": 0.05, "train_size": 40, "holdout": 20, "record_every": 1}}

# a 3-layer ReLU net on blobs trained by full-batch SGD: at lr 5 seeds diverge, at lr 0.5 it overfits
RELU = {"seed": 0, "seeds": 4,
        "network": {"input_dim": 8, "depth": 3, "width": 32, "output_dim": 3, "activation": "relu",
                    "init": "he_normal"},
        "loss": "cross_entropy", "data": {"kind": "blobs", "batch_size": 64},
        "train": {"steps": 40, "optimizer": "sgd", "lr": 5.0, "train_size": 128, "holdout": 64, "record_every": 10}}


def _scenario(base, **train):
    d = copy.deepcopy(base)
    d["train"].update(train)
    return load_scenario(d)


def _run_saved(sc, tmp_path, name="run.npz"):
    r = gradscope.run(sc)
    path = tmp_path / name
    gradscope.save_arrays(r, path)
    with np.load(path) as z:
        return r, {k: z[k] for k in z.files}


def _finding(report, code):
    found = [f for f in report.findings if f.code == code]
    assert found, [f.code for f in report.findings]
    return found[0]


def _numbers(text):
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?", text)]


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_update_ratio_is_the_step_the_optimizer_makes(optimizer, tmp_path):
    sc = _scenario(TINY, optimizer=optimizer)
    r, z = _run_saved(sc, tmp_path)
    L = sc.n_layers
    for l in range(1, L + 1):
        W0, W1 = z[f"W{l}"], z[f"W{l}_final"]
        want = np.linalg.norm((W1 - W0).reshape(3, -1), axis=1) / np.linalg.norm(W0.reshape(3, -1), axis=1)
        np.testing.assert_allclose(r.per_seed[f"update_ratio{l}"], want, rtol=1e-12)
        np.testing.assert_allclose(z["update_ratio"][0, l - 1], want, rtol=1e-12)
        med = pytest.approx(Stat.of(want).median, rel=1e-12)
        assert r.layers[l - 1].stats["update_ratio"].median == med
        assert r.history[0].median("update_ratio", l) == med
        assert r.history[1].median("update_ratio", l) == med
        old = sc.train["lr"] * r.per_seed[f"grad_weight_ratio{l}"]   # lr·‖∂L/∂W‖/‖W‖ on the probe batch
        if optimizer == "adam":  # Adam's first step is lr·sign(g): nothing like lr·‖g‖/‖W‖
            assert np.all(want > 5 * old)


def test_update_ratio_finding_numbers_and_remedy():
    sc = _scenario(TINY, optimizer="adam", lr=0.5)
    r = gradscope.run(sc)
    f = _finding(r, "update-ratio")
    m = re.search(r"changes layer (\d+)'s weights by ‖ΔW‖/‖W‖ = (\S+) \(lr (\S+),", f.message)
    l0 = int(m.group(1))
    assert m.group(2) == _fmt(r.layers[l0 - 1].median("update_ratio")) and m.group(3) == _fmt(0.5)
    guide = sc.diagnostics["update_ratio_guide"]
    assert all(r.layers[l - 1].median("update_ratio") > 10 * guide for l in f.layers)
    new_lr = float(re.search(r"^lr (\S+) would make", f.hint).group(1))
    again = gradscope.run(_scenario(TINY, optimizer="adam", lr=new_lr))
    assert again.layers[l0 - 1].median("update_ratio") == pytest.approx(guide, rel=5e-3)


def test_save_arrays_reproduces_the_training_run(tmp_path):
    base = copy.deepcopy(TINY)
    base["train"].update(steps=13, optimizer="adam", lr=0.05, batch_size=12, record_every=5)
    sc = load_scenario(base)
    r, z = _run_saved(sc, tmp_path)
    order = z["batch_order"]
    assert order.shape == (13, 12)
    # the documented shuffle stream: one permutation per epoch, consecutive slices, the remainder skipped
    rng = np.random.default_rng(np.random.SeedSequence(sc.seed, spawn_key=(7,)))
    rows = [p[i * 12:(i + 1) * 12] for p in (rng.permutation(40) for _ in range(5)) for i in range(40 // 12)]
    np.testing.assert_array_equal(order, np.stack(rows[:13]))
    L = sc.n_layers
    params = Params([z[f"W{l}"].copy() for l in range(1, L + 1)], [z[f"b{l}"].copy() for l in range(1, L + 1)])
    state: dict = {}
    for t, idx in enumerate(order, start=1):
        p = run_pass(sc, params, z["x_train"][idx], z["y_train"][idx])
        OPTIMIZERS.get("adam").step(params.W + params.b, p.dW + p.db, state, t, lr=0.05)
    for l in range(1, L + 1):
        np.testing.assert_allclose(params.W[l - 1], z[f"W{l}_final"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(params.b[l - 1], z[f"b{l}_final"], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(z["record_steps"], [0, 5, 10, 13])
    assert r.history[-1].train_loss.median == Stat.of(z["train_loss"][-1]).median


def _retrain(sc, z, steps):
    """Replay a saved full-batch/minibatch SGD run from the npz: per seed, the first step whose loss is NaN/Inf."""
    L = sc.n_layers
    params = Params([z[f"W{l}"].copy() for l in range(1, L + 1)], [z[f"b{l}"].copy() for l in range(1, L + 1)])
    first = np.full(sc.seeds, -1)
    state: dict = {}
    for t, idx in enumerate(z["batch_order"][:steps], start=1):
        p = run_pass(sc, params, z["x_train"][idx], z["y_train"][idx])
        first[(first < 0) & ~np.isfinite(p.loss)] = t - 1
        with np.errstate(all="ignore"):
            OPTIMIZERS.get(sc.train["optimizer"]).step(params.W + params.b, p.dW + p.db, state, t, lr=sc.train["lr"])
    return first


def test_training_diverged_counts_seeds_and_its_remedy_works(tmp_path):
    from gradscope.checks import evaluate

    sc = _scenario(RELU, lr=10.0)
    r, z = _run_saved(sc, tmp_path)
    f = _finding(r, "training-diverged")
    assert f.severity == "error"
    # NaN/Inf seeds and their first step, replayed from the saved initial weights and batch order
    first = _retrain(sc, z, 40)
    bad = np.flatnonzero(first >= 0)
    assert bad.size and f"NaN/Inf in {bad.size} of 4 seeds (first at step {first[bad].min()}; seeds " \
        f"{', '.join(map(str, bad))})" in f.message
    # seeds whose training loss ended more than 25% above its step-0 value (finite ones)
    tl = z["train_loss"]
    grew = np.array([s for s in np.flatnonzero(np.isfinite(tl[-1]) & (tl[-1] > 1.25 * tl[0])) if s not in bad])
    if grew.size:
        step = min(int(z["record_steps"][np.flatnonzero(tl[:, s] > 1.25 * tl[0, s])[0]]) for s in grew)
        assert (f"above its step-0 value in {grew.size} of 4 seeds (median {_fmt(float(np.median(tl[0, grew])))}"
                f" → {_fmt(float(np.median(tl[-1, grew])))}; first that high at step {step}") in f.message
    else:
        assert "above its step-0 value" not in f.message
    assert r.training["diverged_seeds"] == bad.size + grew.size
    assert "loss-plateau" not in {g.code for g in r.findings}  # never "a larger learning rate" here
    assert any("training diverged" in reason for reason in evaluate(r, {"verdict": ["healthy"]}))
    # the remedy's learning rate, applied, no longer diverges
    fixed = float(re.search(r"at lr (\S+): no seed diverged", f.hint).group(1))
    again = gradscope.run(_scenario(RELU, lr=fixed))
    assert "training-diverged" not in {g.code for g in again.findings}
    assert again.training["diverged_seeds"] == 0


def test_overfitting_is_not_divergence_and_early_stopping_keeps_the_best(tmp_path):
    sc = _scenario(RELU, lr=0.5)
    r, z = _run_saved(sc, tmp_path)
    codes = {g.code for g in r.findings}
    assert "overfitting" in codes and "training-diverged" not in codes
    f = _finding(r, "overfitting")
    ho, tr, steps = np.median(z["holdout_loss"], axis=1), np.median(z["train_loss"], axis=1), z["record_steps"]
    b = int(np.argmin(ho))
    assert ho[-1] > 1.1 * ho[b] and tr[-1] < tr[b]
    assert (f"rose from its lowest {_fmt(ho[b])} (step {steps[b]}) to {_fmt(ho[-1])} (step {steps[-1]}) while "
            f"the training loss fell from {_fmt(tr[b])} to {_fmt(tr[-1])}") in f.message
    stop = int(re.search(r"stop at step (\d+)", f.hint).group(1))
    assert stop == steps[b] and f"keep held-out loss {_fmt(ho[b])}" in f.hint
    early = gradscope.run(_scenario(RELU, lr=0.5, steps=stop))
    assert "overfitting" not in {g.code for g in early.findings}
    assert early.training["final_loss"] == pytest.approx(ho[b], rel=1e-12)


def test_units_died_names_the_layers_and_the_rerun_it_measured(tmp_path):
    # Adam with a large step on a ReLU net: most units of the deeper hidden layers die
    sc = _scenario(RELU, optimizer="adam", lr=0.2, batch_size=32, steps=100, record_every=20)
    r, z = _run_saved(sc, tmp_path)
    d = _finding(r, "units-died")
    for g in r.findings:  # never the loss already used, never a larger step when units die
        assert "use cross_entropy" not in g.hint and "larger learning rate" not in g.hint
    ok = r.training["diverged_seeds"] == 0
    dead = np.median(z["dead_fraction"], axis=2)   # (R, L)
    assert ok  # all seeds finite: the medians are over every seed
    for l in d.layers:
        assert f"layer {l} from {_fmt(100 * dead[0, l - 1])}% to {_fmt(100 * dead[-1, l - 1])}%" in d.message
        assert dead[-1, l - 1] - dead[0, l - 1] > 0.25
    # the remedies, applied: the lr the hint re-ran, with the dead fractions it quotes; and leaky_relu
    lower = float(re.search(r"at lr (\S+), the dead fractions", d.hint).group(1))
    assert lower == pytest.approx(0.02)
    again = gradscope.run(_scenario(RELU, optimizer="adam", lr=lower, batch_size=32, steps=100, record_every=20))
    for l in d.layers:
        after = again.history[-1].median("dead_fraction", l)
        assert f"layer {l} {_fmt(100 * after)}%" in d.hint and after < dead[-1, l - 1]
    leaky = copy.deepcopy(RELU)
    leaky["network"]["activation"] = "leaky_relu"
    leaky["train"].update(optimizer="adam", lr=0.2, batch_size=32, steps=100, record_every=20)
    assert "units-died" not in {g.code for g in gradscope.run(load_scenario(leaky)).findings}


def _with_losses(trace, train_loss, holdout_loss=None):
    """The trace of a real run with its recorded losses replaced (every seed the same series)."""
    from dataclasses import replace

    S = trace.train_loss.shape[1]
    tl = np.repeat(np.asarray(train_loss, dtype=float)[:, None], S, axis=1)
    hl = tl if holdout_loss is None else np.repeat(np.asarray(holdout_loss, dtype=float)[:, None], S, axis=1)
    return replace(trace, train_loss=tl, holdout_loss=hl)


def test_unstable_training_and_growing_loss_from_the_trace():
    from gradscope.training import dynamics

    sc = _scenario(TINY, steps=20, record_every=5)
    r = gradscope.run(sc)
    hist, trace = list(r.history), r.trace
    assert list(trace.steps) == [0, 5, 10, 15, 20]
    # the training loss falls to 0.3, then climbs back to 0.6: unstable, not diverged
    rising = _with_losses(trace, [2.0, 0.5, 0.3, 0.45, 0.6])
    calm = _with_losses(trace, [2.0, 0.5, 0.3, 0.25, 0.2])
    asked = []

    def retry(lr):
        asked.append(lr)
        return hist, calm

    _, found = dynamics(sc, hist, rising, retry)
    codes = {f.code for f in found}
    assert "training-unstable" in codes and "training-diverged" not in codes and "loss-plateau" not in codes
    u = next(f for f in found if f.code == "training-unstable")
    assert "rose from its lowest 0.3 (step 10) to 0.6 (step 20), 100% above it" in u.message
    assert asked == [pytest.approx(0.005)]
    assert "at lr 0.005, the training loss ended 0.2, 0% above its lowest" in u.hint
    assert "stop at step 10" in u.hint
    # a re-run at lr/10 that is stable but ends above this run's loss is not offered as the cure
    slow = _with_losses(trace, [2.0, 1.6, 1.2, 0.9, 0.7])
    _, found = dynamics(sc, hist, rising, lambda lr: (hist, slow))
    u = next(f for f in found if f.code == "training-unstable")
    assert not u.hint.startswith("lower the learning rate") and u.hint.startswith("stop at step 10")
    assert "no longer rose but ended at 0.7, above this run's 0.6" in u.hint
    # ending 25% above the step-0 loss in every seed is divergence, with the seeds and the first step
    grown = _with_losses(trace, [2.0, 1.0, 2.2, 2.6, 3.0])
    _, found = dynamics(sc, hist, grown, retry)
    f = next(f for f in found if f.code == "training-diverged")
    assert "ended more than 25% above its step-0 value in 3 of 3 seeds (median 2 → 3; first that high at step 15" \
        in f.message
    assert "at lr 0.005: no seed diverged" in f.hint


def test_loss_plateau_advice_follows_the_facts(tmp_path):
    # a tiny learning rate: both losses fall at every record, a hair each; the re-run at 10× ends lower
    sc = _scenario(RELU, lr=1e-5)
    r, z = _run_saved(sc, tmp_path)
    f = _finding(r, "loss-plateau")
    ho, steps = np.median(z["holdout_loss"], axis=1), z["record_steps"]
    h = len(steps) // 2
    assert (ho[h] - ho[-1]) / ho[h] < 0.01
    acc = np.median(z["holdout_accuracy"][-1])
    assert (f"held-out loss {_fmt(ho[h])} at step {steps[h]} and {_fmt(ho[-1])} at step {steps[-1]}, accuracy "
            f"{_fmt(acc)}") in f.message
    assert "cross_entropy" not in f.hint   # the loss is cross_entropy already
    m = re.search(r"at lr (\S+), the held-out loss ended at (\S+) instead of (\S+)$", f.hint)
    assert float(m.group(1)) == pytest.approx(1e-4) and m.group(3) == _fmt(ho[-1])
    faster = gradscope.run(_scenario(RELU, lr=float(m.group(1))))
    assert _fmt(faster.training["final_loss"]) == m.group(2) and faster.training["final_loss"] < ho[-1]


def test_gradient_fade_numbers_and_remedies():
    from gradscope.scenario import bundled_path

    def run(*over):
        return gradscope.run(load_scenario(bundled_path("train-sigmoid-fade.yaml"), overrides=list(over), seeds=4))

    r = run()
    f = _finding(r, "gradient-fade")
    first, last = r.history[0].layers, r.history[-1].layers
    g1 = [first[0].median("weight_grad_norm"), last[0].median("weight_grad_norm")]
    gL = [first[-1].median("weight_grad_norm"), last[-1].median("weight_grad_norm")]
    assert (f"layer 1 gradient fell {_fmt(g1[0] / g1[1])}× during training while the output layer's fell "
            f"{_fmt(gL[0] / gL[1])}× (median ‖∂L/∂W‖ {_fmt(g1[0])} → {_fmt(g1[1])})") in f.message
    assert g1[0] / g1[1] > 10 and g1[0] / g1[1] > 3 * gL[0] / gL[1]
    assert "lr 0.2 → 0.02" in f.hint and "relu + he_normal" in f.hint and "or adam" not in f.hint  # adam already
    for remedy in (["train.lr=0.02"], ["network.activation=relu", "network.init=he_normal"]):
        assert "gradient-fade" not in {g.code for g in run(*remedy).findings}, remedy
