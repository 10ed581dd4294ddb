"""gradscope: see how gradients flow through a neural network."""

__version__ = "0.1.0"

from .api import run, save_arrays  # noqa: E402
from .compare import compare  # noqa: E402
from .errors import GradscopeError, ScenarioError  # noqa: E402
from .scenario import Scenario, load_scenario  # noqa: E402

__all__ = ["GradscopeError", "Scenario", "ScenarioError", "__version__", "compare", "load_scenario", "run",
           "save_arrays"]
