"""Forward and backward passes over a whole ensemble at once.

Shapes: S seeds, B samples, layer widths n_0..n_L. Inputs x (B, n_0) are
shared by the ensemble; weights W_l (S, n_{l-1}, n_l), biases b_l (S, n_l);
pre-activations z_l and activations a_l (S, B, n_l). A linear layer is
z = a @ W + b. No Python loop over seeds or samples in the passes; each layer's
weights for all seeds come from that layer's random stream in seed order, so
seed k's weights never depend on how many seeds there are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any

import numpy as np

from .activations import ACTIVATIONS, OUTPUT_ACTIVATIONS
from .datasets import Data, make_data
from .errors import GradscopeError
from .inits import INITS, LayerContext, sample_bias
from .losses import CLASS, DISTRIBUTION, LOSSES, MULTILABEL
from .scenario import Scenario

Array = np.ndarray


@dataclass
class Params:
    """W[l-1]: (S, n_{l-1}, n_l); b[l-1]: (S, n_l), or None for a network without biases."""

    W: list[Array]
    b: list[Array] | None


@dataclass
class Pass:
    """One forward + backward pass. Lists are indexed l-1 for layer l (a[0] is x, a[l] after layer l)."""

    x: Array                 # (B, n_0)
    target: Array            # as the loss sees it: labels (B,) or (B, k)
    z: list[Array]           # (S, B, n_l)
    a: list[Array]           # a[0] = x (B, n_0); a[l] = φ(z_l) (S, B, n_l); a[L] = head(z_L)
    delta: list[Array]       # ∂L/∂z_l (S, B, n_l)
    dW: list[Array]          # (S, n_{l-1}, n_l); None for layers whose dW was reduced and dropped (keep_dW)
    db: list[Array] | None   # (S, n_l)
    loss: Array              # (S,)
    dW_stats: list[Any] | None = None  # reduce_dW(l, dW_l, z, a, δ_l) of every layer, when asked for


def seed_streams(seed: int, seeds: int) -> tuple[np.random.SeedSequence, list[np.random.SeedSequence]]:
    """(data stream, one weight stream per ensemble member); member k's stream ignores `seeds`."""
    data_ss, weight_ss = np.random.SeedSequence(seed).spawn(2)
    return data_ss, weight_ss.spawn(seeds)


def float_dtype(scenario: Scenario) -> type:
    return np.float32 if scenario.dtype == "float32" else np.float64


def draw_data(scenario: Scenario, n: int | None = None) -> Data:
    """The scenario's data, drawn once from the data stream (shared by the whole ensemble)."""
    data_ss, _ = seed_streams(scenario.seed, 0)
    rng = np.random.default_rng(data_ss)
    return make_data(scenario.data.name, dict(scenario.data.params), rng, n or scenario.batch_size,
                     scenario.sizes[0], scenario.sizes[-1], scenario.center)


def loss_target(scenario: Scenario, data: Data) -> Array:
    """The target array in the form the scenario's loss needs."""
    kind = LOSSES.get(scenario.loss.name).target
    dtype = float_dtype(scenario)
    k = scenario.sizes[-1]
    if kind == CLASS:
        return data.labels.astype(np.int64)
    if kind == MULTILABEL:
        return data.multilabel.astype(dtype)
    if kind == DISTRIBUTION:
        return data.probs.astype(dtype)
    # regression-style losses: one-hot / 0-1 targets when the output is a probability
    if scenario.output_activation == "softmax":
        onehot = np.zeros((data.labels.shape[0], k), dtype=dtype)
        onehot[np.arange(data.labels.shape[0]), np.minimum(data.labels, k - 1)] = 1.0
        return onehot
    if scenario.output_activation == "sigmoid":
        return data.multilabel.astype(dtype)
    return data.values.astype(dtype)


def init_params(scenario: Scenario) -> Params:
    """Draw every layer's weights and biases for the whole ensemble, stacked over the seed axis.

    Each layer has its own weight stream and bias stream (layer_streams); a layer's S matrices are
    drawn from its stream one after another in seed order, so member k's values are the k-th block
    of a prefix-stable sequence and do not depend on how many seeds there are. Schemes that draw with
    rng.normal / rng.uniform get all S blocks in one call (_Stacked); others are drawn seed by seed.
    """
    init = INITS.get(scenario.init.name)
    L = scenario.n_layers
    ctxs = [LayerContext(scenario.layer_activation(l),
                         dict(scenario.activations[l - 1].params) if l <= scenario.depth else {})
            for l in range(1, L + 1)]
    dtype = float_dtype(scenario)
    S = scenario.seeds
    pairs = list(zip(scenario.sizes[:-1], scenario.sizes[1:], strict=True))
    W = [np.empty((S, fi, fo), dtype=dtype) for fi, fo in pairs]
    b = [np.empty((S, fo), dtype=dtype) for _, fo in pairs] if scenario.bias else None
    for l, ((fi, fo), (w_ss, b_ss)) in enumerate(zip(pairs, layer_streams(scenario.seed, L), strict=True)):
        W[l][...] = _draw_stacked(lambda rng, fi=fi, fo=fo, l=l: init.sample(rng, fi, fo, ctxs[l],
                                                                             **scenario.init.params),
                                  np.random.default_rng(w_ss), S, (fi, fo), stackable=init.name != "orthogonal")
        if b is not None:
            b[l][...] = _draw_stacked(lambda rng, fi=fi, fo=fo, l=l: sample_bias(
                scenario.bias_init.name, dict(scenario.bias_init.params), rng, fi, fo, ctxs[l]),
                np.random.default_rng(b_ss), S, (fo,))
    return Params(W, b)


def layer_streams(seed: int, n_layers: int) -> list[tuple[np.random.SeedSequence, np.random.SeedSequence]]:
    """(weight stream, bias stream) of every layer, children of the base seed's weight stream."""
    _, weight_ss = np.random.SeedSequence(seed).spawn(2)
    return [tuple(ss.spawn(2)) for ss in weight_ss.spawn(n_layers)]  # type: ignore[misc]


class _Stacked:
    """A Generator stand-in that draws S samples of every requested shape at once, seed-major.

    rng.normal(loc, scale, (S, *shape)) yields the same numbers as S successive
    rng.normal(loc, scale, shape) calls, so this is the seed-by-seed loop in one call.
    """

    def __init__(self, rng: np.random.Generator, seeds: int) -> None:
        self._rng, self._seeds = rng, seeds

    def _size(self, size: int | tuple[int, ...] | None) -> tuple[int, ...]:
        if size is None:
            return (self._seeds,)
        return (self._seeds, *((size,) if isinstance(size, int) else tuple(size)))

    def normal(self, loc: float = 0.0, scale: float = 1.0, size: int | tuple[int, ...] | None = None) -> Array:
        return self._rng.normal(loc, scale, self._size(size))

    def uniform(self, low: float = 0.0, high: float = 1.0, size: int | tuple[int, ...] | None = None) -> Array:
        return self._rng.uniform(low, high, self._size(size))

    def standard_normal(self, size: int | tuple[int, ...] | None = None) -> Array:
        return self._rng.standard_normal(self._size(size))


def _draw_stacked(sample: Any, rng: np.random.Generator, seeds: int, shape: tuple[int, ...],
                  stackable: bool = True) -> Array:
    """(seeds, *shape): `sample(rng)` for every seed in turn, in one call when the scheme allows it."""
    if stackable:
        out = np.asarray(sample(_Stacked(rng, seeds)))
        if out.shape == (seeds, *shape):
            return out
        if out.shape == shape:  # a scheme that draws nothing (zeros, constant)
            return np.broadcast_to(out, (seeds, *shape))
        raise AssertionError(f"init scheme returned shape {out.shape}, expected {(seeds, *shape)}")
    return np.stack([sample(rng) for _ in range(seeds)])


def forward(scenario: Scenario, params: Params, x: Array) -> tuple[list[Array], list[Array]]:
    """z_l = a_{l-1} @ W_l + b_l, a_l = φ_l(z_l); returns (z list, a list with a[0] = x)."""
    z_list: list[Array] = []
    a_list: list[Array] = [x]
    a = x
    for l in range(1, scenario.n_layers + 1):
        z = _shared_matmul(x, params.W[0]) if l == 1 else a @ params.W[l - 1]
        if params.b is not None:
            z += params.b[l - 1][:, None, :]
        if l <= scenario.depth:
            act = scenario.activations[l - 1]
            a = ACTIVATIONS.get(act.name).fn(z, **act.params)
        else:
            a = OUTPUT_ACTIVATIONS.get(scenario.output_activation).fn(z)
        z_list.append(z)
        a_list.append(a)
    return z_list, a_list


def _shared_matmul(x: Array, W: Array) -> Array:
    """x (B, d) shared by the ensemble times W (S, d, m) -> (S, B, m), as one GEMM instead of S small ones."""
    if x.ndim != 2:
        return x @ W
    S, d, m = W.shape
    flat = x @ np.ascontiguousarray(W.transpose(1, 0, 2)).reshape(d, S * m)  # (B, S·m)
    return np.ascontiguousarray(flat.reshape(x.shape[0], S, m).transpose(1, 0, 2))


def backward(scenario: Scenario, params: Params, z: list[Array], a: list[Array], delta_out: Array,
             reduce_dW: Callable[..., Any] | None = None, keep_dW: Container[int] | None = None,
             stats: list[Any] | None = None) -> tuple[list[Array], list[Array], list[Array] | None]:
    """Backprop δ_l = (δ_{l+1} W_{l+1}ᵀ) ⊙ φ'(z_l); dW_l = a_{l-1}ᵀ δ_l, db_l = Σ_batch δ_l.

    reduce_dW(l, dW_l, z, a, δ_l), when given, is appended to `stats` as soon as dW_l exists; with
    keep_dW (layer numbers), the other layers' dW are then dropped (None), so the pass never holds
    every weight gradient at once.
    """
    L = scenario.n_layers
    delta: list[Array] = [delta_out] * L
    dW: list[Array] = [delta_out] * L
    db: list[Array] | None = [delta_out] * L if params.b is not None else None
    d = delta_out
    for l in range(L, 0, -1):
        delta[l - 1] = d
        g = np.swapaxes(a[l - 1], -1, -2) @ d
        if reduce_dW is not None and stats is not None:
            stats.append(reduce_dW(l, g, z, a, d))
        dW[l - 1] = g if keep_dW is None or l in keep_dW else None  # type: ignore[call-overload]
        del g
        if db is not None:
            db[l - 1] = d.sum(axis=-2)
        if l > 1:
            act = scenario.activations[l - 2]
            fprime = ACTIVATIONS.get(act.name).grad(z[l - 2], a[l - 1], **act.params)
            d = d @ np.swapaxes(params.W[l - 1], -1, -2)
            d *= fprime
            del fprime
    if stats is not None:
        stats.reverse()
    return delta, dW, db


def loss_and_grad(scenario: Scenario, z_out: Array, target: Array) -> tuple[Array, Array]:
    """Loss per seed (S,) and ∂L/∂z_L (S, B, k)."""
    loss = LOSSES.get(scenario.loss.name)
    head = OUTPUT_ACTIVATIONS.get(scenario.output_activation)
    return loss.compute(z_out, target, head, **scenario.loss.params)


def run_pass(scenario: Scenario, params: Params, x: Array, target: Array,
             reduce_dW: Callable[..., Any] | None = None, keep_dW: Container[int] | None = None) -> Pass:
    """Forward, loss and backward for the whole ensemble. Overflow is data: never raises or warns.

    reduce_dW / keep_dW: see backward (statistics of each weight gradient as it is produced; which
    layers' full dW the Pass keeps, None for all).
    """
    stats: list[Any] | None = [] if reduce_dW is not None else None
    with np.errstate(all="ignore"):
        z, a = forward(scenario, params, x)
        loss, delta_out = loss_and_grad(scenario, z[-1], target)
        delta, dW, db = backward(scenario, params, z, a, delta_out.astype(z[-1].dtype, copy=False),
                                 reduce_dW, keep_dW, stats)
    return Pass(x=x, target=target, z=z, a=a, delta=delta, dW=dW, db=db, loss=loss, dW_stats=stats)


def estimate_bytes(scenario: Scenario, batch: int | None = None) -> int:
    """Peak bytes of one pass: z, a, δ and a temporary per layer; W, dW (and Adam's two moments)."""
    S = scenario.seeds
    B = batch or scenario.batch_size
    item = np.dtype(float_dtype(scenario)).itemsize
    units = sum(scenario.sizes[1:])
    weights = sum(fi * fo + fo for fi, fo in zip(scenario.sizes[:-1], scenario.sizes[1:], strict=True))
    copies = 3 + (3 if scenario.train else 0)
    return int(item * S * (4 * B * units + copies * weights) + data_bytes(scenario, B))


def data_bytes(scenario: Scenario, n: int) -> int:
    """Bytes the dataset generator holds for n samples: x twice, the target forms, a teacher's hidden layer."""
    d, k = scenario.sizes[0], scenario.sizes[-1]
    hidden = int(scenario.data.params.get("hidden", 0) or 0)
    return 8 * (2 * n * d + 5 * n * max(k, 2) + 2 * n * hidden + d * hidden + hidden * k)


def largest_gemm(scenario: Scenario, batch: int | None = None) -> int:
    """Multiply-adds of the largest single GEMM of a pass (what decides whether BLAS threads pay off).

    The first layer is one (B, n_0) @ (n_0, S·n_1) product; every other layer S products of B·n_{l-1}·n_l.
    """
    B = batch or scenario.batch_size
    sizes = scenario.sizes
    per_seed = max(B * fi * fo for fi, fo in zip(sizes[:-1], sizes[1:], strict=True))
    return max(per_seed, B * sizes[0] * sizes[1] * scenario.seeds)


def check_memory(scenario: Scenario, max_bytes: int, batch: int | None = None) -> None:
    """Refuse, before allocating, a scenario whose arrays would not fit in max_bytes."""
    need = estimate_bytes(scenario, batch)
    if need > max_bytes:
        raise GradscopeError(
            f"{scenario.source}: this scenario needs about {_human(need)} of arrays (seeds={scenario.seeds}, "
            f"batch={batch or scenario.batch_size}, layer sizes {list(scenario.sizes)}), over the "
            f"{_human(max_bytes)} limit. Use fewer seeds, a smaller batch or narrower layers, "
            "or raise the limit with --max-memory.")


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


MAX_MEMORY_LIMIT = 2**50  # 1 PiB: a --max-memory above this is a typo, not a machine


def default_max_memory() -> int:
    """Half of the memory available now (MemAvailable in /proc/meminfo, else free physical pages), or 2 GiB."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // 2
    except (OSError, ValueError, IndexError):
        pass
    try:
        import os

        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (AttributeError, ValueError, OSError):
        return 2 * 2**30


def parse_size(text: str) -> int:
    """'2GiB', '512M', '1e9' -> bytes; 'auto' -> default_max_memory(); refuses non-finite, non-positive and
    absurd sizes (over 1 PiB)."""
    from .errors import shown

    t = text.strip().lower().replace(" ", "")
    if t == "auto":
        return default_max_memory()
    units = {"tib": 2**40, "gib": 2**30, "mib": 2**20, "kib": 2**10, "tb": 10**12, "gb": 10**9,
             "mb": 10**6, "kb": 10**3, "t": 2**40, "g": 2**30, "m": 2**20, "k": 2**10, "b": 1}
    suffix = next((u for u in units if t.endswith(u)), "")
    number, mult = (t[: -len(suffix)], units[suffix]) if suffix else (t, 1)
    try:
        if len(number) > 40:
            raise ValueError(number)
        value = float(number) * mult
    except (ValueError, OverflowError):
        raise GradscopeError(f"--max-memory {shown(text)}: expected a size such as 2GiB, 512MiB, 1e9 or auto") from None
    if not math.isfinite(value) or value < 1:
        raise GradscopeError(f"--max-memory {shown(text)}: must be a positive, finite size")
    if value > MAX_MEMORY_LIMIT:
        raise GradscopeError(f"--max-memory {shown(text)}: over the largest accepted limit, 1 PiB")
    return int(value)
