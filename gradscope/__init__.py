"""gradscope: see how gradients flow through a neural network.

The names below are imported on first use (PEP 562), so `import gradscope` and
`gradscope --version` do not load NumPy or the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {"run": "api", "save_arrays": "api", "compare": "compare", "GradscopeError": "errors",
         "ScenarioError": "errors", "Scenario": "scenario", "load_scenario": "scenario"}

if TYPE_CHECKING:
    from .api import run, save_arrays
    from .compare import compare
    from .errors import GradscopeError, ScenarioError
    from .scenario import Scenario, load_scenario


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gradscope' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["GradscopeError", "Scenario", "ScenarioError", "__version__", "compare", "load_scenario", "run",
           "save_arrays"]
