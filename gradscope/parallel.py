"""Threads: the ensemble's seed ranges worked on at once, and BLAS's own threads.

A pass is S independent networks. Cut the seed axis into contiguous ranges, one per free core, and each
range does its own layer in one go — its per-seed GEMMs (BLAS held to one thread), bias, activation, φ',
the statistics of its seeds and its share of the |∂L/∂W| quantile sample. NumPy releases the GIL inside
matmul, ufuncs, reductions and sorts, so the ranges run on every free core; BLAS's own threading splits
one GEMM at a time, and leaves the elementwise work between the GEMMs on one core (half of a run on two).

Each seed range computes exactly what the whole array would give for its seeds, bit for bit: elementwise
operations are elementwise, the GEMMs are the same per-seed BLAS calls, and a reduction over axes (1, 2)
of seed k reads the same memory in the same order whether it is part of a slice or of the whole
(tests/test_parallel.py).

How many threads a run uses is chosen once, before its first pass (api.run_threads), from the cores free
at that moment (cores.free_cores): a core another process is busy on is not fought for, and the BLAS
threads that spin for a while after a multiply are never mistaken for a busy machine. An ensemble that
does not split (one seed, or a few that split unevenly) leaves its GEMMs to BLAS's threads instead
(blas_threads). Outside `using`, everything runs in the calling thread.
"""

from __future__ import annotations

import _thread
import contextlib
import contextvars
import functools
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from .cores import free_cores, usable_cores

T = TypeVar("T")

# A GEMM of fewer multiply-adds than this runs on one thread: splitting ~0.5 ms of work costs more in
# hand-offs than it saves, and a second thread that has to wait for a busy core stalls every call.
PARALLEL_GEMM_MACS = 1 << 22
THREADS_ENV = "GRADSCOPE_THREADS"
_controller: Any = None  # threadpoolctl's controller, made on first use (limit_blas)

# Arrays of fewer entries than this are worked on in one thread: handing ~0.1 ms of work to another
# thread costs about as much as it saves.
PARALLEL_VALUES = 1 << 16

_workers: contextvars.ContextVar[int] = contextvars.ContextVar("gradscope_workers", default=1)
_pool: _Pool | None = None
_in_pool = threading.local()  # .flag is True in the pool's own threads
_lock = threading.Lock()


def _forget_pool() -> None:
    """In a forked child the parent's pool threads do not exist: start a new pool when one is needed."""
    global _pool, _lock
    _pool, _lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def workers_for_run(seeds: int, largest_values: int, env: dict[str, str] | None = None) -> int:
    """Seed-range threads for a run of `seeds` seeds whose largest per-layer array has this many entries.

    The free cores (or GRADSCOPE_THREADS), when the arrays are large enough and the seeds split evenly
    enough over them (a remainder range is accepted when every range has at least 8 seeds); otherwise 1,
    and the run's multiplies are left to BLAS's own threads (blas_threads)."""
    forced = threads_override(env)
    if largest_values < PARALLEL_VALUES:
        return 1
    n = min(forced if forced is not None else free_cores(), seeds)
    while n > 1 and seeds % n and seeds < 8 * n:
        n -= 1
    return n


@contextlib.contextmanager
def using(workers: int) -> Iterator[None]:
    """Split elementwise work over `workers` threads inside the block (this thread and its context only)."""
    token = _workers.set(max(1, int(workers)))
    try:
        yield
    finally:
        _workers.reset(token)


def workers(values: int, threshold: int | None = None) -> int:
    """Threads for one array operation of this many entries (split from `threshold` entries, by default
    PARALLEL_VALUES), under the current `using`."""
    return _workers.get() if values >= (PARALLEL_VALUES if threshold is None else threshold) else 1


def seed_slices(S: int, parts: int) -> list[slice]:
    """range(S) cut into min(parts, S) contiguous, near-equal slices (the first ones one longer)."""
    parts = max(1, min(parts, S))
    q, r = divmod(S, parts)
    out, start = [], 0
    for i in range(parts):
        stop = start + q + (1 if i < r else 0)
        out.append(slice(start, stop))
        start = stop
    return out


class _Task(Generic[T]):
    """One call handed to the pool: its result or exception, and a lock held until it has finished (a
    threading.Event would build a Condition per task: ~8 µs, ~1% of a 100-step training run)."""

    __slots__ = ("_call", "_finished", "_error", "_result")

    def __init__(self, call: Callable[[], T]) -> None:
        self._call = call
        self._finished = _thread.allocate_lock()
        self._finished.acquire()  # released by run(): wait() blocks until then
        self._result: T | None = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            self._result = self._call()
        except BaseException as exc:  # handed to the waiting thread, which raises it
            self._error = exc
        finally:
            self._finished.release()

    def wait(self) -> None:
        with self._finished:  # acquired once run() has released it, and released again for the next waiter
            pass

    def result(self) -> T:
        self.wait()
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]


class _Pool:
    """Daemon threads taking calls from one queue: what map_seeds needs of a thread pool, without
    concurrent.futures (which imports logging: ~5 ms of every multi-threaded run's start-up). Callers always
    wait for what they submit, so a daemon thread never holds unfinished work at the exit."""

    def __init__(self, threads: int) -> None:
        import queue

        self._queue: queue.SimpleQueue[_Task[Any]] = queue.SimpleQueue()
        for i in range(threads):
            threading.Thread(target=self._work, name=f"gradscope-{i}", daemon=True).start()

    def _work(self) -> None:
        _in_pool.flag = True
        while True:
            self._queue.get().run()

    def submit(self, fn: Callable[..., T], *args: Any) -> _Task[T]:
        task: _Task[T] = _Task(lambda: fn(*args))
        self._queue.put(task)
        return task


def _executor() -> _Pool:
    """The process's pool: one thread per usable core but this one, created once (never replaced while a
    run in another thread may be submitting to it)."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = _Pool(max(1, usable_cores() - 1))
        return _pool


def _at_once(calls: list[Callable[[], T]]) -> list[T]:
    """[call() for call in calls], run at once: the first in this thread, the others in the pool. Every call
    has finished before this returns or raises (the first call's exception first, else the next one's).
    From a pool thread the calls run one after another there: it would otherwise wait on calls queued
    behind itself."""
    if getattr(_in_pool, "flag", False):
        return [call() for call in calls]
    tasks = [_executor().submit(contextvars.copy_context().run, call) for call in calls[1:]]
    try:
        first = calls[0]()
    finally:
        for t in tasks:
            t.wait()
    return [first] + [t.result() for t in tasks]


def run_lanes(lanes: list[Callable[[], None]]) -> None:
    """Call every lane at once (_at_once): returns when all have finished, raising the first lane's
    exception, or else another's."""
    _at_once(lanes)


def _alone(fn: Callable[[slice], T], sl: slice) -> T:
    """fn(sl) with further splitting switched off (a range never waits on the pool it runs in)."""
    token = _workers.set(1)
    try:
        return fn(sl)
    finally:
        _workers.reset(token)


def map_seeds(fn: Callable[[slice], T], S: int, values: int, threshold: int | None = None) -> list[T]:
    """[fn(slice) for each seed range], the ranges run at once when `values` (the entries the work touches
    per call of fn(slice(0, S))) is large enough and `using` allows more than one thread.

    The first range runs in this thread, the others in the pool; every range has finished before this
    returns (also when one raises: the others may be writing into arrays the caller owns). Each range runs
    in a copy of this thread's context, so np.errstate applies inside it too."""
    slices = seed_slices(S, workers(values, threshold))
    if len(slices) == 1:
        return [fn(slices[0])]
    return _at_once([functools.partial(_alone, fn, sl) for sl in slices])


def threads_override(env: dict[str, str] | None = None) -> int | None:
    """GRADSCOPE_THREADS=N (a positive integer): the threads a run may use, or None when it is not set."""
    text = (os.environ if env is None else env).get(THREADS_ENV, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        from .errors import GradscopeError

        raise GradscopeError(f"{THREADS_ENV}={text!r}: expected a positive number of threads")
    return value


def blas_threads(largest_gemm_macs: int, env: dict[str, str] | None = None) -> int:
    """BLAS threads for a run whose largest single matrix multiply has this many multiply-adds.

    GRADSCOPE_THREADS=N overrides the choice; otherwise one thread for small GEMMs and the free cores
    (see free_cores) for large ones.
    """
    forced = threads_override(env)
    if forced is not None:
        return forced
    if largest_gemm_macs < PARALLEL_GEMM_MACS:
        return 1
    return free_cores()


@contextlib.contextmanager
def limit_blas(threads: int) -> Iterator[None]:
    """Run the block with `threads` BLAS threads (threadpoolctl), restoring the previous setting after."""
    global _controller
    from threadpoolctl import ThreadpoolController

    if _controller is None:
        _controller = ThreadpoolController()
    with _controller.limit(limits=threads, user_api="blas"):
        yield
