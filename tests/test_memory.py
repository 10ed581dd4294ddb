"""Weight gradients reduced inside backward; the default memory limit follows the memory available."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import gradscope
from gradscope.engine import default_max_memory, parse_size
from gradscope.numerics import _norm
from gradscope.render import to_json

SC = {"seeds": 3, "network": {"depth": 4, "width": 16, "activation": "tanh"}, "data": {"batch_size": 16}}


def test_dropping_gradients_changes_no_number() -> None:
    full = gradscope.run(SC)
    lean = gradscope.run(SC, keep_gradients=False)
    assert json.loads(to_json(lean.to_dict())) == json.loads(to_json(full.to_dict()))
    _, p = lean.arrays
    assert p.dW[0] is not None and all(g is None for g in p.dW[1:])
    assert all(g is not None for g in full.arrays[1].dW)
    assert len(p.dW_stats) == len(p.dW)
    # δ of the layers between is reduced to its norms too: layer 1's and the output layer's stay
    assert p.delta[0] is not None and p.delta[-1] is not None and all(d is None for d in p.delta[1:-1])
    assert all(d is not None for d in full.arrays[1].delta)
    for l, (d, g) in enumerate(zip(full.arrays[1].delta, p.dW_stats, strict=True)):
        assert np.array_equal(_norm(d, (1, 2)), g.delta_norm), l


PEAK = '''
from gradscope.runtime import tune_allocator
tune_allocator()
import gradscope
gradscope.run({"seeds": 2, "network": {"depth": 2, "width": 8}})  # what a run imports, imported before the baseline
sc = gradscope.load_scenario({"seeds": 2, "network": {"input_dim": 64, "widths": [700] * 8, "output_dim": 10,
                              "activation": "tanh"}, "data": {"batch_size": 64}})

def status(key):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(key + ":"))

with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")  # the peak RSS (VmHWM) starts again from here: not the forking parent's
base = status("VmRSS")
gradscope.run(sc, keep_gradients=False)
print(status("VmHWM") - base)
'''


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="Linux /proc")
@pytest.mark.parametrize("threads", ["1", "2"])
def test_peak_memory_is_weights_and_activations(threads: str) -> None:
    """Without --save-arrays a run's peak RSS growth stays within 1.25× weights + z and a of every layer,
    in one thread (a busy machine) as in two seed ranges."""
    env = {**os.environ, "GRADSCOPE_THREADS": threads}
    out = subprocess.run([sys.executable, "-c", PEAK], capture_output=True, text=True, check=True, env=env)
    growth = int(out.stdout.split()[-1])
    sizes = [64] + [700] * 8 + [10]
    weights = 8 * 2 * sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    acts = 8 * 2 * 64 * 2 * sum(sizes[1:])
    assert growth <= 1.25 * (weights + acts), growth / (weights + acts)


def test_save_arrays_needs_the_gradients(tmp_path) -> None:
    lean = gradscope.run(SC, keep_gradients=False)
    with pytest.raises(gradscope.GradscopeError, match="keep_gradients=True"):
        gradscope.save_arrays(lean, tmp_path / "x.npz")


@pytest.mark.skipif(not os.path.exists("/proc/meminfo"), reason="Linux /proc/meminfo")
def test_default_limit_is_half_of_memory_available() -> None:
    with open("/proc/meminfo", encoding="ascii") as fh:
        avail = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("MemAvailable:"))
    assert default_max_memory() == pytest.approx(avail / 2, rel=0.2)
    assert parse_size("auto") == pytest.approx(default_max_memory(), rel=0.2)


# norms, dropout layers, residual sums and skip projections keep arrays of their own: a net of a few dense
# layers and many such items must not slip under --max-memory on its dense layers' estimate
STRUCTURED = {"seeds": 4, "network": {"input_dim": 8, "output_dim": 3, "layers": [
    {"dense": 64},
    *[{"residual": {"projection": True, "layers": [{"norm": "layernorm"}, {"dropout": 0.2},
                                                   {"dense": {"width": 48 if i % 2 else 64, "activation": "identity",
                                                              "norm": "batchnorm"}}]}} for i in range(4)],
    *[item for _ in range(30) for item in ({"norm": "rmsnorm"}, {"dropout": 0.1})]]},
    "data": {"batch_size": 64}}


def test_estimate_covers_norm_dropout_and_projection_arrays() -> None:
    import tracemalloc

    from gradscope.engine import estimate_bytes
    sc = gradscope.load_scenario(STRUCTURED)
    tracemalloc.start()
    try:
        gradscope.run(sc)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert estimate_bytes(sc) >= peak
    with pytest.raises(gradscope.GradscopeError, match="max-memory"):
        gradscope.run(sc, max_memory=peak // 2)
