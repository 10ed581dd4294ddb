"""How many CPUs this process may use and how many are free right now (stdlib only, importable from any layer:
parallel.blas_threads and executor choose BLAS threads and workers with it, engine.init_params its drawing threads).
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def free_cores() -> int:
    """Usable CPUs not busy right now: the affinity mask minus the other runnable threads.

    /proc/loadavg's fourth field counts the threads runnable at this instant (this one included),
    unlike the load averages, which lag by a minute. Without it, every usable core counts as free.
    """
    cores = usable_cores()
    try:
        with open("/proc/loadavg", encoding="ascii") as fh:
            running = int(fh.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return cores
    return max(1, min(cores, cores - (running - 1)))
