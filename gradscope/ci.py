"""`gradscope check` in CI: one scenario per task, baselines, JUnit XML and GitHub Actions annotations."""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import urllib.parse
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import __version__
from .checks import CheckResult, Failure
from .errors import GradscopeError

BASELINE_FORMAT = "gradscope-baseline"
BASELINE_FORMAT_VERSION = 1
DEFAULT_TOLERANCE = 0.05
BASELINE_KEY = ("baseline",)  # the key of a drift failure; annotated on the `network:` line
# per-layer medians a baseline records and compares (relative, on a log scale)
BASELINE_NORMS = {"weight_grad_norm": "‖∂L/∂W‖", "bias_grad_norm": "‖∂L/∂b‖", "delta_norm": "‖δ‖"}


@dataclass(frozen=True)
class Outcome:
    """What a worker hands back: the check result and, when the scenario ran, its baseline record."""

    result: CheckResult
    record: dict[str, Any] | None
    report: Any = field(default=None, compare=False)   # the RunReport without its arrays, for --plot


def _key(source: str) -> str:
    """A scenario's key in a baseline: its path as given, normalized (POSIX separators, no ./)."""
    return Path(os.path.normpath(source)).as_posix()


def scenario_hash(scenario_dict: dict[str, Any]) -> str:
    """sha256 of the normalized scenario without what cannot change the numbers (name, description, expect)."""
    d = {k: v for k, v in scenario_dict.items() if k not in ("name", "description", "expect")}
    text = json.dumps(d, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def check_one(source: str, overrides: list[str], seed: int | None, seeds: int | None, max_memory: int,
              keep_report: bool = False) -> Outcome:
    """Load, run and check one scenario file; bad input becomes an error result, not an exception.

    With keep_report the report's statistics (not its arrays) come back too, for --plot."""
    from .api import run
    from .checks import check_report
    from .scenario import load_scenario

    t0 = time.perf_counter()
    try:
        sc = load_scenario(source, overrides=overrides, seed=seed, seeds=seeds)
        report = run(sc, max_memory=max_memory, keep_gradients=False)
    except GradscopeError as exc:
        return Outcome(CheckResult(source=source, name=Path(source).stem, passed=False, verdict=None,
                                   error=exc.message, error_line=getattr(exc, "line", None),
                                   seconds=time.perf_counter() - t0), None)
    seconds = time.perf_counter() - t0
    result = check_report(report, source, dict(sc.expect) if sc.expect is not None else None, seconds=seconds)
    record = {"name": report.scenario["name"], "scenario_sha256": scenario_hash(report.scenario),
              "verdict": report.summary.verdict, "findings": sorted({f.code for f in report.findings}),
              "layers": [{"layer": lay.layer, **{k: _finite(lay.median(k)) for k in BASELINE_NORMS}}
                         for lay in report.layers]}
    return Outcome(result, record, replace(report, arrays=None) if keep_report else None)


# ---------------------------------------------------------------- baselines


def digits_for(tolerance: float) -> int:
    """Significant digits that keep rounding error under 1/50 of the tolerance: ceil(-log10 tol) + 2."""
    return max(3, math.ceil(-math.log10(tolerance)) + 2)


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else float(f"{x:.{digits}g}")


def baseline_json(records: dict[str, dict[str, Any]], tolerance: float) -> str:
    """Stable JSON: sorted keys, numbers rounded to the tolerance's precision, one line per value."""
    digits = digits_for(tolerance)
    scenarios = {}
    for key, rec in records.items():
        layers = [{k: (_round(v, digits) if k in BASELINE_NORMS else v) for k, v in lay.items()}
                  for lay in rec["layers"]]
        scenarios[_key(key)] = {**rec, "layers": layers}
    doc = {"format": BASELINE_FORMAT, "format_version": BASELINE_FORMAT_VERSION, "gradscope_version": __version__,
           "tolerance": tolerance, "digits": digits, "scenarios": scenarios}
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_baseline(path: Path, outcomes: list[Outcome], tolerance: float) -> int:
    """Write the records of the scenarios that ran; returns how many were written."""
    records = {o.result.source: o.record for o in outcomes if o.record is not None}
    try:
        path.write_text(baseline_json(records, tolerance), encoding="utf-8")
    except OSError as exc:
        raise GradscopeError(f"--write-baseline {path}: cannot write ({exc.strerror})") from None
    return len(records)


@dataclass(frozen=True)
class Baseline:
    path: str
    tolerance: float
    digits: int
    version: str
    scenarios: dict[str, dict[str, Any]]


def _bad(path: Path, why: str) -> GradscopeError:
    return GradscopeError(f"--baseline {path}: {why}. Write a fresh one with `gradscope check SCENARIO… "
                          f"--write-baseline {path}` (and commit it)")


def load_baseline(path: Path) -> Baseline:
    """Read and validate a baseline file; anything else is bad input (exit 2) saying how to refresh it."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _bad(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad(path, f"cannot read the file ({exc})") from None
    except json.JSONDecodeError as exc:
        raise _bad(path, f"not a gradscope baseline (invalid JSON at line {exc.lineno}: {exc.msg})") from None
    if not isinstance(doc, dict) or doc.get("format") != BASELINE_FORMAT:
        raise _bad(path, f"not a gradscope baseline (no \"format\": \"{BASELINE_FORMAT}\")")
    version = str(doc.get("gradscope_version", "?"))
    if version.split(".")[0] != __version__.split(".")[0] or doc.get("format_version") != BASELINE_FORMAT_VERSION:
        raise _bad(path, f"written by gradscope {version} (baseline format {doc.get('format_version')}), "
                   f"this is gradscope {__version__} (format {BASELINE_FORMAT_VERSION}): another major version")
    scenarios = doc.get("scenarios")
    if not isinstance(scenarios, dict):
        raise _bad(path, "it has no \"scenarios\" mapping")
    tol, digits = doc.get("tolerance"), doc.get("digits")
    if not isinstance(tol, int | float) or not 0 < tol < 1 or not isinstance(digits, int):
        raise _bad(path, "its \"tolerance\" / \"digits\" are missing or out of range")
    for key, rec in scenarios.items():
        ok = (isinstance(rec, dict) and isinstance(rec.get("scenario_sha256"), str)
              and isinstance(rec.get("verdict"), str) and isinstance(rec.get("findings"), list)
              and isinstance(rec.get("layers"), list)
              and all(isinstance(lay, dict) and isinstance(lay.get("layer"), int) for lay in rec["layers"]))
        if not ok:
            raise _bad(path, f"the entry for {key} is incomplete (needs scenario_sha256, verdict, findings, layers)")
    return Baseline(str(path), float(tol), digits, version, scenarios)


def _moved(old: float | None, new: float | None, tolerance: float) -> float | None:
    """The factor new/old when it is beyond the tolerance on a log scale, else None (inf: one is 0/missing)."""
    if old is None and new is None:
        return None
    if old is None or new is None:
        return math.inf
    if old == 0 or new == 0:
        return None if old == new else math.inf
    factor = new / old
    return factor if abs(math.log(factor)) > math.log1p(tolerance) else None


def compare_baseline(outcome: Outcome, baseline: Baseline, tolerance: float) -> CheckResult:
    """The result with the baseline's verdict: 'match', 'drift' (failures say which layer moved how much),
    'new' (not in the baseline) or 'changed' (the scenario itself changed: numbers not compared)."""
    from .render import fmt

    result, rec = outcome.result, outcome.record
    if rec is None:
        return result
    old = baseline.scenarios.get(_key(result.source))
    refresh = f"refresh with --write-baseline {baseline.path}"
    if old is None:
        return replace(result, baseline="new", notes=(*result.notes, f"baseline: new scenario, not in "
                                                      f"{baseline.path} ({refresh})"))
    if old["scenario_sha256"] != rec["scenario_sha256"]:
        note = (f"baseline: the scenario (or its --set, --seed, --seeds) changed since the baseline, numbers not "
                f"compared ({refresh})")
        return replace(result, baseline="changed", notes=(*result.notes, note))
    drift: list[Failure] = []
    if old["verdict"] != rec["verdict"]:
        drift.append(Failure(BASELINE_KEY, f"baseline: verdict {old['verdict']} → {rec['verdict']}"))
    added = sorted(set(rec["findings"]) - set(old["findings"]))
    removed = sorted(set(old["findings"]) - set(rec["findings"]))
    if added or removed:
        parts = ([f"new {', '.join(added)}"] if added else []) + ([f"gone {', '.join(removed)}"] if removed else [])
        drift.append(Failure(BASELINE_KEY, f"baseline: finding codes changed: {'; '.join(parts)}"))
    old_layers = {lay["layer"]: lay for lay in old["layers"]}
    pct = f"{100 * tolerance:g}%"
    for lay in rec["layers"]:
        was = old_layers.get(lay["layer"], {})
        for k, label in BASELINE_NORMS.items():
            factor = _moved(was.get(k), lay[k], tolerance)
            if factor is None:
                continue
            how = f"×{fmt(factor)}" if math.isfinite(factor) else "to/from zero or non-finite"
            drift.append(Failure(BASELINE_KEY, f"baseline: layer {lay['layer']} {label} moved {how} "
                                 f"({fmt(was.get(k))} → {fmt(lay[k])}, tolerance ±{pct})"))
    if not drift:
        return replace(result, baseline="match")
    return replace(result, baseline="drift", passed=False, failures=(*result.failures, *drift))


# ---------------------------------------------------------------- line numbers of expect: keys


def key_lines(source: str) -> dict[tuple, int]:
    """{key path: line} of a scenario file (empty when it cannot be read or parsed)."""
    from .scenario import parse_yaml

    try:
        _, lines = parse_yaml(Path(source).read_text(encoding="utf-8"), source)
    except (OSError, UnicodeDecodeError, GradscopeError):
        return {}
    return lines


def failure_line(failure: Failure, lines: dict[tuple, int]) -> int:
    """The line of the expect: key that failed (or its nearest parent); the diagnostics' verdict goes on
    the `expect:` line, a baseline drift on the `network:` line, or line 1 when the file has neither."""
    key = ("network",) if failure.key == BASELINE_KEY else (failure.key or ("expect",))
    for k in range(len(key), 0, -1):
        if key[:k] in lines:
            return lines[key[:k]]
    return 1


# ---------------------------------------------------------------- GitHub Actions workflow commands


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_prop(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


def gh_command(kind: str, message: str, *, file: str | None = None, line: int | None = None,
               title: str | None = None) -> str:
    """`::error file=…,line=…,title=…::message` with GitHub's escaping (% CR LF, and : , in properties)."""
    props = []
    if file is not None:
        props.append(f"file={_gh_prop(file)}")
    if line is not None:
        props.append(f"line={line}")
    if title is not None:
        props.append(f"title={_gh_prop(title)}")
    return f"::{kind}{' ' + ','.join(props) if props else ''}::{_gh_data(message)}"


def github_lines(result: CheckResult) -> list[str]:
    """The workflow commands of one scenario: an error per failed expectation on its line, an error for a
    scenario that could not run, a notice per allowed finding (with its reason), a warning per note."""
    file = _key(result.source)
    out: list[str] = []
    if result.error is not None:
        out.append(gh_command("error", result.error, file=file, line=result.error_line or 1,
                              title=f"gradscope: {result.name} could not run"))
        return out
    lines = key_lines(result.source)
    for f in result.failures:
        out.append(gh_command("error", f.message, file=file, line=failure_line(f, lines),
                              title=f"gradscope: {result.name} ({f.key_path})"))
    for code, reason in result.allowed:
        out.append(gh_command("notice", f"{code} allowed: {reason}", file=file,
                              line=lines.get(("expect", "allow"), 1), title=f"gradscope: {result.name}"))
    for note in result.notes:
        out.append(gh_command("warning", note, file=file, line=lines.get(("expect",), 1),
                              title=f"gradscope: {result.name}"))
    return out


# ---------------------------------------------------------------- JUnit XML


def junit_xml(results: list[CheckResult], seconds: float, timestamp: str | None = None) -> str:
    """JUnit XML as Jenkins, GitLab, Azure and GitHub test reporters read it: one testsuite, one testcase
    per scenario (classname = the file, name = the scenario's name), a <failure> listing every failed
    expectation with its key and line, an <error> for a scenario that could not run, the time of each."""
    import socket
    import xml.etree.ElementTree as ET
    from datetime import datetime

    stamp = timestamp or datetime.now().replace(microsecond=0).isoformat()
    n_fail = sum(r.status == "fail" for r in results)
    n_err = sum(r.status == "error" for r in results)
    counts = {"tests": str(len(results)), "failures": str(n_fail), "errors": str(n_err)}
    root = ET.Element("testsuites", {"name": "gradscope check", "time": f"{seconds:.3f}", **counts})
    suite = ET.SubElement(root, "testsuite", {"name": "gradscope check", **counts, "skipped": "0",
                                              "time": f"{seconds:.3f}", "timestamp": stamp,
                                              "hostname": socket.gethostname()})
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", {"name": "gradscope_version", "value": __version__})
    for r in results:
        case = ET.SubElement(suite, "testcase", {"name": r.name, "classname": _key(r.source),
                                                 "time": f"{r.seconds:.3f}"})
        if r.error is not None:
            ET.SubElement(case, "error", {"type": "error", "message": r.error}).text = r.error
        elif r.failures:
            lines = key_lines(r.source)
            fail = ET.SubElement(case, "failure", {"type": "expectation", "message": "; ".join(r.reasons)})
            fail.text = "\n".join(f"{_key(r.source)}:{failure_line(f, lines)} {f.key_path}: {f.message}"
                                  for f in r.failures)
        out = [f"verdict {r.verdict}"] if r.verdict else []
        out += [f"allowed {code}: {reason}" for code, reason in r.allowed] + list(r.notes)
        if out:
            ET.SubElement(case, "system-out").text = "\n".join(out)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ---------------------------------------------------------------- SARIF 2.1.0 (code scanning)

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_RULES = {
    "expectation": "a scenario's expect: block (or, without expect.verdict, the diagnostics) is not met",
    "baseline-drift": "per-layer gradient norms, verdict or finding codes drifted from the baseline",
    "scenario-error": "the scenario could not run (bad YAML or key, memory limit)",
    "allowed-finding": "a finding the scenario's expect.allow accepts, with its reason",
}


def sarif(results: list[CheckResult]) -> dict[str, Any]:
    """SARIF 2.1.0 for code-scanning uploads: one result per failed expectation (error, on the line of its
    expect: key), per scenario that could not run (error) and per allowed finding (note)."""

    def loc(source: str, line: int) -> list[dict[str, Any]]:
        # artifactLocation.uri must be a URI reference: percent-encode the POSIX path (spaces, %, :, ...)
        uri = urllib.parse.quote(_key(source), safe="/")
        return [{"physicalLocation": {"artifactLocation": {"uri": uri}, "region": {"startLine": line}}}]

    out: list[dict[str, Any]] = []
    for r in results:
        if r.error is not None:
            out.append({"ruleId": "scenario-error", "level": "error", "message": {"text": r.error},
                        "locations": loc(r.source, r.error_line or 1)})
            continue
        lines = key_lines(r.source)
        for f in r.failures:
            rule = "baseline-drift" if f.key == BASELINE_KEY else "expectation"
            out.append({"ruleId": rule, "level": "error", "message": {"text": f"{r.name}: {f.message}"},
                        "locations": loc(r.source, failure_line(f, lines)),
                        "properties": {"key": f.key_path}})
        for code, reason in r.allowed:
            out.append({"ruleId": "allowed-finding", "level": "note",
                        "message": {"text": f"{r.name}: {code} allowed: {reason}"},
                        "locations": loc(r.source, lines.get(("expect", "allow"), 1))})
    rules = [{"id": k, "shortDescription": {"text": v}} for k, v in SARIF_RULES.items()]
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0",
            "runs": [{"tool": {"driver": {"name": "gradscope", "version": __version__, "rules": rules}},
                      "results": out}]}
