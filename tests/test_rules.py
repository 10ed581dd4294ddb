"""The findings registry: one rule per code, the code table drawn from it, no code produced outside it."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from gradscope.report import Finding
from gradscope.rules import CODES, RULES, STAGES, Rules

PKG = Path(__file__).resolve().parents[1] / "gradscope"


def _literals(path: Path) -> set[str]:
    """Codes of the findings a module constructs: Finding("code", ...) calls with a literal first argument."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Finding" and node.args
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)}


def test_code_table_is_the_registry_and_each_code_has_one_rule():
    owners = [code for r in RULES for code in r.codes]
    assert len(owners) == len(set(owners))
    assert list(CODES) == owners
    assert all(r.stage in STAGES and r.codes for r in RULES)


def test_every_code_constructed_anywhere_is_registered_and_every_registered_code_is_produced():
    made = {p.name: _literals(p) for p in PKG.glob("*.py")}
    assert set().union(*made.values()) <= set(CODES)
    rules_src = made["rules.py"]
    for r in RULES:
        if r.check is not None:  # a rule in rules.py constructs each of its codes
            assert set(r.codes) <= rules_src, r.name
        else:  # a declared code is constructed by the module that declares producing it
            mod = importlib.import_module(r.producer)
            assert set(r.codes) <= _literals(Path(mod.__file__)), r.producer
    # codes constructed outside rules.py belong to a declared producer
    declared = {code: r.producer.rsplit(".", 1)[-1] + ".py" for r in RULES if r.check is None for code in r.codes}
    for name, codes in made.items():
        if name != "rules.py":
            assert all(declared.get(c) == name for c in codes), (name, codes)


def test_a_rule_emitting_a_code_it_did_not_register_fails_loudly():
    reg = Rules()

    @reg.register({"a-code": "one line"})
    def bad(ctx: object) -> Finding:
        return Finding("other-code", "info", (1,), "m", "h")

    with pytest.raises(AssertionError, match="other-code"):
        reg.run("pass", None)


def test_registration_rejects_a_taken_code_and_an_unknown_stage():
    reg = Rules()
    reg.register({"x": "one"})(lambda c: None)
    with pytest.raises(ValueError, match="already registered"):
        reg.register({"x": "again"})(lambda c: None)
    with pytest.raises(ValueError, match="unknown stage"):
        reg.register({"y": "one"}, stage="later")(lambda c: None)


def test_rules_run_in_registration_order_and_may_return_none_one_or_several():
    reg = Rules()
    reg.register({"b": "b"})(lambda c: Finding("b", "info", (1,), "m", "h"))
    reg.register({"n": "n"})(lambda c: None)
    reg.register({"a": "a", "c": "c"})(lambda c: [Finding("c", "info", (1,), "m", "h"),
                                                  Finding("a", "info", (1,), "m", "h")])
    reg.register({"j": "j"}, stage="jacobian")(lambda c: Finding("j", "info", (1,), "m", "h"))
    assert [f.code for f in reg.run("pass", None)] == ["b", "c", "a"]
    assert [f.code for f in reg.run("jacobian", None)] == ["j"]
    assert list(reg.codes) == ["b", "n", "a", "c", "j"]
