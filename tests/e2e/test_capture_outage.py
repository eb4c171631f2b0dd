"""The monitor is down for 30 s while traffic flows through the sidecar (issue 3), on real parts.

The demo's toy wine model server, `driftwatch sidecar` in front of it and `driftwatch serve` (the
demo's wine config, a fresh SQLite store) run as real processes on 127.0.0.1. A client sends
inference requests through the sidecar without pause while the monitor is stopped (SIGTERM, or
SIGKILL) for 30 s and restarted on the same port and store. Inference never notices; the sidecar
spools what it cannot ship and replays it; every request sent is stored exactly once.
"""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from promstack import wait_for

from monitor.app.demo import wine
from monitor.app.demo.config import write_demo_config
from monitor.app.demo.processes import Child, Supervisor
from tests.ports import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

OUTAGE_SECONDS = 30.0  # the number
RATE = 40.0  # inference requests per second, one captured event each
MODEL = "wine"


@dataclass
class Stack:
    sup: Supervisor
    workdir: Path
    config_path: Path
    monitor_port: int
    sidecar_url: str
    monitor: Child

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.monitor_port}"

    @property
    def db(self) -> Path:
        return self.workdir / "driftwatch.db"

    def start_monitor(self, name: str) -> Child:
        self.monitor = self.sup.python(
            name, "monitor.app.cli", "serve", "--config", str(self.config_path), "--port", str(self.monitor_port)
        )
        self.sup.wait_http(self.monitor, f"{self.monitor_url}/readyz")
        return self.monitor


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """Model server, monitor and sidecar; every process is stopped by its group however the test ends."""
    sup = Supervisor(tmp_path)
    try:
        model_port, monitor_port, sidecar_port = free_port(), free_port(), free_port()
        config_path, _ = write_demo_config(tmp_path, monitor_port)
        model = sup.python("model-server", "monitor.app.demo.model_server", "--port", str(model_port))
        sidecar = sup.python(
            "sidecar", "monitor.app.cli", "sidecar",
            "--upstream", f"http://127.0.0.1:{model_port}", "--monitor", f"http://127.0.0.1:{monitor_port}",
            "--model", MODEL, "--host", "127.0.0.1", "--port", str(sidecar_port),
            "--spool-dir", str(tmp_path / "spool"), "--linger", "100ms",
        )
        s = Stack(sup, tmp_path, config_path, monitor_port, f"http://127.0.0.1:{sidecar_port}", monitor=None)  # type: ignore[arg-type]
        s.start_monitor("monitor")
        sup.wait_http(model, f"http://127.0.0.1:{model_port}/v1/models/{MODEL}")
        sup.wait_http(sidecar, f"{s.sidecar_url}/driftwatch/readyz")
        yield s
    finally:
        sup.stop_all()


@dataclass
class Client:
    """Sends one inference request at a time through the sidecar at RATE/s until stopped."""

    url: str
    sent: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        rows = wine.traffic(4000, drifted=False, seed=3).tolist()
        started = time.monotonic()
        with httpx.Client(base_url=self.url, timeout=10.0) as http:
            for i, row in enumerate(rows):
                if self.stop.is_set():
                    return
                request_id = f"outage-{i}"
                try:
                    r = http.post(f"/v1/models/{MODEL}:predict", json={"instances": [row]}, headers={"x-request-id": request_id})
                    if r.status_code != 200 or "predictions" not in r.json():
                        self.errors.append(f"{request_id}: {r.status_code} {r.text[:200]}")
                except httpx.HTTPError as exc:
                    self.errors.append(f"{request_id}: {exc!r}")
                self.sent.append(request_id)
                time.sleep(max(0.0, started + (i + 1) / RATE - time.monotonic()))
        self.errors.append("the client ran out of rows before it was stopped")


def sidecar_metrics(url: str) -> dict[str, float]:
    """The sidecar's own gauges and counters, dropped events summed over reasons."""
    text = httpx.get(f"{url}/driftwatch/metrics", timeout=5).text
    out = {"dropped": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "driftwatch_sidecar_events_dropped_total":
                out["dropped"] += sample.value
            elif sample.name in ("driftwatch_sidecar_spool_events", "driftwatch_sidecar_spool_bytes", "driftwatch_sidecar_queue_events"):
                out[sample.name.removeprefix("driftwatch_sidecar_")] = sample.value
    return out


def stored(db: Path) -> list[tuple[str, str | None]]:
    """(id, rejection reason) of every stored event of the model, of any version (the toy server names
    its version in `x-model-version`: its events sit on the track `wine@1`), read like any other SQLite reader."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return list(conn.execute("SELECT id, reason FROM events WHERE model = ? OR model LIKE ?", (MODEL, f"{MODEL}@%")))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_monitor_down_30s_loses_no_inference_and_no_event(stack: Stack, sig: signal.Signals) -> None:
    client = Client(stack.sidecar_url)
    thread = threading.Thread(target=client.run, name="inference-client", daemon=True)
    thread.start()
    try:
        wait_for("events stored before the outage", lambda: len(stored(stack.db)) >= 40, timeout=30)

        stack.monitor.proc.send_signal(sig)
        code = stack.monitor.proc.wait(timeout=30)
        assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL), stack.monitor.tail()
        sent_at_stop = len(client.sent)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{stack.monitor_url}/readyz", timeout=2)

        peak = {"spool_events": 0.0, "spool_bytes": 0.0}
        down_until = time.monotonic() + OUTAGE_SECONDS
        while time.monotonic() < down_until:
            now = sidecar_metrics(stack.sidecar_url)
            peak = {k: max(v, now[k]) for k, v in peak.items()}
            time.sleep(0.5)
        sent_during_outage = len(client.sent) - sent_at_stop
        assert sent_during_outage >= 0.8 * OUTAGE_SECONDS * RATE, "traffic did not keep flowing during the outage"
        assert peak["spool_events"] >= 0.5 * sent_during_outage, peak
        assert peak["spool_bytes"] > 0, peak

        stack.start_monitor("monitor-restarted")
        time.sleep(3.0)  # traffic keeps flowing while the spool replays
    finally:
        client.stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()

    def drained() -> bool:
        m = sidecar_metrics(stack.sidecar_url)
        return m["spool_events"] == 0 and m["queue_events"] == 0 and len(stored(stack.db)) >= len(client.sent)

    wait_for("the spool to replay into the restarted monitor", drained, timeout=90)
    final = sidecar_metrics(stack.sidecar_url)
    rows = stored(stack.db)
    ids = [event_id for event_id, _ in rows]

    assert client.errors == [], client.errors[:5]
    assert final["spool_events"] == 0, final
    assert final["spool_bytes"] == 0, final
    assert not [f for f in (stack.workdir / "spool").iterdir() if f.is_file() and f.stat().st_size], "spool left on disk"
    assert final["dropped"] == 0, final
    assert len(client.sent) == len(rows) + final["dropped"], (len(client.sent), len(rows), final)
    assert len(ids) == len(set(ids)), "an event was stored twice"
    assert set(ids) == set(client.sent), "stored events are not exactly the requests sent"
    assert all(reason is None for _, reason in rows), {r for _, r in rows} - {None}
