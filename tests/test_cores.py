"""cores.free_cores: a core is busy only when another process's thread stays runnable over a few samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from gradscope import cores


def _proc(tmp_path: Path, running: int, states: str) -> tuple[str, str]:
    """A fake /proc/loadavg with `running` runnable threads and /proc/self/task with one thread per state."""
    loadavg = tmp_path / "loadavg"
    loadavg.write_text(f"0.50 0.40 0.30 {running}/123 4567\n")
    tasks = tmp_path / "task"
    tasks.mkdir(exist_ok=True)
    for old in tasks.iterdir():
        (old / "stat").unlink()
        old.rmdir()
    for i, s in enumerate(states):
        (tasks / str(100 + i)).mkdir()
        (tasks / str(100 + i) / "stat").write_text(f"{100 + i} (python (x) y) {s} 1 2 3\n")
    return str(loadavg), str(tasks)


def test_idle_busy_and_own_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cores, "usable_cores", lambda: 2)
    monkeypatch.setattr(cores, "BUSY_SAMPLE_GAP_S", 0.0)
    assert cores.free_cores(*_proc(tmp_path, 1, "RS")) == 2     # only this thread runs
    assert cores.free_cores(*_proc(tmp_path, 2, "RS")) == 1     # another process's thread, in every sample
    assert cores.free_cores(*_proc(tmp_path, 3, "RRR")) == 2    # this process's own spinning threads
    assert cores.free_cores(*_proc(tmp_path, 9, "R")) == 1      # never fewer than one
    assert cores.free_cores(str(tmp_path / "none"), str(tmp_path / "task")) == 2  # no /proc: every core
    assert cores.free_cores(*_proc(tmp_path, 2, "")) == 1       # no task list: this thread is the one running
    assert cores._own_running(str(tmp_path / "missing")) == 1
    monkeypatch.setattr(cores, "OWN_TASKS_READ", 2)  # too many threads to scan: only this one is its own
    assert cores.free_cores(*_proc(tmp_path, 3, "RRR")) == 1


def test_a_thread_that_ran_for_a_moment_takes_no_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cores, "usable_cores", lambda: 2)
    monkeypatch.setattr(cores, "BUSY_SAMPLE_GAP_S", 0.0)
    for samples, free in (([1, 0, 1], 2), ([1, 1, 0], 2), ([1, 1, 1], 1), ([0], 2), ([2, 1, 1], 1), ([1, None, 1], 1)):
        seq = iter(samples)
        calls: list[int] = []

        def sample(*_: str, seq=seq, calls=calls) -> int | None:
            calls.append(1)
            return next(seq)

        monkeypatch.setattr(cores, "_others_running", sample)
        assert cores.free_cores() == free, samples
        assert len(calls) == (1 if samples[0] == 0 else next((i + 1 for i, s in enumerate(samples) if s == 0),
                                                             len(samples))), samples


def test_this_process_counts_itself_once() -> None:
    """On this machine: this thread is one of this process's runnable threads (read from /proc/self/task)."""
    if not Path("/proc/self/task").is_dir():
        pytest.skip("no /proc")
    assert cores._own_running("/proc/self/task") >= 1
    assert 1 <= cores.free_cores() <= cores.usable_cores()
