"""Property-based fuzzing: whatever a scenario holds, gradscope answers with a report or a GradscopeError.

Scenarios are generated from `gradscope schema` and mutated (from generated ones and from the bundled
files): type swaps, edge numbers, deletions, huge values, strange strings. They go through
`load_scenario`/`run` and, for a sample, through the CLI. The property: only GradscopeError (exit 2) or
a clean report (exit 0/1); no other exception, no warning, nothing on stderr but gradscope's own lines.

CI runs a bounded, derandomized version (about 45 s: the same examples every run). A longer run, by hand,
with new examples:

    GRADSCOPE_FUZZ_EXAMPLES=10000 python -m pytest -m fuzz -q --hypothesis-seed 1 tests/test_fuzz.py
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gradscope import api, render
from gradscope.cli import app
from gradscope.errors import GradscopeError
from gradscope.scenario import bundled_names, bundled_path, load_scenario
from gradscope.schema import scenario_schema

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("GRADSCOPE_FUZZ_EXAMPLES", "0") or 0)
MAX_MEMORY = 64 * 2**20
# CI draws the same examples every run (a failure there is reproducible, never a coin toss); a long run by
# hand (GRADSCOPE_FUZZ_EXAMPLES) explores new ones, chosen by --hypothesis-seed
DERANDOMIZE = not EXAMPLES
SCHEMA = scenario_schema()
BUNDLED = {name: yaml.safe_load(bundled_path(name).read_text(encoding="utf-8")) for name in bundled_names()}


def _examples(ci: int, share: float = 1.0) -> int:
    """CI count, or GRADSCOPE_FUZZ_EXAMPLES × share when it is set (a long run by hand)."""
    return max(1, int(EXAMPLES * share)) if EXAMPLES else ci


# ---------------------------------------------------------------- values at the edges

EDGE_NUMBERS: list[Any] = [0, -1, 1, 2, 3, 7, -0.0, 0.5, 1e-320, 1e-30, 1e30, 1e308, -1e308, math.inf, -math.inf,
                           math.nan, 2**31, 2**63 - 1, 2**63, -(2**63), 10**30, 10**400, 1e240, True, False]
EDGE_STRINGS: list[Any] = ["", " ", "\x00", "a\x00b", "\x1b[2J\x1b[31mred", "\u202egnp.yaml", "\ud800", "x" * 100_000,
                           "relu", "sigmoid", "softmax", "gelu", "auto", "adam", "mse", "xor", "orthogonal",
                           "1e-3", "nan", "inf", "-1", "0x10", "1_000", "~", "null", "é" * 70, "a" * 5000 + "\n"]
EDGE_STRUCTURES: list[Any] = [None, [], {}, [1, 2], [[[]]], {"a": 1}, {"name": "relu"}, {"scheme": "normal"},
                              [None], ["relu"] * 3, {"kind": "teacher", "hidden": 10**9}]
EDGES = st.sampled_from(EDGE_NUMBERS + EDGE_STRINGS + EDGE_STRUCTURES).map(copy.deepcopy)  # never shared
NAMES = st.sampled_from(["name", "scheme", "std", "gain", "min_val", "max_val", "low", "high", "steps", "lr",
                         "depth", "width", "widths", "hidden", "layer", "weight", "label_smoothing", "beta",
                         "threshold", "approximate", "mode", "nonlinearity", "negative_slope", "kind", "a"])


NAMES_OF_THINGS = st.sampled_from(["auto", "relu", "tanh", "gelu", "silu", "sigmoid", "softsign", "leaky_relu",
                                   "selu", "identity", "linear", "softmax", "fan_in", "none", ""])

# ---------------------------------------------------------------- scenarios from the JSON Schema


MAX_REF_DEPTH = 3  # `$ref` followed this deep (blocks nested in blocks); deeper, only the non-recursive choices


def _refers(node: Any) -> bool:
    return "$ref" in json.dumps(node)


def from_schema(node: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values valid for a JSON Schema node, kept small (widths, depths and steps under ~40). `$ref`s into
    `$defs` (network.layers' items, a residual block's layers) are followed up to MAX_REF_DEPTH levels."""
    if "$ref" in node:
        target: Any = SCHEMA
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        if depth >= MAX_REF_DEPTH and "anyOf" in target:
            target = {**target, "anyOf": [n for n in target["anyOf"] if not _refers(n)]}
        return from_schema(target, depth + 1)
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if "anyOf" in node:
        return st.one_of([from_schema(n, depth) for n in node["anyOf"]])
    t = node.get("type")
    if t == "object":
        props = node.get("properties", {})
        required = set(node.get("required", []))
        return st.fixed_dictionaries({k: from_schema(v, depth) for k, v in props.items() if k in required},
                                     optional={k: from_schema(v, depth) for k, v in props.items()
                                               if k not in required})
    if t == "array":
        return st.lists(from_schema(node.get("items", {}), depth), min_size=int(node.get("minItems", 0)),
                        max_size=max(4, int(node.get("minItems", 0))))
    if t == "integer":
        lo = int(node.get("minimum", -3))
        hi = int(node.get("maximum", lo + 40))
        return st.integers(lo, min(hi, lo + 40))
    if t == "number":
        lo = max(float(node.get("minimum", node.get("exclusiveMinimum", -10.0))), -10.0)
        hi = min(float(node.get("maximum", node.get("exclusiveMaximum", 10.0))), 10.0)
        return st.floats(lo, max(lo, hi), allow_nan=False, allow_infinity=False,
                         exclude_min=node.get("exclusiveMinimum") is not None and lo < hi,
                         exclude_max=node.get("exclusiveMaximum") is not None and lo < hi)
    if t == "string":
        if "pattern" in node:
            return st.sampled_from(["1e-3", "0.5", "2", "1.0e+1", "-3", ".5"])
        return st.text(max_size=6) | NAMES_OF_THINGS
    if t == "boolean":
        return st.booleans()
    if t == "null":
        return st.none()
    return st.none() | st.floats(-3, 3) | NAMES_OF_THINGS  # untyped (an init's gain): numbers or names


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:8]):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[Any]) -> Any:
    """A scenario with up to three mutations: replace a value, delete or add a key, swap a type."""
    raw = copy.deepcopy(draw(base))
    for _ in range(draw(st.integers(0, 3))):
        paths = _paths(raw)
        path = draw(st.sampled_from(paths))
        if not path:
            if draw(st.booleans()):
                raw = draw(EDGES)
            continue
        parent = raw
        for p in path[:-1]:
            parent = parent[p]
        how = draw(st.sampled_from(["edge", "edge", "delete", "add", "wrap"]))
        if how == "edge":
            parent[path[-1]] = draw(EDGES)
        elif how == "delete":
            if isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent.pop(path[-1])
        elif how == "add" and isinstance(parent[path[-1]], dict):
            parent[path[-1]][draw(NAMES | EDGES.filter(lambda v: isinstance(v, str)))] = draw(EDGES)
        else:
            parent[path[-1]] = [parent[path[-1]]] if draw(st.booleans()) else {"name": parent[path[-1]]}
    return raw


def _with(base: dict[str, Any], net: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    out.setdefault("network", {}).update(net)
    out.update(top)
    out.pop("expect", None)
    return out


_NET = SCHEMA["properties"]["network"]["properties"]
# a bundled scenario with some of its components swapped for generated ones: mostly valid, so they run
SWAPPED = st.builds(
    _with, st.sampled_from(list(BUNDLED.values())),
    st.fixed_dictionaries({}, optional={k: from_schema(_NET[k]) for k in ("activation", "init", "bias_init",
                                                                           "depth", "output_dim", "bias")}),
    st.fixed_dictionaries({}, optional={"loss": from_schema(SCHEMA["properties"]["loss"]),
                                        "data": from_schema(SCHEMA["properties"]["data"]),
                                        "train": from_schema(SCHEMA["properties"]["train"]),
                                        "seeds": st.integers(1, 4), "dtype": st.sampled_from(["float32", "float64"])}))

# the same with the structure keys: shorthand residual/norm/norm_placement/dropout on a bundled net, or an
# explicit network.layers list (nested residual blocks, projections, per-dense norm/init) in place of its
# depth/width/widths
STRUCTURE_KEYS = ("residual", "norm", "norm_placement", "dropout")
STRUCTURED = st.builds(
    _with, st.sampled_from(list(BUNDLED.values())),
    st.fixed_dictionaries({}, optional={k: from_schema(_NET[k]) for k in STRUCTURE_KEYS}),
    st.fixed_dictionaries({}, optional={"seeds": st.integers(1, 3), "dtype": st.sampled_from(["float32", "float64"]),
                                        "train": from_schema(SCHEMA["properties"]["train"])}))


def _same_width(items: Any, width: int) -> Any:
    """Every dense item of `items` (nested blocks too) at `width`, so the skips line up and the net runs."""
    if isinstance(items, list):
        return [_same_width(it, width) for it in items]
    if isinstance(items, dict):
        if isinstance(items.get("dense"), int):
            return {**items, "dense": width}
        if isinstance(items.get("dense"), dict) and "width" in items["dense"]:
            return {**items, "dense": {**items["dense"], "width": width}}
        return {k: _same_width(v, width) for k, v in items.items()}
    return items


def _layered(base: dict[str, Any], layers: list[Any], width: int, same: bool = False) -> dict[str, Any]:
    out = _with(base, {}, {})
    layers = _same_width(layers, width) if same else layers
    for k in ("depth", "width", "widths", "activation", *STRUCTURE_KEYS):
        out["network"].pop(k, None)
    out["network"]["input_dim"] = out["network"]["width"] = width
    out["network"]["layers"] = layers
    out["seeds"] = min(int(out.get("seeds", 2)), 3)
    return out


# half of them with every dense layer at the input's width: their residual blocks line up, so they run
LAYERED = st.builds(_layered, st.sampled_from(list(BUNDLED.values())),
                    from_schema(_NET["layers"]["anyOf"][0]), st.sampled_from([4, 8, 16]), st.booleans())

SCENARIOS = st.one_of(
    mutated(from_schema(SCHEMA)),
    mutated(st.sampled_from(list(BUNDLED.values()))),
    mutated(SWAPPED),
    mutated(STRUCTURED),
    mutated(LAYERED),
)


# ---------------------------------------------------------------- the property


def _affordable(sc: Any) -> bool:
    """Valid but expensive scenarios (a million training steps, 10,000 layers) are loaded, not run."""
    work = sc.seeds * sc.batch_size * sum(a * b for a, b in zip(sc.sizes[:-1], sc.sizes[1:], strict=True))
    if sc.train is not None:
        steps = int(sc.train["steps"])
        n = max(int(sc.train["train_size"]), int(sc.train["holdout"]), sc.batch_size)
        work = sc.seeds * n * sum(a * b for a, b in zip(sc.sizes[:-1], sc.sizes[1:], strict=True)) * (steps + 1)
    return sc.depth <= 400 and work <= 3e8


def _log(kind: str, outcome: str) -> None:
    """With GRADSCOPE_FUZZ_LOG=FILE, one line per case (kind, outcome): the counts of a long run."""
    log = os.environ.get("GRADSCOPE_FUZZ_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{kind}\t{outcome}\n")


def check_api(raw: Any, kind: str = "api") -> str:
    outcome = _check_api(raw)
    _log(kind, outcome)
    return outcome


def _check_api(raw: Any) -> str:
    """load_scenario + run + every renderer; returns 'error', 'skipped' or the verdict."""
    err = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stderr(err):
        warnings.simplefilter("error")
        try:
            sc = load_scenario(raw)
            if not _affordable(sc):
                api.check_memory(sc, MAX_MEMORY)
                return "skipped"
            report = api.run(sc, max_memory=MAX_MEMORY)
        except GradscopeError as exc:
            assert exc.exit_code == 2
            assert "\n" not in exc.message and len(exc.message) <= 2000, exc.message
            return "error"
        json.loads(render.to_json(report.to_dict()))
        render.run_csv(report)
        render.run_markdown(report)
        render.make_console(file=io.StringIO(), no_color=True, width=160).print(render.run_renderable(report))
    assert err.getvalue() == "", err.getvalue()
    return report.summary.verdict


@settings(derandomize=DERANDOMIZE, max_examples=_examples(200, 0.5), deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(SCENARIOS)
def test_fuzz_api_dict(raw):
    check_api(raw)


@settings(derandomize=DERANDOMIZE, max_examples=_examples(60, 0.5), deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(SCENARIOS, st.sampled_from(["plain", "yaml-dump", "flow"]))
def test_fuzz_api_yaml_file(tmp_path_factory, raw, style):
    """The same through a YAML file (a YAML rendering of the dict; non-YAML-able values become strings)."""
    path = tmp_path_factory.mktemp("fz") / "s.yaml"
    try:
        text = yaml.safe_dump(raw, default_flow_style=(style == "flow"), allow_unicode=True)
    except (yaml.YAMLError, ValueError, OverflowError):
        text = str(raw)
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    check_api(path, "api-yaml")


# ---------------------------------------------------------------- the CLI

OPTION_VALUES = st.sampled_from(["0", "-1", "1", "3", "abc", "", "1e999", "nan", str(2**63), "9" * 5000,
                                 "\x1b[31m", "2GiB", "1KiB", "1e300GiB", "0.8,0.1,0.1", "0.3", "1,1", "json",
                                 "markdown", "csv", "xml", "network.depth=2", "seeds=2", "loss=mse", "=", "a.b.c=1",
                                 "network.widths=[4, 4]", "train.steps=3", "x" * 300])
CLI_ARGS = st.one_of(
    st.tuples(st.just("run"), st.lists(st.sampled_from(["--seeds", "--seed", "--set", "--format", "--max-memory",
                                                         "--train-steps", "--quiet", "--no-color", "--bogus"]),
                                        max_size=4), st.lists(OPTION_VALUES, min_size=4, max_size=4)),
    st.tuples(st.just("compare"), st.lists(st.sampled_from(["mse", "ce", "bce", "huber", "kl_div", "relu", "tanh",
                                                            "he_normal", "xavier_uniform", "nope", "focal"]),
                                           min_size=0, max_size=3),
              st.lists(OPTION_VALUES, min_size=4, max_size=4)),
)


def _argv(case: tuple) -> list[str]:
    cmd, opts, values = case
    if cmd == "compare":
        argv = ["compare", *dict.fromkeys(opts), "--seeds", "2", "--set", "network.width=8", "--set",
                "data.batch_size=16", "--max-memory", "64MiB"]
        for flag, value in zip(["--probs", "--target", "--set", "--seeds"], values, strict=True):
            if value != "":
                argv += [flag, value]
        return argv
    argv = ["run"]
    for flag, value in zip(opts, values, strict=False):
        argv += [flag] if flag in ("--quiet", "--no-color") else [flag, value]
    # keep valid runs small: these come first, so the drawn options override them
    return [*argv[:1], "--seeds", "2", "--set", "network.width=8", "--set", "data.batch_size=16",
            "--max-memory", "64MiB", *argv[1:]]


def _check_cli_result(code: int, stdout: str, stderr: str) -> None:
    assert code in (0, 1, 2), (code, stderr[-2000:])
    assert "Traceback" not in stderr and "Usage:" not in stderr, stderr[-2000:]
    assert "Warning" not in stderr, stderr[-2000:]
    for line in stderr.splitlines():
        assert line.startswith("gradscope: "), stderr[-2000:]
    if code == 2:
        assert stderr.startswith("gradscope: error: ") and stderr.count("\n") == 1, stderr[-2000:]


@settings(derandomize=DERANDOMIZE, max_examples=_examples(30, 0.05), deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(CLI_ARGS)
def test_fuzz_cli_runner(case):
    argv = _argv(case)
    r = CliRunner().invoke(app, argv)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    _check_cli_result(r.exit_code, r.stdout, r.stderr)
    _log("cli-runner", str(r.exit_code))


SUBPROCESS_EXAMPLES = int(os.environ.get("GRADSCOPE_FUZZ_CLI", "4") or 4)


@settings(derandomize=DERANDOMIZE, max_examples=SUBPROCESS_EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.one_of(CLI_ARGS.map(_argv), SCENARIOS.map(lambda raw: ["run", "--max-memory", "64MiB", raw])))
def test_fuzz_cli_subprocess(tmp_path, argv):
    """The installed entry point in a fresh interpreter: exit codes, stderr, no warnings (`-W error`)."""
    if not isinstance(argv[-1], str):  # a scenario: through a file
        path = tmp_path / "s.yaml"
        try:
            text = yaml.safe_dump(argv[-1], allow_unicode=True)
        except (yaml.YAMLError, ValueError, OverflowError):
            text = str(argv[-1])
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        argv = [*argv[:-1], str(path)]
    if any("\x00" in a for a in argv):
        return  # the OS cannot pass a NUL byte in argv
    env = {**os.environ, "PYTHONWARNINGS": "error", "NO_COLOR": "1", "COLUMNS": "120"}
    p = subprocess.run([sys.executable, "-W", "error", "-m", "gradscope", *argv], capture_output=True,
                       timeout=300, env=env, cwd=tmp_path, errors="replace", text=True)
    _check_cli_result(p.returncode, p.stdout, p.stderr)
    _log("cli-subprocess", str(p.returncode))


def test_fuzz_cli_helpers_reject_bad_output():
    """The CLI property can fail: a traceback or a second error line is caught."""
    with pytest.raises(AssertionError):
        _check_cli_result(1, "", "Traceback (most recent call last):\n")
    with pytest.raises(AssertionError):
        _check_cli_result(2, "", "gradscope: error: a\nmore\n")
    with pytest.raises(AssertionError):
        _check_cli_result(3, "", "")
    assert re.match(r"gradscope: error: ", "gradscope: error: x")
    assert Path(__file__).parent.name == "tests"


def _items_of(raw: Any) -> list[dict[str, Any]]:
    layers = raw.get("network", {}).get("layers") if isinstance(raw, dict) else None
    out: list[dict[str, Any]] = []
    stack = list(layers) if isinstance(layers, list) else []
    while stack:
        it = stack.pop()
        if isinstance(it, dict):
            out.append(it)
            inner = it.get("residual", {}).get("layers") if isinstance(it.get("residual"), dict) else None
            stack.extend(inner if isinstance(inner, list) else [])
    return out


def test_generator_reaches_layer_items_through_ref():
    """network.layers' items are a `$ref` into `$defs`: the generator follows it, down to blocks in blocks with
    projections and per-dense norms, and the shorthand keys are drawn too (without this the fuzz never made
    one layer item, only None/numbers/names where items belong)."""
    seen: set[str] = set()

    def kinds(raw: Any) -> set[str]:
        out = set()
        for it in _items_of(raw):
            out |= {k for k in ("dense", "norm", "dropout", "residual") if k in it}
            if isinstance(it.get("dense"), dict) and "norm" in it["dense"]:
                out.add("dense-norm")
            res = it.get("residual")
            if isinstance(res, dict):
                out |= {"projection"} if res.get("projection") else set()
                if any(isinstance(x, dict) and "residual" in x for x in res.get("layers") or []):
                    out.add("nested")
        net = raw["network"]
        if isinstance(net.get("residual"), dict) and net.get("norm_placement") == "post" and net.get("norm"):
            out.add("shorthand-post")
        return out

    @settings(database=None, derandomize=True, max_examples=150, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.one_of(LAYERED, STRUCTURED))
    def draw(raw: Any) -> None:
        seen.update(kinds(raw))

    draw()
    want = {"dense", "norm", "dropout", "residual", "dense-norm", "projection", "nested", "shorthand-post"}
    assert seen >= want, seen
