"""`gradscope sweep` measurements: the parallel speed-up of a 16×16 grid, and the measured critical line.

    python benchmarks/sweep_bench.py speedup     # 16×16 grid of the default scenario vs 256 × one run ÷ workers
    python benchmarks/sweep_bench.py critical    # tanh, width 500, depth 30: measured critical σ_w² per σ_b²

The critical line is the full version of tests/test_sweep.py's acceptance test (which runs σ_b² = 0.05 with
2 seeds and 4 grid points): 4 seeds and 9 points of σ_w² within ±12% of the mean-field prediction, per σ_b².
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import gradscope
from gradscope.cores import usable_cores
from gradscope.parallel import THREADS_ENV
from gradscope.runtime import tune_allocator
from gradscope.scenario import bundled_path, load_scenario
from gradscope.theory import critical_sigma_w2


def speedup() -> None:
    grid = ["network.init.gain=0.5:4:16", "seed=0:15:16"]
    sc = load_scenario(None)
    os.environ[THREADS_ENV] = "1"  # what every sweep point uses
    gradscope.run(sc, keep_gradients=False)
    one = []
    for _ in range(7):
        t = time.perf_counter()
        gradscope.run(sc, keep_gradients=False)
        one.append(time.perf_counter() - t)
    del os.environ[THREADS_ENV]
    t_one = statistics.median(one)
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else usable_cores()  # the default, free cores, varies with load
    t = time.perf_counter()
    rep = gradscope.sweep(None, grid, workers=workers)
    t_sweep = time.perf_counter() - t
    ideal = 256 * t_one / workers
    print(f"one run (1 BLAS thread, median of 7): {t_one:.3f} s")
    print(f"16×16 sweep, {rep.executor}: {t_sweep:.1f} s; 256 × one run ÷ {workers} = {ideal:.1f} s; "
          f"ratio {t_sweep / ideal:.2f}; speed-up over 256 sequential runs {256 * t_one / t_sweep:.2f}×")
    t = time.perf_counter()
    gradscope.sweep(None, grid, workers=1)
    t_seq = time.perf_counter() - t
    print(f"the same sweep in this process: {t_seq:.1f} s (256 × one run = {256 * t_one:.1f} s); "
          f"pool speed-up {t_seq / t_sweep:.2f}× on {workers} workers")


def critical() -> None:
    print(f"{'σ_b²':>6} {'measured':>9} {'mean-field':>10} {'error':>7}")
    for sb2 in (0.01, 0.05, 0.1, 0.2, 0.3):
        crit = critical_sigma_w2("tanh", sb2)
        assert crit is not None
        rep = gradscope.sweep(bundled_path("phase-tanh.yaml"),
                              [f"network.init.sigma_w2={0.88 * crit:.4f}:{1.12 * crit:.4f}:9"],
                              overrides=["network.width=500", f"network.bias_init.sigma_b2={sb2}"])
        (b,) = rep.boundary
        print(f"{sb2:>6g} {b['measured']:>9.4f} {b['mean_field']:>10.4f} {100 * b['relative_error']:>+6.2f}%",
              flush=True)


if __name__ == "__main__":
    tune_allocator()
    {"speedup": speedup, "critical": critical}[sys.argv[1] if len(sys.argv) > 1 else "speedup"]()
