"""Fast paths that must give the slow paths' numbers bit for bit: quantiles (np.quantile), report.stats_of (Stat.of),
theory._pair_kernels (pair_expectation of φ and φ' separately)."""

from __future__ import annotations

import numpy as np
import pytest

from gradscope.diagnostics import QUANTILES
from gradscope.quantiles import order_statistics, quantiles


def _samples(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    return [np.abs(rng.standard_normal(n)), rng.integers(0, 5, n).astype(np.float64), np.sort(rng.random(n)),
            np.sort(rng.random(n))[::-1].copy(), np.abs(rng.standard_cauchy(n)) * 1e-300, np.zeros(n),
            np.abs(rng.standard_normal(n)).astype(np.float32), rng.standard_normal(n) * 1e300]


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 65, 200, 4099, 70001])
def test_same_bits_as_numpy(n: int) -> None:
    rng = np.random.default_rng(n)
    for x in _samples(n, rng):
        for qs in (QUANTILES, (0.0, 1.0), (0.5,), tuple(rng.random(9))):
            want, got = np.quantile(x, qs), quantiles(x, qs)
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), (n, x[:4], qs, want, got)


def test_input_untouched_and_special_values() -> None:
    x = np.array([3.0, np.inf, 1.0, -np.inf, 2.0] * 30)
    before = x.copy()
    with np.errstate(invalid="ignore"):  # inf - inf in the interpolation, as in NumPy
        assert quantiles(x, QUANTILES).tobytes() == np.quantile(x, QUANTILES).tobytes()
    assert (x == before).all()
    y = np.array([1.0, np.nan, 2.0])  # NaN: NumPy's own answer
    assert np.isnan(quantiles(y, (0.5,))).all()


def test_order_statistics_are_sorted_values() -> None:
    x = np.random.default_rng(3).standard_normal(10_000)
    ranks = [0, 1, 17, 4999, 5000, 9998, 9999]
    assert order_statistics(x, ranks) == dict(zip(ranks, np.sort(x)[ranks].tolist(), strict=True))


@pytest.mark.parametrize("S", [1, 2, 5, 16, 17, 128, 129, 257, 512])
def test_stats_of_is_stat_of_per_key(S: int) -> None:
    """report.stats_of (a row's per-seed arrays reduced together) gives Stat.of's numbers, bit for bit."""
    from gradscope.report import Stat, stats_of

    rng = np.random.default_rng(S)
    for _ in range(5):
        vals: dict[str, np.ndarray | None] = {
            f"k{i}": rng.standard_normal(S) * 10 ** rng.uniform(-300, 300) if i % 3 else rng.random(S)
            for i in range(17)}
        vals.update(nan=np.where(rng.random(S) < 0.3, np.nan, rng.random(S)), none=None,
                    counts=rng.integers(0, 3, S), inf=np.full(S, np.inf), short=rng.random(max(1, S // 2)))
        got = stats_of(vals)
        assert list(got) == list(vals)
        for k, v in vals.items():
            assert repr(got[k]) == repr(Stat.of(v)), (S, k)


@pytest.mark.parametrize("act", [("tanh", {}), ("sigmoid", {}), ("gelu", {}), ("gelu", {"approximate": "tanh"}),
                                 ("elu", {"alpha": 0.7}), ("softplus", {}), ("selu", {}), ("silu", {}),
                                 ("hardtanh", {}), ("softsign", {})])
def test_pair_kernels_same_bits_as_two_pair_expectations(act: tuple[str, dict]) -> None:
    from gradscope.activations import ACTIVATIONS
    from gradscope.theory import _pair_kernels, _phi, pair_expectation

    if act[0] not in ACTIVATIONS:
        pytest.skip(f"no {act[0]} activation")
    x = np.random.default_rng(1).standard_normal((9, 5))
    cov = 1.3 * x @ x.T / 5 + 0.05
    fn, gr = _phi(*act)
    value, deriv = _pair_kernels(act, cov)
    assert value.tobytes() == pair_expectation(fn, fn, cov).tobytes()
    assert deriv.tobytes() == pair_expectation(gr, gr, cov).tobytes()


def test_threaded_draws_same_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """engine.init_params draws layers in threads when cores are free: the same weights and biases as drawn one
    layer after another."""
    import gradscope
    from gradscope import cores, engine

    sc = gradscope.load_scenario({"seeds": 3, "network": {"input_dim": 6, "widths": [5, 7, 4], "output_dim": 2,
                                                          "activation": "tanh", "bias_init": "torch_default"}})
    monkeypatch.setattr(cores, "free_cores", lambda: 1)
    serial = engine.init_params(sc)
    monkeypatch.setattr(cores, "free_cores", lambda: 3)
    monkeypatch.setattr(engine, "PARALLEL_DRAW_VALUES", 0)
    calls: list[int] = []
    real = engine._run_draws

    def spy(draw, jobs, values):  # type: ignore[no-untyped-def]
        calls.append(values)
        return real(draw, jobs, values)

    monkeypatch.setattr(engine, "_run_draws", spy)
    threaded = engine.init_params(sc)
    assert calls
    for a, b in zip(serial.W + (serial.b or []), threaded.W + (threaded.b or []), strict=True):
        assert a.tobytes() == b.tobytes()
    assert serial.b is not None


def test_weight_draws_keep_to_gradscope_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """GRADSCOPE_THREADS=1 holds the weight draws to this thread too (no lanes, whatever cores are free)."""
    import gradscope
    from gradscope import cores, engine, parallel

    sc = gradscope.load_scenario({"seeds": 3, "network": {"depth": 3, "width": 8}})
    monkeypatch.setattr(cores, "free_cores", lambda: 3)
    monkeypatch.setattr(engine, "PARALLEL_DRAW_VALUES", 0)
    made: list[int] = []
    real = parallel.run_lanes

    def lanes(fns):  # type: ignore[no-untyped-def]
        made.append(len(fns))
        return real(fns)

    monkeypatch.setattr(parallel, "run_lanes", lanes)
    want = engine.init_params(sc)
    assert made == [3]
    monkeypatch.setenv("GRADSCOPE_THREADS", "1")
    got = engine.init_params(sc)
    assert made == [3]
    monkeypatch.setenv("GRADSCOPE_THREADS", "2")
    engine.init_params(sc)
    assert made == [3, 2]
    assert all(a.tobytes() == b.tobytes() for a, b in zip(want.W, got.W, strict=True))


@pytest.mark.parametrize("act", [("tanh", {}), ("sigmoid", {}), ("gelu", {"approximate": "none"}),
                                 ("softplus", {"beta": 2.0}), ("elu", {"alpha": 0.5})])
def test_pair_kernels_are_the_pair_expectations(act: tuple[str, dict]) -> None:
    """_pair_kernels evaluates φ at u1's few distinct values once: the same bits as pair_expectation."""
    from gradscope.theory import _pair_kernels, _phi, pair_expectation

    rng = np.random.default_rng(5)
    x = rng.standard_normal((7, 12))
    cov = x @ x.T / 12
    cov[3, :] = cov[:, 3] = 0.0  # a sample of zero variance
    fn, grad = _phi(*act)
    value, deriv = _pair_kernels(act, cov)
    assert np.array_equal(value, pair_expectation(fn, fn, cov))
    assert np.array_equal(deriv, pair_expectation(grad, grad, cov))
    from gradscope import parallel

    with parallel.using(2):  # ranges of pairs in threads (the threshold lowered so 28 pairs split)
        old, parallel.PARALLEL_VALUES = parallel.PARALLEL_VALUES, 1
        try:
            split = _pair_kernels(act, cov)
        finally:
            parallel.PARALLEL_VALUES = old
    assert np.array_equal(split[0], value) and np.array_equal(split[1], deriv)


def _nonnegative_samples(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """|∂L/∂W|-like samples and shapes that a pilot could be fooled by: ties, runs of zeros, sorted or periodic
    order, a few distinct values, tiny and huge magnitudes."""
    x = np.abs(rng.standard_normal(n))
    return [x, x * (rng.random(n) < 0.4), np.round(x, 1), np.sort(x), np.sort(x)[::-1].copy(),
            np.tile(np.abs(rng.standard_normal(64)), -(-n // 64))[:n], np.zeros(n), rng.integers(0, 3, n) * 1.0,
            np.abs(rng.standard_cauchy(n)) * 1e-300, x * 1e300, np.where(rng.random(n) < 0.999, 7.0, x),
            x.astype(np.float32)]


@pytest.mark.parametrize("n", [1, 5, 300, 16_383, 16_384, 70_001])
def test_quantiles_of_parts_are_np_quantile(n: int) -> None:
    """quantiles_of_parts (brackets from a pilot, counting passes, a sort of what is inside) gives
    np.quantile's figures of the concatenated parts bit for bit, however the sample is cut into parts."""
    from gradscope.quantiles import quantiles_of_parts

    rng = np.random.default_rng(n)
    for x in _nonnegative_samples(n, rng):
        cuts = np.sort(rng.integers(0, n + 1, int(rng.integers(0, 4))))
        parts = np.split(x, cuts)
        for qs in (QUANTILES, (0.0, 1.0), (0.5,), tuple(rng.random(9))):
            want = np.quantile(x, qs)
            got = quantiles_of_parts(parts, qs, map_parts=lambda fn, k=len(parts): [fn(i) for i in range(k)])
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), (n, x[:4], qs, want, got)
    if n > 1:  # parts of two dtypes: np.concatenate's (float64), as np.quantile of the whole
        mixed = [np.abs(rng.standard_normal(n // 2)).astype(np.float32), np.abs(rng.standard_normal(n - n // 2))]
        want = np.quantile(np.concatenate(mixed), QUANTILES)
        assert quantiles_of_parts(mixed, QUANTILES).tobytes() == want.tobytes()


def test_selection_small_pilot_and_missed_brackets(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a pilot of 16 entries, and with brackets made too narrow to hold their ranks (the fallback sort),
    the order statistics are still the sorted sample's."""
    from gradscope import quantiles as qmod

    rng = np.random.default_rng(5)
    for pilot, sigmas in ((16, 3.5), (4096, -40.0), (64, 0.0)):
        monkeypatch.setattr(qmod, "PILOT", pilot)
        monkeypatch.setattr(qmod, "PILOT_MAX", pilot)
        monkeypatch.setattr(qmod, "_MARGIN_SIGMAS", sigmas)
        monkeypatch.setattr(qmod, "SELECT_FROM", 32)
        for trial in range(200):
            n = int(rng.integers(32, 3000))
            x = _nonnegative_samples(n, rng)[trial % 12]
            ranks = sorted(set(rng.integers(0, n, 6).tolist()) | {0, n - 1})
            parts = np.split(x, np.sort(rng.integers(0, n + 1, 2)))
            got = qmod.select_unsorted(parts, ranks)
            assert got == {r: np.sort(x)[r] for r in ranks}, (pilot, sigmas, trial)


def test_selection_sorts_only_the_brackets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of the selection: on 262,144 |dW|-like entries nothing near the sample's size is sorted or
    partitioned (a fallback to the whole is a 3.5-sigma miss, not seen on these), and what is ordered is a
    few per cent: the pilot (8192 entries here) and a bracket around each quantile."""
    from gradscope import quantiles as qmod

    ordered: list[int] = []
    real_sort, real_partition = np.sort, np.partition

    def counting(real):  # type: ignore[no-untyped-def]
        def fn(a: np.ndarray, *args: object, **kw: object) -> np.ndarray:
            ordered.append(np.size(a))
            return real(a, *args, **kw)
        return fn

    rng = np.random.default_rng(8)
    n = 1 << 18
    for x in _nonnegative_samples(n, rng)[:6]:
        want = np.quantile(x, QUANTILES)
        ordered.clear()
        monkeypatch.setattr(qmod.np, "sort", counting(real_sort))
        monkeypatch.setattr(qmod.np, "partition", counting(real_partition))
        got = qmod.quantiles_of_parts([x[: n // 2], x[n // 2:]], QUANTILES)
        monkeypatch.setattr(qmod.np, "sort", real_sort)
        monkeypatch.setattr(qmod.np, "partition", real_partition)
        assert got.tobytes() == want.tobytes()
        assert ordered and max(ordered) < n // 10 and sum(ordered) < n // 4, ordered



@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_short_axis_reductions_and_softmax_are_numpys_bits(dtype: type) -> None:
    """max_last / sum_last (one op per column for a few classes) give np.max / np.sum's values bit for bit,
    NaN, ±inf and -0.0 included; log_softmax, softmax and cross-entropy's one-hot path built on them equal the
    textbook formulas evaluated with NumPy's reductions."""
    from gradscope.activations import OUTPUT_ACTIVATIONS, log_softmax, max_last, softmax, sum_last
    from gradscope.losses import _cross_entropy

    rng = np.random.default_rng(3)
    head = OUTPUT_ACTIVATIONS.get("softmax")
    with np.errstate(all="ignore"):
        for k in range(1, 24):
            for trial in range(6):
                scale = rng.choice([1e-3, 1.0, 40.0, 800.0], size=(3, 9, k))
                z = (rng.standard_normal((3, 9, k)) * scale).astype(dtype)
                if trial == 1:
                    z[0, 1, 0] = np.nan
                if trial == 2:
                    z[1, 2, k - 1], z[2, 3, 0] = np.inf, -np.inf
                if trial == 3:
                    z[2, 4, :] = -0.0
                assert np.array_equal(max_last(z), z.max(axis=-1, keepdims=True), equal_nan=True)
                assert np.array_equal(sum_last(np.abs(z)), np.abs(z).sum(axis=-1, keepdims=True), equal_nan=True)
                assert np.array_equal(sum_last(z), z.sum(axis=-1, keepdims=True), equal_nan=True)
                m = z.max(axis=-1, keepdims=True)
                ref = z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))
                assert np.array_equal(log_softmax(z), ref, equal_nan=True)
                e = np.exp(z - m)
                assert np.array_equal(softmax(z), e / e.sum(axis=-1, keepdims=True), equal_nan=True)
                labels = rng.integers(0, k, 9)
                onehot = np.eye(k, dtype=dtype)[labels]
                for reduction, denom in (("mean", 9.0), ("sum", 1.0)):
                    loss, grad = _cross_entropy(z, labels, head, reduction=reduction)
                    assert np.array_equal(loss, -(onehot * ref).sum(axis=(-2, -1)) / denom, equal_nan=True)
                    assert np.array_equal(grad, (np.exp(ref) - onehot) / denom, equal_nan=True)
                    # the general path (smoothing 0 written out as class weights of 1) agrees bit for bit
                    loss_w, grad_w = _cross_entropy(z, labels, head, reduction=reduction, weight=[1.0] * k)
                    assert np.array_equal(loss, loss_w, equal_nan=True) and np.array_equal(grad, grad_w, equal_nan=True)


@pytest.mark.parametrize("act", [("tanh", {}), ("sigmoid", {}), ("gelu", {"approximate": "tanh"})])
def test_pair_kernels_of_a_large_batch_are_the_pair_expectations(act: tuple[str, dict]) -> None:
    """64 samples (2080 pairs, as theory_for uses), in one thread and in ranges of pairs: pair_expectation's bits."""
    from gradscope import parallel
    from gradscope.theory import _pair_kernels, _phi, pair_expectation

    x = np.random.default_rng(8).standard_normal((64, 20))
    cov = 1.7 * x @ x.T / 20 + 0.1
    fn, grad = _phi(*act)
    want = pair_expectation(fn, fn, cov), pair_expectation(grad, grad, cov)
    for workers in (1, 2):
        with parallel.using(workers):
            got = _pair_kernels(act, cov)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), workers


@pytest.mark.parametrize("takes_mean", [True, False])
def test_mean_std_are_numpys(takes_mean: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """numerics.mean_std (std handed the mean) gives x.mean and x.std's float64 values bit for bit: float32 and
    float64, trailing or negative axes, 2-D, NaN and inf seeds; also as on NumPy < 2 (no std(mean=))."""
    from gradscope import numerics
    from gradscope.numerics import mean_std

    monkeypatch.setattr(numerics, "_STD_TAKES_MEAN", takes_mean and numerics._STD_TAKES_MEAN)

    rng = np.random.default_rng(2)
    for shape, axes in [((5, 7, 3), (1, 2)), ((7, 3), (-2, -1)), ((4, 7, 3), (-2, -1)), ((3, 300, 40), (1, 2))]:
        for dtype in (np.float64, np.float32):
            x = (rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, 3)).astype(dtype)
            if len(shape) == 3:
                x[0, 0, 0], x[-1, -1, -1] = np.nan, np.inf
            with np.errstate(invalid="ignore"):
                m, s = mean_std(x, axes)
                assert np.array_equal(m, x.mean(axis=axes, dtype=np.float64), equal_nan=True)
                assert np.array_equal(s, x.std(axis=axes, dtype=np.float64), equal_nan=True)
