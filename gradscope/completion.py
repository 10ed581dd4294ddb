"""Shell completion of scenario keys for --set and of registry names (typer's completion machinery).

Nothing heavy is imported at module level: cli.py references these functions when it defines its
options, and they import the scenario schema and the registries only when a shell asks to complete.
"""

from __future__ import annotations

from pathlib import Path

LISTS = ("activations", "losses", "inits", "datasets", "optimizers", "norms")


def _sections() -> dict[str, dict]:
    from .scenario import DATA_KEYS, DIAGNOSTICS_KEYS, EXPECT_KEYS, NETWORK_KEYS, TRAIN_KEYS

    return {"network": NETWORK_KEYS, "data": DATA_KEYS, "train": TRAIN_KEYS, "diagnostics": DIAGNOSTICS_KEYS,
            "expect": EXPECT_KEYS}


def _component_registries() -> dict[str, object]:
    """Dotted keys whose value is a registry name, and the registry (its entries' params are sub-keys)."""
    from .activations import ACTIVATIONS
    from .datasets import DATASETS
    from .inits import INITS
    from .losses import LOSSES

    return {"network.activation": ACTIVATIONS, "network.init": INITS, "network.bias_init": INITS, "loss": LOSSES,
            "data.kind": DATASETS}


def scenario_keys() -> dict[str, str]:
    """Every dotted key --set accepts, with its help: top-level keys, section keys, and the parameters of
    the registered activations, inits, losses and datasets (network.init.std, loss.label_smoothing, …)."""
    from .scenario import TOP_KEYS

    keys: dict[str, str] = {}
    sections = _sections()
    for k, spec in TOP_KEYS.items():
        if k not in sections:
            keys[k] = spec.help
    for section, specs in sections.items():
        for k, spec in specs.items():
            keys[f"{section}.{k}"] = spec.help
    for key, registry in _component_registries().items():
        parent = "data" if key == "data.kind" else key
        for entry in registry:  # type: ignore[attr-defined]
            for p in entry.params:
                keys.setdefault(f"{parent}.{p.name}", f"{entry.name}: {p.help}" if p.help
                                else f"parameter of {entry.name}")
    return dict(sorted(keys.items()))


def _values(key: str) -> list[str]:
    """Values worth offering after `key=`: registry names, choices, booleans."""
    from .scenario import TOP_KEYS

    registries = _component_registries()
    if key in registries:
        return list(registries[key].names())  # type: ignore[attr-defined]
    if key == "data":
        return list(registries["data.kind"].names())  # type: ignore[attr-defined]
    section, _, name = key.partition(".")
    spec = _sections().get(section, {}).get(name) if name else TOP_KEYS.get(key)
    if spec is None:
        return []
    if spec.choices:
        return [str(c) for c in spec.choices]
    if spec.type == "bool":
        return ["true", "false"]
    return []


def complete_set(incomplete: str) -> list[tuple[str, str]]:
    """--set: `netw` → network.depth=, network.width=, …; `loss=` → loss=mse, loss=cross_entropy, …"""
    if "=" in incomplete:
        key, _, value = incomplete.partition("=")
        return [(f"{key}={v}", "") for v in _values(key) if v.startswith(value)]
    return [(f"{k}=", help_) for k, help_ in scenario_keys().items() if k.startswith(incomplete)]


def _yaml_files(incomplete: str) -> list[str]:
    base = Path(incomplete).parent if incomplete else Path(".")
    try:
        found = [p for p in base.iterdir() if p.suffix in (".yaml", ".yml") or p.is_dir()]
    except OSError:
        return []
    out = [(str(p) + "/" if p.is_dir() else str(p)) for p in found]
    if base == Path(".") and not incomplete.startswith("./"):
        out = [o.removeprefix("./") for o in out]
    return sorted(o for o in out if o.startswith(incomplete))


def complete_variants(incomplete: str) -> list[str]:
    """compare's variants: loss, activation and init names, and scenario files."""
    from .activations import ACTIVATIONS
    from .inits import INITS
    from .losses import LOSSES

    names = sorted({*LOSSES.names(aliases=True), *ACTIVATIONS.names(aliases=True), *INITS.names(aliases=True)})
    return [n for n in names if n.startswith(incomplete)] + _yaml_files(incomplete)


def complete_list(incomplete: str) -> list[str]:
    """list's argument: activations | losses | inits | datasets | optimizers | norms."""
    return [n for n in LISTS if n.startswith(incomplete)]
