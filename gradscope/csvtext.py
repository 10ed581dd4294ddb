"""CSV text of run reports (`--format csv`), without rich: a command that prints CSV does not import the
table renderer (render.py re-exports these beside the other formats)."""

from __future__ import annotations

import csv
import io
from typing import Any

from .report import RunReport

CSV_STATS = ("weight_grad_norm", "bias_grad_norm", "delta_norm", "gradient_ratio", "delta_ratio", "backward_gain",
             "grad_weight_ratio", "update_ratio", "preact_mean", "preact_std", "act_mean", "act_std", "saturation",
             "dead_fraction", "mean_abs_grad", "max_abs_grad")


def _structured_rows(report: RunReport) -> bool:
    """Rows other than plain dense layers (norms, projections, layers inside residual blocks)."""
    return any(lay.kind != "dense" or lay.block is not None for lay in report.layers)


def run_csv_rows(report: RunReport, structured: bool | None = None) -> tuple[list[str], list[list[Any]]]:
    """One row per report row; networks with norm/projection rows or residual blocks (or `structured`) get the
    JSON's `kind` and `block` columns after `layer` (a plain MLP's CSV is unchanged)."""
    structured = _structured_rows(report) if structured is None else structured
    head = ["label", "layer", *(["kind", "block"] if structured else []), "fan_in", "fan_out", "activation",
            "status"]
    for k in CSV_STATS:
        head += [f"{k}_median", f"{k}_q10", f"{k}_q90"]
    head += ["predicted_gradient_ratio", "predicted_delta_ratio"]
    rows = []
    for lay in report.layers:
        kind = [lay.kind, "" if lay.block is None else lay.block] if structured else []
        row: list[Any] = [report.label or report.scenario["name"], lay.layer, *kind, lay.fan_in, lay.fan_out,
                          lay.activation, lay.status]
        for k in CSV_STATS:
            s = lay.stats[k]
            row += [_csv(s.median), _csv(s.q10), _csv(s.q90)]
        row += [_csv(lay.predicted_gradient_ratio), _csv(lay.predicted_delta_ratio)]
        rows.append(row)
    return head, rows


def _csv(x: float | None) -> str:
    return "" if x is None else repr(float(x))


def csv_text(head: list[str], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(head)
    w.writerows(rows)
    return buf.getvalue()


def run_csv(report: RunReport) -> str:
    return csv_text(*run_csv_rows(report))
