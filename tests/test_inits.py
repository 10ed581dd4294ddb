import math

import numpy as np
import pytest

from gradscope.inits import INITS, LayerContext, sample_bias

CTX = LayerContext("relu")
FI, FO = 400, 600

FORMULAS = {
    "standard": 1 / (3 * FI),
    "torch_default": 1 / (3 * FI),
    "xavier_uniform": 2 / (FI + FO),
    "xavier_normal": 2 / (FI + FO),
    "he_uniform": 2 / FI,
    "he_normal": 2 / FI,
    "lecun_uniform": 1 / FI,
    "lecun_normal": 1 / FI,
    "orthogonal": 1 / FO,
}


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_variance_formula_and_sample_agree(name):
    init = INITS.get(name)
    W = init.sample(np.random.default_rng(0), FI, FO, CTX)
    assert W.shape == (FI, FO)
    assert init.variance(FI, FO, CTX) == pytest.approx(FORMULAS[name], rel=1e-12)
    # 240k entries: the sample variance is within ~1% of the formula
    assert W.var() == pytest.approx(FORMULAS[name], rel=0.02)
    assert abs(W.mean()) < 3 * math.sqrt(FORMULAS[name] / W.size) + 1e-12


def test_uniform_bounds():
    rng = np.random.default_rng(1)
    W = INITS.get("xavier_uniform").sample(rng, FI, FO, CTX)
    assert np.abs(W).max() <= math.sqrt(6 / (FI + FO))
    assert np.abs(W).max() > 0.99 * math.sqrt(6 / (FI + FO))
    W = INITS.get("standard").sample(rng, FI, FO, CTX)
    assert np.abs(W).max() <= 1 / math.sqrt(FI)


def test_gains_and_modes():
    he = INITS.get("he_normal")
    assert he.variance(FI, FO, CTX, mode="fan_out") == pytest.approx(2 / FO)
    assert he.variance(FI, FO, CTX, negative_slope=0.2) == pytest.approx(2 / (1.04 * FI))
    assert he.variance(FI, FO, LayerContext("tanh"), nonlinearity="auto") == pytest.approx((5 / 3) ** 2 / FI)
    xav = INITS.get("xavier_normal")
    assert xav.variance(FI, FO, LayerContext("tanh"), gain="auto") == pytest.approx((25 / 9) * 2 / (FI + FO))
    assert xav.variance(FI, FO, CTX, gain="tanh") == pytest.approx((25 / 9) * 2 / (FI + FO))


@pytest.mark.parametrize(("fi", "fo"), [(50, 80), (80, 50), (64, 64)])
def test_orthogonal_is_semi_orthogonal(fi, fo):
    W = INITS.get("orthogonal").sample(np.random.default_rng(2), fi, fo, CTX, gain=2.0)
    if fi >= fo:
        np.testing.assert_allclose(W.T @ W, 4 * np.eye(fo), atol=1e-10)
    else:
        np.testing.assert_allclose(W @ W.T, 4 * np.eye(fi), atol=1e-10)


def _relu_depth_log2(scheme: str, depth: int = 20, n: int = 256, nets: int = 16) -> float:
    """Mean over independent nets of log2(E[z_L²] / E[z_1²]) in a ReLU stack fed N(0, 1) inputs."""
    rng = np.random.default_rng(3)
    init = INITS.get(scheme)
    a = rng.standard_normal((nets, 64, n))
    first = last = None
    for _ in range(depth):
        W = np.stack([init.sample(rng, n, n, CTX) for _ in range(nets)])
        z = a @ W
        first = (z**2).mean(axis=(1, 2)) if first is None else first
        last = (z**2).mean(axis=(1, 2))
        a = np.maximum(z, 0)
    return float(np.mean(np.log2(last / first)))


def test_he_preserves_relu_second_moment_through_depth():
    # He et al. 2015: with Var(W) = 2/fan_in, E[z²] stays constant across ReLU layers
    assert _relu_depth_log2("he_normal") == pytest.approx(0.0, abs=0.5)
    # with Var(W) = 1/fan_in it halves at every layer: 2^-19 between layer 1 and layer 20
    assert _relu_depth_log2("lecun_normal") == pytest.approx(-19.0, abs=0.7)


def test_bias_schemes():
    rng = np.random.default_rng(4)
    b = sample_bias("torch_default", {}, rng, 100, 5000, CTX)
    assert np.abs(b).max() <= 0.1 and b.var() == pytest.approx(1 / 300, rel=0.1)
    assert (sample_bias("constant", {"value": -3.0}, rng, 4, 6, CTX) == -3.0).all()
    assert (sample_bias("zeros", {}, rng, 4, 6, CTX) == 0).all()
