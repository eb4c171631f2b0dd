"""Ports for test servers that must be named before they are bound (a process's `--port`, a
"monitor down" address): one helper, so that no two picks in a session are the same number.

A port is checked free by binding it, then released, and only bound again later by its user. Two
things could take it in that gap: another pick of this session (prevented by remembering every
port handed out) and the kernel, which gives ephemeral ports to `bind(0)` servers and to outgoing
connections (prevented by picking below the ephemeral range when the system says where it is).
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_FLOOR = 20000  # below: well-known development ports (3000, 8080, 9090, …)
_handed_out: set[int] = set()
_lock = threading.Lock()
_rng = random.Random()  # our own generator: a test seeding `random` must not make two sessions pick alike


def _candidate() -> int:
    """A port no `bind(0)` or outgoing connection is given; the kernel's choice where that is unknown."""
    try:
        low = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 0
    if low > _FLOOR + 1000:
        return _rng.randrange(_FLOOR, low)
    return 0


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` now and never returned before in this process."""
    with _lock:
        for _ in range(1000):
            with socket.socket() as s:
                try:
                    s.bind((host, _candidate()))
                except OSError:  # taken by someone else: try another
                    continue
                port = int(s.getsockname()[1])
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise RuntimeError("no free port found in 1000 tries")
