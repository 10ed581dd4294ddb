import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

import gradscope
from gradscope.cli import app
from gradscope.engine import Params, draw_data, init_params
from gradscope.optimizers import OPTIMIZERS
from gradscope.report import HistoryRecord, LayerReport
from gradscope.scenario import bundled_path, load_scenario
from gradscope.training import _split, train_ensemble

P0 = np.array([[1.0, -2.0], [0.5, 3.0]])
G1 = np.array([[0.1, -0.3], [0.2, 0.05]])
G2 = np.array([[-0.4, 0.1], [0.0, 0.7]])


def _steps(name, grads, **hyper):
    p = [P0.copy()]
    state: dict = {}
    for t, g in enumerate(grads, start=1):
        OPTIMIZERS.get(name).step(p, [g], state, t, **hyper)
    return p[0]


def test_sgd_by_hand():
    np.testing.assert_allclose(_steps("sgd", [G1, G2], lr=0.1), P0 - 0.1 * G1 - 0.1 * G2, rtol=0, atol=1e-12)


def test_momentum_by_hand():
    # torch.optim.SGD(momentum=0.9): buf1 = g1, buf2 = 0.9 g1 + g2
    want = P0 - 0.1 * G1 - 0.1 * (0.9 * G1 + G2)
    np.testing.assert_allclose(_steps("momentum", [G1, G2], lr=0.1, momentum=0.9), want, rtol=0, atol=1e-12)


def test_adam_by_hand():
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 0.01
    m1, v1 = (1 - b1) * G1, (1 - b2) * G1**2
    p1 = P0 - lr * (m1 / (1 - b1)) / (np.sqrt(v1 / (1 - b2)) + eps)
    m2, v2 = b1 * m1 + (1 - b1) * G2, b2 * v1 + (1 - b2) * G2**2
    p2 = p1 - lr * (m2 / (1 - b1**2)) / (np.sqrt(v2 / (1 - b2**2)) + eps)
    got = _steps("adam", [G1, G2], lr=lr, beta1=b1, beta2=b2, eps=eps)
    np.testing.assert_allclose(got, p2, rtol=0, atol=1e-12)
    # Adam's first step moves every entry by lr·sign(g) (up to eps)
    np.testing.assert_allclose(_steps("adam", [G1], lr=lr, beta1=b1, beta2=b2, eps=eps) - P0,
                               -lr * np.sign(G1), atol=1e-8)


SMALL_TRAIN = {"seed": 2, "seeds": 3,
               "network": {"input_dim": 4, "widths": [8, 8], "output_dim": 3, "activation": "tanh"},
               "data": {"kind": "blobs", "batch_size": 16},
               "train": {"steps": 12, "optimizer": "adam", "lr": 0.05, "batch_size": 10, "train_size": 40,
                         "holdout": 20, "record_every": 4}}


def test_vectorized_training_equals_each_seed_alone():
    sc = load_scenario(SMALL_TRAIN)
    data = draw_data(sc, n=60)
    tr, hold = _split(data, 40)
    probe = _split(tr, 16)[0]
    full, hist, _ = train_ensemble(sc, init_params(sc), tr, probe, hold)
    assert [h.step for h in hist] == [0, 4, 8, 12]
    base = init_params(sc)
    for s in range(3):
        one = Params([W[s:s + 1].copy() for W in base.W], [b[s:s + 1].copy() for b in base.b])
        alone, _, _ = train_ensemble(sc, one, tr, probe, hold)
        for a, b in zip(alone.W, full.W, strict=True):
            np.testing.assert_allclose(a[0], b[s], rtol=1e-12, atol=1e-14)


def test_training_changes_the_weights_and_records_history():
    r = gradscope.run(SMALL_TRAIN)
    assert r.history is not None and len(r.history) == 4
    h = r.history[-1]
    assert isinstance(h, HistoryRecord) and all(isinstance(layer, LayerReport) for layer in h.layers)
    assert set(h.to_dict()) == {"step", "verdict", "train_loss", "holdout_loss", "train_accuracy",
                                "holdout_accuracy", "layers"}
    assert set(h.to_dict()["layers"][0]["weight_grad_norm"]) >= {"median", "q10", "q90"}
    assert h.median("weight_grad_norm", 1) == h.layers[0].stats["weight_grad_norm"].median
    assert r.training["final_loss"] == h.holdout_loss.median
    assert r.history[0].holdout_loss.median > h.holdout_loss.median
    assert r.to_dict()["history"] == [rec.to_dict() for rec in r.history]
    json.dumps(r.to_dict(), allow_nan=False)


def test_blobs_with_cross_entropy_reaches_high_accuracy():
    r = gradscope.run({"seed": 1, "seeds": 4, "network": {"input_dim": 8, "depth": 2, "width": 32, "output_dim": 4,
                                                           "activation": "relu", "init": "he_normal"},
                       "data": {"kind": "blobs", "batch_size": 64, "separation": 6.0},
                       "train": {"steps": 150, "optimizer": "sgd", "lr": 0.1, "train_size": 256, "holdout": 256,
                                 "record_every": 25}})
    assert r.training["final_accuracy"] >= 0.95
    assert r.training["steps_to_accuracy"] is not None and r.training["steps_to_accuracy"] <= 100
    # every seed, not just the median, learned
    assert r.history[-1].holdout_accuracy.min >= 0.9


def _at_seed(name, seed):
    sc = load_scenario(bundled_path(name), seed=seed)
    return gradscope.run(sc)


@pytest.mark.parametrize("seed", [1, 2])
def test_sigmoid_gradients_fade_during_training(seed):
    r = _at_seed("train-sigmoid-fade.yaml", seed)
    fall = r.training["gradient_fall"]
    assert fall["1"] > 100 and fall["1"] > 10 * fall["4"], fall
    assert "gradient-fade" in {f.code for f in r.findings}


@pytest.mark.parametrize("seed", [1, 2])
def test_mse_crawls_where_cross_entropy_learns_from_a_saturated_start(seed):
    mse = _at_seed("train-mse-saturated.yaml", seed).training
    ce = _at_seed("train-ce-saturated.yaml", seed).training
    assert ce["final_accuracy"] > mse["final_accuracy"] + 0.1, (ce, mse)


def test_init_schemes_converge_at_different_speeds():
    steps = {}
    for name in ("standard", "xavier", "he"):
        tr = _at_seed(f"train-init-{name}.yaml", 1).training
        steps[name] = tr["steps_to_accuracy"] if tr["steps_to_accuracy"] is not None else math.inf
    assert steps["he"] < steps["xavier"] < steps["standard"], steps


def test_cli_train_steps_and_compare_race():
    runner = CliRunner()
    r = runner.invoke(app, ["run", "--train-steps", "20", "--seeds", "2", "--set", "train.record_every=10",
                            "--set", "network.depth=2", "--format", "json"])
    # the default file's expectations are about depth 8: at depth 2 they fail, so run exits 1 and says why
    assert r.exit_code == 1 and "expectation not met" in r.stderr, r.output
    d = json.loads(r.stdout)
    assert [h["step"] for h in d["history"]] == [0, 10, 20] and d["scenario"]["train"]["steps"] == 20
    r = runner.invoke(app, ["compare", "mse", "ce", "--train", "40", "--seeds", "2", "--set",
                            "train.record_every=20", "--format", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert set(d["race"]["variants"]) == {"mse", "ce"}
    assert d["race"]["variants"]["ce"]["steps"] == [0, 20, 40]
    firsts = d["race"]["first_to_level"]
    reached = {k: s for k, s in firsts.items() if s is not None}
    assert reached, firsts
    # the leader is the first variant to reach the level; ties go to the variant named first
    assert d["race"]["leader"] == min(reached, key=lambda k: (reached[k], ["mse", "ce"].index(k)))
    t = runner.invoke(app, ["compare", "mse", "ce", "--train", "40", "--seeds", "2", "--no-color"])
    assert "training race" in t.stdout


def test_fully_diverged_run_says_so_in_quiet_and_states_no_dead_fractions(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("seeds: 3\nnetwork: {depth: 2, width: 8}\ndata: {batch_size: 16}\n"
                 "train:\n  steps: 3\n  lr: 1.0e+150\n")
    r = gradscope.run(load_scenario(str(p)))
    # recomputed: the loss is finite at step 0 and, training one step only, NaN/Inf in every seed at step 1
    one = gradscope.run(load_scenario(str(p), overrides=["train.steps=1"]))
    assert one.history[0].train_loss.max is not None and one.history[-1].step == 1
    assert one.history[-1].train_loss.min is None and one.history[-1].train_loss.max is None
    steps = r.training["diverged_steps"]
    assert r.training["diverged_seeds"] == 3 and len(steps) == 3 and steps[0] == steps[-1] == 1
    assert "units-died" not in {f.code for f in r.findings}
    out = CliRunner().invoke(app, ["run", str(p), "--quiet", "--no-color"]).stdout
    flat = " ".join(out.split())
    assert flat.startswith("verdict at initialization (step 0): ")
    assert "training: diverged in 3 of 3 seeds at step 1" in flat
    assert "did not diverge" not in flat


@pytest.mark.parametrize(("batch_size", "dropout"), [(64, 0.0), (64, 0.3), (32, 0.0)])
def test_recorded_train_loss_is_the_training_sets_evaluation(batch_size, dropout):
    """Each record's train loss and accuracy are the whole training set's, without dropout. When the probe batch
    is the whole training set and its pass drew no dropout mask, that pass is reused: the same bits as evaluating
    again; with dropout, or a probe smaller than the set, the set is evaluated on its own."""
    from gradscope.training import _evaluate

    net = {"input_dim": 6, "depth": 2, "width": 16, "output_dim": 3, "activation": "relu", "init": "he_normal"}
    if dropout:
        net["dropout"] = dropout
    sc = load_scenario({"seed": 2, "seeds": 3, "network": net,
                        "data": {"kind": "blobs", "batch_size": batch_size},
                        "train": {"steps": 4, "optimizer": "sgd", "lr": 0.1, "train_size": 64, "holdout": 32,
                                  "record_every": 2}})
    data = draw_data(sc, n=96)
    train, hold = _split(data, 64)
    probe = _split(train, min(batch_size, 64))[0]
    params = init_params(sc)
    final, history, trace = train_ensemble(sc, params.copy(), train, probe, hold)
    loss, acc = _evaluate(sc, final, train)
    assert np.array_equal(trace.train_loss[-1], loss) and np.array_equal(trace.train_accuracy[-1], acc)
    loss0, acc0 = _evaluate(sc, params, train)
    assert np.array_equal(trace.train_loss[0], loss0) and np.array_equal(trace.train_accuracy[0], acc0)
    assert history[-1].train_loss.median == pytest.approx(float(np.median(loss)))
