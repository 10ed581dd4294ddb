"""Process-wide settings the command line makes for itself (a library a notebook imports must not).

- `tune_allocator()`: glibc's malloc keeps freed array buffers instead of unmapping them.
- BLAS threads (`blas_threads`, `limit_blas`) are chosen in parallel.py, beside the seed-range threads.
- `main()`: the console-script entry point; answers `--version` without importing typer or NumPy,
  then hands over to the typer app in cli.py, which tunes the allocator before it runs a command
  (not for --help: ctypes is not imported for it), and freezes the heap before the exit (`freeze_heap`).
- The cyclic garbage collector is paused while a command imports its modules (`pause_collection`,
  `resume_collection`): those imports make ~100 000 objects that all live to the exit, and the
  collections they trigger (~10 ms of `gradscope run`) find nothing to free.
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
    pause_collection()
    from .cli import main as cli_main

    try:
        cli_main()
    finally:
        freeze_heap()


_paused = False


def pause_collection() -> None:
    """Pause the cyclic garbage collector until `resume_collection` (the console-script process only)."""
    global _paused
    import gc

    if gc.isenabled():
        gc.disable()
        _paused = True


def resume_collection() -> None:
    """After a command's imports: move every object made so far to the collector's permanent generation (the
    modules, classes and functions live to the exit; collections never scan them again) and collect from here
    on as usual. Does nothing unless `pause_collection` paused the collector."""
    global _paused
    if not _paused:
        return
    import gc

    gc.freeze()
    gc.enable()
    _paused = False


def freeze_heap() -> None:
    """Before the interpreter exits: move every object to the collector's permanent generation.

    Finalization runs full garbage collections over everything NumPy, rich and typer created (~20 ms
    of `gradscope run`); frozen objects are skipped. Their memory is released with the process.
    """
    import gc

    gc.freeze()
