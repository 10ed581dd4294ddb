"""gradscope: see how gradients flow through a neural network.

The names below are imported on first use (PEP 562), so `import gradscope` and
`gradscope --version` do not load NumPy or the engine.
"""

from __future__ import annotations

import sys
import types

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms of `gradscope --version`)

__version__ = "0.1.0"

_LAZY = {"run": "api", "save_arrays": "api", "compare": "compare", "GradscopeError": "errors",
         "ScenarioError": "errors", "Scenario": "scenario", "load_scenario": "scenario", "sweep": "sweep",
         "SweepReport": "sweep"}

if TYPE_CHECKING:
    from typing import Any

    from .api import run, save_arrays
    from .compare import compare
    from .errors import GradscopeError, ScenarioError
    from .scenario import Scenario, load_scenario
    from .sweep import SweepReport, sweep


_LOADED: dict[str, Any] = {}


def _load(name: str) -> Any:
    if name not in _LOADED:
        import importlib

        _LOADED[name] = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    return _LOADED[name]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'gradscope' has no attribute {name!r}")
    value = _load(name)
    if name != _LAZY[name]:
        globals()[name] = value
    return value


class _Package(types.ModuleType):
    """`gradscope.compare` stays the function after the submodule `gradscope.compare` is imported
    (the import system would otherwise bind the module to the package attribute of the same name)."""

    def __getattribute__(self, name: str) -> Any:
        if name in _SHADOWED:
            return _load(name)
        return super().__getattribute__(name)


_SHADOWED = frozenset(name for name, module in _LAZY.items() if name == module)
sys.modules[__name__].__class__ = _Package


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["GradscopeError", "Scenario", "ScenarioError", "SweepReport", "__version__", "compare", "load_scenario",
           "run", "save_arrays", "sweep"]
