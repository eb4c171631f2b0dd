"""CPU and memory of a local model server process (the demo, no cluster) via psutil.

CPU cores are the growth of the process tree's user+system CPU time between two samples divided by
the wall time between them (what the kubelet's cAdvisor does with cgroup counters), so the first
sample has no CPU value. Memory is the tree's resident set size: an approximation of the working
set Kubernetes reports (RSS counts shared pages per process and excludes the page cache the
cgroup's working set includes).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import psutil

from monitor.resources.usage import CollectionError, PodUsage

__all__ = ["ProcessSampler", "read_pid_file"]

SOURCE = "local"


def read_pid_file(path: Path) -> int:
    """The PID in a pid file (first token), or a `CollectionError` saying why not."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")[:64]
    except FileNotFoundError:
        raise CollectionError(SOURCE, "pid_file_missing", f"pid file {path} does not exist") from None
    except OSError as exc:
        raise CollectionError(SOURCE, "pid_file_unreadable", f"cannot read pid file {path}: {exc}") from None
    token = text.split()[0] if text.split() else ""
    if not token.isdigit() or int(token) <= 0:
        raise CollectionError(SOURCE, "pid_file_invalid", f"pid file {path} does not hold a PID")
    return int(token)


class ProcessSampler:
    """Samples one process and its children; the PID is fixed or re-read from a pid file each time,
    so a restarted model server is followed (its pod label changes, like a restarted pod's name)."""

    def __init__(
        self,
        *,
        pid: int | None = None,
        pid_file: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (pid is None) == (pid_file is None):
            raise ValueError("give exactly one of pid and pid_file")
        self._pid = pid
        self._pid_file = pid_file
        self._clock = clock
        self._last: tuple[int, float, dict[int, float]] | None = None
        """(root pid, clock, cpu seconds by pid) of the previous sample."""

    def current_pid(self) -> int:
        return self._pid if self._pid is not None else read_pid_file(self._pid_file)  # type: ignore[arg-type]

    def sample(self) -> tuple[PodUsage, tuple[int, ...]]:
        """The tree's usage and its PIDs (for matching GPU processes)."""
        pid = self.current_pid()
        try:
            root = psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
            now = self._clock()
            cpu: dict[int, float] = {}
            rss = 0
            for proc in tree:
                try:
                    with proc.oneshot():
                        times = proc.cpu_times()
                        cpu[proc.pid] = times.user + times.system
                        rss += proc.memory_info().rss
                except (psutil.NoSuchProcess, psutil.ZombieProcess):
                    continue  # a child exited between listing and reading
        except psutil.NoSuchProcess:
            self._last = None
            raise CollectionError(SOURCE, "no_such_process", f"process {pid} is not running") from None
        except psutil.AccessDenied:
            raise CollectionError(SOURCE, "access_denied", f"not allowed to read process {pid}") from None
        cores = self._cores(pid, now, cpu)
        self._last = (pid, now, cpu)
        usage = PodUsage(pod=f"local-{pid}", cpu_cores=cores, memory_working_set_bytes=Fraction(rss))
        return usage, tuple(sorted(cpu))

    def _cores(self, pid: int, now: float, cpu: dict[int, float]) -> Fraction | None:
        if self._last is None or self._last[0] != pid or now <= self._last[1]:
            return None
        _, then, before = self._last
        # Only processes seen both times: a new child's lifetime CPU did not all happen in this interval.
        used = sum(max(0.0, cpu[p] - before[p]) for p in cpu.keys() & before.keys())
        return Fraction(used) / Fraction(now - then)
