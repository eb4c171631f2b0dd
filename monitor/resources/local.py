"""CPU and memory of a local model server process (the demo, no cluster) via psutil.

CPU cores are the growth of the process tree's CPU time between two samples divided by the wall
time between them (what the kubelet's cAdvisor does with cgroup counters), so the first sample has
no CPU value. A process's CPU time here is user + system + children_user + children_system: when a
child exits, the kernel adds its time to the parent that reaps it, so a server doing its work in
short-lived workers is measured although no sample ever sees them alive. Between two samples:

- a process seen both times adds the growth of its own time, and of its reaped children's time
  minus the last-seen time of the tree members that exited under it (already counted earlier);
- a process started after the previous sample adds all of its time (it all happened since);
- a process that was already running but not seen then (it joined the tree while the tree was
  being listed) is counted from this sample on;
- a member that left the tree alive (e.g. a grandchild whose parent exited: init or a subreaper
  outside the tree adopted it) is counted up to the last sample that saw it, and nothing is
  subtracted for it or for the descendants it reaps: its time never comes back to the tree.

Blind spots: a process reaped outside the tree that no sample saw (forked and orphaned between two
samples) is not counted; a member that leaves the tree and exits between the same two samples (an
orphan init reaped meanwhile) looks like one reaped inside it, so its last-seen time is subtracted
from the growth of its nearest surviving ancestor.

Memory is the tree's resident set size: an approximation of the working set Kubernetes reports (RSS
counts shared pages per process and excludes the page cache the cgroup's working set includes).

A process is identified by (pid, start in clock ticks since boot), never by its pid alone, so a pid
the kernel reused for another program is not measured as the model. The start comes from
/proc/<pid>/stat (Linux), not from psutil's create_time(): that adds the boot time in wall-clock
seconds, which moves when the wall clock is stepped (NTP step, VM restore).
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
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

Key = tuple[int, int]
"""(pid, start in clock ticks since boot): a process's identity, stable across pid reuse and clock steps."""


def since_boot() -> float:
    """Seconds since boot, the clock process start times are kept in (CLOCK_BOOTTIME)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def _start_ticks(pid: int) -> int:
    """When the process started, in clock ticks since boot (/proc/<pid>/stat field 22)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            line = stat_file.read()
    except (FileNotFoundError, ProcessLookupError):
        raise psutil.NoSuchProcess(pid) from None
    except PermissionError:
        raise psutil.AccessDenied(pid) from None
    return int(line.rsplit(b")", 1)[1].split()[19])  # after "pid (comm)", field 3 is at index 0


def _key(pid: int) -> Key:
    return (pid, _start_ticks(pid))


def _running(key: Key) -> bool:
    """Whether the process `key` names still exists (possibly as a zombie)."""
    try:
        return _key(key[0]) == key
    except psutil.NoSuchProcess:
        return False


@dataclass(frozen=True)
class PidFile:
    pid: int
    written: float
    """When the file was last modified, in seconds since boot (comparable with process start times),
    converted with the wall clock's offset of now: off by a wall-clock step since the file was written."""


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


def _tree_cpu_seconds(before: _Sample, after: _Sample, left: frozenset[Key]) -> float:
    """CPU seconds the tree used between two samples of the same root (see the module docstring).

    `left`: members of `before` that are gone from `after` but still running (they left the tree).
    """
    by_pid = {key[0]: key for key in before.procs}
    absorbed: defaultdict[Key, float] = defaultdict(float)
    for key, proc in before.procs.items():
        if key in after.procs or key in left:
            continue
        ancestor = by_pid.get(proc.parent)
        while ancestor is not None and ancestor not in after.procs and ancestor not in left:
            ancestor = by_pid.get(before.procs[ancestor].parent)
        if ancestor is not None and ancestor not in left:  # the tree reaped it: its time is in `ancestor`
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
                    key = _key(proc.pid)
                    procs[key] = _Proc(
                        parent=proc.ppid(),
                        own=times.user + times.system,
                        reaped=times.children_user + times.children_system,
                        started=key[1] / _CLOCK_TICKS,
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
        self._fresh: Key | None = None
        """The process last found to have been started before it wrote the pid file: still itself
        (same pid and start), it stays the writer after a wall-clock step moved the file's age."""
        self._last: _Sample | None = None

    def _root(self) -> tuple[psutil.Process, Key]:
        """The model server's process and identity; `no_such_process` if it is gone or its pid now
        names another.

        A pid file is stale when the process holding its pid started after the file was written. A
        process once found fresh stays so (see `_fresh`), but the first look compares the file's
        mtime converted with the wall clock's offset of now: after a wall-clock step between the
        write and that look, a forward step longer than the slack makes a live server's file look
        stale until the server rewrites it, and a backward step lets a stale file pass if the
        process now holding its pid started less than the step after the file was written."""
        if self._pid_file is not None:
            pid_file = read_pid_file(self._pid_file)
            root = psutil.Process(pid_file.pid)
            key = _key(root.pid)
            if key != self._fresh:
                if key[1] / _CLOCK_TICKS > pid_file.written + PID_FILE_SLACK_SECONDS:
                    raise CollectionError(
                        SOURCE, "no_such_process",
                        f"pid file {self._pid_file} is stale: process {pid_file.pid} started after the file was written",
                    )
                self._fresh = key
        else:
            root = psutil.Process(self._pid)
            key = _key(root.pid)
            if self._given is None:
                self._given = key
            elif key != self._given:
                raise CollectionError(SOURCE, "no_such_process", f"process {self._pid} has exited (its pid now names another process)")
        if root.status() == psutil.STATUS_ZOMBIE:
            raise CollectionError(SOURCE, "no_such_process", f"process {root.pid} has exited (a zombie its parent has not reaped)")
        return root, key

    def sample(self) -> tuple[PodUsage, tuple[int, ...]]:
        """The tree's usage and its PIDs (for matching GPU processes)."""
        pid = self._pid
        try:
            now = self._clock()
            root, key = self._root()
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
        current = _Sample(root=key, at=now, procs=procs)
        cores = None
        if self._last is not None and self._last.root == current.root and now > self._last.at:
            left = frozenset(gone for gone in self._last.procs.keys() - procs.keys() if _running(gone))
            cores = Fraction(_tree_cpu_seconds(self._last, current, left)) / Fraction(now - self._last.at)
        self._last = current
        usage = PodUsage(pod=f"local-{root.pid}", cpu_cores=cores, memory_working_set_bytes=Fraction(rss))
        return usage, tuple(sorted({key[0] for key in procs}))
