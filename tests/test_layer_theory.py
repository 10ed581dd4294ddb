"""Published values for residual, BatchNorm and dropout networks, reproduced by measurement (≥ 32 seeds,
width ≥ 256) and by gradscope's own mean-field prediction.

Tolerances come from the finite width: the measured second moment of a residual stream carries an O(1/n)
correction per block and seed-to-seed fluctuations of a few percent at n = 256 (measured: α = 1, L = 10 gives
996 ± 34 for 1024 at 32 seeds), so 10% there and 3% for the small-α case; BatchNorm's π/(π−1) is a large-width,
large-batch limit whose per-layer value drifts within a few layers of the output, so the layers nearest the input
are compared, at 5%.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from gradscope import load_scenario, run
from gradscope.diagnostics import theory_for
from gradscope.engine import draw_data, forward_trace, init_params, loss_target, run_pass
from gradscope.layers import BATCHNORM_RELU_GRADIENT_GROWTH, Norm, walk

SEEDS = 32


def _residual(alpha: float, blocks: int, width: int = 256, batch: int = 16) -> object:
    block = {"residual": {"alpha": alpha, "layers": [{"dense": {"activation": "relu", "init": "he_normal"}},
                                                     {"dense": {"activation": "identity", "init": "lecun_normal"}}]}}
    return load_scenario({"seeds": SEEDS, "network": {"input_dim": width, "width": width, "output_dim": 10,
                                                      "bias": False, "layers": [block] * blocks},
                          "data": {"batch_size": batch}})


@pytest.mark.parametrize(("alpha", "blocks", "published", "tol"), [(1.0, 10, 1024.0, 0.10), (0.1, 100, 2.705, 0.03)])
def test_residual_stream_grows_as_one_plus_alpha_squared_to_the_blocks(alpha: float, blocks: int, published: float,
                                                                       tol: float) -> None:
    """Yang & Schoenholz 2017, Hanin & Rolnick 2018: E‖x_L‖²/‖x_0‖² = (1 + α²)^L for a dense He → ReLU → dense
    (σ_w² = 1) branch."""
    assert published == pytest.approx((1 + alpha * alpha) ** blocks, rel=1e-3)
    sc = _residual(alpha, blocks)
    data = draw_data(sc)
    with threadpool_limits(1):
        tr = forward_trace(sc, init_params(sc), data.x)
    x0 = np.mean(np.sum(data.x ** 2, axis=-1))
    measured = np.mean(np.sum(tr.h[-1] ** 2, axis=-1), axis=-1) / x0   # per seed
    assert float(np.mean(measured)) == pytest.approx(published, rel=tol)
    # gradscope's prediction is the published formula (the data's own ‖x‖² per unit enters and cancels)
    info, _ = theory_for(sc, data.x)
    assert info["residual_growth"] == pytest.approx(published, rel=1e-3)


def _bn_net(norm: bool, depth: int = 6, width: int = 512, batch: int = 256) -> object:
    net = {"input_dim": width, "depth": depth, "width": width, "output_dim": 10, "activation": "relu",
           "init": "he_normal", "bias": False}
    if norm:
        net.update(norm="batchnorm", norm_placement="post")
    return load_scenario({"seeds": SEEDS, "network": net, "loss": "mse", "data": {"batch_size": batch}})


def test_batchnorm_gradient_grows_by_pi_over_pi_minus_one_per_layer() -> None:
    """Yang et al. 2019: linear → BatchNorm → ReLU at init, ‖∂L/∂y‖² grows backward by π/(π−1) ≈ 1.467 per layer;
    the same net without BatchNorm under He init keeps it (1.00)."""
    assert BATCHNORM_RELU_GRADIENT_GROWTH == pytest.approx(1.467, abs=1e-3)
    with threadpool_limits(2):
        sc = _bn_net(True)
        data = draw_data(sc)
        p = run_pass(sc, init_params(sc), data.x, loss_target(sc, data))
        bns = [it for it in walk(sc.items) if isinstance(it, Norm)]
        g = np.stack([p.norm_delta[n.row] for n in bns])          # (layers, S), input first
        ratios = (g[:-1] / g[1:]) ** 2                             # growth of ‖∂L/∂y‖² toward the input
        near_input = float(np.exp(np.mean(np.log(ratios[:3]))))
        assert near_input == pytest.approx(math.pi / (math.pi - 1), rel=0.05)
        info, _ = theory_for(sc, data.x)
        assert info["batchnorm_gradient_growth"] == pytest.approx(math.pi / (math.pi - 1))

        plain = _bn_net(False)
        p = run_pass(plain, init_params(plain), data.x, loss_target(plain, data))
        d = np.stack([np.sum(x.astype(np.float64) ** 2, axis=(1, 2)) for x in p.delta[:-1]])
        he = float(np.exp(np.mean(np.log(d[:3] / d[1:4]))))
        assert he == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize(("init_std", "expected"), [(math.sqrt(1.2 / 256), 1.0), (math.sqrt(2.0 / 256), 1 / 0.6)])
def test_dropout_moves_the_critical_init_to_two_q(init_std: float, expected: float) -> None:
    """Schoenholz et al. 2017, Pretorius et al. 2018: ReLU with dropout keep q, inverted scaling: critical
    σ_w² = 2q (q = 0.6 → 1.2); at σ_w² = 2 (He) each layer multiplies ‖δ‖² by 1/q."""
    sc = load_scenario({"seeds": SEEDS, "network": {"input_dim": 256, "depth": 10, "width": 256, "output_dim": 10,
                                                    "activation": "relu", "bias": False, "dropout": 0.4,
                                                    "init": {"scheme": "normal", "std": init_std}},
                        "data": {"batch_size": 32}})
    report = run(sc)
    th = report.summary.theory
    assert th["critical_sigma_w2"] == pytest.approx(1.2, rel=1e-6)
    assert th["dropout_keep"] == pytest.approx(0.6)
    assert th["chi1"] == pytest.approx(expected, rel=1e-3)
    assert th["measured_backward_factor"] == pytest.approx(expected, rel=0.06)
