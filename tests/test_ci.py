"""`gradscope check` in CI: formats (table, json, junit, github), expect.allow, baselines, parallel runs."""

import json
import math
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradscope import api
from gradscope.ci import baseline_json, digits_for, gh_command
from gradscope.cli import app
from gradscope.errors import ScenarioError
from gradscope.executor import map_ordered, worker_blas_env
from gradscope.scenario import load_scenario

runner = CliRunner()
DATA = Path(__file__).parent / "data"

OK = "seeds: 2\nnetwork: {depth: 3, width: 16, activation: relu, init: he_normal}\ndata: {batch_size: 16}\n"
BAD = """\
name: deep-sig
seeds: 2
network: {depth: 8, width: 16, activation: sigmoid}
data: {batch_size: 16}
expect:
  verdict: healthy
  max_gradient_spread: 100
"""
BROKEN = "seeds: 2\nnetwork:\n  depth: x\n"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def files(tmp_path):
    out = {}
    for name, text in (("ok", OK), ("bad", BAD), ("broken", BROKEN)):
        out[name] = tmp_path / f"{name}.yaml"
        out[name].write_text(text)
    return out


@pytest.mark.parametrize("fmt", ["table", "json", "junit", "github", "sarif"])
def test_every_format_on_passing_failing_and_erroring_scenarios(files, fmt):
    ok, bad, broken = files["ok"], files["bad"], files["broken"]
    r = invoke("check", ok, "--format", fmt, "--jobs", 1, "--no-color")
    assert r.exit_code == 0, r.output
    r = invoke("check", ok, bad, "--format", fmt, "--jobs", 1, "--no-color")
    assert r.exit_code == 1, r.output
    r = invoke("check", ok, bad, broken, "--format", fmt, "--jobs", 1, "--no-color")
    # the live table shows the error as its ERROR line, the other formats also on stderr
    assert r.exit_code == 2 and "broken.yaml:3, key 'network.depth'" in (r.stdout if fmt == "table" else r.stderr)
    out = r.stdout
    if fmt == "table":
        assert re.search(r"^PASS .*ok\.yaml", out, re.M)
        assert re.search(r"^FAIL .*bad\.yaml.*> expected maximum", out, re.M)
        assert re.search(r"^ERROR .*broken\.yaml.*expected an integer", out, re.M)
        assert "1 passed, 1 failed, 1 could not run" in out
    elif fmt == "json":
        d = json.loads(out)
        assert [x["passed"] for x in d["results"]] == [True, False, False]
        assert d["results"][1]["failures"][0] == {"key": "expect.verdict",
                                                  "message": "verdict is vanishing, expected healthy"}
        assert "error" in d["results"][2] and "error" not in d["results"][0]
    elif fmt == "junit":
        import xml.etree.ElementTree as ET

        suite = ET.fromstring(out).find("testsuite")
        assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
        cases = suite.findall("testcase")
        assert [c.get("name") for c in cases] == ["ok", "deep-sig", "broken"]
        assert cases[0].find("failure") is None and cases[0].find("error") is None
        failure = cases[1].find("failure")
        assert "bad.yaml:6 expect.verdict: verdict is vanishing" in failure.text
        assert "bad.yaml:7 expect.max_gradient_spread" in failure.text
        assert "expected an integer" in cases[2].find("error").get("message")
        assert all(float(c.get("time")) >= 0 for c in cases)
    elif fmt == "sarif":
        run = json.loads(out)["runs"][0]
        assert json.loads(out)["version"] == "2.1.0" and run["tool"]["driver"]["name"] == "gradscope"
        rules = {rule["id"] for rule in run["tool"]["driver"]["rules"]}
        found = [(x["ruleId"], x["level"], x["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                  x["locations"][0]["physicalLocation"]["region"]["startLine"]) for x in run["results"]]
        assert {x[0] for x in found} <= rules and all(x["message"]["text"] for x in run["results"])
        assert {("expectation", "error", bad.as_posix(), n) for n in (6, 7)} <= set(found)
        assert ("scenario-error", "error", broken.as_posix(), 3) in found and len(found) == 3
    else:
        lines = out.splitlines()
        assert any(x.startswith("::error file=") and "bad.yaml,line=6," in x and "expected healthy" in x for x in lines)
        assert any("bad.yaml,line=7," in x and "expected maximum 100" in x for x in lines)
        assert any(x.startswith("::error ") and "broken.yaml,line=3," in x for x in lines)
        assert lines[-1] == "1 passed, 1 failed, 1 could not run"


def test_junit_validates_against_the_jenkins_schema(files, tmp_path):
    xmlschema = pytest.importorskip("xmlschema")
    schema = xmlschema.XMLSchema(DATA / "junit-jenkins-subset.xsd")
    report = tmp_path / "report.xml"
    allow = tmp_path / "allow.yaml"
    allow.write_text("seeds: 2\nnetwork: {depth: 8, width: 16, activation: sigmoid}\ndata: {batch_size: 16}\n"
                     "expect:\n  allow: [{code: vanishing-gradient, reason: 'a <teaching> & \"demo\"'}]\n")
    r = invoke("check", files["ok"], files["bad"], files["broken"], allow, "--format", "junit", "--output", report,
               "--jobs", 1)
    assert r.exit_code == 2
    text = report.read_text()
    schema.validate(text)
    assert "allowed vanishing-gradient: a &lt;teaching&gt; &amp; \"demo\"" in text
    # the validator is not a rubber stamp: a testsuite without its required counts is refused
    assert not schema.is_valid(re.sub(r' failures="\d+"', "", text))


def test_github_escaping():
    line = gh_command("error", "100% sure\r\nnext: a, b", file="dir/a,b:c.yaml", line=7, title="t: x, y")
    assert line == "::error file=dir/a%2Cb%3Ac.yaml,line=7,title=t%3A x%2C y::100%25 sure%0D%0Anext: a, b"


ALLOWED = """\
seeds: 2
network: {depth: 8, width: 16, activation: sigmoid}
data: {batch_size: 16}
expect:
  allow:
    - {code: vanishing-gradient, reason: "teaching example: sigmoid stacks vanish on purpose"}
"""


def test_allow_accepts_a_finding_and_prints_the_reason(tmp_path):
    p = tmp_path / "allowed.yaml"
    p.write_text(ALLOWED)
    r = invoke("check", p, "--jobs", 1, "--no-color")
    assert r.exit_code == 0, r.stdout
    assert "allowed vanishing-gradient: teaching example: sigmoid stacks vanish on purpose" in r.stdout
    # the same scenario without the allow list fails, and allowing another code does not help
    p.write_text(ALLOWED.replace("vanishing-gradient", "dead-units"))
    r = invoke("check", p, "--jobs", 1, "--no-color")
    assert r.exit_code == 1 and "verdict is vanishing, expected healthy" in r.stdout
    assert "allow: dead-units was not reported" in r.stdout
    # run honours it too (its exit code follows expect)
    p.write_text(ALLOWED)
    assert invoke("run", p, "--quiet").exit_code == 0
    # an explicit no_findings still wins over allow
    p.write_text(ALLOWED + "  no_findings: [vanishing-gradient]\n")
    assert invoke("check", p, "--jobs", 1).exit_code == 1


def test_allow_is_in_the_json_schema():
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    from gradscope.schema import scenario_schema

    v = jsonschema.Draft202012Validator(scenario_schema())
    assert not list(v.iter_errors(yaml.safe_load(ALLOWED)))
    assert list(v.iter_errors(yaml.safe_load(ALLOWED.replace(', reason: "teaching example: sigmoid stacks vanish '
                                                              'on purpose"', ""))))


def test_allow_validation_names_key_and_line(tmp_path):
    base = "network: {depth: 2, width: 8}\nexpect:\n  allow:\n"
    for entry, key, needle in (("    - {code: dead-units}\n", "expect.allow.0", "non-empty 'reason'"),
                               ("    - {code: dead-unit, reason: x}\n", "expect.allow.0.code", "did you mean"),
                               ("    - {code: dead-units, reason: x, why: y}\n", "expect.allow.0.why", "unknown key")):
        p = tmp_path / "a.yaml"
        p.write_text(base + entry)
        with pytest.raises(ScenarioError) as exc:
            load_scenario(p)
        assert exc.value.path == key and exc.value.line == 4 and needle in exc.value.message


def test_baseline_round_trip_drift_new_and_changed(files, tmp_path, monkeypatch):
    ok, bad = files["ok"], files["bad"]
    base = tmp_path / "baseline.json"
    r = invoke("check", ok, bad, "--write-baseline", base, "--jobs", 1)
    assert r.exit_code == 1 and "wrote the baseline of 2 scenarios" in r.stderr
    text = base.read_text()
    doc = json.loads(text)
    assert text == json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"  # stable, sorted
    assert doc["tolerance"] == 0.05 and doc["digits"] == digits_for(0.05) == 4
    entry = doc["scenarios"][ok.as_posix()]
    assert entry["verdict"] == "healthy" and len(entry["layers"]) == 4
    report = api.run(load_scenario(ok))
    for lay, rec in zip(report.layers, entry["layers"], strict=True):  # the medians, rounded to 4 digits
        assert rec["weight_grad_norm"] == float(f"{lay.median('weight_grad_norm'):.4g}")
    # the round trip: same numbers, no drift
    r = invoke("check", ok, "--baseline", base, "--jobs", 1, "--format", "json")
    assert r.exit_code == 0, r.stdout
    assert json.loads(r.stdout)["results"][0]["baseline"] == "match"

    # a deliberate drift: a "refactor" scales every initial weight by 1.1
    real = api.init_params

    def scaled(sc):
        params = real(sc)
        for W in params.W:
            W *= 1.1
        return params

    monkeypatch.setattr(api, "init_params", scaled)
    r = invoke("check", ok, "--baseline", base, "--jobs", 1, "--no-color")
    assert r.exit_code == 1
    moved = re.findall(r"layer (\d) ‖∂L/∂W‖ moved ×([0-9.]+) \(([-0-9.e]+) → ([-0-9.e]+), tolerance ±5%\)", r.stdout)
    assert moved, r.stdout
    drifted = api.run(load_scenario(ok))
    for layer, factor, _, _ in moved:
        want = drifted.layers[int(layer) - 1].median("weight_grad_norm") / report.layers[int(layer) - 1].median(
            "weight_grad_norm")
        # printed to 3 significant digits: within half a unit of the third digit, whatever the draw
        assert float(factor) == pytest.approx(want, abs=0.5 * 10 ** (math.floor(math.log10(want)) - 2) * (1 + 1e-9))
        assert abs(math.log(want)) > math.log(1.05)
    # a looser tolerance accepts the same numbers
    r = invoke("check", ok, "--baseline", base, "--tolerance", 0.9, "--jobs", 1)
    assert "baseline: 1 drift" not in r.stdout, r.stdout
    monkeypatch.setattr(api, "init_params", real)

    # a changed scenario is reported as changed, a new one as new: neither fails
    r = invoke("check", ok, "--set", "network.width=12", "--baseline", base, "--jobs", 1, "--no-color")
    assert r.exit_code == 0 and "changed since the baseline, numbers not compared" in r.stdout
    new = tmp_path / "new.yaml"
    new.write_text(OK)
    r = invoke("check", new, "--baseline", base, "--jobs", 1, "--no-color")
    assert r.exit_code == 0 and "baseline: new scenario" in r.stdout and "baseline: 1 new" in r.stdout
    # a finer tolerance than the file was rounded for is refused
    r = invoke("check", ok, "--baseline", base, "--tolerance", 0.0001)
    assert r.exit_code == 2 and "--write-baseline" in r.stderr


def test_verdict_and_finding_drift(files, tmp_path):
    ok = files["ok"]
    base = tmp_path / "b.json"
    invoke("check", ok, "--write-baseline", base, "--jobs", 1)
    doc = json.loads(base.read_text())
    doc["scenarios"][ok.as_posix()]["verdict"] = "vanishing"
    doc["scenarios"][ok.as_posix()]["findings"].append("saturated-units")
    base.write_text(json.dumps(doc))
    r = invoke("check", ok, "--baseline", base, "--jobs", 1, "--no-color")
    assert r.exit_code == 1
    assert "baseline: verdict vanishing → healthy" in r.stdout and "gone saturated-units" in r.stdout
    r = invoke("check", ok, "--baseline", base, "--jobs", 1, "--format", "github")  # on the network: line
    assert re.search(r"^::error file=.*ok\.yaml,line=2,title=gradscope%3A ok \(baseline\)::baseline: verdict", r.stdout,
                     re.M), r.stdout


@pytest.mark.parametrize("content, needle", [
    ("not json", "not a gradscope baseline"),
    ('{"format": "something-else"}', "not a gradscope baseline"),
    ('{"format": "gradscope-baseline", "format_version": 1, "gradscope_version": "7.0.0", "scenarios": {}}',
     "another major version"),
    ('{"format": "gradscope-baseline", "format_version": 1, "gradscope_version": "0.1.0", "tolerance": 0.05, '
     '"digits": 4}', "no \"scenarios\""),
])
def test_bad_baseline_exits_2_saying_how_to_refresh(files, tmp_path, content, needle):
    base = tmp_path / "b.json"
    base.write_text(content)
    r = invoke("check", files["ok"], "--baseline", base)
    assert r.exit_code == 2 and needle in r.stderr and f"--write-baseline {base}" in r.stderr
    assert "Traceback" not in r.output


def test_baseline_json_rounds_to_the_tolerance():
    rec = {"name": "n", "scenario_sha256": "x", "verdict": "healthy", "findings": [],
           "layers": [{"layer": 1, "weight_grad_norm": 0.123456789, "bias_grad_norm": None, "delta_norm": 2.0}]}
    d = json.loads(baseline_json({"./a/b.yaml": rec}, 0.001))
    assert d["digits"] == 5 and d["scenarios"]["a/b.yaml"]["layers"][0]["weight_grad_norm"] == 0.12346


def test_parallel_check_matches_serial_and_workers_use_one_blas_thread(files, tmp_path):
    paths = [files["ok"], files["bad"], files["broken"], files["ok"]]
    serial = invoke("check", *paths, "--format", "json", "--jobs", 1)
    parallel = invoke("check", *paths, "--format", "json", "--jobs", 2)
    assert serial.exit_code == parallel.exit_code == 2
    assert serial.stdout == parallel.stdout
    envs = list(map_ordered(worker_blas_env, [(), ()], jobs=2))
    assert envs == [{"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                     "GRADSCOPE_THREADS": "1"}] * 2


ROOT = Path(__file__).parent.parent


def _readme_workflow() -> dict:
    import yaml

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Using gradscope in CI", 1)[1].split("\n## ", 1)[0]
    block = section.split("### GitHub Actions", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    return yaml.safe_load(block)


def test_readme_workflow_snippet_runs(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys

    steps = _readme_workflow()["jobs"]["gradscope"]["steps"]
    runs = [s for s in steps if "run" in s]
    assert runs[0]["name"] == "Install gradscope" and runs[0]["run"].startswith("python -m pip install gradscope")
    commands = [s["run"] for s in runs[1:]]  # the install step is replaced by the installed package
    assert any("--format github" in c for c in commands) and any("--format junit" in c for c in commands)
    # a repository with two scenarios, one failing, and its committed baseline
    monkeypatch.chdir(tmp_path)
    Path("scenarios").mkdir()
    Path("scenarios/ok.yaml").write_text(OK)
    Path("scenarios/bad.yaml").write_text(BAD)
    r = runner.invoke(app, ["check", "scenarios/bad.yaml", "scenarios/ok.yaml", "--write-baseline",
                            "gradscope-baseline.json", "--jobs", "1"])
    assert r.exit_code == 1 and Path("gradscope-baseline.json").is_file()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    check, junit = (subprocess.run(["bash", "-e", "-c", c], env=env, capture_output=True, text=True)
                    for c in commands)
    assert check.returncode == 1, check.stderr  # the failing scenario fails the step ...
    assert re.search(r"^::error file=scenarios/bad\.yaml,line=6,", check.stdout, re.M), check.stdout
    assert "0 passed, 1 failed" not in check.stdout and "1 passed, 1 failed" in check.stdout
    assert junit.returncode == 0, junit.stderr  # ... the report step succeeds and writes the report
    assert 'tests="2" failures="1" errors="0"' in Path("gradscope-junit.xml").read_text()


def test_pre_commit_hook_manifest():
    import shlex

    import yaml

    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "gradscope-check")
    assert {"id", "name", "entry", "language", "files"} <= set(hook)
    files = re.compile(hook["files"])
    assert files.search("scenarios/a.yaml") and files.search("sub/scenarios/b.yml")
    assert not any(files.search(x) for x in ("a.yaml", "scenarios/x.json", "myscenarios/a.yaml"))
    argv = shlex.split(hook["entry"])
    assert argv[0] == "gradscope"
    # pre-commit appends the changed file names to the entry
    r = runner.invoke(app, [*argv[1:], str(ROOT / "scenarios" / "classify-blobs.yaml"), "--seeds", "2"])
    assert r.exit_code == 0, r.stdout


def _complete(line: str, shell: str = "zsh") -> str:
    env = {"_GRADSCOPE_COMPLETE": f"complete_{shell}", "_TYPER_COMPLETE_ARGS": line}
    if shell == "bash":
        env = {"_GRADSCOPE_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(len(line.split()) - 1)}
    r = runner.invoke(app, [], prog_name="gradscope", env=env)
    assert r.exit_code == 0
    return r.stdout


def test_shell_completion_of_set_keys_values_and_registry_names(monkeypatch):
    from gradscope.completion import scenario_keys

    # typer detects the shell from the parent process, which a CI runner may not have: name it instead
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")

    keys = scenario_keys()
    assert {"seeds", "network.depth", "network.init.std", "loss.label_smoothing", "data.kind", "train.lr",
            "expect.allow", "diagnostics.vanishing_ratio"} <= set(keys)
    for key in keys:  # every key it offers is one --set accepts (the validator knows it)
        assert "." not in key or key.split(".")[0] in ("network", "data", "train", "diagnostics", "expect", "loss")
    out = _complete("gradscope run --set network.init.st", "bash")
    assert out.split() == ["network.init.std="]
    assert "network.depth=" in _complete("gradscope check a.yaml --set netw", "bash").split()
    assert "loss=cross_entropy" in _complete("gradscope run --set loss=cross")
    assert "network.activation=relu" in _complete("gradscope run --set network.activation=re")
    assert _complete("gradscope list lo", "bash").split() == ["losses"]
    assert _complete("gradscope compare xav", "bash").split() == ["xavier_normal", "xavier_uniform"]
    r = runner.invoke(app, ["--show-completion", "bash"], prog_name="gradscope")
    assert r.exit_code == 0 and "_GRADSCOPE_COMPLETE=complete_bash" in r.stdout


def test_a_dead_worker_is_an_error_message_not_a_traceback():
    import os

    from gradscope.errors import GradscopeError

    with pytest.raises(GradscopeError, match="worker process died"):
        list(map_ordered(os._exit, [(3,), (3,)], jobs=2))


def test_sarif_uri_is_a_percent_encoded_uri_reference(tmp_path, monkeypatch):
    # a file name with a space, a comma, a colon and a percent sign: the raw path is not a valid URI reference
    monkeypatch.chdir(tmp_path)
    (tmp_path / "odd dir").mkdir()
    (tmp_path / "odd dir" / "a,b:c%.yaml").write_text(BAD)
    r = invoke("check", "odd dir/a,b:c%.yaml", "--format", "sarif", "--jobs", 1)
    assert r.exit_code == 1, r.output
    uris = {x["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for x in json.loads(r.stdout)["runs"][0]["results"]}
    assert uris == {"odd%20dir/a%2Cb%3Ac%25.yaml"}
