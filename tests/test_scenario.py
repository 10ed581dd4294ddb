import textwrap
from pathlib import Path

import pytest

from gradscope.errors import ScenarioError
from gradscope.scenario import bundled_names, bundled_path, load_scenario


def _write(tmp_path, text, name="s.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


BAD = {
    "yaml_syntax": ("network: [1, 2\n", ["invalid YAML", ":2"]),
    "unknown_key": ("network:\n  dpeth: 3\n", ["network.dpeth", "did you mean 'depth'", ":2"]),
    "unknown_top": ("netwrok:\n  depth: 3\n", ["netwrok", "did you mean 'network'", ":1"]),
    "unknown_activation": ("network:\n  activation: sigmoidd\n", ["unknown activation 'sigmoidd'",
                                                                   "did you mean 'sigmoid'", ":2"]),
    "unknown_loss": ("loss: cross_entropi\n", ["unknown loss", "did you mean 'cross_entropy'"]),
    "unknown_init": ("network: {init: xavier}\n", ["unknown init scheme 'xavier'"]),
    "unknown_param": ("loss: {name: focal, gama: 2}\n", ["loss.gama", "did you mean 'gamma'"]),
    "negative_size": ("network:\n  depth: 2\n  width: -4\n", ["network.width", "must be ≥ 1", ":3"]),
    "wrong_type": ("network:\n  width: wide\n", ["network.width", "expected an integer"]),
    "bool_for_int": ("seeds: true\n", ["seeds", "expected an integer"]),
    "empty_file": ("", ["empty"]),
    "unsafe_tag": ("seeds: !!python/object/apply:os.system ['echo hi']\n", ["invalid YAML", "safe-loaded"]),
    "list_top": ("- a\n- b\n", ["must be a mapping"]),
    "both_widths_and_depth": ("network: {widths: [3], depth: 2}\n", ["either `widths` or `depth`"]),
    "activation_list_length": ("network:\n  widths: [4, 4]\n  activation: [relu]\n", ["one per hidden layer"]),
    "ce_with_identity_head": ("network: {output_activation: identity}\nloss: cross_entropy\n",
                              ["output_activation must be softmax"]),
    "bad_dtype": ("dtype: float16\n", ["dtype", "not one of"]),
    "ce_one_output": ("network: {output_dim: 1}\nloss: cross_entropy\n", ["at least 2 classes"]),
    "xor_one_input": ("network: {input_dim: 1}\ndata: {kind: xor}\n", ["input_dim ≥ 2"]),
    "unknown_dataset_param": ("data: {kind: blobs, nosie: 0.1}\n", ["data.nosie"]),
    "bad_class_weights": ("network: {output_dim: 3}\nloss: {name: cross_entropy, weight: [1, 2]}\n",
                          ["one weight per class"]),
    "expect_bad_verdict": ("expect: {verdict: fine}\n", ["expect.verdict", "not one of"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_scenarios_name_file_key_and_line(tmp_path, case):
    text, needles = BAD[case]
    p = _write(tmp_path, text)
    with pytest.raises(ScenarioError) as exc:
        load_scenario(p)
    msg = str(exc.value)
    assert str(p) in msg
    for needle in needles:
        assert needle in msg, (needle, msg)


def test_defaults_are_filled_and_roundtrip(tmp_path):
    sc = load_scenario({"network": {"depth": 2, "width": 8}})
    d = sc.to_dict()
    assert d["network"]["widths"] == [8, 8]
    assert d["network"]["output_activation"] == "softmax"  # cross_entropy's head
    assert d["seeds"] == 16 and d["dtype"] == "float64"
    assert load_scenario(d).to_dict() == d


def test_depth_and_width_or_widths():
    assert load_scenario({"network": {"depth": 3, "width": 5}}).sizes == (32, 5, 5, 5, 10)
    assert load_scenario({"network": {"widths": [7, 3], "input_dim": 2, "output_dim": 4}}).sizes == (2, 7, 3, 4)


def test_overrides(tmp_path):
    p = _write(tmp_path, "network:\n  depth: 2\nloss: mse\n")
    sc = load_scenario(p, overrides=["network.depth=5", "loss.reduction=sum", "network.init.scheme=normal",
                                     "network.init.std=0.5"], seeds=3, seed=9)
    assert sc.depth == 5 and sc.loss.params["reduction"] == "sum" and sc.seeds == 3 and sc.seed == 9
    assert sc.init.name == "normal" and sc.init.params["std"] == 0.5
    with pytest.raises(ScenarioError, match="--set network.dpth=3"):
        load_scenario(p, overrides=["network.dpth=3"])
    with pytest.raises(ScenarioError, match="key.path=value"):
        load_scenario(p, overrides=["network.depth"])


def test_yaml_1_1_exponent_strings_are_numbers():
    sc = load_scenario({"diagnostics": {"vanishing_ratio": "1e-3"}})
    assert sc.diagnostics["vanishing_ratio"] == 1e-3


def test_components_take_params_and_aliases():
    sc = load_scenario({"network": {"activation": {"name": "leaky_relu", "negative_slope": 0.2},
                                    "init": {"scheme": "kaiming_normal", "mode": "fan_out"}},
                        "loss": "ce"})
    assert sc.activations[0].params == {"negative_slope": 0.2}
    assert sc.init.name == "he_normal" and sc.init.params["mode"] == "fan_out"
    assert sc.loss.name == "cross_entropy"


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ScenarioError, match="no such file"):
        load_scenario(tmp_path / "nope.yaml")
    with pytest.raises(ScenarioError, match="directory"):
        load_scenario(tmp_path)


def test_bundled_default_exists_and_loads():
    assert "deep-sigmoid.yaml" in bundled_names()
    assert load_scenario().name == "deep-sigmoid"
    assert load_scenario().to_dict() == load_scenario(bundled_path("deep-sigmoid.yaml")).to_dict()
    assert load_scenario().to_dict() != load_scenario(bundled_path("relu-he.yaml")).to_dict()
    # the repository's scenarios/ (what the README's examples use) is the packaged directory itself
    repo = Path(__file__).resolve().parents[1]
    assert (repo / "scenarios").resolve() == bundled_path("").resolve()


@pytest.mark.parametrize("name", bundled_names())
def test_every_bundled_scenario_loads_and_states_a_claim(name):
    sc = load_scenario(bundled_path(name))
    assert sc.expect, f"{name} has no expect: block"
    assert bundled_path(name).read_text().startswith("# Claim"), f"{name} lacks its claim comment"


def test_shape_overrides_replace_each_other():
    base = {"network": {"depth": 3, "width": 16}}
    assert load_scenario(base, overrides=["network.widths=[8, 4]"]).sizes == (32, 8, 4, 10)
    uniform = {"network": {"widths": [16, 16, 16]}}
    assert load_scenario(uniform, overrides=["network.depth=5"]).sizes == (32, 16, 16, 16, 16, 16, 10)
    assert load_scenario(uniform, overrides=["network.width=4"]).sizes == (32, 4, 4, 4, 10)
    with pytest.raises(ScenarioError, match="either `widths`"):
        load_scenario({"network": {"widths": [16, 8]}}, overrides=["network.depth=5"])


def test_the_stored_default_scenario_is_the_bundled_yaml_as_read():
    """`gradscope run` without a file loads gradscope/default_scenario.py (no YAML parser imported): its data and
    line map are what parse_yaml makes of the bundled file (rewrite it with `python -m gradscope.default_scenario`
    after editing the YAML), and loading it gives the same scenario as loading the file."""
    from gradscope import default_scenario
    from gradscope.scenario import DEFAULT_SCENARIO, bundled_path, load_scenario, parse_yaml

    assert default_scenario.SOURCE == DEFAULT_SCENARIO
    raw, lines = parse_yaml(bundled_path().read_text(encoding="utf-8"), DEFAULT_SCENARIO)
    assert raw == default_scenario.RAW and lines == default_scenario.LINES
    assert repr(raw) == repr(default_scenario.RAW)  # the same types too (1000 stays an int, 1.0e-3 a float)
    stored, from_file = load_scenario(None), load_scenario(bundled_path())
    assert stored.to_dict() == from_file.to_dict()
    assert stored.source == f"<bundled {DEFAULT_SCENARIO}>"
    before = repr(default_scenario.RAW)
    load_scenario(None, overrides=["network.depth=3", "seeds=2"])  # overrides work on a copy
    assert repr(default_scenario.RAW) == before
