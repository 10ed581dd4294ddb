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
        assert r.history[0]["layers"][l - 1]["update_ratio"]["median"] == med
        assert r.history[1]["layers"][l - 1]["update_ratio"]["median"] == med
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
    assert r.history[-1]["train_loss"]["median"] == Stat.of(z["train_loss"][-1]).median
