"""`gradscope check`: a scenario's `expect:` block and the diagnostics, applied to its report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .render import fmt
from .report import RunReport


@dataclass(frozen=True)
class CheckResult:
    """One scenario's outcome: passed, and why not (one reason per failed expectation)."""

    source: str
    name: str
    passed: bool
    verdict: str
    reasons: tuple[str, ...] = ()
    expected: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "name": self.name, "passed": self.passed, "verdict": self.verdict,
                "reasons": list(self.reasons), "expected": self.expected}


TRAINING_EXPECT = ("min_accuracy", "max_accuracy", "max_final_loss", "max_steps_to_accuracy", "min_steps_to_accuracy")


def _bound(failures: list[str], what: str, value: float | None, lo: float | None, hi: float | None) -> None:
    if lo is None and hi is None:
        return
    if value is None:
        failures.append(f"{what} is not available (non-finite)")
        return
    if lo is not None and value < lo:
        failures.append(f"{what} {fmt(value)} < expected minimum {fmt(lo)}")
    if hi is not None and value > hi:
        failures.append(f"{what} {fmt(value)} > expected maximum {fmt(hi)}")


def evaluate(report: RunReport, expect: dict[str, Any] | None) -> list[str]:
    """Reasons the report fails its expectations; [] when it passes.

    Without `expect.verdict`, the diagnostics decide: the verdict must be healthy and no finding
    may have severity error.
    """
    failures: list[str] = []
    expect = expect or {}
    s = report.summary
    codes = [f.code for f in report.findings]
    if "verdict" in expect:
        if s.verdict not in expect["verdict"]:
            failures.append(f"verdict is {s.verdict}, expected {' or '.join(expect['verdict'])}")
    else:
        if s.verdict != "healthy":
            failures.append(f"verdict is {s.verdict}, expected healthy")
        errors = [f.code for f in report.findings if f.severity == "error"]
        if errors and s.verdict == "healthy":
            failures.append(f"error findings: {', '.join(errors)}")
    if s.verdict in expect.get("not_verdict", []):
        failures.append(f"verdict is {s.verdict}, which the scenario rules out")
    _bound(failures, "gradient spread", s.gradient_spread, expect.get("min_gradient_spread"),
           expect.get("max_gradient_spread"))
    for code in expect.get("findings", []):
        if code not in codes:
            failures.append(f"expected finding {code} was not reported")
    for code in expect.get("no_findings", []):
        if code in codes:
            failures.append(f"finding {code} was reported")
    L = len(report.layers)
    for bound in expect.get("layers", []):
        l = bound["layer"]
        idx = l - 1 if l > 0 else L + l
        if not 0 <= idx < L:
            failures.append(f"expect.layers: layer {l} does not exist (the network has {L} layers)")
            continue
        lay = report.layers[idx]
        name = f"layer {lay.layer}"
        if "status" in bound and lay.status != bound["status"]:
            failures.append(f"{name} status is {lay.status}, expected {bound['status']}")
        for stat, key in (("gradient_ratio", "gradient_ratio"), ("weight_grad_norm", "weight_grad_norm"),
                          ("saturation", "saturation"), ("dead_fraction", "dead_fraction")):
            _bound(failures, f"{name} {stat}", lay.median(key), bound.get(f"min_{stat}"), bound.get(f"max_{stat}"))
    tr = report.training
    train_keys = [k for k in TRAINING_EXPECT if k in expect]
    if train_keys:
        if tr is None:
            failures.append(f"{', '.join(train_keys)} need a train: block")
        else:
            _bound(failures, "final held-out accuracy", tr.get("final_accuracy"), expect.get("min_accuracy"),
                   expect.get("max_accuracy"))
            _bound(failures, "final held-out loss", tr.get("final_loss"), None, expect.get("max_final_loss"))
            reached = tr.get("steps_to_accuracy")
            by = expect.get("max_steps_to_accuracy")
            if by is not None and (reached is None or reached > by):
                when = f"at step {reached}" if reached is not None else "never"
                failures.append(f"90% held-out accuracy reached {when}, expected by step {by}")
            if "min_steps_to_accuracy" in expect and reached is not None and reached < expect["min_steps_to_accuracy"]:
                failures.append(f"90% held-out accuracy reached already at step {reached}, expected not before "
                                f"step {expect['min_steps_to_accuracy']}")
    return failures


def check_report(report: RunReport, source: str, expect: dict[str, Any] | None) -> CheckResult:
    reasons = evaluate(report, expect)
    return CheckResult(source=source, name=report.scenario["name"], passed=not reasons,
                       verdict=report.summary.verdict, reasons=tuple(reasons), expected=dict(expect or {}))
