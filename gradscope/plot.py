"""matplotlib figures from reports (`--plot FILE.png|svg|pdf`). Draws; never computes a statistic.

Every figure is built by a function that returns a `matplotlib.figure.Figure` (no pyplot state, the
Agg canvas), so tests read the plotted numbers back from the Axes. matplotlib is an optional extra
(`gradscope[plot]`), imported only here and only when a figure is asked for.

Log axes never crash on zeros, NaN or inf: such values are drawn as marked points at the axis edge
(▼ 0 or negative at the bottom, ✕ NaN at the bottom, ▲ inf at the top) and named in the footnote.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import GradscopeError
from .report import RunReport

INSTALL = "pip install 'gradscope[plot]'"
FORMATS = ("png", "svg", "pdf")
STATUS_COLOR = {"healthy": "#2ca02c", "vanishing": "#1f77b4", "exploding": "#d62728", "saturated": "#d4a000",
                "dead": "#c51b8a", "overflow": "#8b0000"}
STYLE = {"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 9,
         "xtick.labelsize": 10, "ytick.labelsize": 10, "figure.titlesize": 14, "axes.grid": True,
         "grid.alpha": 0.3, "svg.fonttype": "none", "pdf.fonttype": 42}
EDGE_GID = "edge-points"
MAX_NOTES = 6


def require_matplotlib() -> Any:
    """The matplotlib module, or exit 2 with the install line."""
    try:
        import matplotlib
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError:
        raise GradscopeError(f"--plot needs matplotlib, which is not installed; install it with: {INSTALL}") from None
    return matplotlib


def check_paths(paths: Sequence[Path]) -> None:
    """Refuse, before any work, plot files whose extension is not png, svg or pdf, and a missing matplotlib."""
    for path in paths:
        ext = Path(path).suffix.lower().lstrip(".")
        if ext not in FORMATS:
            raise GradscopeError(f"--plot {path}: the extension picks the format; use .png, .svg or .pdf")
    if paths:
        require_matplotlib()


def _new_figure(width: float, height: float) -> Any:
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)  # headless: the Agg canvas whatever backend pyplot would pick; no window opens
    return fig


def _style() -> Any:
    import matplotlib

    return matplotlib.rc_context(STYLE)


def save(figure: Any, path: Path) -> None:
    """Write one figure; the format is the file's extension."""
    ext = Path(path).suffix.lower().lstrip(".")
    try:
        figure.savefig(path, format=ext, dpi=100)
    except OSError as exc:
        raise GradscopeError(f"--plot {path}: cannot write ({exc.strerror})") from None


def save_pages(figures: Sequence[Any], path: Path) -> None:
    """A multi-page PDF, one figure per page."""
    from matplotlib.backends.backend_pdf import PdfPages

    try:
        with PdfPages(path) as pdf:
            for fig in figures:
                pdf.savefig(fig)
    except OSError as exc:
        raise GradscopeError(f"--plot {path}: cannot write ({exc.strerror})") from None


# ---------------------------------------------------------------- zero-safe log axes


def _finite_positive(y: Any) -> bool:
    return y is not None and math.isfinite(y) and y > 0


def _describe(y: Any) -> str:
    if y is None or (isinstance(y, float) and math.isnan(y)):
        return "NaN"
    if math.isinf(y):
        return "inf" if y > 0 else "-inf"
    return "0" if y == 0 else f"{y:.3g}"


Note = tuple[str, str, str, float]   # (what, x name, value as text, x): "median = 0 at layer 3"


def log_values(ax: Any, xs: Sequence[float], ys: Sequence[float | None], *, what: str, notes: list[Note],
               xname: str = "layer", color: Any = "black") -> np.ndarray:
    """ys with every value a log axis cannot show replaced by NaN (a gap), those values drawn as marked
    points at the axis edge and added to `notes` (named in the footnote)."""
    out = np.array([y if _finite_positive(y) else np.nan for y in ys], dtype=float)
    bottom_x, top_x, nan_x = [], [], []
    for x, y in zip(xs, ys, strict=True):
        if _finite_positive(y):
            continue
        desc = _describe(y)
        notes.append((what, xname, desc, x))
        if desc == "inf":
            top_x.append(x)
        elif desc == "NaN":
            nan_x.append(x)
        else:
            bottom_x.append(x)
    trans = ax.get_xaxis_transform()  # x in data, y in axes fraction: the edge whatever the limits
    for pts, yy, marker in ((bottom_x, 0.0, "v"), (nan_x, 0.0, "X"), (top_x, 1.0, "^")):
        if pts:
            ax.plot(pts, [yy] * len(pts), marker=marker, linestyle="none", color=color, markersize=9,
                    markeredgecolor="black", transform=trans, clip_on=False, zorder=5, gid=EDGE_GID)
    return out


def _limits(ax: Any, values: Sequence[float], extra: Sequence[float] = (), pad: float = 3.0) -> None:
    from matplotlib.ticker import FuncFormatter

    v = [x for x in list(values) + list(extra) if _finite_positive(x)]
    ax.set_yscale("log")
    if v:
        top = max(v) * pad if max(v) < 1e300 else max(v)  # near float64's limit: no padding overflow to inf
        ax.set_ylim(min(v) / pad, top)
        if max(v) * pad * pad / min(v) < 100:  # under two decades: plain numbers, not 9×10⁻¹
            plain = FuncFormatter(lambda y, _pos: f"{y:.3g}")
            ax.yaxis.set_major_formatter(plain)
            ax.yaxis.set_minor_formatter(plain)
    else:
        ax.set_ylim(0.1, 10.0)


def _spans(xs: Sequence[float]) -> str:
    """[1, 2, 3, 7] -> '1–3, 7'."""
    xs = sorted(set(xs))
    parts: list[str] = []
    start = prev = xs[0]
    for x in [*xs[1:], None]:
        if x is not None and x == prev + 1:
            prev = x
            continue
        parts.append(f"{start:g}" if start == prev else f"{start:g}–{prev:g}")
        if x is not None:
            start = prev = x
    return ", ".join(parts)


def note_lines(notes: Sequence[Note]) -> list[str]:
    """Group the edge-marked values: 'median = 0 at layers 3–7'."""
    groups: dict[tuple[str, str, str], list[float]] = {}
    for what, xname, desc, x in notes:
        groups.setdefault((what, xname, desc), []).append(x)
    out = []
    for (what, xname, desc), xs in groups.items():
        plural = "s" if len(set(xs)) > 1 and xname in ("layer", "step") else ""
        out.append(f"{what} = {desc} at {xname}{plural} {_spans(xs)}")
    return out


def _footnote(fig: Any, text: str, notes: Sequence[Note]) -> None:
    """Seeds, dtype, version (and the values marked at an axis edge) under the panels, clear of them."""
    line = text
    height_in = fig.get_size_inches()[1]
    lines = 1 + (2 if notes else 0)
    fig.get_layout_engine().set(rect=(0, (0.2 * lines + 0.1) / height_in, 1, 1 - (0.2 * lines + 0.1) / height_in))
    if notes:
        shown = note_lines(notes)
        more = f" (+{len(shown) - MAX_NOTES} more)" if len(shown) > MAX_NOTES else ""
        line += ("\nnot drawable on a log axis, marked at the edge (▼ 0, ✕ NaN, ▲ inf): "
                 + "; ".join(shown[:MAX_NOTES]) + more)
    fig.text(0.005, 0.002, line, fontsize=9, color="0.3", ha="left", va="bottom", wrap=True, gid="footnote")


def footnote_text(report: RunReport) -> str:
    sc = report.scenario
    return f"{sc['seeds']} seeds · {sc['dtype']} · seed {sc['seed']} · gradscope {report.version}"


# ---------------------------------------------------------------- run


def _layers(report: RunReport) -> list[int]:
    return [lay.layer for lay in report.layers]


def flow_panel(ax: Any, report: RunReport, notes: list[Note]) -> None:
    """Gradient ratio ‖∂L/∂W_l‖/‖∂L/∂W_L‖ per layer: seeds faint, q10–q90 band, median, mean-field dashed,
    vanishing/exploding regions shaded, points coloured by status."""
    xs = _layers(report)
    seeds = report.scenario["seeds"]
    diag = report.scenario.get("diagnostics", {})
    van, exp = diag.get("vanishing_ratio", 1e-2), diag.get("exploding_ratio", 1e2)
    key = "gradient_ratio"
    all_y: list[float] = []
    for s in range(seeds):
        ys = [float(report.per_seed[f"{key}{lay}"][s]) if f"{key}{lay}" in report.per_seed else None for lay in xs]
        y = log_values(ax, xs, ys, what=f"seed {s} gradient ratio", notes=notes, color="0.6")
        ax.plot(xs, y, color="0.55", alpha=0.25, linewidth=0.8, gid="seed", label="each seed" if s == 0 else None)
        all_y += [v for v in ys if v is not None]
    q10 = [lay.stats[key].q10 for lay in report.layers]
    q90 = [lay.stats[key].q90 for lay in report.layers]
    lo = log_values(ax, xs, q10, what="gradient ratio q10", notes=notes)
    hi = log_values(ax, xs, q90, what="gradient ratio q90", notes=notes)
    ax.fill_between(xs, lo, hi, color="#1f77b4", alpha=0.18, linewidth=0, label="q10–q90 over seeds", gid="band")
    med = [lay.median(key) for lay in report.layers]
    ym = log_values(ax, xs, med, what="gradient ratio median", notes=notes)
    ax.plot(xs, ym, color="black", linewidth=2, label="median", gid="median")
    for x, y, lay in zip(xs, ym, report.layers, strict=True):
        if math.isfinite(y):
            ax.plot([x], [y], "o", color=STATUS_COLOR.get(lay.status, "black"), markersize=8,
                    markeredgecolor="black", zorder=4, gid=f"status-{lay.status}")
    delta = [lay.median("delta_ratio") for lay in report.layers]
    yd = log_values(ax, xs, delta, what="δ ratio median", notes=notes, color="0.3")
    ax.plot(xs, yd, linestyle="-.", color="0.35", linewidth=1.3, label="δ ratio ‖δ_l‖/‖δ_L‖ (median)", gid="delta")
    pred = [lay.predicted_gradient_ratio for lay in report.layers]
    if any(p is not None for p in pred):
        yp = np.array([p if _finite_positive(p) else np.nan for p in pred], dtype=float)
        ax.plot(xs, yp, linestyle="--", color="#9467bd", linewidth=2, label="mean-field prediction", gid="predicted")
    _limits(ax, all_y + [v for v in med + q10 + q90 + delta if v is not None], [van, exp])
    bottom, top = ax.get_ylim()
    ax.axhspan(bottom, van, color=STATUS_COLOR["vanishing"], alpha=0.08, zorder=0, gid="vanishing-region")
    ax.axhspan(exp, top, color=STATUS_COLOR["exploding"], alpha=0.08, zorder=0, gid="exploding-region")
    ax.axhline(van, color=STATUS_COLOR["vanishing"], linewidth=1, linestyle=":")
    ax.axhline(exp, color=STATUS_COLOR["exploding"], linewidth=1, linestyle=":")
    ax.text(0.99, 0.01, f"vanishing < {van:g}", transform=ax.transAxes, ha="right", va="bottom", fontsize=9,
            color=STATUS_COLOR["vanishing"])
    ax.text(0.99, 0.99, f"exploding > {exp:g}", transform=ax.transAxes, ha="right", va="top", fontsize=9,
            color=STATUS_COLOR["exploding"])
    ax.set_ylim(bottom, top)
    ax.set_xlabel("layer l (1 = input side, L = output)")
    ax.set_ylabel("gradient ratio ‖∂L/∂W_l‖ / ‖∂L/∂W_L‖")
    ax.set_title("gradient flow (dots: layer status)")
    ax.set_xticks(_ticks(xs))
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 0.06), framealpha=0.85)


def _ticks(xs: Sequence[int], most: int = 12) -> list[int]:
    step = max(1, math.ceil(len(xs) / most))
    ticks = list(xs[::step])
    if xs and ticks[-1] != xs[-1]:
        ticks.append(xs[-1])
    return ticks


def distribution_panel(ax: Any, report: RunReport, notes: list[Note]) -> None:
    """|∂L/∂W| entries per layer as boxes on a log axis, from the report's quantiles (pooled over seeds)."""
    xs = _layers(report)
    qs = [lay.grad_quantiles for lay in report.layers]
    values = [v for q in qs for v in q.values()]
    positive = [v for v in values if _finite_positive(v)]
    floor = min(positive) / 10 if positive else 1e-12
    stats = []
    for x, q in zip(xs, qs, strict=True):
        row = {}
        for key in ("q01", "q25", "q50", "q75", "q99"):
            v = q.get(key)
            if not _finite_positive(v):
                log_values(ax, [x], [v], what=f"|∂L/∂W| {key}", notes=notes)
                v = floor
            row[key] = v
        stats.append({"label": str(x), "whislo": row["q01"], "q1": row["q25"], "med": row["q50"],
                      "q3": row["q75"], "whishi": row["q99"], "fliers": []})
    ax.set_yscale("log")
    art = ax.bxp(stats, positions=xs, widths=0.6, patch_artist=True, showfliers=False)
    for box, lay in zip(art["boxes"], report.layers, strict=True):
        box.set_facecolor(STATUS_COLOR.get(lay.status, "white"))
        box.set_alpha(0.55)
    for line, x in zip(art["medians"], xs, strict=True):
        line.set_color("black")
        line.set_gid(f"dist-median-{x}")
    for x, q in zip(xs, qs, strict=True):
        for key, marker in (("q10", "_"), ("q90", "_")):
            v = q.get(key)
            if _finite_positive(v):
                ax.plot([x], [v], marker=marker, color="black", markersize=10, linestyle="none", gid=f"dist-{key}")
    if not positive:
        ax.set_ylim(0.1, 10)
    ax.set_xticks(_ticks(xs))
    ax.set_xticklabels([str(t) for t in _ticks(xs)])
    ax.set_xlabel("layer l")
    ax.set_ylabel("|∂L/∂W| entries")
    ax.set_title("gradient entries: box q25–q75, whiskers q01–q99, ‒ q10/q90", fontsize=11)


def forward_panel(ax: Any, report: RunReport, notes: list[Note]) -> None:
    """Pre-activation std per layer (median, q10–q90) on a log axis; saturated and dead fractions on a twin axis."""
    xs = _layers(report)
    med = [lay.median("preact_std") for lay in report.layers]
    q10 = [lay.stats["preact_std"].q10 for lay in report.layers]
    q90 = [lay.stats["preact_std"].q90 for lay in report.layers]
    lo = log_values(ax, xs, q10, what="z std q10", notes=notes)
    hi = log_values(ax, xs, q90, what="z std q90", notes=notes)
    ax.fill_between(xs, lo, hi, color="#ff7f0e", alpha=0.2, linewidth=0)
    ym = log_values(ax, xs, med, what="z std median", notes=notes, color="#ff7f0e")
    ax.plot(xs, ym, color="#ff7f0e", linewidth=2, marker="o", label="pre-activation std (z_l)", gid="preact-std")
    _limits(ax, [v for v in med + q10 + q90 if v is not None], pad=1.5)
    ax.set_xlabel("layer l")
    ax.set_ylabel("std of z_l (median over seeds)")
    ax.set_xticks(_ticks(xs))
    frac = ax.twinx()
    sat = [lay.median("saturation") or 0.0 for lay in report.layers]
    dead = [lay.median("dead_fraction") or 0.0 for lay in report.layers]
    w = 0.38
    frac.bar([x - w / 2 for x in xs], sat, width=w, color=STATUS_COLOR["saturated"], alpha=0.6, label="saturated",
             gid="saturation")
    frac.bar([x + w / 2 for x in xs], dead, width=w, color=STATUS_COLOR["dead"], alpha=0.6, label="dead",
             gid="dead")
    _twin_axis(ax, frac, (0, 1), "fraction saturated / dead", "upper right")
    ax.set_title("forward signal")


def _twin_axis(ax: Any, twin: Any, ylim: tuple[float, float], ylabel: str, loc: str) -> None:
    """Finish a fraction axis twinned on `ax`: limits, label, no second grid, one legend for both axes."""
    twin.set_ylim(*ylim)
    twin.set_ylabel(ylabel)
    twin.grid(False)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = twin.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc=loc, framealpha=0.85)


def run_figure(report: RunReport) -> Any:
    """The run figure: gradient flow (left), entry distribution and forward signal (right); with a
    Jacobian analysis, its singular-value histogram in a third column."""
    jac = report.jacobian is not None
    with _style():
        fig = _new_figure(19 if jac else 13, 7.2)
        grid = fig.add_gridspec(2, 3 if jac else 2, width_ratios=[1.25, 1, 1] if jac else [1.25, 1])
        ax_flow = fig.add_subplot(grid[:, 0])
        ax_dist = fig.add_subplot(grid[0, 1])
        ax_fwd = fig.add_subplot(grid[1, 1])
        notes: list[Note] = []
        flow_panel(ax_flow, report, notes)
        distribution_panel(ax_dist, report, notes)
        forward_panel(ax_fwd, report, notes)
        if jac:
            jacobian_panel(fig.add_subplot(grid[:, 2]), [report], [report.label or report.scenario["name"]])
        fig.suptitle(_title(report), fontweight="bold")
        _footnote(fig, footnote_text(report) + f" · verdict {report.summary.verdict}", notes)
    return fig


def jacobian_panel(ax: Any, reports: Sequence[RunReport], labels: Sequence[str]) -> None:
    """Histogram of log₁₀ σ of J per variant (step outlines), with the references of linear nets of the
    same sizes (jacobian.reference_spectra: i.i.d. Gaussian σ_w² = 1, orthogonal); σ = 0 counted in the legend."""
    from .jacobian import reference_spectra

    logs, zeros = [], []
    for r in reports:
        sv = np.asarray(r.jacobian.sv, dtype=float).ravel()
        sv = sv[np.isfinite(sv)]
        logs.append(np.log10(sv[sv > 0]))
        zeros.append(int((sv == 0).sum()))
    j0 = reports[0].jacobian.summary
    net = reports[0].scenario["network"]
    path = [net["input_dim"], *net["widths"], net["output_dim"]][: int(j0["layer"]) + 1]
    refs = reference_spectra(path) or {}
    allv = np.concatenate([v for v in logs if v.size] + [np.log10(v[v > 0].ravel()) for v in refs.values()]
                          or [np.zeros(1)])
    lo, hi = float(np.floor(allv.min() * 4) / 4), float(np.ceil(allv.max() * 4) / 4 + 0.25)
    bins = np.linspace(lo, hi, max(8, min(60, int((hi - lo) * 8) + 1)))
    for i, (lab, v, z, r) in enumerate(zip(labels, logs, zeros, reports, strict=True)):
        color = VARIANT_COLORS[i % len(VARIANT_COLORS)]
        extra = f", {z} zero" if z else ""
        ax.hist(v, bins=bins, density=True, histtype="step", linewidth=2, color=color,
                label=f"{lab}: {r.jacobian.verdict}{extra}", gid=f"jacobian-{lab}")
    styles = {"gaussian": ("linear Gaussian σ_w²=1 (reference)", "0.45", "--"),
              "orthogonal": ("linear orthogonal (reference)", "0.2", ":")}
    for name, sv in refs.items():
        text, color, ls = styles[name]
        v = sv.ravel()
        ax.hist(np.log10(v[v > 0]), bins=bins, density=True, histtype="step", linewidth=1.5, color=color,
                linestyle=ls, label=text, gid=f"jacobian-ref-{name}")
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel("log₁₀ σ (singular values of J, all seeds and samples)")
    ax.set_ylabel("density")
    wrt = "a" if j0["at"] == "last_hidden" else "z"
    ax.set_title(f"spectrum of J = ∂{wrt}_{j0['layer']}/∂x" + ("" if refs else " (references: net too large)"))
    ax.legend(loc="upper left", framealpha=0.85)


def _title(report: RunReport) -> str:
    sc = report.scenario
    net = sc["network"]
    acts = net.get("activation")
    if acts is None:  # explicit network.layers: the dense rows' activations, as the terminal header lists them
        acts = sorted({lay.activation for lay in report.layers[:-1] if lay.kind == "dense"})
        acts = "/".join(acts) if len(acts) <= 3 else "mixed"
    act = acts if isinstance(acts, str) else "mixed"
    init = net["init"] if isinstance(net["init"], str) else net["init"].get("scheme", "")
    loss = sc["loss"] if isinstance(sc["loss"], str) else sc["loss"]["name"]
    label = f" [{report.label}]" if report.label else ""
    return f"{sc['name']}{label} — {len(report.layers)} layers, {act}, {init}, {loss}"


# ---------------------------------------------------------------- training


def training_panels(fig: Any, grid: Any, report: RunReport, notes: list[Note]) -> list[Any]:
    """Per-layer median ‖∂L/∂W‖ over steps (colour by depth), loss and accuracy on their own axes."""
    import matplotlib

    hist = list(report.history or ())
    steps = [h.step for h in hist]
    ax_g = fig.add_subplot(grid[:, 0])
    n = len(hist[0].layers)
    cmap = matplotlib.colormaps["viridis"]
    values: list[float] = []
    for i in range(n):
        ys = [h.layers[i].median("weight_grad_norm") for h in hist]
        color = cmap(i / max(1, n - 1))
        y = log_values(ax_g, steps, ys, what=f"layer {i + 1} ‖∂L/∂W‖", xname="step", notes=notes, color=color)
        ax_g.plot(steps, y, color=color, linewidth=2, label=f"layer {i + 1}", gid=f"train-layer-{i + 1}")
        values += [v for v in ys if v is not None]
    _limits(ax_g, values)
    ax_g.set_xlabel("training step")
    ax_g.set_ylabel("‖∂L/∂W_l‖ (median over seeds)")
    ax_g.set_title("per-layer gradient norm during training")
    ax_g.legend(loc="best", ncol=2 if n > 6 else 1, title="dark = input side", framealpha=0.85)
    ax_l = fig.add_subplot(grid[0, 1])
    for key, label, style in (("train_loss", "training loss", "-"), ("holdout_loss", "held-out loss", "--")):
        ys = [getattr(h, key).median for h in hist]
        y = log_values(ax_l, steps, ys, what=label, xname="step", notes=notes)
        ax_l.plot(steps, y, linestyle=style, linewidth=2, label=label, gid=key)
    _limits(ax_l, [m for h in hist for m in (h.train_loss.median, h.holdout_loss.median) if m is not None],
            pad=1.5)
    ax_l.set_xlabel("training step")
    ax_l.set_ylabel("loss L (median over seeds)")
    ax_l.set_title("loss")
    ax_l.legend(loc="best", framealpha=0.85)
    ax_a = fig.add_subplot(grid[1, 1])
    if hist[0].holdout_accuracy is not None:
        acc = [a.median if (a := h.holdout_accuracy) else None for h in hist]
        ax_a.plot(steps, [np.nan if a is None else a for a in acc], linewidth=2, color="#2ca02c",
                  label="held-out accuracy", gid="holdout_accuracy")
        ax_a.axhline(0.9, color="0.5", linestyle=":", linewidth=1, label="90%")
        ax_a.set_ylim(0, 1.02)
        ax_a.legend(loc="lower right", framealpha=0.85)
    else:
        ax_a.text(0.5, 0.5, "regression scenario: no accuracy", ha="center", va="center", transform=ax_a.transAxes)
    ax_a.set_xlabel("training step")
    ax_a.set_ylabel("accuracy (median over seeds)")
    ax_a.set_title("held-out accuracy")
    return [ax_g, ax_l, ax_a]


def training_figure(report: RunReport) -> Any:
    """The training figure of a run with a train: block."""
    if not report.history:
        raise GradscopeError("this report has no training history to plot")
    tr = report.training or {}
    with _style():
        fig = _new_figure(13, 7.2)
        grid = fig.add_gridspec(2, 2, width_ratios=[1.3, 1])
        notes: list[Note] = []
        training_panels(fig, grid, report, notes)
        fig.suptitle(f"{_title(report)} — {tr.get('steps')} steps of {tr.get('optimizer')}, lr {tr.get('lr')}",
                     fontweight="bold")
        _footnote(fig, footnote_text(report), notes)
    return fig


def report_figure(report: RunReport) -> Any:
    """What `run --plot` draws: the training figure for a training run, else the run figure."""
    return training_figure(report) if report.history else run_figure(report)


# ---------------------------------------------------------------- compare


VARIANT_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def curve_panel(ax: Any, cmp: Any, notes: list[Note]) -> None:
    """|∂L/∂z_true| against p (logit axis) per loss, the derivations' closed forms as markers."""
    from .compare import closed_form

    ps = [row["p"] for row in cmp.curve]
    for i, (lab, sc_report) in enumerate(zip(cmp.labels, cmp.reports, strict=True)):
        color = VARIANT_COLORS[i % len(VARIANT_COLORS)]
        g = [abs(row[lab]["grad_true_logit"]) if row[lab]["grad_true_logit"] is not None else None for row in cmp.curve]
        y = log_values(ax, ps, g, what=f"{lab} |∂L/∂z_true|", xname="p =", notes=notes, color=color)
        ax.plot(ps, y, color=color, linewidth=2.2, label=f"{lab}", gid=f"curve-{lab}")
        from .scenario import load_scenario

        sc = load_scenario(sc_report.scenario)
        closed = [closed_form(sc, p) for p in ps]
        if all(c is not None for c in closed):
            ax.plot(ps, [abs(c) for c in closed], linestyle="none", marker="o", markersize=7, markerfacecolor="none",
                    markeredgecolor=color, markeredgewidth=1.5, label=f"{lab} closed form", gid=f"closed-{lab}")
    ax.set_xscale("logit")
    ax.set_yscale("log")
    ax.set_xlabel("predicted probability p of the true class (logit axis)")
    ax.set_ylabel("|∂L/∂z_true| at the output logit")
    ax.set_title("output layer: gradient vs confidence")
    ax.legend(loc="lower left", framealpha=0.85)


def variants_panel(ax: Any, cmp: Any, notes: list[Note]) -> None:
    """Each variant's median ‖∂L/∂W_l‖ per layer with its q10–q90 band, status-coloured points, one axis."""
    values: list[float] = []
    for i, (lab, r) in enumerate(zip(cmp.labels, cmp.reports, strict=True)):
        color = VARIANT_COLORS[i % len(VARIANT_COLORS)]
        xs = _layers(r)
        med = [lay.median("weight_grad_norm") for lay in r.layers]
        q10 = [lay.stats["weight_grad_norm"].q10 for lay in r.layers]
        q90 = [lay.stats["weight_grad_norm"].q90 for lay in r.layers]
        lo = log_values(ax, xs, q10, what=f"{lab} ‖∂L/∂W‖ q10", notes=notes, color=color)
        hi = log_values(ax, xs, q90, what=f"{lab} ‖∂L/∂W‖ q90", notes=notes, color=color)
        ax.fill_between(xs, lo, hi, color=color, alpha=0.15, linewidth=0)
        y = log_values(ax, xs, med, what=f"{lab} ‖∂L/∂W‖ median", notes=notes, color=color)
        ax.plot(xs, y, color=color, linewidth=2.2, label=f"{lab} ({r.summary.verdict})", gid=f"variant-{lab}")
        for x, v, lay in zip(xs, y, r.layers, strict=True):
            if math.isfinite(v):
                ax.plot([x], [v], "o", color=STATUS_COLOR.get(lay.status, "black"), markersize=6,
                        markeredgecolor=color, zorder=4)
        values += [v for v in med + q10 + q90 if v is not None]
    _limits(ax, values)
    xs_all = sorted({lay.layer for r in cmp.reports for lay in r.layers})
    ax.set_xticks(_ticks(xs_all))
    ax.set_xlabel("layer l (1 = input side, L = output)")
    ax.set_ylabel("‖∂L/∂W_l‖ (median, band q10–q90)")
    ax.set_title("per-layer gradients of each variant (dots: layer status)")
    ax.legend(loc="best", framealpha=0.85)


def race_panel(ax: Any, race: dict[str, Any], labels: Sequence[str], notes: list[Note]) -> None:
    """Held-out loss per recorded step per variant (log axis)."""
    values: list[float] = []
    for i, lab in enumerate(labels):
        v = race["variants"][lab]
        color = VARIANT_COLORS[i % len(VARIANT_COLORS)]
        y = log_values(ax, v["steps"], v["holdout_loss"], what=f"{lab} held-out loss", xname="step", notes=notes,
                       color=color)
        ax.plot(v["steps"], y, color=color, linewidth=2, label=f"{lab} held-out loss", gid=f"race-loss-{lab}")
        values += [x for x in v["holdout_loss"] if x is not None]
    _limits(ax, values, pad=1.5)
    ax.set_xlabel("training step")
    ax.set_ylabel("held-out loss (median over seeds)")
    title = "training race"
    if race.get("leader"):
        title += f" — leader: {race['leader']}"
    ax.set_title(title)
    acc = ax.twinx()
    for i, lab in enumerate(labels):
        v = race["variants"][lab]
        if any(a is not None for a in v["holdout_accuracy"]):
            acc.plot(v["steps"], [np.nan if a is None else a for a in v["holdout_accuracy"]], linestyle="--",
                     color=VARIANT_COLORS[i % len(VARIANT_COLORS)], linewidth=1.5, label=f"{lab} accuracy",
                     gid=f"race-acc-{lab}")
    _twin_axis(ax, acc, (0, 1.02), "held-out accuracy (dashed)", "center right")


def compare_figure(cmp: Any) -> Any:
    """The compare figure: the output-layer curve (losses), the variants' per-layer lines, the race."""
    panels = (["curve"] if cmp.curve is not None else []) + ["variants"] + (["race"] if cmp.race else []) \
        + (["jacobian"] if all(r.jacobian is not None for r in cmp.reports) else [])
    with _style():
        fig = _new_figure(6.5 * len(panels), 6.2)
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        notes: list[Note] = []
        for ax, kind in zip(axes, panels, strict=True):
            if kind == "curve":
                curve_panel(ax, cmp, notes)
            elif kind == "variants":
                variants_panel(ax, cmp, notes)
            elif kind == "jacobian":
                jacobian_panel(ax, cmp.reports, cmp.labels)
            else:
                race_panel(ax, cmp.race, cmp.labels, notes)
        name = cmp.reports[0].scenario["name"].split("[")[0]
        fig.suptitle(f"compare {cmp.axis}: {' vs '.join(cmp.labels)} — {name}", fontweight="bold")
        _footnote(fig, footnote_text(cmp.reports[0]), notes)
    return fig


# ---------------------------------------------------------------- check


def check_grid_figure(reports: Sequence[RunReport], results: Sequence[Any]) -> Any:
    """One small gradient-flow panel per checked scenario, titled PASS/FAIL, name and verdict."""
    n = len(reports)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    with _style():
        fig = _new_figure(5.2 * cols, 3.9 * rows + 0.5)
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        notes: list[Note] = []
        for ax, report, result in zip(axes, reports, results, strict=False):
            flow_panel(ax, report, notes)
            ax.get_legend().remove()
            ax.set_title(f"{'PASS' if result.passed else 'FAIL'}  {report.scenario['name']} ({report.summary.verdict})",
                         color="#2ca02c" if result.passed else "#d62728", fontsize=11, fontweight="bold")
            ax.set_xlabel("layer l")
            ax.set_ylabel("‖∂L/∂W_l‖ / ‖∂L/∂W_L‖")
        for ax in axes[n:]:
            ax.set_axis_off()
        passed = sum(r.passed for r in results)
        fig.suptitle(f"gradscope check: {passed} passed, {n - passed} failed", fontweight="bold")
        versions = {r.version for r in reports}
        _footnote(fig, f"seeds: {', '.join(str(r.scenario['seeds']) for r in reports)} · dtype: "
                       f"{', '.join(sorted({r.scenario['dtype'] for r in reports}))} · gradscope "
                       f"{', '.join(sorted(versions))} · black line median, band q10–q90, dashed mean-field", notes)
    return fig


def check_page_figures(reports: Sequence[RunReport], results: Sequence[Any]) -> list[Any]:
    """One run figure per scenario (for a multi-page PDF), its title prefixed by PASS/FAIL."""
    figs = []
    for report, result in zip(reports, results, strict=True):
        fig = run_figure(report)
        fig.suptitle(f"{'PASS' if result.passed else 'FAIL'} {result.source}: {_title(report)}", fontweight="bold",
                     color="#2ca02c" if result.passed else "#d62728")
        figs.append(fig)
    return figs


def save_check(reports: Sequence[RunReport], results: Sequence[Any], path: Path) -> None:
    """PDF: one page per scenario; PNG/SVG: a grid of one panel per scenario."""
    if Path(path).suffix.lower() == ".pdf":
        save_pages(check_page_figures(reports, results), path)
    else:
        save(check_grid_figure(reports, results), path)
