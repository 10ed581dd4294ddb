import math

import numpy as np
import pytest

from gradscope.activations import ACTIVATIONS, OUTPUT_ACTIVATIONS, torch_gain

from .conftest import central_diff, numeric_gradient

PARAM_VARIANTS = {
    "leaky_relu": [{}, {"negative_slope": 0.2}],
    "elu": [{}, {"alpha": 0.5}],
    "gelu": [{"approximate": "none"}, {"approximate": "tanh"}],
    "softplus": [{}, {"beta": 2.0, "threshold": 20.0}],
    "hardtanh": [{}, {"min_val": -2.0, "max_val": 0.5}],
}


def _points() -> np.ndarray:
    z = np.concatenate([np.linspace(-6, 6, 241), [-0.37, 0.41, 2.3, -3.7]])
    # keep away from kinks (0, hardtanh edges) where the derivative is one-sided
    bad = np.zeros_like(z, dtype=bool)
    for k in (0.0, 1.0, -1.0, -2.0, 0.5):
        bad |= np.abs(z - k) < 1e-3
    return z[~bad]


@pytest.mark.parametrize("name", ACTIVATIONS.names())
def test_derivative_matches_finite_differences(name):
    act = ACTIVATIONS.get(name)
    z = _points()
    for params in PARAM_VARIANTS.get(name, [{}]):
        fd = central_diff(lambda x, p=params: act.fn(x, **p), z)
        an = act.grad(z, act.fn(z, **params), **params)
        np.testing.assert_allclose(an, fd, rtol=1e-6, atol=1e-9, err_msg=f"{name} {params}")


@pytest.mark.parametrize("name", ACTIVATIONS.names())
def test_batched_shape_and_values(name):
    act = ACTIVATIONS.get(name)
    z = np.random.default_rng(0).normal(size=(3, 5, 7))
    a = act.fn(z)
    assert a.shape == z.shape
    np.testing.assert_array_equal(a[1], act.fn(z[1]))
    assert act.grad(z, a).shape == z.shape


@pytest.mark.parametrize("name", ACTIVATIONS.names())
def test_max_grad_bounds_the_derivative(name):
    act = ACTIVATIONS.get(name)
    z = np.linspace(-10, 10, 20001)
    assert act.grad(z, act.fn(z)).max() <= act.max_grad() + 1e-12


def test_sigmoid_derivative_bound_and_two_layer_product():
    sig = ACTIVATIONS.get("sigmoid")
    z = np.linspace(-20, 20, 40001)
    d = sig.grad(z, sig.fn(z))
    assert d.max() == pytest.approx(0.25, abs=1e-12)
    assert z[d.argmax()] == pytest.approx(0.0, abs=1e-9)
    assert (d.max() ** 2) == pytest.approx(0.0625)


def test_exact_values():
    g = ACTIVATIONS.get("gelu")
    # GELU(1) = Φ(1) = 0.8413447460685429
    assert g.fn(np.array(1.0)) == pytest.approx(0.8413447460685429, rel=1e-15)
    assert ACTIVATIONS.get("selu").fn(np.array(1.0)) == pytest.approx(1.0507009873554805)
    assert ACTIVATIONS.get("sigmoid").fn(np.array([-800.0, 800.0])).tolist() == [0.0, 1.0]
    assert ACTIVATIONS.get("softplus").fn(np.array(800.0)) == 800.0


def test_torch_gains():
    assert torch_gain("tanh") == pytest.approx(5 / 3)
    assert torch_gain("relu") == pytest.approx(math.sqrt(2))
    assert torch_gain("leaky_relu", {"negative_slope": 0.2}) == pytest.approx(math.sqrt(2 / 1.04))
    assert torch_gain("selu") == 0.75
    assert torch_gain("sigmoid") == 1.0
    with pytest.raises(ValueError):
        torch_gain("gelu")


@pytest.mark.parametrize("name", OUTPUT_ACTIVATIONS.names())
def test_output_vjp_matches_finite_differences(name):
    head = OUTPUT_ACTIVATIONS.get(name)
    rng = np.random.default_rng(1)
    z = rng.normal(size=(2, 3, 4))
    g = rng.normal(size=z.shape)
    an = head.vjp(z, head.fn(z), g)
    fd = numeric_gradient(lambda x: float((head.fn(x) * g).sum()), z)
    np.testing.assert_allclose(an, fd, rtol=1e-6, atol=1e-10)
