"""Data flows one way (DESIGN.md): the import graph of the package, read from the source with ast.

Every import counts, module-level or inside a function (a lazy import that reaches back up is still a
dependency on the layer above).
"""

import ast
from pathlib import Path

import pytest

from gradscope import _LAZY

PACKAGE = Path(__file__).resolve().parent.parent / "gradscope"

# The user-facing layer: the Python API's entry points, commands and presentation. Nothing below may
# import them. Every other module (present or added later: layers, rules, ...) is core.
TOP = frozenset({"api", "compare", "sweep", "render_sweep", "plot_sweep",
                 "ci", "checks", "cli", "render", "plot", "runtime", "executor",
                 "completion", "catalog", "schema", "__main__"})

# The analysis pipeline, bottom first: each one is built on those before it and imports none after it.
PIPELINE = ("engine", "diagnostics", "analysis", "training", "api", "compare", "cli")


def _module_name(path: Path) -> str:
    """'engine' for gradscope/engine.py, 'layers' for gradscope/layers/dense.py: the top-level module."""
    rel = path.relative_to(PACKAGE).with_suffix("")
    return rel.parts[0] if rel.parts != ("__init__",) else "__init__"


def _submodules() -> set[str]:
    return {_module_name(p) for p in PACKAGE.rglob("*.py")}


def _imports(source: str, package: tuple[str, ...], modules: set[str]) -> set[str]:
    """The package's top-level modules a source file imports, anywhere in it.

    package: where the file sits below gradscope/: () for gradscope/x.py, ("layers",) for gradscope/layers/x.py.
    """
    tree = ast.parse(source)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "gradscope" and len(parts) > 1:
                    found.add(parts[1])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] != "gradscope":
                    continue
                base = parts[1:]
            else:
                up = len(package) - (node.level - 1)
                assert up >= 0, "relative import above the package"
                base = [*package[:up], *(node.module.split(".") if node.module else [])]
            if base:
                found.add(base[0])
            else:   # `from . import x`: x is a module, a lazy name of the package (run: api) or a constant
                found.update(a.name if a.name in modules else _LAZY.get(a.name, "__init__") for a in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _submodules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        source = path.read_text(encoding="utf-8")
        graph[name] |= _imports(source, path.relative_to(PACKAGE).parent.parts, modules) - {name}
    return graph


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module `start` imports, directly or through others. The package's __init__ is a leaf: it imports
    its public names on first use (its _LAZY table; the imports ast sees there are TYPE_CHECKING-only), and
    those names are resolved to their modules where they are imported."""
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        m = todo.pop()
        if m not in seen and m in graph:
            seen.add(m)
            if m != "__init__":
                todo.extend(graph[m])
    return seen


GRAPH = _graph()


def test_the_parser_sees_the_known_edges():
    # the edges this layering is about, module-level and lazy (inside a function): a parser that missed
    # them would make the tests below pass vacuously
    assert {"analysis", "engine", "diagnostics"} <= GRAPH["training"]
    assert {"diagnostics", "engine", "jacobian"} <= GRAPH["analysis"]
    assert {"analysis", "training"} <= GRAPH["api"]      # api.run imports training inside the function
    assert {"api", "training"} <= GRAPH["compare"]
    assert "api" in GRAPH["cli"] and "compare" in GRAPH["cli"]


def test_imports_of_a_sample_source_are_found():
    modules = {"engine", "report", "api", "compare", "layers", "__init__"}
    text = ("import numpy as np\nfrom . import __version__, engine\nimport gradscope.report\n"
            "def f():\n    from .api import run\n    from gradscope.compare import compare\n")
    assert _imports(text, (), modules) == {"__init__", "engine", "report", "api", "compare"}
    # the package's lazy public names count as the modules that define them
    assert _imports("from . import run\n", (), modules) == {"api"}
    assert _imports("from gradscope import compare\n", (), modules) == {"compare"}
    # in a subpackage (gradscope/layers/dense.py): `..` is gradscope, `.` is gradscope.layers
    text = "from ..report import Stat\nfrom .norm import forward\nfrom .. import api\n"
    assert _imports(text, ("layers",), modules) == {"report", "layers", "api"}


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m not in TOP and m != "__init__"))
def test_core_modules_never_reach_the_top_layer(module):
    """analysis, training, engine, diagnostics, … import nothing of api/compare/cli/render/…, even
    through another module."""
    assert not (_reach(GRAPH, module) & TOP), (module, sorted(_reach(GRAPH, module) & TOP))


def test_the_pipeline_imports_only_downward():
    """engine ← diagnostics ← analysis ← training ← api.run ← compare ← cli: none imports a later one."""
    for i, low in enumerate(PIPELINE):
        above = set(PIPELINE[i + 1:])
        assert not (GRAPH[low] & above), (low, sorted(GRAPH[low] & above))


def test_training_measures_through_the_core_analysis():
    """Step 0 and every recorded step are one analysis (analysis.measure), not a second copy of it."""
    tree = ast.parse((PACKAGE / "training.py").read_text(encoding="utf-8"))
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert {"analyze", "measure"} <= called and "diagnose" not in called
