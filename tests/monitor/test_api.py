"""The HTTP API on a real uvicorn server: precise 4xx for hostile input, auth, CloudEvents, views."""

from __future__ import annotations

import itertools
import json
import logging
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from ingest_helpers import RETRAIN_DRY_RUN, event, load, serve_in_thread

from monitor.app.api import create_app
from monitor.core.store import EventStore

TOKEN = "s3cret-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Path]]:
    tmp = tmp_path_factory.mktemp("api")
    mp = pytest.MonkeyPatch()
    mp.setenv("DW_TEST_TOKEN", TOKEN)
    cfg = load(tmp, server={"auth_token_env": "DW_TEST_TOKEN", "max_body_bytes": "64KiB"})
    with serve_in_thread(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=30, headers=AUTH) as client:
        yield client, cfg.server.store.path  # every request carries the token unless a test overrides it
    mp.undo()


def post_events(client: httpx.Client, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/v1/events", content=content, headers={"content-type": "application/json", **AUTH, **(headers or {})})


def assert_error(r: httpx.Response, status: int, error: str) -> Any:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == error and set(body) == {"error", "detail"}
    return body["detail"]


_markers = itertools.count(10_000)


def still_serving(client: httpx.Client) -> None:
    r = post_events(client, {"events": [event(next(_markers))]})
    assert r.status_code == 200 and r.json()["accepted"] == 1


@pytest.mark.parametrize(
    ("body", "headers", "status", "error"),
    [
        (b'{"events": [', {}, 400, "invalid_json"),
        (b"[" * 10_000 + b"]" * 10_000, {}, 400, "invalid_json"),  # deep nesting
        (b'{"events": [{"id": "a", "model": "toy", "timestamp": NaN, "request": {"body": "{}"}}]}', {}, 422, "validation_failed"),
        (json.dumps({"events": "nope"}).encode(), {}, 422, "validation_failed"),
        (json.dumps({"events": [{**event(1), "timestamp": "yesterday"}]}).encode(), {}, 422, "validation_failed"),
        (json.dumps({"events": [{**event(1), "timestamp": 1e400}]}).encode(), {}, 422, "validation_failed"),
        (json.dumps({"events": [{**event(1), "id": "../../etc"}]}).encode(), {}, 422, "validation_failed"),
        (json.dumps({"events": [event(1)]}).encode(), {"content-type": "text/plain"}, 415, "unsupported_media_type"),
        (b"{}", {"authorization": "Bearer wrong"}, 401, "unauthorized"),
        (b"{}", {"authorization": ""}, 401, "unauthorized"),
        (b"x" * (65 * 1024), {}, 413, "too_large"),
        (b'{"events": [{"id": "\xff", "model": "toy"}]}', {}, 400, "invalid_json"),  # invalid UTF-8 in a string
    ],
)
def test_hostile_input_gets_a_precise_4xx_and_the_server_keeps_serving(
    server: tuple[httpx.Client, Path], body: bytes, headers: dict[str, str], status: int, error: str
) -> None:
    client, _ = server
    r = post_events(client, body, headers)
    assert_error(r, status, error)
    if status == 401:
        assert r.headers["www-authenticate"].startswith("Bearer")
    still_serving(client)


def test_validation_errors_name_the_field_and_never_echo_payloads(server: tuple[httpx.Client, Path]) -> None:
    client, _ = server
    bad = {**event(2), "status": "two hundred", "request": {"body": 42, "encoding": "rot13"}}
    detail = assert_error(post_events(client, {"events": [event(1), bad]}), 422, "validation_failed")
    locs = {d["loc"] for d in detail}
    assert {"events[1].status", "events[1].request.body", "events[1].request.encoding"} <= locs
    assert "two hundred" not in json.dumps(detail)


def test_chunked_body_over_the_limit_is_refused_while_streaming(server: tuple[httpx.Client, Path]) -> None:
    client, _ = server

    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b" " * 4096

    r = client.post("/v1/events", content=chunks(), headers={"content-type": "application/json", **AUTH})
    assert_error(r, 413, "too_large")
    still_serving(client)


def _partial_post(url: str, path: str, declared: int, sent: bytes, ctype: str = "application/json") -> socket.socket:
    """A raw POST declaring `declared` body bytes and sending only `sent` (a stalled or vanished client)."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    head = (f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: {ctype}\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Length: {declared}\r\n\r\n")
    sock.sendall(head.encode() + sent)
    return sock


def _read_response(sock: socket.socket) -> tuple[str, bytes]:
    """One whole HTTP/1.1 response (head and Content-Length body), however the bytes arrive."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response head: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        body += chunk
    return head.decode(), body


@pytest.mark.parametrize(("path", "ctype"), [("/v1/events", "application/json"),
                                             ("/v1/cloudevents", "application/cloudevents+json")])
def test_a_stalled_body_is_answered_408_instead_of_holding_the_connection(
        server: tuple[httpx.Client, Path], monkeypatch: pytest.MonkeyPatch, path: str, ctype: str) -> None:
    client, _ = server
    monkeypatch.setattr("monitor.core.errors.BODY_IDLE_TIMEOUT", 0.5)
    with _partial_post(str(client.base_url), path, 100, b'{"events": []}', ctype) as sock:
        head, body = _read_response(sock)
    assert head.startswith("HTTP/1.1 408"), head
    assert json.loads(body)["error"] == "request_timeout"
    still_serving(client)


def test_a_client_leaving_mid_body_is_not_logged_as_a_server_error(
        server: tuple[httpx.Client, Path], caplog: pytest.LogCaptureFixture) -> None:
    client, _ = server
    with caplog.at_level(logging.WARNING):
        _partial_post(str(client.base_url), "/v1/events", 100, b'{"events": [').close()
        still_serving(client)
        time.sleep(0.3)  # the server notices the disconnect on its next read
        still_serving(client)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_mixed_batch_counts_each_event_and_is_idempotent(server: tuple[httpx.Client, Path]) -> None:
    client, path = server
    batch = {"events": [
        event(30_000),
        event(30_001, model="unknown-model"),
        event(30_002, request={"body": "[[NaN", "encoding": "utf-8"}),
        event(30_003, request={"body": json.dumps({"instances": [[1, 2, 3, "red"]]}), "truncated": True}),
        event(30_004, request={"body": json.dumps({"instances": [[1, 2]]})}),
        event(30_005, request={"body": json.dumps({"instances": [[float("inf"), 2, 3, "red"]]}).replace("inf", "Infinity")}),
    ]}
    first = post_events(client, batch).json()
    assert first == {"accepted": 2, "duplicates": 0, "rejected": 4,
                     "reasons": {"unknown_model": 1, "invalid_json": 1, "truncated": 1, "schema_mismatch": 1}}
    again = post_events(client, batch).json()
    assert again == {"accepted": 0, "duplicates": 5, "rejected": 1, "reasons": {"unknown_model": 1}}
    store = EventStore(path)
    try:
        ids = [e.id for e in store.accepted_since("toy", 0)]
        assert ids.count("ev-30000") == 1 and "ev-30005" in ids
    finally:
        store.close()


def test_numbers_beyond_a_double_are_data_quality_not_errors(server: tuple[httpx.Client, Path]) -> None:
    """A 400-digit integer once made ingest answer 500, which a sidecar retries for ever."""
    client, _ = server
    huge = "1" + "0" * 400
    body = (b'{"events": [%s]}' % json.dumps(event(50_000)).encode()).replace(b"[[", b"[[%s, " % huge.encode(), 1)
    r = post_events(client, body)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 1, "duplicates": 0, "rejected": 0, "reasons": {}}
    still_serving(client)


def test_empty_batch_is_fine(server: tuple[httpx.Client, Path]) -> None:
    client, _ = server
    assert post_events(client, {"events": []}).json() == {"accepted": 0, "duplicates": 0, "rejected": 0, "reasons": {}}


def kserve_headers(kind: str, ce_id: str, model: str = "toy", **over: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Ce-Specversion": "1.0",
        "Ce-Id": ce_id,
        "Ce-Type": f"org.kubeflow.serving.inference.{kind}",
        "Ce-Source": "http://localhost:9081/",
        "Ce-Time": "2025-11-22T11:57:01.123456789Z",
        "Ce-Inferenceservicename": model,
        "Ce-Namespace": "ml",
        "Ce-Component": "predictor",
        "Ce-Endpoint": "default",
        "Ce-Metadata": json.dumps({"X-Request-Id": [ce_id]}),
        **over,
    }


def test_cloudevents_as_kserve_sends_them_concurrently_in_both_orders(server: tuple[httpx.Client, Path]) -> None:
    client, path = server
    req = json.dumps({"instances": [[0.2, 5.1, 4.0, "blue"]]})
    resp = json.dumps({"predictions": [{"score": 0.3}]})
    sends = []
    for i in range(40):
        halves = [("request", req), ("response", resp)]
        sends += [(f"ce-{i}", k, b) for k, b in (halves if i % 2 else halves[::-1])]

    def send(item: tuple[str, str, str]) -> int:
        ce_id, kind, body = item
        return client.post("/v1/cloudevents", content=body, headers=kserve_headers(kind, ce_id)).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(send, sends)) == {200}
    store = EventStore(path)
    try:
        joined = [e for e in store.accepted_since("toy", 0) if e.id.startswith("ce-")]
        assert len(joined) == 40 and all(json.loads(e.raw)["response"] is not None for e in joined)
    finally:
        store.close()


def test_cloudevents_structured_and_spec_02(server: tuple[httpx.Client, Path]) -> None:
    client, _ = server
    envelope = {"specversion": "1.0", "id": "st-1", "type": "org.kubeflow.serving.inference.request", "source": "x",
                "inferenceservicename": "toy", "datacontenttype": "application/json", "data": {"instances": [[1, 2, 3, "red"]]}}
    r = client.post("/v1/cloudevents", content=json.dumps(envelope), headers={"content-type": "application/cloudevents+json"})
    assert r.status_code == 200 and r.json()["status"] == "pending"
    old = kserve_headers("response", "st-1", **{"Ce-Specversion": "0.2"})
    old["Ce-Inferenceservice"] = old.pop("Ce-Inferenceservicename")
    r = client.post("/v1/cloudevents", content=json.dumps({"predictions": [{"score": 1}]}), headers=old)
    assert r.json() == {"status": "joined", "rejected": None}


def test_cloudevents_errors(server: tuple[httpx.Client, Path]) -> None:
    client, _ = server
    assert_error(client.post("/v1/cloudevents", content=b"{}", headers=kserve_headers("request", "u1", model="ghost")), 404, "unknown_model")
    assert_error(client.post("/v1/cloudevents", content=b"{}", headers={"content-type": "application/json"}), 415, "unsupported_media_type")
    assert_error(client.post("/v1/cloudevents", content=b"{}", headers=kserve_headers("other", "u2")), 400, "unsupported_type")
    assert_error(client.post("/v1/cloudevents", content=b"{", headers={"content-type": "application/cloudevents+json"}), 400, "invalid_json")
    assert_error(client.post("/v1/cloudevents", content=b"x" * (65 * 1024), headers=kserve_headers("request", "u3")), 413, "too_large")
    structured = {"specversion": "1.0", "id": "st-9", "type": "org.kubeflow.serving.inference.request", "source": "x",
                  "inferenceservicename": "toy", "data": {"instances": [[1, 2, 3, "red"]]}}
    hostile = [
        json.dumps({**structured, "specversion": [1]}),  # unhashable where a string belongs
        json.dumps({**structured, "specversion": {}}),
        json.dumps({**structured, "data": "\ud800"}),  # json escapes the lone surrogate: `"\\ud800"`
        json.dumps({**structured, "namespace": "a\ud800"}),  # an attribute kept with the half until it expires
    ]
    for text in hostile:
        r = client.post("/v1/cloudevents", content=text, headers={"content-type": "application/cloudevents+json"})
        assert_error(r, 400, "invalid_cloudevent")


def test_views_health_and_metrics(server: tuple[httpx.Client, Path]) -> None:
    client, _ = server
    post_events(client, {"events": [event(i) for i in range(40_000, 40_120)]})
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    for probe in ("/healthz", "/readyz"):  # load balancers and some probes use HEAD
        head = client.head(probe)
        assert head.status_code == 200 and head.content == b""
    models = client.get("/v1/models").json()["models"]
    assert [m["model"] for m in models] == ["toy", "plain"]
    assert_error(client.get("/v1/models/ghost/drift"), 404, "unknown_model")
    assert_error(client.get("/no/such/path"), 404, "not_found")
    assert_error(client.put("/v1/events"), 405, "method_not_allowed")
    deadline = time.monotonic() + 20
    # 120 more records pass a step boundary: the loop evaluates a full window of the last 100.
    while ((drift := client.get("/v1/models/toy/drift").json())["window"] or {}).get("n_records") != 100:
        assert time.monotonic() < deadline, drift["window"]
        time.sleep(0.05)
    assert drift["result"]["dataset"]["n_current"] == 100 and drift["window_records"] == 100
    history = client.get("/v1/models/toy/evaluations").json()["evaluations"]
    assert history[-1]["n_records"] == 100 and history[-1]["result"]["dataset"]["n_current"] == 100
    assert [e["window_id"] for e in history] == sorted(e["window_id"] for e in history)
    assert_error(client.get("/v1/models/ghost/evaluations"), 404, "unknown_model")
    assert_error(client.get("/v1/models/toy/evaluations?limit=0"), 422, "validation_failed")
    assert_error(client.get("/v1/models/ghost/retraining"), 404, "unknown_model")
    metrics = client.get("/metrics").text
    assert 'driftwatch_events_ingested_total{model="toy"}' in metrics
    assert 'driftwatch_events_rejected_total{model="toy",reason="truncated"}' in metrics
    assert 'driftwatch_window_records{model="toy"} 100.0' in metrics


def test_readyz_reports_a_missing_reference(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    (tmp_path / "reference.csv").unlink()
    with serve_in_thread(create_app(cfg)) as url:
        r = httpx.get(f"{url}/readyz")
        detail = assert_error(r, 503, "not_ready")
        assert detail["store_open"] and set(detail["reference_errors"]) == {"toy", "plain"}
        assert httpx.post(f"{url}/v1/events", json={"events": [event(1)]}).json()["accepted"] == 1


def test_retraining_is_wired_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Evaluations reach the controller (its decisions are exported) and the Alertmanager webhook is mounted."""
    from retrain.controller import RetrainController

    monkeypatch.setenv("DW_TEST_TOKEN", TOKEN)
    cfg = load(tmp_path, server={"auth_token_env": "DW_TEST_TOKEN"}, retrain=RETRAIN_DRY_RUN)
    cfg.server.store.path.parent.mkdir(parents=True)
    controller = RetrainController(cfg, cfg.server.store.path)
    try:
        with serve_in_thread(create_app(cfg, controller=controller)) as url, httpx.Client(base_url=url, timeout=30) as client:
            assert post_events(client, {"events": [event(i, shift=5.0) for i in range(100)]}).json()["accepted"] == 100
            deadline = time.monotonic() + 20
            while "driftwatch_retrain_decisions_total{" not in (metrics := client.get("/metrics").text):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert any(line.startswith("driftwatch_retrain_decisions_total{") and 'model="toy"' in line for line in metrics.splitlines())
            r = client.post("/v1/alertmanager", json={"version": "4", "alerts": []})
            assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    finally:
        controller.stop()
