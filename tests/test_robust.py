"""Inputs that used to crash, hang or allocate without bound: each ends in exit 2 with one paragraph."""

from __future__ import annotations

import json
import math
import os
import sys
import time

import pytest
from typer.testing import CliRunner

import gradscope
from gradscope.cli import app
from gradscope.errors import GradscopeError, ScenarioError, shown
from gradscope.render import to_json
from gradscope.scenario import MAX_NODES, load_scenario

from .conftest import small

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def one_paragraph(r, *needles: str) -> None:
    """Exit 2, a single `gradscope: error:` line on stderr, no traceback, no Usage block."""
    assert r.exit_code == 2, r.output
    err = r.stderr
    assert err.startswith("gradscope: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "Usage:" not in err
    for n in needles:
        assert n in err, err


def refused(raw, *needles: str, **kw) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario(raw, **kw)
    for n in needles:
        assert n in info.value.message, info.value.message
    assert "\n" not in info.value.message
    return info.value


# ---------------------------------------------------------------- YAML and files


def test_recursive_alias_is_refused_with_its_line(tmp_path):
    f = tmp_path / "rec.yaml"
    f.write_text("name: x\na: &a [*a]\n")
    e = refused(f, "recursive alias")
    assert e.line == 2


def test_alias_expansion_is_refused_quickly(tmp_path):
    f = tmp_path / "laughs.yaml"
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    f.write_text("\n".join(lines) + "\n")  # 10**10 values once expanded, ~600 bytes
    t = time.perf_counter()
    refused(f, f"more than {MAX_NODES:,} values")
    assert time.perf_counter() - t < 2.0


def test_deep_nesting_is_refused_without_recursion_error(tmp_path):
    f = tmp_path / "deep.yaml"
    f.write_text("a: " + "[" * 50_000 + "]" * 50_000 + "\n")
    refused(f, "nested more than")
    deep: dict = {}
    node = deep
    for _ in range(5000):
        node["network"] = {}
        node = node["network"]
    refused(deep, "nested more than")
    loop: dict = {"network": {}}
    loop["network"]["init"] = loop
    refused(loop, "contains itself")
    refused(small(), "nested", overrides=["network.init=" + "[" * 5000 + "]" * 5000])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_and_devices_are_refused_without_reading(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    refused(fifo, "not a regular file")  # would block forever on open/read
    if os.path.exists("/dev/zero"):
        refused("/dev/zero", "not a regular file")  # would be read until memory runs out
    refused(tmp_path, "is a directory")


def test_file_names_the_os_cannot_take(tmp_path):
    refused(tmp_path / ("x" * 5000 + ".yaml"), "longer than the operating system allows")
    refused("a\x00b.yaml", "NUL byte")
    e = refused(tmp_path / ("y" * 5000 + ".yaml"))
    assert len(e.message) < 400  # the name is cut


def test_large_binary_and_unreadable_files(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("name: " + "x" * 1_200_000 + "\n")
    refused(big, "limit of a scenario file")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"name: \xff\xfe\n")
    refused(binary, "not UTF-8", "0xff")
    nul = tmp_path / "nul.yaml"
    nul.write_text("name: a\x00b\n")
    refused(nul, "invalid YAML", "\\x00")
    if os.name == "posix" and os.geteuid() != 0:
        locked = tmp_path / "locked.yaml"
        locked.write_text("name: x\n")
        locked.chmod(0)
        refused(locked, "cannot read")


def test_yaml_errors_are_one_line_with_the_line_number(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("name: x\nnetwork:\n  depth: [1, 2\n")
    e = refused(f, "invalid YAML")
    assert e.line is not None and "\n" not in e.message


def test_huge_integer_literals(tmp_path):
    f = tmp_path / "big.yaml"
    f.write_text("seed: " + "1" * 5000 + "\n")
    assert refused(f, "5,000 digits").line == 1
    refused(small(seed=10**5000), "seed", "digits")
    refused(small(seeds=10**400), "seeds", "≤ 10000")


# ---------------------------------------------------------------- bounds and numbers


@pytest.mark.parametrize(("raw", "needles"), [
    (small(train={"steps": 1e240}), ["train.steps", "≤ 1000000"]),
    (small(train={"steps": 10**30}), ["train.steps", "≤ 1000000"]),
    ({"network": {"depth": 2_000_000_000, "width": 4}}, ["network.depth", "≤ 10000"]),
    ({"network": {"widths": [4] * 20_000}}, ["network.widths"]),
    (small(seeds=2**63), ["seeds"]),
    (small(seed=2**70), ["seed"]),
    ({"network": {"width": 10**9, "depth": 1}}, ["network.width"]),
    ({"data": {"kind": "teacher", "hidden": 10**8}}, ["data.hidden"]),
])
def test_integer_keys_have_upper_bounds(raw, needles):
    t = time.perf_counter()
    refused(raw, *needles)
    assert time.perf_counter() - t < 2.0


@pytest.mark.parametrize(("key", "value"), [
    ("lr", math.inf), ("lr", math.nan), ("lr", "inf"), ("lr", 10**400), ("lr", "1e999"), ("lr", "x" * 10**6)])
def test_non_finite_and_overflowing_numbers_name_the_key(key, value):
    e = refused(small(train={key: value}), f"train.{key}")
    assert len(e.message) < 300


@pytest.mark.parametrize(("raw", "key"), [
    (small(init={"scheme": "normal", "std": -1}), "network.init.std"),
    (small(bias_init={"scheme": "normal", "std": -0.5}), "network.bias_init.std"),
    ({"data": {"kind": "gaussian", "std": -1}}, "data.std"),
    ({"data": {"kind": "uniform", "low": 2, "high": 1}}, "data.high"),
    ({"data": {"kind": "uniform", "low": 2}}, "data.low"),
    ({"network": {"activation": {"name": "hardtanh", "min_val": 2, "max_val": 1}}}, "network.activation.max_val"),
    ({"network": {"activation": {"name": "hardtanh", "min_val": 1, "max_val": 1}}}, "network.activation.max_val"),
    ({"network": {"input_dim": 4, "output_dim": 10}, "data": {"kind": "xor"}}, "network.output_dim"),
])
def test_invalid_ranges_and_combinations_are_refused(raw, key):
    refused(raw, key)


def test_xor_with_one_or_two_outputs_still_runs():
    load_scenario({"network": {"input_dim": 4, "output_dim": 2}, "data": {"kind": "xor"}})
    load_scenario({"network": {"input_dim": 4, "output_dim": 1}, "loss": "bce", "data": {"kind": "xor"}})


def test_invalid_range_names_the_line(tmp_path):
    f = tmp_path / "h.yaml"
    f.write_text("name: h\nnetwork:\n  activation:\n    name: hardtanh\n    min_val: 3\n")
    e = refused(f, "network.activation.min_val", "min_val < max_val")
    assert e.line == 5


# ---------------------------------------------------------------- strings


def test_values_in_messages_are_cut_and_escaped():
    evil = "\x1b[2J\u202e" + "A" * 1_000_000
    e = refused(small(activation=evil), "network.activation")
    assert len(e.message) < 400 and "\x1b" not in e.message and "\u202e" not in e.message
    assert "\\x1b" in e.message and "…" in e.message
    e = refused({"network": {evil: 1}})
    assert len(e.message) < 800 and "\x1b" not in e.message
    e = refused(small(), overrides=[f"loss={evil}"])
    assert "\x1b" not in e.message and len(e.message) < 400
    assert shown(10**5000).startswith("an integer of about")
    assert GradscopeError("a\nb\x00").message == "a b\\x00"


def test_cli_shows_cut_values_for_long_options():
    r = invoke("compare", "x" * 100_000, "y\x1b[31m")
    one_paragraph(r, "unknown variant")
    assert len(r.stderr) < 600 and "\x1b" not in r.stderr
    one_paragraph(invoke("list", "\u202e" * 5 + "z" * 10_000))


# ---------------------------------------------------------------- CLI options


@pytest.mark.parametrize(("args", "needle"), [
    (["run", "--seeds", "abc"], "--seeds"),
    (["run", "--seeds", "0"], "--seeds"),
    (["run", "--format", "xml"], "--format"),
    (["run", "--bogus"], "--bogus"),
    (["check"], "scenarios"),
    (["run", "--max-memory", "1e999"], "--max-memory"),
    (["run", "--max-memory", "nan"], "--max-memory"),
    (["run", "--max-memory", "9" * 5000], "--max-memory"),
    (["run", "--max-memory", "1e300GiB"], "--max-memory"),
    (["run", "--seeds", str(2**63)], "seeds"),
    (["run", "--seed", str(2**80)], "seed"),
    (["compare", "mse", "ce", "--target", "-1"], "--target"),
])
def test_bad_option_values_are_one_line_naming_the_option(args, needle):
    one_paragraph(invoke(*args), needle)


def test_no_arguments_still_prints_the_help():
    r = invoke()
    assert r.exit_code == 2 and "Commands" in r.output


def test_compare_single_output_probs_and_target_one(tmp_path):
    r = invoke("compare", "bce", "huber", "kl_div", "--probs", "0.3", "--target", "1")
    one_paragraph(r, "--probs")  # a softmax variant needs two or more probabilities: a clear refusal
    f = tmp_path / "binary.yaml"
    f.write_text("seeds: 2\nnetwork: {output_dim: 1, width: 8, depth: 2}\nloss: bce\n")
    r = invoke("compare", "bce", "huber", "--probs", "0.3", "--target", "1", "--scenario", str(f),
               "--format", "json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["probs"]
    assert rows[0]["bce"]["grad"] == pytest.approx([0.3 - 1.0])  # sigmoid + BCE: ŷ − y with y = 1
    r = invoke("compare", "bce", "huber", "--probs", "0.3", "--target", "0", "--scenario", str(f),
               "--format", "json")
    assert json.loads(r.stdout)["probs"][0]["bce"]["grad"] == pytest.approx([0.3])  # y = 0


# ---------------------------------------------------------------- output


def test_json_holds_non_finite_values_as_null():
    text = to_json({"a": math.inf, "b": [math.nan, -math.inf, 1.5], "c": {"d": float("nan")}})
    assert json.loads(text) == {"a": None, "b": [None, None, 1.5], "c": {"d": None}}


def test_exploding_report_is_valid_json_and_warning_free():
    # a backward factor of ~1e4 per layer: the extrapolation to 100 layers overflows a float
    sc = small(init={"scheme": "normal", "std": 1e6}, widths=[64] * 12, activation="relu", seeds=2)
    r = invoke("run", "--format", "json", "--set", f"network.widths={[64] * 12}", "--set",
               "network.init={scheme: normal, std: 1000000.0}", "--set", "network.activation=relu",
               "--seeds", "2", "--set", "expect=null")
    assert r.exit_code == 0, r.output
    assert r.stderr == ""
    report = json.loads(r.stdout)
    assert report["summary"]["verdict"] in ("overflow", "exploding")
    gradscope.run(sc)


def test_python_api_refuses_what_is_not_a_scenario():
    with pytest.raises(GradscopeError):
        gradscope.load_scenario(42)  # type: ignore[arg-type]
    with pytest.raises(GradscopeError):
        gradscope.run(b"scenario.yaml")  # type: ignore[arg-type]


def test_no_warning_output_on_extreme_valid_scenarios():
    import subprocess

    code = ("import gradscope, json\n"
            "from gradscope.render import to_json\n"
            "for std in (1e-30, 1e30, 1e150):\n"
            "    r = gradscope.run({'seeds': 2, 'network': {'widths': [16]*6, 'activation': 'tanh',"
            " 'init': {'scheme': 'normal', 'std': std}}, 'data': {'batch_size': 8}})\n"
            "    json.loads(to_json(r.to_dict()))\n")
    p = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stderr == "", p.stderr[-2000:]


# ---------------------------------------------------------------- defaults in one place


def test_optimizer_defaults_come_from_the_registry(monkeypatch):
    from dataclasses import replace

    from gradscope.catalog import catalog
    from gradscope.optimizers import OPTIMIZERS

    listed = {o["name"]: o["params"] for o in catalog()["optimizers"]}
    for name in ("sgd", "momentum", "adam"):
        train = load_scenario(small(train={"optimizer": name, "steps": 2})).train
        for key, spec in listed[name].items():
            assert train[key] == spec["default"], (name, key)
    assert load_scenario(small(train={"optimizer": "adam"})).train["lr"] == 1e-3  # was 0.1
    # the scenario reads the registry at load time: change the entry, the default follows
    adam = OPTIMIZERS.get("adam")
    params = tuple(replace(p, default=0.0042) if p.name == "lr" else p for p in adam.params)
    monkeypatch.setitem(OPTIMIZERS._entries, "adam", replace(adam, params=params))
    assert load_scenario(small(train={"optimizer": "adam"})).train["lr"] == 0.0042


def test_adam_without_lr_trains_at_the_listed_rate():
    report = gradscope.run(small(train={"optimizer": "adam", "steps": 2, "train_size": 8, "holdout": 8}))
    assert report.to_dict()["training"]["lr"] == 1e-3


def test_a_hyperparameter_the_optimizer_lacks_is_refused():
    refused(small(train={"optimizer": "adam", "momentum": 0.9}), "train.momentum", "adam optimizer has no momentum")
    refused(small(train={"optimizer": "sgd", "beta1": 0.9}), "train.beta1")
    sc = load_scenario(small(train={"optimizer": "momentum", "momentum": 0.5}))
    assert load_scenario(sc.to_dict()).train == sc.train


def test_schema_states_each_optimizers_default():
    from gradscope.schema import scenario_schema

    lr = scenario_schema()["properties"]["train"]["anyOf"][0]["properties"]["lr"]
    assert "adam 0.001" in lr["description"] and "sgd 0.1" in lr["description"]


# ---------------------------------------------------------------- gains calculate_gain cannot give


@pytest.mark.parametrize("act", ["gelu", "silu", "softsign", "elu", "softplus", "hardtanh"])
def test_auto_gain_for_an_activation_torch_has_no_gain_for(act):
    refused(small(activation=act, init={"scheme": "xavier_uniform", "gain": "auto"}), "network.init.gain",
            f"no gain for the hidden activation {act}")
    refused(small(init={"scheme": "orthogonal", "gain": act}), "network.init.gain")
    refused(small(init={"scheme": "he_normal", "nonlinearity": act}), "network.init.nonlinearity")


def test_auto_gain_of_the_output_layer_is_linear():
    import numpy as np

    # the output layer (softmax head, cross_entropy) is a linear layer: calculate_gain('linear') = 1
    sc = load_scenario(small(activation="tanh", init={"scheme": "orthogonal", "gain": "auto"}, widths=[6, 6]))
    params = gradscope.run(sc).arrays[0]
    W = params.W
    np.testing.assert_allclose(np.linalg.svd(W[0][0], compute_uv=False), 5.0 / 3.0, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.svd(W[-1][0], compute_uv=False), 1.0, rtol=1e-12)
    r = invoke("run", "--seeds", "2", "--set", "network.init={scheme: he_normal, nonlinearity: auto}",
               "--set", "expect=null", "--set", "network.activation=relu", "--quiet")
    assert r.exit_code == 0, r.output


def test_unknown_nonlinearity_names_the_key_and_the_set_option():
    r = invoke("run", "--set", "network.init={scheme: he_normal, nonlinearity: xyz}")
    one_paragraph(r, "--set network.init=", "network.init.nonlinearity", "unknown nonlinearity 'xyz'")


# ---------------------------------------------------------------- found by the fuzz test


@pytest.mark.parametrize(("raw", "key"), [
    (small(widths=[None]), "network.widths.0"),                     # was TypeError int * None
    (small(expect={"verdict": None}), "expect.verdict.0"),            # was TypeError in the check
    (small(expect={"findings": [None]}), "expect.findings.0"),
    (small(expect={"layers": [{"layer": None}]}), "expect.layers.0"),  # was TypeError None > int
    (small(init={"scheme": "xavier_uniform", "gain": -1.0}), "network.init.gain"),
    (small(init={"scheme": "he_uniform", "nonlinearity": ""}), "network.init.nonlinearity"),  # was KeyError
])
def test_fuzz_found_inputs_are_refused(raw, key):
    refused(raw, key)


def test_negative_zero_bounds_run():
    # -0.0 passed the ≥ 0 checks and turned uniform ranges around (numpy: high - low < 0)
    for init in ({"scheme": "xavier_uniform", "gain": -0.0}, {"scheme": "uniform", "a": -0.0}):
        assert gradscope.run(small(init=init)).summary.verdict


def test_subnormal_gradients_render():
    # ‖∂L/∂W‖ spanning more than 308 decades: the flow bar's ratio overflowed (OverflowError in the table)
    import io

    from gradscope import render

    tiny = {"scheme": "normal", "std": 2.2250738585e-313}
    report = gradscope.run({"seed": 0, "network": {"input_dim": 1, "init": tiny, "bias_init": "standard"}})
    render.make_console(file=io.StringIO(), width=160).print(render.run_renderable(report))
    assert render.bar_decades(1e-300, 1e10) == 310
    assert render.log_bar(1e-320, 1e-320, 1e10) == "█"


# ---------------------------------------------------------------- new-user trial: bounds, duplicates, sources


_HUGE = [("network", "init", {"scheme": "normal", "std": 1.0e300}, "std"),
         ("network", "init", {"scheme": "xavier_uniform", "gain": 1.0e300}, "gain"),
         ("network", "bias_init", {"scheme": "normal", "std": 1.0e300}, "std"),
         ("network", "init", {"scheme": "he_normal", "negative_slope": 1.0e300}, "negative_slope"),
         ("network", "activation", {"name": "elu", "alpha": 1.0e300}, "alpha"),
         ("top", "data", {"kind": "gaussian", "std": 1.0e300}, "std"),
         ("top", "data", {"kind": "uniform", "low": -1.0e300}, "low"),
         ("top", "data", {"kind": "blobs", "separation": 1.0e300}, "separation"),
         ("top", "loss", {"name": "huber", "delta": 1.0e300}, "delta")]


@pytest.mark.parametrize("where,key,value,param", _HUGE)
def test_float_parameters_beyond_the_magnitude_bound_are_refused(where, key, value, param):
    sc = small(**{key: value}) if where == "network" else {**small(), key: value}
    if key == "loss":
        sc["network"]["output_dim"] = 3
    e = refused(sc, "1e+150", "1e+300")
    assert e.path == f"{'network.' if where == 'network' else ''}{key}.{param}"


def test_the_magnitude_bound_on_the_cli_names_key_and_line(tmp_path):
    f = tmp_path / "huge.yaml"
    f.write_text("network:\n  depth: 2\n  width: 4\n  init:\n    scheme: normal\n    std: 1.0e+300\n")
    one_paragraph(invoke("run", str(f)), f"{f}:6", "network.init.std", "1e+150")


def _extreme_variants():
    """Every float registry parameter at the edge of its range (±1e150 where unbounded)."""
    from gradscope.activations import ACTIVATIONS
    from gradscope.datasets import DATASETS
    from gradscope.inits import BIAS_SCHEMES, INITS
    from gradscope.losses import LOSSES
    from gradscope.optimizers import OPTIMIZERS

    regs = [("activation", ACTIVATIONS, "name", None), ("init", INITS, "scheme", None),
            ("bias_init", INITS, "scheme", BIAS_SCHEMES), ("loss", LOSSES, "name", None),
            ("data", DATASETS, "kind", None), ("train", OPTIMIZERS, "optimizer", None)]
    for key, reg, name_key, allowed in regs:
        for entry in reg:
            if allowed is not None and entry.name not in allowed:
                continue
            for p in entry.params:
                if p.type not in ("float", "gain"):
                    continue
                lo, hi = p.range()
                for edge in (lo, hi):
                    if edge is None or (edge == p.minimum and p.exclusive_minimum) \
                            or (edge == p.maximum and p.exclusive_maximum):
                        continue
                    yield key, {name_key: entry.name, p.name: edge}


def test_every_float_parameter_at_its_bound_runs_without_a_traceback():
    """The bound is what keeps the arithmetic finite: at ±1e150 every parameter either runs (possibly to an
    overflow verdict) or is refused as a combination, never a Python exception."""
    ran = 0
    for key, comp in _extreme_variants():
        sc = small()
        sc["seeds"] = 1
        if key in ("activation", "init", "bias_init"):
            sc["network"][key] = comp
        elif key == "train":
            sc["train"] = {**comp, "steps": 2, "train_size": 8, "holdout": 4, "record_every": 1}
        else:
            sc[key] = comp
            if key == "loss":
                sc["network"]["output_dim"] = 3
        try:
            scenario = load_scenario(sc)
        except ScenarioError:
            continue
        gradscope.run(scenario)
        ran += 1
    assert ran > 40


@pytest.mark.parametrize("beta", ["beta1", "beta2"])
def test_adam_beta_of_one_is_refused_like_torch(beta):
    refused({**small(), "train": {"optimizer": "adam", beta: 1}}, "must be < 1", "got 1")
    load_scenario({**small(), "train": {"optimizer": "adam", beta: 0.0}})
    r = invoke("run", "--set", f"train={{optimizer: adam, {beta}: 1.0}}")
    one_paragraph(r, f"train.{beta}", "must be < 1")


def test_schema_shows_the_bounds():
    from gradscope.schema import scenario_schema

    text = json.dumps(scenario_schema())
    assert '"exclusiveMaximum": 1.0' in text and "1e+150" in text


def test_train_key_bounds_agree_with_the_optimizer_registry():
    from gradscope.optimizers import OPTIMIZERS
    from gradscope.registry import MAX_MAGNITUDE
    from gradscope.scenario import TRAIN_KEYS

    for entry in OPTIMIZERS:
        for p in entry.params:
            k = TRAIN_KEYS[p.name]
            assert (k.minimum, k.exclusive_minimum, k.exclusive_maximum) == \
                (p.minimum, p.exclusive_minimum, p.exclusive_maximum), p.name
            assert k.maximum == (p.maximum if p.maximum is not None else MAX_MAGNITUDE), p.name


@pytest.mark.parametrize("text,line,path", [("seeds: 4\nseeds: 8\n", 2, "seeds"),
                                            ("network: {depth: 3, depth: 50}\n", 1, "network.depth"),
                                            ("network:\n  depth: 3\n  width: 4\n  depth: 50\n", 4, "network.depth")])
def test_duplicate_yaml_keys_are_refused_with_the_line(tmp_path, text, line, path):
    f = tmp_path / "dup.yaml"
    f.write_text(text)
    e = refused(f, "duplicate key")
    assert (e.line, e.path) == (line, path)
    one_paragraph(invoke("run", str(f)), f"{f}:{line}", path, "duplicate key")


def test_yaml_merge_keys_are_not_duplicates(tmp_path):
    f = tmp_path / "merge.yaml"
    f.write_text("base: &b {depth: 2, width: 4}\n")
    with pytest.raises(ScenarioError) as info:  # `base` is unknown, but the YAML itself parses
        load_scenario(f)
    assert "duplicate" not in info.value.message
    f.write_text("network: {<<: {depth: 2, width: 4}, input_dim: 3}\n")
    assert load_scenario(f).sizes[:2] == (3, 4)


@pytest.mark.parametrize("layer", [99, 10, 0, -10])
def test_expect_layers_naming_a_missing_layer_is_bad_input(tmp_path, layer):
    f = tmp_path / "layers.yaml"
    f.write_text(f"network: {{depth: 8, width: 4}}\nexpect:\n  layers:\n    - layer: {layer}\n      status: healthy\n")
    e = refused(f, f"layer {layer} does not exist", "9 layers")
    assert (e.line, e.path) == (4, "expect.layers.0.layer")
    one_paragraph(invoke("run", str(f)), "expect.layers.0.layer")
    r = invoke("check", str(f))
    assert r.exit_code == 2, r.output
    for ok in (9, -9, 1, -1):
        f.write_text(f"network: {{depth: 8, width: 4}}\nexpect:\n  layers:\n    - layer: {ok}\n")
        load_scenario(f)


@pytest.mark.parametrize("args,source", [(["--set", "network.depth.x=3"], "--set network.depth.x=3"),
                                         (["--set", "network.widths=[1e400]"], "--set network.widths=[1e400]"),
                                         (["--seeds", "99999"], "--seeds 99999")])
def test_errors_under_an_override_name_the_override(args, source):
    r = invoke("run", *args)
    one_paragraph(r, f"error: {source}, key")
    assert "bundled" not in r.stderr


def test_compare_target_without_probs_is_an_error():
    r = invoke("compare", "mse", "ce", "--target", "2")
    one_paragraph(r, "--target needs --probs")
    with pytest.raises(GradscopeError, match="--target needs --probs"):
        gradscope.compare(None, ["mse", "ce"], target=1)


def test_compare_axis_message_spells_losses():
    r = invoke("compare", "sigmoid", "relu", "--axis", "loss")
    one_paragraph(r, "known losses: mse")
    assert "losss" not in r.stderr


@pytest.mark.parametrize("cmd", ["run", "check"])
def test_an_empty_scenario_path_says_so(cmd):
    r = invoke(cmd, "")
    assert r.exit_code == 2, r.output
    assert "path is empty" in r.output + r.stderr and "directory" not in r.output + r.stderr
    refused("", "path is empty")


def test_init_variance_arithmetic_overflows_to_inf_not_an_exception():
    """Below the validation bound too: a Python float squared with ** raises OverflowError; x*x gives inf."""
    from gradscope.inits import INITS, LayerContext, bias_variance

    ctx = LayerContext()
    assert INITS.get("normal").variance(4, 4, ctx, std=1e300) == math.inf
    assert INITS.get("xavier_uniform").variance(4, 4, ctx, gain=1e300) == math.inf
    assert INITS.get("he_normal").variance(4, 4, ctx, negative_slope=1e300) == 0.0
    assert bias_variance("normal", {"std": 1e300}, 4) == math.inf


def test_teacher_with_a_subnormal_temperature_gives_one_hot_targets_without_warning():
    """Found by the fuzz: data.temperature 5e-324 (> 0, so valid) overflowed values/temperature with a
    RuntimeWarning and gave NaN targets; the limit is the argmax one-hot."""
    import warnings

    import numpy as np

    from gradscope import load_scenario, run
    raw = {"seeds": 2, "network": {"depth": 1, "width": 4, "output_dim": 3}, "loss": "kl_div",
           "data": {"kind": "teacher", "batch_size": 8, "temperature": 5e-324}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = run(load_scenario(raw))
    target = r.arrays[1].target
    assert np.isfinite(target).all() and set(np.unique(target)) <= {0.0, 1.0}
    assert np.all(target.sum(axis=1) == 1.0)


def test_softplus_with_a_subnormal_beta_is_refused_naming_the_key():
    """Found by the fuzz: softplus beta 5e-324 (> 0, accepted) overflowed log(1+e^(βz))/β with a RuntimeWarning in
    the pass and the mean-field quadrature; beta below 1e-150 is now bad input, like |floats| above 1e150."""
    from gradscope import load_scenario
    from gradscope.errors import GradscopeError
    with pytest.raises(GradscopeError, match=r"network\.activation\.beta.*1e-150"):
        load_scenario({"network": {"depth": 2, "width": 4, "activation": {"name": "softplus", "beta": 5e-324}}})
    load_scenario({"network": {"depth": 2, "width": 4, "activation": {"name": "softplus", "beta": 1e-150}}})
