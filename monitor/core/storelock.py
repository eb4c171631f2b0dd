"""One writer per event store: an exclusive lock held by the monitor process that writes it.

Record ordinals (`rec_end`) are assigned from a count each monitor keeps in memory, so two
monitors writing one file would hand out the same ordinals and mix their windows and reports.
The chart runs one replica with the Recreate strategy; this lock also stops a second local
`driftwatch serve` pointed at the same file. `flock` is released by the kernel when the process
dies, so a SIGKILLed monitor never leaves a stale lock behind.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

__all__ = ["StoreInUse", "StoreLock"]


class StoreInUse(RuntimeError):
    """Another process holds the store's lock."""


class StoreLock:
    def __init__(self, store_path: str | Path) -> None:
        self.path = Path(f"{store_path}.lock")
        self._fd: int | None = None

    def acquire(self) -> StoreLock:
        """Take the lock or raise `StoreInUse` naming the holder's pid; returns self."""
        self.path.parent.mkdir(parents=True, exist_ok=True)  # as the store itself does
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise StoreInUse(f"the event store {str(self.path)[:-5]} is in use by another driftwatch monitor (pid {holder})") from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
