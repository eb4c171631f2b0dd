"""The bearer token the shipper sends: fixed (from --token-env) or read from a file (--token-file).

A file is a mounted Kubernetes Secret: the kubelet swaps it atomically (a `..data` symlink) when
the Secret changes. The shipper calls `refresh()` before each POST; the file is stat'ed at most once
per `interval` and read again only when what the stat shows (inode, size, mtime) changed, or when
`refresh(force=True)` is called after the monitor answered 401/403. Nothing here runs per proxied
request. The token itself is never logged.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["TokenSource"]

log = logging.getLogger("driftwatch.sidecar.token")


class TokenSource:
    def __init__(
        self, token: str | None = None, path: Path | None = None, interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.token = token
        self.interval = interval
        self._clock = clock
        self._checked = -float("inf")
        self._stat: tuple[int, int, int] | None = None
        self._failing = False  # logged once per spell of an unreadable or empty file, not per check
        if path is not None:
            self.refresh(force=True)

    @property
    def kind(self) -> str:
        """Where the token comes from, for logs: `file`, `env` or `none`."""
        return "file" if self.path is not None else "env" if self.token else "none"

    def refresh(self, force: bool = False) -> bool:
        """Re-read the file if it may have changed; True when the token changed. A fixed token never does."""
        if self.path is None:
            return False
        now = self._clock()
        if not force and now - self._checked < self.interval:
            return False
        self._checked = now
        try:
            st = os.stat(self.path)
            stat = (st.st_ino, st.st_size, st.st_mtime_ns)
            if not force and stat == self._stat:
                return False
            token = self.path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            self._fail(f"token_file_unreadable path={self.path} error={type(exc).__name__}")
            self._stat = None
            return False
        self._stat = stat
        if not token:
            self._fail(f"token_file_empty path={self.path}")
            return False
        if not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
            self._fail(f"token_file_invalid path={self.path} (a bearer token is one line of visible ASCII)")
            return False
        self._failing = False
        if token == self.token:
            return False
        first = self.token is None
        self.token = token
        if not first:
            log.warning("token_reloaded path=%s", self.path)
        return True

    def _fail(self, message: str) -> None:
        if not self._failing:
            self._failing = True
            log.error("%s (keeping the last token, if any)", message)
