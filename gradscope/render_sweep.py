"""Terminal views of a SweepReport: a heat map per 2-D slice (cells coloured by verdict, value printed), a table
for 1-D grids, one line per point (--quiet), the boundary table. Computes no statistic."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from .render import STATUS_STYLE, fmt
from .sweep import Axis, SweepReport, metric_pair, point_id


def value_text(v: Any) -> str:
    """A grid value as a label: numbers compactly (1.68, not 1.6800000000000002), names as they are."""
    if isinstance(v, float):
        return fmt(v, 4)
    if isinstance(v, dict | list):
        import json

        return json.dumps(v, separators=(",", ":"))
    return str(v)


def cell_metric(report: SweepReport) -> str:
    """What the cells print: the boundary's metric, else the gradient spread."""
    return report.boundary_metric[0] if report.boundary_metric is not None else "gradient_spread"


def point_line(record: Mapping[str, Any], metric: str = "backward_factor") -> Text:
    """One line per point: the grid values, verdict, pass/fail, the metric measured (predicted), findings."""
    t = Text()
    t.append(" ".join(f"{k}={value_text(v)}" for k, v in record["point"].items()))
    if record.get("error") is not None:
        t.append("  ERROR ", style="bold red")
        t.append(record["error"])
        return t
    verdict = record["verdict"]
    t.append("  ")
    t.append(f"{verdict:<9}", style=STATUS_STYLE.get(verdict, ""))
    t.append(" PASS" if record["passed"] else " FAIL", style="green" if record["passed"] else "red")
    measured, predicted = metric_pair(record, metric)
    t.append(f"  {metric} {fmt(measured)}")
    if predicted is not None:
        t.append(f" (predicted {fmt(predicted)})", style="dim")
    if record["findings"]:
        t.append("  " + ", ".join(record["findings"]), style="dim")
    return t


def _cell(record: Mapping[str, Any] | None, metric: str) -> Text:
    if record is None:
        return Text("·", style="dim")
    if record.get("error") is not None:
        return Text("ERR", style="bold white on red")
    measured, _ = metric_pair(record, metric)
    style = STATUS_STYLE.get(record["verdict"], "")
    return Text(fmt(measured), style=f"bold {style}" if record["passed"] else style)


def heat_map(report: SweepReport, fixed: Mapping[str, Any] | None = None, width: int = 160) -> Table:
    """Columns: the first axis; rows: the second; one table per value of the remaining axes (`fixed`)."""
    first, second = report.axes[0], report.axes[1]
    metric = cell_metric(report)
    by_id = {point_id(r["point"]): r for r in report.records}
    title = (f"{report.scenario['name']}: {metric} (measured), coloured by verdict; rows {second.key}, "
             f"columns {first.key}")
    if fixed:
        title += " · " + ", ".join(f"{k}={value_text(v)}" for k, v in fixed.items())
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False, padding=(0, 1))
    table.add_column(f"{_short(second.key)} ↓ {_short(first.key)} →", no_wrap=True, style="bold")
    for x in first.values:
        table.add_column(value_text(x), justify="right", no_wrap=True)
    for y in second.values:
        cells = []
        for x in first.values:
            p = {first.key: x, second.key: y, **(fixed or {})}
            p = {a.key: p[a.key] for a in report.axes}
            cells.append(_cell(by_id.get(point_id(p)), metric))
        table.add_row(value_text(y), *cells)
    return table


def _short(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def legend() -> Text:
    t = Text("verdicts: ")
    for name, style in STATUS_STYLE.items():
        t.append(name, style=style)
        t.append("  ")
    t.append("ERR", style="bold white on red")
    t.append(" could not run;  bold = the point passes its check")
    return t


def point_table(report: SweepReport) -> Table:
    """A 1-D grid: one row per point."""
    axis = report.axes[0]
    table = Table(title=f"{report.scenario['name']}: sweep over {axis.key}", title_justify="left", show_edge=False)
    table.add_column(axis.key, no_wrap=True, style="bold")
    for name in ("verdict", "check", "backward factor", "χ₁", "ξ measured", "ξ −1/ln χ₁", "layer-1 ratio",
                 "spread", "findings"):
        table.add_column(name, justify="left" if name in ("verdict", "check", "findings") else "right")
    for r in report.records:
        label = value_text(r["point"][axis.key])
        if r.get("error") is not None:
            table.add_row(label, Text("error", style="bold red"), "", Text(r["error"], style="red"))
            continue
        m, p = r["measured"], r["predicted"]
        table.add_row(label, Text(r["verdict"], style=STATUS_STYLE.get(r["verdict"], "")),
                      Text("pass", style="green") if r["passed"] else Text("fail", style="red"),
                      fmt(m["backward_factor"]), fmt(p["backward_factor"]), fmt(m["depth_scale"]),
                      fmt(p["depth_scale"]), fmt(m["first_layer_gradient_ratio"]), fmt(m["gradient_spread"]),
                      ", ".join(r["findings"]))
    return table


def boundary_table(report: SweepReport) -> Table | None:
    if report.boundary_metric is None or not report.boundary:
        return None
    metric, value = report.boundary_metric
    first = report.axes[0]
    mean_field = any("mean_field" in b for b in report.boundary)
    title = (f"measured boundary: where {metric} crosses {value:g} along {first.key}"
             + (" (log-interpolated)" if first.log else ""))
    table = Table(title=title, title_justify="left", show_edge=False)
    for a in report.axes[1:]:
        table.add_column(a.key, style="bold")
    table.add_column("measured", justify="right")
    table.add_column("predicted on the grid", justify="right")
    if mean_field:
        table.add_column("mean-field critical σ_w²", justify="right")
    table.add_column("measured vs " + ("mean-field" if mean_field else "predicted"), justify="right")
    notes = list(dict.fromkeys(b["note"] for b in report.boundary if b.get("note")))
    for b in report.boundary:
        measured = fmt(b["measured"], 4) if b["measured"] is not None else (
            f"none ({b.get('side')} {value:g})" if b.get("side") else "—")
        row = [value_text(v) for v in b["at"].values()]
        row += [measured, fmt(b["predicted"], 4)]
        if mean_field:
            row.append(fmt(b.get("mean_field"), 4))
        err = b["relative_error"]
        mark = "*" * (notes.index(b["note"]) + 1) if b.get("note") else ""
        row.append(("—" if err is None else f"{100 * err:+.1f}%") + mark)
        table.add_row(*row)
    if notes:
        table.caption = "\n".join(f"{'*' * (i + 1)} {n}" for i, n in enumerate(notes))
        table.caption_justify = "left"
    return table


def depth_scale_lines(report: SweepReport) -> Text | None:
    """ξ measured against −1/ln χ₁ on the ordered side: the median ratio over the points that have both."""
    pairs = [(r["measured"]["depth_scale"], r["predicted"]["depth_scale"]) for r in report.records
             if r.get("error") is None and r["measured"]["depth_scale"] and r["predicted"]["depth_scale"]]
    if not pairs:
        return None
    ratios = sorted(m / p for m, p in pairs)
    mid = ratios[len(ratios) // 2] if len(ratios) % 2 else 0.5 * (ratios[len(ratios) // 2 - 1]
                                                                    + ratios[len(ratios) // 2])
    return Text(f"depth scale ξ on the ordered side (measured from the decay of ‖δ_l‖ vs −1/ln χ₁): "
                f"{len(pairs)} points, measured/predicted median {fmt(mid)} (range {fmt(ratios[0])}–"
                f"{fmt(ratios[-1])})")


def summary_line(report: SweepReport) -> Text:
    n = len(report.records)
    t = Text(f"{n} points: {n - report.failed - report.errors} passed, {report.failed} failed, "
             f"{report.errors} could not run")
    if report.resumed:
        t.append(f" ({report.resumed} resumed from the results file)")
    return t


def sweep_renderable(report: SweepReport, *, quiet: bool = False, width: int = 160) -> Group:
    parts: list[Any] = []
    if not quiet:
        if len(report.axes) == 1:
            parts.append(point_table(report))
        else:
            rest: Sequence[Axis] = report.axes[2:]
            for combo in itertools.product(*[a.values for a in rest]):
                parts.append(heat_map(report, dict(zip([a.key for a in rest], combo, strict=True)), width))
                parts.append(Text(""))
            parts.append(legend())
    b = boundary_table(report)
    if b is not None:
        parts += [Text(""), b]
    xi = depth_scale_lines(report)
    if xi is not None and not quiet:
        parts.append(xi)
    parts.append(summary_line(report))
    return Group(*parts)
