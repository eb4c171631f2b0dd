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


def test_busy_process_cpu_and_memory(busy: subprocess.Popen[str]) -> None:
    sampler = ProcessSampler(pid=busy.pid)
    first, pids = sampler.sample()
    assert first.pod == f"local-{busy.pid}"
    assert first.cpu_cores is None  # a rate needs two samples
    assert first.memory_working_set_bytes >= 64 * 2**20
    assert pids == (busy.pid,)
    time.sleep(1.0)
    second, _ = sampler.sample()
    assert second.cpu_cores is not None
    # A spinning process uses up to one core; on a shared 2-core machine it gets a good share of one.
    assert 0.2 < second.cpu_cores <= 1.1


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
