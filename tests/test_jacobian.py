"""Input–output Jacobian spectra (issue 14): exactness, free-probability acceptance numbers, verdicts, findings."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from gradscope import api
from gradscope.engine import forward, init_params
from gradscope.errors import GradscopeError
from gradscope.jacobian import (
    ISOMETRY_FACTOR,
    enable,
    input_output_jacobian,
    predict,
    singular_values,
    steps_for,
)
from gradscope.parallel import limit_blas
from gradscope.scenario import load_scenario


def net(act: str, init: Any, depth: int, width: int, *, seeds: int = 4, samples: int = 4, din: int | None = None,
        std: float = 1.0, bias: bool = False, at: str = "last_hidden", batch: int | None = None) -> dict[str, Any]:
    return {"seed": 1, "seeds": seeds,
            "network": {"input_dim": din or width, "depth": depth, "width": width, "output_dim": 10,
                        "activation": act, "init": init, "bias": bias},
            "loss": "mse", "data": {"kind": "gaussian", "batch_size": batch or max(samples, 2), "std": std},
            "analysis": {"jacobian": {"samples": samples, "at": at}}}


def _product(params, depth: int) -> np.ndarray:
    J = params.W[0]
    for W in params.W[1:depth]:
        J = J @ W
    return J


@pytest.mark.parametrize("depth", [1, 7, 40])
def test_linear_orthogonal_is_exactly_isometric_at_any_depth(depth):
    r = api.run(net("identity", "orthogonal", depth, 24, seeds=3, samples=2))
    assert np.abs(r.jacobian.sv - 1.0).max() < 1e-12
    j = r.to_dict()["jacobian"]
    assert j["verdict"] == "isometric" and j["near_one_fraction"] == 1.0
    assert j["predicted_var_eig"] == pytest.approx(0.0, abs=1e-12)
    assert j["predicted_mean_sv2"] == pytest.approx(1.0, rel=1e-12)
    assert j["var_eig"] < 1e-20


def test_linear_gaussian_variance_is_depth_free_probability():
    """σ_w² = 1, width 400, 16 seeds: Var(λ of JJᵀ) ≈ L within 15% and mean ≈ 1, for L = 4, 8, 16.

    One 16-layer ensemble; J of its first L layers is the J of an L-layer net (same steps, chained)."""
    with limit_blas(1):
        _linear_gaussian(400, 16)


def _linear_gaussian(width: int, seeds: int) -> None:
    sc = load_scenario(net("identity", {"scheme": "normal", "std": 1 / 20}, 16, width, seeds=seeds, samples=1))
    params = init_params(sc)
    x = np.zeros((1, width))
    z, a = forward(sc, params, x)
    steps = steps_for(sc, params, z, a, 1, "last_hidden")  # Dense, Elementwise(φ' = 1), ...
    t = input_output_jacobian(steps[:8], seeds, 1, width, width, np.float64)
    done = 8
    for L in (4, 8, 16):
        for step in steps[done:2 * L]:
            t = step.jvp(t)
        done = 2 * L
        lam = singular_values(t) ** 2
        assert lam.mean() == pytest.approx(1.0, rel=0.1), L
        assert lam.var() == pytest.approx(L, rel=0.15), (L, lam.var())
        pred = predict(load_scenario(net("identity", {"scheme": "normal", "std": 1 / 20}, L, width)), x, "last_hidden")
        assert pred["var_eig"] == pytest.approx(L, rel=1e-9) and pred["mean_sv2"] == pytest.approx(1.0, rel=1e-12)


def test_json_numbers_are_recomputed_from_the_weights():
    sc = net("identity", {"scheme": "normal", "std": 1 / 8}, 3, 64, seeds=6, samples=1)
    r = api.run(sc)
    params, _ = r.arrays
    sv = np.linalg.svd(_product(params, 3), compute_uv=False)           # (S, k): J of a linear net
    np.testing.assert_allclose(r.jacobian.sv[:, 0], sv, rtol=1e-10)
    j = json.loads(json.dumps(r.to_dict()["jacobian"]))
    lam = sv**2
    assert j["mean_sv2"] == pytest.approx(lam.mean(), rel=1e-10)
    assert j["var_eig"] == pytest.approx(lam.var(), rel=1e-10)
    assert j["singular_values"]["q10"] == pytest.approx(np.quantile(sv, 0.1), rel=1e-10)
    assert j["singular_values"]["max"] == pytest.approx(sv.max(), rel=1e-12)
    assert j["per_seed"][2]["median"] == pytest.approx(np.median(sv[2]), rel=1e-10)
    assert j["condition_number"]["median"] == pytest.approx(np.median(sv[:, 0] / sv[:, -1]), rel=1e-10)
    near = np.mean((sv >= 1 / ISOMETRY_FACTOR) & (sv <= ISOMETRY_FACTOR))
    assert j["near_one_fraction"] == pytest.approx(near)
    assert j["predicted_var_eig"] == pytest.approx(3.0) and j["predicted_mean_sv2"] == pytest.approx(1.0)


def test_forward_and_reverse_mode_agree_and_logits_include_the_output_layer():
    sc = load_scenario(net("tanh", "xavier_normal", 3, 12, din=20, samples=3, bias=True, at="logits"))
    params = init_params(sc)
    x = np.random.default_rng(0).standard_normal((3, 20))
    z, a = forward(sc, params, x)
    steps = steps_for(sc, params, z, a, 3, "logits")
    rev = input_output_jacobian(steps, 4, 3, 20, 10, np.float64)        # d_in 20 > 10 outputs: reverse mode
    fwd = np.broadcast_to(np.eye(20), (4, 3, 20, 20))
    for step in steps:
        fwd = step.jvp(fwd)
    np.testing.assert_allclose(rev, fwd, rtol=1e-12, atol=1e-14)
    # finite differences of the logits with respect to input feature 5 of sample 1
    h = 1e-6
    xp, xm = x.copy(), x.copy()
    xp[1, 5] += h
    xm[1, 5] -= h
    fd = (forward(sc, params, xp)[0][-1][:, 1] - forward(sc, params, xm)[0][-1][:, 1]) / (2 * h)
    np.testing.assert_allclose(rev[:, 1, 5], fd, rtol=1e-6, atol=1e-9)


def test_tanh_critical_orthogonal_is_far_narrower_than_gaussian_depth_32():
    """σ_w² = 1, σ_b = 0, small inputs (std 0.03: q₀ ≈ 1e-3) keep tanh near its critical point."""
    gauss = api.run(net("tanh", {"scheme": "normal", "std": 1 / 8}, 32, 64, std=0.03)).jacobian.summary
    orth = api.run(net("tanh", "orthogonal", 32, 64, std=0.03)).jacobian.summary
    assert orth["verdict"] == "isometric" and gauss["verdict"] == "broad"
    assert orth["q90_q10"] < 1.5 and gauss["q90_q10"] > 1e3 * orth["q90_q10"]
    assert orth["mean_sv2"] == pytest.approx(1.0, rel=0.15)
    assert gauss["mean_sv2"] == pytest.approx(1.0, rel=0.5)   # heavy-tailed: 16 Jacobians estimate it
    for j in (orth, gauss):
        assert j["mean_sv2"] == pytest.approx(j["predicted_mean_sv2"], rel=0.5)
    assert orth["predicted_var_eig"] < 0.05 < 20 < gauss["predicted_var_eig"]


def test_broad_finding_remedy_moves_the_verdict_to_isometric():
    base = net("tanh", {"scheme": "normal", "std": 1 / 8}, 32, 64, std=0.03)
    r = api.run(base)
    f = next(f for f in r.findings if f.code == "broad-jacobian-spectrum")
    assert "orthogonal" in f.hint and f.layers == tuple(range(1, 33))
    assert f"{r.jacobian.summary['mean_sv2']:.3g}" in f.message
    fixed = api.run({**base, "network": {**base["network"], "init": {"scheme": "orthogonal", "gain": 1.0}}})
    assert fixed.jacobian.verdict == "isometric"
    assert "broad-jacobian-spectrum" not in {f.code for f in fixed.findings}


def test_relu_broadens_with_depth_even_orthogonal():
    """He (χ₁ = 1) and orthogonal gain √2: Var(λ)/E[λ]² grows with depth; no init makes ReLU isometric."""
    out = {}
    for name, init in (("he", "he_normal"), ("orth", {"scheme": "orthogonal", "gain": 2**0.5})):
        for L in (2, 8, 32):
            j = api.run(net("relu", init, L, 64, din=16, seeds=8, samples=8)).jacobian.summary
            out[name, L] = j["var_eig"] / j["mean_sv2"] ** 2
            assert j["verdict"] != "isometric"
            assert j["predicted_mean_sv2"] == pytest.approx(4.0 if name == "he" else 1.0, rel=1e-9)
        assert out[name, 2] < out[name, 8] < out[name, 32], out
    assert out["orth", 32] < out["he", 32]
    r = api.run(net("relu", "he_normal", 32, 64, din=16, seeds=8, samples=8))
    f = [f for f in r.findings if f.code == "broad-jacobian-spectrum"]
    assert not f or "no initialization" in f[0].hint


def test_dead_relu_units_make_a_square_jacobian_degenerate():
    r = api.run(net("relu", "he_normal", 4, 32, seeds=2, samples=4))
    j = r.jacobian.summary
    assert j["verdict"] == "degenerate" and j["zero_fraction"] > 0.01
    params, p = r.arrays
    alive = np.stack([np.count_nonzero(p.z[l][:, :4] > 0, axis=-1) for l in range(4)]).min(axis=0)
    assert j["rank"]["min"] == int(alive.min())
    assert (r.jacobian.sv[..., -1] == 0).any()
    assert "degenerate-jacobian" in {f.code for f in r.findings}


def test_npz_and_cli(tmp_path):
    from typer.testing import CliRunner

    from gradscope.cli import app

    out = tmp_path / "r.npz"
    res = CliRunner().invoke(app, ["run", "--jacobian", "--format", "json", "--save-arrays", str(out), "--seeds", "3"])
    assert res.exit_code == 0, res.output
    j = json.loads(res.output)["jacobian"]
    sv = np.load(out)["jacobian_sv"]
    assert sv.shape == (3, 8, 32) and j["samples"] == 8 and j["k"] == 32
    assert j["singular_values"]["median"] == pytest.approx(np.median(sv))
    res = CliRunner().invoke(app, ["run", "--jacobian", "--seeds", "2"])
    assert res.exit_code == 0 and "singular values" in res.output


def test_bad_options_exit_2_with_key_path(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("network: {depth: 2, width: 8}\ndata: {batch_size: 4}\nanalysis:\n  jacobian: {samples: 9}\n")
    from typer.testing import CliRunner

    from gradscope.cli import app

    res = CliRunner().invoke(app, ["run", str(bad)])
    assert res.exit_code == 2 and "analysis.jacobian.samples" in res.output and "bad.yaml:4" in res.output
    bad.write_text("analysis:\n  jacobian: {at: logit}\n")
    res = CliRunner().invoke(app, ["run", str(bad)])
    assert res.exit_code == 2 and "analysis.jacobian.at" in res.output and "logits" in res.output
    sc = load_scenario(net("tanh", "xavier_normal", 2, 8, samples=2, batch=4))
    with pytest.raises(GradscopeError, match="batch_size"):
        enable(sc, samples=5)
    with pytest.raises(GradscopeError, match="Jacobian analysis needs"):
        api.run(net("tanh", "xavier_normal", 2, 256, seeds=64, samples=64), max_memory=2**30)


def test_reference_spectra_and_figures(tmp_path):
    from gradscope.jacobian import reference_spectra

    refs = reference_spectra([16, 16, 16, 16])
    assert np.abs(refs["orthogonal"] - 1).max() < 1e-12
    assert (refs["gaussian"] ** 2).mean() == pytest.approx(1.0, rel=0.5) and refs["gaussian"].std() > 0.2
    assert reference_spectra([4000, 4000, 4000]) is None
    pytest.importorskip("matplotlib")
    from gradscope.compare import compare
    from gradscope.plot import compare_figure, run_figure

    cmp = compare(net("tanh", "orthogonal", 6, 16, samples=4), ["orthogonal", "xavier_normal"], jacobian=True)
    fig = compare_figure(cmp)
    gids = {p.get_gid() for ax in fig.axes for p in ax.patches}
    assert {"jacobian-orthogonal", "jacobian-xavier_normal", "jacobian-ref-gaussian",
            "jacobian-ref-orthogonal"} <= gids
    ax = next(a for a in fig.axes if "spectrum of J" in a.get_title())
    assert any("isometric" in t.get_text() or "broad" in t.get_text() for t in ax.get_legend().get_texts())
    assert any("spectrum of J" in a.get_title() for a in run_figure(cmp.reports[0]).axes)


@pytest.mark.parametrize(("init", "per_layer"), [("he_normal", 2.0), ({"scheme": "orthogonal", "gain": 2**0.5}, 1.0)])
def test_relu_square_variance_matches_free_probability(init, per_layer):
    """Square ReLU at χ₁ = 1: Var(λ)/E[λ]² = L·(μ₂/μ₁² - 1 + s) = 2L (Gaussian) or L (orthogonal), zeros included."""
    j = api.run(net("relu", init, 4, 128, seeds=4, samples=4)).jacobian.summary
    assert j["predicted_var_eig"] == pytest.approx(4 * per_layer, rel=1e-9)
    assert j["var_eig"] / j["mean_sv2"] ** 2 == pytest.approx(4 * per_layer, rel=0.2)
    assert j["verdict"] == "degenerate"   # half the units are off for each sample: J loses directions


def test_schema_lists_the_analysis_keys():
    from gradscope.schema import scenario_schema

    s = scenario_schema()
    jac = s["properties"]["analysis"]["anyOf"][0]["properties"]["jacobian"]["anyOf"][0]["properties"]
    assert jac["at"]["enum"] == ["last_hidden", "logits"] and jac["samples"]["default"] == 8
    assert "jacobian_verdict" in s["properties"]["expect"]["anyOf"][0]["properties"]
