"""Real processes for end-to-end tests: the monitor, Prometheus and Alertmanager on 127.0.0.1.

Each process runs in its own session on a free port, logs to a file in the test's tmp dir, and is
stopped by its PID (SIGTERM, then SIGKILL to its own process group) however the test ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

T = TypeVar("T")
PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.2) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class Service:
    """One child process; `stop()` is idempotent and safe to call from a finalizer."""

    def __init__(self, name: str, argv: Sequence[str], workdir: Path, ready_url: str, env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.ready_url = ready_url
        self.log_path = workdir / f"{name}.log"
        self._env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> Service:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=self._env)
        return self

    def wait_ready(self, timeout: float = 30.0) -> Service:
        try:
            wait_for(f"{self.name} to be ready at {self.ready_url}", self._ready, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; its log ends:\n{self.log_tail()}") from None
        return self

    def start(self, timeout: float = 30.0) -> Service:
        return self.spawn().wait_ready(timeout)

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            return httpx.get(self.ready_url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only what we started
            self.proc.wait(timeout=10)


def monitor(config_path: Path, port: int, workdir: Path) -> Service:
    argv = [sys.executable, "-m", "monitor.app.cli", "serve", "--config", str(config_path), "--host", "127.0.0.1", "--port", str(port)]
    return Service("monitor", argv, workdir, f"http://127.0.0.1:{port}/readyz")


def prometheus(*, port: int, monitor_port: int, alertmanager_port: int, rule_files: Sequence[Path], job: str, workdir: Path) -> Service:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(p) for p in rule_files],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]},
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{monitor_port}"]}]}],
    }
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=True))
    argv = [
        PROMETHEUS,
        f"--config.file={path}",
        f"--storage.tsdb.path={workdir / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    return Service("prometheus", argv, workdir, f"http://127.0.0.1:{port}/-/ready")


def alertmanager(*, port: int, webhook_url: str, workdir: Path, inhibit_rules: list[dict[str, Any]] | None = None) -> Service:
    """Debian's Alertmanager routing every alert to `webhook_url`, with `inhibit_rules` if given."""
    config: dict[str, Any] = {
        "route": {
            "receiver": "driftwatch",
            "group_by": ["alertname", "model"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [{"name": "driftwatch", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}],
    }
    if inhibit_rules:
        config["inhibit_rules"] = inhibit_rules
    path = workdir / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=True))
    argv = [
        ALERTMANAGER,
        f"--config.file={path}",
        f"--storage.path={workdir / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    return Service("alertmanager", argv, workdir, f"http://127.0.0.1:{port}/-/ready")


def prometheus_alerts(base_url: str, alertname: str) -> list[dict[str, Any]]:
    """Pending and firing alerts named `alertname`, as Prometheus' rule evaluation sees them."""
    body = httpx.get(f"{base_url}/api/v1/alerts", timeout=5).json()
    return [a for a in body["data"]["alerts"] if a["labels"].get("alertname") == alertname]


def prometheus_query(base_url: str, expr: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{base_url}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])
