"""Start-up work: what `gradscope --help` and `gradscope run` import and build (never timed: modules and
commands counted, so that the tests do not depend on the machine's load)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import typer.main

from gradscope import cli
from gradscope.numerics import median

# Run `gradscope ARGS` through the console-script entry point in a fresh interpreter; print, as JSON on the
# last line of stderr, the modules it added to those the bare interpreter had, and the collector's state.
_PROBE = """
import gc, json, sys
before = set(sys.modules)
sys.argv = ["gradscope", *{args!r}]
from gradscope import runtime
try:
    runtime.main()
except SystemExit:
    pass
sys.stderr.write("\\n" + json.dumps({{"added": sorted(set(sys.modules) - before), "frozen": gc.get_freeze_count(),
                                     "collecting": gc.isenabled()}}))
"""


def _probe(*args: str, env: dict[str, str] | None = None) -> dict:
    res = subprocess.run([sys.executable, "-c", _PROBE.format(args=list(args))], capture_output=True, text=True,
                         timeout=120, env=None if env is None else {**os.environ, **env})
    return json.loads(res.stderr.strip().splitlines()[-1])


def test_version_imports_only_the_package():
    added = set(_probe("--version")["added"])
    assert added <= {"gradscope", "gradscope.runtime"}, sorted(added)  # not typing, typer, NumPy, ...


def test_help_imports_neither_numpy_nor_rich_nor_the_engine():
    seen = _probe("--help")
    added = set(seen["added"])
    assert "typer" in added and "gradscope.cli" in added  # the probe saw the help being made
    for name in ("numpy", "rich", "yaml", "ctypes", "gradscope.scenario", "gradscope.engine", "gradscope.render",
                 "gradscope.api"):
        assert name not in added, name
    assert seen["frozen"] > 0  # the heap is frozen before the exit


def test_run_imports_no_module_the_default_scenario_does_not_use():
    seen = _probe("run", "--quiet")
    added = set(seen["added"])
    assert {"numpy", "gradscope.api", "gradscope.render", "gradscope.checks"} <= added  # deep-sigmoid has expect:
    unused = {"numpy.ma",  # np.median's NaN check imports it: numerics.median instead
              "gradscope.jacobian", "gradscope.training", "gradscope.compare", "gradscope.sweep", "gradscope.ci",
              "gradscope.plot", "gradscope.plot_sweep", "gradscope.render_sweep", "gradscope.schema",
              "gradscope.catalog", "gradscope.executor", "importlib.resources", "zipfile", "matplotlib", "scipy",
              "numpy.polynomial",  # theory's 16-node Hermite rule is stored (gradscope/quadrature)
              "gradscope.jsontext", "gradscope.csvtext", "json", "csv",  # the table format: render's are lazy
              "yaml", "gradscope.yamlio"}  # the bundled default is stored parsed (gradscope.default_scenario)
    assert not added & unused, sorted(added & unused)
    assert seen["collecting"] and seen["frozen"] > 0  # the collector, paused for the imports, runs again


def test_a_run_in_one_thread_imports_no_thread_pool():
    added = set(_probe("run", "--quiet", env={"GRADSCOPE_THREADS": "1"})["added"])
    assert "gradscope.parallel" in added and not {"concurrent.futures", "logging", "queue"} & added


def test_a_run_in_threads_imports_no_concurrent_futures():
    """Seed ranges in two threads use parallel's own small pool (queue + threading), not concurrent.futures,
    which imports logging (~5 ms)."""
    added = set(_probe("run", "--quiet", env={"GRADSCOPE_THREADS": "2"})["added"])
    assert "queue" in added and not {"concurrent.futures", "logging"} & added


def test_the_collector_is_paused_for_imports_only(monkeypatch):
    from gradscope import runtime

    monkeypatch.setattr(runtime, "_paused", False)
    frozen = gc.get_freeze_count()
    runtime.resume_collection()  # not paused (a library user's process): leaves the collector alone
    assert gc.isenabled() and gc.get_freeze_count() == frozen
    try:
        runtime.pause_collection()
        assert not gc.isenabled() and runtime._paused
        with pytest.raises(typer.Exit):  # every command enters cli._errors once its imports are done
            with cli._errors():
                assert gc.isenabled() and gc.get_freeze_count() > 0
                raise cli.GradscopeError("bad input")
    finally:
        gc.unfreeze()
        gc.enable()
    assert not runtime._paused


@pytest.mark.parametrize("args", [("run", "--format", "json"), ("run", "--format", "csv"), ("schema",),
                                  ("list", "--format", "json")])
def test_json_and_csv_output_import_no_rich(args):
    added = set(_probe(*args)["added"])
    assert "gradscope.jsontext" in added or "gradscope.csvtext" in added
    assert not {m for m in added if m == "rich" or m.startswith("rich.")} and "gradscope.render" not in added


# ---------------------------------------------------------------- the lazily built command group


def _help(group, args: list[str], width: int = 100) -> str:
    """The help text of `gradscope ARGS` (a command path), as click makes it for --help."""
    ctx = group.make_context("gradscope", [], resilient_parsing=True, terminal_width=width)
    for name in args:
        command = ctx.command.get_command(ctx, name)
        ctx = command.make_context(name, [], parent=ctx, resilient_parsing=True)
    return ctx.get_help()


@pytest.mark.parametrize("width", [60, 100])
def test_the_lazy_group_helps_as_typers_eager_group(width):
    eager, lazy = typer.main.get_command(cli.app), cli.command_group()
    ctx = eager.make_context("gradscope", [], resilient_parsing=True)
    names = eager.list_commands(ctx)
    assert lazy.list_commands(ctx) == names and len(names) >= 7
    assert _help(lazy, [], width) == _help(eager, [], width)
    assert not lazy.commands._built  # the listing read the docstrings: no command was built for it
    for name in names:
        assert _help(lazy, [name], width) == _help(eager, [name], width), name
        built = lazy.commands[name]
        assert [p.name for p in built.params] == [p.name for p in eager.commands[name].params]
    assert [p.name for p in lazy.params] == [p.name for p in eager.params]  # --version and completion options


def test_a_command_is_built_only_when_looked_up():
    group = cli.command_group()
    ctx = group.make_context("gradscope", [], resilient_parsing=True)
    assert group.get_command(ctx, "run") is group.get_command(ctx, "run")
    assert set(group.commands._built) == {"run"}
    assert group.get_command(ctx, "no-such-command") is None
    assert "run" in list(group.commands) and len(group.commands) == len(cli.app.registered_commands)


def test_main_runs_a_command_through_the_lazy_group_with_the_allocator_tuned(monkeypatch, capsys):
    from gradscope import runtime

    tuned: list[bool] = []
    monkeypatch.setattr(runtime, "tune_allocator", lambda: tuned.append(True))  # process-wide: not in pytest
    monkeypatch.setattr(sys, "argv", ["gradscope", "list", "losses", "--format", "json"])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 0 and tuned == [True]
    assert [e["name"] for e in json.loads(capsys.readouterr().out)["losses"]][0] == "mse"
    monkeypatch.setattr(sys, "argv", ["gradscope", "--help"])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 0 and tuned == [True]  # no command ran: the allocator is left alone
    first = capsys.readouterr().out.splitlines()[0]  # the program's name is pytest's here
    assert first.startswith("Usage: ") and first.endswith(" [OPTIONS] COMMAND [ARGS]...")


# ---------------------------------------------------------------- numerics.median


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_median_is_numpys_median_bit_for_bit(dtype):
    rng = np.random.default_rng(0)
    for n in range(1, 12):
        for shape in [(n,), (n, 3), (n, 1)]:
            a = rng.standard_normal(shape).astype(dtype)
            if n > 2:
                a.flat[rng.integers(a.size)] = rng.choice([np.nan, np.inf, -np.inf])
            for axis in (None, 0):
                want, got = np.median(a, axis=axis), median(a, axis=axis)
                assert type(got) is type(want) and np.asarray(got).dtype == np.asarray(want).dtype
                np.testing.assert_array_equal(got, want)
    ints = np.arange(7)
    assert median(ints) == np.median(ints)
