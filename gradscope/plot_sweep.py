"""`gradscope sweep --plot`: the measured phase diagram (2-D: the cell metric as a colour map, verdicts marked,
the measured boundary and its prediction drawn) or a curve (1-D). Draws what the SweepReport holds."""

from __future__ import annotations

import math
from typing import Any

from .plot import _new_figure, _style
from .render import STATUS_STYLE
from .render_sweep import cell_metric, value_text
from .sweep import SweepReport, metric_pair, point_id

VERDICT_COLOUR = {"healthy": "tab:green", "vanishing": "tab:blue", "exploding": "tab:red", "saturated": "tab:olive",
                  "dead": "tab:gray", "overflow": "tab:purple"}
assert set(VERDICT_COLOUR) == set(STATUS_STYLE)


def _footnote(fig: Any, report: SweepReport) -> None:
    sc = report.scenario
    fig.get_layout_engine().set(rect=(0, 0.05, 1, 0.95))
    fig.text(0.005, 0.005, f"{len(report.records)} points · {sc['seeds']} seeds each · {sc['dtype']} · seed "
             f"{sc['seed']} · gradscope {report.version}", fontsize=8, color="0.3", ha="left", va="bottom")


def sweep_figure(report: SweepReport) -> Any:
    """One figure: a 2-D heat map (first axis across, second up; further axes at their first value) or a 1-D
    curve of the cell metric, measured and predicted."""
    with _style():
        fig = _new_figure(8.0, 5.5)
        ax = fig.add_subplot(1, 1, 1)
        metric = cell_metric(report)
        first = report.axes[0]
        by_id = {point_id(r["point"]): r for r in report.records}
        rest = {a.key: a.values[0] for a in report.axes[1:]}
        xs = list(range(len(first.values))) if not first.numeric else [float(v) for v in first.values]
        if len(report.axes) == 1:
            meas = [metric_pair(by_id[point_id({first.key: v})], metric) for v in first.values]
            ax.plot(xs, [m if m is not None else math.nan for m, _ in meas], "o-", color="k", label="measured")
            if any(p is not None for _, p in meas):
                ax.plot(xs, [p if p is not None else math.nan for _, p in meas], "--", color="tab:orange",
                        label="mean-field")
            for x, v in zip(xs, first.values, strict=True):
                r = by_id[point_id({first.key: v})]
                m = metric_pair(r, metric)[0]
                if m is not None:
                    ax.plot([x], [m], "o", color=VERDICT_COLOUR.get(r["verdict"], "k"), ms=7)
            ax.set_xlabel(first.key)
            ax.set_ylabel(metric)
            if all(m is None or m > 0 for m, _ in meas):
                ax.set_yscale("log")
            ax.legend(loc="best", fontsize=8)
        else:
            second = report.axes[1]
            ys = list(range(len(second.values))) if not second.numeric else [float(v) for v in second.values]
            for yi, y in enumerate(second.values):
                for xi, x in enumerate(first.values):
                    p = {first.key: x, second.key: y, **{k: v for k, v in rest.items() if k != second.key}}
                    r = by_id.get(point_id({a.key: p[a.key] for a in report.axes}))
                    colour = "white" if r is None or r.get("error") else VERDICT_COLOUR.get(r["verdict"], "k")
                    ax.scatter([xs[xi]], [ys[yi]], s=260, marker="s", color=colour, alpha=0.55, linewidths=0)
                    if r is not None and not r.get("error"):
                        m = metric_pair(r, metric)[0]
                        ax.annotate("—" if m is None else f"{m:.3g}", (xs[xi], ys[yi]), ha="center", va="center",
                                    fontsize=6)
            for line, style, label in (("measured", "-", "measured boundary"),
                                       ("mean_field", "--", "mean-field critical σ_w²"),
                                       ("predicted", ":", "predicted on the grid")):
                pts = [(b[line], float(b["at"][second.key])) for b in report.boundary
                       if b.get(line) is not None and second.numeric and len(b["at"]) >= 1]
                if line == "predicted" and any(b.get("mean_field") is not None for b in report.boundary):
                    continue
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color="k", lw=1.6, label=label)
            ax.set_xlabel(first.key)
            ax.set_ylabel(second.key)
            if not first.numeric:
                ax.set_xticks(xs, [value_text(v) for v in first.values])
            if not second.numeric:
                ax.set_yticks(ys, [value_text(v) for v in second.values])
            if first.log:
                ax.set_xscale("log")
            if second.log:
                ax.set_yscale("log")
            for name, colour in VERDICT_COLOUR.items():
                ax.scatter([], [], s=60, marker="s", color=colour, alpha=0.55, label=name)
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        ax.set_title(f"{report.scenario['name']}: {metric}" + (
            f" (boundary {report.boundary_metric[0]} = {report.boundary_metric[1]:g})" if report.boundary_metric
            else ""))
        _footnote(fig, report)
    return fig
