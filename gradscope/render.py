"""Turn reports into rich tables, Markdown, CSV and JSON text. Draws; never computes a statistic."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from .fasttable import FastTable
from .report import LayerReport, RunReport

# The CSV and JSON formats, beside the others as render.run_csv, render.to_json, ...: imported when first read
# (PEP 562), so that a table or markdown run does not import the csv and json modules.
_TEXT_FORMATS = {"CSV_STATS": "csvtext", "_csv": "csvtext", "_structured_rows": "csvtext", "csv_text": "csvtext",
                 "run_csv": "csvtext", "run_csv_rows": "csvtext", "json_safe": "jsontext", "to_json": "jsontext"}


def __getattr__(name: str) -> Any:
    if name not in _TEXT_FORMATS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{_TEXT_FORMATS[name]}", __package__), name)
    globals()[name] = value
    return value

STATUS_STYLE = {"healthy": "green", "vanishing": "blue", "exploding": "red", "saturated": "yellow",
                "dead": "magenta", "overflow": "bold red"}
SEVERITY_MARK = {"error": ("✗", "red"), "warning": ("!", "yellow"), "info": ("i", "cyan")}
BAR_WIDTH = 24
STRIP_WIDTH = 28


def fmt(x: float | None, digits: int = 3) -> str:
    """Compact number: 0.0123, 4.56, 1.2e-05; '—' for missing."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    if x == 0:
        return "0"
    a = abs(x)
    if 1e-3 <= a < 1e4:
        return f"{x:.{digits}g}"
    return f"{x:.{max(digits - 1, 1)}e}".replace("e-0", "e-").replace("e+0", "e+")


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f}%"


_EXPONENT = re.compile(r"(?<=\d)e([+-])0*(\d)")


def one_exponent_style(text: str) -> str:
    """Numbers written elsewhere with Python's 'e-06' in the style of fmt(): '8.7e-06' -> '8.7e-6'."""
    return _EXPONENT.sub(r"e\1\2", text)


def hanging(t: Text, width: int, indent: int = 4) -> Text:
    """Wrap each line of t to `width` columns, continuation lines indented by `indent` spaces."""
    console = Console(width=max(20, width), no_color=True, highlight=False, markup=False, emoji=False)
    out = Text()
    for n, line in enumerate(t.split("\n")):
        if n:
            out.append("\n")
        lead = len(line.plain) - len(line.plain.lstrip(" "))
        for i, part in enumerate(line.wrap(console, max(20, width - indent - lead))):
            if i:
                out.append("\n" + " " * (indent + lead))
            part.rstrip()
            out.append_text(part)
    return out


# ---------------------------------------------------------------- bars and strips


MIN_BAR_DECADES = 3


def bar_decades(lo: float, hi: float) -> int:
    """Decades the flow bar spans: the layers' spread rounded up, at least MIN_BAR_DECADES."""
    if not (0 < lo < hi < math.inf):
        return MIN_BAR_DECADES
    # log10(hi) - log10(lo), not log10(hi / lo): the ratio overflows for subnormal lo (a 1e-313 weight init)
    return max(MIN_BAR_DECADES, math.ceil(math.log10(hi) - math.log10(lo) - 1e-9))


def _decades_below(hi: float, decades: int) -> str:
    """hi·10^-decades as text, also where it is below the float range (a spread of 330 decades)."""
    if not 0 < hi < math.inf:
        return fmt(hi, 2)
    exponent = math.log10(hi) - decades
    return fmt(10.0**exponent, 2) if exponent > -300 else f"1e{math.floor(exponent)}"


def log_bar(value: float | None, lo: float, hi: float, width: int = BAR_WIDTH) -> str:
    """A bar of log10(value / (hi·10^-D)) cells, D = bar_decades(lo, hi): zero at D decades below the
    largest value, full at the largest; a healthy 0.28–0.36 spread gives nearly equal bars."""
    if value is None or value <= 0 or not math.isfinite(value) or hi <= 0:
        return ""
    decades = bar_decades(lo, hi)
    frac = 1.0 + (math.log10(value) - math.log10(hi)) / decades  # value / hi may underflow to 0
    cells = max(1, round(min(1.0, frac) * width))
    return "█" * cells


def log_strip(q: dict[str, float | None], lo: float, hi: float, width: int = STRIP_WIDTH) -> str:
    """q01·q10═median═q90·q99 of |g| on a shared log axis: '·' tails, '─' body, '┃' median. A quantile of
    exactly 0 (dead units' entries: below every positive value) is drawn at the axis's left edge."""
    cells = [" "] * width

    def pos(v: float | None) -> int | None:
        if v is None or not 0 <= v < math.inf or not 0 < lo < hi < math.inf:
            return None
        if v == 0:
            return 0
        f = (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        return min(width - 1, max(0, round(f * (width - 1))))

    p01, p10, p50, p90, p99 = (pos(q.get(k)) for k in ("q01", "q10", "q50", "q90", "q99"))
    if p01 is not None and p99 is not None:
        for i in range(p01, p99 + 1):
            cells[i] = "·"
    if p10 is not None and p90 is not None:
        for i in range(p10, p90 + 1):
            cells[i] = "─"
    if p50 is not None:
        cells[p50] = "┃"
    return "".join(cells)


def _positive(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None and v > 0 and math.isfinite(v)]


# ---------------------------------------------------------------- run report


def header(report: RunReport) -> Text:
    sc = report.scenario
    net = sc["network"]
    if "layers" in net:  # residual / norm / dropout networks: the explicit form
        return _layers_header(report)
    acts = net["activation"]
    act = acts if isinstance(acts, str) else (acts.get("name") if isinstance(acts, dict) else "per-layer")
    init, loss = _init_loss(sc)
    t = _title_line(report)
    t.append(f"\n{len(report.layers)} layers {layer_chain(net['input_dim'], net['widths'], net['output_dim'])}, "
             f"{act} / {net['output_activation']} output, "
             f"init {init}, loss {loss}, data {sc['data']['kind']} (batch {sc['data']['batch_size']}"
             f"{'' if sc['data']['center'] else ', not centered'}), {sc['seeds']} seeds, {sc['dtype']}",
             style="dim")
    return t


CHAIN_MAX = 60  # a layer-size chain longer than this writes each run of 4+ equal widths as count×width


def layer_chain(n_in: int, widths: Sequence[int], n_out: int) -> str:
    """'32→64→64→10'; in a long chain each run of 4+ equal hidden widths is written count×width,
    '128→50×128→10' (50 hidden layers of 128), so that it wraps between sizes, never inside a number."""
    full = "→".join(map(str, [n_in, *widths, n_out]))
    if len(full) <= CHAIN_MAX:
        return full
    parts: list[str] = [str(n_in)]
    i = 0
    while i < len(widths):
        j = i
        while j < len(widths) and widths[j] == widths[i]:
            j += 1
        parts += [f"{j - i}×{widths[i]}"] if j - i >= 4 else [str(widths[i])] * (j - i)
        i = j
    return "→".join([*parts, str(n_out)])


def _title_line(report: RunReport) -> Text:
    """The scenario's name (bold), its label and its description."""
    sc = report.scenario
    t = Text()
    t.append(f"{sc['name']}", style="bold")
    if report.label:
        t.append(f" [{report.label}]", style="bold cyan")
    if sc.get("description"):
        t.append(f" — {sc['description']}")
    return t


def _init_loss(sc: dict[str, Any]) -> tuple[str, str]:
    """The init scheme's and the loss's names from a normalized scenario."""
    net = sc["network"]
    init = net["init"] if isinstance(net["init"], str) else net["init"]["scheme"]
    return init, sc["loss"] if isinstance(sc["loss"], str) else sc["loss"]["name"]


def _layers_header(report: RunReport) -> Text:
    """The header of a network given as layer items: its rows by kind, blocks, dropout, init, loss, data."""
    sc = report.scenario
    net = sc["network"]
    init, loss = _init_loss(sc)
    kinds: dict[str, int] = {}
    for lay in report.layers:
        kinds[lay.kind] = kinds.get(lay.kind, 0) + 1
    dense = [lay for lay in report.layers if lay.kind == "dense"]
    acts = sorted({lay.activation for lay in dense[:-1]})
    blocks = [b for b in (report.residual_stream or ()) if b.get("block") is not None]
    alphas = sorted({b["alpha"] for b in blocks})
    drops = _dropouts(net["layers"])
    t = _title_line(report)
    parts = [", ".join(f"{n} {k}" for k, n in kinds.items()) + f" rows, {net['input_dim']}→…→{net['output_dim']}"]
    if blocks:
        parts.append(f"{len(blocks)} residual blocks (α {', '.join(fmt(a) for a in alphas)})")
    if drops:
        parts.append(f"dropout {', '.join(fmt(p) for p in sorted(set(drops)))}")
    parts.append(f"{'/'.join(acts) or 'no hidden'} / {net['output_activation']} output, init {init}, loss {loss}, "
                 f"data {sc['data']['kind']} (batch {sc['data']['batch_size']}"
                 f"{'' if sc['data']['center'] else ', not centered'}), {sc['seeds']} seeds, {sc['dtype']}")
    t.append("\n" + "; ".join(parts), style="dim")
    return t


def _dropouts(items: list[dict[str, Any]]) -> list[float]:
    out: list[float] = []
    for it in items:
        if "dropout" in it:
            out.append(float(it["dropout"]))
        elif "residual" in it:
            out += _dropouts(it["residual"]["layers"])
    return out


def _act(lay: LayerReport) -> str:
    """The act column: the activation of a dense layer, the kind of any other row (layernorm γ/β, projection)."""
    if lay.kind == "dense":
        return lay.activation
    return lay.kind if lay.kind == "projection" else f"{lay.kind} γ"


RESIDUAL_HEADS = ("block", "layers", "α", "‖∂L/∂x‖", "skip", "branch", "skip share", "E‖x‖²/E‖x₀‖²", "predicted")
RESIDUAL_CAPTION = ("residual stream at each block input (medians over seeds): ‖∂L/∂x‖, the part through the skip path "
                    "and through the branch, skip share = ‖skip‖/(‖skip‖ + ‖branch‖), E‖x‖² over the input's and its "
                    "mean-field prediction")


def residual_rows(report: RunReport) -> list[list[str]]:
    """The residual stream table's cells (RESIDUAL_HEADS), one row per block and the stream after the last."""
    blocks = [b for b in (report.residual_stream or ()) if b.get("block") is not None]
    if not blocks:
        return []
    pred = report.summary.theory.get("residual_input_second_moment") or []
    rows = []
    for b in blocks:
        m2 = b.get("input_second_moment") or {}
        p = pred[b["block"] - 1] if b["block"] <= len(pred) else None
        ls = b["layers"]
        rows.append([str(b["block"]), f"{ls[0]}–{ls[-1]}" if len(ls) > 1 else (str(ls[0]) if ls else ""),
                     fmt(b["alpha"]), fmt(b["delta_norm"]["median"]), fmt(b["skip_grad_norm"]["median"]),
                     fmt(b["branch_grad_norm"]["median"]), pct(b["skip_share"]["median"]), fmt(m2.get("median")),
                     fmt(p)])
    end = report.residual_stream[-1].get("output_second_moment") if report.residual_stream else None
    if end:
        rows.append(["out", "", "", "", "", "", "", fmt(end.get("median")),
                     fmt(report.summary.theory.get("residual_growth"))])
    return rows


def residual_table(report: RunReport) -> Table | None:
    """The residual stream at each block input: ‖∂L/∂x‖, the skip path's share, E‖x‖² measured and predicted."""
    rows = residual_rows(report)
    if not rows:
        return None
    table = FastTable(title=None, header_style="bold", pad_edge=False, box=None, collapse_padding=True,
                  caption=RESIDUAL_CAPTION, caption_justify="left")
    for head in RESIDUAL_HEADS:
        table.add_column(head, justify="left" if head == "layers" else "right", no_wrap=True)
    for row in rows:
        table.add_row(*row[:-1], Text(row[-1], style="cyan"))
    return table


def layer_table(report: RunReport, *, title: str | None = None, width: int = 160) -> Table:
    """Per-layer table: medians over seeds, statuses colour-coded, a log-scale bar per layer.

    Below 120 columns the secondary columns (q10–q90, ‖g‖/‖W‖, z std, all-zero sat/dead) are left out.
    """
    norms = _positive([lay.median("weight_grad_norm") for lay in report.layers])
    lo, hi = (min(norms), max(norms)) if norms else (1.0, 1.0)
    wide = width >= 120
    has_pred = any(lay.predicted_gradient_ratio is not None for lay in report.layers)
    show_sat = wide or any(lay.median("saturation") for lay in report.layers)
    show_dead = wide or any(lay.median("dead_fraction") for lay in report.layers)
    cols: list[tuple[str, str, Any]] = [
        ("layer", "right", lambda lay: str(lay.layer)),
        ("shape", "right", lambda lay: f"{lay.fan_in}→{lay.fan_out}"),
        ("act", "left", _act),
        ("‖∂L/∂W‖", "right", lambda lay: fmt(lay.median("weight_grad_norm"))),
    ]
    if wide:
        cols.append(("q10–q90", "right", lambda lay: Text(
            f"{fmt(lay.stats['weight_grad_norm'].q10, 2)}–{fmt(lay.stats['weight_grad_norm'].q90, 2)}",
            style="dim")))
    cols.append(("ratio", "right", lambda lay: fmt(lay.median("gradient_ratio"))))
    if has_pred:
        cols.append(("predicted", "right", lambda lay: Text(fmt(lay.predicted_gradient_ratio), style="cyan")))
    cols.append(("δ ratio", "right", lambda lay: fmt(lay.median("delta_ratio"))))
    if has_pred and wide:
        cols.append(("pred. δ", "right", lambda lay: Text(fmt(lay.predicted_delta_ratio), style="cyan")))
    if wide:
        cols += [("‖g‖/‖W‖", "right", lambda lay: fmt(lay.median("grad_weight_ratio"))),
                 ("z std", "right", lambda lay: fmt(lay.median("preact_std")))]
    if show_sat:
        cols.append(("sat", "right", lambda lay: pct(lay.median("saturation"))))
    if show_dead:
        cols.append(("dead", "right", lambda lay: pct(lay.median("dead_fraction"))))
    cols.append(("status", "left", lambda lay: Text(lay.status, style=STATUS_STYLE.get(lay.status, ""))))
    rows = [[f(lay) for _, _, f in cols] for lay in report.layers]
    used = sum(max(len(h), *(len(str(r[i])) for r in rows)) + 1 for i, (h, _, _) in enumerate(cols))
    bar_width = max(8, min(BAR_WIDTH, width - used - 1))
    decades = bar_decades(lo, hi)
    table = FastTable(title=title, header_style="bold", pad_edge=False, box=None, collapse_padding=True,
                  caption="ratio = ‖∂L/∂W_l‖/‖∂L/∂W_L‖, δ ratio = ‖δ_l‖/‖δ_L‖ (medians over seeds), predicted: "
                          + (f"mean-field; flow bar: log ‖∂L/∂W‖ over {decades} decades, full at {fmt(hi, 2)}, "
                             f"empty at {_decades_below(hi, decades)}" if norms else
                             "mean-field; flow bar: no layer has a finite positive ‖∂L/∂W‖, so no bars"),
                  caption_justify="left")
    for head, justify, _ in cols:
        table.add_column(head, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    table.add_column("flow", no_wrap=True)
    for lay, row in zip(report.layers, rows, strict=True):
        bar = Text(log_bar(lay.median("weight_grad_norm"), lo, hi, bar_width),
                   style=STATUS_STYLE.get(lay.status, ""))
        table.add_row(*row, bar)
    return table


RATIO_NOTE_FACTOR = 10.0  # a note under the table when a layer's δ ratio and weight-gradient ratio differ this much


def ratio_note(report: RunReport) -> Text | None:
    """A line under the layer table when the δ ratio and the weight-gradient ratio of some layer disagree by more
    than RATIO_NOTE_FACTOR: ∂L/∂W_l = a_{l-1}ᵀ δ_l, so the forward signal makes up the difference."""
    apart = [lay.layer for lay in report.layers
             if lay.kind == "dense" and (r := lay.median("gradient_ratio")) and (d := lay.median("delta_ratio"))
             and max(r / d, d / r) > RATIO_NOTE_FACTOR]
    if not apart:
        return None
    return Text(f"note: in layer{'s' if len(apart) > 1 else ''} {_span(apart)} the δ ratio and the weight-gradient "
                f"ratio differ more than {RATIO_NOTE_FACTOR:.0f}×: ∂L/∂W_l = a_(l-1)ᵀ·δ_l, and the forward "
                "signal a_(l-1) changes with depth by about the inverse factor (Glorot & Bengio 2010), so the "
                "weight gradients stay level while δ does not", style="dim")


def strip_table(report: RunReport) -> Table:
    """The distribution of |∂L/∂W| entries per layer on one shared log axis."""
    values = _positive([v for lay in report.layers for k, v in lay.grad_quantiles.items() if k in ("q01", "q99")])
    lo, hi = (min(values), max(values)) if values else (1.0, 1.0)
    zero = any(v == 0 for lay in report.layers for v in lay.grad_quantiles.values())
    axis = (f"{fmt(lo, 2)} to {fmt(hi, 2)}: · q01–q99  ─ q10–q90  ┃ median"
            + ("; a quantile of exactly 0 at the left edge" if zero else "") if values
            else "no finite positive |∂L/∂W| quantile in any layer, so no strips")
    table = FastTable(title=None, box=None, pad_edge=False, header_style="bold", caption_justify="left",
                  caption=f"|∂L/∂W| entries per layer, all seeds, log axis\n{axis}")
    table.add_column("layer", justify="right")
    table.add_column("|g| q01", justify="right", style="dim", no_wrap=True)
    table.add_column(f"{fmt(lo, 2)}{' ' * (STRIP_WIDTH - len(fmt(lo, 2)) - len(fmt(hi, 2)))}{fmt(hi, 2)}"
                     if values else " " * STRIP_WIDTH, no_wrap=True)
    table.add_column("q99", justify="right", style="dim", no_wrap=True)
    for lay in report.layers:
        q = lay.grad_quantiles
        table.add_row(str(lay.layer), fmt(q.get("q01"), 2),
                      Text(log_strip(q, lo, hi), style=STATUS_STYLE.get(lay.status, "")), fmt(q.get("q99"), 2))
    return table


def _span(layers: Sequence[int]) -> str:
    return f"{layers[0]}–{layers[-1]}" if len(layers) > 1 else str(layers[0])


def extrapolation_sentence(ex: dict[str, Any], depth: int = 50) -> str:
    """The depth extrapolation with the per-layer factor it is computed from (the log-linear fit of ‖δ_l‖ over
    all layers, not the hidden layers' mean gain), that factor printed with enough digits that
    factor^(depth-1) reproduces the printed ratio."""
    log10_f = float(ex["log10_per_layer_factor"])
    log10_r = float(ex[f"layer1_log10_ratio_at_depth_{depth}"])
    ratio = ex.get(f"layer1_ratio_at_depth_{depth}")
    shown = fmt(ratio, 2) if ratio is not None else f"10^{log10_r:.0f}"
    factor = ex.get("per_layer_factor")
    cited = f"10^{log10_f:.6g}"
    if factor is not None:
        for digits in range(3, 13):
            cited = fmt(factor, digits)
            ln_r = (depth - 1) * math.log(float(cited))
            again = (fmt(math.exp(ln_r), 2) if abs(ln_r) < 700 else None) if ratio is not None else (
                f"10^{ln_r / math.log(10.0):.0f}")
            if again == shown and abs(ln_r - log10_r * math.log(10.0)) <= 0.01:  # within 1 % of the fit's ratio
                break
    tail = " (beyond float range)" if ratio is None else ""
    return (f"fitted over all layers, ‖δ_l‖/‖δ_l+1‖ = {cited} per layer; at this rate layer 1 of a {depth}-layer net "
            f"gets {cited}^{depth - 1} = {shown} of the output layer's δ{tail}")


def verdict_text(report: RunReport, *, theory: bool = True) -> Text:
    """The verdict paragraph; with theory, the mean-field line and its caveats under it."""
    s = report.summary
    t = Text()
    # the verdict is of the initialization; with a train block say so, the training line follows it
    t.append("verdict at initialization (step 0): " if report.history else "verdict: ", style="bold")
    t.append(s.verdict.upper(), style="bold " + STATUS_STYLE.get(s.verdict, ""))
    t.append(f" — gradient spread {fmt(s.gradient_spread)} (max/min layer ‖∂L/∂W‖, median of {s.seeds} seeds); "
             f"loss {fmt(s.loss.median)}")
    if s.mean_backward_gain is not None:
        t.append(f"; backward gain ‖δ_l‖/‖δ_l+1‖ {fmt(s.mean_backward_gain)} per layer")
    ex = s.extrapolation
    if ex.get("layer1_log10_ratio_at_depth_50") is not None:
        t.append(f"; {extrapolation_sentence(ex)}")
    if s.overflow_seeds:
        t.append(f"; {s.overflow_seeds} seeds overflowed", style="bold red")
    th = s.theory if theory else {}
    if th.get("chi1") is not None:
        t.append("\nmean-field: ", style="bold")
        t.append(f"χ₁ = {fmt(th['chi1'], 4)}, q* = {fmt(th.get('q_star'), 4)} "
                 f"(σ_w² = {fmt(th.get('sigma_w2'))}, σ_b² = {fmt(th.get('sigma_b2'))}")
        if th.get("critical_sigma_w2") is not None:
            t.append(f"; χ₁ = 1 at σ_w² = {fmt(th['critical_sigma_w2'], 4)}")
        t.append(")")
        if th.get("measured_backward_factor") is not None:
            t.append(f"; backward factor ‖δ_l‖²/‖δ_l+1‖² measured {fmt(th['measured_backward_factor'], 4)}, "
                     f"predicted {fmt(th.get('predicted_backward_factor'), 4)}")
        if th.get("measured_backward_factor_at_q_star") is not None:
            t.append(f"; at q* (layers {_span(th['settled_layers'])}) measured "
                     f"{fmt(th['measured_backward_factor_at_q_star'], 4)} vs χ₁ {fmt(th['chi1'], 4)}")
        if th.get("caveats"):
            t.append(f"\n  note: {'; '.join(th['caveats'])}", style="dim")
    elif th.get("reason"):
        t.append(f"\nmean-field: does not apply ({th['reason']})", style="dim")
    return t


def findings_text(report: RunReport, width: int = 160) -> Text:
    """Each finding: mark, code and message, then the remedy; wrapped with a hanging indent."""
    t = Text()
    if not report.findings:
        t.append("no findings", style="green")
        return t
    for i, f in enumerate(report.findings):
        mark, style = SEVERITY_MARK.get(f.severity, ("•", ""))
        if i:
            t.append("\n")
        para = Text()
        para.append(f"{mark} {f.code}", style=f"bold {style}")
        para.append(f"  {one_exponent_style(f.message)}")
        t.append_text(hanging(para, width, 4))
        t.append("\n")
        t.append_text(hanging(Text(f"  → {one_exponent_style(f.hint)}", style="italic"), width, 2))
    return t


def run_renderable(report: RunReport, *, quiet: bool = False, width: int = 160) -> Group:
    if quiet:
        parts: list[Any] = [hanging(verdict_text(report, theory=False), width, 2)]
        if report.history:
            parts.append(hanging(training_text(report), width, 2))
        return Group(*parts)
    note = ratio_note(report)
    stream = residual_table(report)
    parts = [hanging(header(report), width, 2), Text(""), layer_table(report, width=width),
             *([hanging(note, width, 2)] if note else []), Text(""), *([stream, Text("")] if stream else []),
             strip_table(report), Text(""), hanging(verdict_text(report), width, 2)]
    if report.history:
        parts += [Text(""), training_table(report, width), Text(""), hanging(training_text(report), width, 2)]
    if report.jacobian is not None:
        parts += [Text(""), hanging(jacobian_text(report.jacobian.summary), width, 2), Text(""),
                  jacobian_histogram(report.jacobian.sv, width, report.jacobian.summary.get("rounding_floor"))]
    parts += [Text(""), findings_text(report, width)]
    return Group(*parts)


JACOBIAN_STYLE = {"isometric": "green", "broad": "yellow", "degenerate": "magenta"}
HIST_ROWS = 14   # at most this many bins, each the narrowest of HIST_STEPS (decades) that fits the spectrum
HIST_STEPS = (0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)


def jacobian_text(j: dict[str, Any]) -> Text:
    """The Jacobian paragraph: verdict and why, quantiles, mean and variance of σ² against theory."""
    t = Text()
    t.append("Jacobian: ", style="bold")
    t.append(j["verdict"].upper(), style="bold " + JACOBIAN_STYLE.get(j["verdict"], ""))
    wrt = "a" if j["at"] == "last_hidden" else "z"
    t.append(f" — J = ∂{wrt}_{j['layer']}/∂x ({j['d_in']}×{j['n_out']}, k = {j['k']} singular values) at "
             f"{j['samples']} samples × {j['seeds']} seeds: {one_exponent_style(j['reason'])}")
    q = j["singular_values"]
    t.append(f"\n  singular values: min {fmt(q['min'])}, q10 {fmt(q['q10'])}, median {fmt(q['median'])}, q90 "
             f"{fmt(q['q90'])}, max {fmt(q['max'])}; condition number {fmt(j['condition_number']['median'])} "
             f"(median); {pct(j['near_one_fraction'])} within a factor 2 of 1")
    t.append(f"\n  mean σ² {fmt(j['mean_sv2'])}, predicted {fmt(j['predicted_mean_sv2'])} (Π χ_l = "
             f"{fmt(j['chi_product'])}" + (f" × n/k = {fmt(j['width_factor'])}" if j["width_factor"] != 1 else "")
             + f"); Var(λ of JJᵀ) {fmt(j['var_eig'])}, predicted {fmt(j['predicted_var_eig'])}")
    if j["predicted_var_eig"] is None:
        t.append(f" ({j['var_model']})", style="dim")
    if j.get("below_rounding"):
        t.append(f"\n  {pct(j['below_rounding'])} of the singular values lie below the float rounding floor "
                 f"(≈ {fmt(j['rounding_floor'])}): their values are noise, only their smallness is measured")
    if j.get("zero_fraction"):
        t.append(f"\n  {pct(j['zero_fraction'])} exactly zero (rank as low as {j['rank']['min']} of {j['k']})")
    return t


def jacobian_histogram(sv: Any, width: int = 160, floor: float | None = None) -> Table:
    """Counts of the singular values (all seeds and samples) in log₁₀ bins; zeros, values below the float
    rounding floor (max(d_in, n)·eps·σ_max: not resolvable) and non-finite ones counted apart."""
    import numpy as np

    v = np.asarray(sv, dtype=np.float64).ravel()
    finite = v[np.isfinite(v)]
    low = int(((finite > 0) & (finite < floor)).sum()) if floor else 0
    pos = finite[(finite > 0) & (finite >= (floor or 0.0))]
    rows: list[tuple[str, int, bool]] = []
    if low:
        rows.append((f"< {fmt(floor, 2)} (rounding)", low, False))
    if pos.size:
        lo_d, hi_d = math.log10(pos.min()), math.log10(pos.max())
        step = next((st for st in HIST_STEPS if (hi_d - lo_d) / st <= HIST_ROWS - 1), HIST_STEPS[-1])
        lo, hi = math.floor(lo_d / step) * step, (math.floor(hi_d / step) + 1) * step
        edges = np.arange(round((hi - lo) / step) + 1) * step + lo
        counts, _ = np.histogram(np.log10(pos), bins=edges)
        for a, b, c in zip(edges[:-1], edges[1:], counts, strict=True):
            # the bin [10^a, 10^b) holds σ = 1 exactly when a ≤ 0 < b, the same edges np.histogram used
            rows.append((f"[{fmt(10.0 ** a, 2)}, {fmt(10.0 ** b, 2)})", int(c), bool(a <= 0.0 < b)))
    zeros, bad = int((finite == 0).sum()), int(v.size - finite.size)
    rows += [("= 0", zeros, False)] if zeros else []
    rows += [("NaN/Inf", bad, False)] if bad else []
    most = max((c for _, c, _ in rows), default=1) or 1
    bar_w = max(10, min(40, width - 40))
    if any(one for _, _, one in rows):
        where_one = "◀ marks the bin holding 1"
    elif pos.size:
        where_one = f"1 is {'above' if pos.max() < 1.0 else 'below'} every bin"
    else:
        where_one = "no positive finite σ"
    table = FastTable(title=f"σ of J, log bins ({v.size} values; {where_one})", title_justify="left",
                  box=None, pad_edge=False, header_style="bold", collapse_padding=True)
    table.add_column("σ in", justify="right", no_wrap=True)
    table.add_column("count", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    for label, c, one in rows:
        bar = "█" * round(bar_w * c / most) or ("▏" if c else "")
        table.add_row(label, str(c), Text(bar + (" ◀ 1" if one else ""), style="green" if one else "cyan"))
    return table


def run_markdown(report: RunReport) -> str:
    sc = report.scenario
    lines = [f"## gradscope: {sc['name']}" + (f" [{report.label}]" if report.label else ""), ""]
    if sc.get("description"):
        lines += [sc["description"], ""]
    lines += ["| layer | shape | act | ‖∂L/∂W‖ median | q10–q90 | gradient ratio | predicted | δ ratio | "
              "predicted δ | ‖g‖/‖W‖ | z std | saturation | dead | status |",
              "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for lay in report.layers:
        wg = lay.stats["weight_grad_norm"]
        lines.append(f"| {lay.layer} | {lay.fan_in}→{lay.fan_out} | {_act(lay)} | {fmt(wg.median)} | "
                     f"{fmt(wg.q10, 2)}–{fmt(wg.q90, 2)} | {fmt(lay.median('gradient_ratio'))} | "
                     f"{fmt(lay.predicted_gradient_ratio)} | {fmt(lay.median('delta_ratio'))} | "
                     f"{fmt(lay.predicted_delta_ratio)} | {fmt(lay.median('grad_weight_ratio'))} | "
                     f"{fmt(lay.median('preact_std'))} | "
                     f"{pct(lay.median('saturation'))} | {pct(lay.median('dead_fraction'))} | {lay.status} |")
    note = ratio_note(report)
    if note is not None:
        lines += ["", note.plain]
    stream = residual_rows(report)
    if stream:
        lines += ["", "| " + " | ".join(RESIDUAL_HEADS) + " |",
                  "|" + "|".join("---" if h == "layers" else "---:" for h in RESIDUAL_HEADS) + "|",
                  *("| " + " | ".join(row) + " |" for row in stream), "",
                  RESIDUAL_CAPTION[0].upper() + RESIDUAL_CAPTION[1:]]
    lines += ["", verdict_text(report).plain.replace("\n", "\n\n"), ""]
    for f in report.findings:
        lines.append(f"- **{f.code}** ({f.severity}, layers {', '.join(map(str, f.layers))}): {f.message}  \n"
                     f"  *Remedy:* {f.hint}")
    return "\n".join(lines) + "\n"


def make_console(*, no_color: bool = False, file: Any = None, width: int | None = None) -> Console:
    """A console honouring --no-color and NO_COLOR; plain text when writing to a file.

    markup and emoji are off: every string printed is text as given (a file name or variant label like
    `a[bold]b.yaml` or `:x:` is shown as it is, and parsing ~250 cells for markup cost ~5 ms a report)."""
    return Console(file=file, no_color=no_color or None, highlight=False, width=width,
                   force_terminal=None if file is None else False, soft_wrap=False, markup=False, emoji=False)


# ---------------------------------------------------------------- check and list


def check_line(r: Any) -> Text:
    """PASS/FAIL/ERROR, the file, its verdict (and the expected one), the reasons it failed, then the
    findings `expect.allow` accepted (with their reasons) and notes (baseline new/changed), indented."""
    t = Text()
    if r.error is not None:
        t.append("ERROR ", style="bold magenta")
        t.append(f"{r.source}", style="bold")
        t.append(f": {r.error}", style="magenta")
        return t
    t.append("PASS " if r.passed else "FAIL ", style="bold green" if r.passed else "bold red")
    t.append(f"{r.source}", style="bold")
    t.append(f"  verdict {r.verdict}", style=STATUS_STYLE.get(r.verdict, ""))
    if r.expected.get("verdict"):
        t.append(f" (expected {' or '.join(r.expected['verdict'])})", style="dim")
    if r.reasons:
        t.append(": " + "; ".join(r.reasons), style="red")
    for code, reason in r.allowed:
        t.append(f"\n    allowed {code}: {reason}", style="dim")
    for note in r.notes:
        t.append(f"\n    {note}", style="yellow")
    return t


def check_summary(results: Sequence[Any]) -> Text:
    n_fail = sum(r.status == "fail" for r in results)
    n_err = sum(r.status == "error" for r in results)
    text = f"{len(results) - n_fail - n_err} passed, {n_fail} failed"
    if n_err:
        text += f", {n_err} could not run"
    counts = [f"{n} {kind}" for kind in ("drift", "new", "changed")
              if (n := sum(getattr(r, "baseline", None) == kind for r in results))]
    if counts:
        text += f"; baseline: {', '.join(counts)}"
    return Text(text, style="bold red" if n_fail or n_err else "bold green")


def check_renderable(results: Sequence[Any], *, quiet: bool = False) -> Group:
    """One line per scenario, then the count."""
    return Group(*[check_line(r) for r in results if not (quiet and r.passed)], check_summary(results))


def catalog_renderable(cat: dict[str, list[dict[str, Any]]]) -> Group:
    parts: list[Any] = []
    for kind, entries in cat.items():
        table = FastTable(title=kind, title_justify="left", title_style="bold", box=None, pad_edge=False,
                      header_style="bold")
        table.add_column("name", style="cyan", no_wrap=True)
        table.add_column("description", overflow="fold")  # a formula longer than the column folds, is not cut
        table.add_column("parameters (default)", style="dim", overflow="fold")
        for e in entries:
            name = e["name"] + (f" ({', '.join(e['aliases'])})" if e["aliases"] else "")
            ps = ", ".join(f"{k}={v['default']}" for k, v in e["params"].items())
            table.add_row(name, e["description"], ps)
        parts += [table, Text("")]
    return Group(*parts)


# ---------------------------------------------------------------- compare


def _small(values: Sequence[float], i: int) -> bool:
    """Is |values[i]| under 1% of the largest |value| at this p?"""
    top = max(abs(v) for v in values)
    return top > 0 and abs(values[i]) < 0.01 * top


def curve_table(cmp: Any) -> Table:
    labels = list(cmp.labels)
    k = cmp.reports[0].scenario["network"]["output_dim"]
    table = FastTable(title=f"output layer: ∂L/∂z of the true class vs its predicted probability p "
                        f"({max(k, 2)} classes, the others share 1-p)", title_justify="left", box=None,
                  pad_edge=False, header_style="bold", collapse_padding=True,
                  caption="◀ marks a gradient under 1% of the largest at the same p", caption_justify="left")
    table.add_column("p", justify="right")
    for lab in labels:
        table.add_column(f"{lab} loss", justify="right", style="dim")
        table.add_column(f"{lab} ∂L/∂z_true", justify="right")
    if len(labels) == 2:
        table.add_column(f"{labels[0]}/{labels[1]}", justify="right")
    for row in cmp.curve:
        grads = [row[lab]["grad_true_logit"] for lab in labels]
        cells: list[Any] = [fmt(row["p"], 4)]
        for i, lab in enumerate(labels):
            cells.append(fmt(row[lab]["loss"], 4))
            mark = " ◀" if _small(grads, i) else "  "
            cells.append(Text(fmt(grads[i], 4) + mark, style="bold red" if mark.strip() else ""))
        if len(labels) == 2:
            cells.append(fmt(grads[0] / grads[1] if grads[1] else None, 3))
        table.add_row(*cells)
    return table


def probs_renderable(cmp: Any) -> Table:
    table = FastTable(title="loss and ∂L/∂z at the given predictions", title_justify="left", box=None,
                  pad_edge=False, header_style="bold", collapse_padding=True)
    table.add_column("prediction ŷ")
    table.add_column("target", justify="right")
    table.add_column("loss")
    table.add_column("value", justify="right")
    table.add_column("∂L/∂z")
    for row in cmp.probs:
        for j, lab in enumerate(cmp.labels):
            head = "[" + ", ".join(fmt(x, 3) for x in row["probs"]) + "]" if j == 0 else ""
            table.add_row(head, str(row["target"]) if j == 0 else "", lab, fmt(row[lab]["loss"], 4),
                          "[" + ", ".join(fmt(g, 4) for g in row[lab]["grad"]) + "]")
    return table


def side_by_side(cmp: Any, width: int = 160) -> Group:
    """Per-layer ‖∂L/∂W‖, ratio and status of every variant. Nothing is cut: a narrow terminal drops the ratio,
    then the shape, then stacks the variants in as few tables as fit (each with its own layer column)."""
    from rich.cells import cell_len

    reports, labels = cmp.reports, list(cmp.labels)
    n_layers = max(len(r.layers) for r in reports)
    shapes = []
    for i in range(n_layers):
        first = next(r.layers[i] for r in reports if i < len(r.layers))
        shapes.append(f"{first.fan_in}→{first.fan_out}")
    cells = [[(fmt(r.layers[i].median("weight_grad_norm")), fmt(r.layers[i].median("gradient_ratio")),
               r.layers[i].status) if i < len(r.layers) else ("", "", "") for i in range(n_layers)]
             for r in reports]

    def col(head: str, values: Sequence[str]) -> int:
        return max(cell_len(head), *(cell_len(v) for v in values))

    layer_w, shape_w = col("layer", [str(n_layers)]), col("shape", shapes)
    var_w = [(col(f"{lab} ‖∂L/∂W‖", [c[0] for c in cs]), col("ratio", [c[1] for c in cs]),
              col("status", [c[2] for c in cs])) for lab, cs in zip(labels, cells, strict=True)]

    def fits(group: Sequence[int], shape: bool, ratio: bool) -> bool:
        ws = [layer_w] + ([shape_w] if shape else []) + [w for v in group for w in (
            (var_w[v][0], var_w[v][1], var_w[v][2]) if ratio else (var_w[v][0], var_w[v][2]))]
        return sum(ws) + len(ws) - 1 <= width   # one space between columns, none at the edges

    n = len(labels)
    layout = (1, False, False)
    for k in range(n, 0, -1):
        groups = [list(range(a, min(a + k, n))) for a in range(0, n, k)]
        found = next(((k, sh, ra) for sh, ra in ((True, True), (True, False), (False, False))
                      if all(fits(g, sh, ra) for g in groups)), None)
        if found:
            layout = found
            break
    k, show_shape, show_ratio = layout
    tables = []
    for a in range(0, n, k):
        group = list(range(a, min(a + k, n)))
        title = "per-layer gradients, side by side (medians over seeds)" if k == n else (
            f"per-layer gradients (medians over seeds): {', '.join(labels[v] for v in group)}")
        table = FastTable(title=title, title_justify="left", box=None,
                      pad_edge=False, header_style="bold", collapse_padding=True)
        table.add_column("layer", justify="right", no_wrap=True)
        if show_shape:
            table.add_column("shape", justify="right", no_wrap=True)
        for v in group:
            table.add_column(f"{labels[v]} ‖∂L/∂W‖", justify="right", no_wrap=True)
            if show_ratio:
                table.add_column("ratio", justify="right", no_wrap=True)
            table.add_column("status", no_wrap=True)
        for i in range(n_layers):
            row: list[Any] = [str(i + 1)] + ([shapes[i]] if show_shape else [])
            for v in group:
                norm, ratio, status = cells[v][i]
                row += [norm] + ([ratio] if show_ratio else []) + [Text(status, style=STATUS_STYLE.get(status, ""))]
            table.add_row(*row)
        if tables:
            tables.append(Text(""))
        tables.append(table)
    return Group(*tables)


def compare_verdicts(cmp: Any) -> Text:
    t = Text()
    for i, (lab, r) in enumerate(zip(cmp.labels, cmp.reports, strict=True)):
        s = r.summary
        if i:
            t.append("\n")
        t.append(f"{lab}: ", style="bold")
        t.append(s.verdict.upper(), style="bold " + STATUS_STYLE.get(s.verdict, ""))
        t.append(f" — gradient spread {fmt(s.gradient_spread)}, loss {fmt(s.loss.median)}, output-layer "
                 f"‖∂L/∂W‖ {fmt(r.layers[-1].median('weight_grad_norm'))}")
        if s.chi1 is not None:
            t.append(f", χ₁ {fmt(s.chi1)}")
        if r.jacobian is not None:
            j = r.jacobian.summary
            t.append("; Jacobian ")
            t.append(j["verdict"], style="bold " + JACOBIAN_STYLE.get(j["verdict"], ""))
            t.append(f" (σ q10–q90 {fmt(j['singular_values']['q10'])}–{fmt(j['singular_values']['q90'])}, "
                     f"mean σ² {fmt(j['mean_sv2'])}, {pct(j['near_one_fraction'])} within 2× of 1)")
    return t


def differing_text(cmp: Any) -> Text:
    t = Text()
    if not cmp.differing:
        t.append("findings: the same codes for every variant", style="dim")
        return t
    t.append("findings that differ:", style="bold")
    for code, labs in cmp.differing.items():
        t.append(f"\n{code}", style="bold yellow")
        t.append(f" (only {', '.join(labs)})")
        for lab in labs:
            r = cmp.reports[list(cmp.labels).index(lab)]
            f = next(f for f in r.findings if f.code == code)
            t.append(f"\n  {lab}: {f.message}\n  → {f.hint}", style="")
    return t


def compare_renderable(cmp: Any, *, width: int = 160) -> Group:
    title = Text()
    title.append(f"compare {cmp.axis}: {' vs '.join(cmp.labels)}", style="bold")
    title.append(f"  ({cmp.scenario_source})", style="dim")
    parts: list[Any] = [title, Text("")]
    if cmp.curve is not None:
        parts += [curve_table(cmp), Text("")]
    if cmp.probs is not None:
        parts += [probs_renderable(cmp), Text("")]
    for note in cmp.notes:
        parts += [Text(f"note: {note}", style="dim")]
    parts += [side_by_side(cmp, width), Text(""), hanging(compare_verdicts(cmp), width, 2), Text(""),
              hanging(differing_text(cmp), width, 2)]
    if cmp.race is not None:
        parts += [Text(""), race_renderable(cmp.race, width)]
    return Group(*parts)


def compare_markdown(cmp: Any) -> str:
    lines = [f"## gradscope compare {cmp.axis}: {' vs '.join(cmp.labels)}", ""]
    if cmp.curve is not None:
        head = "| p | " + " | ".join(f"{lab} loss | {lab} ∂L/∂z_true" for lab in cmp.labels) + " |"
        lines += [head, "|" + "---:|" * (1 + 2 * len(cmp.labels))]
        for row in cmp.curve:
            grads = [row[lab]["grad_true_logit"] for lab in cmp.labels]
            cells = []
            for i, lab in enumerate(cmp.labels):
                g = fmt(grads[i], 4)
                cells += [fmt(row[lab]["loss"], 4), f"**{g}**" if _small(grads, i) else g]
            lines.append(f"| {fmt(row['p'], 4)} | " + " | ".join(cells) + " |")
        lines += ["", "Bold: a gradient under 1% of the largest at the same p.", ""]
    if cmp.probs is not None:
        lines += ["| prediction | target | loss | value | ∂L/∂z |", "|---|---:|---|---:|---|"]
        for row in cmp.probs:
            for lab in cmp.labels:
                lines.append(f"| {row['probs']} | {row['target']} | {lab} | {fmt(row[lab]['loss'], 4)} | "
                             f"{[round(g, 6) for g in row[lab]['grad']]} |")
        lines.append("")
    for r in cmp.reports:
        lines.append(run_markdown(r))
    if cmp.differing:
        lines.append("Findings that differ: " + "; ".join(f"`{c}` only in {', '.join(v)}"
                                                        for c, v in cmp.differing.items()))
    return "\n".join(lines) + "\n"


def compare_csv(cmp: Any) -> str:
    from .csvtext import _structured_rows, csv_text, run_csv_rows

    head: list[str] = []
    rows: list[list[Any]] = []
    structured = any(_structured_rows(r) for r in cmp.reports)
    for r in cmp.reports:
        head, part = run_csv_rows(r, structured)
        rows += part
    return csv_text(head, rows)


def curve_csv(cmp: Any) -> str:
    from .csvtext import csv_text

    head = ["p"] + [f"{lab}_{k}" for lab in cmp.labels for k in ("loss", "grad_true_logit")]
    rows = [[repr(row["p"])] + [repr(row[lab][k]) for lab in cmp.labels for k in ("loss", "grad_true_logit")]
            for row in cmp.curve]
    return csv_text(head, rows)


# ---------------------------------------------------------------- training

HEAT = ("grey30", "blue", "dodger_blue2", "cyan", "green", "yellow", "dark_orange", "red")
MAX_STEP_COLUMNS = 9


def _step_columns(n: int, most: int = MAX_STEP_COLUMNS) -> list[int]:
    """Indices of at most `most` recorded steps at an even stride, the last one always included."""
    most = max(2, most)
    if n <= most:
        return list(range(n))
    stride = -(-(n - 1) // (most - 1))
    return [*range(0, n - 1, stride), n - 1]


def heat_cell(value: float | None, lo: float, hi: float) -> Text:
    """The value on a background colour placed by log10(value) between lo and hi."""
    if value is None or value <= 0:
        return Text(fmt(value, 2))
    frac = 0.0 if hi <= lo else (math.log10(value) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
    color = HEAT[min(len(HEAT) - 1, max(0, int(frac * len(HEAT))))]
    return Text(f" {fmt(value, 2)} ", style=f"black on {color}")


def training_table(report: RunReport, width: int = 160) -> Table:
    hist = list(report.history or ())
    cell_w = max(len(h.verdict) for h in hist)
    cell_w = max(cell_w, *(len(fmt(layer.median("weight_grad_norm"), 2)) + 2
                           for h in hist for layer in h.layers))
    cols = _step_columns(len(hist), min(MAX_STEP_COLUMNS, (width - 14) // (cell_w + 1)))
    vals = _positive([layer.median("weight_grad_norm") for h in hist for layer in h.layers])
    lo, hi = (min(vals), max(vals)) if vals else (1.0, 1.0)
    table = FastTable(title="median ‖∂L/∂W‖ per layer over training steps (colour: log scale, "
                        f"{fmt(lo, 2)} blue to {fmt(hi, 2)} red)", title_justify="left", box=None, pad_edge=False,
                  header_style="bold", collapse_padding=True)
    table.add_column("layer \\ step", justify="right", no_wrap=True)
    for c in cols:
        table.add_column(str(hist[c].step), justify="right", no_wrap=True)
    for i in range(len(hist[0].layers)):
        table.add_row(str(i + 1), *[heat_cell(hist[c].layers[i].median("weight_grad_norm"), lo, hi)
                                    for c in cols])
    table.add_row("train loss", *[fmt(hist[c].train_loss.median) for c in cols])
    table.add_row("held-out loss", *[fmt(hist[c].holdout_loss.median) for c in cols])
    if hist[0].holdout_accuracy is not None:
        table.add_row("held-out acc", *[fmt(acc.median if (acc := hist[c].holdout_accuracy) else None)
                                            for c in cols])
    table.add_row("verdict", *[Text(hist[c].verdict, style=STATUS_STYLE.get(hist[c].verdict, ""))
                               for c in cols])
    return table


def _change(fall: float | None) -> str:
    """'fell 300×' for a fall factor of 300, 'rose 4×' for 0.25."""
    if fall is None:
        return "changed by an unknown factor"
    return f"fell {fmt(fall)}×" if fall >= 1 else f"rose {fmt(1 / fall)}×"


def training_text(report: RunReport) -> Text:
    tr = report.training or {}
    t = Text()
    t.append("training: ", style="bold")
    n_div, seeds = tr.get("diverged_seeds") or 0, report.summary.seeds
    if n_div:
        steps = tr.get("diverged_steps") or []
        at = ("" if not steps else f" at step {steps[0]}" if steps[0] == steps[-1] else
              f" (first at step {steps[0]}, last at step {steps[-1]})")
        t.append(f"diverged in {n_div} of {seeds} seeds{at}", style="bold red")
        if n_div == seeds:
            t.append(f"; {tr.get('steps')} steps of {tr.get('optimizer')}, lr {fmt(tr.get('lr'))}")
            return t
        t.append("; ")
    fall = tr.get("gradient_fall", {})
    keys = list(fall)
    if keys:
        t.append(f"layer 1 gradient {_change(fall[keys[0]])} during training while the output layer's "
                 f"{_change(fall[keys[-1]])}; ")
    t.append(f"held-out loss {fmt(tr.get('initial_loss'))} → {fmt(tr.get('final_loss'))}")
    if tr.get("final_accuracy") is not None:
        t.append(f", accuracy {fmt(tr['final_accuracy'])}")
        s90 = tr.get("steps_to_accuracy")
        t.append(f" (90% first reached at step {s90})" if s90 is not None else " (90% not reached)")
        best = tr.get("best_accuracy")
        if best is not None and best - tr["final_accuracy"] >= 0.02:
            t.append(f", below its best {fmt(best)} at step {tr.get('best_accuracy_step')}")
    t.append(f"; {tr.get('steps')} steps of {tr.get('optimizer')}, lr {fmt(tr.get('lr'))}, medians over "
             f"{report.summary.seeds} seeds")
    return t


def race_renderable(race: dict[str, Any], width: int = 160) -> Group:
    """Loss and accuracy per recorded step per variant, and who got where first."""
    per = race["variants"]
    labels = list(per)
    steps = per[labels[0]]["steps"]
    cell_w = max(len(fmt(loss)) + (len(f" / {fmt(acc)}") if acc is not None else 0)
                 for v in per.values() for loss, acc in zip(v["holdout_loss"], v["holdout_accuracy"], strict=False))
    label_w = max(len("variant \\ step"), *(len(lab) for lab in labels))
    cols = _step_columns(len(steps), min(MAX_STEP_COLUMNS, (width - label_w - 1) // (cell_w + 1)))
    table = FastTable(title="training race: held-out loss / accuracy (medians over seeds)", title_justify="left",
                  box=None, pad_edge=False, header_style="bold", collapse_padding=True)
    table.add_column("variant \\ step", no_wrap=True)
    for c in cols:
        table.add_column(str(steps[c]), justify="right", no_wrap=True)
    for lab in labels:
        v = per[lab]
        cells = []
        for c in cols:
            acc = v["holdout_accuracy"][c] if c < len(v["holdout_accuracy"]) else None
            loss = v["holdout_loss"][c] if c < len(v["holdout_loss"]) else None
            cells.append(fmt(loss) + (f" / {fmt(acc)}" if acc is not None else ""))
        table.add_row(lab, *cells)
    t = Text()
    if race.get("accuracy_level") is not None:
        t.append(f"first to {fmt(race['accuracy_level'])} held-out accuracy: ", style="bold")
        parts = [f"{lab} at step {s}" if s is not None else f"{lab} never"
                 for lab, s in sorted(race["first_to_level"].items(), key=lambda kv: (kv[1] is None, kv[1] or 0))]
        t.append("; ".join(parts))
    if race.get("leader"):
        t.append(f"\nleader: {race['leader']}", style="bold green")
    return Group(table, hanging(t, width, 2))


# ---------------------------------------------------------------- progress


@contextmanager
def progress_bar(description: str, *, enabled: bool | None = None, file: Any = None
                 ) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr for long work; yields a progress(done, total) callback.

    Shown only when stderr is a terminal (`enabled=None`); otherwise yields None and prints nothing.
    """
    import sys

    stream = file if file is not None else sys.stderr
    if enabled is None:
        enabled = bool(getattr(stream, "isatty", lambda: False)())
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(file=stream, force_terminal=True, highlight=False, markup=False, emoji=False)
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
