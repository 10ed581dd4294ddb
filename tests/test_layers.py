"""Every layer kind against central finite differences in float64: each norm kind's vjp on its own, and whole
networks (residual blocks with and without projection, pre/post norms of every kind, dropout) end to end.
A kind registered in NORMS gets these tests by being registered."""

from __future__ import annotations

import numpy as np
import pytest

from gradscope import load_scenario
from gradscope.engine import draw_data, init_params, loss_target, run_pass
from gradscope.layers import NORMS, Dense, Norm, Residual, norm_forward, norm_vjp, walk

KINDS = [k.name for k in NORMS]


@pytest.mark.parametrize("kind", KINDS)
def test_norm_vjp_matches_finite_differences(kind: str) -> None:
    rng = np.random.default_rng(0)
    S, B, n = 2, 5, 4
    spec = Norm(kind, n, 1e-3 if kind != "rmsnorm" else None)
    x = rng.normal(1.0, 2.0, (S, B, n))
    gamma = rng.normal(1.0, 0.5, (S, n))
    beta = rng.normal(0.0, 0.5, (S, n)) if NORMS.get(kind).has_beta else None
    R = rng.normal(size=(S, B, n))

    def loss(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray | None) -> float:
        return float(np.sum(norm_forward(spec, gamma, beta, x).y * R))

    c = norm_forward(spec, gamma, beta, x)
    dx, dgamma, dbeta = norm_vjp(spec, gamma, c, R)
    h = 1e-6
    for arr, grad, name in ((x, dx, "x"), (gamma, dgamma, "gamma"), (beta, dbeta, "beta")):
        if arr is None:
            assert grad is None
            continue
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + h
            up = loss(x, gamma, beta)
            arr[idx] = old - h
            down = loss(x, gamma, beta)
            arr[idx] = old
            num[idx] = (up - down) / (2 * h)
        np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-8, err_msg=f"{kind} d{name}")


def test_norms_normalize_along_their_axis() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, (2, 64, 8))
    one = np.ones((2, 8))
    zero = np.zeros((2, 8))
    ln = norm_forward(Norm("layernorm", 8, 1e-12), one, zero, x).y
    np.testing.assert_allclose(ln.mean(axis=-1), 0, atol=1e-12)
    np.testing.assert_allclose(ln.var(axis=-1), 1, rtol=1e-9)
    bn = norm_forward(Norm("batchnorm", 8, 1e-12), one, zero, x).y
    np.testing.assert_allclose(bn.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(bn.var(axis=1), 1, rtol=1e-9)
    rms = norm_forward(Norm("rmsnorm", 8, 1e-12), one, None, x).y
    np.testing.assert_allclose(np.mean(rms * rms, axis=-1), 1, rtol=1e-9)


NETWORKS = {
    "pre-layernorm-residual": {"depth": 4, "width": 6, "residual": {"every": 2, "alpha": 0.7, "projection": True},
                               "norm": "layernorm", "norm_placement": "pre", "activation": "tanh"},
    "post-batchnorm-residual": {"input_dim": 6, "depth": 4, "width": 6, "residual": {"every": 2, "alpha": 1.3},
                                "norm": "batchnorm", "norm_placement": "post", "activation": "gelu"},
    "post-batchnorm-plain": {"depth": 3, "width": 6, "norm": "batchnorm", "norm_placement": "post"},
    "pre-rmsnorm-plain-dropout": {"depth": 3, "width": 6, "norm": "rmsnorm", "dropout": 0.3,
                                  "activation": "silu"},
    "projection-explicit": {"layers": [
        {"dense": {"width": 5, "activation": "tanh"}},
        {"residual": {"alpha": 0.5, "projection": True, "layers": [
            {"norm": "layernorm"}, {"dense": {"width": 7, "activation": "elu"}}, {"dropout": 0.25},
            {"dense": {"width": 6, "activation": "identity", "norm": "batchnorm"}}]}},
        {"norm": {"kind": "rmsnorm", "eps": 1e-4}},
        {"dropout": 0.1},
        {"dense": 4}]},
}


def _scenario(net: dict, loss: str = "cross_entropy") -> object:
    return load_scenario({"seeds": 3, "network": {"input_dim": 5, "output_dim": 3, "init": "xavier_normal",
                                                  "bias_init": {"scheme": "normal", "std": 0.1}, **net},
                          "loss": loss, "data": {"kind": "gaussian", "batch_size": 7}})


@pytest.mark.parametrize("name", list(NETWORKS))
def test_network_gradients_match_finite_differences(name: str) -> None:
    sc = _scenario(NETWORKS[name])
    params = init_params(sc)
    for k, v in params.extra.items():  # non-trivial γ, β so that their gradients are exercised
        params.extra[k] = v + np.random.default_rng(len(k)).normal(0, 0.3, v.shape)
    data = draw_data(sc)
    y = loss_target(sc, data)
    p = run_pass(sc, params, data.x, y)
    tensors = params.tensors()
    grads = p.grads(params)
    assert len(tensors) == len(grads)
    rng = np.random.default_rng(7)
    h = 1e-6
    for T, G in zip(tensors, grads, strict=True):
        assert G.shape == T.shape
        for _ in range(4):  # a few random entries of every tensor, every seed at once
            idx = tuple(int(rng.integers(0, d)) for d in T.shape[1:])
            old = T[(slice(None), *idx)].copy()
            T[(slice(None), *idx)] = old + h
            up = run_pass(sc, params, data.x, y).loss
            T[(slice(None), *idx)] = old - h
            down = run_pass(sc, params, data.x, y).loss
            T[(slice(None), *idx)] = old
            np.testing.assert_allclose(G[(slice(None), *idx)], (up - down) / (2 * h), rtol=1e-5, atol=1e-9)


def test_rows_number_every_layer_with_parameters() -> None:
    sc = _scenario(NETWORKS["projection-explicit"])
    rows = [(it.row, type(it).__name__) for it in walk(sc.items) if isinstance(it, Dense | Norm)]
    assert [r for r, _ in rows] == sorted(r for r, _ in rows)
    assert [r for r, _ in rows] == list(range(1, len(rows) + 1))
    blocks = [it for it in walk(sc.items) if isinstance(it, Residual)]
    assert len(blocks) == 1 and blocks[0].projection is not None and blocks[0].n_in == 5
    assert sc.sizes == (5, 5, 7, 6, 4, 3)


def test_dropout_masks_keep_seed_k_when_seeds_are_added() -> None:
    net = {"depth": 2, "width": 8, "dropout": 0.4}
    small = load_scenario({"seeds": 2, "network": net})
    large = load_scenario({"seeds": 5, "network": net})
    ps, pl = (run_pass(sc, init_params(sc), draw_data(sc).x, loss_target(sc, draw_data(sc)))
              for sc in (small, large))
    for k in ps.trace.masks:
        np.testing.assert_array_equal(ps.trace.masks[k], pl.trace.masks[k][:2])
        keep = np.mean(pl.trace.masks[k] > 0)
        assert abs(keep - 0.6) < 0.05
        assert set(np.unique(pl.trace.masks[k])) <= {0.0, 1 / 0.6}
    np.testing.assert_array_equal(ps.loss, pl.loss[:2])


def test_eval_mode_runs_without_dropout() -> None:
    sc = load_scenario({"seeds": 2, "network": {"depth": 2, "width": 8, "dropout": 0.5}})
    plain = load_scenario({"seeds": 2, "network": {"depth": 2, "width": 8}})
    params = init_params(sc)
    data = draw_data(sc)
    p_eval = run_pass(sc, params, data.x, loss_target(sc, data), dropout=False)
    p_plain = run_pass(plain, init_params(plain), data.x, loss_target(plain, data))
    np.testing.assert_array_equal(p_eval.loss, p_plain.loss)
    p_train = run_pass(sc, params, data.x, loss_target(sc, data))
    assert not np.array_equal(p_train.loss, p_eval.loss)
