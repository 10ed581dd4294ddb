"""`gradscope check`: a scenario's `expect:` block and the diagnostics, applied to its report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .report import RunReport


@dataclass(frozen=True)
class Failure:
    """One failed expectation: the `expect:` key it comes from (None: the diagnostics decided) and why."""

    key: tuple[str | int, ...] | None
    message: str

    @property
    def key_path(self) -> str:
        return ".".join(str(k) for k in self.key) if self.key else "diagnostics"


@dataclass(frozen=True)
class CheckResult:
    """One scenario's outcome: passed, and why not (one failure per failed expectation).

    `error` is set when the scenario could not run (bad file, memory limit): then it neither passed nor
    failed. `allowed` holds the (code, reason) of reported findings that `expect.allow` accepts, `notes`
    informational lines (an allow entry not reported, a baseline that is new or changed), `baseline` the
    baseline comparison's outcome (None without --baseline), `seconds` the wall time of the run.
    """

    source: str
    name: str
    passed: bool
    verdict: str | None
    failures: tuple[Failure, ...] = ()
    expected: dict[str, Any] = field(default_factory=dict)
    allowed: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()
    error: str | None = None
    error_line: int | None = None
    baseline: str | None = None
    seconds: float = 0.0

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(f.message for f in self.failures)

    @property
    def status(self) -> str:
        """pass | fail | error."""
        return "error" if self.error is not None else ("pass" if self.passed else "fail")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"source": self.source, "name": self.name, "passed": self.passed,
                             "verdict": self.verdict, "reasons": list(self.reasons), "expected": self.expected,
                             "failures": [{"key": f.key_path, "message": f.message} for f in self.failures],
                             "allowed": [{"code": c, "reason": r} for c, r in self.allowed],
                             "notes": list(self.notes)}
        if self.error is not None:
            d["error"] = self.error
        if self.baseline is not None:
            d["baseline"] = self.baseline
        return d


# a non-healthy layer status and the finding codes that report it (what `expect.allow` can accept)
STATUS_CODES = {"overflow": ("overflow",), "dead": ("dead-units",), "exploding": ("exploding-gradient",),
                "vanishing": ("vanishing-gradient",), "saturated": ("saturated-units", "saturated-output")}


TRAINING_EXPECT = ("min_accuracy", "max_accuracy", "max_final_loss", "max_steps_to_accuracy", "min_steps_to_accuracy")


def _fmt(x: float) -> str:
    """render.fmt, imported when a failure is written: a run whose expectations hold imports no rich."""
    from .render import fmt

    return fmt(x)


def _bound(failures: list[Failure], what: str, value: float | None, lo: float | None, hi: float | None,
           key: tuple[str | int, ...], suffix: str = "") -> None:
    """Append a failure when value is outside [lo, hi]; the key is expect's min_/max_<suffix> that failed."""
    if lo is None and hi is None:
        return
    lo_key, hi_key = (*key, f"min_{suffix}"), (*key, f"max_{suffix}")
    if value is None:
        failures.append(Failure(lo_key if lo is not None else hi_key, f"{what} is not available (non-finite)"))
        return
    if lo is not None and value < lo:
        failures.append(Failure(lo_key, f"{what} {_fmt(value)} < expected minimum {_fmt(lo)}"))
    if hi is not None and value > hi:
        failures.append(Failure(hi_key, f"{what} {_fmt(value)} > expected maximum {_fmt(hi)}"))


def _allowed_codes(report: RunReport, expect: dict[str, Any]) -> dict[str, str]:
    """{code: reason} of `expect.allow` (the first reason when a code is listed twice)."""
    out: dict[str, str] = {}
    for item in expect.get("allow", []):
        out.setdefault(item["code"], item["reason"])
    return out


def _uncovered_verdict(report: RunReport, allowed: dict[str, str]) -> str:
    """The verdict over the layers whose status is not reported by an allowed finding."""
    from .diagnostics import SEVERITY_ORDER

    covered = {(f.code, lay) for f in report.findings if f.code in allowed for lay in f.layers}
    worst = "healthy"
    for lay in report.layers:
        if lay.status == "healthy" or any((c, lay.layer) in covered for c in STATUS_CODES.get(lay.status, ())):
            continue
        if SEVERITY_ORDER[lay.status] > SEVERITY_ORDER[worst]:
            worst = lay.status
    return worst


def evaluate_failures(report: RunReport, expect: dict[str, Any] | None) -> list[Failure]:
    """The failed expectations of a report, each with its `expect:` key; [] when it passes.

    Without `expect.verdict`, the diagnostics decide: the verdict must be healthy and no finding may have
    severity error, except what `expect.allow` accepts (a layer whose status an allowed finding reports
    counts as healthy, an allowed error finding does not fail). A training run that diverged fails unless
    `expect.findings` lists or `expect.allow` accepts training-diverged.
    """
    failures: list[Failure] = []
    expect = expect or {}
    s = report.summary
    codes = [f.code for f in report.findings]
    allowed = _allowed_codes(report, expect)
    if "verdict" in expect:
        if s.verdict not in expect["verdict"]:
            failures.append(Failure(("expect", "verdict"),
                                    f"verdict is {s.verdict}, expected {' or '.join(expect['verdict'])}"))
    else:
        verdict = _uncovered_verdict(report, allowed)
        if verdict != "healthy":
            failures.append(Failure(None, f"verdict is {s.verdict}, expected healthy"))
        errors = [f.code for f in report.findings if f.severity == "error" and f.code not in allowed]
        if errors and verdict == "healthy":
            failures.append(Failure(None, f"error findings: {', '.join(errors)}"))
    if "jacobian_verdict" in expect:
        jv = report.jacobian.verdict if report.jacobian is not None else "not analysed"
        if jv not in expect["jacobian_verdict"]:
            failures.append(Failure(("expect", "jacobian_verdict"), f"Jacobian verdict is {jv}, expected "
                                    f"{' or '.join(expect['jacobian_verdict'])}"))
    if s.verdict in expect.get("not_verdict", []):
        failures.append(Failure(("expect", "not_verdict"), f"verdict is {s.verdict}, which the scenario rules out"))
    _bound(failures, "gradient spread", s.gradient_spread, expect.get("min_gradient_spread"),
           expect.get("max_gradient_spread"), ("expect",), "gradient_spread")
    for i, code in enumerate(expect.get("findings", [])):
        if code not in codes:
            failures.append(Failure(("expect", "findings", i), f"expected finding {code} was not reported"))
    if "training-diverged" in codes and "training-diverged" not in expect.get("findings", []) \
            and "training-diverged" not in allowed:
        failures.append(Failure(None, "training diverged (finding training-diverged)"))
    for i, code in enumerate(expect.get("no_findings", [])):
        if code in codes:
            failures.append(Failure(("expect", "no_findings", i), f"finding {code} was reported"))
    L = len(report.layers)
    for i, bound in enumerate(expect.get("layers", [])):
        l = bound["layer"]
        idx = l - 1 if l > 0 else L + l
        key: tuple[str | int, ...] = ("expect", "layers", i)
        if not 0 <= idx < L:
            failures.append(Failure((*key, "layer"),
                                    f"expect.layers: layer {l} does not exist (the network has {L} layers)"))
            continue
        lay = report.layers[idx]
        name = f"layer {lay.layer}"
        if "status" in bound and lay.status != bound["status"]:
            failures.append(Failure((*key, "status"), f"{name} status is {lay.status}, expected {bound['status']}"))
        for stat in ("gradient_ratio", "weight_grad_norm", "saturation", "dead_fraction"):
            _bound(failures, f"{name} {stat}", lay.median(stat), bound.get(f"min_{stat}"), bound.get(f"max_{stat}"),
                   key, stat)
    tr = report.training
    train_keys = [k for k in TRAINING_EXPECT if k in expect]
    if train_keys:
        if tr is None:
            failures.append(Failure(("expect", train_keys[0]), f"{', '.join(train_keys)} need a train: block"))
        else:
            key = ("expect",)
            _bound(failures, "final held-out accuracy", tr.get("final_accuracy"), expect.get("min_accuracy"),
                   expect.get("max_accuracy"), key, "accuracy")
            _bound(failures, "final held-out loss", tr.get("final_loss"), None, expect.get("max_final_loss"),
                   key, "final_loss")
            reached = tr.get("steps_to_accuracy")
            by = expect.get("max_steps_to_accuracy")
            if by is not None and (reached is None or reached > by):
                when = f"at step {reached}" if reached is not None else "never"
                failures.append(Failure(("expect", "max_steps_to_accuracy"),
                                        f"90% held-out accuracy reached {when}, expected by step {by}"))
            if "min_steps_to_accuracy" in expect and reached is not None and reached < expect["min_steps_to_accuracy"]:
                failures.append(Failure(("expect", "min_steps_to_accuracy"),
                                        f"90% held-out accuracy reached already at step {reached}, expected not "
                                        f"before step {expect['min_steps_to_accuracy']}"))
    return failures


def evaluate(report: RunReport, expect: dict[str, Any] | None) -> list[str]:
    """Reasons the report fails its expectations; [] when it passes (see `evaluate_failures`)."""
    return [f.message for f in evaluate_failures(report, expect)]


def check_report(report: RunReport, source: str, expect: dict[str, Any] | None, seconds: float = 0.0) -> CheckResult:
    failures = evaluate_failures(report, expect)
    allowed = _allowed_codes(report, expect or {})
    codes = {f.code for f in report.findings}
    notes = tuple(f"allow: {code} was not reported" for code in allowed if code not in codes)
    return CheckResult(source=source, name=report.scenario["name"], passed=not failures,
                       verdict=report.summary.verdict, failures=tuple(failures), expected=dict(expect or {}),
                       allowed=tuple((c, r) for c, r in allowed.items() if c in codes), notes=notes,
                       seconds=seconds)
