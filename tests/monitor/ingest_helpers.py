"""Shared pieces of the ingest tests: a small real config with a reference file, event builders and
a real uvicorn server on 127.0.0.1 (in a thread or as a `driftwatch serve` subprocess)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import uvicorn
import yaml

from monitor.core.config import Config, load_config

COLUMNS = ["f0", "f1", "f2", "color"]


RETRAIN_DRY_RUN = {
    "launcher": "local", "dry_run": True, "consecutive_windows": 1, "min_records": 10,
    "local": {"command": ["python3", "-c", "pass"]},
}


def write_config(
    tmp_path: Path, *, server: dict[str, Any] | None = None, window: dict[str, Any] | None = None, retrain: dict[str, Any] | None = None,
    toy: dict[str, Any] | None = None,
) -> Path:
    """A config with `toy` (KServe v1 list instances + object predictions; `toy` adds settings) and
    `plain` (JSON records)."""
    rng = np.random.default_rng(7)
    n = 600
    ref = pd.DataFrame(
        {
            "f0": rng.normal(0, 1, n),
            "f1": rng.normal(5, 2, n),
            "f2": rng.uniform(0, 10, n),
            "color": rng.choice(["red", "green", "blue"], n),
            "score": rng.uniform(0, 1, n),
        }
    )
    ref.to_csv(tmp_path / "reference.csv", index=False)
    features = [
        {"name": "f0", "type": "numeric", "source": {"index": 0}},
        {"name": "f1", "type": "numeric", "source": {"index": 1}},
        {"name": "f2", "type": "numeric", "source": {"index": 2}, "critical": True},
        {"name": "color", "type": "categorical", "source": {"index": 3}},
    ]
    data = {
        "version": 1,
        "server": {
            "evaluation_interval": "50ms",
            "cloudevents_join_timeout": "1s",
            "max_body_bytes": "1MiB",
            "store": {"path": "store/driftwatch.db"},
            **(server or {}),
        },
        "models": [
            {
                "name": "toy",
                "protocol": "kserve_v1",
                "features": features,
                "outputs": [{"name": "score", "type": "numeric", "source": {"key": "score"}}],
                "reference": {"path": "reference.csv"},
                "window": window or {"records": 100, "step": 50, "min_records": 20},
                **({"retrain": retrain} if retrain else {}),
                **(toy or {}),
            },
            {
                "name": "plain",
                "protocol": "json",
                "features": [{"name": c, "type": "categorical" if c == "color" else "numeric"} for c in COLUMNS],
                "outputs": [{"name": "score", "type": "numeric"}],
                "reference": {"path": "reference.csv"},
                "window": {"records": 100, "step": 50, "min_records": 20},
            },
        ],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def shifted_reference(shift: float, n: int = 600, seed: int = 11) -> pd.DataFrame:
    """A reference like `write_config`'s, its numeric features moved by `shift` (what drifted traffic looks like)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "f0": rng.normal(0, 1, n) + shift, "f1": rng.normal(5, 2, n) + shift, "f2": rng.uniform(0, 10, n) + shift,
        "color": rng.choice(["red", "green", "blue"], n), "score": rng.uniform(0, 1, n),
    })


def csv_of(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def load(tmp_path: Path, **kwargs: Any) -> Config:
    return load_config(write_config(tmp_path, **kwargs))


def row(i: int, shift: float = 0.0) -> list[Any]:
    """A deterministic instance; `shift` moves the numeric features (drift)."""
    rng = np.random.default_rng(i)
    return [
        float(rng.normal(0, 1) + shift),
        float(rng.normal(5, 2) + shift),
        float(rng.uniform(0, 10) + shift),
        str(rng.choice(["red", "green", "blue"])),
    ]


def event(i: int, *, model: str = "toy", shift: float = 0.0, ts: float | None = None, **extra: Any) -> dict[str, Any]:
    """One `POST /v1/events` event with a single instance and its prediction."""
    request = {"instances": [row(i, shift)]}
    response = {"predictions": [{"score": (i % 100) / 100}]}
    ev = {
        "id": f"ev-{i}",
        "model": model,
        "timestamp": ts if ts is not None else 1_700_000_000.0 + i,
        "latency_seconds": 0.002,
        "status": 200,
        "method": "POST",
        "path": f"/v1/models/{model}:predict",
        "request": {"body": json.dumps(request), "encoding": "utf-8", "truncated": False, "content_type": "application/json"},
        "response": {"body": json.dumps(response), "encoding": "utf-8", "truncated": False, "content_type": "application/json"},
        "headers": {"x-request-id": f"r{i}"},
    }
    ev.update(extra)
    return ev


class _LogTail(logging.Handler):
    """The last lines uvicorn logged: what says why a server did not start."""

    def __init__(self, lines: int = 20) -> None:
        super().__init__()
        self.lines: deque[str] = deque(maxlen=lines)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.getMessage()}")


@contextmanager
def serve_in_thread(app: Any, start_timeout: float = 60.0) -> Iterator[str]:
    """A real uvicorn server on 127.0.0.1 (port 0: the kernel picks) in a thread; yields its base URL.

    Waits for start-up until `start_timeout` (returning as soon as it is up); a server that does not
    start raises with the thread's exception and uvicorn's last log lines."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", loop="asyncio"))
    tail = _LogTail()
    uvicorn_log = logging.getLogger("uvicorn.error")  # after Config(): its dictConfig would drop the handler
    uvicorn_log.addHandler(tail)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            server.run()
        except BaseException as exc:  # SystemExit too: uvicorn exits when it cannot bind
            failures.append(exc)

    thread = threading.Thread(target=run, name="uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                why = f"exited with {failures[0]!r}" if failures else (
                    "exited" if not thread.is_alive() else f"not started after {start_timeout:g}s")
                log = "\n".join(tail.lines) or "(nothing logged)"
                raise RuntimeError(f"uvicorn did not start: {why}; its last log lines:\n{log}") from (
                    failures[0] if failures else None)
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        uvicorn_log.removeHandler(tail)


class MonitorProcess:
    """`driftwatch serve` as a real subprocess (for SIGKILL / SIGTERM tests)."""

    def __init__(self, config_path: Path, port: int, env: dict[str, str] | None = None) -> None:
        self.config_path = config_path
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = config_path.parent / "monitor.log"

    def start(self, timeout: float = 60.0) -> MonitorProcess:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "monitor.app.cli", "serve", "--config", str(self.config_path), "--port", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, env=self.env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"monitor exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"monitor not ready:\n{self.log.read_text()[-3000:]}")

    def signal(self, sig: int = signal.SIGKILL) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
