"""Findings of residual, norm and dropout networks: every number a message cites is recomputed here from the
arrays, and every remedy, applied, removes the finding (and moves the verdict as promised)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest

from gradscope import load_scenario, run
from gradscope.layers import Norm, Residual, walk
from gradscope.scenario import bundled_path


def _num(text: str, pattern: str) -> float:
    m = re.search(pattern, text)
    assert m, (pattern, text)
    return float(m.group(1))


def _finding(report: object, code: str) -> object:
    found = [f for f in report.findings if f.code == code]
    assert found, [f.code for f in report.findings]
    return found[0]


def _codes(report: object) -> set[str]:
    return {f.code for f in report.findings}


def _sc(name: str, *sets: str, depth: int | None = None) -> object:
    over = list(sets) + ([f"network.depth={depth}"] if depth else [])
    return load_scenario(bundled_path(name), overrides=over)


def test_residual_branch_scale_cites_the_measured_growth_and_its_alpha_works() -> None:
    sc = _sc("relu-residual-50.yaml", "network.residual.alpha=1.0", "seeds=8")
    r = run(sc)
    f = _finding(r, "residual-branch-scale")
    params, p = r.arrays
    x2 = np.mean(np.sum(p.x ** 2, axis=-1))
    growth = np.median(np.mean(np.sum(p.trace.h[-1] ** 2, axis=-1), axis=-1) / x2)
    assert _num(f.message, r"grows ([0-9.e+-]+)× from the input") == pytest.approx(growth, rel=0.03)  # 2 digits
    blocks = [it for it in walk(sc.items) if isinstance(it, Residual)]
    per = growth ** (1 / len(blocks))
    assert _num(f.message, r"multiplies it by ([0-9.e+-]+) = 1") == pytest.approx(per, rel=5e-3)
    assert _num(f.message, r"branch gain g = ([0-9.e+-]+)") == pytest.approx(per - 1, rel=5e-3)
    assert _num(f.message, r"mean-field predicts ([0-9.e+-]+)×") == pytest.approx(
        r.summary.theory["residual_growth"], rel=0.03)
    alpha = _num(f.hint, r"alpha ([0-9.e+-]+) makes")
    fixed = run(_sc("relu-residual-50.yaml", f"network.residual.alpha={alpha}", "seeds=8"))
    assert "residual-branch-scale" not in _codes(fixed)
    end = fixed.residual_stream[-1]["output_second_moment"]["median"]
    assert end == pytest.approx(2.0, rel=0.15)          # the remedy's promise: about 2× over all blocks
    assert r.summary.verdict == "exploding" and fixed.summary.verdict == "healthy"
    assert f"alpha {alpha:.3g} makes" in _finding(r, "exploding-gradient").hint


def test_batchnorm_explosion_cites_the_per_layer_growth_and_layernorm_removes_it() -> None:
    sc = _sc("batchnorm-explosion.yaml", "seeds=8")
    r = run(sc)
    f = _finding(r, "batchnorm-gradient-explosion")
    _, p = r.arrays
    bns = [it for it in walk(sc.items) if isinstance(it, Norm)]
    first, last = p.norm_delta[bns[0].row], p.norm_delta[bns[-1].row]
    assert _num(f.message, r"‖∂L/∂y‖ ([0-9.e+-]+)× from layer") == pytest.approx(np.median(first / last), rel=5e-3)
    per = np.median(np.exp(2 * np.log(first / last) / (len(bns) - 1)))
    assert _num(f.message, r"by ([0-9.e+-]+) per layer") == pytest.approx(per, rel=5e-3)
    assert 1.3 < per < 1.6   # near π/(π−1) at this width and batch
    fixed = run(_sc("batchnorm-explosion.yaml", "seeds=8", "network.norm=layernorm"))
    assert "batchnorm-gradient-explosion" not in _codes(fixed)
    assert r.summary.verdict == "exploding" and fixed.summary.verdict not in ("exploding", "overflow")
    # the exploding-gradient remedy is the structural one (the init scale does not set a batchnorm net's gradient)
    assert "norm: layernorm" in _finding(r, "exploding-gradient").hint
    assert "he_normal" not in _finding(r, "exploding-gradient").hint


def test_post_norm_shrink_cites_the_ratio_and_pre_norm_removes_it() -> None:
    r = run(_sc("postnorm-residual.yaml", "seeds=8"))
    f = _finding(r, "post-norm-gradient-shrink")
    dense = [lay for lay in r.layers if lay.kind == "dense"]
    first, last = dense[0], dense[-2]
    ratio = np.median(r.per_seed[f"weight_grad_norm{first.layer}"] / r.per_seed[f"weight_grad_norm{last.layer}"])
    assert _num(f.message, rf"layer {first.layer}'s weight gradient is ([0-9.e+-]+) of layer {last.layer}'s") == \
        pytest.approx(ratio, rel=5e-3)
    fixed = run(_sc("postnorm-residual.yaml", "seeds=8", "network.norm_placement=pre"))
    assert "post-norm-gradient-shrink" not in _codes(fixed)


def test_dropout_critical_init_cites_chi1_and_its_std_reaches_it() -> None:
    r = run(_sc("dropout-critical.yaml", "network.init=he_normal", "seeds=8"))
    f = _finding(r, "dropout-critical-init")
    th = r.summary.theory
    assert th["dropout_keep"] == pytest.approx(0.6)
    # ReLU: E[φ'²] = 1/2, so χ₁ = σ_w²/(2q) = 2/1.2
    assert _num(f.message, r"χ₁ = ([0-9.e+-]+) with") == pytest.approx(2 / 1.2, rel=5e-3)
    assert _num(f.message, r"= ([0-9.e+-]+)$") == pytest.approx(1.2, rel=1e-3)
    assert th["measured_backward_factor"] == pytest.approx(2 / 1.2, rel=0.08)
    std = _num(f.hint, r"std: ([0-9.e+-]+)")
    assert std == pytest.approx(math.sqrt(1.2 / 128), rel=1e-3)
    fixed = run(_sc("dropout-critical.yaml", f"network.init.std={std}", "network.init.scheme=normal", "seeds=8"))
    assert "dropout-critical-init" not in _codes(fixed)
    assert r.summary.verdict == "exploding" and fixed.summary.verdict == "healthy"
    assert fixed.summary.theory["chi1"] == pytest.approx(1.0, abs=0.01)
    # the exploding remedy names the same std, and says what he_normal gives with this dropout
    hint = _finding(r, "exploding-gradient").hint
    assert hint.startswith(f"use a smaller init scale: init {{scheme: normal, std: {std:.4g}}}")
    assert "χ₁ = 1.67 with dropout keep 0.6" in hint
    fwd = _finding(r, "forward-explosion").hint
    assert f"std: {std:.4g}" in fwd and "he_normal for ReLU" not in fwd


def test_report_rows_json_and_npz_of_a_norm_residual_network(tmp_path: object) -> None:
    out = tmp_path / "r.json"  # type: ignore[operator]
    npz = tmp_path / "r.npz"  # type: ignore[operator]
    cmd = [sys.executable, "-m", "gradscope", "run", str(bundled_path("prenorm-residual.yaml")), "--set",
           "network.depth=4", "--set", "network.dropout=0.1", "--seeds", "3", "--format", "json", "--output",
           str(out), "--save-arrays", str(npz)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rep = json.loads(out.read_text())
    kinds = [(lay["layer"], lay["kind"], lay["block"]) for lay in rep["layers"]]
    assert [k[0] for k in kinds] == list(range(1, len(kinds) + 1))
    assert kinds[0] == (1, "layernorm", 1) and kinds[1] == (2, "dense", 1) and kinds[-1][1:] == ("dense", None)
    assert [b["block"] for b in rep["residual_stream"]] == [1, 2, None]
    for b in rep["residual_stream"][:-1]:
        share = b["skip_share"]["median"]
        assert 0 < share < 1
    a = np.load(npz)
    S = 3
    for lay in rep["layers"]:
        l = lay["layer"]
        if lay["kind"] == "dense":
            assert a[f"W{l}"].shape == (S, lay["fan_in"], lay["fan_out"]) == a[f"dW{l}"].shape
        else:
            assert a[f"gamma{l}"].shape == (S, lay["fan_out"]) == a[f"dgamma{l}"].shape
            assert np.all(a[f"gamma{l}"] == 1.0) and np.all(a[f"beta{l}"] == 0.0)
            idx = np.arange(lay["fan_out"])
            assert a[f"W{l}"].shape == (S, lay["fan_in"], lay["fan_out"])
            np.testing.assert_array_equal(a[f"W{l}"][:, idx, idx], a[f"gamma{l}"])
            np.testing.assert_array_equal(a[f"dW{l}"][:, idx, idx], a[f"dgamma{l}"])
            assert np.count_nonzero(a[f"dW{l}"]) == np.count_nonzero(a[f"dgamma{l}"])
            np.testing.assert_array_equal(a[f"db{l}"], a[f"dbeta{l}"])
            norms = np.linalg.norm(a[f"dgamma{l}"], axis=1)
            assert lay["weight_grad_norm"]["median"] == pytest.approx(float(np.median(norms)), rel=1e-9)
            assert lay["bias_grad_norm"]["median"] == pytest.approx(
                float(np.median(np.linalg.norm(a[f"dbeta{l}"], axis=1))), rel=1e-9)
    masks = sorted(k for k in a.files if k.startswith("dropout_mask"))
    assert len(masks) == 4
    assert set(np.unique(a[masks[0]])) <= {0.0, 1 / 0.9}


BAD = [
    ({"network": {"depth": 2, "norm": "batchnorm"}, "data": {"batch_size": 1}}, "data.batch_size", "batchnorm"),
    ({"network": {"depth": 2, "dropout": 1.0}}, "network.dropout", "must be < 1"),
    ({"network": {"depth": 2, "dropout": -0.1}}, "network.dropout", "must be ≥ 0"),
    ({"network": {"input_dim": 8, "layers": [{"residual": {"layers": []}}]}}, "network.layers.0.residual",
     "non-empty"),
    ({"network": {"input_dim": 8, "layers": [{"residual": {"layers": [{"dense": 16}]}}]}},
     "network.layers.0.residual", "projection: true"),
    ({"network": {"input_dim": 8, "depth": 2, "width": 16, "residual": {"every": 2}}}, "network.residual",
     "projection: true"),
    ({"network": {"depth": 3, "width": 16, "residual": {"every": 2}}}, "network.residual.every", "multiple of 2"),
    ({"network": {"depth": 2, "layers": [{"dense": 8}]}}, "network.depth", "not both"),
    ({"network": {"layers": [{"conv": 8}]}}, "network.layers.0.conv", "unknown layer item"),
    ({"network": {"layers": [{"dense": 8, "norm": "layernorm"}]}}, "network.layers.0", "one key"),
    ({"network": {"depth": 2, "norm": "groupnorm"}}, "network.norm", "unknown norm"),
    ({"network": {"depth": 2, "norm_placement": "post"}}, "network.norm_placement", "has none"),
    ({"network": {"depth": 2, "norm": "layernorm"}, "analysis": {"jacobian": {}}}, "analysis.jacobian",
     "dense layers"),
    ({"network": {"depth": 2, "norm": "batchnorm"}, "train": {"steps": 2, "batch_size": 1}}, "train.batch_size",
     "batchnorm"),
]


@pytest.mark.parametrize(("raw", "key", "text"), BAD)
def test_bad_layer_input_exits_2_naming_the_key(raw: dict, key: str, text: str, tmp_path: object) -> None:
    import yaml

    path = tmp_path / "bad.yaml"  # type: ignore[operator]
    path.write_text(yaml.safe_dump(raw))
    res = subprocess.run([sys.executable, "-m", "gradscope", "run", str(path)], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert key in res.stderr and text in res.stderr, res.stderr
    assert re.search(r"bad\.yaml:\d+", res.stderr), res.stderr  # the line


def test_explicit_dense_layers_equal_the_shorthand() -> None:
    short = run({"seeds": 3, "network": {"input_dim": 8, "widths": [16, 12], "activation": "tanh"}})
    explicit = run({"seeds": 3, "network": {"input_dim": 8, "activation": "tanh",
                                            "layers": [{"dense": 16}, {"dense": {"width": 12}}]}})
    a, b = short.to_dict(), explicit.to_dict()
    assert a == b


def test_old_keys_keep_their_numbers_with_the_new_keys_at_their_defaults() -> None:
    base = {"seeds": 3, "network": {"input_dim": 8, "depth": 3, "width": 16, "activation": "relu"}}
    same = {"seeds": 3, "network": {"input_dim": 8, "depth": 3, "width": 16, "activation": "relu", "dropout": 0.0,
                                    "norm": "none", "norm_placement": "pre"}}
    assert run(base).to_dict() == run(same).to_dict()


def test_exploding_gradient_remedy_never_names_the_init_in_use_and_works_when_applied() -> None:
    """exploding-gradient said "use a smaller init scale: he_normal" to a BatchNorm net already at he_normal and
    "xavier_uniform" to a residual net already at xavier_uniform (applied: nothing changes), and "he_normal gives
    χ₁ = 1" in a dropout net where it gives σ_w²/(2q) = 1.67. The remedy now names the structure's own fix."""
    bn = run(_sc("batchnorm-explosion.yaml", "seeds=4"))
    hint = _finding(bn, "exploding-gradient").hint
    assert "he_normal" not in hint and "norm: layernorm" in hint
    assert "exploding-gradient" not in _codes(run(_sc("batchnorm-explosion.yaml", "seeds=4", "network.norm=layernorm")))

    res = run(_sc("relu-residual-50.yaml", "network.residual.alpha=1.0", "seeds=4"))
    hint = _finding(res, "exploding-gradient").hint
    assert "xavier_uniform" not in hint and "network.residual.alpha" in hint
    alpha = _num(_finding(res, "residual-branch-scale").hint, r"alpha ([0-9.e+-]+) makes")
    assert "exploding-gradient" not in _codes(run(_sc("relu-residual-50.yaml", f"network.residual.alpha={alpha}",
                                                      "seeds=4")))

    drop = run(_sc("dropout-critical.yaml", "network.init=he_normal", "seeds=4"))
    hint = _finding(drop, "exploding-gradient").hint
    assert not re.search(r"(smaller init scale|use)\W+he_normal", hint)
    assert not re.search(r"he_normal gives relu σ_w² = 2, χ₁ = 1(?![.\d])", hint)
    fwd = _finding(drop, "forward-explosion").hint
    assert _num(fwd, r"he_normal gives relu σ_w² = 2, χ₁ = ([0-9.e+-]+)") == pytest.approx(2 / 1.2, rel=5e-3)
    std = _num(hint, r"std: ([0-9.e+-]+)")
    fixed = run(_sc("dropout-critical.yaml", f"network.init.std={std}", "network.init.scheme=normal", "seeds=4"))
    assert "exploding-gradient" not in _codes(fixed)


def test_width_mismatch_names_the_block_number_the_report_uses() -> None:
    """The message counted only earlier blocks of the same list: the 4th block (2nd inside the 2nd) was 'block 2'."""
    from gradscope.errors import GradscopeError

    def net(projection: bool) -> dict:
        ident = {"dense": {"width": 8, "activation": "identity"}}
        return {"seeds": 2, "network": {"input_dim": 8, "layers": [
            {"residual": {"layers": [ident]}},
            {"residual": {"projection": True, "layers": [{"residual": {"layers": [ident]}},
                                     {"residual": {"projection": projection, "layers": [{"dense": 4}]}}]}}]}}

    with pytest.raises(GradscopeError, match=r"residual block 4 maps 8 features to 4"):
        load_scenario(net(False))
    sc = load_scenario(net(True))
    proj = [b for b in walk(sc.items) if isinstance(b, Residual) and b.projection is not None]
    assert [b.block for b in proj] == [2, 4]
