"""The sidecar as a real process between a real client and a real (h11) model server."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
from collections.abc import Callable, Iterator

import httpx
import pytest
from sidecar_servers import (
    Collector,
    ModelServer,
    ScriptedUpstream,
    Sidecar,
    iter_chunks,
    metric,
    raw_exchange,
    read_response,
    wait_for,
)

from tests.ports import free_port


@pytest.fixture(scope="module")
def sidecar(model_server: ModelServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    """One process for the whole module: hostile input must not disturb later requests either."""
    collector = Collector().start()
    process = Sidecar(model_server.url, collector.url, tmp_path_factory.mktemp("proxy") / "spool", "--upstream-timeout", "2s").start()
    yield process
    process.stop()
    collector.stop()


def test_forwards_method_target_headers_and_body_byte_exact(sidecar: Sidecar) -> None:
    body = bytes(range(256)) * 40
    headers = [("X-Mixed-Case", "Value  with  spaces"), ("x-dup", "1"), ("x-dup", "2"), ("Content-Type", "application/x-thing")]
    with httpx.Client(base_url=sidecar.url) as client:
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            content = body if method in ("POST", "PUT", "PATCH") else None
            r = client.request(method, "/echo/a%20b/c?x=1&y=%2F&z=", content=content, headers=headers)
            assert r.status_code == 200
            echo = r.json()
            assert echo["method"] == method
            assert echo["target"] == "/echo/a%20b/c?x=1&y=%2F&z="
            sent = [h for h in echo["headers"] if h[0].lower() not in ("host", "accept", "accept-encoding", "user-agent", "content-length")]
            assert sent == [list(h) for h in headers]
            assert echo["body_len"] == (len(body) if content else 0)
            if content:
                assert echo["body_sha256"] == hashlib.sha256(body).hexdigest()
                assert ["content-length", str(len(body))] in [[n.lower(), v] for n, v in echo["headers"]]
            assert ["Host", f"127.0.0.1:{sidecar.port}"] in echo["headers"]  # the client's Host, untouched


def test_hop_by_hop_request_headers_are_not_forwarded(sidecar: Sidecar) -> None:
    raw = (
        b"GET /echo HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=9\r\n"
        b"TE: trailers\r\nX-End: kept\r\nConnection: close\r\n\r\n"
    )
    reply = raw_exchange(sidecar.port, raw)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")  # the upstream's (empty) reason phrase, as sent
    names = [h[0].lower() for h in json.loads(body)["headers"]]
    assert names == ["host", "x-end"]


def test_connection_option_naming_content_length_cannot_smuggle_a_request(sidecar: Sidecar, model_server: ModelServer) -> None:
    """`Connection: Content-Length` once dropped the length while the body was still forwarded: the
    model server read the body as a second request and its answer went to the next client."""
    inner = b"GET /slow?s=1&smuggled=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", sidecar.port), timeout=10) as attacker:
        attacker.sendall(
            b"POST /echo/attacker HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Content-Length\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(inner), inner)
        )
        _, body = read_response(attacker)
        assert json.loads(body)["body_len"] == len(inner)  # the body reached the model as a body
        with socket.create_connection(("127.0.0.1", sidecar.port), timeout=10) as victim:
            victim.sendall(b"GET /echo/victim HTTP/1.1\r\nHost: x\r\n\r\n")
            _, body = read_response(victim)
    assert json.loads(body)["target"] == "/echo/victim"
    assert not [r for r in model_server.requests if b"smuggled" in r.target]


def echoed(port: int, raw: bytes) -> dict:
    """What the echo upstream saw of `raw` sent through the sidecar, which must have answered 200."""
    head, _, body = raw_exchange(port, raw).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    return json.loads(body)


def test_connection_options_never_remove_framing_or_host(sidecar: Sidecar) -> None:
    raw = (
        b"POST /echo HTTP/1.1\r\nHost: h\r\nConnection: Host, Content-Length, Transfer-Encoding, X-Hop\r\n"
        b"X-Hop: 1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
    )
    echo = echoed(sidecar.port, raw)
    assert echo["headers"] == [["Host", "h"], ["Content-Length", "3"]]
    assert echo["body_len"] == 3


def test_request_trailers_never_become_header_fields(sidecar: Sidecar) -> None:
    """Trailers are dropped (documented); a whole chunked request in one read used to have them
    promoted into the forwarded head, a second Host included."""
    raw = (
        b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"3;ext=1\r\nabc\r\n0\r\nX-Trailer: y\r\nHost: evil\r\n\r\n"
    )
    echo = echoed(sidecar.port, raw)
    assert echo["headers"] == [["Host", "h"], ["Transfer-Encoding", "chunked"]]
    assert echo["body_sha256"] == hashlib.sha256(b"abc").hexdigest()


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"GET /echo/two-hosts HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "more than one Host"),
        (b"GET /echo/no-host HTTP/1.1\r\n\r\n", "without a Host"),
        (b"POST /echo/http10-te HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "HTTP/1.0"),
        # A good request first: the 400 follows its answer, in order.
        (b"GET /echo/first HTTP/1.1\r\nHost: h\r\n\r\nGET /echo/pipelined-two-hosts HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "more than one Host"),
    ],
)
def test_ambiguous_host_or_framing_is_400_and_never_reaches_the_model(
    sidecar: Sidecar, model_server: ModelServer, raw: bytes, detail: str
) -> None:
    reply = raw_exchange(sidecar.port, raw)
    start = reply.find(b"HTTP/1.1 400 ")
    assert start >= 0, reply[:300]
    head, _, body = reply[start:].partition(b"\r\n\r\n")
    assert b"Connection: close" in head
    answer = json.loads(body)
    assert answer["error"] == "bad_request" and detail in answer["detail"]
    if b"/echo/first" in raw:
        assert reply.startswith(b"HTTP/1.1 200 ") and b'"/echo/first"' in reply
    targets = [r.target for r in model_server.requests]
    assert not [t for t in targets if t.endswith((b"two-hosts", b"no-host", b"http10-te"))]
    assert httpx.get(f"{sidecar.url}/echo").status_code == 200


def _script(target: str) -> list[tuple[float, bytes]]:
    """Each answer's body is its target; two targets add bytes nobody asked for."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(target), target.encode())
    if target == "/stray-in-same-read":
        return [(0, answer + b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n")]
    if target == "/stray-while-idle":
        return [(0, answer), (0.2, b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nstray!")]
    return [(0, answer)]


@pytest.mark.parametrize("stray", ["/stray-in-same-read", "/stray-while-idle"])
def test_upstream_bytes_after_a_complete_response_retire_the_connection(
    collector: Collector, start_sidecar: Callable[..., Sidecar], stray: str
) -> None:
    """An upstream that sends more than the response asked for is out of step: its connection
    must never carry the next request (whose answer would be the stray bytes)."""
    upstream = ScriptedUpstream(_script).start()
    try:
        proxy = start_sidecar(upstream.url, collector.url, "--upstream-timeout", "2s")
        with httpx.Client(base_url=proxy.url) as client:
            assert client.get("/warm").text == "/warm"
            assert client.get("/again").text == "/again"
            r = client.get(stray)
            assert (r.status_code, r.text) == (200, stray)
        # The sidecar retires the connection the stray bytes came on: wait until it has closed it.
        wait_for(lambda: dict((t, n) for n, t in upstream.seen)[stray] in upstream.closed)
        with httpx.Client(base_url=proxy.url) as client:  # a new client, served from the pool
            r = client.get("/next")
            assert (r.status_code, r.text) == (200, "/next")
            assert client.get("/after").text == "/after"
        conn = dict((target, number) for number, target in upstream.seen)
        assert conn["/warm"] == conn["/again"] == conn[stray]  # the pool does reuse healthy connections
        assert conn["/next"] != conn[stray]
        assert conn["/after"] == conn["/next"]
    finally:
        upstream.stop()


def test_chunked_request_and_20mb_streamed_both_ways(sidecar: Sidecar) -> None:
    payload = hashlib.sha256(b"seed").digest() * (20 * 1024 * 1024 // 32)
    with httpx.Client(base_url=sidecar.url, timeout=60) as client:
        r = client.post("/echo", content=iter_chunks(payload, 1 << 20))  # a generator: chunked upload
        assert r.status_code == 200
        assert r.json()["body_len"] == len(payload)
        assert r.json()["body_sha256"] == hashlib.sha256(payload).hexdigest()
        with client.stream("GET", "/big", params={"size": 20 * 1024 * 1024}) as r:
            digest = hashlib.sha256()
            for chunk in r.iter_raw():
                digest.update(chunk)
        expected = (bytes(range(256)) * 256) * (20 * 1024 * 1024 // 65536)
        assert r.headers["content-length"] == str(20 * 1024 * 1024)
        assert digest.hexdigest() == hashlib.sha256(expected).hexdigest()
        r = client.get("/chunked", params={"n": 4, "size": 5})
        assert r.headers["transfer-encoding"] == "chunked"
        assert r.content == b"AAAAABBBBBCCCCCDDDDD"
    rss = sidecar.rss()
    assert rss < 150 * 1024 * 1024, f"the 20 MB bodies were buffered: RSS {rss / 2**20:.0f} MiB"


@pytest.mark.parametrize("status", [201, 204, 304, 400, 404, 418, 500, 503])
def test_upstream_status_and_headers_pass_through(sidecar: Sidecar, status: int) -> None:
    r = httpx.get(f"{sidecar.url}/status/{status}")
    assert r.status_code == status
    assert r.headers["x-status"] == str(status)
    if status not in (204, 304):
        assert r.json() == {"status": status}


def test_head_keep_alive_and_close_delimited_upstream(sidecar: Sidecar) -> None:
    with httpx.Client(base_url=sidecar.url) as client:
        r = client.head("/echo")
        assert r.status_code == 200 and int(r.headers["content-length"]) > 0 and r.content == b""
        assert client.get("/echo").status_code == 200  # same client connection still usable
        r = client.get("/close-delimited")
        assert r.content == b"until-close body"
        assert r.headers["transfer-encoding"] == "chunked"  # re-framed for the keep-alive client
        assert client.get("/echo").json()["method"] == "GET"


def test_http10_client_gets_close_delimited_response(sidecar: Sidecar) -> None:
    reply = raw_exchange(sidecar.port, b"GET /chunked?n=2&size=3 HTTP/1.0\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 200 "
    assert b"transfer-encoding" not in head.lower() and b"Connection: close" in head
    assert body == b"AAABBB"


def test_pipelined_requests_are_answered_in_order(sidecar: Sidecar) -> None:
    raw = b"".join(b"GET /echo/%d HTTP/1.1\r\nHost: h\r\n\r\n" % i for i in range(5))
    raw += b"POST /echo/last HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
    reply = raw_exchange(sidecar.port, raw)
    targets = [json.loads(part.split(b"\r\n\r\n", 1)[1].split(b"HTTP/1.1 ")[0])["target"] for part in reply.split(b"HTTP/1.1 200 \r\n")[1:]]
    assert targets == ["/echo/0", "/echo/1", "/echo/2", "/echo/3", "/echo/4", "/echo/last"]


def test_upstream_down_is_502_json_and_timeout_is_504(collector: Collector, start_sidecar: Callable[..., Sidecar], model_server: ModelServer) -> None:
    down = start_sidecar(f"http://127.0.0.1:{free_port()}", collector.url)
    r = httpx.post(f"{down.url}/v1/models/wine:predict", json={"instances": [[1]]})
    assert r.status_code == 502
    assert r.json()["error"] == "upstream_unavailable" and "connection refused" in r.json()["detail"]
    slow = start_sidecar(model_server.url, collector.url, "--upstream-timeout", "1s")
    r = httpx.get(f"{slow.url}/slow", params={"s": 3}, timeout=10)
    assert r.status_code == 504 and r.json()["error"] == "upstream_timeout"
    metrics = httpx.get(f"{slow.url}/driftwatch/metrics").text
    assert metric(metrics, "driftwatch_sidecar_upstream_errors_total", kind="timeout") == 1
    down_metrics = httpx.get(f"{down.url}/driftwatch/metrics").text
    assert metric(down_metrics, "driftwatch_sidecar_upstream_errors_total", kind="connect") == 1
    # The sidecar's own 502 is not the model's answer: no upstream 5xx is counted for it.
    assert 'driftwatch_sidecar_upstream_responses_total{code="5xx",model="wine"} 0.0' in down_metrics


def test_the_model_servers_answers_are_counted_by_status_class(
        collector: Collector, start_sidecar: Callable[..., Sidecar], model_server: ModelServer) -> None:
    fresh = start_sidecar(model_server.url, collector.url)
    for status in (200, 201, 404, 503, 503):
        httpx.get(f"{fresh.url}/status/{status}")
    text = httpx.get(f"{fresh.url}/driftwatch/metrics").text
    counts = {code: metric(text, "driftwatch_sidecar_upstream_responses_total", model="wine", code=code)
              for code in ("1xx", "2xx", "3xx", "4xx", "5xx")}
    assert counts == {"1xx": 0, "2xx": 2, "3xx": 0, "4xx": 1, "5xx": 2}


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", 400),  # a TLS hello on the plain port
        (b"GET /echo HTTP/1.1\r\nHost h\r\n\r\n", 400),
        (b"GET /echo HTTP/9.9\r\n\r\n", 400),
        (b"GET /echo HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431),
        (b"GET /echo HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(150)) + b"\r\n", 431),
        (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: h\r\n\r\n", 414),
        (b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 501),
        (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n", 501),
        # A coding the proxy would strip while forwarding the still-coded bytes as plain.
        (b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 501),
    ],
)
def test_hostile_input_gets_precise_4xx_and_the_process_keeps_serving(sidecar: Sidecar, raw: bytes, status: int) -> None:
    reply = raw_exchange(sidecar.port, raw)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0].split(b" ")[1] == str(status).encode(), reply[:200]
    assert b"Connection: close" in head
    assert set(json.loads(body)) == {"error", "detail"}
    assert httpx.get(f"{sidecar.url}/echo").status_code == 200
    assert sidecar.proc is not None and sidecar.proc.poll() is None


def test_huge_header_trickled_without_end_is_bounded(sidecar: Sidecar) -> None:
    with socket.create_connection(("127.0.0.1", sidecar.port), timeout=10) as s:
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: h\r\nX-Flood: ")
        reply = b""
        try:
            for _ in range(200):
                s.sendall(b"a" * 4096)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            reply = s.recv(4096)
        except ConnectionResetError:
            pass
    assert reply.startswith(b"HTTP/1.1 431"), reply[:100]


def test_client_disconnect_mid_request_is_cleaned_up(sidecar: Sidecar) -> None:
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", sidecar.port)) as s:
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
        with socket.create_connection(("127.0.0.1", sidecar.port)) as s:
            s.sendall(b"GET /slow?s=0.2 HTTP/1.1\r\nHost: h\r\n\r\n")
    assert httpx.get(f"{sidecar.url}/echo").status_code == 200
    metrics = httpx.get(f"{sidecar.url}/driftwatch/metrics").text
    assert metric(metrics, "driftwatch_sidecar_upstream_errors_total", kind="reset") == 0
    assert metric(metrics, "driftwatch_sidecar_upstream_errors_total", kind="protocol") == 0


@pytest.mark.parametrize("path", ["/driftwatch/healthz", "/driftwatch/readyz"])
def test_probes_answer_head_like_get_without_a_body(sidecar: Sidecar, path: str) -> None:
    """Load balancers and `curl -I` probe with HEAD; the connection stays usable after it."""
    get = httpx.get(f"{sidecar.url}{path}")
    head = httpx.head(f"{sidecar.url}{path}")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.headers["content-type"] == get.headers["content-type"]
    # Pipelined HEAD then GET on one connection: a body after the HEAD would corrupt the second answer.
    raw = raw_exchange(sidecar.port, f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\nGET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    first, second = raw.split(b"HTTP/1.1 ")[1:]
    assert first.startswith(b"200 ") and first.endswith(b"\r\n\r\n")
    assert second.startswith(b"200 ") and json.loads(second.split(b"\r\n\r\n", 1)[1])["status"] in ("ok", "ready")


def test_other_methods_on_own_endpoints_are_405_with_allow(sidecar: Sidecar) -> None:
    r = httpx.delete(f"{sidecar.url}/driftwatch/healthz")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
    assert r.headers["allow"] == "GET, HEAD"


def test_own_endpoints_and_promtool_clean_metrics(sidecar: Sidecar) -> None:
    assert httpx.get(f"{sidecar.url}/driftwatch/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{sidecar.url}/driftwatch/readyz").json()
    assert ready["status"] == "ready" and ready["shipping"]["monitor_reachable"] is True
    assert httpx.get(f"{sidecar.url}/driftwatch/nope").status_code == 404
    assert httpx.post(f"{sidecar.url}/driftwatch/metrics").status_code == 405
    httpx.post(f"{sidecar.url}/v1/models/wine:predict", json={"instances": [[1]]})
    text = httpx.get(f"{sidecar.url}/driftwatch/metrics").text
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    for reason in ("spool_full", "rejected", "shutdown", "too_large", "spool_error", "corrupt"):
        assert f'driftwatch_sidecar_events_dropped_total{{model="wine",reason="{reason}"}} 0.0' in text
    assert metric(text, "driftwatch_sidecar_request_duration_seconds_count", phase="upstream") >= 1
    assert metric(text, "driftwatch_sidecar_request_duration_seconds_count", phase="overhead") >= 1
    assert metric(text, "driftwatch_sidecar_events_captured_total", model="wine") >= 1
    assert "_created" not in text
    assert metric(text, "process_resident_memory_bytes") > 0
    assert metric(text, "process_cpu_seconds_total") > 0
