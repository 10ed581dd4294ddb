"""Process-wide settings the command line makes for itself (a library a notebook imports must not).

- `tune_allocator()`: glibc's malloc keeps freed array buffers instead of unmapping them.
- BLAS threads (`blas_threads`, `limit_blas`) are chosen in parallel.py, beside the seed-range threads.
- `main()`: the console-script entry point; answers `--version` without importing typer or NumPy,
  then hands over to the typer app in cli.py, which tunes the allocator before it runs a command
  (not for --help: ctypes is not imported for it), and freezes the heap before the exit (`freeze_heap`).
"""

from __future__ import annotations

import sys


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


def main() -> None:
    """Console-script entry point: `gradscope` and `python -m gradscope`."""
    if sys.argv[1:] in (["--version"], ["-V"]):
        from . import __version__

        sys.stdout.write(f"gradscope {__version__}\n")
        return
    from .cli import main as cli_main

    try:
        cli_main()
    finally:
        freeze_heap()


def freeze_heap() -> None:
    """Before the interpreter exits: move every object to the collector's permanent generation.

    Finalization runs full garbage collections over everything NumPy, rich and typer created (~20 ms
    of `gradscope run`); frozen objects are skipped. Their memory is released with the process.
    """
    import gc

    gc.freeze()
