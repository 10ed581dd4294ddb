import numpy as np
import pytest

from gradscope.activations import ACTIVATIONS
from gradscope.engine import draw_data, init_params, loss_target, run_pass
from gradscope.losses import LOSSES
from gradscope.scenario import load_scenario

from .conftest import REPO, small


def _setup(sc):
    data = draw_data(sc)
    params = init_params(sc)
    x = data.x.astype(params.W[0].dtype)
    return params, x, loss_target(sc, data)


def _fd_check(sc, rtol, h, n_entries=4, atol=1e-9):
    """Analytic dW/db of every layer against central differences of each seed's loss."""
    params, x, t = _setup(sc)
    p = run_pass(sc, params, x, t)
    rng = np.random.default_rng(0)
    worst = 0.0
    for l in range(sc.n_layers):
        groups = [("W", params.W[l], p.dW[l])]
        if params.b is not None:
            groups.append(("b", params.b[l], p.db[l]))
        for _, arr, grad in groups:
            for _ in range(n_entries):
                idx = tuple(int(rng.integers(0, s)) for s in arr.shape)
                old = arr[idx]
                arr[idx] = old + h
                lp = run_pass(sc, params, x, t).loss[idx[0]]
                arr[idx] = old - h
                lm = run_pass(sc, params, x, t).loss[idx[0]]
                arr[idx] = old
                fd = (float(lp) - float(lm)) / (2 * h)
                an = float(grad[idx])
                err = abs(an - fd) / max(abs(fd), abs(an), 1e-7)
                worst = max(worst, err)
                assert abs(an - fd) <= rtol * max(abs(fd), abs(an)) + atol, (l + 1, idx, an, fd)
    return worst


@pytest.mark.parametrize("activation", ACTIVATIONS.names())
def test_end_to_end_finite_differences_per_activation(activation):
    sc = load_scenario(small(activation=activation, seeds=2))
    _fd_check(sc, rtol=1e-6, h=1e-6)


def _loss_cases():
    for loss in LOSSES:
        heads = [loss.head] if loss.head else ["identity", "sigmoid", "softmax"]
        for head in heads:
            out_dim = 1 if loss.name == "bce" else 3
            yield loss.name, head, out_dim


@pytest.mark.parametrize(("loss", "head", "out_dim"), list(_loss_cases()))
def test_end_to_end_finite_differences_per_loss(loss, head, out_dim):
    sc = load_scenario(small(loss=loss, output_activation=head, output_dim=out_dim, activation="gelu"))
    _fd_check(sc, rtol=1e-6, h=1e-6)


def test_end_to_end_per_layer_activation_list_and_no_bias():
    sc = load_scenario(small(widths=[4, 6, 3], activation=["relu", "sigmoid", {"name": "elu", "alpha": 0.7}],
                             bias=False, loss="mse"))
    _fd_check(sc, rtol=1e-6, h=1e-6)


def test_end_to_end_float32():
    sc = load_scenario(small(dtype="float32", activation="tanh", loss="cross_entropy"))
    params, x, t = _setup(sc)
    p = run_pass(sc, params, x, t)
    assert p.dW[0].dtype == np.float32 and p.z[0].dtype == np.float32
    # float32 loss rounding alone puts ~ε₃₂·|loss|/h ≈ 1e-5 on a central difference
    _fd_check(sc, rtol=2e-2, h=1e-2, atol=float(np.finfo(np.float32).eps) * 1e2)


def test_scalar_chain_matches_the_seeds_derivation():
    # ŷ = F(F(X w1) w2) w3, L = (ŷ - y)²: grad1 = 2(ŷ - y) · w3 · f(F(X w1) w2) · w2 · f(X w1) · X
    sc = load_scenario(REPO / "scenarios/scalar-chain.yaml")
    params, x, t = _setup(sc)
    p = run_pass(sc, params, x, t)
    w1, w2, w3 = (W[:, 0, 0] for W in params.W)
    X = x[0, 0]
    s = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h1 = s(X * w1)
    h2 = s(h1 * w2)
    yhat = h2 * w3
    dl = 2 * (yhat - t[0, 0])
    np.testing.assert_allclose(p.dW[0][:, 0, 0], dl * w3 * h2 * (1 - h2) * w2 * h1 * (1 - h1) * X, rtol=1e-12)
    np.testing.assert_allclose(p.dW[1][:, 0, 0], dl * w3 * h2 * (1 - h2) * h1, rtol=1e-12)
    np.testing.assert_allclose(p.dW[2][:, 0, 0], dl * h2, rtol=1e-12)
    # two σ' ≤ 0.25 factors: |grad1| ≤ 0.0625 |dl w3 w2 X|
    assert np.all(np.abs(p.dW[0][:, 0, 0]) <= 0.0625 * np.abs(dl * w3 * w2 * X) + 1e-15)


def test_vectorized_ensemble_equals_each_seed_alone():
    sc = load_scenario(small(seeds=3, activation="relu"))
    params, x, t = _setup(sc)
    full = run_pass(sc, params, x, t)
    for s in range(3):
        from gradscope.engine import Params

        one = Params([W[s:s + 1] for W in params.W], [b[s:s + 1] for b in params.b])
        alone = run_pass(sc, one, x, t)
        for l in range(sc.n_layers):
            np.testing.assert_allclose(alone.dW[l][0], full.dW[l][s], rtol=1e-12, atol=1e-15)
        assert alone.loss[0] == pytest.approx(full.loss[s], rel=1e-13)


def test_adding_seeds_does_not_change_existing_ones():
    few = init_params(load_scenario(small(seeds=2)))
    many = init_params(load_scenario(small(seeds=7)))
    for a, b in zip(few.W, many.W, strict=True):
        np.testing.assert_array_equal(a, b[:2])
    for a, b in zip(few.b, many.b, strict=True):
        np.testing.assert_array_equal(a, b[:2])


def test_data_is_shared_and_independent_of_seeds():
    a = draw_data(load_scenario(small(seeds=2)))
    b = draw_data(load_scenario(small(seeds=9)))
    np.testing.assert_array_equal(a.x, b.x)
    c = draw_data(load_scenario(small(seed=4)))
    assert not np.array_equal(a.x, c.x)


def test_targets_follow_the_loss():
    assert loss_target(load_scenario(small(loss="cross_entropy")), draw_data(load_scenario(small()))).ndim == 1
    sc = load_scenario(small(loss="mse", output_activation="softmax"))
    t = loss_target(sc, draw_data(sc))
    assert t.shape == (4, 3) and set(np.unique(t)) <= {0.0, 1.0} and (t.sum(1) == 1).all()


def test_overflow_is_data_not_an_exception():
    sc = load_scenario(small(activation="identity", widths=[64] * 40, init={"scheme": "normal", "std": 1.0e9},
                             bias=False))
    params, x, t = _setup(sc)
    p = run_pass(sc, params, x, t)
    assert not np.isfinite(p.z[-1]).all()
