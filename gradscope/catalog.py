"""What `gradscope list` shows: every registry's names, aliases, descriptions and parameters."""

from __future__ import annotations

from typing import Any

from .activations import ACTIVATIONS
from .datasets import DATASETS
from .inits import INITS
from .layers import NORMS
from .losses import LOSSES
from .optimizers import OPTIMIZERS
from .registry import Registry


def _entries(registry: Registry) -> list[dict[str, Any]]:
    out = []
    for e in registry:
        out.append({"name": e.name, "aliases": registry.aliases_of(e.name), "description": e.description,
                    "params": {p.name: {"default": p.default, "help": p.help,
                                        **({"choices": list(p.choices)} if p.choices else {})}
                               for p in e.params}})
    return out


def catalog() -> dict[str, list[dict[str, Any]]]:
    return {"activations": _entries(ACTIVATIONS), "losses": _entries(LOSSES), "inits": _entries(INITS),
            "datasets": _entries(DATASETS), "optimizers": _entries(OPTIMIZERS), "norms": _entries(NORMS)}
