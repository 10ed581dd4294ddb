"""textdraw draws what rich draws, byte for byte: the reports of several bundled scenarios at many widths, with
and without colour; its wrapping, its cell widths and the console it sets up are rich's."""

from __future__ import annotations

import io
import random

import pytest
from rich.cells import cell_len
from rich.console import Console
from rich.text import Text as RichText

from gradscope import api, render, textdraw
from gradscope.compare import compare
from gradscope.scenario import load_scenario
from gradscope.textdraw import Table, Text

WIDTHS = (20, 60, 79, 80, 119, 120, 250)
SCENARIOS = [None, "relu-he", "prenorm-residual", "dropout-critical", "batchnorm-explosion", "exploding",
             "scalar-chain"]


def _rich(renderable, width: int, *, color: str | None, no_color: bool = False) -> str:
    console = Console(file=io.StringIO(), width=width, force_terminal=color is not None, color_system=color,
                      no_color=no_color, highlight=False, soft_wrap=False)
    console.print(renderable)
    return console.file.getvalue()


def _same(renderable, width: int, modes=((None, False), ("standard", False), ("256", True))) -> bool:
    """draw() against rich in these colour modes; True when draw() drew it (False: it leaves it to rich)."""
    drew = False
    for color, no_color in modes:
        text = textdraw.draw(renderable, width, color=color is not None, no_color=no_color)
        if text is not None:
            assert text == _rich(renderable, width, color=color, no_color=no_color), (width, color, no_color)
            drew = True
    return drew


@pytest.fixture(scope="module")
def reports():
    out = {}
    for name in SCENARIOS:
        sc = load_scenario(None if name is None else render_path(name), seeds=2)
        out[name] = api.run(sc)
    out["jacobian"] = api.run(load_scenario(render_path("relu-he"), seeds=2), jacobian=True)
    return out


def render_path(name: str):
    from gradscope.scenario import bundled_path

    return bundled_path(f"{name}.yaml")


def test_run_reports_are_drawn_as_rich_draws_them(reports):
    drawn = 0
    for report in reports.values():
        for width in (45, 80, 120):
            drawn += _same(render.run_renderable(report, width=width), width, ((None, False), ("standard", False)))
        drawn += _same(render.run_renderable(report, quiet=True, width=70), 70)
    # the default scenario's report is drawn here, not by rich, wherever its table fits
    assert all(_same(render.run_renderable(reports[None], width=w), w) for w in WIDTHS if w >= 79)
    assert drawn > len(reports) * 2


def test_other_renderables_are_drawn_as_rich_draws_them_or_left_to_rich(reports):
    cmp = compare(load_scenario(None, seeds=2), ["mse", "cross_entropy"])
    for width in (60, 120):
        for renderable in (render.compare_renderable(cmp, width=width), render.check_summary([]),
                           render.residual_table(reports["prenorm-residual"]), render.strip_table(reports[None]),
                           render.findings_text(reports["exploding"], width)):
            _same(renderable, width)


def _table(*, cells, **options) -> Table:
    t = Table(**options)
    t.add_column("name", no_wrap=True)
    t.add_column("value", justify="right", style="dim")
    t.add_column("", justify="left")
    for row in cells:
        t.add_row(*row)
    return t


@pytest.mark.parametrize("options", [dict(box=None), dict(box=None, pad_edge=False),
                                     dict(box=None, collapse_padding=True),
                                     dict(box=None, pad_edge=False, collapse_padding=True, header_style="bold red",
                                          caption="a caption that is long enough to wrap on a narrow table " * 2,
                                          caption_justify="left"),
                                     dict(box=None, caption="short", caption_justify="left", caption_style="")])
def test_tables_are_drawn_as_rich_draws_them(options):
    rows = [["a", "1", Text("bar ", style="cyan")], ["bb  ", Text("  22", style="bold"), ""],
            ["", "333", Text("x", style="italic blue", spans=[(0, 1, "bold")])], ["word word", "4", "  "]]
    for width in (5, 12, 18, 30, 80):
        _same(_table(cells=rows, **options), width)
    assert _same(_table(cells=rows, **options), 80)


def test_what_it_does_not_lay_out_is_left_to_rich():
    assert textdraw.draw(Table(title="t", box=None), 80) is None  # a title
    assert textdraw.draw(Table(), 80) is None  # a box
    assert textdraw.draw(Text("wide 漢字"), 80) is None
    assert textdraw.draw(Text("x", style="black on red"), 80, color=True) is None
    t = Table(box=None)
    t.add_column("a")
    t.add_row("[bold]markup[/bold]")
    assert textdraw.draw(t, 80) is None
    assert textdraw.draw(Text("x"), 80) == "x\n" and textdraw.draw(Text("x", end=""), 80) == "x"


def _random_text(rng: random.Random) -> Text:
    words = ["a", "bb", "ccc", "‖∂L/∂W‖", "δ", "→", "x" * 30, "", "  ", "\n", "end.", "σ_w²", "χ₁", "·─┃"]
    t = Text(style=rng.choice(["", "dim", "bold"]))
    for _ in range(rng.randrange(1, 30)):
        t.append(rng.choice(words) + rng.choice([" ", "", "  ", "\n"]), style=rng.choice([None, "cyan", "bold"]))
    return t


def test_wrap_and_hanging_are_richs():
    rng = random.Random(0)
    console = Console(width=80, no_color=True, highlight=False)
    for _ in range(150):
        t = _random_text(rng)
        width = rng.randrange(1, 50)
        mine = t.wrap(None, width)
        theirs = t.__rich__().wrap(console, width)
        assert [(m.plain, m.spans, m.style) for m in mine] == [(r.plain, [tuple(s) for s in r.spans], r.style)
                                                               for r in theirs]
        assert _same(t, max(width, 1))
    for text in ("tab\tstop " * 5, "漢字 " * 30, "plain words " * 20):  # wrapped by rich where not narrow
        out = render.hanging(RichText(text), 30, 4)
        assert out.plain.splitlines()[1].startswith("    ")


def test_narrow_characters_are_one_cell_for_rich():
    assert all(cell_len(ch) == 1 for ch in textdraw._NARROW)
    assert textdraw.narrow("‖∂L/∂W‖ χ₁ σ_w² → ≤ √ ─ ┃ █ · ✗ ◀ …") and not textdraw.narrow("漢") and not \
        textdraw.narrow("\t")


class _Stream(io.StringIO):
    def __init__(self, tty: bool, encoding: str = "utf-8") -> None:
        super().__init__()
        self._tty, self._encoding = tty, encoding

    def isatty(self) -> bool:
        return self._tty

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._encoding


@pytest.mark.parametrize("env", [{}, {"COLUMNS": "97"}, {"COLUMNS": "97", "LINES": "20"}, {"FORCE_COLOR": "1"},
                                 {"FORCE_COLOR": ""}, {"TTY_COMPATIBLE": "0"}, {"TTY_COMPATIBLE": "1"},
                                 {"NO_COLOR": "1"}, {"TERM": "dumb"}, {"TERM": "dumb", "COLUMNS": "50"},
                                 {"COLORTERM": "truecolor"}, {"COLUMNS": "x1"}])
@pytest.mark.parametrize("tty", [False, True])
def test_the_console_is_set_up_as_rich_sets_it_up(monkeypatch, env, tty):
    for key in ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR", "TERM", "COLORTERM"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for width, no_color, force in ((None, None, None), (160, True, False), (None, True, None)):
        stream = _Stream(tty)
        console = Console(file=stream, width=width, no_color=no_color, force_terminal=force, highlight=False)
        setup = textdraw.console_setup(stream, no_color=no_color, width=width, force_terminal=force)
        assert setup == (console.width, console.color_system is not None, console.no_color)
    assert textdraw.console_setup(_Stream(tty, "ascii")) is None  # rich's UnicodeEncodeError is rich's to raise


def test_emit_writes_what_rich_prints(reports, capsys):
    renderable = render.run_renderable(reports[None], width=100)
    out = io.StringIO()
    render.make_console(file=out, no_color=True, width=100).print(renderable)
    render.emit(renderable, width=100)
    assert capsys.readouterr().out == out.getvalue()
