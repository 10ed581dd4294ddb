"""Shared helpers: small scenarios and central finite differences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gradscope.scenario import load_scenario

REPO = Path(__file__).resolve().parent.parent  # the repository root, wherever pytest is run from


def small(**over: Any) -> dict[str, Any]:
    """A tiny scenario dict; keyword overrides merge into the top level or `network`."""
    sc: dict[str, Any] = {
        "seed": 3, "seeds": 2,
        "network": {"input_dim": 5, "widths": [4, 3], "output_dim": 3, "activation": "tanh",
                    "init": "xavier_normal", "bias_init": {"scheme": "normal", "std": 0.3}},
        "loss": "cross_entropy",
        "data": {"kind": "gaussian", "batch_size": 4},
    }
    for k, v in over.items():
        if k in sc["network"] or k in ("widths", "output_activation", "bias", "init", "bias_init", "activation",
                                       "input_dim", "output_dim"):
            sc["network"][k] = v
        else:
            sc[k] = v
    return sc


@pytest.fixture
def make():
    def _make(**over: Any):
        return load_scenario(small(**over))
    return _make


def central_diff(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """∂f/∂x elementwise for an elementwise f, by central differences."""
    return (f(x + h) - f(x - h)) / (2 * h)


def numeric_gradient(f, z: np.ndarray, h: float = 1e-6, select=None) -> np.ndarray:
    """∂f/∂z by one central difference per entry; select(value, idx) picks the scalar that entry affects
    (e.g. the loss of seed idx[0]), default: f returns a scalar."""
    pick = select or (lambda value, idx: value)
    grad = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += h
        zm[idx] -= h
        grad[idx] = (float(pick(f(zp), idx)) - float(pick(f(zm), idx))) / (2 * h)
    return grad
