"""Capture and shipping, end to end through real processes: sidecar subprocess, model server,
and a collector standing in for the monitor's POST /v1/events (up, failing, or down)."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sidecar_servers import Collector, ModelServer, Sidecar, metric, wait_for

from monitor.app.demo.config import write_demo_config
from monitor.app.demo.processes import Supervisor
from monitor.sidecar.metrics import DROP_REASONS
from tests.ports import free_port

Start = Callable[..., Sidecar]


def predict(client: httpx.Client, request_id: str | None = None, body: bytes | None = None, path: str = "/v1/models/wine:predict") -> None:
    headers = {"x-request-id": request_id} if request_id else {}
    r = client.post(path, content=body or b'{"instances": [[1.0, 2.0]]}', headers={**headers, "content-type": "application/json"})
    assert r.status_code == 200  # inference never fails because of capture


def scrape(sidecar: Sidecar) -> str:
    return httpx.get(f"{sidecar.url}/driftwatch/metrics").text


def dropped(text: str, reason: str) -> float:
    return metric(text, "driftwatch_sidecar_events_dropped_total", model="wine", reason=reason)


def settled(sidecar: Sidecar) -> bool:
    """Nothing left to send: every captured event was acknowledged or dropped, and queue and spool are empty."""
    text = scrape(sidecar)
    done = metric(text, "driftwatch_sidecar_events_shipped_total", model="wine") + sum(dropped(text, r) for r in DROP_REASONS)
    return (metric(text, "driftwatch_sidecar_queue_events") == 0 and metric(text, "driftwatch_sidecar_spool_events") == 0
            and done == metric(text, "driftwatch_sidecar_events_captured_total", model="wine"))


def test_captures_inference_paths_only_with_ids_allowlisted_headers_and_truncation(
    model_server: ModelServer, collector: Collector, start_sidecar: Start
) -> None:
    sidecar = start_sidecar(
        model_server.url, collector.url, "--linger", "50ms", "--max-capture-bytes", "100",
        "--header-allow", "x-request-id", "--header-allow", "x-tenant", "--capture-path", r"^/v1/models/[^/]+:predict$",
        "--capture-path", r"^/v2/models/[^/]+(/versions/[^/]+)?/infer$", "--capture-path", r"^/custom/score$",
        "--token-env", "DW_TEST_TOKEN", env={"DW_TEST_TOKEN": "s3cret"},
    )
    big = json.dumps({"instances": [[float(i)] * 10 for i in range(20)]}).encode()
    with httpx.Client(base_url=sidecar.url) as c:
        c.post("/v1/models/wine:predict", content=b'{"instances":[[1]]}', headers={"ce-id": "ce-7", "x-request-id": "req-7", "x-tenant": "t1", "authorization": "Bearer user"})
        c.post("/v2/models/wine/versions/2/infer", content=b'{"inputs":[]}', headers={"x-request-id": "req-8"})
        c.post("/v1/models/wine:predict", content=big, headers={"x-request-id": "not valid!"})
        c.post("/custom/score?debug=1", content=b"\xff\xfe\x00binary")
        for path in ("/v1/models/wine", "/v2/health/ready", "/", "/echo", "/v1/models/wine:explain"):
            c.get(path)
        # Events ship in capture order: once this one arrives, any capture of the paths above would have.
        c.post("/custom/score", content=b"{}", headers={"x-request-id": "sentinel"})
    wait_for(lambda: any(e["id"] == "sentinel" for e in collector.events()))
    *events, sentinel = collector.events()
    assert sentinel["id"] == "sentinel"
    assert [e["path"] for e in events] == ["/v1/models/wine:predict", "/v2/models/wine/versions/2/infer", "/v1/models/wine:predict", "/custom/score"]
    first, second, third, fourth = events
    assert first["id"] == "ce-7" and first["headers"] == {"x-request-id": "req-7", "x-tenant": "t1"}
    assert first["request"] == {"body": '{"instances":[[1]]}', "encoding": "utf-8", "truncated": False, "content_type": None}
    assert json.loads(first["response"]["body"])["predictions"] == [[0.1, 0.9]]
    assert first["response"]["content_type"] == "application/json" and first["status"] == 200 and first["method"] == "POST"
    assert first["model"] == "wine" and 0 < first["latency_seconds"] < 5 and abs(first["timestamp"] - time.time()) < 60
    assert second["id"] == "req-8"
    # An invalid incoming id is replaced by a generated one (unique, valid on the wire).
    assert re.fullmatch(r"[0-9a-f]{16}-[0-9a-f]+", third["id"]) and third["id"] != fourth["id"]
    assert fourth["id"].split("-")[0] == third["id"].split("-")[0]
    assert third["request"]["truncated"] is True and third["request"]["body"] == big[:100].decode()
    assert fourth["request"]["encoding"] == "base64"
    assert collector.auth == ["Bearer s3cret"] * len(collector.auth)


def test_sampling_ratio(model_server: ModelServer, collector: Collector, start_sidecar: Start) -> None:
    sidecar = start_sidecar(model_server.url, collector.url, "--linger", "50ms", "--sample-ratio", "0.25")
    with httpx.Client(base_url=sidecar.url) as c:
        for _ in range(400):
            predict(c)
    # A capture is counted in the callback that observes the exchange's duration: once all 400 are observed,
    # the captured count is final.
    wait_for(lambda: metric(scrape(sidecar), "driftwatch_sidecar_request_duration_seconds_count", phase="upstream") == 400)
    captured = metric(scrape(sidecar), "driftwatch_sidecar_events_captured_total", model="wine")
    assert 60 <= captured <= 140  # Binomial(400, 0.25): mean 100, sd 8.7
    wait_for(lambda: len(collector.events()) == captured)


def test_batches_by_count_then_linger(model_server: ModelServer, collector: Collector, start_sidecar: Start) -> None:
    sidecar = start_sidecar(model_server.url, collector.url, "--batch-max", "10", "--linger", "3s")
    with httpx.Client(base_url=sidecar.url) as c:
        for i in range(35):
            predict(c, f"b-{i}")
    wait_for(lambda: len(collector.batches) >= 3, timeout=2.5)  # full batches go before the linger time
    assert [len(b) for b in collector.batches] == [10, 10, 10]
    wait_for(lambda: len(collector.events()) == 35, timeout=10)
    assert [len(b) for b in collector.batches] == [10, 10, 10, 5]
    assert [e["id"] for e in collector.events()] == [f"b-{i}" for i in range(35)]


def test_retries_with_backoff_on_503_then_delivers_once(model_server: ModelServer, collector: Collector, start_sidecar: Start) -> None:
    collector.script = [503, 503, 429, 503]
    sidecar = start_sidecar(model_server.url, collector.url, "--linger", "200ms")
    with httpx.Client(base_url=sidecar.url) as c:
        for i in range(5):
            predict(c, f"r-{i}")
    wait_for(lambda: len(collector.events()) == 5)
    assert [e["id"] for e in collector.events()] == [f"r-{i}" for i in range(5)]
    assert collector.attempts == 5
    text = scrape(sidecar)
    assert metric(text, "driftwatch_sidecar_events_shipped_total", model="wine") == 5
    assert sum(dropped(text, r) for r in ("spool_full", "rejected", "too_large", "shutdown")) == 0
    assert "ship_retry" in sidecar.log() and "instances" not in sidecar.log()  # payloads are never logged


def test_retry_after_from_the_monitor_is_honoured(model_server: ModelServer, collector: Collector, start_sidecar: Start) -> None:
    collector.script, collector.retry_after = [429], "2"
    sidecar = start_sidecar(model_server.url, collector.url, "--linger", "50ms")
    with httpx.Client(base_url=sidecar.url) as c:
        predict(c, "r-0")
    wait_for(lambda: len(collector.events()) == 1)
    # Without the header the first retry comes within 0.2 s (full-jitter backoff from 0.1 s).
    first, second = collector.attempt_times
    assert second - first >= 1.9
    assert "retry_after=2" in sidecar.log()


def test_permanent_4xx_is_dropped_as_rejected_not_retried(model_server: ModelServer, collector: Collector, start_sidecar: Start) -> None:
    collector.script = [422]
    sidecar = start_sidecar(model_server.url, collector.url, "--linger", "100ms")
    with httpx.Client(base_url=sidecar.url) as c:
        for i in range(3):
            predict(c, f"x-{i}")
        wait_for(lambda: dropped(scrape(sidecar), "rejected") == 3)
        predict(c, "after")
    wait_for(lambda: [e["id"] for e in collector.events()] == ["after"])
    assert collector.attempts == 2


def test_monitor_down_spools_and_replays_in_order_without_loss(model_server: ModelServer, start_sidecar: Start, tmp_path: Path) -> None:
    port = free_port()
    sidecar = start_sidecar(model_server.url, f"http://127.0.0.1:{port}", "--linger", "50ms", "--batch-max", "50")
    ids = [f"s-{i}" for i in range(300)]
    with httpx.Client(base_url=sidecar.url) as c:
        for rid in ids[:150]:
            predict(c, rid)
        wait_for(lambda: metric(scrape(sidecar), "driftwatch_sidecar_spool_events") == 150)
        assert metric(scrape(sidecar), "driftwatch_sidecar_spool_bytes") > 0
        assert httpx.get(f"{sidecar.url}/driftwatch/readyz").json()["shipping"]["monitor_reachable"] is False
        collector = Collector(port).start()
        try:
            for rid in ids[150:]:
                predict(c, rid)
            wait_for(lambda: len(collector.events()) >= 300, timeout=60)
            wait_for(lambda: settled(sidecar))  # so a duplicate would have arrived by now
            received = [e["id"] for e in collector.events()]
        finally:
            collector.stop()
    text = scrape(sidecar)
    assert received == ids  # in order, each once
    assert metric(text, "driftwatch_sidecar_events_shipped_total", model="wine") == 300
    assert sum(dropped(text, r) for r in ("spool_full", "rejected", "too_large", "shutdown", "corrupt", "spool_error")) == 0
    assert metric(text, "driftwatch_sidecar_spool_bytes") == 0 and not list((tmp_path / "spool").glob("*.seg"))


def test_spool_full_drops_are_counted_by_reason(model_server: ModelServer, start_sidecar: Start) -> None:
    port = free_port()
    sidecar = start_sidecar(model_server.url, f"http://127.0.0.1:{port}", "--linger", "50ms", "--spool-max-bytes", "16KiB")
    body = json.dumps({"instances": [[1.5] * 50]}).encode()
    with httpx.Client(base_url=sidecar.url) as c:
        for i in range(100):
            predict(c, f"f-{i}", body)
    text = scrape(sidecar)
    full = dropped(text, "spool_full")
    assert full > 0 and metric(text, "driftwatch_sidecar_spool_bytes") <= 16 * 1024
    collector = Collector(port).start()
    try:
        wait_for(lambda: len(collector.events()) + full >= 100, timeout=30)
        wait_for(lambda: settled(sidecar))  # so a duplicate would have arrived by now
        assert len(collector.events()) + full == 100  # sent = received + dropped
        assert dropped(scrape(sidecar), "spool_full") == full
    finally:
        collector.stop()


def test_sigterm_finishes_in_flight_and_flushes_queue_then_exits_0(model_server: ModelServer, collector: Collector, start_sidecar: Start) -> None:
    sidecar = start_sidecar(model_server.url, collector.url, "--linger", "30s")
    with httpx.Client(base_url=sidecar.url) as c:
        for i in range(20):
            predict(c, f"t-{i}")
    slow: dict[str, int] = {}
    tag = uuid.uuid4().hex
    thread = threading.Thread(target=lambda: slow.update(status=httpx.get(f"{sidecar.url}/slow", params={"s": 1, "tag": tag}, timeout=10).status_code))
    thread.start()
    wait_for(lambda: any(tag.encode() in r.target for r in model_server.requests))  # in flight at the model server
    started = time.monotonic()
    sidecar.signal(signal.SIGTERM)
    assert sidecar.wait(20) == 0
    thread.join(5)
    assert slow == {"status": 200}
    assert time.monotonic() - started < 10
    assert [e["id"] for e in collector.events()] == [f"t-{i}" for i in range(20)]


def test_sigterm_with_monitor_down_spools_and_next_start_replays(model_server: ModelServer, start_sidecar: Start, tmp_path: Path) -> None:
    port = free_port()
    spool_dir = tmp_path / "spool"
    first = start_sidecar(model_server.url, f"http://127.0.0.1:{port}", "--linger", "30s", spool_dir=spool_dir)
    with httpx.Client(base_url=first.url) as c:
        for i in range(25):
            predict(c, f"k-{i}")
    first.signal(signal.SIGTERM)
    assert first.wait(20) == 0
    assert list(spool_dir.glob("*.seg"))
    collector = Collector(port).start()
    try:
        second = start_sidecar(model_server.url, collector.url, "--linger", "50ms", spool_dir=spool_dir)
        wait_for(lambda: len(collector.events()) >= 25)
        assert [e["id"] for e in collector.events()] == [f"k-{i}" for i in range(25)]
        assert dropped(scrape(second), "shutdown") == 0
    finally:
        collector.stop()


def test_memory_stays_bounded_under_overload_with_monitor_down(model_server: ModelServer, start_sidecar: Start) -> None:
    sidecar = start_sidecar(
        model_server.url, f"http://127.0.0.1:{free_port()}", "--spool-max-bytes", "2MiB", "--queue-max", "1000"
    )
    body = json.dumps({"instances": [[0.123456789] * 400]}).encode()  # ~4.8 KB per request

    def burst(n: int) -> None:
        def worker(_: int) -> None:
            with httpx.Client(base_url=sidecar.url) as c:
                for _ in range(n // 8):
                    predict(c, None, body)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(worker, range(8)))

    burst(800)
    warm = sidecar.rss()
    for _ in range(3):
        burst(800)
    after = sidecar.rss()
    text = scrape(sidecar)
    assert dropped(text, "spool_full") > 1000  # the overload really overflowed the spool
    assert metric(text, "driftwatch_sidecar_spool_bytes") <= 2 * 1024 * 1024
    assert after - warm < 20 * 1024 * 1024, f"RSS grew from {warm / 2**20:.1f} to {after / 2**20:.1f} MiB"


# -- robustness of the shipping path (issue 3 review) -----------------------------------------------


def _frames(segment: Path) -> list[tuple[int, bytes]]:
    """(offset, payload) of each frame of a spool segment: [u32 length][u32 crc32][payload]."""
    data = segment.read_bytes()
    out, off = [], 0
    while off + 8 <= len(data):
        length = int.from_bytes(data[off : off + 4], "big")
        out.append((off, data[off + 8 : off + 8 + length]))
        off += 8 + length
    return out


def test_a_spool_write_failing_with_enospc_never_stops_shipping_and_shutdown_is_clean(
    model_server: ModelServer, start_sidecar: Start, tmp_path: Path
) -> None:
    """The cursor file cannot be written (a real ENOSPC from /dev/full): replay goes on, SIGTERM exits 0."""
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    (spool_dir / "cursor.tmp").symlink_to("/dev/full")  # every write to it fails with ENOSPC
    port = free_port()
    sidecar = start_sidecar(model_server.url, f"http://127.0.0.1:{port}", "--linger", "50ms", "--batch-max", "50", spool_dir=spool_dir)
    ids = [f"d-{i}" for i in range(155)]
    with httpx.Client(base_url=sidecar.url) as c:
        for rid in ids[:150]:
            predict(c, rid)
        wait_for(lambda: metric(scrape(sidecar), "driftwatch_sidecar_spool_events") == 150)
        collector = Collector(port).start()
        try:
            wait_for(lambda: len(collector.events()) >= 150, timeout=30)  # commits past the first batch
            for rid in ids[150:]:
                predict(c, rid)
            wait_for(lambda: settled(sidecar))
            received = [e["id"] for e in collector.events()]
            ready = httpx.get(f"{sidecar.url}/driftwatch/readyz").json()
        finally:
            collector.stop()
    assert received == ids
    assert ready["shipping"] == {"queue_events": 0, "spool_events": 0, "monitor_reachable": True}
    started = time.monotonic()
    sidecar.signal(signal.SIGTERM)
    assert sidecar.wait(20) == 0
    assert time.monotonic() - started < 5  # not the whole grace period
    log = sidecar.log()
    assert "spool_cursor_write_failed" in log and "ENOSPC" in log
    assert "Traceback" not in log and "cannot start" not in log


def spool_while_monitor_down(
    model_server: ModelServer, start_sidecar: Start, tmp_path: Path, prefix: str, n: int = 150
) -> tuple[Sidecar, int, Path, list[str]]:
    """A sidecar whose monitor (at the returned port) is down, with `n` events spooled in one segment."""
    port = free_port()
    spool_dir = tmp_path / "spool"
    sidecar = start_sidecar(model_server.url, f"http://127.0.0.1:{port}", "--linger", "50ms", "--batch-max", "50", spool_dir=spool_dir)
    ids = [f"{prefix}-{i}" for i in range(n)]
    with httpx.Client(base_url=sidecar.url, timeout=5) as c:
        for rid in ids:
            predict(c, rid)
    wait_for(lambda: metric(scrape(sidecar), "driftwatch_sidecar_spool_events") == n)
    (segment,) = spool_dir.glob("*.seg")
    return sidecar, port, segment, ids


def test_a_frame_corrupted_at_runtime_is_skipped_and_counted_and_inference_never_stalls(
    model_server: ModelServer, start_sidecar: Start, tmp_path: Path
) -> None:
    """Replay meets a bad CRC: the rest of that segment is lost (counted as corrupt), the loop never spins."""
    sidecar, port, segment, ids = spool_while_monitor_down(model_server, start_sidecar, tmp_path, "c")
    with httpx.Client(base_url=sidecar.url, timeout=5) as c:
        offset, payload = next((o, p) for o, p in _frames(segment) if json.loads(p)["id"] == "c-100")
        with open(segment, "r+b") as f:  # flip one byte of c-100's payload, as a bad disk would
            f.seek(offset + 8 + len(payload) // 2)
            f.write(bytes([payload[len(payload) // 2] ^ 0xFF]))
        collector = Collector(port).start()
        try:
            wait_for(lambda: dropped(scrape(sidecar), "corrupt") == 50, timeout=30)
            for i in range(5):  # the proxy still answers, and shipping goes on
                predict(c, f"after-{i}")
            wait_for(lambda: settled(sidecar))
            received = [e["id"] for e in collector.events()]
        finally:
            collector.stop()
    # c-100 and the frames after it in its segment cannot be trusted: 50 events, counted once.
    assert received == ids[:100] + [f"after-{i}" for i in range(5)]
    text = scrape(sidecar)
    assert dropped(text, "corrupt") == 50 and metric(text, "driftwatch_sidecar_events_shipped_total", model="wine") == 105
    assert "spool_corrupt_frame" in sidecar.log()


def test_a_split_spool_batch_counts_every_event_once_and_never_resends_delivered_parts(
    model_server: ModelServer, start_sidecar: Start, tmp_path: Path
) -> None:
    """413 splits a replayed batch; one part is delivered, one rejected (422), the last retried (503)."""
    port = free_port()
    spool_dir = tmp_path / "spool"
    first = start_sidecar(model_server.url, f"http://127.0.0.1:{port}", "--linger", "30s", spool_dir=spool_dir)
    ids = [f"p-{i}" for i in range(8)]
    with httpx.Client(base_url=first.url) as c:
        for rid in ids:
            predict(c, rid)
    first.signal(signal.SIGTERM)
    assert first.wait(20) == 0  # the 8 events are in the spool
    collector = Collector(port)
    # 8 -> 413 -> [0-3] -> 413 -> [0,1] 200, [2,3] 422 ; [4-7] 503, then 200 on the retry.
    collector.script = [413, 413, 200, 422, 503]
    collector.start()
    try:
        second = start_sidecar(model_server.url, collector.url, "--linger", "50ms", "--batch-max", "8", spool_dir=spool_dir)
        wait_for(lambda: collector.attempts >= 6 and metric(scrape(second), "driftwatch_sidecar_spool_events") == 0)
        time.sleep(0.5)  # a resend, if any, would arrive by now
        received = [e["id"] for e in collector.events()]
    finally:
        collector.stop()
    text = scrape(second)
    assert received == ["p-0", "p-1", "p-4", "p-5", "p-6", "p-7"]  # each once, in order
    assert metric(text, "driftwatch_sidecar_events_shipped_total", model="wine") == 6
    assert dropped(text, "rejected") == 2 and sum(dropped(text, r) for r in DROP_REASONS) == 2
    assert collector.attempts == 6


def test_hostile_request_fields_never_get_a_batch_refused_by_the_real_monitor(
    model_server: ModelServer, start_sidecar: Start, tmp_path: Path
) -> None:
    """One client's oversized Content-Type, path or header set, or an upstream's invalid status, must
    not make `driftwatch serve` refuse (422) the batch that carries other clients' events."""
    workdir = tmp_path / "monitor"
    workdir.mkdir()
    port = free_port()
    config_path, _ = write_demo_config(workdir, port)
    sup = Supervisor(workdir)
    try:
        monitor = sup.python("monitor", "monitor.app.cli", "serve", "--config", str(config_path), "--port", str(port))
        sup.wait_http(monitor, f"http://127.0.0.1:{port}/readyz")
        many = [f"x-h{i}" for i in range(70)]  # more allowlisted headers than an event may carry (64)
        sidecar = start_sidecar(
            model_server.url, f"http://127.0.0.1:{port}", "--linger", "200ms",
            "--capture-path", r"^/v1/models/[^/]+:predict$", "--capture-path", r"^/status/",
            *(arg for name in many for arg in ("--header-allow", name)),
        )
        long_path = "/v1/models/" + "w" * 3000 + ":predict"
        with httpx.Client(base_url=sidecar.url) as c:
            for i in range(10):
                predict(c, f"n-{i}")
            r = c.post("/v1/models/wine:predict", content=b"{}", headers={"content-type": "application/json; x=" + "a" * 300})
            assert r.status_code == 200
            predict(c, None, path=long_path)
            assert c.post("/v1/models/wine:predict", content=b"{}", headers={name: "v" * 100 for name in many}).status_code == 200
            assert c.get("/status/999").status_code == 999  # forwarded as the upstream sent it
            predict(c, "a" * 200)  # not a valid id on the wire: a generated one replaces it
            for i in range(10, 20):
                predict(c, f"n-{i}")
        wait_for(lambda: settled(sidecar), timeout=30)
        text = scrape(sidecar)
        assert metric(text, "driftwatch_sidecar_events_shipped_total", model="wine") == 25
        assert sum(dropped(text, r) for r in DROP_REASONS) == 0
        with sqlite3.connect(f"file:{workdir / 'driftwatch.db'}?mode=ro", uri=True) as db:
            rows = dict(db.execute("SELECT id, reason FROM events WHERE model = 'wine'").fetchall())
        assert len(rows) == 25 and {f"n-{i}" for i in range(20)} <= rows.keys()
        assert sum(reason == "upstream_error" for reason in rows.values()) == 1  # the 999, recorded as a failed call
    finally:
        sup.stop_all()


def test_a_spool_segment_that_cannot_be_read_is_retried_until_it_can(
    model_server: ModelServer, start_sidecar: Start, tmp_path: Path
) -> None:
    """A read error (EISDIR here, like EMFILE or EIO) loses nothing: the shipper logs, backs off and
    reads the segment again once it can; the proxy keeps serving meanwhile."""
    sidecar, port, segment, ids = spool_while_monitor_down(model_server, start_sidecar, tmp_path, "e")
    with httpx.Client(base_url=sidecar.url, timeout=5) as c:
        aside = segment.rename(tmp_path / "aside")  # the sidecar's open fd follows the file
        segment.mkdir()
        collector = Collector(port).start()
        try:
            wait_for(lambda: "spool_io_failed error=EISDIR" in sidecar.log(), timeout=30)
            predict(c, "e-150")  # still serving, and spooled behind the others
            before = [e["id"] for e in collector.events()]  # the batch in flight before the error, if any
            assert before == ids[: len(before)] and len(before) < 150
            segment.rmdir()
            aside.rename(segment)
            wait_for(lambda: settled(sidecar), timeout=30)
            received = [e["id"] for e in collector.events()]
        finally:
            collector.stop()
    assert received == [*ids, "e-150"]
    assert sum(dropped(scrape(sidecar), r) for r in DROP_REASONS) == 0
    sidecar.signal(signal.SIGTERM)
    assert sidecar.wait(20) == 0
