"""The vectorized mean-field solvers agree with the scalar ones they replace."""

from __future__ import annotations

import numpy as np
import pytest

from gradscope.theory import (
    _critical_by_bisection,
    critical_sigma_w2,
    gaussian_expectation,
    gaussian_expectations,
    mean_field,
)


def test_gaussian_expectations_match_the_scalar_rule() -> None:
    q = np.array([0.0, 0.3, 1.5, 1.6, 40.0])
    got = gaussian_expectations(lambda x: np.tanh(x) ** 2, q)
    want = [gaussian_expectation(lambda x: np.tanh(x) ** 2, float(v)) for v in q]
    assert got == pytest.approx(want, rel=1e-14, abs=1e-300)


@pytest.mark.parametrize(("activation", "sigma_b2"), [("tanh", 0.05), ("tanh", 0.5), ("softsign", 0.05),
                                                      ("selu", 0.05)])
def test_critical_sigma_w2_matches_the_scalar_bisection(activation: str, sigma_b2: float) -> None:
    fast = critical_sigma_w2(activation, sigma_b2)
    assert isinstance(fast, float) and fast == pytest.approx(_critical_by_bisection(activation, sigma_b2), rel=1e-7)
    assert mean_field(activation, fast, sigma_b2).chi1 == pytest.approx(1.0, abs=1e-7)


def test_no_critical_point_in_range() -> None:
    assert critical_sigma_w2("sigmoid", 0.05) is None
    assert critical_sigma_w2("relu", 0.0, hi=1.5) is None
