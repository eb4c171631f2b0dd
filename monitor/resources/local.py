"""CPU and memory of a local model server process (the demo, no cluster) via psutil.

CPU cores are the growth of the process tree's CPU time between two samples divided by the wall
time between them (what the kubelet's cAdvisor does with cgroup counters), so the first sample has
no CPU value. A process's CPU time here is user + system + children_user + children_system: when a
child exits, the kernel adds its time to the parent that reaps it, so a server doing its work in
short-lived workers is measured although no sample ever sees them alive. Between two samples:

- a process seen both times adds the growth of its own time, and of its reaped children's time
  minus the last-seen time of the tree members that vanished under it (already counted earlier);
- a process started after the previous sample adds all of its time (it all happened since);
- a process that was already running but not seen then (it joined the tree while the tree was
  being listed) is counted from this sample on.

Blind spot: a process whose time the tree never gets back, e.g. a grandchild orphaned by its
parent's exit and reaped by init (or a subreaper outside the tree), is counted only up to the last
sample that saw it, and not at all if it lived between two samples. Memory is the tree's resident
set size: an approximation of the working set Kubernetes reports (RSS counts shared pages per
process and excludes the page cache the cgroup's working set includes).

A process is identified by (pid, start time), never by its pid alone: a pid the kernel reused for
another program is not measured as the model.
"""

from __future__ import annotations

import os
import stat
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import psutil

from monitor.resources.usage import CollectionError, PodUsage

__all__ = ["PidFile", "ProcessSampler", "read_pid_file", "since_boot"]

SOURCE = "local"
PID_FILE_MAX_BYTES = 64
"""A pid file is a number and a newline; reading more only lets a wrong path (`/dev/zero`) hurt."""
_PID_MAX = 4_194_304
"""The kernel's upper bound for pid_max (PID_MAX_LIMIT on 64-bit)."""
PID_FILE_SLACK_SECONDS = 0.5
"""A process started this long after its pid file was last written did not write it."""

Key = tuple[int, float]
"""(pid, start time): a process's identity, stable across pid reuse."""


def since_boot() -> float:
    """Seconds since boot, the clock process start times are kept in (CLOCK_BOOTTIME)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


@dataclass(frozen=True)
class PidFile:
    pid: int
    written: float
    """When the file was last modified, in seconds since boot (comparable with process start times)."""


def read_pid_file(path: Path) -> PidFile:
    """The PID in a pid file (first token), or a `CollectionError` saying why not.

    Opened non-blocking and read only when it is a regular file: a FIFO would block the collector,
    a device such as `/dev/zero` would never end.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise CollectionError(SOURCE, "pid_file_missing", f"pid file {path} does not exist") from None
    except OSError as exc:
        raise CollectionError(SOURCE, "pid_file_unreadable", f"cannot open pid file {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CollectionError(SOURCE, "pid_file_unreadable", f"pid file {path} is not a regular file")
        data = os.read(fd, PID_FILE_MAX_BYTES)
    except OSError as exc:
        raise CollectionError(SOURCE, "pid_file_unreadable", f"cannot read pid file {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    tokens = data.decode("ascii", errors="replace").split()
    token = tokens[0] if tokens else ""
    if not (token.isdigit() and len(token) <= 7 and 0 < int(token) <= _PID_MAX):
        raise CollectionError(SOURCE, "pid_file_invalid", f"pid file {path} does not hold a PID")
    return PidFile(pid=int(token), written=info.st_mtime - (time.time() - since_boot()))


@dataclass(frozen=True)
class _Proc:
    parent: int
    own: float
    """user + system seconds."""
    reaped: float
    """children_user + children_system seconds: the children it has waited for."""
    started: float
    """Seconds since boot."""


@dataclass(frozen=True)
class _Sample:
    root: Key
    at: float
    procs: dict[Key, _Proc]


def _tree_cpu_seconds(before: _Sample, after: _Sample) -> float:
    """CPU seconds the tree used between two samples of the same root (see the module docstring)."""
    by_pid = {key[0]: key for key in before.procs}
    absorbed: defaultdict[Key, float] = defaultdict(float)
    for key, proc in before.procs.items():
        if key in after.procs:
            continue
        ancestor = by_pid.get(proc.parent)
        while ancestor is not None and ancestor not in after.procs:
            ancestor = by_pid.get(before.procs[ancestor].parent)
        if ancestor is not None:
            absorbed[ancestor] += proc.own + proc.reaped
    used = 0.0
    for key, proc in after.procs.items():
        seen = before.procs.get(key)
        if seen is not None:
            used += max(0.0, proc.own - seen.own) + max(0.0, proc.reaped - seen.reaped - absorbed[key])
        elif proc.started > before.at:
            used += proc.own + proc.reaped
    return used


def _read_tree(root: psutil.Process, attempts: int = 3) -> tuple[dict[Key, _Proc], int]:
    """Every member's CPU times (the root's last) and the tree's RSS, retried while the tree changes.

    A child reaped between being read and its parent being read would be counted twice (its own
    time, and again in the parent's children_* times); read in the other order, not at all. So the
    tree is listed again after the root was read, and the reading kept only when nobody came or went.
    """
    for _ in range(attempts):
        procs: dict[Key, _Proc] = {}
        rss = 0
        members = root.children(recursive=True)
        for proc in (*members, root):
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    procs[(proc.pid, proc.create_time())] = _Proc(
                        parent=proc.ppid(),
                        own=times.user + times.system,
                        reaped=times.children_user + times.children_system,
                        started=proc.create_time() - psutil.boot_time(),
                    )
                    if proc.status() != psutil.STATUS_ZOMBIE:
                        rss += proc.memory_info().rss
            except psutil.NoSuchProcess:
                if proc is root:
                    raise
                continue  # a child exited between listing and reading
        if root.children(recursive=True) == members:
            break
    return procs, rss


class ProcessSampler:
    """Samples one process and its children; the PID is fixed or re-read from a pid file each time,
    so a restarted model server is followed (its pod label changes, like a restarted pod's name)."""

    def __init__(
        self,
        *,
        pid: int | None = None,
        pid_file: Path | None = None,
        clock: Callable[[], float] = since_boot,
    ) -> None:
        """`clock` gives seconds since boot: it is compared with process start times."""
        if (pid is None) == (pid_file is None):
            raise ValueError("give exactly one of pid and pid_file")
        self._pid = pid
        self._pid_file = pid_file
        self._clock = clock
        self._given: Key | None = None
        """The process a fixed `pid` named, from the first sample that found it."""
        self._last: _Sample | None = None

    def _root(self) -> psutil.Process:
        """The model server's process; `no_such_process` if it is gone or its pid now names another."""
        if self._pid_file is not None:
            pid_file = read_pid_file(self._pid_file)
            root = psutil.Process(pid_file.pid)
            started = root.create_time() - psutil.boot_time()
            if started > pid_file.written + PID_FILE_SLACK_SECONDS:
                raise CollectionError(
                    SOURCE, "no_such_process",
                    f"pid file {self._pid_file} is stale: process {pid_file.pid} started after the file was written",
                )
        else:
            root = psutil.Process(self._pid)
            key = (root.pid, root.create_time())
            if self._given is None:
                self._given = key
            elif key != self._given:
                raise CollectionError(SOURCE, "no_such_process", f"process {self._pid} has exited (its pid now names another process)")
        if root.status() == psutil.STATUS_ZOMBIE:
            raise CollectionError(SOURCE, "no_such_process", f"process {root.pid} has exited (a zombie its parent has not reaped)")
        return root

    def sample(self) -> tuple[PodUsage, tuple[int, ...]]:
        """The tree's usage and its PIDs (for matching GPU processes)."""
        pid = self._pid
        try:
            now = self._clock()
            root = self._root()
            pid = root.pid
            procs, rss = _read_tree(root)
        except CollectionError:
            self._last = None
            raise
        except psutil.NoSuchProcess:
            self._last = None
            raise CollectionError(SOURCE, "no_such_process", f"process {pid} is not running") from None
        except psutil.AccessDenied:
            raise CollectionError(SOURCE, "access_denied", f"not allowed to read process {pid}") from None
        current = _Sample(root=(root.pid, root.create_time()), at=now, procs=procs)
        cores = None
        if self._last is not None and self._last.root == current.root and now > self._last.at:
            cores = Fraction(_tree_cpu_seconds(self._last, current)) / Fraction(now - self._last.at)
        self._last = current
        usage = PodUsage(pod=f"local-{root.pid}", cpu_cores=cores, memory_working_set_bytes=Fraction(rss))
        return usage, tuple(sorted({key[0] for key in procs}))
