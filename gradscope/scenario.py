"""Scenario files: safe YAML loading, defaults, validation with file/key/line, --set overrides.

`load_scenario(path_or_dict, overrides=...)` returns a frozen `Scenario`.
Every error is a `ScenarioError` naming the source, the dotted key path and,
where YAML gives it, the line. Unknown keys get a "did you mean".
"""

from __future__ import annotations

import copy
import errno
import math
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from . import default_scenario
from .activations import ACTIVATIONS, OUTPUT_ACTIVATIONS
from .datasets import DATASETS
from .errors import ScenarioError, cut, shown
from .inits import BIAS_SCHEMES, INITS
from .layers import NORMS, Dense, Dropout, Item, Norm, Residual, number
from .losses import LOSSES, default_head
from .optimizers import OPTIMIZERS as OPTIMIZER_REGISTRY
from .registry import Registry, suggest
from .spec import MAX_MAGNITUDE, Spec

DEFAULT_SCENARIO = default_scenario.SOURCE  # what `gradscope run` without a file runs
DTYPES = ("float64", "float32")
VERDICTS = ("healthy", "vanishing", "exploding", "saturated", "dead", "overflow")
OPTIMIZERS = tuple(OPTIMIZER_REGISTRY.names())
HYPERPARAMETERS = ("lr", "momentum", "beta1", "beta2", "eps")  # their defaults live in the optimizer registry

# Upper bounds of the integer keys (documented in `gradscope schema`); larger values are refused, never clamped.
MAX_SEED = 2**63 - 1
MAX_SEEDS = 10_000
MAX_DEPTH = 10_000
MAX_WIDTH = 1_000_000
MAX_SAMPLES = 10_000_000
MAX_STEPS = 1_000_000
# Limits of the YAML a scenario may be: file size, nesting, nodes after expanding aliases.
MAX_FILE_BYTES = 1_000_000
MAX_NESTING = 64
MAX_NODES = 100_000


Key = Spec  # a scenario key's spec: Key("int", 16, "help", minimum=1) (the same type as registry parameters)


TOP_KEYS: dict[str, Key] = {
    "name": Key("str", None, "short name of the scenario (default: the file name)"),
    "description": Key("str", "", "what the scenario shows"),
    "seed": Key("int", 0, "base seed: same file + seed gives identical numbers", minimum=0, maximum=MAX_SEED),
    "seeds": Key("int", 16, "ensemble size: independent initializations analysed together", minimum=1,
                 maximum=MAX_SEEDS),
    "dtype": Key("str", "float64", "float64 or float32", choices=DTYPES),
    "network": Key("mapping", None, "the feed-forward network"),
    "loss": Key("component", "cross_entropy", "loss name or {name: ..., params}"),
    "data": Key("mapping", None, "the input data"),
    "train": Key("mapping", None, "optional: train and record gradient flow over steps", nullable=True),
    "diagnostics": Key("mapping", None, "thresholds of the verdicts"),
    "expect": Key("mapping", None, "optional: what `gradscope check` asserts", nullable=True),
    "analysis": Key("mapping", None, "optional analyses: {jacobian: {samples: 8, at: last_hidden}}", nullable=True),
    "sweep": Key("mapping", None, "optional: the grid `gradscope sweep` runs: {grid: {key.path: values}, "
                 "boundary: METRIC=VALUE}", nullable=True),
}

SWEEP_KEYS: dict[str, Key] = {
    "grid": Key("mapping", None, "{dotted.key: values}: a list [a, b], or 'start:stop:n' / 'start:stop:n:log'"),
    "boundary": Key("str", None, "METRIC=VALUE: where METRIC crosses VALUE along the first grid key"),
}

NETWORK_KEYS: dict[str, Key] = {
    "input_dim": Key("int", 32, "number of input features", minimum=1, maximum=MAX_WIDTH),
    "depth": Key("int", None, "number of hidden layers (with `width`)", minimum=0, maximum=MAX_DEPTH),
    "width": Key("int", None, "width of every hidden layer (with `depth`)", minimum=1, maximum=MAX_WIDTH),
    "widths": Key("list[int]", None, "hidden layer widths, e.g. [64, 64, 32] (instead of depth/width)"),
    "output_dim": Key("int", 10, "number of outputs (classes for classification losses)", minimum=1,
                      maximum=MAX_WIDTH),
    "activation": Key("component", "relu", "hidden activation, or a list with one per hidden layer"),
    "output_activation": Key("str", None, "identity | sigmoid | softmax (default: what the loss expects)",
                             choices=tuple(OUTPUT_ACTIVATIONS.names(aliases=True)), nullable=True),
    "bias": Key("bool", True, "whether linear layers have a bias"),
    "init": Key("component", "xavier_uniform", "weight init scheme or {scheme: ..., params}"),
    "bias_init": Key("component", "zeros", "bias init: zeros | constant | normal | uniform | torch_default"),
    "residual": Key("mapping", None, "skip connections: {every: 2, alpha: 1.0, projection: false} puts "
                    "x + alpha·branch(x) around every 2 dense layers (the branch's last layer is linear)",
                    nullable=True),
    "norm": Key("component", None, "normalization: none | layernorm | batchnorm | rmsnorm, or {kind: ..., eps: ...}",
                nullable=True),
    "norm_placement": Key("str", "pre", "pre: before each dense layer / at the start of each residual branch; "
                          "post: between a dense layer's linear map and its activation / after each residual "
                          "addition", choices=("pre", "post")),
    "dropout": Key("float", 0.0, "drop probability after every hidden dense layer (inverted scaling, as "
                   "PyTorch); 0 = none", minimum=0.0, maximum=1.0, exclusive_maximum=True),
    "layers": Key("list[mapping]", None, "explicit hidden layers instead of depth/width/widths: {dense: ...}, "
                  "{norm: ...}, {dropout: ...}, {residual: {alpha, projection, layers: [...]}}; the output "
                  "layer is added", nullable=True),
}

RESIDUAL_KEYS: dict[str, Key] = {
    "every": Key("int", 2, "dense layers per residual block (shorthand)", minimum=1, maximum=MAX_DEPTH),
    "alpha": Key("float", 1.0, "branch scale: a block computes x + alpha·branch(x)", minimum=-MAX_MAGNITUDE,
                 maximum=MAX_MAGNITUDE),
    "projection": Key("bool", False, "a learned linear map (no bias) on the skip path where the block changes "
                      "the width"),
}

BLOCK_KEYS: dict[str, Key] = {
    "alpha": RESIDUAL_KEYS["alpha"],
    "projection": RESIDUAL_KEYS["projection"],
    "layers": Key("list[mapping]", None, "the branch: a list of layer items"),
}

DENSE_KEYS: dict[str, Key] = {
    "width": Key("int", None, "output units (default: network.width)", minimum=1, maximum=MAX_WIDTH),
    "activation": Key("component", None, "activation (default: network.activation)"),
    "init": Key("component", None, "weight init of this layer (default: network.init)"),
    "norm": Key("component", None, "a norm between the linear map and the activation"),
}

ITEM_KINDS = ("dense", "norm", "dropout", "residual")

DATA_KEYS: dict[str, Key] = {
    "kind": Key("str", "gaussian", "dataset: " + ", ".join(DATASETS.names())),
    "batch_size": Key("int", 128, "number of samples in the analysed batch", minimum=1, maximum=MAX_SAMPLES),
    "center": Key("bool", True, "subtract the per-feature mean (zero-centered inputs)"),
}

def _optimizer_defaults(key: str) -> str:
    """'sgd 0.1, momentum 0.1, adam 0.001': the default of a hyperparameter per optimizer, from the registry."""
    have = [(o.name, p.default) for o in OPTIMIZER_REGISTRY for p in o.params if p.name == key]
    only = "" if len(have) == len(OPTIMIZERS) else "only " + ", ".join(n for n, _ in have) + "; "
    return only + "default " + ", ".join(f"{n} {d:g}" for n, d in have) + " (gradscope list optimizers)"


TRAIN_KEYS: dict[str, Key] = {
    "steps": Key("int", 100, "number of optimizer steps", minimum=1, maximum=MAX_STEPS),
    "optimizer": Key("str", "sgd", "sgd | momentum | adam", choices=OPTIMIZERS),
    "lr": Key("float", None, "learning rate; " + _optimizer_defaults("lr"), minimum=0.0,
              exclusive_minimum=True, maximum=MAX_MAGNITUDE, nullable=True),
    "momentum": Key("float", None, "momentum coefficient; " + _optimizer_defaults("momentum"), minimum=0.0,
                    maximum=1.0, nullable=True),
    "beta1": Key("float", None, "Adam's first-moment decay, 0 ≤ beta1 < 1 (as torch.optim.Adam); "
                 + _optimizer_defaults("beta1"), minimum=0.0, maximum=1.0, exclusive_maximum=True, nullable=True),
    "beta2": Key("float", None, "Adam's second-moment decay, 0 ≤ beta2 < 1 (as torch.optim.Adam); "
                 + _optimizer_defaults("beta2"), minimum=0.0, maximum=1.0, exclusive_maximum=True, nullable=True),
    "eps": Key("float", None, "Adam's epsilon; " + _optimizer_defaults("eps"), minimum=0.0, exclusive_minimum=True,
               maximum=MAX_MAGNITUDE, nullable=True),
    "batch_size": Key("int", None, "minibatch size; default: the full training set", minimum=1,
                      maximum=MAX_SAMPLES, nullable=True),
    "train_size": Key("int", 512, "number of training samples", minimum=1, maximum=MAX_SAMPLES),
    "holdout": Key("int", 256, "number of held-out samples for loss/accuracy", minimum=1, maximum=MAX_SAMPLES),
    "record_every": Key("int", 10, "record statistics every this many steps", minimum=1, maximum=MAX_STEPS),
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
    "update_ratio_guide": Key("float", 1e-3, "the usual guide for ‖ΔW‖/‖W‖ of one optimizer step", minimum=0.0,
                              exclusive_minimum=True),
}

EXPECT_KEYS: dict[str, Key] = {
    "verdict": Key("list[str]", None, "expected verdict, or a list of acceptable ones", choices=VERDICTS),
    "not_verdict": Key("list[str]", None, "verdicts that fail the check", choices=VERDICTS),
    "max_gradient_spread": Key("float", None, "upper bound on summary.gradient_spread", minimum=0.0),
    "min_gradient_spread": Key("float", None, "lower bound on summary.gradient_spread", minimum=0.0),
    "findings": Key("list[str]", None, "finding codes that must be reported"),
    "no_findings": Key("list[str]", None, "finding codes that must not be reported"),
    "jacobian_verdict": Key("list[str]", None, "expected Jacobian verdict(s) (runs the Jacobian analysis)",
                            choices=("isometric", "broad", "degenerate")),
    "layers": Key("list[mapping]", None, "per-layer bounds: {layer: 1, min_gradient_ratio: ..., ...}"),
    "allow": Key("list[mapping]", None, "findings accepted on purpose: [{code: dead-units, reason: \"...\"}]; "
                 "they do not fail the check, which prints the reason"),
    "min_accuracy": Key("float", None, "lower bound on the final held-out accuracy (training)",
                        minimum=0.0, maximum=1.0),
    "max_accuracy": Key("float", None, "upper bound on the final held-out accuracy (training)",
                        minimum=0.0, maximum=1.0),
    "max_final_loss": Key("float", None, "upper bound on the final held-out loss (training)", minimum=0.0),
    "max_steps_to_accuracy": Key("int", None, "90% held-out accuracy reached at or before this step (training)",
                                 minimum=0, maximum=MAX_STEPS),
    "min_steps_to_accuracy": Key("int", None, "90% held-out accuracy not reached before this step (training)",
                                 minimum=0, maximum=MAX_STEPS),
}

ANALYSIS_KEYS: dict[str, Key] = {
    "jacobian": Key("mapping", None, "input–output Jacobian spectrum (as --jacobian)", nullable=True),
}

JACOBIAN_KEYS: dict[str, Key] = {
    "samples": Key("int", 8, "samples (the first of the batch) whose Jacobian is computed", minimum=1,
                   maximum=1024),
    "at": Key("str", "last_hidden", "J of the last hidden layer's output or of the logits, w.r.t. the input",
              choices=("last_hidden", "logits")),
}

EXPECT_ALLOW_KEYS: dict[str, Key] = {
    "code": Key("str", None, "finding code accepted on purpose (see the findings table)"),
    "reason": Key("str", None, "why the team accepts it (printed by `gradscope check`)"),
}

EXPECT_LAYER_KEYS: dict[str, Key] = {
    "layer": Key("int", None, "layer number (1 = first hidden layer, negative counts from the output)",
                 minimum=-(MAX_DEPTH + 1), maximum=MAX_DEPTH + 1),
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
    analysis: Mapping[str, Any] | None = None
    network_items: tuple[Item, ...] | None = None  # the explicit network; None for a plain MLP (sizes/activations)
    sweep: Mapping[str, Any] | None = None   # the `sweep:` block, read by `gradscope sweep` only

    @cached_property
    def items(self) -> tuple[Item, ...]:
        """The network as layer items (layers.py), numbered; a plain MLP is its Dense layers."""
        if self.network_items is not None:
            return self.network_items
        sizes = self.sizes
        hidden = tuple(Dense(sizes[l - 1], sizes[l], a.name, tuple(a.params.items()))
                       for l, a in enumerate(self.activations, start=1))
        return number((*hidden, Dense(sizes[-2], sizes[-1], self.output_activation, output=True)))

    @property
    def plain(self) -> bool:
        """A plain MLP: dense layers only (no norm, dropout or residual)."""
        return self.network_items is None

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
                **({"widths": list(self.sizes[1:-1])} if self.network_items is None else {}),
                "output_dim": self.sizes[-1],
                **({"layers": items_to_yaml(self.network_items[:-1])} if self.network_items is not None else {
                    "activation": acts[0] if same else (acts or "identity")}),
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
            **({"analysis": copy.deepcopy(dict(self.analysis))} if self.analysis is not None else {}),
            **({"sweep": copy.deepcopy(dict(self.sweep))} if self.sweep is not None else {}),
        }


def items_to_yaml(items: tuple[Item, ...]) -> list[dict[str, Any]]:
    """The explicit `network.layers` form of layer items (loading it gives the same items)."""
    out: list[dict[str, Any]] = []
    for it in items:
        if isinstance(it, Dense):
            d: dict[str, Any] = {"width": it.fan_out,
                                 "activation": Component(it.activation, dict(it.act_params)).to_yaml()}
            if it.init is not None:
                d["init"] = it.init.to_yaml("scheme")
            if it.norm is not None:
                d["norm"] = {"kind": it.norm.kind, "eps": it.norm.eps}
            out.append({"dense": d})
        elif isinstance(it, Norm):
            out.append({"norm": {"kind": it.kind, "eps": it.eps}})
        elif isinstance(it, Dropout):
            out.append({"dropout": it.p})
        else:
            out.append({"residual": {"alpha": it.alpha, "projection": it.projection is not None,
                                     "layers": items_to_yaml(it.layers)}})
    return out


# ---------------------------------------------------------------- YAML with line numbers


def parse_yaml(text: str, source: str) -> tuple[Any, dict]:
    """Safe-load YAML text; returns (data, line map) (gradscope.yamlio, imported when YAML is read)."""
    from .yamlio import parse_yaml as parse

    return parse(text, source)


def _check_value_graph(raw: Any, source: str) -> None:
    """The same bounds for a Python dict given to the API: nesting, size and self-containing values."""
    count = 0
    stack: list[tuple[Any, int, tuple[int, ...]]] = [(raw, 0, ())]
    while stack:
        value, depth, ancestors = stack.pop()
        if not isinstance(value, dict | list | tuple):
            continue
        if id(value) in ancestors:
            raise ScenarioError("the scenario contains itself (a recursive value)", source=source)
        if depth >= MAX_NESTING:
            raise ScenarioError(f"the scenario is nested more than {MAX_NESTING} levels deep", source=source)
        items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
        count += len(items)
        if count > MAX_NODES:
            raise ScenarioError(f"the scenario holds more than {MAX_NODES:,} values; a scenario needs far fewer",
                                source=source)
        inner = (*ancestors, id(value))
        stack.extend((v, depth + 1, inner) for _, v in items)


# ---------------------------------------------------------------- overrides


def parse_override(text: str) -> tuple[list[str], Any]:
    """'network.depth=20' -> (['network', 'depth'], 20); the value is parsed as YAML."""
    if "=" not in text:
        raise ScenarioError(f"--set {shown(text)}: expected key.path=value, e.g. --set network.depth=20")
    key, _, raw = text.partition("=")
    parts = [p for p in key.strip().split(".")]
    if not key.strip() or any(not p for p in parts):
        raise ScenarioError(f"--set {shown(text)}: empty key path")
    if len(parts) > MAX_NESTING:
        raise ScenarioError(f"--set {shown(text)}: a key path of {len(parts)} parts")
    if raw.strip():
        try:
            value, _ = parse_yaml(raw, f"--set {cut(text)}")
        except ScenarioError as exc:
            raise ScenarioError(f"--set {shown(text)}: the value is not valid YAML ({exc.detail})") from None
    else:
        value = ""
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
                nxt = {}  # a value the override replaces (or creates): an error under it names this --set
                origins[tuple(parts[: i + 1])] = f"--set {text}"
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
        dotted = ".".join(cut(p if isinstance(p, str) else shown(p)) for p in path)
        for k in range(len(path), 0, -1):  # a key under a --set value names that --set
            if path[:k] in self.origins:
                return ScenarioError(message, source=self.origins[path[:k]], path=dotted)
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
                raise self.fail((*path, k), f"unknown key {shown(k)}{_suggest(k, list(keys))}; "
                                f"allowed here: {', '.join(keys)}")
        return value

    def check(self, value: Any, path: tuple, spec: Spec) -> Any:
        """The one validation of a spec'd value, scenario key and registry parameter alike: null, type, the
        ±MAX_MAGNITUDE guard, bounds (`spec.range()`, as the schema shows them) and choices."""
        if value is None:
            if spec.nullable or spec.default is None:
                return None
            raise self.fail(path, "must not be empty")
        t = spec.type
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
        elif t == "list[float]":
            if not isinstance(value, list):
                raise self.fail(path, f"expected a list, got {_show(value)}")
            return [self.in_range(self.number(x, (*path, i)), (*path, i), spec) for i, x in enumerate(value)]
        elif t == "gain":
            if isinstance(value, bool) or not (isinstance(value, int | float | str)):
                raise self.fail(path, f"expected a number, 'auto' or an activation name, got {_show(value)}")
            if isinstance(value, str) and value != "auto":
                try:
                    value = self.number(value, path)
                except ScenarioError:
                    if value not in ACTIVATIONS:
                        raise self.fail(path, f"unknown gain {shown(value)}{_suggest(value, ACTIVATIONS.names())}; "
                                        "give a number, 'auto' or an activation name") from None
            elif not isinstance(value, str):
                value = self.number(value, path)
            if isinstance(value, str):
                return value
        self.in_range(value, path, spec)
        if spec.choices is not None and value not in spec.choices:
            raise self.fail(path, f"{shown(value)} is not one of {', '.join(map(str, spec.choices))}"
                            f"{_suggest(value, [str(c) for c in spec.choices])}")
        return value

    def in_range(self, value: Any, path: tuple, spec: Spec) -> Any:
        """A number within the spec's range: ±MAX_MAGNITUDE first (its own message), then the bounds."""
        if spec.magnitude:
            self.magnitude(value, path)
        lo, hi = spec.range()
        self.bounds(value, path, lo, hi, spec.exclusive_minimum, spec.exclusive_maximum)
        return value

    def fill(self, given: Mapping[str, Any], path: tuple, specs: Mapping[str, Spec]) -> dict[str, Any]:
        """Every spec'd key: the given value validated, or the spec's default."""
        return {k: self.check(given[k], (*path, k), spec) if k in given else spec.default for k, spec in specs.items()}

    def number(self, value: Any, path: tuple) -> float:
        given = value
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
            try:
                if len(value) > 100:
                    raise ValueError(value)
                value = float(value)
            except ValueError:
                raise self.fail(path, f"expected a number, got {_show(value)}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"expected a number, got {_show(value)}")
        try:
            value = float(value)
        except OverflowError:
            raise self.fail(path, f"{shown(given)} is too large for a floating-point number") from None
        if math.isnan(value):
            raise self.fail(path, f"must be a finite number, got {shown(given)}")
        if math.isinf(value):
            raise self.fail(path, f"must be a finite number, got {shown(given)}")
        return value + 0.0  # -0.0 -> 0.0: a zero bound must not turn a range around

    def bounds(self, value: Any, path: tuple, lo: float | None, hi: float | None, excl: bool = False,
               excl_hi: bool = False) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return
        if lo is not None and (value < lo or (excl and value == lo)):
            raise self.fail(path, f"must be {'>' if excl else '≥'} {_num(lo)}, got {_num(value)}")
        if hi is not None and (value > hi or (excl_hi and value == hi)):
            raise self.fail(path, f"must be {'<' if excl_hi else '≤'} {_num(hi)}, got {_num(value)}")

    def magnitude(self, value: float, path: tuple) -> float:
        """Refuse a parameter beyond ±MAX_MAGNITUDE: its square must stay a finite float64."""
        if abs(value) > MAX_MAGNITUDE:
            raise self.fail(path, f"{_num(value)} is beyond the bound of every float parameter, |x| ≤ "
                            f"{_num(MAX_MAGNITUDE)} (so that its square stays a finite float64)")
        return value

    def section(self, raw: Any, path: tuple, keys: dict[str, Spec], what: str) -> dict:
        return self.fill(self.mapping(raw, path, keys, what), path, keys)

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
            raise self.fail(name_path, f"{shown(name)} is not available here; choose one of {', '.join(allowed)}")
        if not isinstance(name, str) or name not in choices:
            known = list(allowed) if allowed is not None else registry.names()
            raise self.fail(name_path, f"unknown {registry.kind} {shown(name)}{_suggest(name, choices)}; "
                            f"known: {', '.join(known)}")
        entry = registry.get(name)
        params = {p.name: p for p in entry.params}
        extra = [k for k in raw if k != name_key]
        for k in extra:
            if k not in params:
                allowed_keys = list(params) or ["(none)"]
                owners = [e.name for e in registry if any(q.name == k for q in e.params)]
                switch = ""
                if owners and not _suggest(k, list(params)):
                    switch = (f"; {shown(k)} belongs to {', '.join(owners[:4])}: to use one, set "
                              f"{'.'.join(map(str, (*path, name_key)))} too")
                raise self.fail((*path, k), f"'{entry.name}' has no parameter {shown(k)}"
                                f"{_suggest(k, list(params))}; its parameters: {', '.join(allowed_keys)}"
                                f"{switch}")
        return Component(entry.name, self.fill(raw, path, params))


def _typename(v: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "nothing"}.get(type(v), type(v).__name__)


def _show(v: Any) -> str:
    return f"{_typename(v)} ({shown(v)})" if not isinstance(v, dict | list) else _typename(v)


def _num(x: float) -> str:
    """A bound or value in a message: `g` format, or digits cut for integers too large for a float."""
    if isinstance(x, int):
        if abs(x) < 10**16:
            return str(x)
        return shown(x) if x.bit_length() > 200 else f"{x:.6e}".replace("e+", "e")
    return f"{x:g}"


def _suggest(name: Any, choices: list[str]) -> str:
    """suggest() for short strings only (a 1 MB string is no typo of a name)."""
    return suggest(name, choices) if isinstance(name, str) and len(name) <= 100 else ""


# Parameters that give a range: (low, high) must satisfy low < high (hardtanh) or low ≤ high (uniform data).
ORDERED_PARAMS: dict[str, tuple[str, str, bool]] = {"hardtanh": ("min_val", "max_val", True),
                                                     "uniform": ("low", "high", False)}


def _ordered(v: _Validator, comp: Component, path: tuple, raw: Any) -> Component:
    """Refuse a reversed range such as hardtanh min_val > max_val, naming the key that was given."""
    spec = ORDERED_PARAMS.get(comp.name)
    if spec is None or not comp.params:
        return comp
    lo_key, hi_key, strict = spec
    lo, hi = comp.params[lo_key], comp.params[hi_key]
    if lo > hi or (strict and lo == hi):
        given = raw if isinstance(raw, dict) else {}
        key = hi_key if hi_key in given else lo_key
        raise v.fail((*path, key), f"{comp.name} needs {lo_key} {'<' if strict else '≤'} {hi_key}, got "
                     f"{lo_key} = {lo:g} and {hi_key} = {hi:g}")
    return comp


def _check_gains(v: _Validator, init: Component, acts: Sequence[Component], *path: str) -> None:
    """`gain`/`nonlinearity` of an init must name a gain torch.nn.init.calculate_gain defines: 'auto' needs
    every hidden activation to have one (the output layer, a linear layer under its head, has gain 1)."""
    for key in ("gain", "nonlinearity"):
        value = init.params.get(key)
        if not isinstance(value, str) or (key == "nonlinearity" and value == "leaky_relu"):
            continue
        if value != "auto" and value not in ACTIVATIONS:
            raise v.fail((*path, key), f"unknown {key} {shown(value)}{_suggest(value, ACTIVATIONS.names())}; "
                         "give 'auto' or an activation name" + (" or a number" if key == "gain" else ""))
        names = dict.fromkeys(a.name for a in acts) if value == "auto" else {ACTIVATIONS.canonical(value): None}
        lacking = [n for n in names if ACTIVATIONS.get(n).torch_gain is None]
        if lacking:
            which = f"the hidden activation {lacking[0]}" if value == "auto" else f"'{lacking[0]}'"
            raise v.fail((*path, key), f"{key} {value!r}: torch.nn.init.calculate_gain defines no gain for {which} "
                         "(it has gains for identity/linear, sigmoid, tanh, relu, leaky_relu and selu); give "
                         + ("a number" if key == "gain" else "nonlinearity: leaky_relu with a negative_slope")
                         + " or another init")


def _validate(raw: Any, source: str, lines: dict, origins: dict) -> Scenario:
    v = _Validator(source, lines, origins)
    if raw is None:
        raise ScenarioError("the file is empty; a scenario needs at least a `network:` block "
                            "(run `gradscope init` for a starter)", source=source)
    top = v.mapping(raw, (), TOP_KEYS, "a scenario")
    scalars = v.fill(top, (), {k: TOP_KEYS[k] for k in ("name", "description", "seed", "seeds", "dtype")})
    name = scalars["name"] or (Path(source).stem if source and not source.startswith("<") else "scenario")

    # network
    net_raw = v.mapping(top.get("network"), ("network",), NETWORK_KEYS, "network")
    net = v.fill(net_raw, ("network",), {k: spec for k, spec in NETWORK_KEYS.items()
                                         if spec.type not in ("component", "list[int]")})
    if net_raw.get("layers") is not None:
        for k in ("depth", "widths", "residual", "norm", "dropout", "norm_placement"):
            if net_raw.get(k) is not None:
                raise v.fail(("network", k), f"give either `layers` (the explicit form) or `{k}`, not both: "
                             "the shorthand keys expand to a layers list")
        widths = []
    elif net_raw.get("widths") is not None:
        if net_raw.get("depth") is not None or net_raw.get("width") is not None:
            raise v.fail(("network", "widths"), "give either `widths` or `depth` and `width`, not both")
        widths_raw = net_raw["widths"]
        if not isinstance(widths_raw, list):
            raise v.fail(("network", "widths"), f"expected a list of integers, got {_show(widths_raw)}")
        if len(widths_raw) > MAX_DEPTH:
            raise v.fail(("network", "widths"), f"{len(widths_raw):,} hidden layers, over the limit of {MAX_DEPTH:,}")
        widths = [v.check(w, ("network", "widths", i), Key("int", 1, minimum=1, maximum=MAX_WIDTH))
                  for i, w in enumerate(widths_raw)]
    else:
        depth = net["depth"] if net["depth"] is not None else 3
        width = net["width"] if net["width"] is not None else 64
        widths = [width] * depth
    sizes = (net["input_dim"], *widths, net["output_dim"])

    act_raw = net_raw.get("activation", NETWORK_KEYS["activation"].default)
    if isinstance(act_raw, list) and net_raw.get("layers") is not None:
        raise v.fail(("network", "activation"), "with `layers`, give each dense item its own activation; "
                     "network.activation is then a single default")
    if isinstance(act_raw, list):
        if len(act_raw) != len(widths):
            raise v.fail(("network", "activation"), f"a list of activations needs one per hidden layer: "
                         f"{len(widths)} hidden layers, {len(act_raw)} activations")
        acts = tuple(_ordered(v, v.component(a, ("network", "activation", i), ACTIVATIONS, "name"),
                              ("network", "activation", i), a) for i, a in enumerate(act_raw))
    else:
        act = _ordered(v, v.component(act_raw, ("network", "activation"), ACTIVATIONS, "name"),
                       ("network", "activation"), act_raw)
        acts = tuple(act for _ in widths)
    items = _network_items(v, net_raw, net, widths, acts, act_raw, sizes)
    if items is not None:
        main = [d for d in _walk(items) if isinstance(d, Dense) and not d.projection]
        sizes = (net["input_dim"], *(d.fan_out for d in main[:-1]), net["output_dim"])
        acts = tuple(Component(d.activation, dict(d.act_params)) for d in main[:-1])
        if all(isinstance(it, Dense) and it.norm is None and it.init is None for it in items):
            items = None  # dense layers only: the plain MLP, numbers and normalized form as depth/widths give
    init = v.component(net_raw.get("init", NETWORK_KEYS["init"].default), ("network", "init"), INITS, "scheme")
    _check_gains(v, init, acts, "network", "init")
    bias_init = v.component(net_raw.get("bias_init", "zeros"), ("network", "bias_init"), INITS, "scheme",
                            allowed=BIAS_SCHEMES)
    init = _mean_field_role(v, init, net_raw.get("init"), "init")
    bias_init = _mean_field_role(v, bias_init, net_raw.get("bias_init"), "bias_init")

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
    data_keys = v.fill(data_map, ("data",), {k: DATA_KEYS[k] for k in ("batch_size", "center")})
    batch_size, center = data_keys["batch_size"], data_keys["center"]
    dparams = v.fill(data_map, ("data",), {p.name: p for p in ds.params})
    if sizes[0] < ds.min_input_dim:
        raise v.fail(("network", "input_dim"), f"dataset '{kind}' needs input_dim ≥ {ds.min_input_dim}")
    if ds.max_output_dim is not None and sizes[-1] > ds.max_output_dim:
        raise v.fail(("network", "output_dim"), f"dataset '{kind}' has {ds.max_output_dim} classes; output_dim "
                     f"must be ≤ {ds.max_output_dim} (1 for a single sigmoid output), got {sizes[-1]}")
    _ordered(v, Component(kind, dparams), ("data",), data_map)

    train = v.section(top["train"], ("train",), TRAIN_KEYS, "train") if top.get("train") is not None else None
    if train is not None:
        _optimizer_hyperparameters(v, train)
    diagnostics = v.section(top.get("diagnostics"), ("diagnostics",), DIAGNOSTICS_KEYS, "diagnostics")
    if diagnostics["vanishing_ratio"] >= diagnostics["exploding_ratio"]:
        raise v.fail(("diagnostics", "vanishing_ratio"), "must be below diagnostics.exploding_ratio")
    expect = _validate_expect(v, top.get("expect"), len(sizes) - 1) if top.get("expect") is not None else None
    analysis = _validate_analysis(v, top.get("analysis"), batch_size, len(sizes) - 2)
    sweep = _validate_sweep(v, top.get("sweep"))

    if items is not None:
        _check_batch_norm(v, items, batch_size, train)
        if analysis is not None and "jacobian" in analysis:
            raise v.fail(("analysis", "jacobian"), "the Jacobian analysis covers networks of dense layers; this "
                         "one has norm, dropout or residual layers")
        if expect is not None and expect.get("jacobian_verdict") is not None:
            raise v.fail(("expect", "jacobian_verdict"), "the Jacobian analysis covers networks of dense layers; "
                         "this one has norm, dropout or residual layers")
        items = _with_head(items, head)
    return Scenario(name=name, description=scalars["description"] or "", seed=scalars["seed"],
                    seeds=scalars["seeds"], dtype=scalars["dtype"], sizes=tuple(sizes), activations=acts,
                    output_activation=head, bias=net["bias"], init=init, bias_init=bias_init, loss=loss,
                    data=Component(kind, dparams), batch_size=batch_size, center=center, train=train,
                    diagnostics=diagnostics, expect=expect, source=source, analysis=analysis,
                    network_items=items, sweep=sweep)


def _mean_field_role(v: _Validator, comp: Component, raw: Any, role: str, path: tuple = ("network",)) -> Component:
    """mean_field takes sigma_w2 as `init` and sigma_b2 as `bias_init`: the other one is refused, not ignored,
    and left out of the normalized scenario."""
    from .inits import MEAN_FIELD_ROLES

    if comp.name != "mean_field":
        return comp
    own = MEAN_FIELD_ROLES[role]
    for other_role, other in MEAN_FIELD_ROLES.items():
        if other != own and isinstance(raw, dict) and other in raw:
            raise v.fail((*path, role, other), f"mean_field takes {own} as {role}; {other} belongs to "
                         f"network.{other_role}: {{scheme: mean_field, {other}: ...}}")
    return Component(comp.name, {own: comp.params[own]})


def _validate_sweep(v: _Validator, raw: Any) -> dict | None:
    """sweep: {grid: {dotted.key: values}, boundary: METRIC=VALUE}; the values are parsed as `--grid` parses
    them (a list, or a 'start:stop:n[:log]' range), so an error names the line of the bad one."""
    if raw is None:
        return None
    from .grid import parse_boundary, parse_values

    m = v.mapping(raw, ("sweep",), SWEEP_KEYS, "sweep")
    grid_raw = m.get("grid")
    if not isinstance(grid_raw, dict) or not grid_raw:
        raise v.fail(("sweep", "grid"), "expected a mapping of dotted scenario keys to values, e.g. "
                     "{network.init.sigma_w2: '0.5:4:15', network.bias_init.sigma_b2: [0.0, 0.05]}")
    for key, values in grid_raw.items():
        path = ("sweep", "grid", key)
        if not isinstance(key, str) or not key.strip() or any(not p for p in key.split(".")):
            raise v.fail(path, f"expected a dotted scenario key such as network.depth, got {shown(key)}")
        try:
            parse_values(values)
        except ValueError as exc:
            raise v.fail(path, str(exc)) from None
    out: dict[str, Any] = {"grid": copy.deepcopy(dict(grid_raw))}
    if m.get("boundary") is not None:
        text = v.check(m["boundary"], ("sweep", "boundary"), SWEEP_KEYS["boundary"])
        try:
            parse_boundary(text)
        except ValueError as exc:
            raise v.fail(("sweep", "boundary"), str(exc)) from None
        out["boundary"] = text
    return out


def _walk(items: tuple[Item, ...]) -> list[Item]:
    from .layers import walk

    return walk(items)


def _norm_item(v: _Validator, raw: Any, path: tuple, n: int) -> Norm | None:
    """`layernorm`, `none` or {kind: ..., eps: ...} -> a Norm of n features (None for none)."""
    if raw is None or raw == "none" or (isinstance(raw, dict) and raw.get("kind") == "none"):
        return None
    comp = v.component(raw, path, NORMS, "kind")
    return Norm(comp.name, n, comp.params.get("eps"))


def _network_items(v: _Validator, net_raw: dict, net: dict, widths: list[int], acts: tuple[Component, ...],
                   act_raw: Any, sizes: tuple[int, ...]) -> tuple[Item, ...] | None:
    """The explicit network the keys describe, or None for a plain MLP (no norm, dropout or residual)."""
    if net_raw.get("layers") is not None:
        default_act = act_raw if not isinstance(act_raw, list) else "relu"
        layers_raw = net_raw["layers"]
        items, n = _items(v, layers_raw, ("network", "layers"), net["input_dim"], net.get("width"), default_act)
        return number((*items, Dense(n, net["output_dim"], "identity", output=True)))
    residual = net_raw.get("residual")
    norm_raw = net_raw.get("norm")
    p, placement = net["dropout"], net["norm_placement"]  # validated with the other network keys
    has_norm = _norm_item(v, norm_raw, ("network", "norm"), 1) is not None
    if "norm_placement" in net_raw and norm_raw is None:
        raise v.fail(("network", "norm_placement"), "places a norm, but the network has none: give network.norm "
                     "(layernorm, batchnorm, rmsnorm; `none` says explicitly that there is no norm to place)")
    if residual is None and not has_norm and not p:
        return None

    def norm(n: int) -> Norm | None:
        return _norm_item(v, norm_raw, ("network", "norm"), n)

    def dense(i: int, linear: bool = False, post: bool = True) -> Dense:
        a = acts[i]
        return Dense(sizes[i], sizes[i + 1], "identity" if linear else a.name,
                     () if linear else tuple(a.params.items()),
                     norm=norm(sizes[i + 1]) if post and placement == "post" else None)

    def after(d: Dense) -> list[Item]:
        return [Dropout(p, d.fan_out)] if p else []

    out: list[Item] = []
    if residual is None:
        for i in range(len(widths)):
            if placement == "pre" and has_norm:
                out.append(norm(sizes[i]))  # type: ignore[arg-type]
            d = dense(i)
            out += [d, *after(d)]
        return number((*out, Dense(sizes[-2], sizes[-1], "identity", output=True)))
    r = v.section(residual, ("network", "residual"), RESIDUAL_KEYS, "network.residual")
    every = r["every"]
    path = ("network", "residual", "every")
    if isinstance(act_raw, list):
        raise v.fail(("network", "activation"), "a list of activations does not say which layers the residual "
                     "blocks hold; give network.layers with {residual: {layers: [...]}} items instead")
    if not widths:
        raise v.fail(path, "the network has no hidden layer to put in a residual block (depth 0)")
    if len(widths) % every:
        raise v.fail(path, f"{len(widths)} hidden layers do not split into blocks of {every}: use a depth that "
                     f"is a multiple of {every}, or network.layers for uneven blocks")
    if every == 1 and acts and acts[0].name != "identity":
        raise v.fail(path, "the last dense layer of a residual branch is linear (x + alpha·W₂φ(W₁x)), so a "
                     f"block of 1 layer would drop the {acts[0].name} activation: use every ≥ 2, activation: "
                     "identity, or network.layers")
    for k, start in enumerate(range(0, len(widths), every), start=1):
        n_in, n_out = sizes[start], sizes[start + every]
        branch: list[Item] = [norm(n_in)] if placement == "pre" and has_norm else []  # type: ignore[list-item]
        for i in range(start, start + every):
            d = dense(i, linear=i == start + every - 1, post=False)
            branch += [d, *after(d)]
        proj = _projection(v, r["projection"], n_in, n_out, k, ("network", "residual"))
        out.append(Residual(r["alpha"], tuple(branch), n_in, n_out, proj))
        if placement == "post" and has_norm:
            out.append(norm(n_out))  # type: ignore[arg-type]
    return number((*out, Dense(sizes[-2], sizes[-1], "identity", output=True)))


def _projection(v: _Validator, projection: bool, n_in: int, n_out: int, block: int, path: tuple) -> Dense | None:
    if n_in == n_out:
        return None
    if not projection:
        raise v.fail(path, f"residual block {block} maps {n_in} features to {n_out}: the skip connection "
                     "x + alpha·branch(x) needs equal widths; set projection: true (a learned linear map on "
                     "the skip path) or make the widths agree")
    return Dense(n_in, n_out, "identity", projection=True)


def _items(v: _Validator, raw: Any, path: tuple, n: int, width: int | None, default_act: Any,
           blocks: list[int] | None = None) -> tuple[tuple[Item, ...], int]:
    """Validate an explicit `layers` list whose input has n features: (items, output features). blocks: the
    count of residual blocks met so far over the whole network (numbered as layers.number does: a block before
    the blocks inside it), so a message names the block the report will call it."""
    blocks = [0] if blocks is None else blocks
    if not isinstance(raw, list):
        raise v.fail(path, f"expected a list of layer items, got {_show(raw)}")
    if len(raw) > MAX_DEPTH:
        raise v.fail(path, f"{len(raw):,} items, over the limit of {MAX_DEPTH:,}")
    out: list[Item] = []
    for i, it in enumerate(raw):
        ip = (*path, i)
        if not isinstance(it, dict) or len(it) != 1:
            raise v.fail(ip, "each layer item is a mapping with one key: " + ", ".join(ITEM_KINDS)
                         + (f"; got {_show(it)}" if not isinstance(it, dict) else f"; got {len(it)} keys"))
        kind, body = next(iter(it.items()))
        if kind not in ITEM_KINDS:
            raise v.fail((*ip, kind), f"unknown layer item {shown(kind)}{_suggest(kind, list(ITEM_KINDS))}; "
                         "allowed: " + ", ".join(ITEM_KINDS))
        kp = (*ip, kind)
        if kind == "dense":
            m = {"width": body} if not isinstance(body, dict) else v.mapping(body, kp, DENSE_KEYS, "a dense item")
            w = v.check(m.get("width", width), (*kp, "width") if "width" in m else kp, DENSE_KEYS["width"])
            if w is None:
                raise v.fail(kp, "give the layer's width ({dense: 64} or {dense: {width: 64}}) or network.width")
            act = _ordered(v, v.component(m.get("activation", default_act), (*kp, "activation"), ACTIVATIONS,
                                          "name"), (*kp, "activation"), m.get("activation"))
            init = (v.component(m["init"], (*kp, "init"), INITS, "scheme") if m.get("init") is not None else None)
            if init is not None:
                _check_gains(v, init, (act,), *kp, "init")
                init = _mean_field_role(v, init, m["init"], "init", kp)
            out.append(Dense(n, w, act.name, tuple(act.params.items()),
                             norm=_norm_item(v, m.get("norm"), (*kp, "norm"), w), init=init))
            n = w
        elif kind == "norm":
            nm = _norm_item(v, body, kp, n)
            if nm is None:
                raise v.fail(kp, "a norm item needs a kind: layernorm, batchnorm or rmsnorm")
            out.append(nm)
        elif kind == "dropout":
            m = body if isinstance(body, dict) else {"p": body}
            v.mapping(m, kp, {"p": None}, "a dropout item")
            out.append(Dropout(v.check(m.get("p"), (*kp, "p") if isinstance(body, dict) else kp,
                                       NETWORK_KEYS["dropout"]), n))
        else:
            m = v.mapping(body, kp, BLOCK_KEYS, "a residual item")
            block = v.fill(m, kp, {k: BLOCK_KEYS[k] for k in ("alpha", "projection")})
            alpha, projection = block["alpha"], block["projection"]
            inner_raw = m.get("layers")
            if not isinstance(inner_raw, list) or not inner_raw:
                raise v.fail((*kp, "layers") if "layers" in m else kp,
                             "a residual block needs a non-empty `layers` list (its branch)")
            blocks[0] += 1
            block = blocks[0]
            inner, n_out = _items(v, inner_raw, (*kp, "layers"), n, width, default_act, blocks)
            out.append(Residual(alpha, inner, n, n_out, _projection(v, projection, n, n_out, block, kp)))
            n = n_out
    return tuple(out), n


def _with_head(items: tuple[Item, ...], head: str) -> tuple[Item, ...]:
    """The output layer's activation is the head the loss sees."""
    last = items[-1]
    assert isinstance(last, Dense) and last.output
    return (*items[:-1], Dense(**{**last.__dict__, "activation": head}))


def _check_batch_norm(v: _Validator, items: tuple[Item, ...], batch_size: int, train: dict | None) -> None:
    """BatchNorm normalizes over the batch: a batch of one sample is all zeros after it."""
    if not any(isinstance(it, Norm) and it.entry.min_batch > 1 for it in _walk(items)):
        return
    if batch_size < 2:
        raise v.fail(("data", "batch_size"), "batchnorm normalizes each feature over the batch; a batch of 1 "
                     "sample normalizes to exactly 0 and passes no gradient: use batch_size ≥ 2 or layernorm")
    if train is not None and min(train.get("batch_size") or train["train_size"], train["train_size"]) < 2:
        key = "batch_size" if train.get("batch_size") is not None else "train_size"
        raise v.fail(("train", key), "batchnorm normalizes over the minibatch, which needs 2 or more samples")


def _validate_analysis(v: _Validator, raw: Any, batch_size: int, depth: int) -> dict | None:
    """analysis: {jacobian: {samples, at}}; `jacobian: {}` (or null) switches it on with the defaults."""
    if raw is None:
        return None
    m = v.mapping(raw, ("analysis",), ANALYSIS_KEYS, "analysis")
    out: dict[str, Any] = {}
    if "jacobian" in m:
        jm = v.mapping(m["jacobian"], ("analysis", "jacobian"), JACOBIAN_KEYS, "analysis.jacobian")
        jac = {k: v.check(jm.get(k, spec.default), ("analysis", "jacobian", k), spec)
               for k, spec in JACOBIAN_KEYS.items()}
        if jac["samples"] > batch_size:
            raise v.fail(("analysis", "jacobian", "samples"), f"{jac['samples']} samples, but data.batch_size is "
                         f"{batch_size}: the Jacobian is taken at samples of the batch")
        if jac["at"] == "last_hidden" and depth == 0:
            raise v.fail(("analysis", "jacobian", "at"), "the network has no hidden layer: use at: logits")
        out["jacobian"] = jac
    return out


def _optimizer_hyperparameters(v: _Validator, train: dict) -> None:
    """Fill lr, momentum, betas and eps from the chosen optimizer's registry entry (the one place of their
    defaults); a hyperparameter the optimizer does not have is refused, not ignored."""
    entry = OPTIMIZER_REGISTRY.get(train["optimizer"])
    own = {p.name: p for p in entry.params}
    for key in HYPERPARAMETERS:
        if train[key] is None:
            train[key] = own[key].default if key in own else None
        elif key not in own:
            raise v.fail(("train", key), f"the {entry.name} optimizer has no {key}; its hyperparameters: "
                         f"{', '.join(own)}")


def _validate_expect(v: _Validator, raw: Any, n_layers: int | None = None) -> dict:
    """expect: bounds checked by `gradscope check`; with n_layers, a per-layer bound must name a layer of the
    network (1..L, or -L..-1 counting from the output), else it is bad input, not an unmet expectation."""
    m = v.mapping(raw, ("expect",), EXPECT_KEYS, "expect")
    out: dict[str, Any] = {}
    for k, spec in EXPECT_KEYS.items():
        if k not in m:
            continue
        val = m[k]
        path = ("expect", k)
        if spec.type == "list[str]":
            items = val if isinstance(val, list) else [val]
            out[k] = [v.check(x, (*path, i), Key("str", "", choices=spec.choices)) for i, x in enumerate(items)]
        elif k == "allow":
            out[k] = _validate_allow(v, val, path)
        elif spec.type == "list[mapping]":
            if not isinstance(val, list):
                raise v.fail(path, f"expected a list of per-layer bounds, got {_show(val)}")
            layers = []
            for i, item in enumerate(val):
                lm = v.mapping(item, (*path, i), EXPECT_LAYER_KEYS, "a layer bound")
                if lm.get("layer") is None:
                    raise v.fail((*path, i), "missing 'layer' (1-based; -1 = output layer)")
                bound = {lk: v.check(lv, (*path, i, lk), EXPECT_LAYER_KEYS[lk]) for lk, lv in lm.items()}
                if n_layers is not None and not (1 <= bound["layer"] <= n_layers or -n_layers <= bound["layer"] <= -1):
                    raise v.fail((*path, i, "layer"), f"layer {bound['layer']} does not exist: the network has "
                                 f"{n_layers} layers (give 1 to {n_layers} from the input, or -1 to -{n_layers} "
                                 "from the output; -1 = output layer)")
                layers.append(bound)
            out[k] = layers
        else:
            out[k] = v.check(val, path, spec)
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
            raise v.fail((*path, i, "code"), f"unknown finding code {shown(m['code'])}"
                         f"{_suggest(m['code'], list(CODES))}; known: {', '.join(CODES)}")
        allow.append({"code": m["code"], "reason": m["reason"].strip()})
    return allow


def _read_text(path: Path, source: str) -> str:
    """The text of a scenario file: a regular file, at most MAX_FILE_BYTES, UTF-8. Never blocks on a FIFO
    or a device and never reads more than the limit."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ScenarioError("no such file", source=source) from None
    except ValueError:  # embedded NUL byte
        raise ScenarioError("the file name contains a NUL byte", source=source) from None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise ScenarioError("the file name is longer than the operating system allows", source=source) from None
        raise ScenarioError(f"cannot read the file ({exc.strerror})", source=source) from None
    if stat.S_ISDIR(st.st_mode):
        raise ScenarioError("is a directory, expected a scenario .yaml file", source=source)
    if not stat.S_ISREG(st.st_mode):
        raise ScenarioError("is not a regular file (a FIFO, device or socket); give a scenario .yaml file",
                            source=source)
    if st.st_size > MAX_FILE_BYTES:
        raise ScenarioError(f"the file has {st.st_size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit of a "
                            "scenario file", source=source)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):  # replaced between stat and open
                raise ScenarioError("is not a regular file", source=source)
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ScenarioError(f"cannot read the file ({exc.strerror})", source=source) from None
    if len(data) > MAX_FILE_BYTES:
        raise ScenarioError(f"the file has more than {MAX_FILE_BYTES:,} bytes, the limit of a scenario file",
                            source=source)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
                            source=source) from None


def _read_source(path_or_dict: str | Path | Mapping[str, Any]) -> tuple[Any, str, dict]:
    if isinstance(path_or_dict, Mapping):
        _check_value_graph(path_or_dict, "<dict>")
        return copy.deepcopy(dict(path_or_dict)), "<dict>", {}
    if not isinstance(path_or_dict, str | Path):
        raise ScenarioError(f"expected a scenario file path or a dict, got {_typename(path_or_dict)}")
    if isinstance(path_or_dict, str) and not path_or_dict.strip():  # Path('') would read '.', a directory
        raise ScenarioError(f"the scenario path is empty ({shown(path_or_dict)}): give a scenario .yaml file, or "
                            "leave the argument out for the bundled default")
    source = str(path_or_dict)
    raw, lines = parse_yaml(_read_text(Path(path_or_dict), source), source)
    return raw, source, lines


def jacobian_options(scenario: Any) -> dict[str, Any] | None:
    """The scenario's analysis.jacobian options, or None when the analysis is off (read here, so that a run
    without the analysis does not import gradscope.jacobian to learn it)."""
    analysis = getattr(scenario, "analysis", None) or {}
    return analysis.get("jacobian")


def bundled_path(name: str = DEFAULT_SCENARIO) -> Path:
    """Path of a scenario bundled in the package (gradscope/scenarios/).

    Beside this file, as importlib.resources.files("gradscope") finds it (without importing
    importlib.resources, tempfile and zipfile: ~4 ms of every default run)."""
    return Path(__file__).parent / "scenarios" / name


def bundled_names() -> list[str]:
    return sorted(p.name for p in bundled_path("").iterdir() if p.suffix == ".yaml")


def load_scenario(path_or_dict: str | Path | Mapping[str, Any] | None = None, *,
                  overrides: Sequence[str] = (), seed: int | None = None, seeds: int | None = None
                  ) -> Scenario:
    """Load and validate a scenario file (or dict; None = the bundled default) with --set overrides."""
    if path_or_dict is None:  # the bundled default, as parse_yaml reads it (stored: no YAML parser imported)
        raw, lines = copy.deepcopy(default_scenario.RAW), dict(default_scenario.LINES)
        source = f"<bundled {DEFAULT_SCENARIO}>"
    else:
        raw, source, lines = _read_source(path_or_dict)
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
        if seed is not None:  # given as an option, not as --set: an error names the option
            origins[("seed",)] = f"--seed {seed}"
        if seeds is not None:
            origins[("seeds",)] = f"--seeds {seeds}"
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
#   lr: 0.1                      # default: the optimizer's (sgd 0.1, adam 0.001)
#   record_every: 20

diagnostics:                     # thresholds of the verdict
  vanishing_ratio: 1.0e-2        # layer gradient / output-layer gradient below this: vanishing
  exploding_ratio: 1.0e+2        # above this: exploding

expect:                          # what `gradscope check` asserts
  verdict: healthy
  max_gradient_spread: 100
"""
