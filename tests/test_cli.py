import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from gradscope import __version__
from gradscope.cli import app
from gradscope.scenario import bundled_names, bundled_path

runner = CliRunner()
SMALL = ["--seeds", "3", "--set", "data.batch_size=16", "--set", "network.width=16"]


def invoke(*args):
    return runner.invoke(app, list(args))


def test_version_and_help_for_every_command():
    r = invoke("--version")
    assert r.exit_code == 0 and __version__ in r.stdout
    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    assert {"run", "check", "list", "schema", "init"} <= set(names)
    for name in names:
        r = invoke(name, "--help")
        assert r.exit_code == 0, name
        assert "Example" in r.stdout, f"{name} --help has no example"


def test_run_default_table():
    r = invoke("run", "--no-color")
    assert r.exit_code == 0, r.output
    assert "deep-sigmoid" in r.stdout and "VANISHING" in r.stdout and "vanishing-gradient" in r.stdout


def test_run_json_keys_and_determinism():
    a = invoke("run", "--format", "json", *SMALL)
    b = invoke("run", "--format", "json", *SMALL)
    assert a.exit_code == 0, a.output
    assert a.stdout == b.stdout  # byte-identical
    d = json.loads(a.stdout)
    for k in ("gradscope_version", "scenario", "summary", "layers", "findings"):
        assert k in d
    assert {"verdict", "gradient_spread", "chi1", "q_star"} <= set(d["summary"])
    for i, lay in enumerate(d["layers"], start=1):
        assert lay["layer"] == i
        assert lay["kind"] == "dense" and lay["block"] is None  # SPEC §3: a plain MLP has no blocks
        for k in ("weight_grad_norm", "bias_grad_norm", "delta_norm", "grad_weight_ratio", "gradient_ratio",
                  "preact_mean", "preact_std", "act_mean", "act_std", "saturation", "dead_fraction"):
            assert set(lay[k]) >= {"median", "mean", "std", "min", "max", "q10", "q90"}
        assert "predicted_gradient_ratio" in lay
    for f in d["findings"]:
        assert set(f) >= {"code", "severity", "layers", "message", "hint"}
    assert d["scenario"]["seeds"] == 3 and d["scenario"]["network"]["widths"] == [16] * 8


def test_seed_changes_numbers_and_seed_k_is_stable(tmp_path):
    a = json.loads(invoke("run", "--format", "json", *SMALL).stdout)
    c = json.loads(invoke("run", "--format", "json", *SMALL, "--seed", "5").stdout)
    assert a["summary"]["loss"] != c["summary"]["loss"]
    f3, f5 = tmp_path / "a.npz", tmp_path / "b.npz"
    assert invoke("run", "--format", "json", *SMALL, "--save-arrays", str(f3)).exit_code == 0
    assert invoke("run", "--format", "json", *SMALL[2:], "--seeds", "5", "--save-arrays", str(f5)).exit_code == 0
    with np.load(f3) as a3, np.load(f5) as a5:
        np.testing.assert_array_equal(a3["W1"], a5["W1"][:3])
        np.testing.assert_array_equal(a3["dW2"], a5["dW2"][:3])


def test_save_arrays_keys_and_shapes(tmp_path):
    out = tmp_path / "run.npz"
    r = invoke("run", "--format", "json", *SMALL, "--save-arrays", str(out))
    assert r.exit_code == 0
    d = json.loads(r.stdout)
    a = dict(np.load(out))
    L = len(d["layers"])
    assert a["x"].shape == (3, 16, 32) and a["loss"].shape == (3,) and a["y"].shape == (16,)
    for l in range(1, L + 1):
        lay = d["layers"][l - 1]
        assert a[f"W{l}"].shape == (3, lay["fan_in"], lay["fan_out"]) == a[f"dW{l}"].shape
        assert a[f"b{l}"].shape == (3, lay["fan_out"]) == a[f"db{l}"].shape
    # the JSON's statistics are computed from exactly these arrays
    norms = np.linalg.norm(a["dW1"].reshape(3, -1), axis=1)
    assert d["layers"][0]["weight_grad_norm"]["median"] == pytest.approx(float(np.median(norms)), rel=1e-12)
    assert d["summary"]["loss"]["median"] == pytest.approx(float(np.median(a["loss"])), rel=1e-12)


@pytest.mark.parametrize("fmt", ["csv", "markdown"])
def test_other_formats(fmt, tmp_path):
    out = tmp_path / f"r.{fmt}"
    r = invoke("run", "--format", fmt, *SMALL, "--output", str(out))
    assert r.exit_code == 0 and r.stdout == ""
    text = out.read_text()
    if fmt == "csv":
        lines = text.strip().splitlines()
        assert lines[0].startswith("label,layer,fan_in") and len(lines) == 1 + 9
    else:
        assert text.startswith("## gradscope: deep-sigmoid") and "| layer |" in text


def test_table_output_to_file_is_plain(tmp_path):
    out = tmp_path / "r.txt"
    assert invoke("run", *SMALL, "--output", str(out)).exit_code == 0
    text = out.read_text()
    assert "\x1b[" not in text and "verdict: VANISHING" in text


def test_quiet_prints_only_the_verdict():
    r = invoke("run", *SMALL, "--quiet", "--no-color")
    assert r.stdout.startswith("verdict: VANISHING") and "shape" not in r.stdout and "→ use" not in r.stdout
    assert "mean-field" not in r.stdout and "note:" not in r.stdout  # one paragraph: the verdict


def test_a_parameter_of_another_scheme_names_the_scheme_key():
    r = invoke("run", *SMALL, "--set", "network.init.std=0.5")
    assert r.exit_code == 2
    assert "'xavier_uniform' has no parameter 'std'" in r.stderr and "set network.init.scheme too" in r.stderr
    r = invoke("run", *SMALL, "--set", "network.init.scheme=normal", "--set", "network.init.std=0.5", "--format",
               "json", "--set", "expect=null")
    assert r.exit_code == 0 and json.loads(r.stdout)["scenario"]["network"]["init"] == {"scheme": "normal",
                                                                                         "std": 0.5, "mean": 0.0}


BAD_FILES = {
    "syntax.yaml": "network: [1, 2\n",
    "unknown.yaml": "network:\n  dpeth: 3\n",
    "activation.yaml": "network:\n  activation: sigmoidd\n",
    "negative.yaml": "network:\n  depth: -2\n",
    "type.yaml": "seeds: many\n",
    "empty.yaml": "",
    "unsafe.yaml": "seeds: !!python/object/apply:os.system ['echo hi']\n",
    "oversized.yaml": "seeds: 100000\nnetwork: {width: 4096, depth: 20}\n",
    "list.yaml": "- 1\n",
    "loss.yaml": "loss: {name: focal, gama: 2}\n",
    "init.yaml": "network: {init: {scheme: normal, std: -1}}\n",
    "dataset.yaml": "data: {kind: spiral}\n",
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_input_exits_2_with_a_message_and_no_traceback(tmp_path, name):
    p = tmp_path / name
    p.write_text(BAD_FILES[name])
    r = invoke("run", str(p))
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert isinstance(r.exception, SystemExit) and r.exception.code == 2  # a clean exit, not a crash
    assert name in r.stderr and r.stderr.startswith("gradscope: error:")


def test_usage_errors_exit_2():
    assert invoke("run", "--format", "xml").exit_code == 2
    assert invoke("run", "--seeds", "0").exit_code == 2
    assert invoke("run", "--set", "network.depth").exit_code == 2
    assert invoke("run", "no/such/file.yaml").exit_code == 2
    assert invoke("run", "--max-memory", "lots").exit_code == 2
    r = invoke("run", "--max-memory", "1KiB")
    assert r.exit_code == 2 and "--max-memory" in r.stderr


def test_run_exits_1_when_its_expectation_fails(tmp_path):
    p = tmp_path / "e.yaml"
    p.write_text("seeds: 2\nnetwork: {depth: 8, width: 16, activation: sigmoid}\nexpect: {verdict: healthy}\n")
    r = invoke("run", str(p))
    assert r.exit_code == 1 and "expectation not met" in r.stderr


def test_check_bundled_scenarios_pass():
    paths = [str(bundled_path(n)) for n in bundled_names()]
    r = invoke("check", *paths, "--seeds", "4", "--no-color")
    assert r.exit_code == 0, r.stdout
    assert f"{len(paths)} passed, 0 failed" in r.stdout
    assert len(re.findall(r"^PASS ", r.stdout, flags=re.M)) == len(paths)


def test_check_failure_and_json(tmp_path):
    ok = tmp_path / "ok.yaml"
    ok.write_text("seeds: 4\nnetwork: {depth: 4, width: 32, activation: relu, init: he_normal}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seeds: 4\nnetwork: {depth: 8, width: 32, activation: sigmoid}\n")
    r = invoke("check", str(ok), str(bad), "--no-color")
    assert r.exit_code == 1
    assert re.search(r"PASS .*ok\.yaml", r.stdout) and re.search(r"FAIL .*bad\.yaml.*verdict is vanishing", r.stdout)
    r = invoke("check", str(ok), str(bad), "--format", "json")
    d = json.loads(r.stdout)
    assert r.exit_code == 1 and d["passed"] is False
    assert [x["passed"] for x in d["results"]] == [True, False]
    broken = tmp_path / "broken.yaml"
    broken.write_text("network: {depth: x}\n")
    assert invoke("check", str(ok), str(broken)).exit_code == 2


def test_list():
    r = invoke("list", "--format", "json")
    d = json.loads(r.stdout)
    assert {"activations", "losses", "inits", "datasets", "optimizers", "norms"} == set(d)
    assert "gelu" in [e["name"] for e in d["activations"]]
    assert [e["name"] for e in d["norms"]] == ["layernorm", "batchnorm", "rmsnorm"]
    r = invoke("list", "losses", "--no-color")
    assert r.exit_code == 0 and "cross_entropy" in r.stdout and "label_smoothing" in r.stdout
    assert invoke("list", "lossess").exit_code == 2


def test_schema_validates_bundled_scenarios_and_rejects_broken_ones():
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    r = invoke("schema")
    schema = json.loads(r.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    for n in bundled_names():
        errors = list(v.iter_errors(yaml.safe_load(bundled_path(n).read_text())))
        assert not errors, (n, [e.message for e in errors])
    for broken in ({"network": {"dpeth": 3}}, {"network": {"activation": "sigmoidd"}}, {"seeds": 0},
                   {"loss": {"name": "focal", "gama": 2}}, {"network": {"widths": [3], "depth": 2}}):
        assert list(v.iter_errors(broken)), broken


def test_init_writes_a_scenario_that_runs(tmp_path):
    p = tmp_path / "my.yaml"
    r = invoke("init", str(p))
    assert r.exit_code == 0 and p.exists()
    r = invoke("run", str(p), "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["summary"]["verdict"] == "healthy"
    assert invoke("init", str(p)).exit_code == 2  # exists
    assert invoke("init", str(p), "--force").exit_code == 0


def test_ctrl_c_exits_130_without_traceback(monkeypatch):
    import gradscope.api

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gradscope.api, "run", interrupted)
    r = invoke("run")
    assert r.exit_code == 130 and "interrupted" in r.stderr and "Traceback" not in r.output


def test_colour_is_on_for_terminals_and_off_with_no_color(monkeypatch):
    import re as _re

    colour = _re.compile(r"\x1b\[[0-9;]*3[0-7]m")
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert colour.search(invoke("run", *SMALL).stdout)
    assert not colour.search(invoke("run", *SMALL, "--no-color").stdout)
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour.search(invoke("run", *SMALL).stdout)


def test_step_columns_are_evenly_strided_and_end_at_the_last_record():
    from gradscope.render import _step_columns

    assert _step_columns(5) == [0, 1, 2, 3, 4]
    assert _step_columns(11, 9) == [0, 2, 4, 6, 8, 10]
    assert _step_columns(31, 9) == [0, 4, 8, 12, 16, 20, 24, 28, 30]
    assert _step_columns(9, 4) == [0, 3, 6, 8]


def test_text_with_brackets_and_colons_is_printed_as_given(tmp_path, monkeypatch):
    """rich's markup and emoji codes are off: a file name, label or scenario text like `a[bold]b` or `:smile:`
    is shown as it is (with markup on, `[bold]` vanished from compare's column headers and `[/]` raised)."""
    monkeypatch.chdir(tmp_path)
    a = "a[bold]b.yaml"
    (tmp_path / a).write_text('name: "n[/]:smile:"\ndescription: "[red]loud[/red]"\nnetwork: {depth: 2, width: 8}\n')
    b = "c[red]d.yaml"
    (tmp_path / b).write_text("network: {depth: 2, width: 8, activation: tanh}\n")
    res = runner.invoke(app, ["compare", a, b, "--seeds", "2"])
    assert res.exit_code == 0, res.output
    assert f"{a} ‖∂L/∂W‖" in res.output and f"{b} ‖∂L/∂W‖" in res.output
    res = runner.invoke(app, ["run", a, "--seeds", "2"])
    assert res.exit_code == 0, res.output
    assert "n[/]:smile: — [red]loud[/red]" in res.output
