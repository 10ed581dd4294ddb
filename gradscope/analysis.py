"""The core analysis at the bottom: one forward/backward pass of given weights, diagnosed.

Data flows one way: engine (arrays) and diagnostics (statistics, findings) below this module;
`training` (step 0 and every recorded step) built on it; `api.run` on training and on this module;
`compare` and `ci` on `api.run`; `cli` on top. No module reaches back up (tests/test_layering.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import __version__
from .diagnostics import Diagnosis, act_grad_statistics, diagnose, dW_statistics
from .engine import Params, Pass, largest_gemm, run_pass
from .parallel import blas_threads, limit_blas
from .report import RunReport
from .scenario import Scenario, jacobian_options


def measure(scenario: Scenario, params: Params, x: np.ndarray, target: np.ndarray, *, with_theory: bool = True,
            keep_gradients: bool = True, update_ratio: list[np.ndarray] | None = None,
            dropout: bool = True) -> tuple[Pass, Diagnosis]:
    """The pass of `params` on x (B, d_in) with its target, and its diagnosis (per-layer statistics, verdict).

    Both a run's step 0 (`analyze`) and every recorded training step measure through here. Each weight
    gradient is reduced to its statistics inside backward; keep_gradients=False then drops all but layer
    1's full dW. with_theory=False skips the mean-field predictions (training records).
    """
    p = run_pass(scenario, params, x.astype(params.W[0].dtype, copy=False), target, reduce_dW=dW_statistics,
                 keep_dW=None if keep_gradients else (1,), dropout=dropout,
                 reduce_act_grad=act_grad_statistics(scenario))
    with np.errstate(all="ignore"):  # overflow is reported as data, never as warnings
        d = diagnose(scenario, params, p, with_theory=with_theory, update_ratio=update_ratio, dropout=dropout)
    return p, d


def analyze(scenario: Scenario, params: Params, x: np.ndarray, target: np.ndarray,
            label: str | None = None, keep_gradients: bool = True,
            update_ratio: list[np.ndarray] | None = None, dropout: bool = True) -> RunReport:
    """One forward/backward pass of `params` on (x, target), diagnosed into a RunReport.

    Each weight gradient is reduced to its statistics inside backward; keep_gradients=False then drops
    all but layer 1's (which a finding reads) instead of holding every dW until the report is built.

    update_ratio: per layer, per seed ‖ΔW_l‖/‖W_l‖ of an optimizer step already measured (training);
    without it, a scenario with a `train:` block gets its optimizer's first step on this batch.
    """
    p, d = measure(scenario, params, x, target, keep_gradients=keep_gradients, update_ratio=update_ratio,
                   dropout=dropout)
    jac, jac_findings = _jacobian(scenario, params, p)
    return RunReport(version=__version__, scenario=scenario.to_dict(), summary=d.summary, layers=tuple(d.layers),
                     findings=tuple(d.findings) + tuple(jac_findings), label=label, arrays=(params, p),
                     per_seed=d.per_seed, jacobian=jac, residual_stream=d.residual)


def _jacobian(scenario: Scenario, params: Params, p: Any) -> tuple[Any, list[Any]]:
    """The Jacobian analysis of the pass when the scenario asks for it (analysis.jacobian or --jacobian)."""
    opts = jacobian_options(scenario)
    if opts is None:
        return None, []
    from . import jacobian
    from .rules import jacobian_findings

    # its products are not split by seed: BLAS gets the threads the run's size calls for (api.run may have
    # held it to one for the seed-parallel pass)
    with limit_blas(blas_threads(largest_gemm(scenario))):
        rep = jacobian.analyze_jacobian(scenario, params, p.z, p.a, p.x, samples=opts["samples"], at=opts["at"])
    return rep, jacobian_findings(scenario, rep)
