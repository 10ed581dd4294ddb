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
        assert cb is not None
        api.run(load_scenario(sc), progress=lambda d, n: (calls.append((d, n)), cb(d, n)))
    assert calls == [(i, 6) for i in range(1, 7)]
    assert "6/6" in "".join(tty.text)
