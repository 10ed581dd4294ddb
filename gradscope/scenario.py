"""Scenario files: safe YAML loading, defaults, validation with file/key/line, --set overrides.

`load_scenario(path_or_dict, overrides=...)` returns a frozen `Scenario`.
Every error is a `ScenarioError` naming the source, the dotted key path and,
where YAML gives it, the line. Unknown keys get a "did you mean".
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .activations import ACTIVATIONS, OUTPUT_ACTIVATIONS
from .datasets import DATASETS
from .errors import ScenarioError
from .inits import BIAS_SCHEMES, INITS
from .losses import LOSSES, default_head
from .registry import Param, Registry, suggest

DEFAULT_SCENARIO = "deep-sigmoid.yaml"
DTYPES = ("float64", "float32")
VERDICTS = ("healthy", "vanishing", "exploding", "saturated", "dead", "overflow")
OPTIMIZERS = ("sgd", "momentum", "adam")


@dataclass(frozen=True)
class Key:
    """One scenario key: type, default, bounds and a line of help (also the JSON Schema's source)."""

    type: str  # int | float | bool | str | list[int] | list[str] | mapping
    default: Any = None
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple[Any, ...] | None = None
    nullable: bool = False


TOP_KEYS: dict[str, Key] = {
    "name": Key("str", None, "short name of the scenario (default: the file name)"),
    "description": Key("str", "", "what the scenario shows"),
    "seed": Key("int", 0, "base seed: same file + seed gives identical numbers", minimum=0),
    "seeds": Key("int", 16, "ensemble size: independent initializations analysed together", minimum=1),
    "dtype": Key("str", "float64", "float64 or float32", choices=DTYPES),
    "network": Key("mapping", None, "the feed-forward network"),
    "loss": Key("component", "cross_entropy", "loss name or {name: ..., params}"),
    "data": Key("mapping", None, "the input data"),
    "train": Key("mapping", None, "optional: train and record gradient flow over steps", nullable=True),
    "diagnostics": Key("mapping", None, "thresholds of the verdicts"),
    "expect": Key("mapping", None, "optional: what `gradscope check` asserts", nullable=True),
}

NETWORK_KEYS: dict[str, Key] = {
    "input_dim": Key("int", 32, "number of input features", minimum=1),
    "depth": Key("int", None, "number of hidden layers (with `width`)", minimum=0),
    "width": Key("int", None, "width of every hidden layer (with `depth`)", minimum=1),
    "widths": Key("list[int]", None, "hidden layer widths, e.g. [64, 64, 32] (instead of depth/width)"),
    "output_dim": Key("int", 10, "number of outputs (classes for classification losses)", minimum=1),
    "activation": Key("component", "relu", "hidden activation, or a list with one per hidden layer"),
    "output_activation": Key("str", None, "identity | sigmoid | softmax (default: what the loss expects)",
                             choices=tuple(OUTPUT_ACTIVATIONS.names(aliases=True)), nullable=True),
    "bias": Key("bool", True, "whether linear layers have a bias"),
    "init": Key("component", "xavier_uniform", "weight init scheme or {scheme: ..., params}"),
    "bias_init": Key("component", "zeros", "bias init: zeros | constant | normal | uniform | torch_default"),
}

DATA_KEYS: dict[str, Key] = {
    "kind": Key("str", "gaussian", "dataset: " + ", ".join(DATASETS.names())),
    "batch_size": Key("int", 128, "number of samples in the analysed batch", minimum=1),
    "center": Key("bool", True, "subtract the per-feature mean (zero-centered inputs)"),
}

TRAIN_KEYS: dict[str, Key] = {
    "steps": Key("int", 100, "number of optimizer steps", minimum=1),
    "optimizer": Key("str", "sgd", "sgd | momentum | adam", choices=OPTIMIZERS),
    "lr": Key("float", 0.1, "learning rate", minimum=0.0, exclusive_minimum=True),
    "momentum": Key("float", 0.9, "momentum coefficient (optimizer momentum)", minimum=0.0, maximum=1.0),
    "beta1": Key("float", 0.9, "Adam's first-moment decay", minimum=0.0, maximum=1.0),
    "beta2": Key("float", 0.999, "Adam's second-moment decay", minimum=0.0, maximum=1.0),
    "eps": Key("float", 1e-8, "Adam's epsilon", minimum=0.0, exclusive_minimum=True),
    "batch_size": Key("int", None, "minibatch size; default: the full training set", minimum=1, nullable=True),
    "train_size": Key("int", 512, "number of training samples", minimum=1),
    "holdout": Key("int", 256, "number of held-out samples for loss/accuracy", minimum=1),
    "record_every": Key("int", 10, "record statistics every this many steps", minimum=1),
}

DIAGNOSTICS_KEYS: dict[str, Key] = {
    "vanishing_ratio": Key("float", 1e-2, "a layer whose gradient ratio to the output layer is below this "
                           "is vanishing", minimum=0.0, exclusive_minimum=True),
    "exploding_ratio": Key("float", 1e2, "a layer whose gradient ratio is above this is exploding",
                           minimum=0.0, exclusive_minimum=True),
    "saturation_threshold": Key("float", 0.5, "a layer with more than this fraction of saturated units is "
                                "saturated", minimum=0.0, maximum=1.0),
    "dead_threshold": Key("float", 0.5, "a layer with more than this fraction of dead units is dead",
                          minimum=0.0, maximum=1.0),
    "update_ratio_guide": Key("float", 1e-3, "the usual guide for lr·‖∂L/∂W‖/‖W‖", minimum=0.0,
                              exclusive_minimum=True),
}

EXPECT_KEYS: dict[str, Key] = {
    "verdict": Key("list[str]", None, "expected verdict, or a list of acceptable ones", choices=VERDICTS),
    "not_verdict": Key("list[str]", None, "verdicts that fail the check", choices=VERDICTS),
    "max_gradient_spread": Key("float", None, "upper bound on summary.gradient_spread", minimum=0.0),
    "min_gradient_spread": Key("float", None, "lower bound on summary.gradient_spread", minimum=0.0),
    "findings": Key("list[str]", None, "finding codes that must be reported"),
    "no_findings": Key("list[str]", None, "finding codes that must not be reported"),
    "layers": Key("list[mapping]", None, "per-layer bounds: {layer: 1, min_gradient_ratio: ..., ...}"),
    "allow": Key("list[mapping]", None, "findings accepted on purpose: [{code: dead-units, reason: \"...\"}]; "
                 "they do not fail the check, which prints the reason"),
    "min_accuracy": Key("float", None, "lower bound on the final held-out accuracy (training)",
                        minimum=0.0, maximum=1.0),
    "max_accuracy": Key("float", None, "upper bound on the final held-out accuracy (training)",
                        minimum=0.0, maximum=1.0),
    "max_final_loss": Key("float", None, "upper bound on the final held-out loss (training)", minimum=0.0),
    "max_steps_to_accuracy": Key("int", None, "90% held-out accuracy reached at or before this step (training)",
                                 minimum=0),
    "min_steps_to_accuracy": Key("int", None, "90% held-out accuracy not reached before this step (training)",
                                 minimum=0),
}

EXPECT_ALLOW_KEYS: dict[str, Key] = {
    "code": Key("str", None, "finding code accepted on purpose (see the findings table)"),
    "reason": Key("str", None, "why the team accepts it (printed by `gradscope check`)"),
}

EXPECT_LAYER_KEYS: dict[str, Key] = {
    "layer": Key("int", None, "layer number (1 = first hidden layer, negative counts from the output)"),
    "status": Key("str", None, "expected status", choices=VERDICTS),
    "min_gradient_ratio": Key("float", None, "lower bound on the median gradient ratio", minimum=0.0),
    "max_gradient_ratio": Key("float", None, "upper bound on the median gradient ratio", minimum=0.0),
    "min_weight_grad_norm": Key("float", None, "lower bound on the median ‖∂L/∂W‖", minimum=0.0),
    "max_weight_grad_norm": Key("float", None, "upper bound on the median ‖∂L/∂W‖", minimum=0.0),
    "max_saturation": Key("float", None, "upper bound on the median saturated fraction", minimum=0.0),
    "min_saturation": Key("float", None, "lower bound on the median saturated fraction", minimum=0.0),
    "max_dead_fraction": Key("float", None, "upper bound on the median dead fraction", minimum=0.0),
    "min_dead_fraction": Key("float", None, "lower bound on the median dead fraction", minimum=0.0),
}


@dataclass(frozen=True)
class Component:
    """A registry entry chosen by name, with all its parameters filled."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_yaml(self, key: str = "name") -> Any:
        """The normalized scenario form: a bare name, or {key: name, **params}."""
        return {key: self.name, **self.params} if self.params else self.name


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. `sizes` = [input_dim, *widths, output_dim]; layers are numbered 1..L."""

    name: str
    description: str
    seed: int
    seeds: int
    dtype: str
    sizes: tuple[int, ...]
    activations: tuple[Component, ...]  # one per hidden layer
    output_activation: str
    bias: bool
    init: Component
    bias_init: Component
    loss: Component
    data: Component  # name = dataset kind, params = the dataset's own parameters
    batch_size: int
    center: bool
    train: Mapping[str, Any] | None
    diagnostics: Mapping[str, Any]
    expect: Mapping[str, Any] | None
    source: str = "<scenario>"

    @property
    def depth(self) -> int:
        """Number of hidden layers."""
        return len(self.sizes) - 2

    @property
    def n_layers(self) -> int:
        """Number of linear layers L (hidden layers + the output layer)."""
        return len(self.sizes) - 1

    def layer_activation(self, l: int) -> str:
        """Name of the activation after linear layer l (1-based); layer L's is the output activation."""
        return self.activations[l - 1].name if l <= self.depth else self.output_activation

    def to_dict(self) -> dict[str, Any]:
        """The normalized scenario (defaults filled); loading it again gives the same Scenario."""
        acts = [a.to_yaml() for a in self.activations]
        same = len(acts) > 0 and all(a == acts[0] for a in acts)
        return {
            "name": self.name,
            "description": self.description,
            "seed": self.seed,
            "seeds": self.seeds,
            "dtype": self.dtype,
            "network": {
                "input_dim": self.sizes[0],
                "widths": list(self.sizes[1:-1]),
                "output_dim": self.sizes[-1],
                "activation": acts[0] if same else (acts or "identity"),
                "output_activation": self.output_activation,
                "bias": self.bias,
                "init": self.init.to_yaml("scheme"),
                "bias_init": self.bias_init.to_yaml("scheme"),
            },
            "loss": self.loss.to_yaml("name"),
            "data": {"kind": self.data.name, "batch_size": self.batch_size, "center": self.center,
                     **self.data.params},
            "train": dict(self.train) if self.train is not None else None,
            "diagnostics": dict(self.diagnostics),
            "expect": copy.deepcopy(dict(self.expect)) if self.expect is not None else None,
        }


# ---------------------------------------------------------------- YAML with line numbers


def _line_map(node: yaml.Node | None, path: tuple[Any, ...] = (), out: dict | None = None) -> dict:
    """{key path tuple: 1-based line} for every mapping key and sequence item of a composed YAML tree."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            p = (*path, key_node.value)
            out[p] = key_node.start_mark.line + 1
            _line_map(value_node, p, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            p = (*path, i)
            out[p] = item.start_mark.line + 1
            _line_map(item, p, out)
    return out


_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML was built with it


def parse_yaml(text: str, source: str) -> tuple[Any, dict]:
    """Safe-load YAML text; returns (data, line map). YAML errors become ScenarioError with the line."""
    loader = _SAFE_LOADER(text)
    try:
        node = loader.get_single_node()  # one parse: the node tree gives the lines, then the values
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = exc.problem or str(exc)
        if isinstance(exc, yaml.constructor.ConstructorError):
            what = f"{what} (only plain YAML is allowed: scenarios are safe-loaded, tags like !!python are refused)"
        raise ScenarioError(f"invalid YAML: {what}", source=source, line=line) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"invalid YAML: {exc}", source=source) from None
    finally:
        loader.dispose()
    return data, _line_map(node)


# ---------------------------------------------------------------- overrides


def parse_override(text: str) -> tuple[list[str], Any]:
    """'network.depth=20' -> (['network', 'depth'], 20); the value is parsed as YAML."""
    if "=" not in text:
        raise ScenarioError(f"--set '{text}': expected key.path=value, e.g. --set network.depth=20")
    key, _, raw = text.partition("=")
    parts = [p for p in key.strip().split(".")]
    if not key.strip() or any(not p for p in parts):
        raise ScenarioError(f"--set '{text}': empty key path")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ScenarioError(f"--set '{text}': value is not valid YAML ({exc})") from None
    return parts, value


def apply_overrides(raw: dict, overrides: Sequence[str]) -> tuple[dict, dict]:
    """Apply --set overrides to a raw scenario dict; returns (new dict, {path: '--set ...'})."""
    raw = copy.deepcopy(raw)
    origins: dict[tuple, str] = {}
    for text in overrides:
        parts, value = parse_override(text)
        node = raw
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part) if isinstance(node, dict) else None
            if isinstance(nxt, str) and i + 1 < len(parts):
                # a bare name becomes a mapping when a parameter is set: loss=mse -> loss.reduction=sum
                name_key = "scheme" if part in ("init", "bias_init") else ("kind" if part == "data" else "name")
                nxt = {name_key: nxt}
            if not isinstance(nxt, dict):
                nxt = {}
            node[part] = nxt
            node = nxt
        _reconcile_shape(raw, parts)
        node[parts[-1]] = value
        origins[tuple(parts)] = f"--set {text}"
    return raw, origins


def _reconcile_shape(raw: dict, parts: list[str]) -> None:
    """An override of widths replaces depth/width, and one of depth or width replaces uniform widths."""
    net = raw.get("network")
    if not isinstance(net, dict) or len(parts) != 2 or parts[0] != "network":
        return
    if parts[1] == "widths":
        net.pop("depth", None)
        net.pop("width", None)
    elif parts[1] in ("depth", "width") and isinstance(net.get("widths"), list):
        widths = net["widths"]
        if widths and all(w == widths[0] for w in widths):
            net.pop("widths")
            net.setdefault("depth", len(widths))
            net.setdefault("width", widths[0])


# ---------------------------------------------------------------- validation


class _Validator:
    """Walks a raw scenario dict and raises ScenarioError naming source, key path and line."""

    def __init__(self, source: str, lines: dict, origins: dict) -> None:
        self.source, self.lines, self.origins = source, lines, origins

    def fail(self, path: tuple, message: str) -> ScenarioError:
        dotted = ".".join(str(p) for p in path)
        if path in self.origins:
            return ScenarioError(message, source=self.origins[path], path=dotted)
        line = None
        for k in range(len(path), 0, -1):
            if path[:k] in self.lines:
                line = self.lines[path[:k]]
                break
        return ScenarioError(message, source=self.source, path=dotted, line=line)

    def mapping(self, value: Any, path: tuple, keys: Mapping[str, Any], what: str) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"{what} must be a mapping of keys, got {_typename(value)}")
        for k in value:
            if not isinstance(k, str) or k not in keys:
                raise self.fail((*path, k), f"unknown key '{k}'{suggest(str(k), list(keys))}; "
                                f"allowed here: {', '.join(keys)}")
        return value

    def scalar(self, value: Any, path: tuple, key: Key) -> Any:
        if value is None:
            if key.nullable or key.default is None:
                return None
            raise self.fail(path, "must not be empty")
        t = key.type
        if t == "bool":
            if not isinstance(value, bool):
                raise self.fail(path, f"expected true or false, got {_show(value)}")
            return value
        if t == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    raise self.fail(path, f"expected an integer, got {_show(value)}")
        elif t == "float":
            value = self.number(value, path)
        elif t == "str":
            if not isinstance(value, str):
                raise self.fail(path, f"expected a string, got {_show(value)}")
        self.bounds(value, path, key.minimum, key.maximum, key.exclusive_minimum)
        if key.choices is not None and value not in key.choices:
            raise self.fail(path, f"'{value}' is not one of {', '.join(map(str, key.choices))}"
                            f"{suggest(str(value), [str(c) for c in key.choices])}")
        return value

    def number(self, value: Any, path: tuple) -> float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
            try:
                value = float(value)
            except ValueError:
                raise self.fail(path, f"expected a number, got {_show(value)}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"expected a number, got {_show(value)}")
        value = float(value)
        if math.isnan(value):
            raise self.fail(path, "must not be NaN")
        return value

    def bounds(self, value: Any, path: tuple, lo: float | None, hi: float | None, excl: bool = False) -> None:
        if not isinstance(value, int | float):
            return
        if lo is not None and (value < lo or (excl and value == lo)):
            raise self.fail(path, f"must be {'>' if excl else '≥'} {lo:g}, got {value:g}")
        if hi is not None and value > hi:
            raise self.fail(path, f"must be ≤ {hi:g}, got {value:g}")

    def section(self, raw: Any, path: tuple, keys: dict[str, Key], what: str) -> dict:
        value = self.mapping(raw, path, keys, what)
        return {k: self.scalar(value[k], (*path, k), spec) if k in value else spec.default
                for k, spec in keys.items()}

    def param(self, value: Any, path: tuple, p: Param) -> Any:
        if value is None and p.nullable:
            return None
        if p.type is float:
            value = self.number(value, path)
            self.bounds(value, path, p.minimum, p.maximum, p.exclusive_minimum)
        elif p.type is int:
            value = self.scalar(value, path, Key("int", minimum=p.minimum, maximum=p.maximum))
        elif p.type is str:
            value = self.scalar(value, path, Key("str", choices=p.choices))
        elif p.type is list:
            if not isinstance(value, list):
                raise self.fail(path, f"expected a list, got {_show(value)}")
            value = [self.number(v, (*path, i)) for i, v in enumerate(value)]
        elif p.name == "gain":
            if isinstance(value, bool) or not (isinstance(value, int | float | str)):
                raise self.fail(path, f"expected a number, 'auto' or an activation name, got {_show(value)}")
            if isinstance(value, str) and value != "auto":
                try:
                    value = self.number(value, path)
                except ScenarioError:
                    if value not in ACTIVATIONS:
                        raise self.fail(path, f"unknown gain '{value}'{suggest(value, ACTIVATIONS.names())}; "
                                        "give a number, 'auto' or an activation name") from None
            elif not isinstance(value, str):
                value = float(value)
        if p.choices is not None and value not in p.choices:
            raise self.fail(path, f"'{value}' is not one of {', '.join(map(str, p.choices))}")
        return value

    def component(self, raw: Any, path: tuple, registry: Registry, name_key: str,
                  allowed: Sequence[str] | None = None) -> Component:
        bare = isinstance(raw, str)
        if bare:
            raw = {name_key: raw}
        if not isinstance(raw, dict):
            raise self.fail(path, f"expected a {registry.kind} name or a mapping with '{name_key}', "
                            f"got {_show(raw)}")
        other = "scheme" if name_key == "name" else "name"
        if name_key not in raw and other in raw:  # accept {name: ...} for inits and {scheme: ...} elsewhere
            raw = {name_key: raw[other], **{k: v for k, v in raw.items() if k != other}}
        if name_key not in raw:
            raise self.fail(path, f"missing '{name_key}' (the {registry.kind})")
        name = raw[name_key]
        choices = list(allowed) if allowed is not None else registry.names(aliases=True)
        name_path = path if bare else (*path, name_key)
        if isinstance(name, str) and allowed is not None and name in registry and name not in allowed:
            raise self.fail(name_path, f"'{name}' is not available here; choose one of {', '.join(allowed)}")
        if not isinstance(name, str) or name not in choices:
            shown = list(allowed) if allowed is not None else registry.names()
            raise self.fail(name_path, f"unknown {registry.kind} '{name}'{suggest(str(name), choices)}; "
                            f"known: {', '.join(shown)}")
        entry = registry.get(name)
        params = {p.name: p for p in entry.params}
        extra = [k for k in raw if k != name_key]
        out: dict[str, Any] = {}
        for k in extra:
            if k not in params:
                allowed_keys = list(params) or ["(none)"]
                owners = [e.name for e in registry if any(q.name == k for q in e.params)]
                switch = ""
                if owners and not suggest(str(k), list(params)):
                    switch = (f"; '{k}' belongs to {', '.join(owners[:4])}: to use one, set "
                              f"{'.'.join(map(str, (*path, name_key)))} too")
                raise self.fail((*path, k), f"'{entry.name}' has no parameter '{k}'"
                                f"{suggest(str(k), list(params))}; its parameters: {', '.join(allowed_keys)}"
                                f"{switch}")
        for pname, p in params.items():
            out[pname] = self.param(raw[pname], (*path, pname), p) if pname in raw else p.default
        return Component(entry.name, out)


def _typename(v: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "nothing"}.get(type(v), type(v).__name__)


def _show(v: Any) -> str:
    return f"{_typename(v)} ({v!r})" if not isinstance(v, dict | list) else _typename(v)


def _validate(raw: Any, source: str, lines: dict, origins: dict) -> Scenario:
    v = _Validator(source, lines, origins)
    if raw is None:
        raise ScenarioError("the file is empty; a scenario needs at least a `network:` block "
                            "(run `gradscope init` for a starter)", source=source)
    top = v.mapping(raw, (), TOP_KEYS, "a scenario")
    scalars = {k: v.scalar(top[k], (k,), TOP_KEYS[k]) if k in top else TOP_KEYS[k].default
               for k in ("name", "description", "seed", "seeds", "dtype")}
    name = scalars["name"] or (Path(source).stem if source and not source.startswith("<") else "scenario")

    # network
    net_raw = v.mapping(top.get("network"), ("network",), NETWORK_KEYS, "network")
    net = {k: v.scalar(net_raw[k], ("network", k), spec) if k in net_raw else spec.default
           for k, spec in NETWORK_KEYS.items() if spec.type not in ("component", "list[int]")}
    if net_raw.get("widths") is not None:
        if net_raw.get("depth") is not None or net_raw.get("width") is not None:
            raise v.fail(("network", "widths"), "give either `widths` or `depth` and `width`, not both")
        widths_raw = net_raw["widths"]
        if not isinstance(widths_raw, list):
            raise v.fail(("network", "widths"), f"expected a list of integers, got {_show(widths_raw)}")
        widths = [v.scalar(w, ("network", "widths", i), Key("int", minimum=1)) for i, w in enumerate(widths_raw)]
    else:
        depth = net["depth"] if net["depth"] is not None else 3
        width = net["width"] if net["width"] is not None else 64
        widths = [width] * depth
    sizes = (net["input_dim"], *widths, net["output_dim"])

    act_raw = net_raw.get("activation", NETWORK_KEYS["activation"].default)
    if isinstance(act_raw, list):
        if len(act_raw) != len(widths):
            raise v.fail(("network", "activation"), f"a list of activations needs one per hidden layer: "
                         f"{len(widths)} hidden layers, {len(act_raw)} activations")
        acts = tuple(v.component(a, ("network", "activation", i), ACTIVATIONS, "name")
                     for i, a in enumerate(act_raw))
    else:
        act = v.component(act_raw, ("network", "activation"), ACTIVATIONS, "name")
        acts = tuple(act for _ in widths)
    init = v.component(net_raw.get("init", NETWORK_KEYS["init"].default), ("network", "init"), INITS, "scheme")
    bias_init = v.component(net_raw.get("bias_init", "zeros"), ("network", "bias_init"), INITS, "scheme",
                            allowed=BIAS_SCHEMES)

    loss = v.component(top.get("loss", TOP_KEYS["loss"].default), ("loss",), LOSSES, "name")
    head = net["output_activation"]
    head = OUTPUT_ACTIVATIONS.canonical(head) if head is not None else default_head(loss.name)
    fused = LOSSES.get(loss.name).head
    if fused is not None and head != fused:
        raise v.fail(("network", "output_activation"),
                     f"{loss.name} applies {fused} to the logits itself; output_activation must be {fused} "
                     f"(or left out), got '{head}'. To put another loss on {head} outputs use mse/mae/huber")
    weight = loss.params.get("weight")
    if weight is not None and len(weight) != sizes[-1]:
        raise v.fail(("loss", "weight"), f"needs one weight per class: output_dim is {sizes[-1]}, "
                     f"got {len(weight)} weights")
    if LOSSES.get(loss.name).target in ("class", "distribution") and sizes[-1] < 2:
        raise v.fail(("network", "output_dim"), f"{loss.name} needs at least 2 classes (output_dim ≥ 2); "
                     "for a single output use bce")

    # data
    data_raw = top.get("data")
    data_raw = {"kind": data_raw} if isinstance(data_raw, str) else data_raw
    kind_raw = data_raw.get("kind", "gaussian") if isinstance(data_raw, dict) else "gaussian"
    kind = v.component(kind_raw, ("data", "kind"), DATASETS, "name").name if isinstance(kind_raw, str) else None
    if kind is None:
        raise v.fail(("data", "kind"), f"expected a dataset name, got {_show(kind_raw)}")
    ds = DATASETS.get(kind)
    data_keys: dict[str, Any] = {**DATA_KEYS, **{p.name: p for p in ds.params}}
    data_map = v.mapping(data_raw, ("data",), data_keys, f"data (dataset '{kind}')")
    batch_size = v.scalar(data_map.get("batch_size", 128), ("data", "batch_size"), DATA_KEYS["batch_size"])
    center = v.scalar(data_map.get("center", True), ("data", "center"), DATA_KEYS["center"])
    dparams = {p.name: v.param(data_map[p.name], ("data", p.name), p) if p.name in data_map else p.default
               for p in ds.params}
    if sizes[0] < ds.min_input_dim:
        raise v.fail(("network", "input_dim"), f"dataset '{kind}' needs input_dim ≥ {ds.min_input_dim}")

    train = v.section(top["train"], ("train",), TRAIN_KEYS, "train") if top.get("train") is not None else None
    diagnostics = v.section(top.get("diagnostics"), ("diagnostics",), DIAGNOSTICS_KEYS, "diagnostics")
    if diagnostics["vanishing_ratio"] >= diagnostics["exploding_ratio"]:
        raise v.fail(("diagnostics", "vanishing_ratio"), "must be below diagnostics.exploding_ratio")
    expect = _validate_expect(v, top.get("expect")) if top.get("expect") is not None else None

    return Scenario(name=name, description=scalars["description"] or "", seed=scalars["seed"],
                    seeds=scalars["seeds"], dtype=scalars["dtype"], sizes=tuple(sizes), activations=acts,
                    output_activation=head, bias=net["bias"], init=init, bias_init=bias_init, loss=loss,
                    data=Component(kind, dparams), batch_size=batch_size, center=center, train=train,
                    diagnostics=diagnostics, expect=expect, source=source)


def _validate_expect(v: _Validator, raw: Any) -> dict:
    m = v.mapping(raw, ("expect",), EXPECT_KEYS, "expect")
    out: dict[str, Any] = {}
    for k, spec in EXPECT_KEYS.items():
        if k not in m:
            continue
        val = m[k]
        path = ("expect", k)
        if spec.type == "list[str]":
            items = val if isinstance(val, list) else [val]
            out[k] = [v.scalar(x, (*path, i), Key("str", choices=spec.choices)) for i, x in enumerate(items)]
        elif k == "allow":
            out[k] = _validate_allow(v, val, path)
        elif spec.type == "list[mapping]":
            if not isinstance(val, list):
                raise v.fail(path, f"expected a list of per-layer bounds, got {_show(val)}")
            layers = []
            for i, item in enumerate(val):
                lm = v.mapping(item, (*path, i), EXPECT_LAYER_KEYS, "a layer bound")
                if "layer" not in lm:
                    raise v.fail((*path, i), "missing 'layer' (1-based; -1 = output layer)")
                layers.append({lk: v.scalar(lv, (*path, i, lk), EXPECT_LAYER_KEYS[lk]) for lk, lv in lm.items()})
            out[k] = layers
        else:
            out[k] = v.scalar(val, path, spec)
    return out


def _validate_allow(v: _Validator, val: Any, path: tuple) -> list[dict[str, str]]:
    from .diagnostics import CODES

    if not isinstance(val, list):
        raise v.fail(path, f"expected a list of {{code: ..., reason: ...}}, got {_show(val)}")
    allow = []
    for i, item in enumerate(val):
        m = v.mapping(item, (*path, i), EXPECT_ALLOW_KEYS, "an allow entry")
        for need in ("code", "reason"):
            if not isinstance(m.get(need), str) or not m[need].strip():
                raise v.fail((*path, i, need) if need in m else (*path, i),
                             f"an allow entry needs a non-empty '{need}' string: {{code: dead-units, reason: "
                             f"\"why this finding is accepted\"}}")
        if m["code"] not in CODES:
            raise v.fail((*path, i, "code"), f"unknown finding code '{m['code']}'{suggest(m['code'], list(CODES))}; "
                         f"known: {', '.join(CODES)}")
        allow.append({"code": m["code"], "reason": m["reason"].strip()})
    return allow


def _read_source(path_or_dict: str | Path | Mapping[str, Any]) -> tuple[Any, str, dict]:
    if isinstance(path_or_dict, Mapping):
        return copy.deepcopy(dict(path_or_dict)), "<dict>", {}
    path = Path(path_or_dict)
    source = str(path_or_dict)
    if path.is_dir():
        raise ScenarioError("is a directory, expected a scenario .yaml file", source=source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError("no such file", source=source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read the file ({exc})", source=source) from None
    raw, lines = parse_yaml(text, source)
    return raw, source, lines


def bundled_path(name: str = DEFAULT_SCENARIO) -> Path:
    """Path of a scenario bundled in the package (gradscope/scenarios/)."""
    return Path(str(resources.files("gradscope") / "scenarios" / name))


def bundled_names() -> list[str]:
    return sorted(p.name for p in bundled_path("").iterdir() if p.suffix == ".yaml")


def load_scenario(path_or_dict: str | Path | Mapping[str, Any] | None = None, *,
                  overrides: Sequence[str] = (), seed: int | None = None, seeds: int | None = None
                  ) -> Scenario:
    """Load and validate a scenario file (or dict; None = the bundled default) with --set overrides."""
    raw, source, lines = _read_source(bundled_path() if path_or_dict is None else path_or_dict)
    if path_or_dict is None:
        source = f"<bundled {DEFAULT_SCENARIO}>"
    extra = list(overrides)
    if seed is not None:
        extra.append(f"seed={seed}")
    if seeds is not None:
        extra.append(f"seeds={seeds}")
    origins: dict = {}
    if extra:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ScenarioError(f"a scenario must be a mapping of keys, got {_typename(raw)}", source=source)
        raw, origins = apply_overrides(raw, extra)
    return _validate(raw, source, lines, origins)


STARTER_TEMPLATE = """\
# A gradscope scenario. Run it with:  gradscope run {path}
# Every key below is optional; `gradscope schema` prints the full format, `gradscope list` the names.
name: {name}
description: A 6-layer tanh network with Xavier init on Gaussian inputs
seed: 0            # base seed: same file + seed gives identical numbers
seeds: 16          # ensemble size: independent initializations analysed together
dtype: float64     # or float32

network:
  input_dim: 32
  depth: 6         # hidden layers (or give `widths: [64, 64, 32]`)
  width: 64
  output_dim: 10
  activation: tanh               # sigmoid | tanh | relu | leaky_relu | gelu | ... or a list, one per layer
  # output_activation: softmax   # default: what the loss expects (softmax for cross_entropy)
  bias: true
  init: xavier_uniform           # or {{scheme: normal, std: 0.01}}, he_normal, orthogonal, ...
  bias_init: zeros

loss: cross_entropy              # or mse, bce, focal, {{name: cross_entropy, label_smoothing: 0.1}}, ...

data:
  kind: gaussian                 # gaussian | uniform | blobs | xor | spirals | teacher
  batch_size: 128
  center: true                   # zero-centered inputs

# train:                         # uncomment to follow gradient flow while training
#   steps: 200
#   optimizer: sgd               # sgd | momentum | adam
#   lr: 0.1
#   record_every: 20

diagnostics:                     # thresholds of the verdict
  vanishing_ratio: 1.0e-2        # layer gradient / output-layer gradient below this: vanishing
  exploding_ratio: 1.0e+2        # above this: exploding

expect:                          # what `gradscope check` asserts
  verdict: healthy
  max_gradient_spread: 100
"""
