"""How many CPUs this process may use and how many are free right now (stdlib only, importable from any layer:
parallel.blas_threads and executor choose BLAS threads and workers with it, engine.init_params its drawing threads).
"""

from __future__ import annotations

import os
import time


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


# A core counts as busy only when another thread is runnable in every one of these samples, this far apart:
# a single read of /proc/loadavg on an idle 2-core VM saw a kernel worker or a just-woken thread 1 time in 8
# (a run then took half the machine: 1 of 3 bench runs on an idle host), 3 reads 0.5 ms apart ~1 in 300.
BUSY_SAMPLES = 3
BUSY_SAMPLE_GAP_S = 0.0005


def free_cores(loadavg: str = "/proc/loadavg", tasks: str = "/proc/self/task") -> int:
    """Usable CPUs not busy right now: the affinity mask minus the threads of other processes that stay
    runnable over a few samples.

    /proc/loadavg's fourth field counts the threads runnable at this instant (this one included), unlike
    the load averages, which lag by a minute; this process's own runnable threads (a BLAS thread spinning
    after a multiply, a pool thread about to sleep) are not counted against it. When the first sample sees
    nothing else running (an idle machine), that is the answer; otherwise the least of BUSY_SAMPLES samples
    BUSY_SAMPLE_GAP_S apart, so that a thread that ran for a moment does not take a core away from the run.
    Without /proc, every usable core counts as free.
    """
    cores = usable_cores()
    others = _others_running(loadavg, tasks)
    if others is None:
        return cores
    for _ in range(BUSY_SAMPLES - 1):
        if others <= 0:
            break
        time.sleep(BUSY_SAMPLE_GAP_S)
        again = _others_running(loadavg, tasks)
        others = min(others, again if again is not None else others)
    return max(1, min(cores, cores - max(0, others)))


def _others_running(loadavg: str, tasks: str) -> int | None:
    """Runnable threads on the machine that are not this process's (None: /proc/loadavg unreadable)."""
    try:
        with open(loadavg, encoding="ascii") as fh:
            running = int(fh.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None
    if running <= 1:  # only this thread: no need to read this process's task list
        return 0
    return running - _own_running(tasks)


OWN_TASKS_READ = 64  # a process with more threads than this is not scanned (its other threads count as busy)


def _own_running(tasks: str) -> int:
    """This process's threads in state R (this one included); 1 when /proc/self/task cannot be read or lists
    more than OWN_TASKS_READ threads (reading each one's stat would cost more than the answer is worth)."""
    try:
        tids = os.listdir(tasks)
    except OSError:
        return 1
    if len(tids) > OWN_TASKS_READ:
        return 1
    n = 0
    for tid in tids:
        try:
            with open(f"{tasks}/{tid}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue  # the thread has just exited
        n += stat[stat.rfind(")") + 2: stat.rfind(")") + 3] == "R"
    return max(1, n)
