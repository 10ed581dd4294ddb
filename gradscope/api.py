"""The Python API the CLI is a thin layer over: load_scenario, run, save_arrays."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .analysis import analyze
from .engine import Params, Pass, check_memory, default_max_memory, draw_data, init_params, largest_gemm, loss_target
from .errors import GradscopeError
from .layers import NORMS
from .parallel import blas_threads, limit_blas, using, workers_for_run
from .report import RunReport
from .scenario import Scenario, jacobian_options, load_scenario

__all__ = ["DEFAULT_MAX_MEMORY", "analyze", "run", "save_arrays"]

DEFAULT_MAX_MEMORY = None  # half of the memory available when run() is called (engine.default_max_memory)


def _as_scenario(scenario: Scenario | str | Path | dict[str, Any] | None) -> Scenario:
    return scenario if isinstance(scenario, Scenario) else load_scenario(scenario)


def run(scenario: Scenario | str | Path | dict[str, Any] | None = None, *,
        max_memory: int | None = DEFAULT_MAX_MEMORY, label: str | None = None,
        progress: Callable[[int, int], None] | None = None, keep_gradients: bool = True,
        jacobian: bool | dict[str, Any] | None = None, eval_mode: bool = False) -> RunReport:
    """Analyze one scenario at initialization (and, with a `train:` block, over training).

    `progress(steps done, total steps)` is called after every training step (training runs only).
    max_memory: refuse scenarios whose arrays need more bytes (None: half of the memory available).
    keep_gradients=False reduces every weight gradient to its statistics as backward produces it and
    keeps only layer 1's: the report's arrays then hold no dW for save_arrays (the CLI without --save-arrays).
    `jacobian=True` (or {"samples": 8, "at": "logits"}) adds the input–output Jacobian spectrum, as
    `analysis: {jacobian: ...}` in the scenario does; an `expect.jacobian_verdict` switches it on too.
    eval_mode=True measures without dropout (as model.eval(); training steps still drop units)."""
    sc = _as_scenario(scenario)
    if max_memory is None:
        max_memory = default_max_memory()
    if jacobian is not None or (sc.expect or {}).get("jacobian_verdict") is not None:
        from .jacobian import enable

        sc = enable(sc, **(jacobian if isinstance(jacobian, dict) else {})) if jacobian is not False else sc
    check_memory(sc, max_memory)
    _check_jacobian_memory(sc, max_memory)
    workers, blas = run_threads(sc)
    with limit_blas(blas), using(workers):
        if sc.train is not None:
            from .training import train

            return train(sc, label=label, max_memory=max_memory, progress=progress, dropout=not eval_mode)
        data = draw_data(sc)
        params = init_params(sc)
        return analyze(sc, params, data.x, loss_target(sc, data), label=label, keep_gradients=keep_gradients,
                       dropout=not eval_mode)


def run_threads(sc: Scenario) -> tuple[int, int]:
    """(seed-range threads, BLAS threads) a run of this scenario uses, chosen from its size and the cores free
    now (parallel.workers_for_run, parallel.blas_threads): seed ranges in threads do the pass's multiplies
    one BLAS thread each; a single range leaves them to BLAS's own threads."""
    batch = _largest_batch(sc)
    workers = workers_for_run(sc.seeds, sc.seeds * batch * max(sc.sizes))
    return workers, 1 if workers > 1 else blas_threads(largest_gemm(sc, batch))


def _check_jacobian_memory(sc: Scenario, max_memory: int) -> None:
    opts = jacobian_options(sc)
    if opts is None:
        return
    from .engine import _human
    from .jacobian import jacobian_bytes

    need = jacobian_bytes(sc, opts["samples"], opts["at"])
    if need > max_memory:
        raise GradscopeError(f"{sc.source}: the Jacobian analysis needs about {_human(need)} (seeds={sc.seeds}, "
                             f"samples={opts['samples']}, layer sizes {list(sc.sizes)}), over the "
                             f"{_human(max_memory)} limit. Use fewer samples or seeds, or raise --max-memory.")


def _largest_batch(sc: Scenario) -> int:
    """The most samples one pass of this run multiplies at once (training evaluates whole splits)."""
    if sc.train is None:
        return sc.batch_size
    return max(sc.batch_size, int(sc.train["train_size"]), int(sc.train["holdout"]))


NORM_KINDS = tuple(NORMS.names())


def _diag(v: np.ndarray) -> np.ndarray:
    """(S, n) -> (S, n, n) with v on each diagonal."""
    out = np.zeros((*v.shape, v.shape[-1]), dtype=v.dtype)
    idx = np.arange(v.shape[-1])
    out[:, idx, idx] = v
    return out


def save_arrays(report: RunReport, path: str | Path) -> None:
    """Write x (S,B,d_in), y, W{l}, b{l}, dW{l}, db{l} and loss (S,) of the report's pass to an .npz file."""
    if report.arrays is None:
        raise GradscopeError("this report holds no arrays to save")
    params, p = report.arrays
    assert isinstance(params, Params) and isinstance(p, Pass)
    if any(g is None for g in p.dW):
        raise GradscopeError("this report kept only the statistics of its weight gradients; run it with "
                             "keep_gradients=True (the CLI: --save-arrays) to save them")
    S = params.W[0].shape[0]
    out: dict[str, np.ndarray] = {"x": np.broadcast_to(p.x, (S, *p.x.shape)).copy(), "y": p.target,
                                  "loss": np.asarray(p.loss)}
    if report.trace is not None:
        out.update(report.trace.arrays())
    rows = [lay.layer for lay in report.layers if lay.kind == "dense"]  # npz keys are report rows (W{row})
    for l in range(1, len(params.W) + 1):
        r = rows[l - 1]
        out[f"W{r}"] = params.W[l - 1]
        out[f"dW{r}"] = p.dW[l - 1]
        if params.b is not None and p.db is not None:
            out[f"b{r}"] = params.b[l - 1]
            out[f"db{r}"] = p.db[l - 1]
    for k, v in params.extra.items():
        out[k] = v
        out["d" + k] = p.extra["d" + k]
    for lay in report.layers:  # a norm row's affine map x̂·diag(γ) + β in the dense layout, W{l} = diag(γ)
        if lay.kind in NORM_KINDS:
            r = lay.layer
            out[f"W{r}"], out[f"dW{r}"] = _diag(out[f"gamma{r}"]), _diag(out[f"dgamma{r}"])
            if f"beta{r}" in out:
                out[f"b{r}"], out[f"db{r}"] = out[f"beta{r}"], out[f"dbeta{r}"]
    if p.trace is not None:
        for k, m in p.trace.masks.items():
            out[f"dropout_mask{k}"] = m
    if report.jacobian is not None:
        out["jacobian_sv"] = report.jacobian.sv
    try:
        with open(path, "wb") as fh:
            np.savez(fh, **out)
    except OSError as exc:
        raise GradscopeError(f"--save-arrays {path}: cannot write ({exc.strerror})") from None
