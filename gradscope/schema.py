"""JSON Schema of the scenario format, generated from the same key tables and registries the loader uses."""

from __future__ import annotations

from typing import Any

from . import __version__
from .activations import ACTIVATIONS, OUTPUT_ACTIVATIONS
from .datasets import DATASETS
from .inits import BIAS_SCHEMES, INITS
from .layers import NORMS
from .losses import LOSSES
from .registry import Registry
from .scenario import (
    ANALYSIS_KEYS,
    BLOCK_KEYS,
    DATA_KEYS,
    DENSE_KEYS,
    DIAGNOSTICS_KEYS,
    EXPECT_ALLOW_KEYS,
    EXPECT_KEYS,
    EXPECT_LAYER_KEYS,
    JACOBIAN_KEYS,
    NETWORK_KEYS,
    RESIDUAL_KEYS,
    SWEEP_KEYS,
    TOP_KEYS,
    TRAIN_KEYS,
)
from .spec import Spec

_NUMBER_STRING = {"type": "string", "pattern": r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"}


def _finish(base: dict[str, Any], *, numeric: bool, is_float: bool, minimum: float | None, maximum: float | None,
            exclusive_minimum: bool, choices: tuple[Any, ...] | None, nullable: bool, help: str,
            default: Any, exclusive_maximum: bool = False) -> dict[str, Any]:
    """Bounds, choices, the YAML-1.1 number-as-string form, null, description and default of one value."""
    if minimum is not None and numeric:
        base["exclusiveMinimum" if exclusive_minimum else "minimum"] = minimum
    if maximum is not None and numeric:
        base["exclusiveMaximum" if exclusive_maximum else "maximum"] = maximum
    if choices is not None:
        base["enum"] = list(choices)
    if is_float:  # YAML 1.1 reads 1e-3 as a string; the loader accepts it
        base = {"anyOf": [base, _NUMBER_STRING]}
    if nullable:
        base = {"anyOf": [base, {"type": "null"}]}
    base["description"] = help
    if default is not None:
        base["default"] = default
    return base


_TYPES: dict[str, dict[str, Any]] = {
    "int": {"type": "integer"}, "float": {"type": "number"}, "bool": {"type": "boolean"}, "str": {"type": "string"},
    "list[int]": {"type": "array", "items": {"type": "integer", "minimum": 1}},
    "list[float]": {"type": "array", "items": {"type": "number"}}, "gain": {"type": ["number", "string"]},
}


def spec_schema(s: Spec) -> dict[str, Any]:
    """The JSON Schema of one spec'd value, scenario key and registry parameter alike; its bounds are
    `s.range()`, the ones validation enforces."""
    if s.type == "list[str]":
        item: dict[str, Any] = {"type": "string"}
        if s.choices:
            item["enum"] = list(s.choices)
        return {"description": s.help, "anyOf": [item, {"type": "array", "items": item}]}
    base = dict(_TYPES.get(s.type, {}))
    lo, hi = s.range()
    if s.type == "list[float]":  # the bound applies to every number of the list
        base["items"] = {**base["items"], "minimum": lo, "maximum": hi}
        lo = hi = None
    elif s.type == "gain":  # a number in [0, MAX_MAGNITUDE] or a name (bounds apply to numbers only)
        base.update(minimum=lo, maximum=hi)
        lo = hi = None
    return _finish(base, numeric=s.type in ("int", "float"), is_float=s.type == "float", minimum=lo, maximum=hi,
                   exclusive_minimum=s.exclusive_minimum, choices=s.choices, nullable=s.nullable, help=s.help,
                   default=s.default, exclusive_maximum=s.exclusive_maximum)


def _component(registry: Registry, name_key: str, only: tuple[str, ...] | None = None) -> dict[str, Any]:
    names: list[str] = []
    objects = []
    for entry in registry:
        if only is not None and entry.name not in only:
            continue
        all_names = [entry.name, *registry.aliases_of(entry.name)]
        names += all_names
        props: dict[str, Any] = {name_key: {"enum": all_names}}
        props.update({p.name: spec_schema(p) for p in entry.params})
        objects.append({"type": "object", "description": entry.description, "properties": props,
                        "required": [name_key], "additionalProperties": False})
    return {"anyOf": [{"type": "string", "enum": names}, *objects]}


def _section(keys: dict[str, Spec], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    props = {k: spec_schema(spec) for k, spec in keys.items() if spec.type not in ("mapping", "component",
                                                                             "list[mapping]")}
    props.update(extra or {})
    return {"type": "object", "properties": props, "additionalProperties": False}


def _sweep_section() -> dict[str, Any]:
    """sweep: {grid: {dotted.key: [values] | 'start:stop:n[:log]' | 'a,b'}, boundary: 'METRIC=VALUE'}."""
    values = {"anyOf": [{"type": "array", "minItems": 1}, {"type": "string"}, {"type": "number"}],
              "description": "a list of values, 'a,b,c', 'start:stop:n' or 'start:stop:n:log'"}
    return {"type": "object", "additionalProperties": False, "required": ["grid"], "properties": {
        "grid": {"type": "object", "minProperties": 1, "additionalProperties": values,
                 "description": SWEEP_KEYS["grid"].help},
        "boundary": {"type": "string", "pattern": "^[^=]+=[^=]+$", "description": SWEEP_KEYS["boundary"].help}}}


def _norm() -> dict[str, Any]:
    """A norm kind: none | layernorm | batchnorm | rmsnorm, or {kind: ..., eps: ...}."""
    comp = _component(NORMS, "kind")
    comp["anyOf"][0]["enum"].append("none")
    return comp


def _items(activation: dict[str, Any]) -> dict[str, Any]:
    """network.layers: a list of one-key items, {dense}, {norm}, {dropout}, {residual: {..., layers: [...]}}."""
    item_ref = {"$ref": "#/$defs/layer_item"}
    dense = _section(DENSE_KEYS, {"activation": activation, "init": _component(INITS, "scheme"), "norm": _norm()})
    dropout_p = {"type": "number", "minimum": 0, "exclusiveMaximum": 1}
    block = _section(BLOCK_KEYS, {"layers": {"type": "array", "minItems": 1, "items": item_ref}})
    block["required"] = ["layers"]

    def one(name: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object", "properties": {name: body}, "required": [name], "additionalProperties": False}

    return {"type": "array", "items": item_ref, "$defs_item": {"anyOf": [
        one("dense", {"anyOf": [{"type": "integer", "minimum": 1}, dense]}),
        one("norm", _norm()),
        one("dropout", {"anyOf": [dropout_p, {"type": "object", "properties": {"p": dropout_p},
                                              "additionalProperties": False}]}),
        one("residual", block)]}}


def scenario_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a scenario file."""
    activation = _component(ACTIVATIONS, "name")
    network = _section(NETWORK_KEYS, {
        "activation": {"description": NETWORK_KEYS["activation"].help,
                       "anyOf": [activation, {"type": "array", "items": activation}]},
        "output_activation": {"description": NETWORK_KEYS["output_activation"].help,
                              "anyOf": [{"enum": OUTPUT_ACTIVATIONS.names(aliases=True)}, {"type": "null"}]},
        "init": {"description": NETWORK_KEYS["init"].help, **_component(INITS, "scheme")},
        "bias_init": {"description": NETWORK_KEYS["bias_init"].help,
                      **_component(INITS, "scheme", only=BIAS_SCHEMES)},
        "residual": {"description": NETWORK_KEYS["residual"].help,
                     "anyOf": [_section(RESIDUAL_KEYS), {"type": "null"}]},
        "norm": {"description": NETWORK_KEYS["norm"].help, "anyOf": [_norm(), {"type": "null"}]},
        "layers": {"description": NETWORK_KEYS["layers"].help, "anyOf": [_items(activation), {"type": "null"}]},
    })
    network["not"] = {"anyOf": [{"required": ["widths", "depth"]}, {"required": ["widths", "width"]}]}
    data_variants = []
    for ds in DATASETS:
        props = {k: spec_schema(spec) for k, spec in DATA_KEYS.items()}
        props["kind"] = {"const": ds.name, "description": ds.description}
        props.update({p.name: spec_schema(p) for p in ds.params})
        data_variants.append({"type": "object", "properties": props, "additionalProperties": False,
                              **({"required": ["kind"]} if ds.name != "gaussian" else {})})
    expect = _section(EXPECT_KEYS, {"layers": {"type": "array", "description": EXPECT_KEYS["layers"].help,
                                               "items": {**_section(EXPECT_LAYER_KEYS), "required": ["layer"]}},
                                    "allow": {"type": "array", "description": EXPECT_KEYS["allow"].help,
                                              "items": {**_section(EXPECT_ALLOW_KEYS),
                                                        "required": ["code", "reason"]}}})
    top = _section(TOP_KEYS, {
        "network": network,
        "loss": {"description": TOP_KEYS["loss"].help, **_component(LOSSES, "name")},
        "data": {"description": "the input data", "anyOf": [{"enum": DATASETS.names()}, *data_variants]},
        "train": {"anyOf": [_section(TRAIN_KEYS), {"type": "null"}], "description": TOP_KEYS["train"].help},
        "diagnostics": _section(DIAGNOSTICS_KEYS),
        "expect": {"anyOf": [expect, {"type": "null"}], "description": TOP_KEYS["expect"].help},
        "analysis": {"anyOf": [_section(ANALYSIS_KEYS, {"jacobian": {
            "anyOf": [_section(JACOBIAN_KEYS), {"type": "null"}], "description": ANALYSIS_KEYS["jacobian"].help}}),
            {"type": "null"}], "description": TOP_KEYS["analysis"].help},
        "sweep": {"anyOf": [_sweep_section(), {"type": "null"}], "description": TOP_KEYS["sweep"].help},
    })
    layers = network["properties"]["layers"]["anyOf"][0]
    defs = {"layer_item": layers.pop("$defs_item")}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": defs,
            "$id": f"https://gradscope.dev/schema/scenario-{__version__}.json",
            "title": "gradscope scenario", "description": "A feed-forward network, its loss, init and data, "
            "analysed by `gradscope run`.", **top}
