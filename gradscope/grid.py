"""Grid values and boundary metrics of `gradscope sweep`, parsed where the scenario loader can use them too
(the `sweep:` block): pure functions of their text, no runs."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from .errors import shown

MAX_AXIS_POINTS = 10_000

# What each record measures, and the mean-field prediction of the same quantity (None: no prediction).
MEASURES = {
    "backward_factor": "‖δ_l‖²/‖δ_{l+1}‖² over the layers at the fixed point q* (over all hidden layers when "
                       "none has reached it), median over seeds; predicted: χ₁",
    "backward_factor_all": "‖δ_l‖²/‖δ_{l+1}‖² over all hidden layers; predicted: the per-layer theory's mean",
    "depth_scale": "ξ from the decay of ‖δ_l‖ over the layers at q* (least squares of ln ‖δ_l‖²), ordered side "
                   "only; predicted: −1/ln χ₁",
    "first_layer_gradient_ratio": "‖∂L/∂W_1‖/‖∂L/∂W_L‖ (median); predicted: the mean-field gradient ratio",
    "gradient_spread": "max/min layer gradient norm (median over seeds); no prediction",
}
# bare names the boundary accepts for summary fields (summary.X or summary.theory.X)
SUMMARY_NAMES = ("gradient_spread", "mean_backward_gain", "chi1", "q_star", "overflow_seeds")
THEORY_NAMES = ("sigma_w2", "sigma_b2", "chi1", "q_star", "depth_scale_grad", "depth_scale_q", "critical_sigma_w2",
                "measured_backward_factor", "predicted_backward_factor", "measured_backward_factor_at_q_star")

@dataclass(frozen=True)
class Axis:
    """One grid key: its values in the given order; `log` for a log range (the boundary interpolates in log)."""

    key: str
    values: tuple[Any, ...]
    log: bool = False

    @property
    def numeric(self) -> bool:
        return all(isinstance(v, int | float) and not isinstance(v, bool) for v in self.values)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "values": list(self.values), "log": self.log}


_RANGE = re.compile(r"^\s*([^:]+):([^:]+):([^:]+?)(?::(log|lin))?\s*$")


def as_number(text: str) -> int | float:
    t = text.strip()
    if re.fullmatch(r"[+-]?\d+", t):
        return int(t)
    value = float(t)  # ValueError for a non-number
    if not math.isfinite(value):
        raise ValueError(t)
    return value


def _item(text: str) -> Any:
    """One list item of --grid: a YAML scalar; '1e-3' is a number (YAML 1.1 would read a string)."""
    import yaml

    t = text.strip()
    if not t:
        raise ValueError("an empty value in the list")
    try:
        return as_number(t)
    except ValueError:
        pass
    try:
        value = yaml.safe_load(t)
    except yaml.YAMLError:
        raise ValueError(f"{shown(t)} is not a valid YAML value") from None
    return value


def parse_values(spec: Any) -> tuple[tuple[Any, ...], bool]:
    """A grid key's values: ([v1, v2, ...], log). `spec` is a list, a number, or a string: 'a,b,c',
    'start:stop:n' (n evenly spaced points, ends included) or 'start:stop:n:log' (geometric). ValueError says
    what is wrong."""
    if isinstance(spec, list | tuple):
        values = tuple(spec)
        log = False
    elif isinstance(spec, bool) or spec is None:
        raise ValueError(f"expected a list of values or a range 'start:stop:n[:log]', got {shown(spec)}")
    elif isinstance(spec, int | float):
        values, log = (spec,), False
    elif isinstance(spec, str):
        m = _RANGE.match(spec)
        if m and not spec.strip().startswith("["):
            values, log = _range(spec, *m.groups())
        elif spec.strip().startswith("["):
            import yaml

            try:
                parsed = yaml.safe_load(spec)
            except yaml.YAMLError:
                raise ValueError(f"{shown(spec)} is not a valid YAML list") from None
            if not isinstance(parsed, list):
                raise ValueError(f"{shown(spec)} is not a list")
            values, log = tuple(parsed), False
        else:
            values, log = tuple(_item(t) for t in spec.split(",")), False
    else:
        raise ValueError(f"expected a list of values or a range 'start:stop:n[:log]', got {shown(spec)}")
    if not values:
        raise ValueError("no values: give at least one")
    if len(values) > MAX_AXIS_POINTS:
        raise ValueError(f"{len(values):,} values, over the limit of {MAX_AXIS_POINTS:,} per key")
    for v in values:
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"{v} is not a finite number")
    if len({canonical(v) for v in values}) != len(values):
        raise ValueError("a value is given twice")
    return values, log


def _range(spec: str, a: str, b: str, n: str, kind: str | None) -> tuple[tuple[Any, ...], bool]:
    import numpy as np

    try:
        start, stop = as_number(a), as_number(b)
    except ValueError:
        raise ValueError(f"{shown(spec)}: start and stop of a range must be numbers") from None
    try:
        count = int(n.strip())
    except ValueError:
        raise ValueError(f"{shown(spec)}: the number of points must be an integer, got {shown(n.strip())}") from None
    if count < 2:
        raise ValueError(f"{shown(spec)}: a range needs at least 2 points, got {count}")
    if count > MAX_AXIS_POINTS:
        raise ValueError(f"{shown(spec)}: {count:,} points, over the limit of {MAX_AXIS_POINTS:,} per key")
    if start == stop:
        raise ValueError(f"{shown(spec)}: start and stop are equal")
    if kind == "log":
        if start <= 0 or stop <= 0:
            raise ValueError(f"{shown(spec)}: a log range needs start and stop > 0")
        values = [float(x) for x in np.geomspace(float(start), float(stop), count)]
        values[0], values[-1] = float(start), float(stop)
        return tuple(values), True
    if isinstance(start, int) and isinstance(stop, int) and (stop - start) % (count - 1) == 0:
        step = (stop - start) // (count - 1)
        return tuple(start + i * step for i in range(count)), False
    values = [float(x) for x in np.linspace(float(start), float(stop), count)]
    return tuple(values), False


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)



def parse_boundary(text: str) -> tuple[str, float]:
    """'backward_factor=1' -> ('backward_factor', 1.0); the metric is checked by check_metric."""
    if not isinstance(text, str) or "=" not in text:
        raise ValueError(f"expected METRIC=VALUE, e.g. backward_factor=1, got {shown(text)}")
    metric, _, value = text.partition("=")
    metric = metric.strip()
    try:
        number = float(value.strip())
    except ValueError:
        raise ValueError(f"{shown(text)}: the value must be a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{shown(text)}: the value must be a finite number")
    check_metric(metric)
    return metric, number


def check_metric(metric: str) -> None:
    if metric in MEASURES or metric in SUMMARY_NAMES or metric in THEORY_NAMES:
        return
    if metric.startswith("summary.") and all(metric.split(".")):
        return
    raise ValueError(f"unknown metric {shown(metric)}; known: {', '.join(MEASURES)}, "
                     f"{', '.join(n for n in THEORY_NAMES if n not in SUMMARY_NAMES)}, "
                     f"{', '.join(SUMMARY_NAMES)}, or a path summary.X.Y of the run's JSON summary")
