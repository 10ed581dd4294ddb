import math

import numpy as np
import pytest

from gradscope.activations import OUTPUT_ACTIVATIONS, softmax
from gradscope.losses import CLASS, DISTRIBUTION, LOSSES, MULTILABEL, evaluate

from .conftest import numeric_gradient

RNG = np.random.default_rng(7)
S, B, K = 2, 5, 4

PARAM_VARIANTS = {
    "cross_entropy": [{}, {"label_smoothing": 0.1}, {"weight": [1.0, 2.0, 0.5, 3.0]},
                      {"weight": [1.0, 2.0, 0.5, 3.0], "label_smoothing": 0.2}, {"reduction": "sum"}],
    "focal": [{}, {"gamma": 0.0}, {"gamma": 1.0, "alpha": 0.25}, {"gamma": 3.5}],
    "kl_div": [{}, {"reduction": "batchmean"}, {"reduction": "sum"}],
    "bce": [{}, {"pos_weight": 3.0}, {"reduction": "sum"}],
    "multilabel_bce": [{}],
    "mse": [{}, {"reduction": "sum"}, {"reduction": "half_sum"}],
    "mae": [{}, {"reduction": "sum"}],
    "huber": [{}, {"delta": 0.3}],
    "smooth_l1": [{}, {"beta": 0.3}],
}


def _target(kind: str, head: str) -> np.ndarray:
    if kind == CLASS:
        return RNG.integers(0, K, B)
    if kind == MULTILABEL:
        return RNG.integers(0, 2, (B, K)).astype(float)
    if kind == DISTRIBUTION:
        t = RNG.random((B, K))
        t[0, 1] = 0.0  # a zero entry exercises 0·log 0
        return t / t.sum(axis=1, keepdims=True)
    if head == "softmax":
        return np.eye(K)[RNG.integers(0, K, B)]
    if head == "sigmoid":
        return RNG.integers(0, 2, (B, K)).astype(float)
    return RNG.normal(size=(B, K))


def _cases():
    for loss in LOSSES:
        heads = [loss.head] if loss.head else ["identity", "sigmoid", "softmax"]
        for head in heads:
            for params in PARAM_VARIANTS.get(loss.name, [{}]):
                yield loss.name, head, params


@pytest.mark.parametrize(("name", "head", "params"), list(_cases()))
def test_gradient_matches_finite_differences(name, head, params):
    loss = LOSSES.get(name)
    full = {**loss.defaults(), **params}
    z = RNG.normal(size=(S, B, K)) * 2
    t = _target(loss.target, head)
    value, grad = evaluate(name, full, head, z, t)
    assert value.shape == (S,) and grad.shape == z.shape
    fd = numeric_gradient(lambda x: evaluate(name, full, head, x, t)[0], z, select=lambda v, idx: v[idx[0]])
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)


def test_cross_entropy_gradient_is_yhat_minus_y_over_batch():
    z = RNG.normal(size=(1, B, K))
    y = RNG.integers(0, K, B)
    _, g = evaluate("cross_entropy", {}, "softmax", z, y)
    np.testing.assert_allclose(g * B, softmax(z) - np.eye(K)[y], atol=1e-15)


def test_cross_entropy_values_of_the_seeds():
    # -log 0.8 ≈ 0.223 and -log 0.3 ≈ 1.204 for a prediction of probability 0.8 / 0.3 on the true class
    for p, want in ((0.8, 0.2231435513142097), (0.3, 1.2039728043259361)):
        probs = np.array([p, (1 - p) / 2, (1 - p) / 2])
        v, _ = evaluate("cross_entropy", {}, "softmax", np.log(probs)[None, None, :], np.array([0]))
        assert v[0] == pytest.approx(want, rel=1e-12)
        assert round(float(v[0]), 3) == round(-math.log(p), 3)


def test_bce_gradient_is_yhat_minus_y():
    z = RNG.normal(size=(1, B, 1)) * 3
    y = RNG.integers(0, 2, (B, 1)).astype(float)
    _, g = evaluate("bce", {}, "sigmoid", z, y)
    np.testing.assert_allclose(g * B, 1 / (1 + np.exp(-z)) - y, atol=1e-14)


def test_sigmoid_mse_closed_form():
    # L = mean((ŷ - y)²) over B samples: ∂L/∂z = (2/B)(ŷ - y)ŷ(1 - ŷ); with half_sum, (ŷ - y)ŷ(1 - ŷ)
    z = RNG.normal(size=(1, B, 1)) * 3
    y = RNG.integers(0, 2, (B, 1)).astype(float)
    yh = 1 / (1 + np.exp(-z))
    _, g = evaluate("mse", {"reduction": "half_sum"}, "sigmoid", z, y)
    np.testing.assert_allclose(g, (yh - y) * yh * (1 - yh), atol=1e-15)
    _, g = evaluate("mse", {"reduction": "mean"}, "sigmoid", z, y)
    np.testing.assert_allclose(g, 2 / B * (yh - y) * yh * (1 - yh), atol=1e-15)


def test_softmax_mse_closed_form():
    # ∂/∂z_j Σ_i (ŷ_i - y_i)² = 2 ŷ_j [(ŷ_j - y_j) - Σ_i (ŷ_i - y_i) ŷ_i]
    z = RNG.normal(size=(1, 1, K)) * 2
    y = np.eye(K)[[2]]
    yh = softmax(z)
    d = yh - y
    want = 2 * yh * (d - (d * yh).sum(-1, keepdims=True))
    _, g = evaluate("mse", {"reduction": "sum"}, "softmax", z, y)
    np.testing.assert_allclose(g, want, atol=1e-15)


def test_mse_on_a_confidently_wrong_softmax_vanishes_but_ce_does_not():
    k = 3
    p = 1e-3
    probs = np.array([p, (1 - p) / 2, (1 - p) / 2])
    z = np.log(probs)[None, None, :]
    _, g_mse = evaluate("mse", {}, "softmax", z, np.eye(k)[[0]])
    _, g_ce = evaluate("cross_entropy", {}, "softmax", z, np.array([0]))
    assert g_ce[0, 0, 0] == pytest.approx(p - 1)
    assert abs(g_mse[0, 0, 0]) < 0.01 * abs(g_ce[0, 0, 0])


def test_mse_prefers_flat_wrong_classes_ce_does_not():
    y = np.eye(3)[[0]]
    a = np.array([0.8, 0.1, 0.1])
    b = np.array([0.8, 0.15, 0.05])
    la = evaluate("mse", {"reduction": "sum"}, "identity", a[None, None], y)[0][0]
    lb = evaluate("mse", {"reduction": "sum"}, "identity", b[None, None], y)[0][0]
    assert la == pytest.approx(0.06) and lb == pytest.approx(0.065)
    ca = evaluate("cross_entropy", {}, "softmax", np.log(a)[None, None], np.array([0]))[0][0]
    cb = evaluate("cross_entropy", {}, "softmax", np.log(b)[None, None], np.array([0]))[0][0]
    assert ca == pytest.approx(cb, rel=1e-12)


def test_cross_entropy_is_stable_for_huge_logits():
    z = np.array([[[1000.0, -1000.0, 0.0]]])
    v, g = evaluate("cross_entropy", {}, "softmax", z, np.array([1]))
    assert v[0] == pytest.approx(2000.0) and np.isfinite(g).all()
    v, g = evaluate("bce", {}, "sigmoid", np.array([[[800.0]]]), np.array([[0.0]]))
    assert v[0] == pytest.approx(800.0) and g[0, 0, 0] == pytest.approx(1.0)


def test_label_smoothing_and_weights_follow_torch_semantics():
    # torch: sum_i sum_c w_c t_ic (-log p_ic) / sum_i w_{y_i}, t = (1-ε) onehot + ε/K
    z = RNG.normal(size=(1, B, K))
    y = RNG.integers(0, K, B)
    w = np.array([1.0, 2.0, 0.5, 3.0])
    eps = 0.1
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    t = (1 - eps) * np.eye(K)[y] + eps / K
    want = -(w * t * logp[0]).sum() / w[y].sum()
    v, _ = evaluate("cross_entropy", {"weight": list(w), "label_smoothing": eps}, "softmax", z, y)
    assert v[0] == pytest.approx(want, rel=1e-12)


def test_focal_with_gamma_zero_is_cross_entropy():
    z = RNG.normal(size=(2, B, K))
    y = RNG.integers(0, K, B)
    vf, gf = evaluate("focal", {"gamma": 0.0, "alpha": 1.0}, "softmax", z, y)
    vc, gc = evaluate("cross_entropy", {}, "softmax", z, y)
    np.testing.assert_allclose(vf, vc, rtol=1e-13)
    np.testing.assert_allclose(gf, gc, atol=1e-15)


def test_kl_div_with_one_hot_target_is_cross_entropy_times_reduction():
    z = RNG.normal(size=(1, B, K))
    y = RNG.integers(0, K, B)
    v, _ = evaluate("kl_div", {"reduction": "batchmean"}, "softmax", z, np.eye(K)[y])
    vc, _ = evaluate("cross_entropy", {}, "softmax", z, y)
    assert v[0] == pytest.approx(vc[0], rel=1e-12)


def test_every_head_is_registered():
    assert set(OUTPUT_ACTIVATIONS.names()) == {"identity", "sigmoid", "softmax"}
