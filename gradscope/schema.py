"""JSON Schema of the scenario format, generated from the same key tables and registries the loader uses."""

from __future__ import annotations

from typing import Any

from . import __version__
from .activations import ACTIVATIONS, OUTPUT_ACTIVATIONS
from .datasets import DATASETS
from .inits import BIAS_SCHEMES, INITS
from .losses import LOSSES
from .registry import Param, Registry
from .scenario import (
    DATA_KEYS,
    DIAGNOSTICS_KEYS,
    EXPECT_KEYS,
    EXPECT_LAYER_KEYS,
    NETWORK_KEYS,
    TOP_KEYS,
    TRAIN_KEYS,
    Key,
)

_NUMBER_STRING = {"type": "string", "pattern": r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"}


def _key(k: Key) -> dict[str, Any]:
    base: dict[str, Any]
    if k.type == "int":
        base = {"type": "integer"}
    elif k.type == "float":
        base = {"type": "number"}
    elif k.type == "bool":
        base = {"type": "boolean"}
    elif k.type == "str":
        base = {"type": "string"}
    elif k.type == "list[int]":
        base = {"type": "array", "items": {"type": "integer", "minimum": 1}}
    elif k.type == "list[str]":
        item: dict[str, Any] = {"type": "string"}
        if k.choices:
            item["enum"] = list(k.choices)
        return {"description": k.help, "anyOf": [item, {"type": "array", "items": item}]}
    else:
        base = {}
    if k.minimum is not None and k.type in ("int", "float"):
        base["exclusiveMinimum" if k.exclusive_minimum else "minimum"] = k.minimum
    if k.maximum is not None and k.type in ("int", "float"):
        base["maximum"] = k.maximum
    if k.choices is not None and k.type == "str":
        base["enum"] = list(k.choices)
    if k.type == "float":  # YAML 1.1 reads 1e-3 as a string; the loader accepts it
        base = {"anyOf": [base, _NUMBER_STRING]}
    if k.nullable:
        base = {"anyOf": [base, {"type": "null"}]}
    base["description"] = k.help
    if k.default is not None:
        base["default"] = k.default
    return base


def _param(p: Param) -> dict[str, Any]:
    if p.type is float:
        s: dict[str, Any] = {"type": "number"}
    elif p.type is int:
        s = {"type": "integer"}
    elif p.type is str:
        s = {"type": "string"}
    elif p.type is list:
        s = {"type": "array", "items": {"type": "number"}}
    else:
        s = {"type": ["number", "string"]}
    if p.minimum is not None and p.type in (float, int):
        s["exclusiveMinimum" if p.exclusive_minimum else "minimum"] = p.minimum
    if p.maximum is not None and p.type in (float, int):
        s["maximum"] = p.maximum
    if p.choices is not None:
        s["enum"] = list(p.choices)
    if p.type is float:
        s = {"anyOf": [s, _NUMBER_STRING]}
    if p.nullable:
        s = {"anyOf": [s, {"type": "null"}]}
    s["description"] = p.help
    if p.default is not None:
        s["default"] = p.default
    return s


def _component(registry: Registry, name_key: str, only: tuple[str, ...] | None = None) -> dict[str, Any]:
    names: list[str] = []
    objects = []
    for entry in registry:
        if only is not None and entry.name not in only:
            continue
        all_names = [entry.name, *registry.aliases_of(entry.name)]
        names += all_names
        props: dict[str, Any] = {name_key: {"enum": all_names}}
        props.update({p.name: _param(p) for p in entry.params})
        objects.append({"type": "object", "description": entry.description, "properties": props,
                        "required": [name_key], "additionalProperties": False})
    return {"anyOf": [{"type": "string", "enum": names}, *objects]}


def _section(keys: dict[str, Key], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    props = {k: _key(spec) for k, spec in keys.items() if spec.type not in ("mapping", "component",
                                                                             "list[mapping]")}
    props.update(extra or {})
    return {"type": "object", "properties": props, "additionalProperties": False}


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
    })
    network["not"] = {"anyOf": [{"required": ["widths", "depth"]}, {"required": ["widths", "width"]}]}
    data_variants = []
    for ds in DATASETS:
        props = {k: _key(spec) for k, spec in DATA_KEYS.items()}
        props["kind"] = {"const": ds.name, "description": ds.description}
        props.update({p.name: _param(p) for p in ds.params})
        data_variants.append({"type": "object", "properties": props, "additionalProperties": False,
                              **({"required": ["kind"]} if ds.name != "gaussian" else {})})
    expect = _section(EXPECT_KEYS, {"layers": {"type": "array", "description": EXPECT_KEYS["layers"].help,
                                               "items": {**_section(EXPECT_LAYER_KEYS), "required": ["layer"]}}})
    top = _section(TOP_KEYS, {
        "network": network,
        "loss": {"description": TOP_KEYS["loss"].help, **_component(LOSSES, "name")},
        "data": {"description": "the input data", "anyOf": [{"enum": DATASETS.names()}, *data_variants]},
        "train": {"anyOf": [_section(TRAIN_KEYS), {"type": "null"}], "description": TOP_KEYS["train"].help},
        "diagnostics": _section(DIAGNOSTICS_KEYS),
        "expect": {"anyOf": [expect, {"type": "null"}], "description": TOP_KEYS["expect"].help},
    })
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://gradscope.dev/schema/scenario-{__version__}.json",
            "title": "gradscope scenario", "description": "A feed-forward network, its loss, init and data, "
            "analysed by `gradscope run`.", **top}
