"""A real child process sampled with psutil: CPU from cpu_times deltas, memory from RSS."""

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from monitor.resources.local import ProcessSampler, read_pid_file
from monitor.resources.usage import CollectionError

# Holds ~64 MiB resident and burns CPU until killed: the shape of a busy model server.
BUSY = "import sys; block = bytearray(64 * 2**20); block[::4096] = b'x' * len(block[::4096]); sys.stdout.write('ready\\n'); sys.stdout.flush()\nwhile True: pass"
IDLE = "import sys, time; sys.stdout.write('ready\\n'); sys.stdout.flush(); time.sleep(600)"


def _spawn(code: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait(timeout=10)


@pytest.fixture
def busy() -> Iterator[subprocess.Popen[str]]:
    proc = _spawn(BUSY)
    yield proc
    _kill(proc)


def _cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def test_busy_process_cpu_and_memory(busy: subprocess.Popen[str]) -> None:
    """The rate matches psutil's own cpu_times delta of the child, however much CPU a loaded machine gives it."""
    clock: list[float] = []

    def tick() -> float:
        clock.append(time.monotonic())
        return clock[-1]

    sampler = ProcessSampler(pid=busy.pid, clock=tick)
    child = psutil.Process(busy.pid)
    before_first = _cpu_seconds(child)
    first, pids = sampler.sample()
    after_first = _cpu_seconds(child)
    assert first.pod == f"local-{busy.pid}"
    assert first.cpu_cores is None  # a rate needs two samples
    assert first.memory_working_set_bytes >= 64 * 2**20
    assert pids == (busy.pid,)
    time.sleep(1.0)
    before_second = _cpu_seconds(child)
    second, _ = sampler.sample()
    after_second = _cpu_seconds(child)
    assert second.cpu_cores is not None
    # The sampler's CPU seconds lie between the deltas of reads just inside and just outside its two
    # reads (cpu_times ticks every 10 ms: one tick of slack each side).
    used = float(second.cpu_cores) * (clock[1] - clock[0])
    assert before_second - after_first - 0.02 <= used <= after_second - before_first + 0.02
    assert before_second - after_first > 0  # the child did spin while we slept
    assert second.cpu_cores <= 1.1  # one thread: at most one core


def test_idle_process_uses_almost_no_cpu() -> None:
    proc = _spawn(IDLE)
    try:
        sampler = ProcessSampler(pid=proc.pid)
        sampler.sample()
        time.sleep(0.5)
        usage, _ = sampler.sample()
        assert usage.cpu_cores is not None and usage.cpu_cores < 0.05
        assert usage.memory_working_set_bytes < 64 * 2**20
    finally:
        _kill(proc)


def test_children_are_included(tmp_path: Path) -> None:
    parent = _spawn(
        "import subprocess, sys; c = subprocess.Popen([sys.executable, '-c', " + repr(BUSY) + "], stdout=subprocess.PIPE, text=True);"
        " c.stdout.readline(); print('ready', flush=True); c.wait()"
    )
    try:
        usage, pids = ProcessSampler(pid=parent.pid).sample()
        assert len(pids) == 2 and parent.pid in pids
        assert usage.memory_working_set_bytes >= 64 * 2**20
    finally:
        for child in psutil.Process(parent.pid).children(recursive=True):
            child.kill()
        _kill(parent)


def test_pid_file_is_followed_across_restarts(tmp_path: Path) -> None:
    pid_file = tmp_path / "model.pid"
    sampler = ProcessSampler(pid_file=pid_file)
    with pytest.raises(CollectionError) as err:
        sampler.sample()
    assert err.value.reason == "pid_file_missing"
    first = _spawn(IDLE)
    try:
        pid_file.write_text(f"{first.pid}\n")
        assert sampler.sample()[0].pod == f"local-{first.pid}"
    finally:
        _kill(first)  # also when the assertion fails: it would sleep on for 10 minutes
    with pytest.raises(CollectionError) as err:
        sampler.sample()
    assert err.value.reason == "no_such_process"
    second = _spawn(IDLE)
    try:
        pid_file.write_text(f"{second.pid}\n")
        usage, _ = sampler.sample()
        assert usage.pod == f"local-{second.pid}" and usage.cpu_cores is None  # no rate across processes
    finally:
        _kill(second)


@pytest.mark.parametrize("content", ["", "abc", "-5", "0", "12.5"])
def test_invalid_pid_files(tmp_path: Path, content: str) -> None:
    pid_file = tmp_path / "model.pid"
    pid_file.write_text(content)
    with pytest.raises(CollectionError) as err:
        read_pid_file(pid_file)
    assert err.value.reason == "pid_file_invalid"


def test_pid_and_pid_file_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ProcessSampler(pid=1, pid_file=tmp_path / "x")
    with pytest.raises(ValueError):
        ProcessSampler()
