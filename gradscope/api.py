"""The Python API the CLI is a thin layer over: load_scenario, run, save_arrays."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .diagnostics import diagnose
from .engine import Params, Pass, check_memory, draw_data, init_params, largest_gemm, loss_target, run_pass
from .errors import GradscopeError
from .report import RunReport
from .runtime import blas_threads, limit_blas
from .scenario import Scenario, load_scenario

DEFAULT_MAX_MEMORY = 2 * 2**30


def _as_scenario(scenario: Scenario | str | Path | dict[str, Any] | None) -> Scenario:
    return scenario if isinstance(scenario, Scenario) else load_scenario(scenario)


def analyze(scenario: Scenario, params: Params, x: np.ndarray, target: np.ndarray,
            label: str | None = None) -> RunReport:
    """One forward/backward pass of `params` on (x, target), diagnosed into a RunReport."""
    p = run_pass(scenario, params, x.astype(params.W[0].dtype, copy=False), target)
    with np.errstate(all="ignore"):  # overflow is reported as data, never as warnings
        d = diagnose(scenario, params, p)
    return RunReport(version=__version__, scenario=scenario.to_dict(), summary=d.summary, layers=tuple(d.layers),
                     findings=tuple(d.findings), label=label, arrays=(params, p), per_seed=d.per_seed)


def run(scenario: Scenario | str | Path | dict[str, Any] | None = None, *,
        max_memory: int = DEFAULT_MAX_MEMORY, label: str | None = None,
        progress: Callable[[int, int], None] | None = None) -> RunReport:
    """Analyze one scenario at initialization (and, with a `train:` block, over training).

    `progress(steps done, total steps)` is called after every training step (training runs only)."""
    sc = _as_scenario(scenario)
    check_memory(sc, max_memory)
    with limit_blas(blas_threads(largest_gemm(sc, _largest_batch(sc)))):
        if sc.train is not None:
            from .training import train

            return train(sc, label=label, max_memory=max_memory, progress=progress)
        data = draw_data(sc)
        params = init_params(sc)
        return analyze(sc, params, data.x, loss_target(sc, data), label=label)


def _largest_batch(sc: Scenario) -> int:
    """The most samples one pass of this run multiplies at once (training evaluates whole splits)."""
    if sc.train is None:
        return sc.batch_size
    return max(sc.batch_size, int(sc.train["train_size"]), int(sc.train["holdout"]))


def save_arrays(report: RunReport, path: str | Path) -> None:
    """Write x (S,B,d_in), y, W{l}, b{l}, dW{l}, db{l} and loss (S,) of the report's pass to an .npz file."""
    if report.arrays is None:
        raise GradscopeError("this report holds no arrays to save")
    params, p = report.arrays
    assert isinstance(params, Params) and isinstance(p, Pass)
    S = params.W[0].shape[0]
    out: dict[str, np.ndarray] = {"x": np.broadcast_to(p.x, (S, *p.x.shape)).copy(), "y": p.target,
                                  "loss": np.asarray(p.loss)}
    for l in range(1, len(params.W) + 1):
        out[f"W{l}"] = params.W[l - 1]
        out[f"dW{l}"] = p.dW[l - 1]
        if params.b is not None and p.db is not None:
            out[f"b{l}"] = params.b[l - 1]
            out[f"db{l}"] = p.db[l - 1]
    try:
        with open(path, "wb") as fh:
            np.savez(fh, **out)
    except OSError as exc:
        raise GradscopeError(f"--save-arrays {path}: cannot write ({exc.strerror})") from None
