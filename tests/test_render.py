"""Terminal output at 80–160 columns: nothing cut, paragraphs wrapped with a hanging indent, one exponent style."""

from __future__ import annotations

import re

import pytest
from rich.text import Text

from gradscope import api, render
from gradscope.compare import compare
from gradscope.report import RunReport
from gradscope.scenario import load_scenario

from .conftest import small

WIDTHS = (80, 160)
NUMBER = re.compile(r"\d…|…\d|[.e]…")


def _text(renderable, width: int) -> str:
    console = render.make_console(width=width, no_color=True)
    with console.capture() as cap:
        console.print(renderable)
    return cap.get()


@pytest.fixture(scope="module")
def default_report() -> RunReport:
    return api.run(load_scenario(None, seeds=4))


@pytest.fixture(scope="module")
def trained() -> RunReport:
    sc = small(widths=[8, 8, 8], activation="sigmoid", train={"steps": 20, "record_every": 2, "lr": 0.5})
    return api.run(load_scenario(sc))


@pytest.mark.parametrize("width", WIDTHS)
def test_run_table_fits_without_cutting(default_report, width):
    out = _text(render.run_renderable(default_report, width=width), width)
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= width
    for lay in default_report.layers:  # every median gradient norm is printed in full
        assert render.fmt(lay.median("weight_grad_norm")) in out
    assert not re.search(r"e[+-]0\d", out), "one exponent style: 1.2e-5, never 1.2e-05"


@pytest.mark.parametrize("width", WIDTHS)
def test_findings_and_verdict_hang(default_report, width):
    out = _text(render.run_renderable(default_report, width=width), width).splitlines()
    start = next(i for i, line in enumerate(out) if line.startswith("verdict:"))
    assert out[start + 1].startswith("  ") or out[start + 1].startswith("mean-field")
    code = next(i for i, line in enumerate(out) if line.startswith("✗ vanishing-gradient"))
    assert out[code + 1].startswith("    "), "continuation lines of a finding are indented"
    hint = next(i for i, line in enumerate(out) if line.startswith("  → "))
    if width == 80:
        assert out[hint + 1].startswith("    ")


def test_hanging_indent_unit():
    t = render.hanging(Text("word " * 40), 40, 4)
    lines = t.plain.splitlines()
    assert len(lines) > 3 and all(line.startswith("    ") for line in lines[1:])
    assert all(len(line) <= 40 for line in lines)


def test_one_exponent_style():
    assert render.one_exponent_style("product 8.7e-06, spread 1.40e+05×, name e-05x") == \
        "product 8.7e-6, spread 1.40e+5×, name e-05x"


def test_flow_bar_healthy_spread_is_nearly_equal():
    lo, hi = 0.28, 0.36
    short, full = len(render.log_bar(lo, lo, hi)), len(render.log_bar(hi, lo, hi))
    assert full == render.BAR_WIDTH and short >= 0.9 * full
    # a five-decade spread: the smallest layer is near empty, bars differ by ~1/5 of the width per decade
    assert render.bar_decades(7.5e-6, 0.74) == 5
    assert len(render.log_bar(7.5e-5, 7.5e-6, 0.74)) == round(render.BAR_WIDTH * (1 + (-4) / 5))
    assert render.log_bar(0.0, lo, hi) == "" and render.log_bar(float("nan"), lo, hi) == ""


def test_strip_table_has_caption(default_report):
    out = _text(render.strip_table(default_report), 160)
    assert "· q01–q99  ─ q10–q90  ┃ median" in out


@pytest.mark.parametrize("width", WIDTHS)
def test_training_table_fits(trained, width):
    out = _text(render.run_renderable(trained, width=width), width)
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= width


@pytest.mark.parametrize("width", WIDTHS)
def test_compare_three_variants_fits(width):
    cmp = compare(load_scenario(small(seeds=2)), ["sigmoid", "tanh", "relu"])
    out = _text(render.compare_renderable(cmp, width=width), width)
    assert not NUMBER.search(out) and "…" not in out
    assert max(len(line) for line in out.splitlines()) <= width
    for r in cmp.reports:
        for lay in r.layers:
            assert render.fmt(lay.median("weight_grad_norm")) in out


def test_progress_bar_only_on_a_terminal(tmp_path):
    class Stream:
        def __init__(self, tty: bool) -> None:
            self.tty, self.text = tty, []

        def isatty(self) -> bool:
            return self.tty

        def write(self, s: str) -> int:
            self.text.append(s)
            return len(s)

        def flush(self) -> None:
            pass

    quiet = Stream(False)
    with render.progress_bar("training", file=quiet) as cb:
        assert cb is None
    assert quiet.text == []
    tty = Stream(True)
    calls = []
    sc = small(train={"steps": 6, "record_every": 3})
    with render.progress_bar("training", file=tty) as cb:
        assert callable(cb)
        api.run(load_scenario(sc), progress=lambda d, n: (calls.append((d, n)), cb(d, n)))
    assert calls == [(i, 6) for i in range(1, 7)]
    assert "6/6" in "".join(tty.text)
    tty = Stream(True)  # a scenario's name is text, not rich markup ("[/]" alone raised MarkupError)
    with render.progress_bar("training n[/]a[bold]", file=tty) as cb:
        cb(1, 2)
    assert "training n[/]a[bold]" in "".join(tty.text)


@pytest.mark.parametrize("path", ["scenarios/classify-blobs.yaml", None])
def test_extrapolation_cites_the_factor_it_uses(path):
    import math
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    sc = load_scenario(str(root / path) if path else None, seeds=4)
    r = api.run(sc)
    out = " ".join(_text(render.verdict_text(r), 200).split())
    m = re.search(r"‖δ_l‖/‖δ_l\+1‖ = (\S+) per layer; at this rate layer 1 of a 50-layer net gets "
                  r"(\S+)\^49 = (\S+) of", out)
    assert m, out
    factor, again, ratio = m.groups()
    assert factor == again
    ex = r.summary.extrapolation
    # the cited factor, raised to the 49th power in log space, is the printed ratio and the fit's ratio
    ln = 49 * math.log(float(factor))
    assert render.fmt(math.exp(ln), 2) == ratio == render.fmt(ex["layer1_ratio_at_depth_50"], 2)
    assert abs(ln - ex["layer1_log10_ratio_at_depth_50"] * math.log(10)) <= 0.01
    assert abs(math.log(float(factor)) - ex["log10_per_layer_factor"] * math.log(10)) <= 0.01 / 49


@pytest.mark.parametrize("values", [[0.9, 0.95, 0.987], [0.5, 0.99, 1.0, 1.3], [1.5, 2.0, 3.0]])
def test_jacobian_histogram_marks_the_bin_holding_one_and_only_then_says_so(values):
    out = _text(render.jacobian_histogram(values), 120)
    title, *rows = out.splitlines()
    marked = [r for r in rows if "◀" in r]
    bins = [tuple(float(x) for x in re.findall(r"\[([^,]+), ([^)]+)\)", r)[0]) for r in rows if "[" in r]
    holding = [b for b in bins if b[0] <= 1.0 < b[1]]
    assert len(marked) == len(holding) <= 1
    if holding:
        assert "◀ marks the bin holding 1" in title and f"[{render.fmt(holding[0][0], 2)}," in marked[0]
    else:
        assert "◀" not in title
        assert ("1 is above every bin" if max(values) < 1 else "1 is below every bin") in title


@pytest.fixture(scope="module")
def init_race():
    # the new-user repro's three init names (long labels) on a small deep ReLU net, trained a few steps
    sc = load_scenario(small(widths=[16] * 6, activation="relu", seeds=2, input_dim=8, output_dim=4))
    return compare(sc, ["standard", "xavier_uniform", "he_normal"], train_steps=4)


@pytest.mark.parametrize("width", WIDTHS)
def test_compare_long_labels_stack_instead_of_cutting(init_race, width):
    out = _text(render.compare_renderable(init_race, width=width), width)
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= width
    for lab, r in zip(init_race.labels, init_race.reports, strict=True):
        assert f"{lab} ‖∂L/∂W‖" in out
        for lay in r.layers:
            assert re.search(rf"{re.escape(render.fmt(lay.median('weight_grad_norm')))}( +\S+)? +{lay.status}\b", out)
    if width == 160:
        assert "side by side" in out  # wide enough for all three in one table


@pytest.mark.parametrize("width", WIDTHS)
def test_race_table_fits_without_cutting(init_race, width):
    out = _text(render.race_renderable(init_race.race, width), width)
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= width
    for lab in init_race.labels:
        assert re.search(rf"^{lab} ", out, re.M)


@pytest.mark.parametrize("width", WIDTHS)
def test_check_output_is_not_cut(tmp_path, width):
    from typer.testing import CliRunner

    from gradscope.cli import app

    p = tmp_path / "a-rather-long-scenario-file-name-for-a-deep-sigmoid-net.yaml"
    p.write_text("seeds: 2\nnetwork: {depth: 8, width: 16, activation: sigmoid}\ndata: {batch_size: 16}\n"
                 "expect: {verdict: healthy, max_gradient_spread: 100}\n")
    r = CliRunner().invoke(app, ["check", str(p), "--jobs", "1", "--no-color"], env={"COLUMNS": str(width)})
    assert r.exit_code == 1, r.output
    assert "…" not in r.stdout and str(p) in r.stdout and "expected maximum 100" in r.stdout


LAYERED = {"seeds": 2, "network": {"input_dim": 6, "output_dim": 3, "layers": [
    {"dense": 8}, {"residual": {"projection": True, "layers": [{"norm": "layernorm"}, {"dense": 5},
                                                               {"dense": {"width": 4, "activation": "identity"}}]}},
    {"norm": "rmsnorm"}]}, "data": {"batch_size": 8}}


def test_csv_and_markdown_name_each_rows_kind_and_block():
    """CSV and markdown called a layernorm/rmsnorm/projection row just 'identity' (its activation column), with no
    kind or block, and markdown had no residual stream table: now CSV has the JSON's kind and block columns (a
    plain MLP's CSV keeps its columns) and markdown's act column and stream table are the terminal's."""
    import csv
    import io
    r = api.run(load_scenario(LAYERED))
    rows = list(csv.DictReader(io.StringIO(render.run_csv(r))))
    want = [(lay["layer"], lay["kind"], lay["block"]) for lay in r.to_dict()["layers"]]
    assert [(int(x["layer"]), x["kind"], int(x["block"]) if x["block"] else None) for x in rows] == want
    assert {k for _, k, _ in want} == {"dense", "layernorm", "projection", "rmsnorm"}
    md = render.run_markdown(r)
    assert "| 2 | 8→8 | layernorm γ |" in md and "| 5 | 8→4 | projection |" in md and "rmsnorm γ" in md
    # and the residual stream table the terminal shows (markdown had none)
    block = r.to_dict()["residual_stream"][0]
    assert f"| 1 | 2–5 | 1 | {render.fmt(block['delta_norm']['median'])} |" in md
    plain = render.run_csv(api.run(load_scenario(small())))
    assert plain.splitlines()[0].startswith("label,layer,fan_in,fan_out,activation,status,")


def _styled(renderable, width: int) -> list[tuple[str, str]]:
    """Every character a console (colour on) prints for the renderable, with its style."""
    import io

    console = render.make_console(file=io.StringIO(), width=width)
    console.force_terminal = True
    return [(ch, str(seg.style) if seg.style else "none") for seg in console.render(renderable, console.options)
            if not seg.control for ch in seg.text]


def _both(build, width: int, monkeypatch) -> tuple[list, list]:
    """(rich's Table's characters and styles, FastTable's) for a renderable built twice."""
    from rich.table import Table

    fast = _styled(build(), width)
    with monkeypatch.context() as m:
        m.setattr(render, "FastTable", Table)
        ref = _styled(build(), width)
    return ref, fast


@pytest.mark.parametrize("width", (40, 80, 120, 160, 240))
def test_fast_tables_print_what_rich_tables_print(width, default_report, trained, init_race, monkeypatch):
    """FastTable (gradscope/fasttable.py) lays out the simple tables itself: every report view prints the same
    characters in the same styles as with rich's Table, wide and narrow (where a table does not fit, rich's own
    layout is used), right-justified Texts with spaces at either end (training's heat cells) and dim columns."""
    from gradscope.catalog import catalog
    from gradscope.jacobian import enable

    jac = api.run(enable(load_scenario(small(widths=[8, 8], seeds=2)), samples=4))
    long = api.run(load_scenario(small(widths=[12] * 20, seeds=2, activation="tanh")))
    views = [lambda: render.run_renderable(default_report, width=width),
             lambda: render.run_renderable(trained, width=width),
             lambda: render.run_renderable(jac, width=width),
             lambda: render.run_renderable(long, width=width),
             lambda: render.run_renderable(api.run(load_scenario(LAYERED)), width=width),
             lambda: render.compare_renderable(init_race, width=width),
             lambda: render.race_renderable(init_race.race, width),
             lambda: render.catalog_renderable(catalog())]
    for i, build in enumerate(views):
        ref, fast = _both(build, width, monkeypatch)
        assert fast == ref, (i, next(k for k, (a, b) in enumerate(zip(ref, fast, strict=False)) if a != b)
                             if len(ref) == len(fast) else (len(ref), len(fast)))


def test_fast_table_lays_out_a_fitting_grid_itself_and_hands_the_rest_to_rich():
    """The fast path is taken for a borderless one-line grid that fits (no Padding/wrap per cell), and not for
    one that needs shrinking or has a border: there rich's Table methods run."""
    import io

    from rich import box

    from gradscope.fasttable import FastTable

    def table(**kw):  # type: ignore[no-untyped-def]
        t = FastTable(**{"box": None, "pad_edge": False, **kw})
        t.add_column("a", justify="right")
        t.add_column("b")
        t.add_row("1", Text("xyz", style="red"))
        t.add_row("22", "w")
        return t

    console = render.make_console(file=io.StringIO(), width=40)
    assert table()._simple() and not table(box=box.SIMPLE)._simple() and not table(show_header=False)._simple()
    widths = table()._calculate_column_widths(console, console.options)
    assert widths == [3, 4]  # "22" and a space; " xyz" (padding (0, 1) each side but at the edges)
    with console.capture() as cap:
        console.print(table())
    assert cap.get() == " a  b  \n 1  xyz\n22  w  \n"  # what rich's Table prints
    collapsed = table(collapse_padding=True)
    assert collapsed._calculate_column_widths(console, console.options) == [3, 3]
    narrow = render.make_console(file=io.StringIO(), width=4)
    assert sum(table()._calculate_column_widths(narrow, narrow.options)) <= 4  # rich's shrinking


def test_a_long_layer_chain_shortens_runs_and_never_wraps_inside_a_number():
    """The header's size chain: as given when short; a 50-layer net's runs of equal widths as count×width, so
    that an 80-column header wraps between sizes (it had split '128' over two lines)."""
    assert render.layer_chain(32, [64] * 8, 10) == "32→64→64→64→64→64→64→64→64→10"
    assert render.layer_chain(128, [128] * 50, 10) == "128→50×128→10"
    assert render.layer_chain(8, [300] * 3 + [20] * 12 + [7] * 5, 2) == "8→300→300→300→12×20→5×7→2"
    rep = api.run(load_scenario(small(widths=[128] * 50, seeds=2, input_dim=128)))
    lines = _text(render.header(rep), 80).splitlines()
    assert "128→50×128→3," in lines[1]
    assert not any(re.search(r"\d$", a) and re.match(r"\s*\d", b) for a, b in zip(lines, lines[1:], strict=False))


@pytest.mark.parametrize("width", WIDTHS)
def test_list_cuts_nothing(width):
    """`gradscope list` at 80 columns had cut four init formulas with '…': long formulas fold instead."""
    from gradscope.catalog import catalog

    out = _text(render.catalog_renderable(catalog()), width)
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= width
    assert "√(6/(fan_in+fan_o" in out.replace("\n", "")


def test_a_zero_quantile_is_drawn_at_the_left_edge():
    """Dead ReLU units give |∂L/∂W| quantiles of exactly 0, below every positive value of the log axis: the
    strip starts at the axis's left edge (rows of such layers had been blank) and the caption says so."""
    q = {"q01": 0.0, "q10": 0.0, "q50": 0.0, "q90": 1e-3, "q99": 1e-2}
    strip = render.log_strip(q, 1e-6, 1e-2, 20)
    assert strip[0] == "┃" and strip[1:13] == "─" * 12 and strip[-1] == "·", strip
    assert render.log_strip({**q, "q01": 1e-6, "q10": 1e-5, "q50": 1e-4}, 1e-6, 1e-2, 20)[0] == "·"
    rep = api.run(load_scenario(small(widths=[16] * 6, activation="relu", seeds=2, input_dim=8)))
    assert any(v == 0 for lay in rep.layers for v in lay.grad_quantiles.values())  # dead units here
    assert "exactly 0 at the left edge" in _text(render.strip_table(rep), 160).replace("\n", " ")
    tanh = api.run(load_scenario(small(seeds=2)))
    assert "left edge" not in _text(render.strip_table(tanh), 160).replace("\n", " ")
