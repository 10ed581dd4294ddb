"""Seed ranges in threads (gradscope/parallel.py) give the serial numbers bit for bit."""

from __future__ import annotations

import threading
import time
import warnings

import numpy as np
import pytest

import gradscope
from gradscope import parallel
from gradscope.diagnostics import dW_statistics
from gradscope.engine import draw_data, init_params, loss_target, run_pass
from gradscope.scenario import load_scenario


@pytest.fixture
def split_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    """Split even the small arrays of a test-sized net, so every parallel path runs."""
    from gradscope import diagnostics, engine

    monkeypatch.setattr(parallel, "PARALLEL_VALUES", 1)
    monkeypatch.setattr(diagnostics, "DW_PARALLEL_VALUES", 1)
    monkeypatch.setattr(engine, "LINEAR_SPLIT", 1)


def test_seed_slices_cover_the_seeds_in_order() -> None:
    for S in range(1, 40):
        for parts in range(1, 6):
            sl = parallel.seed_slices(S, parts)
            assert len(sl) == min(parts, S)
            assert sl[0].start == 0 and sl[-1].stop == S
            assert all(a.stop == b.start for a, b in zip(sl[:-1], sl[1:], strict=True))
            sizes = [s.stop - s.start for s in sl]
            assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_workers_for_run() -> None:
    assert parallel.workers_for_run(16, 100, env={}) == 1  # too small to split
    assert parallel.workers_for_run(16, 1 << 20, env={"GRADSCOPE_THREADS": "1"}) == 1
    assert parallel.workers_for_run(16, 1 << 20, env={"GRADSCOPE_THREADS": "4"}) == 4
    assert parallel.workers_for_run(3, 1 << 20, env={"GRADSCOPE_THREADS": "2"}) == 1  # 2 + 1: uneven
    assert parallel.workers_for_run(17, 1 << 20, env={"GRADSCOPE_THREADS": "2"}) == 2  # 9 + 8
    assert parallel.workers_for_run(1, 1 << 20, env={"GRADSCOPE_THREADS": "2"}) == 1
    assert 1 <= parallel.workers_for_run(16, 1 << 20, env={}) <= parallel.usable_cores()


def test_map_seeds_returns_in_seed_order(split_everything: None) -> None:
    with parallel.using(3):
        out = parallel.map_seeds(lambda sl: (sl.start, sl.stop, threading.get_ident()), 10, 10)
    assert [(a, b) for a, b, _ in out] == [(0, 4), (4, 7), (7, 10)]
    assert out[0][2] == threading.get_ident()  # the first range runs in the calling thread


def test_map_seeds_waits_for_every_range_before_raising(split_everything: None) -> None:
    done: list[int] = []

    def fn(sl: slice) -> None:
        if sl.start == 0:
            raise ValueError("first range")
        time.sleep(0.05)
        done.append(sl.start)

    with parallel.using(2), pytest.raises(ValueError, match="first range"):
        parallel.map_seeds(fn, 4, 4)
    assert done == [2]  # the other range had finished when the error reached the caller

    def late(sl: slice) -> None:
        if sl.start:
            raise KeyError("second range")

    with parallel.using(2), pytest.raises(KeyError):
        parallel.map_seeds(late, 4, 4)


def test_run_lanes_runs_every_lane_and_raises_after_all_finished() -> None:
    """parallel.run_lanes (the weight draws' lanes): every lane runs, the first in this thread; a lane's
    exception reaches the caller only once the others are done; the pool keeps working after it."""
    seen: list[tuple[int, int]] = []

    def lane(i: int, fail: bool = False):  # type: ignore[no-untyped-def]
        def run() -> None:
            time.sleep(0.02 * i)
            seen.append((i, threading.get_ident()))
            if fail:
                raise RuntimeError(f"lane {i}")
        return run

    parallel.run_lanes([lane(0), lane(1), lane(2)])
    assert sorted(i for i, _ in seen) == [0, 1, 2] and dict(seen)[0] == threading.get_ident()
    seen.clear()
    with pytest.raises(RuntimeError, match="lane 0"):
        parallel.run_lanes([lane(0, fail=True), lane(3)])
    assert sorted(i for i, _ in seen) == [0, 3]
    seen.clear()
    with pytest.raises(RuntimeError, match="lane 1"):
        parallel.run_lanes([lane(0), lane(1, fail=True)])
    parallel.run_lanes([lane(0), lane(1)])
    assert sorted(i for i, _ in seen) == [0, 0, 1, 1]
    seen.clear()  # from a pool thread: one after another there, never waiting on lanes queued behind itself
    task = parallel._executor().submit(parallel.run_lanes, [lane(0), lane(1), lane(2)])
    task.result()
    assert sorted(i for i, _ in seen) == [0, 1, 2] and len({t for _, t in seen}) == 1
    assert dict(seen)[0] != threading.get_ident()


def test_no_nested_splitting(split_everything: None) -> None:
    inner: list[int] = []
    with parallel.using(2):
        parallel.map_seeds(lambda sl: inner.append(len(parallel.map_seeds(lambda s: s, 8, 8))), 8, 8)
    assert inner == [1, 1]


NETS = {
    "tanh, shared input": {"seeds": 6, "network": {"input_dim": 5, "widths": [7, 6], "output_dim": 3,
                                                   "activation": "tanh"}},
    "relu, no bias": {"seeds": 5, "network": {"input_dim": 4, "widths": [8, 8, 8], "output_dim": 2,
                                              "activation": "relu", "bias": False}},
    "sigmoid float32": {"seeds": 4, "dtype": "float32", "loss": "mse",
                        "network": {"depth": 3, "width": 9, "activation": "sigmoid"}},
    "gelu (no fused kernel)": {"seeds": 3, "network": {"depth": 2, "width": 6, "activation": "gelu"}},
    "pre-LN residual, dropout, projection": {
        "seeds": 5, "network": {"input_dim": 6, "output_dim": 3, "activation": "relu", "layers": [
            {"dense": {"width": 8}}, {"dropout": 0.3},
            {"residual": {"alpha": 0.5, "projection": True, "layers": [
                {"norm": "layernorm"}, {"dense": {"width": 10}}, {"dense": {"width": 12, "activation": "identity"}}]}},
            {"dense": {"width": 8, "norm": "batchnorm"}}]}},
}


def _pass(sc, workers: int):  # type: ignore[no-untyped-def]
    data = draw_data(sc)
    params = init_params(sc)
    with parallel.using(workers):
        return run_pass(sc, params, data.x, loss_target(sc, data), reduce_dW=dW_statistics)


@pytest.mark.parametrize("name", sorted(NETS))
def test_pass_in_seed_ranges_is_the_serial_pass(name: str, split_everything: None) -> None:
    sc = load_scenario(NETS[name])
    one, two = _pass(sc, 1), _pass(sc, 2)
    for field in ("z", "a", "delta", "dW"):
        for x, y in zip(getattr(one, field), getattr(two, field), strict=True):
            assert x.dtype == y.dtype and np.array_equal(x, y), field
    if one.db is not None:
        assert all(np.array_equal(x, y) for x, y in zip(one.db, two.db, strict=True))  # type: ignore[arg-type]
    assert one.extra.keys() == two.extra.keys()
    assert all(np.array_equal(one.extra[k], two.extra[k]) for k in one.extra)
    assert np.array_equal(one.loss, two.loss)
    for s1, s2 in zip(one.dW_stats or [], two.dW_stats or [], strict=True):
        for k in ("norm", "mean_abs", "max_abs", "nonfinite"):
            assert np.array_equal(getattr(s1, k), getattr(s2, k)), k
        assert s1.quantiles == s2.quantiles


def test_weight_gradient_statistics_with_overflowing_seeds(split_everything: None) -> None:
    """Non-finite seeds in either range are left out of the quantile sample exactly as in one thread."""
    rng = np.random.default_rng(3)
    S, n, m, B = 7, 300, 400, 5  # 120,000 entries a seed: the sample is strided
    dW = rng.standard_normal((S, n, m))
    dW[1, 3, 4] = np.inf
    dW[5, 0, 0] = np.nan
    z = [rng.standard_normal((S, B, m))]
    a = [None, rng.standard_normal((S, B, m))]
    a[1][4, 0, 0] = np.inf
    delta = rng.standard_normal((S, B, m))
    with parallel.using(1):
        one = dW_statistics(1, dW, z, a, delta)  # type: ignore[arg-type]
    for w in (2, 3):
        with parallel.using(w):
            other = dW_statistics(1, dW, z, a, delta)  # type: ignore[arg-type]
        assert other.quantiles == one.quantiles
        assert np.array_equal(other.nonfinite, one.nonfinite)
    assert one.nonfinite.tolist() == [False, True, False, False, True, True, False]
    finite = np.abs(dW[~one.nonfinite]).ravel()
    sample = finite[:: -(-finite.size // (1 << 18))]
    expect = np.quantile(sample, [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99])
    assert list(one.quantiles.values()) == pytest.approx(expect.tolist(), rel=0, abs=0)


def test_run_report_is_the_same_on_any_number_of_threads(monkeypatch: pytest.MonkeyPatch,
                                                          split_everything: None) -> None:
    sc = {"seeds": 8, "network": {"depth": 4, "width": 16, "activation": "tanh"},
          "train": {"steps": 6, "lr": 0.1, "record_every": 2}}
    reports = []
    for threads in ("1", "2"):
        monkeypatch.setenv("GRADSCOPE_THREADS", threads)
        reports.append(gradscope.run(sc).to_dict())
    assert reports[0] == reports[1]


def test_no_warnings_from_the_threads(split_everything: None) -> None:
    """np.errstate reaches the seed ranges: an overflowing net reports its overflow as data, silently."""
    sc = load_scenario({"seeds": 4, "network": {"depth": 12, "width": 32, "activation": "relu",
                                                "init": {"name": "normal", "std": 1e30}}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with parallel.using(2):
            report = gradscope.run(sc)
    assert report.summary.overflow_seeds > 0


@pytest.mark.parametrize("loss", ["mse", "mae", "huber", "smooth_l1", "cross_entropy", "bce", "multilabel_bce", "focal",
                                  "kl_div"])
def test_every_loss_in_seed_ranges_is_the_serial_loss(loss: str, split_everything: None) -> None:
    sc = load_scenario({"seeds": 5, "loss": loss, "network": {"depth": 2, "width": 6, "output_dim": 3}})
    one, two = _pass(sc, 1), _pass(sc, 2)
    assert np.array_equal(one.loss, two.loss) and one.loss.shape == (5,)
    assert all(np.array_equal(x, y) for x, y in zip(one.dW, two.dW, strict=True))


def test_all_finite_from_a_norm() -> None:
    """A finite norm proves a seed finite; an overflowing norm of finite entries is checked entry by entry."""
    from gradscope.diagnostics import all_finite
    from gradscope.numerics import _norm

    x = np.ones((4, 3, 5))
    x[1, 0, 0] = np.inf
    x[2, 1, 1] = np.nan
    x[3] = 1e308  # finite entries whose norm is inf
    n = _norm(x, (1, 2))
    assert not np.isfinite(n[3])
    assert all_finite(x, n).tolist() == all_finite(x).tolist() == [True, False, False, True]
