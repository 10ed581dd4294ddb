"""gradscope's engine against PyTorch CPU autograd and against the matrix-multiply floor.

    python benchmarks/bench.py [--torch-python PATH] [--repeat N]

Every workload is one forward + backward pass of an ensemble of S networks (arrays (S, B, n)),
exactly the work of `gradscope run` minus the statistics, plus a training workload (steps per
second). Each framework is timed in its own process (torch's and numpy's thread pools fight on
small machines); the figures are the best of --repeat runs. The floor is the same matrix
multiplies in NumPy with nothing else: one a @ W per layer forward, δ @ Wᵀ and aᵀ @ δ backward.
PyTorch is optional: give the interpreter of a venv that has it (pip install torch==2.13.0).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

WORKLOADS: dict[str, dict[str, Any]] = {
    "default (8×64 sigmoid, B128, S16)": {"seeds": 16, "batch": 128, "sizes": [32] + [64] * 8 + [10],
                                          "activation": "sigmoid"},
    "deep (30×128 relu, B64, S16)": {"seeds": 16, "batch": 64, "sizes": [64] + [128] * 30 + [10],
                                     "activation": "relu"},
    "wide (4×1024 tanh, B256, S8)": {"seeds": 8, "batch": 256, "sizes": [256] + [1024] * 4 + [10],
                                     "activation": "tanh"},
    "ensemble (3×64 tanh, B128, S256)": {"seeds": 256, "batch": 128, "sizes": [32] + [64] * 3 + [10],
                                         "activation": "tanh"},
}


def _scenario(w: dict[str, Any]) -> dict[str, Any]:
    return {"seeds": w["seeds"], "network": {"input_dim": w["sizes"][0], "widths": w["sizes"][1:-1],
                                             "output_dim": w["sizes"][-1], "activation": w["activation"],
                                             "init": "xavier_normal"},
            "loss": "cross_entropy", "data": {"kind": "gaussian", "batch_size": w["batch"]}}


def _best(fn: Any, repeat: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def worker_numpy(w: dict[str, Any], repeat: int) -> dict[str, float]:
    import numpy as np

    from gradscope.engine import draw_data, init_params, loss_target, run_pass
    from gradscope.scenario import load_scenario

    sc = load_scenario(_scenario(w))
    data = draw_data(sc)
    params = init_params(sc)
    x, t = data.x, loss_target(sc, data)
    engine = _best(lambda: run_pass(sc, params, x, t), repeat)

    S, B = w["seeds"], w["batch"]
    sizes = w["sizes"]
    rng = np.random.default_rng(0)
    Ws = [rng.standard_normal((S, a, b)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    acts = [rng.standard_normal((S, B, n)) for n in sizes[:-1]]
    deltas = [rng.standard_normal((S, B, n)) for n in sizes[1:]]

    def floor() -> None:
        for l, W in enumerate(Ws):
            acts[l] @ W
            np.swapaxes(acts[l], -1, -2) @ deltas[l]
            if l:
                deltas[l] @ np.swapaxes(W, -1, -2)

    return {"engine": engine, "floor": _best(floor, repeat)}


def worker_train(seeds: int, steps: int) -> dict[str, float]:
    from gradscope.engine import draw_data, init_params, loss_target, run_pass
    from gradscope.optimizers import OPTIMIZERS
    from gradscope.scenario import load_scenario

    sc = load_scenario({"seeds": seeds, "network": {"input_dim": 32, "widths": [64, 64, 64], "output_dim": 10,
                                                    "activation": "tanh", "init": "xavier_uniform"},
                        "data": {"kind": "blobs", "batch_size": 128}})
    data = draw_data(sc)
    params = init_params(sc)
    x, t = data.x, loss_target(sc, data)
    sgd = OPTIMIZERS.get("sgd")
    tensors = params.W + params.b

    def run() -> None:
        for step in range(1, steps + 1):
            p = run_pass(sc, params, x, t)
            sgd.step(tensors, p.dW + p.db, {}, step, lr=0.01)

    return {"steps_per_s": steps / _best(run, 2)}


def worker_torch(w: dict[str, Any], repeat: int) -> dict[str, float]:
    import torch

    S, B = w["seeds"], w["batch"]
    sizes = w["sizes"]
    act = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}[w["activation"]]
    g = torch.Generator().manual_seed(0)
    Ws = [(torch.randn(S, a, b, generator=g, dtype=torch.float64) / a**0.5).requires_grad_()
          for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    bs = [torch.zeros(S, 1, b, dtype=torch.float64, requires_grad=True) for b in sizes[1:]]
    x = torch.randn(B, sizes[0], generator=g, dtype=torch.float64)
    y = torch.randint(0, sizes[-1], (B,), generator=g)

    def step() -> None:
        a = x
        for l, (W, b) in enumerate(zip(Ws, bs, strict=True)):
            z = torch.matmul(a, W) + b
            a = act(z) if l < len(Ws) - 1 else z
        loss = torch.nn.functional.cross_entropy(a.reshape(S * B, -1), y.repeat(S), reduction="sum") / B
        for p in Ws + bs:
            p.grad = None
        loss.backward()

    return {"torch": _best(step, repeat)}


def _spawn(python: str, args: list[str]) -> dict[str, Any]:
    out = subprocess.run([python, __file__, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--torch-python", help="python of a venv with torch installed (optional)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--worker", choices=["numpy", "torch", "train"], help=argparse.SUPPRESS)
    ap.add_argument("--workload", help=argparse.SUPPRESS)
    ap.add_argument("--seeds", type=int, default=32, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker == "numpy":
        print(json.dumps(worker_numpy(WORKLOADS[args.workload], args.repeat)))
        return
    if args.worker == "torch":
        print(json.dumps(worker_torch(WORKLOADS[args.workload], args.repeat)))
        return
    if args.worker == "train":
        print(json.dumps(worker_train(args.seeds, 50)))
        return

    print(f"{'workload':36} {'engine ms':>10} {'floor ms':>9} {'engine/floor':>12} {'torch ms':>9} "
          f"{'engine/torch':>12}")
    for name in WORKLOADS:
        np_t = _spawn(sys.executable, ["--worker", "numpy", "--workload", name, "--repeat", str(args.repeat)])
        line = (f"{name:36} {1e3 * np_t['engine']:10.2f} {1e3 * np_t['floor']:9.2f} "
                f"{np_t['engine'] / np_t['floor']:12.2f}")
        if args.torch_python:
            th = _spawn(args.torch_python, ["--worker", "torch", "--workload", name, "--repeat", str(args.repeat)])
            line += f" {1e3 * th['torch']:9.2f} {np_t['engine'] / th['torch']:12.2f}"
        print(line, flush=True)
    print("\ntraining, 3×64 tanh net, batch 128, full-batch SGD (forward + backward + update):")
    for seeds in (1, 8, 32, 128):
        r = _spawn(sys.executable, ["--worker", "train", "--seeds", str(seeds)])
        print(f"  {seeds:4d} seeds: {r['steps_per_s']:8.1f} steps/s  ({r['steps_per_s'] * seeds:9.1f} "
              "network-steps/s)", flush=True)


if __name__ == "__main__":
    main()
