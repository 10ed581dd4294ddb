"""One spec type for every value a scenario may hold: a scenario key (`seeds`, `network.dropout`, `train.lr`)
and a registry entry's parameter (`network.init.std`, `loss.label_smoothing`) alike.

A `Spec` carries the value's type, default, bounds, choices and help. The loader validates every spec'd value
with one function (`scenario._Validator.check`) and `gradscope schema` renders every spec with one function
(`schema.spec_schema`), so a bound, a default or a choice is declared once and enforced and documented the same
way wherever the value appears.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Every float parameter of a registry entry (and every number in a list parameter) is refused beyond this
# magnitude: its square (variances, gains², α²) must stay a finite float64 (max ≈ 1.8e308).
MAX_MAGNITUDE = 1e150

# The types a spec may have. Values: int | float | bool | str | list[float] | gain (a number ≥ 0, 'auto' or an
# activation name). Structure, validated by its caller: list[int] | list[str] | mapping | component | list[mapping].
VALUE_TYPES = ("int", "float", "bool", "str", "list[float]", "gain")
STRUCTURE_TYPES = ("list[int]", "list[str]", "mapping", "component", "list[mapping]")


@dataclass(frozen=True)
class Spec:
    """One value of a scenario: its type (see VALUE_TYPES / STRUCTURE_TYPES), default, bounds and a line of help.

    `magnitude`: numbers are refused beyond ±MAX_MAGNITUDE (registry parameters: their squares must stay
    finite); `range()` then narrows the declared bounds to it. `name` is the parameter's name in a registry
    entry's `params` (scenario keys are named by the table that holds them)."""

    type: str
    default: Any = None
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    exclusive_maximum: bool = False
    name: str = ""
    magnitude: bool = False

    def __post_init__(self) -> None:
        if self.type not in VALUE_TYPES + STRUCTURE_TYPES:
            raise ValueError(f"unknown spec type {self.type!r}")

    def range(self) -> tuple[float | None, float | None]:
        """The (minimum, maximum) validation enforces: the declared bounds, narrowed to ±MAX_MAGNITUDE for a
        spec with `magnitude` (a gain's numbers are ≥ 0 besides)."""
        lo, hi = self.minimum, self.maximum
        if self.type == "gain":
            lo = 0.0 if lo is None else max(lo, 0.0)
        if not self.magnitude:
            return lo, hi
        return (-MAX_MAGNITUDE if lo is None else max(lo, -MAX_MAGNITUDE),
                MAX_MAGNITUDE if hi is None else min(hi, MAX_MAGNITUDE))


# The Python types a registry parameter is declared with, as spec types.
_PY_TYPES: dict[type, str] = {int: "int", float: "float", bool: "bool", str: "str", list: "list[float]",
                              object: "gain"}


def Param(name: str, type: type | str, default: Any, help: str = "", **bounds: Any) -> Spec:  # noqa: N802
    """A registry entry's keyword parameter, e.g. `Param("std", float, 1.0, "standard deviation", minimum=0.0)`:
    a Spec named `name`, whose numbers (float, list items, a gain) are bounded by ±MAX_MAGNITUDE."""
    t = type if isinstance(type, str) else _PY_TYPES[type]
    return Spec(t, default, help, name=name, magnitude=t in ("float", "list[float]", "gain"), **bounds)

