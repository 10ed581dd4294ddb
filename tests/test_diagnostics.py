import json

import numpy as np
import pytest

import gradscope
from gradscope.diagnostics import CODES

from .conftest import REPO


def _run(**net):
    base = {"seeds": 8, "network": {"input_dim": 32, "depth": 6, "width": 64, "output_dim": 10, **net},
            "data": {"kind": "gaussian", "batch_size": 64}}
    return gradscope.run(base)


def _codes(r):
    return {f.code: f for f in r.findings}


def test_deep_sigmoid_vanishes_and_cites_the_derivative_bound():
    r = _run(depth=10, activation="sigmoid", init="xavier_uniform")
    assert r.summary.verdict == "vanishing"
    f = _codes(r)["vanishing-gradient"]
    assert "σ' ≤ 0.25" in f.message and "10 sigmoid layers" in f.message and "0.25^10" in f.message
    assert "relu" in f.hint and "he_normal" in f.hint
    assert r.layers[0].status == "vanishing" and r.layers[-1].status == "healthy"
    assert r.layers[0].median("gradient_ratio") < 1e-4


@pytest.mark.parametrize("activation", ["tanh", "identity"])
def test_normal_std_one_stack_explodes(activation):
    r = _run(activation=activation, init={"scheme": "normal", "std": 1.0}, depth=8)
    assert r.summary.verdict == "exploding"
    f = _codes(r)["exploding-gradient"]
    assert "smaller init" in f.hint
    assert r.layers[0].median("delta_ratio") > 100


def test_mse_on_softmax_is_flagged_with_cross_entropy_as_remedy():
    r = gradscope.run({"seeds": 4, "network": {"depth": 2, "width": 32, "output_dim": 5, "activation": "relu",
                                               "init": "he_normal", "output_activation": "softmax"},
                       "loss": "mse", "data": {"kind": "blobs", "batch_size": 64}})
    f = _codes(r)["mse-on-probabilities"]
    assert "ŷ(1-ŷ)" in f.message and "cross_entropy" in f.hint
    r = gradscope.run({"seeds": 4, "network": {"depth": 2, "width": 32, "output_dim": 1, "activation": "relu",
                                               "init": "he_normal", "output_activation": "sigmoid"},
                       "loss": "mse", "data": {"kind": "blobs", "batch_size": 64}})
    assert "bce" in _codes(r)["mse-on-probabilities"].hint


def test_relu_with_large_negative_bias_has_dead_units():
    r = _run(activation="relu", init="he_normal", bias_init={"scheme": "constant", "value": -3.0})
    assert r.summary.verdict == "dead"
    f = _codes(r)["dead-units"]
    assert f.severity == "error" and "mean bias -3" in f.message
    assert r.layers[1].median("dead_fraction") == 1.0 and r.layers[1].status == "dead"
    assert "dead units in layers 2–6" in _codes(r)["vanishing-gradient"].message


def test_overflow_is_reported_at_the_first_layer_without_crashing(recwarn):
    r = gradscope.run({"seeds": 3, "network": {"input_dim": 8, "widths": [64] * 40, "output_dim": 3,
                                               "activation": "identity", "init": {"scheme": "normal", "std": 1e9},
                                               "bias": False},
                       "data": {"batch_size": 8}})
    assert r.summary.verdict == "overflow" and r.summary.overflow_seeds == 3
    f = _codes(r)["overflow"]
    # |z| grows by ~1e9·√64 per layer: float64's 1.8e308 is passed around layer 32
    first = int(f.message.split("forward pass at layer ")[1].split()[0])
    z_scale = [np.log10(1e9 * np.sqrt(n)) for n in [8] + [64] * 40]
    expected = int(np.argmax(np.cumsum(z_scale) > 308)) + 1
    assert abs(first - expected) <= 1
    numeric = [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert not numeric, [str(w.message) for w in numeric]
    json.dumps(r.to_dict(), allow_nan=False)


def test_he_relu_net_is_healthy():
    r = _run(activation="relu", init="he_normal", depth=12)
    assert r.summary.verdict == "healthy"
    assert not {"vanishing-gradient", "exploding-gradient"} & set(_codes(r))
    assert r.summary.gradient_spread < 10


def test_non_centered_inputs_are_flagged_and_centering_clears_it():
    base = {"seeds": 4, "network": {"depth": 3, "width": 32, "activation": "tanh"},
            "data": {"kind": "uniform", "center": False}}
    assert "non-centered-inputs" in _codes(gradscope.run(base))
    base["data"]["center"] = True
    assert "non-centered-inputs" not in _codes(gradscope.run(base))


def test_zero_init_is_symmetric():
    r = _run(activation="tanh", init="zeros")
    assert "symmetric-init" in _codes(r)
    assert r.layers[0].median("weight_grad_norm") == 0.0


def test_thresholds_are_configurable():
    sc = {"seeds": 4, "network": {"depth": 4, "width": 64, "activation": "sigmoid"},
          "diagnostics": {"vanishing_ratio": 1e-9}}
    assert gradscope.run(sc).summary.verdict != "vanishing"


def test_statistics_are_the_ensemble_summaries_of_the_per_seed_values():
    r = _run(activation="tanh", init="xavier_normal")
    per = r.per_seed["weight_grad_norm1"]
    params, p = r.arrays
    np.testing.assert_allclose(per, np.linalg.norm(p.dW[0].reshape(8, -1), axis=1), rtol=1e-12)
    s = r.layers[0].stats["weight_grad_norm"]
    assert s.median == pytest.approx(float(np.median(per))) and s.max == pytest.approx(float(per.max()))
    ratio = r.per_seed["gradient_ratio1"]
    np.testing.assert_allclose(ratio, per / r.per_seed[f"weight_grad_norm{len(r.layers)}"], rtol=1e-12)


def test_every_finding_code_is_documented_in_the_readme():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for code in CODES:
        assert f"`{code}`" in readme, code


def test_norms_of_finite_gradients_beyond_the_square_range_stay_finite():
    """Entries near 1e193 have squares beyond float64: the norm is still the norm, and the verdict follows it."""
    from gradscope.diagnostics import _norm

    x = np.ones((3, 4, 5))
    x[0] *= 1e200
    x[1] *= 1e-200
    x[2, 0, 0] = np.inf
    np.testing.assert_allclose(_norm(x, (1, 2))[:2], np.sqrt(20) * np.array([1e200, 1e-200]), rtol=1e-14)
    assert _norm(x, (1, 2))[2] == np.inf
    r = gradscope.run({"seeds": 2, "network": {"input_dim": 8, "depth": 60, "width": 32, "activation": "relu",
                                               "init": {"scheme": "normal", "std": 300.0}},
                       "data": {"batch_size": 8}})
    params, p = r.arrays
    dW1 = p.dW[0].reshape(2, -1)
    assert np.isfinite(dW1).all() and np.abs(dW1).max() > 1e160  # finite entries, squares overflow
    norms = r.per_seed["weight_grad_norm1"]
    m = np.abs(dW1).max(axis=1)
    np.testing.assert_allclose(norms, m * np.linalg.norm(dW1 / m[:, None], axis=1), rtol=1e-12)
    assert r.layers[0].status == "exploding" and r.summary.verdict == "exploding"
    assert all(lay.median("gradient_ratio") is not None for lay in r.layers)


@pytest.mark.parametrize("net", [
    {"depth": 3, "width": 12, "activation": "tanh"},
    {"depth": 3, "width": 12, "activation": "relu", "init": "he_normal", "dropout": 0.3},
    {"depth": 3, "width": 12, "activation": "gelu", "norm": "layernorm", "norm_placement": "post"},
    {"depth": 4, "width": 12, "activation": "elu", "residual": {"every": 2, "alpha": 0.5, "projection": True},
     "norm": "layernorm"},
    {"depth": 3, "width": 12, "activation": "sigmoid", "bias_init": {"scheme": "constant", "value": -4.0}},
    {"depth": 3, "width": 12, "activation": "relu", "bias_init": {"scheme": "constant", "value": -1.0}},
])
@pytest.mark.parametrize("threads", [1, 2])
def test_act_grad_statistics_taken_in_backward_are_the_ones_computed_after(net, threads):
    """Saturation, dead fraction and mean φ' are reduced from the φ' backward computes (reduce_act_grad), not
    from a second φ': the same bits as computing φ' again from the pass's arrays, per seed, in one thread or two."""
    from gradscope import parallel
    from gradscope.diagnostics import act_grad_statistics, layer_arrays
    from gradscope.engine import draw_data, init_params, loss_target, run_pass
    from gradscope.scenario import load_scenario

    sc = load_scenario({"seed": 4, "seeds": 5, "network": {"input_dim": 6, "output_dim": 3, **net},
                        "data": {"batch_size": 16}})
    params, data = init_params(sc), draw_data(sc)
    x, t = data.x, loss_target(sc, data)
    with parallel.using(threads), np.errstate(all="ignore"):
        from gradscope import engine

        old, old_linear = parallel.PARALLEL_VALUES, engine.LINEAR_SPLIT
        parallel.PARALLEL_VALUES = engine.LINEAR_SPLIT = 1  # split even these small arrays into seed ranges
        try:
            hooked = run_pass(sc, params, x, t, reduce_act_grad=act_grad_statistics(sc))
            plain = run_pass(sc, params, x, t)
            with_hook = layer_arrays(sc, params, hooked, None)
            without = layer_arrays(sc, params, plain, None)
        finally:
            parallel.PARALLEL_VALUES, engine.LINEAR_SPLIT = old, old_linear
    assert hooked.act_grad_stats is not None and sorted(hooked.act_grad_stats) == list(range(1, sc.depth + 1))
    assert plain.act_grad_stats is None
    for a, b in zip(with_hook, without, strict=True):
        for key in ("saturation", "dead_fraction", "act_grad_mean"):
            assert np.array_equal(a.values[key], b.values[key], equal_nan=True), key
