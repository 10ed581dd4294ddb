"""Weight gradients reduced inside backward; the default memory limit follows the memory available."""

from __future__ import annotations

import json
import os

import pytest

import gradscope
from gradscope.engine import default_max_memory, parse_size
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
