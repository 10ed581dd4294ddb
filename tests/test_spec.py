"""Scenario keys and registry parameters are one spec type, validated by one function and rendered into the
JSON Schema by one function: a bound declared once is enforced and documented the same way everywhere."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gradscope import scenario, schema
from gradscope.activations import ACTIVATIONS
from gradscope.cli import app
from gradscope.datasets import DATASETS
from gradscope.errors import ScenarioError
from gradscope.inits import INITS
from gradscope.layers import NORMS
from gradscope.losses import LOSSES
from gradscope.optimizers import OPTIMIZERS
from gradscope.registry import Param
from gradscope.scenario import NETWORK_KEYS, TRAIN_KEYS, Key, load_scenario
from gradscope.spec import MAX_MAGNITUDE, Spec

from .conftest import small

TABLES = {name: getattr(scenario, name) for name in dir(scenario) if name.endswith("_KEYS")}
REGISTRIES = (ACTIVATIONS, INITS, LOSSES, DATASETS, OPTIMIZERS, NORMS)


def _message(raw) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(raw)
    return info.value.message


def test_keys_and_parameters_are_one_type():
    assert Key is Spec
    assert len(TABLES) >= 10
    for table in TABLES.values():
        assert all(type(k) is Spec for k in table.values())
    params = [p for reg in REGISTRIES for e in reg for p in e.params]
    assert len(params) > 30 and all(type(p) is Spec and p.name for p in params)
    std = Param("std", float, 1.0, "standard deviation", minimum=0.0)
    assert std == Spec("float", 1.0, "standard deviation", minimum=0.0, name="std", magnitude=True)
    assert std.range() == (0.0, MAX_MAGNITUDE)


def test_one_validation_function_for_keys_and_parameters(monkeypatch):
    seen: list[tuple] = []
    check = scenario._Validator.check

    def spy(self, value, path, spec):
        seen.append((path, spec))
        return check(self, value, path, spec)

    monkeypatch.setattr(scenario._Validator, "check", spy)
    raw = small()
    raw["network"].update(dropout=0.1, init={"scheme": "normal", "std": 0.5})
    raw["train"] = {"lr": 0.01, "steps": 2}
    load_scenario(raw)
    std = INITS.get("normal").params[0]
    assert (("network", "dropout"), NETWORK_KEYS["dropout"]) in seen      # a scenario key
    assert (("network", "init", "std"), std) in seen                     # a registry parameter
    assert (("train", "lr"), TRAIN_KEYS["lr"]) in seen


def test_a_bound_is_enforced_identically_for_a_key_and_a_parameter():
    """train.lr (a scenario key) and a norm's eps (a registry parameter) both declare `> 0`; huber's delta too."""
    key = _message({**small(), "train": {"lr": 0}})
    param = _message({**small(), "network": {**small()["network"], "norm": {"kind": "layernorm", "eps": 0}}})
    loss = _message({**small(), "loss": {"name": "huber", "delta": 0}})
    assert key.split(": ", 1)[1] == param.split(": ", 1)[1] == loss.split(": ", 1)[1] == "must be > 0, got 0"
    # the same spec, used as a key and as a parameter, refuses the same values with the same words
    spec = Spec("float", 0.5, "a probability", minimum=0.0, maximum=1.0, exclusive_maximum=True)
    v = scenario._Validator("<t>", {}, {})
    for bad, words in ((1.0, "must be < 1, got 1"), (-0.5, "must be ≥ 0, got -0.5"), ("x", "expected a number")):
        with pytest.raises(ScenarioError, match=words):
            v.check(bad, ("k",), spec)
    assert v.check(0.25, ("k",), spec) == 0.25


def test_one_schema_function_and_its_bounds_are_the_validated_range(monkeypatch):
    rendered: list[Spec] = []
    render = schema.spec_schema

    def spy(s):
        rendered.append(s)
        return render(s)

    monkeypatch.setattr(schema, "spec_schema", spy)
    schema.scenario_schema()
    assert TRAIN_KEYS["lr"] in rendered and NORMS.get("layernorm").params[0] in rendered
    lr, eps = render(TRAIN_KEYS["lr"]), render(NORMS.get("layernorm").params[0])
    assert lr["anyOf"][0]["anyOf"][0]["exclusiveMinimum"] == eps["anyOf"][0]["exclusiveMinimum"] == 0.0
    # every numeric spec, key or parameter: the schema's bounds are exactly what validation enforces
    specs = [s for t in TABLES.values() for s in t.values()] + [p for r in REGISTRIES for e in r for p in e.params]
    checked = 0
    for s in specs:
        if s.type not in ("int", "float"):
            continue
        node = render(s)
        while "anyOf" in node:
            node = node["anyOf"][0]
        lo, hi = s.range()
        assert node.get("exclusiveMinimum" if s.exclusive_minimum else "minimum") == lo, s
        assert node.get("exclusiveMaximum" if s.exclusive_maximum else "maximum") == hi, s
        checked += 1
    assert checked > 60


@pytest.mark.parametrize("raw,path,setting", [
    ({"data": {"kind": "teacher", "hidden": None}}, "data.hidden", "data={kind: teacher, hidden: null}"),
    ({"network": {"init": {"scheme": "he_normal", "nonlinearity": None}}}, "network.init.nonlinearity",
     "network.init={scheme: he_normal, nonlinearity: null}")])
def test_an_empty_parameter_is_refused_like_an_empty_key(raw, path, setting):
    """Before the specs were one type, an int or free-text parameter given null loaded and crashed the run."""
    merged = small()
    for k, v in raw.items():
        merged[k] = {**merged[k], **v}
    with pytest.raises(ScenarioError) as info:
        load_scenario(merged)
    assert (info.value.path, info.value.message.split(": ", 1)[1]) == (path, "must not be empty")
    r = CliRunner().invoke(app, ["run", "--set", setting])
    assert r.exit_code == 2 and "must not be empty" in r.stderr and "Traceback" not in r.stderr
