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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .activations import ACTIVATIONS, OUTPUT_ACTIVATIONS
from .datasets import Data, make_data
from .errors import GradscopeError
from .inits import INITS, LayerContext, sample_bias
from .layers import Dense, Dropout, Item, Norm, NormCache, Residual, dropout_mask, norm_forward, norm_vjp, walk
from .losses import CLASS, DISTRIBUTION, LOSSES, MULTILABEL
from .parallel import map_seeds
from .scenario import Scenario

Array = np.ndarray


@dataclass
class Params:
    """W[l-1]: (S, n_{l-1}, n_l); b[l-1]: (S, n_l), or None for a network without biases."""

    W: list[Array]
    b: list[Array] | None
    extra: dict[str, Array] = field(default_factory=dict)  # gamma{r}, beta{r} of norm rows, W{r} of projections

    def tensors(self) -> list[Array]:
        """Every parameter array: W, b, then the norm and projection parameters (keys in extra_keys order)."""
        return self.W + (self.b or []) + [self.extra[k] for k in self.extra]

    def copy(self) -> Params:
        return Params([W.copy() for W in self.W], [b.copy() for b in self.b] if self.b is not None else None,
                      {k: v.copy() for k, v in self.extra.items()})


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
    act_grad_stats: dict[int, list[tuple[int, Any]]] | None = None  # layer -> [(range start, reduce_act_grad(..))]
    trace: Trace | None = None          # inputs h, activation inputs u, norm caches, dropout masks, block inputs
    extra: dict[str, Array] = field(default_factory=dict)   # dgamma{r}, dbeta{r}, dW{r} (projection rows)
    blocks: list[BlockGrad] = field(default_factory=list)   # residual stream at each block input
    norm_delta: dict[int, Array] = field(default_factory=dict)  # row -> ‖∂L/∂(output)‖ (S,) of norm/projection rows

    def grads(self, params: Params) -> list[Array]:
        """Every parameter gradient, in params.tensors() order."""
        return self.dW + (self.db or []) + [self.extra["d" + k] for k in params.extra]


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
    L = scenario.n_layers
    dtype = float_dtype(scenario)
    S = scenario.seeds
    dense = [d for d in walk(scenario.items) if isinstance(d, Dense) and not d.projection]
    # each layer's arrays are the drawn ones themselves (converted only to another dtype, or copied out of a
    # read-only broadcast): no second array of a layer's size is made and freed, which left holes in the heap
    W: list[Array] = [np.empty(0)] * len(dense)
    b: list[Array] | None = [np.empty(0)] * len(dense) if scenario.bias else None

    def draw(l: int, d: Dense, w_ss: np.random.SeedSequence, b_ss: np.random.SeedSequence) -> None:
        W[l] = np.require(_draw_weights(scenario, d, np.random.default_rng(w_ss), S), dtype, ["C", "W", "O"])
        if b is not None:
            ctx = LayerContext(d.activation, dict(d.act_params))
            b[l] = np.require(_draw_stacked(lambda rng, d=d, ctx=ctx: sample_bias(
                scenario.bias_init.name, dict(scenario.bias_init.params), rng, d.fan_in, d.fan_out, ctx),
                np.random.default_rng(b_ss), S, (d.fan_out,)), dtype, ["C", "W", "O"])

    jobs = [(l, d, w_ss, b_ss) for l, (d, (w_ss, b_ss)) in enumerate(zip(dense, layer_streams(scenario.seed, L),
                                                                          strict=True))]
    _run_draws(draw, jobs, S * sum(d.fan_in * d.fan_out for d in dense))
    extra: dict[str, Array] = {}
    for it in walk(scenario.items):
        if isinstance(it, Norm):
            extra[f"gamma{it.row}"] = np.ones((S, it.n), dtype=dtype)
            if it.entry.has_beta:
                extra[f"beta{it.row}"] = np.zeros((S, it.n), dtype=dtype)
        elif isinstance(it, Residual) and it.projection is not None:
            p = it.projection
            rng = np.random.default_rng(np.random.SeedSequence(scenario.seed, spawn_key=(3, it.block)))
            extra[f"W{p.row}"] = _draw_weights(scenario, p, rng, S).astype(dtype, copy=False)
    return Params(W, b, extra)


# Below this many weights drawing takes ~1 ms and a second lane would cost about what it saves. (With
# parallel's own pool, lanes are cheap: at 1 << 20 the default scenario's 0.5M weights were drawn in one
# thread, 5 ms of a 37 ms run; from 1 << 17 the run takes 34 ms, the same weights.)
PARALLEL_DRAW_VALUES = 1 << 17


def _run_draws(draw: Callable[..., None], jobs: list[tuple[Any, ...]], values: int) -> None:
    """draw(*job) for every layer's job. Each layer draws from its own stream into its own array, so the
    order does not matter: from PARALLEL_DRAW_VALUES values and with more than one core free (cores.free_cores),
    layers are drawn in threads (NumPy's generators release the GIL while they fill an array) — the same
    numbers, about half the time on two cores. GRADSCOPE_THREADS=N caps the threads, as it does the pass's."""
    from .cores import free_cores
    from .parallel import threads_override

    forced = threads_override()
    workers = min(free_cores() if forced is None else forced, len(jobs)) if values >= PARALLEL_DRAW_VALUES else 1
    if workers <= 1:
        for job in jobs:
            draw(*job)
        return
    from .parallel import run_lanes

    pending = iter(jobs)  # shared: each lane takes the next layer when it is free (next() holds the GIL)

    def lane() -> None:
        for job in pending:
            draw(*job)

    run_lanes([lane] * workers)


def _draw_weights(scenario: Scenario, d: Dense, rng: np.random.Generator, S: int) -> Array:
    """(S, fan_in, fan_out) weights of one dense layer from its stream, with the layer's own init if it has one."""
    comp = d.init if d.init is not None else scenario.init
    init = INITS.get(comp.name)
    ctx = LayerContext(d.activation, dict(d.act_params))
    return _draw_stacked(lambda r: init.sample(r, d.fan_in, d.fan_out, ctx, **comp.params), rng, S,
                         (d.fan_in, d.fan_out), stackable=init.name != "orthogonal")


def dense_rows(scenario: Scenario) -> list[int]:
    """The report row of every main-path dense layer (W list order); 1..L for a plain MLP."""
    return [d.row for d in walk(scenario.items) if isinstance(d, Dense) and not d.projection]


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


@dataclass
class Trace:
    """What the forward pass keeps for backward and for the statistics.

    Lists are indexed l-1 for main-path dense layer l: h (its input), z (h @ W + b), u (what its activation
    sees: z, or norm(z) with a post norm), a (a[0] = x, a[l] = φ(u_l), a[L] = head(z_L)). norms: row ->
    NormCache; masks: dropout index -> (S, B, n) scaled keep mask; blocks: block -> (input, projection input
    cache); proj_z: projection row -> its output."""

    h: list[Array]
    z: list[Array]
    u: list[Array]
    a: list[Array]
    norms: dict[int, NormCache]
    masks: dict[int, Array]
    blocks: dict[int, Array]


def _seeded(h: Array, S: int) -> Array:
    """The shared (B, n) input as a (S, B, n) view, for layers that act per seed."""
    return np.broadcast_to(h, (S, *h.shape)) if h.ndim == 2 else h


def forward(scenario: Scenario, params: Params, x: Array, *, step: int = 0,
            dropout: bool = True) -> tuple[list[Array], list[Array]]:
    """z_l = a_{l-1} @ W_l + b_l, a_l = φ_l(z_l); returns (z list, a list with a[0] = x)."""
    tr = forward_trace(scenario, params, x, step=step, dropout=dropout)
    return tr.z, tr.a


def forward_trace(scenario: Scenario, params: Params, x: Array, *, step: int = 0,
                  dropout: bool = True, head: bool = True) -> Trace:
    """Walk the network's items forward over the whole ensemble (dropout masks of training step `step`).

    head=False leaves the output head's ŷ = a[L] out (None): the loss computes from the logits z_L, and a
    training step reads nothing else of it."""
    L = scenario.n_layers
    tr = Trace([x] * L, [x] * L, [x] * L, [x] * (L + 1), {}, {}, {})
    S = params.W[0].shape[0]

    def dense(d: Dense, h: Array) -> Array:
        if d.projection:
            return linear(h, params.extra[f"W{d.row}"], None)[0]
        l = d.index
        bias = params.b[l - 1] if params.b is not None else None
        if d.norm is None and not d.output:
            z, a = linear(h, params.W[l - 1], bias, d.activation, dict(d.act_params))
            tr.h[l - 1], tr.z[l - 1], tr.u[l - 1], tr.a[l] = h, z, z, a
            return a
        z, _ = linear(h, params.W[l - 1], bias)
        u = z
        if d.norm is not None:
            c = norm_forward(d.norm, params.extra[f"gamma{d.norm.row}"], params.extra.get(f"beta{d.norm.row}"), z)
            tr.norms[d.norm.row] = c
            u = c.y
        if d.output:
            a = OUTPUT_ACTIVATIONS.get(d.activation).fn(z) if head else None  # type: ignore[assignment]
        else:
            a = ACTIVATIONS.get(d.activation).fn(u, **dict(d.act_params))
        tr.h[l - 1], tr.z[l - 1], tr.u[l - 1], tr.a[l] = h, z, u, a
        return a

    def walk_fwd(items: tuple[Item, ...], h: Array) -> Array:
        for it in items:
            if isinstance(it, Dense):
                h = dense(it, h)
            elif isinstance(it, Norm):
                c = norm_forward(it, params.extra[f"gamma{it.row}"], params.extra.get(f"beta{it.row}"),
                                 _seeded(h, S))
                tr.norms[it.row] = c
                h = c.y
            elif isinstance(it, Dropout):
                if dropout and it.p > 0:
                    hs = _seeded(h, S)
                    m = dropout_mask(scenario.seed, it.index, step, hs.shape, it.p, hs.dtype.type)
                    tr.masks[it.index] = m
                    h = hs * m
            else:
                x_in = _seeded(h, S)
                tr.blocks[it.block] = x_in
                branch = walk_fwd(it.layers, x_in)
                skip = dense(it.projection, x_in) if it.projection is not None else x_in
                h = skip + it.alpha * branch
        return h

    walk_fwd(scenario.items, x)
    return tr


# A dense layer's multiply (and its activation, or its backward GEMMs) is split over the seed ranges from
# this much work: the entries it reads and writes, or its multiply-adds / 16, whichever is larger. Measured
# over 100-step training runs of 4 tanh layers, one thread against two: 65k or 131k entries of 2M
# multiply-adds or fewer ran 4-51% slower in two (the hand-offs cost more than half the work), 262k entries
# or 4M multiply-adds 11-25% faster.
LINEAR_SPLIT = 1 << 18


def _linear_work(S: int, B: int, n_in: int, n_out: int) -> int:
    return max(S * B * (n_in + n_out), S * B * n_in * n_out // 16)


def linear(h: Array, W: Array, bias: Array | None, activation: str | None = None,
           act_params: dict[str, Any] | None = None) -> tuple[Array, Array]:
    """z = h @ W + b and a = φ(z) (a is z itself without an activation, or for the identity).

    h is (S, B, n) or the ensemble's shared (B, n) input; W (S, n, m). Each seed range does its own
    multiply, bias and activation in one go (parallel.map_seeds), so with more than one core free the
    small per-seed GEMMs of a large ensemble and the activation run on every core (BLAS itself is then
    held to one thread: api.run)."""
    S, _, m = W.shape
    z = np.empty((S, h.shape[-2], m), dtype=np.result_type(h, W))
    act = ACTIVATIONS.get(activation) if activation is not None else None
    a = z if act is None or act.name == "identity" else np.empty_like(z)
    kw = act_params or {}

    def work(sl: slice) -> None:
        zs = z[sl]
        np.matmul(h if h.ndim == 2 else h[sl], W[sl], out=zs)  # a shared (B, n) input broadcasts over the seeds
        if bias is not None:
            zs += bias[sl, None, :]
        if a is not z:
            assert act is not None
            if act.into is not None:
                act.into(zs, a[sl], **kw)
            else:
                a[sl] = act.fn(zs, **kw)

    map_seeds(work, S, _linear_work(S, h.shape[-2], W.shape[-2], m), LINEAR_SPLIT)
    return z, a


def linear_back(h: Array, g: Array, W: Array, need_dx: bool, with_db: bool,
                act_grad: Callable[[slice], Array] | None = None) -> tuple[Array, Array | None, Array | None]:
    """(dW, db, dx) of z = h @ W + b given g = ∂L/∂z: dW = hᵀg, db = Σ_batch g, dx = g Wᵀ.

    act_grad(sl), when given, is φ'(z) of the seed range: g is first multiplied by it in place (the δ of a
    hidden layer). Per seed range, like linear()."""
    S = W.shape[0]
    dW = np.empty(W.shape, dtype=np.result_type(h, g))
    db = np.empty((S, g.shape[-1]), dtype=g.dtype) if with_db else None
    dx = np.empty((S, g.shape[-2], W.shape[-2]), dtype=np.result_type(g, W)) if need_dx else None

    def work(sl: slice) -> None:
        gs = g[sl]
        if act_grad is not None:
            gs *= act_grad(sl)
        np.matmul(np.swapaxes(h, -1, -2) if h.ndim == 2 else np.swapaxes(h[sl], -1, -2), gs, out=dW[sl])
        if db is not None:
            np.sum(gs, axis=-2, out=db[sl])
        if dx is not None:
            np.matmul(gs, np.swapaxes(W[sl], -1, -2), out=dx[sl])

    map_seeds(work, S, _linear_work(S, g.shape[-2], W.shape[-2], g.shape[-1]), LINEAR_SPLIT)
    return dW, db, dx


@dataclass
class BlockGrad:
    """Per-seed norms (S,) at a residual block's input: ‖∂L/∂x‖, its skip-path part and its branch part."""

    block: int
    delta_norm: Array
    skip_norm: Array
    branch_norm: Array


def backward(scenario: Scenario, params: Params, z: list[Array], a: list[Array], delta_out: Array,
             reduce_dW: Callable[..., Any] | None = None, keep_dW: Container[int] | None = None,
             stats: list[Any] | None = None, trace: Trace | None = None,
             extra: dict[str, Array] | None = None, blocks: list[BlockGrad] | None = None,
             norm_delta: dict[int, Array] | None = None,
             reduce_act_grad: Callable[[int, Array], Any] | None = None,
             act_grad_stats: dict[int, list[tuple[int, Any]]] | None = None,
             ) -> tuple[list[Array], list[Array], list[Array] | None]:
    """Backprop δ_l = (δ_{l+1} W_{l+1}ᵀ) ⊙ φ'(z_l); dW_l = a_{l-1}ᵀ δ_l, db_l = Σ_batch δ_l.

    Walks the network's items in reverse (each kind's vjp); `extra` receives the gradients of norm γ/β
    and projection weights (dgamma{row}, dbeta{row}, dW{row}); `blocks` the residual-stream norms;
    `norm_delta` ‖∂L/∂y‖ per seed at each norm row's output (and each projection row's).
    reduce_dW(l, dW_l, z, a, δ_l, scratch=...), when given, is appended to `stats` as soon as dW_l exists
    (scratch=True: dW_l is dropped after, the reduction may overwrite it); with
    keep_dW (layer numbers), the other layers' dW and δ (but the output layer's δ) are then dropped (None),
    so the pass never holds every weight gradient or every δ at once.
    reduce_act_grad(l, φ'_l of a seed range), when given, is kept in act_grad_stats[l] as (range start, result)
    while backward has φ'(z_l) in hand, so the statistics need not compute it again.
    """
    L = scenario.n_layers
    tr = trace if trace is not None else Trace(a[:-1], z, z, a, {}, {}, {})
    delta: list[Array] = [delta_out] * L
    dW: list[Array] = [delta_out] * L
    db: list[Array] | None = [delta_out] * L if params.b is not None else None
    extra = extra if extra is not None else {}
    S = params.W[0].shape[0]

    def norm_back(n: Norm, g: Array) -> Array:
        if norm_delta is not None:
            norm_delta[n.row] = _seed_norm(g)
        dx, dgamma, dbeta = norm_vjp(n, params.extra[f"gamma{n.row}"], tr.norms[n.row], g)
        extra[f"dgamma{n.row}"] = dgamma
        if dbeta is not None:
            extra[f"dbeta{n.row}"] = dbeta
        return dx

    def skip_back(block: Residual, g: Array) -> Array:
        """The skip path's vjp: g itself, or through the block's projection P (whose dW it records)."""
        d = block.projection
        if d is None:
            return g
        if norm_delta is not None:
            norm_delta[d.row] = _seed_norm(g)
        dP, _, dx = linear_back(tr.blocks[block.block], g, params.extra[f"W{d.row}"], True, False)
        extra[f"dW{d.row}"] = dP
        return dx  # type: ignore[return-value]

    def dense_back(d: Dense, g: Array, need_dx: bool) -> Array | None:
        l = d.index
        grad_of: Callable[[slice], Array] | None = None
        if not d.output:
            act = ACTIVATIONS.get(d.activation)
            kw = dict(d.act_params)
            u, a = tr.u[l - 1], tr.a[l]

            def act_grad(sl: slice) -> Array:
                fprime = act.grad(u[sl], a[sl], **kw)
                if reduce_act_grad is not None and act_grad_stats is not None:
                    act_grad_stats.setdefault(l, []).append((sl.start or 0, reduce_act_grad(l, fprime)))
                return fprime

            if d.norm is None:
                grad_of = act_grad  # applied per seed range inside linear_back
            else:  # φ' first, then the post norm's vjp, then the linear map's
                def times_act_grad(sl: slice) -> None:
                    g[sl] *= act_grad(sl)

                map_seeds(times_act_grad, S, g.size)
                g = norm_back(d.norm, g)
        w, gb, dx = linear_back(tr.h[l - 1], g, params.W[l - 1], need_dx, db is not None, grad_of)
        keep = keep_dW is None or l in keep_dW
        delta[l - 1] = g
        if reduce_dW is not None and stats is not None:
            stats.append(reduce_dW(l, w, tr.z, tr.a, g, scratch=not keep))  # a dropped dW may be overwritten
            if not keep and l < L:  # reduced (its norm is in the statistics): not held to the end of the pass
                delta[l - 1] = None  # type: ignore[call-overload]
        dW[l - 1] = w if keep else None  # type: ignore[call-overload]
        del w
        if db is not None:
            db[l - 1] = gb
        return dx

    def walk_back(items: tuple[Item, ...], g: Array, need_dx: bool) -> Array | None:
        for i in range(len(items) - 1, -1, -1):
            it = items[i]
            need = need_dx or i > 0
            if isinstance(it, Dense):
                g = dense_back(it, g, need)  # type: ignore[assignment]
            elif isinstance(it, Norm):
                g = norm_back(it, g)
            elif isinstance(it, Dropout):
                if it.index in tr.masks:
                    g = g * tr.masks[it.index]
            else:
                gs = skip_back(it, g)
                gb = walk_back(it.layers, g * it.alpha, True)
                g = gs + gb
                if blocks is not None:
                    blocks.append(BlockGrad(it.block, _seed_norm(g), _seed_norm(gs, S), _seed_norm(gb)))
            if g is None:
                break
        return g

    walk_back(scenario.items, delta_out, False)
    if stats is not None:
        stats.reverse()
    if blocks is not None:
        blocks.reverse()
    return delta, dW, db


def _seed_norm(g: Array, S: int | None = None) -> Array:
    """‖g‖ per seed, (S,), in float64."""
    g64 = g.astype(np.float64, copy=False)
    n = np.sqrt(np.einsum("...ij,...ij->...", g64, g64))
    return np.broadcast_to(n, (S,)).copy() if S is not None and n.ndim == 0 else n


def loss_and_grad(scenario: Scenario, z_out: Array, target: Array) -> tuple[Array, Array]:
    """Loss per seed (S,) and ∂L/∂z_L (S, B, k); seed ranges in threads (each seed's loss is its own)."""
    loss = LOSSES.get(scenario.loss.name)
    head = OUTPUT_ACTIVATIONS.get(scenario.output_activation)
    # split by the number of logits: a loss makes a few dozen small passes over its arrays (one per class column
    # for the softmax's max and sum), and below ~65k logits (PARALLEL_VALUES) two ranges wait on each other for
    # the interpreter between them and gain nothing (cross-entropy on (16, 256, 10): 0.73 ms in one thread,
    # 0.70 in two; (32, 64, 10): 0.38 and 0.44); above, they halve the time ((512, 64, 10): 5.8 and 2.9 ms)
    parts = map_seeds(lambda sl: loss.compute(z_out[sl], target, head, **scenario.loss.params), z_out.shape[0],
                      z_out.size)
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([np.asarray(lp[0]) for lp in parts]), np.concatenate([lp[1] for lp in parts])


def run_pass(scenario: Scenario, params: Params, x: Array, target: Array,
             reduce_dW: Callable[..., Any] | None = None, keep_dW: Container[int] | None = None, *,
             step: int = 0, dropout: bool = True, head: bool = True,
             reduce_act_grad: Callable[[int, Array], Any] | None = None) -> Pass:
    """Forward, loss and backward for the whole ensemble. Overflow is data: never raises or warns.

    reduce_dW / keep_dW / reduce_act_grad: see backward (statistics of each weight gradient and each φ' as
    backward produces them; which layers' full dW the Pass keeps, None for all). step: the training step
    whose dropout masks are drawn; dropout=False runs without dropout (`--eval`); head=False: see
    forward_trace (training steps).
    """
    stats: list[Any] | None = [] if reduce_dW is not None else None
    extra: dict[str, Array] = {}
    blocks: list[BlockGrad] = []
    norm_delta: dict[int, Array] = {}
    act_stats: dict[int, list[tuple[int, Any]]] | None = {} if reduce_act_grad is not None else None
    with np.errstate(all="ignore"):
        tr = forward_trace(scenario, params, x, step=step, dropout=dropout, head=head)
        loss, delta_out = loss_and_grad(scenario, tr.z[-1], target)
        delta, dW, db = backward(scenario, params, tr.z, tr.a, delta_out.astype(tr.z[-1].dtype, copy=False),
                                 reduce_dW, keep_dW, stats, trace=tr, extra=extra, blocks=blocks,
                                 norm_delta=norm_delta, reduce_act_grad=reduce_act_grad, act_grad_stats=act_stats)
    return Pass(x=x, target=target, z=tr.z, a=tr.a, delta=delta, dW=dW, db=db, loss=loss, dW_stats=stats,
                act_grad_stats=act_stats, trace=tr, extra=extra, blocks=blocks, norm_delta=norm_delta)


def estimate_bytes(scenario: Scenario, batch: int | None = None) -> int:
    """Peak bytes of one pass: z, a, δ and a temporary per layer; W, dW (and Adam's two moments)."""
    S = scenario.seeds
    B = batch or scenario.batch_size
    item = np.dtype(float_dtype(scenario)).itemsize
    units = sum(scenario.sizes[1:])
    weights = sum(fi * fo + fo for fi, fo in zip(scenario.sizes[:-1], scenario.sizes[1:], strict=True))
    copies = 3 + (3 if scenario.train else 0)
    act, par = (0, 0) if scenario.plain else structured_units(scenario)
    return int(item * S * (4 * B * units + copies * weights + B * act + copies * par) + data_bytes(scenario, B))


def structured_units(scenario: Scenario) -> tuple[int, int]:
    """(activation units per sample, parameters) the items beyond the main-path dense layers add to a pass:
    a norm keeps x̂ and y and a temporary (3n), γ/β (2n); a dropout layer its mask and output (2n); a residual
    block its sum (n_out); a skip projection its output and a temporary (2·fan_out) and its weights. Measured
    peaks (tests/test_memory.py) stay below the estimate."""
    act = par = 0
    for it in walk(scenario.items):
        if isinstance(it, Norm):
            act, par = act + 3 * it.n, par + 2 * it.n
        elif isinstance(it, Dropout):
            act += 2 * it.n
        elif isinstance(it, Residual):
            act += it.n_out
        elif isinstance(it, Dense) and it.projection:
            act, par = act + 2 * it.fan_out, par + it.fan_in * it.fan_out
    return act, par


def data_bytes(scenario: Scenario, n: int) -> int:
    """Bytes the dataset generator holds for n samples: x twice, the target forms, a teacher's hidden layer."""
    d, k = scenario.sizes[0], scenario.sizes[-1]
    hidden = int(scenario.data.params.get("hidden", 0) or 0)
    return 8 * (2 * n * d + 5 * n * max(k, 2) + 2 * n * hidden + d * hidden + hidden * k)


def largest_gemm(scenario: Scenario, batch: int | None = None) -> int:
    """Multiply-adds of the largest single GEMM of a pass (what decides whether BLAS threads pay off).

    Every layer is S products of B·n_{l-1}·n_l (the first layer's shared input broadcasts over the seeds).
    """
    B = batch or scenario.batch_size
    sizes = scenario.sizes
    return max(B * fi * fo for fi, fo in zip(sizes[:-1], sizes[1:], strict=True))


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
