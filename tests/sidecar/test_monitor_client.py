"""The sidecar's POST /v1/events client against real sockets on 127.0.0.1 (a raw scripted server)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from monitor.sidecar.monitor_client import Answer, MonitorClient, MonitorUnreachable, parse_retry_after, slices
from tests.ports import free_port


class ScriptedMonitor:
    """Keep-alive HTTP/1.1 server; `mode`: "ok", "drop_second" (the 2nd request on each connection
    is read, then the connection is closed unanswered: the idle-close race), "status:CODE", "silent"."""

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests: list[tuple[int, bytes, bytes]] = []  # (connection number, head, body)
        self.connections = 0
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn, self.connections), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        buf = b""
        served = 0
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
                while len(buf) < length:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                body, buf = buf[:length], buf[length:]
                self.requests.append((number, head, body))
                served += 1
                if self.mode == "silent" or (self.mode == "drop_second" and served == 2):
                    if self.mode == "silent":
                        time.sleep(2)
                    return
                status = int(self.mode.split(":")[1]) if self.mode.startswith("status:") else 200
                answer = json.dumps({"error": "too_large"} if status != 200 else {"accepted": 1}).encode()
                conn.sendall(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (status, len(answer), answer))

    def close(self) -> None:
        self._stop = True
        self.sock.close()


@pytest.fixture
def monitor(request: pytest.FixtureRequest) -> Iterator[ScriptedMonitor]:
    server = ScriptedMonitor(getattr(request, "param", "ok"))
    yield server
    server.close()


def test_posts_exact_bytes_with_auth_over_one_keep_alive_connection(monitor: ScriptedMonitor) -> None:
    big = json.dumps({"events": ["x" * 1000] * 1000}).encode()  # ~1 MB: written in slices
    pieces = [big[:5], big[5:300_000], big[300_000:300_001], big[300_001:]]  # grouped and cut, sent as one body

    async def run() -> list[Answer]:
        client = MonitorClient(f"http://127.0.0.1:{monitor.port}/base/", "s3cret")
        try:
            return [await client.post("/v1/events", body) for body in ([b'{"events":[]}'], pieces, [b"{", b"}"])]
        finally:
            await client.aclose()

    answers = asyncio.run(run())
    assert [a.status for a in answers] == [200, 200, 200]
    assert json.loads(answers[0].body) == {"accepted": 1}
    assert monitor.connections == 1
    assert [body for _, _, body in monitor.requests] == [b'{"events":[]}', big, b"{}"]
    head = monitor.requests[1][1].decode().split("\r\n")
    assert head[0] == "POST /base/v1/events HTTP/1.1"
    assert {"Authorization: Bearer s3cret", "Content-Type: application/json", f"Content-Length: {len(big)}"} <= set(head)


@pytest.mark.parametrize("monitor", ["drop_second"], indirect=True)
def test_a_reused_connection_closed_by_the_monitor_is_retried_once_on_a_fresh_one(monitor: ScriptedMonitor) -> None:
    async def run() -> list[int]:
        client = MonitorClient(f"http://127.0.0.1:{monitor.port}", None)
        try:
            return [(await client.post("/v1/events", [b"[%d]" % i]))[0] for i in range(3)]
        finally:
            await client.aclose()

    assert asyncio.run(run()) == [200, 200, 200]
    # 2nd request lost with connection 1, resent on connection 2 (its 1st), 3rd is connection 2's 2nd: dropped, resent on 3.
    assert [(n, body) for n, _, body in monitor.requests] == [(1, b"[0]"), (1, b"[1]"), (2, b"[1]"), (2, b"[2]"), (3, b"[2]")]


@pytest.mark.parametrize("monitor", ["status:413"], indirect=True)
def test_error_status_and_body_are_returned_as_they_are(monitor: ScriptedMonitor) -> None:
    async def run() -> Answer:
        client = MonitorClient(f"http://127.0.0.1:{monitor.port}", None)
        try:
            return await client.post("/v1/events", [b"{}"])
        finally:
            await client.aclose()

    status, body, retry_after = asyncio.run(run())
    assert status == 413 and json.loads(body) == {"error": "too_large"} and retry_after is None


@pytest.mark.parametrize("monitor", ["silent"], indirect=True)
def test_unreachable_and_unanswering_monitors_are_retryable_errors(monitor: ScriptedMonitor) -> None:
    closed_port = free_port()  # nothing listens there

    async def run() -> tuple[str, str, float]:
        down = MonitorClient(f"http://127.0.0.1:{closed_port}", None)
        silent = MonitorClient(f"http://127.0.0.1:{monitor.port}", None, timeout=0.3)
        with pytest.raises(MonitorUnreachable) as refused:
            await down.post("/v1/events", [b"{}"])
        start = time.monotonic()
        with pytest.raises(MonitorUnreachable) as timed_out:
            await silent.post("/v1/events", [b"{}"])
        return refused.value.reason, timed_out.value.reason, time.monotonic() - start

    refused, timed_out, waited = asyncio.run(run())
    assert refused == "ConnectionRefusedError"
    assert timed_out == "no answer within 0.3s" and waited < 2


@pytest.mark.parametrize("sizes", [[], [0], [3], [10, 10, 10], [1, 40, 2], [100], [7, 7, 7, 7, 7, 7, 7, 7]])
def test_slices_rebuild_the_body_exactly_in_writes_of_bounded_size(sizes: list[int]) -> None:
    pieces = [bytes([65 + i]) * n for i, n in enumerate(sizes)]
    out = [bytes(part) for part in slices(pieces, size=16)]
    assert b"".join(out) == b"".join(pieces)
    # Small pieces are grouped until the slice size is reached; a large one is cut into slices.
    assert all(len(part) < 16 + max(sizes, default=0) for part in out)
    assert all(len(part) <= 16 for piece in pieces if len(piece) > 16 for part in slices([piece], size=16))
    assert all(part for part in out)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (b"120", 120.0),
        (b" 0 ", 0.0),
        (b"Sun, 22 Nov 2026 14:00:30 GMT", 30.0),  # an HTTP-date 30 s after `now`
        (b"Sun, 22 Nov 2026 13:59:00 GMT", 0.0),  # already past: retry now
        (b"-5", None),
        (b"1.5", None),
        (b"soon", None),
        (b"Sun, 22 Nov 2026 14:00:30", None),  # no zone: not an HTTP-date
    ],
)
def test_retry_after_is_delay_seconds_or_an_http_date(value: bytes, seconds: float | None) -> None:
    now = 1_795_356_000.0  # 2026-11-22 14:00:00 UTC
    assert parse_retry_after(value, now) == seconds
