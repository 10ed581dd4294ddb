"""Deterministic JSON text of reports (the `--format json` outputs), without rich: a command that prints
JSON does not import the table renderer (render.py re-exports these beside the other formats)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def to_json(obj: Any) -> str:
    """Deterministic JSON text (insertion order). NaN and ±Inf, which JSON cannot hold, are written as null."""
    return json.dumps(json_safe(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def json_safe(obj: Any) -> Any:
    """obj with every non-finite float (and NumPy scalar) replaced by a JSON value: NaN/±Inf -> None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.floating):
        return json_safe(float(obj))
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj
