"""--plot: the figures' data (read back from the matplotlib Axes), zero-safe log axes, labels, file formats."""

from __future__ import annotations

import io
import math
import sys
from dataclasses import replace

import matplotlib  # noqa: F401  (the `test` extra installs it: these tests run for real in CI)
import numpy as np
import pytest
from typer.testing import CliRunner

from gradscope import api, plot
from gradscope.cli import app
from gradscope.compare import compare
from gradscope.report import Stat
from gradscope.scenario import load_scenario

from .conftest import small

runner = CliRunner()
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-", "svg": b"<svg"}


@pytest.fixture(scope="module")
def report():
    return api.run(load_scenario(small(widths=[6, 6, 6], activation="sigmoid", seeds=3)))


@pytest.fixture(scope="module")
def run_fig(report):
    return plot.run_figure(report)


@pytest.fixture(scope="module")
def trained():
    return api.run(load_scenario(small(widths=[6, 6], train={"steps": 8, "record_every": 2, "lr": 0.3})))


@pytest.fixture(scope="module")
def comparison():
    return compare(load_scenario(small(seeds=2)), ["mse", "ce"])


def _lines(fig, gid):
    return [line for ax in fig.axes for line in ax.get_lines() if line.get_gid() == gid]


def _axis_of(fig, gid):
    return next(ax for ax in fig.axes for line in ax.get_lines() if line.get_gid() == gid)


def _labelled(fig) -> None:
    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison:
            continue
        assert ax.get_ylabel(), f"panel without a y label: {ax.get_title()}"
        assert ax.get_xlabel() or ax.get_title() == "", "panel without an x label"


def _footnote(fig) -> str:
    return next(t.get_text() for t in fig.texts if t.get_gid() == "footnote")


def test_run_figure_plots_the_report_numbers(report, run_fig):
    layers = [lay.layer for lay in report.layers]
    (median,) = _lines(run_fig, "median")
    np.testing.assert_array_equal(median.get_xdata(), layers)
    np.testing.assert_allclose(median.get_ydata(), [lay.median("gradient_ratio") for lay in report.layers])
    assert _axis_of(run_fig, "median").get_yscale() == "log"
    seeds = _lines(run_fig, "seed")
    assert len(seeds) == report.scenario["seeds"]
    for s, line in enumerate(seeds):
        np.testing.assert_allclose(line.get_ydata(), [report.per_seed[f"gradient_ratio{l}"][s] for l in layers])
    (pred,) = _lines(run_fig, "predicted")
    np.testing.assert_allclose(pred.get_ydata(), [lay.predicted_gradient_ratio for lay in report.layers])
    for lay in report.layers:  # the distribution boxes are the report's quantiles
        (med,) = _lines(run_fig, f"dist-median-{lay.layer}")
        np.testing.assert_allclose(med.get_ydata(), [lay.grad_quantiles["q50"]] * 2)
    (std,) = _lines(run_fig, "preact-std")
    np.testing.assert_allclose(std.get_ydata(), [lay.median("preact_std") for lay in report.layers])
    frac_ax = next(ax for ax in run_fig.axes if any(p.get_gid() == "saturation" for p in ax.patches))
    sat = [p.get_height() for p in frac_ax.patches if p.get_gid() == "saturation"]
    np.testing.assert_allclose(sat, [lay.median("saturation") or 0.0 for lay in report.layers])
    status_dots = [line for ax in run_fig.axes for line in ax.get_lines()
                   if (line.get_gid() or "").startswith("status-")]
    assert sorted(d.get_gid()[7:] for d in status_dots) == sorted(lay.status for lay in report.layers)
    _labelled(run_fig)
    assert report.scenario["name"] in run_fig.get_suptitle()
    note = _footnote(run_fig)
    assert "3 seeds" in note and "float64" in note and report.version in note


def test_zero_nan_inf_are_marked_at_the_edge_and_named(report):
    layers = list(report.layers)
    stats = dict(layers[0].stats)
    stats["gradient_ratio"] = replace(stats["gradient_ratio"], median=0.0)
    layers[0] = replace(layers[0], stats=stats)
    stats = dict(layers[1].stats)
    stats["gradient_ratio"] = Stat()                 # every seed non-finite: the report holds None
    layers[1] = replace(layers[1], stats=stats, grad_quantiles={**layers[1].grad_quantiles, "q01": 0.0})
    per_seed = dict(report.per_seed)
    per_seed["gradient_ratio3"] = np.array([np.inf, 0.5, 0.5])
    bad = replace(report, layers=tuple(layers), per_seed=per_seed)
    fig = plot.run_figure(bad)
    edges = _lines(fig, plot.EDGE_GID)
    xs = sorted(x for line in edges for x in line.get_xdata())
    assert {1, 2, 3} <= set(xs)
    ys = {y for line in edges for y in line.get_ydata()}
    assert ys <= {0.0, 1.0}  # axis fraction: the bottom or top edge, whatever the limits
    (median,) = _lines(fig, "median")
    assert math.isnan(median.get_ydata()[0]) and math.isnan(median.get_ydata()[1])  # gaps, not log(0)
    note = _footnote(fig)
    assert "gradient ratio median = 0 at layer 1" in note
    assert "gradient ratio median = NaN at layer 2" in note
    assert "seed 0 gradient ratio = inf at layer 3" in note
    assert "|∂L/∂W| q01 = 0 at layer 2" in note
    buf = io.BytesIO()
    fig.savefig(buf, format="png")  # drawing the log axes with those values does not fail
    assert buf.getvalue().startswith(MAGIC["png"])


def test_note_lines_group_spans():
    notes = [("median", "layer", "0", 3.0), ("median", "layer", "0", 4.0), ("median", "layer", "0", 5.0),
             ("median", "layer", "0", 9.0), ("q10", "layer", "NaN", 2.0)]
    assert plot.note_lines(notes) == ["median = 0 at layers 3–5, 9", "q10 = NaN at layer 2"]


def test_training_figure(trained):
    fig = plot.report_figure(trained)
    hist = trained.history
    steps = [h.step for h in hist]
    for i in range(len(hist[0].layers)):
        (line,) = _lines(fig, f"train-layer-{i + 1}")
        np.testing.assert_array_equal(line.get_xdata(), steps)
        np.testing.assert_allclose(line.get_ydata(), [h.layers[i].median("weight_grad_norm") for h in hist])
        assert _axis_of(fig, f"train-layer-{i + 1}").get_yscale() == "log"
    (loss,) = _lines(fig, "holdout_loss")
    np.testing.assert_allclose(loss.get_ydata(), [h.holdout_loss.median for h in hist])
    (acc,) = _lines(fig, "holdout_accuracy")
    np.testing.assert_allclose(acc.get_ydata(), [h.holdout_accuracy.median for h in hist])
    assert len({id(_axis_of(fig, g)) for g in ("train-layer-1", "holdout_loss", "holdout_accuracy")}) == 3
    _labelled(fig)


def test_compare_figure(comparison):
    fig = plot.compare_figure(comparison)
    ps = [row["p"] for row in comparison.curve]
    for lab in comparison.labels:
        (curve,) = _lines(fig, f"curve-{lab}")
        np.testing.assert_allclose(curve.get_xdata(), ps)
        np.testing.assert_allclose(curve.get_ydata(), [abs(row[lab]["grad_true_logit"]) for row in comparison.curve])
        (closed,) = _lines(fig, f"closed-{lab}")
        np.testing.assert_allclose(closed.get_ydata(), curve.get_ydata(), rtol=1e-9)
        assert _axis_of(fig, f"curve-{lab}").get_xscale() == "logit"
    for lab, r in zip(comparison.labels, comparison.reports, strict=True):
        (line,) = _lines(fig, f"variant-{lab}")
        np.testing.assert_allclose(line.get_ydata(), [lay.median("weight_grad_norm") for lay in r.layers])
    assert len({id(_axis_of(fig, f"variant-{lab}")) for lab in comparison.labels}) == 1  # one shared axis
    _labelled(fig)


def test_race_panel():
    cmp = compare(load_scenario(small(seeds=2)), ["mse", "ce"], train_steps=4)
    fig = plot.compare_figure(cmp)
    for lab in cmp.labels:
        (line,) = _lines(fig, f"race-loss-{lab}")
        np.testing.assert_allclose(line.get_ydata(), cmp.race["variants"][lab]["holdout_loss"])


def test_check_grid_and_pages(report, tmp_path):
    from gradscope.checks import check_report

    results = [check_report(report, "a.yaml", None), check_report(report, "b.yaml", {"verdict": ["vanishing"]})]
    fig = plot.check_grid_figure([report, report], results)
    assert len(_lines(fig, "median")) == 2
    titles = [ax.get_title() for ax in fig.axes if ax.axison]
    assert all(t.startswith(("PASS", "FAIL")) for t in titles)
    pages = plot.check_page_figures([report, report], results)
    assert len(pages) == 2
    plot.save_check([report], results[:1], tmp_path / "grid.png")  # png/svg: the grid, one file
    _magic(tmp_path / "grid.png", "png")


def _magic(path, ext):
    data = path.read_bytes()
    assert data.startswith(MAGIC[ext]) if ext != "svg" else MAGIC["svg"] in data[:2000]


def test_cli_plots_every_command(tmp_path):
    sc = tmp_path / "ok.yaml"
    sc.write_text("seeds: 2\nnetwork: {depth: 2, width: 8, activation: relu, init: he_normal}\n"
                  "data: {batch_size: 8}\n")
    r = runner.invoke(app, ["run", str(sc), "--plot", str(tmp_path / "run.svg"), "-q"])
    assert r.exit_code == 0, r.output
    _magic(tmp_path / "run.svg", "svg")
    r = runner.invoke(app, ["run", str(sc), "--train-steps", "4", "--plot", str(tmp_path / "train.pdf"), "-q"])
    assert r.exit_code == 0, r.output
    _magic(tmp_path / "train.pdf", "pdf")
    r = runner.invoke(app, ["compare", "mse", "ce", "--scenario", str(sc), "--set", "loss=cross_entropy",
                            "--plot", str(tmp_path / "cmp.png"), "-q"])
    assert r.exit_code == 0, r.output
    _magic(tmp_path / "cmp.png", "png")
    r = runner.invoke(app, ["check", str(sc), str(sc), "--plot", str(tmp_path / "check.pdf")])
    assert r.exit_code == 0, r.output
    _magic(tmp_path / "check.pdf", "pdf")
    assert (tmp_path / "check.pdf").read_bytes().count(b"/Type /Page\n") + \
        (tmp_path / "check.pdf").read_bytes().count(b"/Type /Page ") >= 2


def test_cli_plot_bad_extension_is_refused_before_running(tmp_path):
    r = runner.invoke(app, ["run", "--plot", str(tmp_path / "x.jpg")])
    assert r.exit_code == 2
    assert "png, .svg or .pdf" in r.output or ".png, .svg or .pdf" in r.stderr


def test_cli_plot_without_matplotlib_exits_2_with_the_install_line(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    r = runner.invoke(app, ["run", "--seeds", "2", "--plot", str(tmp_path / "x.png")])
    assert r.exit_code == 2
    assert "pip install 'gradscope[plot]'" in r.stderr
    assert "Traceback" not in r.output
    assert not (tmp_path / "x.png").exists()


def test_figures_use_the_agg_canvas(run_fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    assert isinstance(run_fig.canvas, FigureCanvasAgg)


def test_title_of_an_explicit_layers_network_names_its_activations():
    """network.layers has no network.activation in the normalized scenario: the title said 'layers' there."""
    raw = {"seeds": 2, "network": {"input_dim": 4, "output_dim": 3, "activation": "tanh", "layers": [
        {"dense": 6}, {"norm": "layernorm"}, {"dense": {"width": 5, "activation": "relu"}}]}, "data": {"batch_size": 8}}
    title = plot._title(api.run(load_scenario(raw)))
    assert ", relu/tanh, xavier_uniform," in title and "layers, layers" not in title
