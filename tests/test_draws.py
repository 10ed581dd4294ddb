"""Weight drawing: one stream per layer, seed-major, so seed k never depends on the ensemble size."""

from __future__ import annotations

import numpy as np
import pytest

from gradscope.engine import _draw_stacked, init_params, layer_streams
from gradscope.inits import INITS, LayerContext, sample_bias
from gradscope.scenario import load_scenario


def _scenario(seeds: int, init: str, bias_init: str = "normal") -> dict:
    return {"seed": 3, "seeds": seeds, "network": {"input_dim": 5, "widths": [7, 6], "output_dim": 3,
                                                  "activation": "tanh", "init": init, "bias_init": bias_init}}


@pytest.mark.parametrize("init", ["xavier_normal", "he_uniform", "orthogonal", "lecun_normal", "standard"])
def test_seed_k_of_64_equals_seed_k_of_4(init: str) -> None:
    few = init_params(load_scenario(_scenario(4, init)))
    many = init_params(load_scenario(_scenario(64, init)))
    for a, b in zip(few.W + few.b, many.W + many.b, strict=True):
        np.testing.assert_array_equal(a, b[:4])
    assert not np.array_equal(many.W[0][0], many.W[0][1])  # members differ


@pytest.mark.parametrize("scheme", ["xavier_uniform", "he_normal", "normal", "zeros", "constant"])
def test_one_call_per_layer_equals_drawing_seed_by_seed(scheme: str) -> None:
    init, ctx = INITS.get(scheme), LayerContext("tanh")
    (w_ss, b_ss), = layer_streams(11, 1)
    stacked = _draw_stacked(lambda rng: init.sample(rng, 4, 3, ctx), np.random.default_rng(w_ss), 5, (4, 3))
    rng = np.random.default_rng(w_ss)
    looped = np.stack([init.sample(rng, 4, 3, ctx) for _ in range(5)])
    np.testing.assert_array_equal(stacked, looped)
    bias = _draw_stacked(lambda rng: sample_bias("uniform", {"a": 0.5}, rng, 4, 3, ctx),
                         np.random.default_rng(b_ss), 5, (3,))
    rng = np.random.default_rng(b_ss)
    np.testing.assert_array_equal(bias, np.stack([rng.uniform(-0.5, 0.5, 3) for _ in range(5)]))


def test_layers_and_weights_vs_biases_use_distinct_streams() -> None:
    p = init_params(load_scenario({"seeds": 2, "network": {"input_dim": 6, "widths": [6, 6], "output_dim": 6,
                                                           "init": "normal", "bias_init": "normal"}}))
    assert not np.array_equal(p.W[1][0], p.W[2][0])
    assert not np.array_equal(p.W[1][0, 0], p.b[1][0])
