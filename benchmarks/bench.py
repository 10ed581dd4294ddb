"""The whole `gradscope run` against PyTorch CPU and the matrix-multiply floor, and what a user waits for.

    python benchmarks/bench.py [--torch-python PATH] [--repeat N] [--quick] [--only PREFIX]

One command prints every figure of the README's performance section:

1. whole-run ratios: `gradscope.run` (drawing the weights, the pass, the statistics, the mean-field
   predictions and the findings; what the CLI does without --save-arrays) against PyTorch CPU doing only
   init + forward + backward + per-layer gradient norms of the same stacked ensemble, and against the
   floor (the same GEMMs in NumPy and nothing else). Each side runs in its own process; torch gets the
   better of 1 thread and one per core; gradscope chooses its own threads (api.run_threads: seed ranges in
   threads × BLAS threads, shown as e.g. 2×1); the floor is the best of BLAS's threads and seed ranges.
2. contention: each workload again beside a busy process (a NumPy 300×300 matmul loop with its default
   BLAS threads, pinned to the last core), as a ratio to its quiet time; and the training workload with
   BLAS threads left at OpenBLAS's default (one per core) beside the same process: the cliff avoided.
3. start-up: `python -c pass`, `gradscope --version`, `--help`, `gradscope run` (default scenario), wall.
4. memory: peak RSS growth of a run over the process after imports, against weights + the activations
   backward needs (z and a per layer) + δ, with and without keeping every weight gradient.
5. scaling: log-log slopes of whole-run time against seeds, depth, width and batch.

Figures are best of --repeat; record `uptime` beside them (printed first): on a shared machine only the
ratios measured in one run mean much. PyTorch is optional: give the interpreter of a venv that has it
(python -m venv .torchvenv && .torchvenv/bin/pip install torch==2.13.0 numpy).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()


def _net(seeds: int, batch: int, sizes: list[int], activation: str, **extra: Any) -> dict[str, Any]:
    return {"seeds": seeds, "batch": batch, "sizes": sizes, "activation": activation, **extra}


# Whole-run workloads. `residual` = (every, alpha): pre-norm residual blocks x + α·W₂φ(W₁·LN(x)) with a
# LayerNorm at the start of each branch (issue 9's layer kinds, gradscope/layers.py).
RESNORM = _net(16, 64, [128] + [128] * 32 + [10], "relu", residual=(2, 0.5), norm="layernorm")
WORKLOADS: dict[str, dict[str, Any]] = {
    "default (8×64 sigmoid, B128, S16)": _net(16, 128, [32] + [64] * 8 + [10], "sigmoid"),
    "many small (10×32 tanh, B64, S512)": _net(512, 64, [32] + [32] * 10 + [10], "tanh"),
    "deep (64×64 relu, B64, S32)": _net(32, 64, [64] + [64] * 64 + [10], "relu"),
    "wide (24×256 tanh, B128, S16)": _net(16, 128, [256] + [256] * 24 + [10], "tanh"),
    "residual+norm (16 pre-LN blocks×128 relu, B64, S16)": RESNORM,
    "training (3×64 relu, S16, 100 SGD steps)": _net(16, 256, [32] + [64] * 3 + [10], "relu", steps=100),
}
MEMORY_WORKLOAD = _net(4, 128, [256] + [1000] * 12 + [10], "tanh")
SCALING_BASE = {"seeds": 16, "depth": 8, "width": 128, "batch": 64}
SCALING_AXES = {"seeds": (8, 16, 32, 64), "depth": (4, 8, 16, 32), "width": (64, 128, 256, 512),
                "batch": (32, 64, 128, 256)}


def _scenario(w: dict[str, Any]) -> dict[str, Any]:
    sizes = w["sizes"]
    sc: dict[str, Any] = {
        "seeds": w["seeds"],
        "network": {"input_dim": sizes[0], "widths": sizes[1:-1], "output_dim": sizes[-1],
                    "activation": w["activation"], "init": "he_normal" if w["activation"] == "relu" else
                    "xavier_normal"},
        "loss": "cross_entropy", "data": {"kind": "blobs" if "steps" in w else "gaussian", "batch_size": w["batch"]}}
    if "residual" in w:
        every, alpha = w["residual"]
        sc["network"].update(residual={"every": every, "alpha": alpha}, norm=w["norm"], norm_placement="pre")
    if "steps" in w:
        sc["train"] = {"steps": w["steps"], "lr": 0.05, "optimizer": "sgd", "train_size": w["batch"],
                       "holdout": 128, "record_every": 25}
    return sc


def _best(fn: Any, repeat: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _status(key: str) -> int:
    """Bytes of a /proc/self/status field (VmRSS, VmHWM)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(key + ":"))


# ---------------------------------------------------------------- workers (each in its own process)


def worker_gradscope(w: dict[str, Any], repeat: int, blas_default: bool = False) -> dict[str, Any]:
    from gradscope.runtime import tune_allocator

    tune_allocator()  # as the CLI entry point does
    import gradscope
    from gradscope import api

    sc = gradscope.load_scenario(_scenario(w))
    if blas_default:  # what a run did before gradscope chose its threads: no seed ranges, a BLAS thread per core
        cores = len(os.sched_getaffinity(0))
        api.run_threads = lambda sc: (1, cores)  # type: ignore[assignment]
    chosen: list[tuple[int, int]] = []
    choose = api.run_threads

    def recorded(sc: Any) -> tuple[int, int]:  # what every timed run chose (each chooses when it starts)
        chosen.append(choose(sc))
        return chosen[-1]

    api.run_threads = recorded  # type: ignore[assignment]
    run_t = _best(lambda: gradscope.run(sc, keep_gradients=False), repeat)
    counts = {c: chosen.count(c) for c in sorted(set(chosen), reverse=True)}
    threads = "/".join(f"{w}×{b}" + (f"({n})" if len(counts) > 1 else "") for (w, b), n in counts.items())
    return {"run": run_t, "threads": threads}


def worker_floor(w: dict[str, Any], repeat: int) -> dict[str, Any]:
    import numpy as np

    import gradscope
    from gradscope.engine import largest_gemm
    from gradscope.parallel import blas_threads, limit_blas, map_seeds, using

    S, B, sizes = w["seeds"], w["batch"], w["sizes"]
    rng = np.random.default_rng(0)
    Ws = [rng.standard_normal((S, a, b)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    acts = [rng.standard_normal((S, B, n)) for n in sizes[:-1]]
    deltas = [rng.standard_normal((S, B, n)) for n in sizes[1:]]
    steps = w.get("steps", 1)

    def floor() -> None:
        for _ in range(steps):
            for l, W in enumerate(Ws):
                acts[l] @ W
                np.swapaxes(acts[l], -1, -2) @ deltas[l]
                if l:
                    deltas[l] @ np.swapaxes(W, -1, -2)

    def floor_ranges() -> None:  # the same GEMMs, seed ranges in threads with one BLAS thread each
        for _ in range(steps):
            for l, W in enumerate(Ws):
                def work(sl: slice, l: int = l, W: Any = W) -> None:
                    acts[l][sl] @ W[sl]
                    np.swapaxes(acts[l][sl], -1, -2) @ deltas[l][sl]
                    if l:
                        deltas[l][sl] @ np.swapaxes(W[sl], -1, -2)
                map_seeds(work, S, S * B * max(sizes))

    sc = gradscope.load_scenario(_scenario(w))
    cores = len(os.sched_getaffinity(0))
    with limit_blas(blas_threads(largest_gemm(sc, B))):
        best = _best(floor, repeat)
    with limit_blas(cores):
        best = min(best, _best(floor, repeat))
    with limit_blas(1), using(cores):
        best = min(best, _best(floor_ranges, repeat))
    return {"floor": best}


def worker_torch(w: dict[str, Any], repeat: int, threads: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    S, B, sizes = w["seeds"], w["batch"], w["sizes"]
    act = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}[w["activation"]]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, sizes[0], generator=g, dtype=torch.float64)
    y = torch.randint(0, sizes[-1], (B,), generator=g)
    steps = w.get("steps")

    residual = w.get("residual")
    n_dense = len(sizes) - 1

    def init() -> tuple[list[Any], list[Any]]:
        Ws = [(torch.randn(S, a, b, generator=g, dtype=torch.float64) * (2.0 / (a + b)) ** 0.5).requires_grad_()
              for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        bs = [torch.zeros(S, 1, b, dtype=torch.float64, requires_grad=True) for b in sizes[1:]]
        if residual is not None:  # one LayerNorm per block, its γ, β per seed (as gradscope's ensemble)
            blocks = (n_dense - 1) // residual[0]
            bs += [torch.ones(S, 1, sizes[0], dtype=torch.float64, requires_grad=True) for _ in range(blocks)]
            bs += [torch.zeros(S, 1, sizes[0], dtype=torch.float64, requires_grad=True) for _ in range(blocks)]
        return Ws, bs

    lns = [torch.nn.LayerNorm(sizes[0], elementwise_affine=False, dtype=torch.float64)
           for _ in range((n_dense - 1) // residual[0])] if residual is not None else []

    def forward(Ws: list[Any], bs: list[Any]) -> Any:
        if residual is None:
            a = x
            for l, (W, b) in enumerate(zip(Ws, bs, strict=True)):
                z = torch.matmul(a, W) + b
                a = act(z) if l < len(Ws) - 1 else z
            return a
        every, alpha = residual
        blocks = len(lns)
        gam, bet = bs[n_dense:n_dense + blocks], bs[n_dense + blocks:]
        h = x.expand(S, B, sizes[0])
        for k, ln in enumerate(lns):  # x + α·(W₂ φ(W₁ LN(x)γ+β))
            u = ln(h) * gam[k] + bet[k]
            for j in range(every):
                l = k * every + j
                u = torch.matmul(u, Ws[l]) + bs[l]
                if j < every - 1:
                    u = act(u)
            h = h + alpha * u
        return torch.matmul(h, Ws[-1]) + bs[n_dense - 1]

    def pass_(Ws: list[Any], bs: list[Any]) -> list[Any]:
        a = forward(Ws, bs)
        loss = torch.nn.functional.cross_entropy(a.reshape(S * B, -1), y.repeat(S), reduction="sum") / B
        for p in Ws + bs:
            p.grad = None
        loss.backward()
        return [p.grad.flatten(1).norm(dim=1) for p in Ws + bs[n_dense:]]  # per-layer, per-seed ‖∂L/∂W‖, ‖∂L/∂γ‖…

    def whole() -> None:
        Ws, bs = init()
        if steps is None:
            pass_(Ws, bs)
            return
        for _ in range(steps):
            pass_(Ws, bs)
            with torch.no_grad():
                for p in Ws + bs:
                    p -= 0.05 * p.grad

    return {"torch": _best(whole, repeat)}


def worker_memory(w: dict[str, Any], keep: bool) -> dict[str, Any]:
    from gradscope.runtime import tune_allocator

    tune_allocator()
    import numpy as np

    import gradscope

    gradscope.run({"seeds": 2, "network": {"depth": 2, "width": 8}})  # what a run imports, before the baseline
    sc = gradscope.load_scenario(_scenario(w))
    np.ones(1)
    with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
        fh.write("5")  # VmHWM (peak RSS) restarts here
    base = _status("VmRSS")
    gradscope.run(sc, keep_gradients=keep)
    peak = _status("VmHWM")
    S, B, sizes = w["seeds"], w["batch"], w["sizes"]
    weights = 8 * S * sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    acts = 8 * S * B * 2 * sum(sizes[1:])  # z and a of every layer: what backward reads
    return {"growth": peak - base, "weights": weights, "activations": acts, "delta": 8 * S * B * sum(sizes[1:])}


def worker_scaling(repeat: int) -> dict[str, Any]:
    from gradscope.runtime import tune_allocator

    tune_allocator()
    import gradscope

    out: dict[str, list[float]] = {}
    for axis, values in SCALING_AXES.items():
        times = []
        for v in values:
            p = {**SCALING_BASE, axis: v}
            w = _net(p["seeds"], p["batch"], [64] + [p["width"]] * p["depth"] + [10], "tanh")
            sc = gradscope.load_scenario(_scenario(w))
            times.append(_best(lambda sc=sc: gradscope.run(sc, keep_gradients=False), repeat))
        out[axis] = times
    return out


def busy_loop() -> None:
    """The process beside the benchmark: NumPy 300×300 matmuls with default BLAS threads, pinned to the last core."""
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[-1]})
    import numpy as np

    a = np.random.default_rng(0).standard_normal((300, 300))
    while True:
        a @ a


# ---------------------------------------------------------------- driver


def _spawn(python: str, args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    out = subprocess.run([python, str(HERE), *args], capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})})
    return json.loads(out.stdout.strip().splitlines()[-1])


def _wall(cmd: list[str], repeat: int) -> float:
    """Best wall time of a command; the first run (not counted) leaves the .pyc files a user's install has,
    also where PYTHONDONTWRITEBYTECODE is set in this environment."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    best = math.inf
    for _ in range(repeat + 1):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=env)
        best = min(best, time.perf_counter() - t)
    return best


def _slope(xs: tuple[int, ...], ys: list[float]) -> float:
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sum((a - mx) ** 2 for a in lx)


def _ms(t: float) -> str:
    return f"{1e3 * t:.1f} ms" if t < 10 else f"{t:.1f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--torch-python", help="python of a venv with torch installed (optional)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="whole-run table only (no contention, memory, scaling)")
    ap.add_argument("--only", metavar="PREFIX", help="whole-run table of the workloads whose name starts with PREFIX")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--workload", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--blas-default", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        w = WORKLOADS.get(args.workload or "", MEMORY_WORKLOAD)
        result = {"gradscope": lambda: worker_gradscope(w, args.repeat, args.blas_default),
                  "floor": lambda: worker_floor(w, args.repeat),
                  "torch": lambda: worker_torch(w, args.repeat, args.threads),
                  "memory": lambda: worker_memory(MEMORY_WORKLOAD, args.keep),
                  "scaling": lambda: worker_scaling(args.repeat),
                  "busy": busy_loop}[args.worker]()
        print(json.dumps(result))
        return

    cores = len(os.sched_getaffinity(0))
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · {platform.machine()} · {cores} usable cores · "
          f"{platform.python_implementation()} {platform.python_version()} · load {os.getloadavg()[0]:.2f} "
          f"{os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} · best of {args.repeat}", flush=True)
    rep = str(args.repeat)

    print("\n1. whole run (gradscope.run, analysis included) vs torch init+forward+backward+norms and the floor")
    print(f"{'workload':42} {'gradscope':>10} {'threads':>7} {'floor':>10} {'/floor':>6} {'torch':>10} {'/torch':>6}")
    quiet: dict[str, float] = {}
    for name in WORKLOADS:
        if args.only and not name.startswith(args.only):
            continue
        g = _spawn(sys.executable, ["--worker", "gradscope", "--workload", name, "--repeat", rep])
        f = _spawn(sys.executable, ["--worker", "floor", "--workload", name, "--repeat", rep])
        quiet[name] = g["run"]
        line = (f"{name:42} {_ms(g['run']):>10} {g['threads']:>7} {_ms(f['floor']):>10} "
                f"{g['run'] / f['floor']:6.2f}")
        if args.torch_python:
            th = min(_spawn(args.torch_python, ["--worker", "torch", "--workload", name, "--repeat", rep,
                                                "--threads", str(t)])["torch"] for t in sorted({1, cores}))
            line += f" {_ms(th):>10} {g['run'] / th:6.2f}"
        print(line, flush=True)
    if args.quick or args.only:
        return

    print("\n2. contention: beside a busy process pinned to the last core (NumPy 300×300 matmuls, default threads)")
    busy = subprocess.Popen([sys.executable, str(HERE), "--worker", "busy"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        for name in WORKLOADS:
            g = _spawn(sys.executable, ["--worker", "gradscope", "--workload", name, "--repeat", rep])
            print(f"  {name:42} {_ms(g['run']):>10}  ×{g['run'] / quiet[name]:.2f} of quiet "
                  f"(threads: {g['threads']})", flush=True)
        name = next(n for n in WORKLOADS if n.startswith("training"))
        d = _spawn(sys.executable, ["--worker", "gradscope", "--workload", name, "--repeat", "1", "--blas-default"])
        print(f"  {name + ', threads left at the default':42} {_ms(d['run']):>10}  ×{d['run'] / quiet[name]:.2f} "
              f"of quiet ({cores} BLAS threads, OpenBLAS's default)", flush=True)
    finally:
        busy.terminate()
        busy.wait()

    print("\n3. start-up (wall, best of runs)")
    exe = Path(sys.executable).parent / "gradscope"
    bare = _wall([sys.executable, "-c", "pass"], args.repeat)
    print(f"  python -c pass          {_ms(bare):>10}")
    for label, cmd in (("gradscope --version", [str(exe), "--version"]), ("gradscope --help", [str(exe), "--help"]),
                       ("python -m gradscope -V", [sys.executable, "-m", "gradscope", "--version"]),
                       ("gradscope run", [str(exe), "run"])):
        t = _wall(cmd, args.repeat)
        print(f"  {label:23} {_ms(t):>10}  (+{_ms(t - bare)} over bare python)", flush=True)

    print("\n4. memory: peak RSS growth of one run, 12 tanh layers × 1000, B128, 4 seeds")
    for keep in (False, True):
        m = _spawn(sys.executable, ["--worker", "memory"] + (["--keep"] if keep else []))
        need = m["weights"] + m["activations"]
        print(f"  {'every dW kept (--save-arrays)' if keep else 'statistics only (default)':30} growth "
              f"{m['growth'] / 2**20:7.0f} MiB = {m['growth'] / need:.2f}× (weights {m['weights'] / 2**20:.0f} MiB "
              f"+ z, a {m['activations'] / 2**20:.0f} MiB; δ adds {m['delta'] / 2**20:.0f} MiB)", flush=True)

    print(f"\n5. scaling: whole-run time around {SCALING_BASE} (tanh), log-log slope")
    s = _spawn(sys.executable, ["--worker", "scaling", "--repeat", str(max(1, args.repeat // 2))])
    for axis, values in SCALING_AXES.items():
        pts = ", ".join(f"{v}: {_ms(t)}" for v, t in zip(values, s[axis], strict=True))
        print(f"  {axis:6} slope {_slope(values, s[axis]):5.2f}   ({pts})", flush=True)


if __name__ == "__main__":
    main()
