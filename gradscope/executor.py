"""Run independent tasks in worker processes, results in task order (used by `check`; reusable by `sweep`).

Workers are started with the 'spawn' context, so each is a fresh interpreter, and with
OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS = 1 in their environment *before* they
import numpy (and GRADSCOPE_THREADS = 1, so no run raises it again): one BLAS thread per worker, one
worker per free core, no oversubscription. `jobs=1` (or a single task) runs in this process, with no
pool at all.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

# GRADSCOPE_THREADS=1 keeps gradscope's own per-run choice (parallel.blas_threads) at one thread too
BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "GRADSCOPE_THREADS")


def default_jobs(n_tasks: int) -> int:
    """One worker per free core (runtime.free_cores: usable cores not running other threads), never more
    than there are tasks."""
    from .cores import free_cores

    return max(1, min(free_cores(), n_tasks))


@contextmanager
def _single_thread_blas_env() -> Iterator[None]:
    """Set the BLAS thread variables to 1 while workers are spawned (they inherit the environment)."""
    saved = {k: os.environ.get(k) for k in BLAS_ENV}
    os.environ.update({k: "1" for k in BLAS_ENV})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _serial(tasks: Sequence[tuple[Any, ...]], jobs: int) -> bool:
    """Whether tasks run in this process, one after another (one job, or at most one task)."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    return jobs == 1 or len(tasks) <= 1


def map_ordered(fn: Callable[..., T], tasks: Sequence[tuple[Any, ...]], jobs: int) -> Iterator[T]:
    """Yield fn(*task) for each task, in task order, each as soon as it and all earlier ones are done.

    `fn` must be a module-level function and tasks and results picklable when jobs > 1. An exception in
    a task is raised here, at its position; a worker that dies (killed, out of memory) raises GradscopeError;
    Ctrl-C cancels the tasks not started yet.
    """
    if _serial(tasks, jobs):
        yield from (fn(*task) for task in tasks)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=multiprocessing.get_context("spawn"))
    try:
        with _single_thread_blas_env():  # every worker is spawned while the variables are set
            futures = [pool.submit(fn, *task) for task in tasks]
        for fut in futures:
            try:
                yield fut.result()
            except BrokenProcessPool:
                from .errors import GradscopeError

                raise GradscopeError(f"a worker process died (killed, or out of memory?) while running {len(tasks)} "
                                     "tasks; run again with --jobs 1 to see which one fails") from None
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def map_unordered(fn: Callable[..., T], tasks: Sequence[tuple[Any, ...]], jobs: int,
                  initializer: Callable[[], None] | None = None) -> Iterator[T]:
    """Yield fn(*task) for each task as soon as it is done, in the order they finish (used by `sweep`, which
    writes each result as it comes). Same pool, environment and failure handling as map_ordered;
    `initializer` (module level) runs once in each worker."""
    if _serial(tasks, jobs):
        yield from (fn(*task) for task in tasks)
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=multiprocessing.get_context("spawn"),
                               initializer=initializer)
    try:
        with _single_thread_blas_env():
            pending = {pool.submit(fn, *task) for task in tasks}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=id):
                try:
                    yield fut.result()
                except BrokenProcessPool:
                    from .errors import GradscopeError

                    raise GradscopeError(f"a worker process died (killed, or out of memory?) while running "
                                         f"{len(tasks)} tasks; run again with --workers 1 to see which one "
                                         "fails") from None
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def worker_blas_env() -> dict[str, str | None]:
    """The BLAS thread variables as a worker sees them (for tests and `--jobs` diagnostics)."""
    return {k: os.environ.get(k) for k in BLAS_ENV}
