"""Process set-up: lazy imports, BLAS thread choice, the entry point."""

from __future__ import annotations

import subprocess
import sys

import pytest

import gradscope
from gradscope import parallel
from gradscope.errors import GradscopeError


def test_import_and_version_load_neither_numpy_nor_typer() -> None:
    code = ("import sys, gradscope; from gradscope import runtime; sys.argv = ['gradscope', '--version']; "
            "runtime.main(); print(sorted(m for m in ('numpy', 'typer', 'gradscope.engine') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [f"gradscope {gradscope.__version__}", "[]"]


def test_lazy_names_resolve() -> None:
    assert callable(gradscope.run) and callable(gradscope.load_scenario)
    assert issubclass(gradscope.ScenarioError, gradscope.GradscopeError)
    with pytest.raises(AttributeError):
        gradscope.no_such_name  # noqa: B018


def test_blas_threads_by_size_and_override() -> None:
    assert parallel.blas_threads(1000, env={}) == 1
    big = parallel.blas_threads(parallel.PARALLEL_GEMM_MACS, env={})
    assert 1 <= big <= parallel.usable_cores()
    assert parallel.blas_threads(10, env={"GRADSCOPE_THREADS": "3"}) == 3
    for bad in ("0", "two", "-1"):
        with pytest.raises(GradscopeError, match="GRADSCOPE_THREADS"):
            parallel.blas_threads(10, env={"GRADSCOPE_THREADS": bad})


def test_limit_blas_applies_and_restores() -> None:
    from threadpoolctl import threadpool_info

    def blas() -> list[int]:
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas()
    with parallel.limit_blas(1):
        assert all(n == 1 for n in blas())
    assert blas() == before


def test_run_uses_the_chosen_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real = parallel.limit_blas

    def spy(n: int):  # type: ignore[no-untyped-def]
        seen.append(n)
        return real(n)

    import gradscope.api as api

    monkeypatch.setattr(api, "limit_blas", spy)
    monkeypatch.setenv("GRADSCOPE_THREADS", "1")
    api.run({"seeds": 2, "network": {"depth": 2, "width": 8}})
    assert seen == [1]
