"""A real child process sampled with psutil: CPU from cpu_times deltas, memory from RSS."""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from monitor.resources.local import PID_FILE_SLACK_SECONDS, ProcessSampler, read_pid_file, since_boot
from monitor.resources.usage import CollectionError

# Holds ~64 MiB resident and burns CPU until killed: the shape of a busy model server.
BUSY = "import sys; block = bytearray(64 * 2**20); block[::4096] = b'x' * len(block[::4096]); sys.stdout.write('ready\\n'); sys.stdout.flush()\nwhile True: pass"
IDLE = "import sys, time; sys.stdout.write('ready\\n'); sys.stdout.flush(); time.sleep(600)"
# Works only in short-lived workers, one after another, each burning 0.3 s of CPU then exiting.
WORKERS = (
    "import subprocess, sys; print('ready', flush=True)\n"
    "while True: subprocess.run([sys.executable, '-c', 'import time\\nt = time.process_time()\\nwhile time.process_time() - t < 0.3: pass'])"
)


def _spawn(code: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
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
        clock.append(since_boot())
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
        assert usage.cpu_cores is not None
        assert usage.cpu_cores < 0.05
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
        assert len(pids) == 2
        assert parent.pid in pids
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
        assert usage.pod == f"local-{second.pid}"  # no rate across processes
        assert usage.cpu_cores is None
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


def _tree_cpu_seconds(pid: int) -> float:
    """The tree's CPU as the kernel keeps it: live members' own time plus what the root has reaped,
    read again until no member came or went meanwhile."""
    root = psutil.Process(pid)
    while True:
        members = root.children(recursive=True)
        try:
            total = sum(_cpu_seconds(child) for child in members)
        except psutil.NoSuchProcess:
            continue
        times = root.cpu_times()
        if root.children(recursive=True) == members:
            return total + times.user + times.system + times.children_user + times.children_system


def test_short_lived_children_are_counted() -> None:
    """Workers born and reaped between two samples are never seen alive; their CPU is in the parent's
    children_* times (the old sampler reported ~0 cores for a server busy in its workers)."""
    parent = _spawn(WORKERS)
    try:
        sampler = ProcessSampler(pid=parent.pid)
        before_first = _tree_cpu_seconds(parent.pid)
        sampler.sample()
        after_first = _tree_cpu_seconds(parent.pid)
        start = since_boot()
        time.sleep(2.0)
        before_second = _tree_cpu_seconds(parent.pid)
        deadline = time.monotonic() + 60  # on a loaded machine a 0.3 s worker can take longer than 2 s
        while before_second - after_first <= 0.3 and time.monotonic() < deadline:
            time.sleep(0.5)
            before_second = _tree_cpu_seconds(parent.pid)
        usage, _ = sampler.sample()
        after_second = _tree_cpu_seconds(parent.pid)
        elapsed = since_boot() - start
    finally:
        for child in psutil.Process(parent.pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):  # a worker may finish between listing and kill
                child.kill()
        _kill(parent)
    assert usage.cpu_cores is not None
    used = float(usage.cpu_cores) * elapsed
    assert before_second - after_first > 0.3  # at least one worker ran in between
    assert before_second - after_first - 0.1 <= used <= after_second - before_first + 0.1


def test_pid_reused_by_another_process_is_not_the_model() -> None:
    """A fixed pid names the process first found under it: after it exits, a new process that the
    kernel gives the same pid is `no_such_process`, not measured as the model."""
    model = _spawn(IDLE)
    sampler = ProcessSampler(pid=model.pid)
    assert sampler.sample()[0].pod == f"local-{model.pid}"
    _kill(model)
    other = None
    for _ in range(50):  # make the kernel hand out the same pid, as it eventually does on a busy host
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(model.pid - 1))
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        if other.pid == model.pid:
            break
        other.kill()
        other.wait()
    assert other is not None, "could not get the pid reused"
    assert other.pid == model.pid, "could not get the pid reused"
    try:
        with pytest.raises(CollectionError) as err:
            sampler.sample()
        assert err.value.reason == "no_such_process"
    finally:
        other.kill()
        other.wait()


def test_stale_pid_file_naming_a_newer_process_is_no_such_process(tmp_path: Path) -> None:
    """A pid file older than the process now holding its pid was written by an earlier process."""
    pid_file = tmp_path / "model.pid"
    pid_file.write_text("1\n")
    written = pid_file.stat().st_mtime
    time.sleep(PID_FILE_SLACK_SECONDS + 0.2)
    newer = _spawn(IDLE)
    try:
        pid_file.write_text(f"{newer.pid}\n")
        os.utime(pid_file, (written, written))  # the crashed server's file, its pid now reused
        with pytest.raises(CollectionError) as err:
            ProcessSampler(pid_file=pid_file).sample()
        assert err.value.reason == "no_such_process"
        assert "stale" in str(err.value)
        pid_file.write_text(f"{newer.pid}\n")  # the server wrote it itself: measured
        assert ProcessSampler(pid_file=pid_file).sample()[0].pod == f"local-{newer.pid}"
    finally:
        _kill(newer)


def test_zombie_model_server_is_gone() -> None:
    """Dead but not yet reaped by its parent (here: us): not a live pod with 0 bytes."""
    model = _spawn(IDLE)
    sampler = ProcessSampler(pid=model.pid)
    sampler.sample()
    os.kill(model.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while psutil.Process(model.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        with pytest.raises(CollectionError) as err:
            sampler.sample()
        assert err.value.reason == "no_such_process"
        assert "zombie" in str(err.value)
    finally:
        model.wait(timeout=10)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["device", "fifo", "directory"])
def test_pid_file_that_is_not_a_regular_file_is_refused(tmp_path: Path, kind: str) -> None:
    """`/dev/zero` would be read forever and a FIFO with no writer would block the collector."""
    path = {"device": Path("/dev/zero"), "fifo": tmp_path / "model.pid", "directory": tmp_path}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    result: list[BaseException] = []

    def read() -> None:
        try:
            read_pid_file(path)
        except CollectionError as exc:
            result.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=5)
    assert result, "read_pid_file blocked or did not refuse"
    err = result[0]
    assert isinstance(err, CollectionError)
    assert err.reason == "pid_file_unreadable"
    assert "not a regular file" in str(err) or "Is a directory" in str(err)


def test_pid_file_reads_only_its_first_bytes(tmp_path: Path) -> None:
    pid_file = tmp_path / "model.pid"
    pid_file.write_text("4242\n" + "x" * 10_000_000)
    assert read_pid_file(pid_file).pid == 4242
    pid_file.write_text("9" * 10_000)
    with pytest.raises(CollectionError) as err:
        read_pid_file(pid_file)
    assert err.value.reason == "pid_file_invalid"


# Forks P, whose child C burns 0.5 s of CPU then sleeps; "orphan" kills and reaps P (C, still
# running, is adopted by init); "work" runs a worker that burns 0.5 s and is reaped by the root.
ORPHANING = """
import os, signal, subprocess, sys, time
def burn(seconds):
    start = time.process_time()
    while time.process_time() - start < seconds: pass
print('ready', flush=True)
for line in sys.stdin:
    if line == 'spawn\\n':
        p = os.fork()
        if p == 0:
            if os.fork() == 0:
                burn(0.5); time.sleep(600); os._exit(0)
            signal.pause(); os._exit(0)
    elif line == 'orphan\\n':
        os.kill(p, signal.SIGKILL); os.waitpid(p, 0)
    elif line == 'work\\n':
        subprocess.run([sys.executable, '-c', 'import time\\nt = time.process_time()\\nwhile time.process_time() - t < 0.5: pass'])
    print('ok', flush=True)
"""


def _own_and_reaped(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def test_orphaned_grandchild_does_not_cancel_reaped_workers() -> None:
    """A grandchild that leaves the tree alive (its parent died, init adopted it) took its CPU with
    it: nothing of it comes back to the root, so it must not be subtracted from the root's reaped
    workers (the old sampler reported ~0 s for the 0.5 s worker below)."""
    root = subprocess.Popen([sys.executable, "-c", ORPHANING], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert root.stdin is not None
    assert root.stdout is not None
    assert root.stdout.readline() == "ready\n"

    def command(line: str) -> None:
        assert root.stdin is not None
        assert root.stdout is not None
        root.stdin.write(line + "\n")
        root.stdin.flush()
        assert root.stdout.readline() == "ok\n"

    orphan: psutil.Process | None = None
    try:
        command("spawn")
        deadline = time.monotonic() + 30
        while orphan is None or _cpu_seconds(orphan) < 0.45:  # C has burnt its 0.5 s (10 ms ticks)
            assert time.monotonic() < deadline
            grandchildren = [p for p in psutil.Process(root.pid).children(recursive=True) if p.ppid() != root.pid]
            orphan = grandchildren[0] if grandchildren else None
            time.sleep(0.05)
        clock: list[float] = []

        def tick() -> float:
            clock.append(since_boot())
            return clock[-1]

        sampler = ProcessSampler(pid=root.pid, clock=tick)
        _, pids = sampler.sample()
        assert orphan.pid in pids
        before = _own_and_reaped(root.pid)  # C is idle: the root's own counters hold all that moves
        command("orphan")
        command("work")
        after = _own_and_reaped(root.pid)
        usage, pids = sampler.sample()
        assert pids == (root.pid,)  # C left the tree alive
        assert orphan.is_running()
    finally:
        for leftover in psutil.Process(root.pid).children(recursive=True):  # P if a step failed early
            leftover.kill()
        if orphan is not None and orphan.is_running():  # psutil checks it is still our C
            orphan.kill()
        _kill(root)
    assert usage.cpu_cores is not None
    used = float(usage.cpu_cores) * (clock[1] - clock[0])
    assert after - before >= 0.45  # the worker's 0.5 s came back to the root
    assert after - before - 0.1 <= used <= after - before + 0.1


def _step_wall_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """What a step of the wall clock (NTP step, VM restore) changes for this process: time.time()
    and the boot time /proc/stat reports (btime = wall clock - time since boot) move by `seconds`;
    process start times in clock ticks since boot and file mtimes already written do not."""
    wall, btime = time.time, psutil._pslinux.boot_time  # type: ignore[attr-defined]
    monkeypatch.setattr(time, "time", lambda: wall() + seconds)
    monkeypatch.setattr(psutil._pslinux, "boot_time", lambda: btime() + seconds)  # type: ignore[attr-defined]


def test_fixed_pid_survives_a_wall_clock_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """The old sampler keyed a process by psutil's create_time(), which moves with the boot time:
    after a step its own model server was `no_such_process` forever."""
    model = _spawn(IDLE)
    try:
        sampler = ProcessSampler(pid=model.pid)
        sampler.sample()
        _step_wall_clock(monkeypatch, 2.0)
        usage, _ = sampler.sample()
        assert usage.pod == f"local-{model.pid}"  # still the same process
        assert usage.cpu_cores is not None
    finally:
        _kill(model)


def test_pid_file_stays_fresh_across_a_wall_clock_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pid file's mtime is in the wall clock of before the step: converted with the clock after a
    forward step it looks written before its own server started (the old sampler: stale). A file a
    server rewrites after the step is judged with the new clock again."""
    pid_file = tmp_path / "model.pid"
    first = _spawn(IDLE)
    try:
        pid_file.write_text(f"{first.pid}\n")
        sampler = ProcessSampler(pid_file=pid_file)
        assert sampler.sample()[0].pod == f"local-{first.pid}"
        _step_wall_clock(monkeypatch, 5.0)
        usage, _ = sampler.sample()
        assert usage.pod == f"local-{first.pid}"
        assert usage.cpu_cores is not None
    finally:
        _kill(first)
    second = _spawn(IDLE)
    try:
        pid_file.write_text(f"{second.pid}\n")
        os.utime(pid_file, (time.time(), time.time()))  # written after the step: in the new wall clock
        assert sampler.sample()[0].pod == f"local-{second.pid}"
    finally:
        _kill(second)
