import json

import numpy as np
import pytest
from typer.testing import CliRunner

from gradscope.cli import app
from gradscope.compare import CURVE_P, compare, curve, detect_axis, parse_probs, probs_table, variant_scenarios
from gradscope.errors import GradscopeError
from gradscope.scenario import load_scenario

from .conftest import REPO

runner = CliRunner()


def _scs(k: int, losses=("mse", "ce", "bce", "focal")):
    base = load_scenario({"network": {"input_dim": 4, "depth": 1, "width": 8, "output_dim": k}, "seeds": 2,
                          "loss": "cross_entropy" if k > 1 else "bce"})
    return variant_scenarios(base, "loss", list(losses))


@pytest.mark.parametrize("k", [2, 3, 10])
def test_curve_matches_closed_forms(k):
    scs = _scs(k, ("mse", "ce"))
    assert scs[0].output_activation == "softmax"  # MSE goes on the softmax output, as in the derivations
    rows = curve(scs, ["mse", "ce"])
    assert [r["p"] for r in rows] == list(CURVE_P)
    for r in rows:
        p = r["p"]
        q = (1 - p) / (k - 1)
        np.testing.assert_allclose(r["ce"]["grad_true_logit"], p - 1, rtol=1e-9)
        np.testing.assert_allclose(r["ce"]["loss"], -np.log(p), rtol=1e-9)
        want = (2 / k) * (-p * (1 - p) ** 2 - (k - 1) * q * q * p)
        np.testing.assert_allclose(r["mse"]["grad_true_logit"], want, rtol=1e-9)
        np.testing.assert_allclose(r["mse"]["loss"], ((1 - p) ** 2 + (k - 1) * q * q) / k, rtol=1e-9)


def test_binary_curve_sigmoid_closed_forms():
    scs = _scs(1, ("mse", "bce"))
    assert [sc.output_activation for sc in scs] == ["sigmoid", "sigmoid"]
    for r in curve(scs, ["mse", "bce"]):
        p = r["p"]
        # y = 1, ŷ = p, one output: mean reduction = the element itself
        np.testing.assert_allclose(r["mse"]["grad_true_logit"], 2 * (p - 1) * p * (1 - p), rtol=1e-9)
        np.testing.assert_allclose(r["bce"]["grad_true_logit"], p - 1, rtol=1e-9)
    half = load_scenario({"network": {"input_dim": 4, "depth": 1, "width": 8, "output_dim": 1,
                                      "output_activation": "sigmoid"},
                          "loss": {"name": "mse", "reduction": "half_sum"}})
    for r in curve([half], ["mse"]):
        p = r["p"]
        np.testing.assert_allclose(r["mse"]["grad_true_logit"], (p - 1) * p * (1 - p), rtol=1e-9)


def test_probs_table_matches_hand_computation():
    scs = _scs(3, ("mse", "ce"))
    rows = probs_table(scs, ["mse", "ce"], parse_probs(["0.8,0.1,0.1", "0.8,0.15,0.05"], 0), 0)
    a, b = rows
    assert a["mse"]["loss"] == pytest.approx(0.06 / 3) and b["mse"]["loss"] == pytest.approx(0.065 / 3)
    assert a["mse"]["loss"] < b["mse"]["loss"]
    assert a["ce"]["loss"] == pytest.approx(-np.log(0.8)) == pytest.approx(b["ce"]["loss"])
    np.testing.assert_allclose(a["ce"]["grad"], [-0.2, 0.1, 0.1], atol=1e-15)
    np.testing.assert_allclose(b["ce"]["grad"], [-0.2, 0.15, 0.05], atol=1e-15)
    # softmax + mse (mean over 3): (2/3) ŷ ⊙ (d - Σ d ŷ), d = ŷ - y
    np.testing.assert_allclose(a["mse"]["grad"], [-0.032, 0.016, 0.016], atol=1e-15)


def test_parse_probs_errors():
    for bad in (["0.8,0.1"], ["a,b"], ["0.5,0.5,0"], ["1.2,-0.2"]):
        with pytest.raises(GradscopeError):
            parse_probs(bad, 0)
    with pytest.raises(GradscopeError, match="same number"):
        parse_probs(["0.5,0.5", "0.2,0.3,0.5"], 0)
    with pytest.raises(GradscopeError, match="--target"):
        parse_probs(["0.5,0.5"], 2)


def test_axis_detection(tmp_path):
    assert detect_axis(["mse", "ce"]) == "loss"
    assert detect_axis(["mse", "bce"]) == "loss"
    assert detect_axis(["sigmoid", "tanh", "relu"]) == "activation"
    assert detect_axis(["standard", "xavier_uniform", "he_normal"]) == "init"
    assert detect_axis(["a.yaml", "b.yaml"]) == "scenario"
    with pytest.raises(GradscopeError, match="mixes axes"):
        detect_axis(["mse", "relu"])
    with pytest.raises(GradscopeError, match=r"unknown variant.*did you mean 'relu'"):
        detect_axis(["relu", "rleu"])
    with pytest.raises(GradscopeError, match="two or more"):
        detect_axis(["mse"])
    with pytest.raises(GradscopeError, match="not activation names"):
        detect_axis(["mse", "ce"], forced="activation")
    with pytest.raises(GradscopeError, match="choose one of"):
        detect_axis(["mse", "ce"], forced="width")


def test_whole_network_side_by_side_and_differing_findings():
    cmp = compare({"seeds": 4, "network": {"depth": 6, "width": 32, "output_dim": 3}},
                  ["sigmoid", "relu"], overrides=["network.init=he_normal"])
    assert cmp.axis == "activation" and [r.label for r in cmp.reports] == ["sigmoid", "relu"]
    assert cmp.reports[0].summary.verdict == "vanishing" and cmp.reports[1].summary.verdict == "healthy"
    assert cmp.differing["vanishing-gradient"] == ["sigmoid"]
    d = cmp.to_dict()
    assert [v["label"] for v in d["variants"]] == ["sigmoid", "relu"] and "curve" not in d


def test_cli_compare_mse_ce_bundled():
    r = runner.invoke(app, ["compare", "mse", "ce", "--format", "json", "--seeds", "4"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["axis"] == "loss" and [v["label"] for v in d["variants"]] == ["mse", "ce"]
    row = next(x for x in d["curve"] if x["p"] == 1e-3)
    assert abs(row["mse"]["grad_true_logit"]) < 0.01 * abs(row["ce"]["grad_true_logit"])
    for v in d["variants"]:
        assert {"summary", "layers", "findings", "scenario"} <= set(v)
    t = runner.invoke(app, ["compare", "mse", "ce", "--seeds", "2", "--no-color",
                            "--probs", "0.8,0.1,0.1", "--probs", "0.8,0.15,0.05", "--target", "0"])
    assert t.exit_code == 0 and "◀" in t.stdout and "0.02167" in t.stdout and "0.2231" in t.stdout


def test_cli_compare_errors_and_formats(tmp_path):
    assert runner.invoke(app, ["compare", "mse", "relu"]).exit_code == 2
    assert runner.invoke(app, ["compare", "foo", "bar"]).exit_code == 2
    r = runner.invoke(app, ["compare", "sigmoid", "relu", "--probs", "0.5,0.5"])
    assert r.exit_code == 2 and "--probs compares losses" in r.stderr
    out = tmp_path / "c.csv"
    curve_file = tmp_path / "curve.csv"
    r = runner.invoke(app, ["compare", "mse", "ce", "--seeds", "2", "--format", "csv", "--output", str(out),
                            "--curve-csv", str(curve_file)])
    assert r.exit_code == 0
    assert out.read_text().count("\nmse,") == 4 and out.read_text().count("\nce,") == 4
    lines = curve_file.read_text().splitlines()
    assert lines[0] == "p,mse_loss,mse_grad_true_logit,ce_loss,ce_grad_true_logit" and len(lines) == 14
    md = runner.invoke(app, ["compare", "mse", "ce", "--seeds", "2", "--format", "markdown"])
    assert md.stdout.startswith("## gradscope compare loss: mse vs ce") and "**" in md.stdout


def test_compare_scenario_files():
    r = runner.invoke(app, ["compare", str(REPO / "scenarios/relu-xavier.yaml"), str(REPO / "scenarios/relu-he.yaml"),
                            "--seeds", "2",
                            "--set", "network.depth=10", "--format", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["axis"] == "scenario" and len(d["variants"]) == 2
    assert d["variants"][0]["scenario"]["network"]["widths"] == [128] * 10


def test_cli_compare_quiet_and_save_arrays(tmp_path):
    out = tmp_path / "run.npz"
    r = runner.invoke(app, ["compare", "mse", "ce", "--seeds", "2", "--quiet", "--no-color", "--save-arrays", str(out)])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("mse: ") and "\nce: " in r.stdout and "output layer" not in r.stdout
    with np.load(tmp_path / "run-mse.npz") as a, np.load(tmp_path / "run-ce.npz") as b:
        np.testing.assert_array_equal(a["W1"], b["W1"])  # same init, different loss
        assert a["y"].shape == (128, 3) and b["y"].shape == (128,)  # one-hot for mse on softmax, labels for ce
        assert not np.allclose(a["dW1"], b["dW1"])


@pytest.mark.parametrize("k", [1, 3])
def test_closed_form_agrees_with_the_curve(k):
    from gradscope.compare import closed_form

    scs = _scs(k, ("mse", "ce") if k > 1 else ("mse", "bce"))
    labels = ["mse", "ce"] if k > 1 else ["mse", "bce"]
    for r in curve(scs, labels):
        for sc, lab in zip(scs, labels, strict=True):
            np.testing.assert_allclose(closed_form(sc, r["p"]), r[lab]["grad_true_logit"], rtol=1e-9)
    smooth = load_scenario({"loss": {"name": "cross_entropy", "label_smoothing": 0.1}})
    assert closed_form(smooth, 0.5) is None
