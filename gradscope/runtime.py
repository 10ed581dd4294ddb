"""Process-wide settings the command line makes for itself (a library a notebook imports must not).

- `tune_allocator()`: glibc's malloc keeps freed array buffers instead of unmapping them.
- `blas_threads(...)`: how many BLAS threads a run uses, chosen from the size of its matrix
  multiplies and the cores actually free; `limit_blas(n)` applies it for the length of a run
  (threadpoolctl), so a busy machine never meets OpenBLAS's default of one spinning thread per core.
- `main()`: the console-script entry point; answers `--version` without importing typer or NumPy,
  tunes the allocator, then hands over to the typer app in cli.py.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

from .cores import free_cores, usable_cores  # noqa: F401  (usable_cores: re-exported)

# A GEMM of fewer multiply-adds than this runs on one thread: splitting ~0.5 ms of work costs more in
# hand-offs than it saves, and a second thread that has to wait for a busy core stalls every call.
PARALLEL_GEMM_MACS = 1 << 22
THREADS_ENV = "GRADSCOPE_THREADS"
_controller: Any = None


def tune_allocator() -> None:
    """Let glibc reuse freed array buffers instead of unmapping them.

    Every pass allocates and frees arrays of ~1 MB; with glibc's defaults each is mmap'd and
    unmapped, and every reuse page-faults on fresh zeroed pages. Raising the mmap threshold to its
    maximum (32 MiB) and keeping a top pad roughly halves a pass's time (benchmarks/bench.py).
    Process-wide, so only the command line (and the benchmarks that stand for it) call it.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    libc.mallopt(m_mmap_threshold, 32 * 2**20)
    libc.mallopt(m_trim_threshold, 512 * 2**20)
    libc.mallopt(m_top_pad, 64 * 2**20)


def blas_threads(largest_gemm_macs: int, env: dict[str, str] | None = None) -> int:
    """BLAS threads for a run whose largest single matrix multiply has this many multiply-adds.

    GRADSCOPE_THREADS=N (a positive integer) overrides the choice; otherwise one thread for small
    GEMMs and the free cores (see free_cores) for large ones.
    """
    text = (os.environ if env is None else env).get(THREADS_ENV, "").strip()
    if text:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            from .errors import GradscopeError

            raise GradscopeError(f"{THREADS_ENV}={text!r}: expected a positive number of threads")
        return value
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


def main() -> None:
    """Console-script entry point: `gradscope` and `python -m gradscope`."""
    if sys.argv[1:] in (["--version"], ["-V"]):
        from . import __version__

        sys.stdout.write(f"gradscope {__version__}\n")
        return
    tune_allocator()
    from .cli import main as cli_main

    cli_main()
