"""Child processes of the demo: started in their own process group, stopped for sure.

The demo starts a model server, a sidecar and the monitor; whatever happens (an error, Ctrl-C),
every one of them must be gone when `driftwatch demo` exits.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

_handed_out: set[int] = set()


def run_guarded(console: Any, workdir: Path | None, prefix: str, body: Callable[[Path], int]) -> int:
    """A demo's frame: `body` in `workdir` (a temporary one, removed after, unless given); Ctrl-C exits
    130 and a failed step 1, each with one line saying so (`body` stops what it started on the way out)."""
    tmp = None if workdir else tempfile.TemporaryDirectory(prefix=prefix)
    root = workdir or Path(tmp.name)  # type: ignore[union-attr]
    root.mkdir(parents=True, exist_ok=True)
    try:
        return body(root)
    except KeyboardInterrupt:
        console.print("interrupted; everything the demo started has been stopped.")
        return 130
    except (RuntimeError, httpx.HTTPError) as exc:
        console.print(f"[bold red]demo failed:[/] {exc}")
        if workdir is None:
            console.print("re-run with --workdir DIR to keep the processes' logs")
        return 1
    finally:
        if tmp is not None:
            tmp.cleanup()


def free_port() -> int:
    """A port free now and not handed out before by this process: the demo names its children's
    ports before they bind them, and two equal picks would put two of them on one port."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Supervisor:
    """Starts children with logs in `log_dir` and stops them all (SIGTERM, then SIGKILL)."""

    log_dir: Path
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        log = self.log_dir / f"{name}.log"
        handle = log.open("wb")
        proc = subprocess.Popen(
            argv,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        handle.close()
        child = Child(name, proc, log)
        self.children.append(child)
        return child

    def python(self, name: str, module: str, *args: str, env: dict[str, str] | None = None) -> Child:
        return self.start(name, [sys.executable, "-m", module, *args], env)

    def wait_http(self, child: Child, url: str, timeout: float = 60.0) -> None:
        """Wait until `url` answers 200, failing early (with the log) if the child died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not child.alive():
                raise RuntimeError(f"{child.name} exited with {child.proc.returncode}:\n{child.tail()}")
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{child.name} not ready at {url} after {timeout:.0f}s:\n{child.tail()}")

    def stop_all(self, grace: float = 10.0) -> None:
        for child in reversed(self.children):
            if child.alive():
                _signal_group(child.proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in reversed(self.children):
            try:
                child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(child.proc, signal.SIGKILL)
                child.proc.wait()
        self.children.clear()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
