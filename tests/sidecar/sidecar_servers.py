"""Real servers on 127.0.0.1 for the sidecar tests: a toy model server and a collector.

The toy model server parses with h11 (not httptools, which the sidecar uses) so forwarding is
checked by an independent HTTP implementation. The collector is the stdlib's HTTP server playing
the monitor's `POST /v1/events`, scripted to answer errors or to be down.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import h11
import psutil

REPO = Path(__file__).resolve().parents[2]


# -- toy model server -----------------------------------------------------------------------------


class _ModelHandler(socketserver.BaseRequestHandler):
    """Keep-alive HTTP/1.1 via h11. Paths:
    /v1/models/NAME:predict, /v2/models/NAME/infer  -> JSON prediction echoing the body length
    /echo...                                        -> JSON: method, target, headers, body sha256/len
    /status/CODE                                    -> that status, JSON body
    /chunked?n=K&size=S                             -> K chunks of S bytes (Transfer-Encoding: chunked)
    /big?size=S                                     -> S bytes with Content-Length, streamed
    /slow?s=SECONDS                                 -> answers after a delay
    /close-delimited                                -> no length, body ends when the connection closes
    """

    def handle(self) -> None:
        conn = h11.Connection(h11.SERVER)
        sock: socket.socket = self.request
        sock.settimeout(30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle/delayed-ACK stalls
        server: ModelServer = self.server.owner  # type: ignore[attr-defined]
        while True:
            try:
                request, body_hash, body_len, body_head = self._read_request(conn, sock)
            except (ConnectionError, TimeoutError, OSError, h11.RemoteProtocolError):
                return
            if request is None:
                return
            server.requests.append(request)
            try:
                keep = self._respond(conn, sock, request, body_hash, body_len, body_head)
            except (ConnectionError, OSError, h11.LocalProtocolError):
                return
            if not keep or conn.our_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    def _read_request(self, conn: h11.Connection, sock: socket.socket):  # type: ignore[no-untyped-def]
        request = None
        digest = hashlib.sha256()
        length = 0
        head = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = sock.recv(262144)
                conn.receive_data(data)
                if not data and conn.their_state is h11.IDLE:
                    return None, "", 0, b""
                continue
            if isinstance(event, h11.ConnectionClosed):
                return None, "", 0, b""
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                digest.update(event.data)
                length += len(event.data)
                if len(head) < 4096:
                    head += event.data[: 4096 - len(head)]
            elif isinstance(event, h11.EndOfMessage):
                return request, digest.hexdigest(), length, head

    def _respond(self, conn, sock, req, body_hash, body_len, body_head) -> bool:  # type: ignore[no-untyped-def]
        url = urlsplit(req.target.decode())
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = url.path

        def send(*events):  # type: ignore[no-untyped-def]
            for ev in events:
                data = conn.send(ev)
                if data:
                    sock.sendall(data)

        def json_response(status: int, obj: object, extra: list[tuple[str, str]] | None = None) -> None:
            body = json.dumps(obj).encode()
            headers = [("content-type", "application/json"), ("content-length", str(len(body))), *(extra or [])]
            data = conn.send(h11.Response(status_code=status, headers=headers)) or b""
            if req.method != b"HEAD":
                data += conn.send(h11.Data(data=body)) or b""
            sock.sendall(data + (conn.send(h11.EndOfMessage()) or b""))

        if path.endswith(":predict") or path.endswith("/infer"):
            json_response(200, {"predictions": [[0.1, 0.9]], "request_bytes": body_len}, [("x-model", "toy")])
        elif path.startswith("/echo"):
            json_response(200, {
                "method": req.method.decode(),
                "target": req.target.decode("latin-1"),
                "http_version": req.http_version.decode(),
                "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in req.headers.raw_items()],
                "body_sha256": body_hash,
                "body_len": body_len,
            })
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            if code in (204, 304):
                send(h11.Response(status_code=code, headers=[("x-status", str(code))]), h11.EndOfMessage())
            else:
                json_response(code, {"status": code}, [("x-status", str(code))])
        elif path == "/chunked":
            n, size = int(query.get("n", 3)), int(query.get("size", 10))
            send(h11.Response(status_code=200, headers=[("content-type", "application/octet-stream"), ("transfer-encoding", "chunked")]))
            for i in range(n):
                send(h11.Data(data=bytes([65 + i % 26]) * size))
            send(h11.EndOfMessage())
        elif path == "/big":
            size = int(query["size"])
            send(h11.Response(status_code=200, headers=[("content-type", "application/octet-stream"), ("content-length", str(size))]))
            block = bytes(range(256)) * 256
            sent = 0
            while sent < size:
                piece = block[: min(len(block), size - sent)]
                send(h11.Data(data=piece))
                sent += len(piece)
            send(h11.EndOfMessage())
        elif path == "/slow":
            time.sleep(float(query.get("s", 1)))
            json_response(200, {"slow": True})
        elif path == "/close-delimited":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nuntil-close body")
            return False
        else:
            json_response(404, {"error": "not found"})
        return True


class _ThreadingServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class _Served:
    """A socketserver on 127.0.0.1 in a daemon thread: its port (0 until bound: the kernel picks), URL and stop."""

    port: int
    _server: socketserver.TCPServer | None = None

    def _serve(self, server: socketserver.TCPServer) -> None:
        self._server = server
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class ModelServer(_Served):
    def __init__(self, port: int = 0) -> None:
        self.port = port  # 0: the kernel picks one when the server binds
        self.requests: list[h11.Request] = []

    def start(self) -> ModelServer:
        server = _ThreadingServer(("127.0.0.1", self.port), _ModelHandler)
        server.owner = self  # type: ignore[attr-defined]
        self._serve(server)
        return self


# -- collector (plays the monitor's POST /v1/events) ----------------------------------------------


class Collector(_Served):
    """Records every batch; `script` is a list of statuses answered first (then 200), with a
    `Retry-After: retry_after` header when that is set. With `tokens` set, a request whose
    `Authorization` is not `Bearer` one of them is answered `deny_status` (a rotated token), and
    `denied` counts those answers."""

    def __init__(self, port: int = 0) -> None:
        self.port = port  # 0: the kernel picks one when the server binds; a fixed one to play a monitor coming back
        self.batches: list[list[dict]] = []
        self.auth: list[str | None] = []
        self.attempts = 0
        self.attempt_times: list[float] = []
        self.script: list[int] = []
        self.retry_after: str | None = None
        self.tokens: set[str] | None = None
        self.deny_status = 401
        self.denied = 0
        self.lock = threading.Lock()

    def start(self) -> Collector:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with owner.lock:
                    owner.attempts += 1
                    owner.attempt_times.append(time.monotonic())
                    status = owner.script.pop(0) if owner.script else 200
                    given = self.headers.get("authorization") or ""
                    if owner.tokens is not None and given.removeprefix("Bearer ") not in owner.tokens:
                        status = owner.deny_status
                        owner.denied += 1
                    if status == 200:
                        events = json.loads(body)["events"]
                        owner.batches.append(events)
                        owner.auth.append(self.headers.get("authorization"))
                        reply: dict[str, object] = {"accepted": len(events), "duplicates": 0}
                    else:
                        reply = {"error": f"scripted {status}", "detail": None}
                data = json.dumps(reply).encode()
                self.send_response(status)
                if status != 200 and owner.retry_after is not None:
                    self.send_header("retry-after", owner.retry_after)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._serve(server)
        return self

    def events(self) -> list[dict]:
        with self.lock:
            return [e for batch in self.batches for e in batch]


# -- the sidecar as a real process ----------------------------------------------------------------


_sidecar_numbers = itertools.count(1)  # one log file per sidecar, even when two share a spool directory


class Sidecar:
    """Binds port 0 and reports the port it got ("listening on host:port"): no port is named
    before it is bound, so none can be taken in between."""

    def __init__(self, upstream: str, monitor: str, spool_dir: Path, *extra: str, model: str = "wine") -> None:
        self.port = 0
        self.args = [
            sys.executable, "-m", "monitor.app.cli", "sidecar",
            "--upstream", upstream, "--monitor", monitor, "--model", model,
            "--host", "127.0.0.1", "--port", "0", "--spool-dir", str(spool_dir), *extra,
        ]
        self.log_path = spool_dir.parent / f"sidecar-{next(_sidecar_numbers)}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, env: dict[str, str] | None = None) -> Sidecar:
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args, cwd=REPO, stdout=subprocess.PIPE, stderr=self._log, env={**os.environ, **(env or {})})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        assert "listening on" in line, f"sidecar did not start: {line!r}\n{self.log()}"
        self.port = int(line.rsplit(":", 1)[1])
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if getattr(self, "_log", None):
            self._log.close()

    def rss(self) -> int:
        assert self.proc is not None
        return psutil.Process(self.proc.pid).memory_info().rss


def metric(text: str, name: str, **labels: str) -> float:
    """Value of one sample in Prometheus text format (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        base, _, rest = key.partition("{")
        got = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if base == name and got == want:
            return float(value)
    return 0.0


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def raw_exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes, read until the server closes (or timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def iter_chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One Content-Length-framed response from a keep-alive connection: (head, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response head: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:] if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed mid-body: {head + body!r}")
        body += chunk
    return head, body


class ScriptedUpstream(_Served):
    """A model server that answers raw bytes, to play a misbehaving one h11 would never be.

    `script(target)` returns the sends for one request as (delay_seconds, bytes) pairs; requests
    must have no body. `seen` records (connection number, target) so tests can tell whether the
    sidecar reused a connection; `closed` holds the numbers of connections the sidecar closed.
    """

    def __init__(self, script: Callable[[str], list[tuple[float, bytes]]]) -> None:
        self.port = 0  # the kernel picks one when the server binds
        self.script = script
        self.seen: list[tuple[int, str]] = []
        self.closed: set[int] = set()
        self._connections = 0
        self._lock = threading.Lock()

    def start(self) -> ScriptedUpstream:
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                sock.settimeout(30)
                with owner._lock:
                    owner._connections += 1
                    number = owner._connections
                buffer = b""
                while True:
                    while b"\r\n\r\n" not in buffer:
                        try:
                            chunk = sock.recv(65536)
                        except OSError:
                            return
                        if not chunk:
                            with owner._lock:
                                owner.closed.add(number)
                            return
                        buffer += chunk
                    head, _, buffer = buffer.partition(b"\r\n\r\n")
                    target = head.split(b" ", 2)[1].decode("latin-1")
                    with owner._lock:
                        owner.seen.append((number, target))
                    try:
                        for delay, data in owner.script(target):
                            time.sleep(delay)
                            sock.sendall(data)
                    except OSError:
                        return

        self._serve(_ThreadingServer(("127.0.0.1", self.port), Handler))
        return self


# -- an OpenAI-compatible model server that streams ------------------------------------------------


class OpenAIServer(_Served):
    """vLLM's OpenAI-compatible API in miniature, on h11: `/v1/chat/completions`, `/v1/completions`
    (streamed as Server-Sent Events when the body says `"stream": true`) and `/v1/embeddings`.

    The stream is what vLLM sends: a first chunk with only the assistant role (chat), `chunks`
    content chunks `delay` seconds apart (each its own HTTP chunk, written at once), the last one
    with `finish_reason`, a usage chunk with empty `choices` when `stream_options.include_usage`,
    then `data: [DONE]`. Request headers script it: `x-chunks`, `x-delay`, `x-piece` (content of
    each chunk, `{i}` replaced), `x-split` (each event sent in two writes cut inside a multi-byte
    character), `x-fail` (`error-event` after half the chunks, as vLLM reports a failure once the
    head is sent, or `reset`: the connection is reset mid-stream). `sent` records, per request, the
    monotonic time each event was written and the exact body bytes written.
    """

    def __init__(self) -> None:
        self.port = 0
        self.sent: list[tuple[list[float], bytes]] = []
        self.lock = threading.Lock()

    def start(self) -> OpenAIServer:
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn = h11.Connection(h11.SERVER)
                sock: socket.socket = self.request
                sock.settimeout(30)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                while True:
                    request, body = None, b""
                    while True:
                        event = conn.next_event()
                        if event is h11.NEED_DATA:
                            try:
                                data = sock.recv(65536)
                            except OSError:
                                return
                            conn.receive_data(data)
                            if not data:
                                return
                        elif isinstance(event, h11.Request):
                            request = event
                        elif isinstance(event, h11.Data):
                            body += event.data
                        elif isinstance(event, h11.EndOfMessage):
                            break
                        else:
                            return
                    assert request is not None
                    try:
                        owner._answer(conn, sock, request, json.loads(body))
                    except (OSError, _Reset):
                        return
                    if conn.our_state is h11.MUST_CLOSE:
                        return
                    conn.start_next_cycle()

        self._serve(_ThreadingServer(("127.0.0.1", self.port), Handler))
        return self

    def _answer(self, conn: h11.Connection, sock: socket.socket, req: h11.Request, body: dict) -> None:
        headers = {n.decode().lower(): v.decode() for n, v in req.headers.raw_items()}
        path = req.target.decode().split("?", 1)[0]
        chunks = int(headers.get("x-chunks", 5))
        piece = headers.get("x-piece", "tok{i} é€😀 ")
        texts = [piece.replace("{i}", str(i)) for i in range(chunks)]
        usage = {"prompt_tokens": 7, "completion_tokens": chunks, "total_tokens": 7 + chunks}

        def send(event: object) -> None:
            data = conn.send(event)  # type: ignore[arg-type]
            if data:
                sock.sendall(data)

        if path.endswith("/v1/embeddings"):
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            answer = {"object": "list", "model": body.get("model", "toy"), "data": [
                {"object": "embedding", "index": i, "embedding": [float(len(t)), 0.5, -1.0]} for i, t in enumerate(inputs)
            ], "usage": {"prompt_tokens": 3 * len(inputs), "total_tokens": 3 * len(inputs)}}
            self._json(send, answer)
            return
        chat = path.endswith("/chat/completions")
        cid = "chatcmpl-1" if chat else "cmpl-1"
        if not body.get("stream"):
            choice = ({"index": 0, "message": {"role": "assistant", "content": "".join(texts)}, "finish_reason": "stop"} if chat
                      else {"index": 0, "text": "".join(texts), "finish_reason": "length"})
            self._json(send, {"id": cid, "object": "chat.completion" if chat else "text_completion", "model": body.get("model", "toy"),
                              "choices": [choice], "usage": usage})
            return
        delay = float(headers.get("x-delay", 0))
        fail = headers.get("x-fail")
        obj = "chat.completion.chunk" if chat else "text_completion"

        def chunk(choices: list[dict], extra: dict | None = None) -> bytes:
            payload = {"id": cid, "object": obj, "created": 1, "model": body.get("model", "toy"), "choices": choices, **(extra or {})}
            return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"

        events: list[bytes] = []
        if chat:
            events.append(chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}]))
        for i, text in enumerate(texts):
            last = i == len(texts) - 1
            reason = ("stop" if chat else "length") if last else None
            choice = {"index": 0, "delta": {"content": text}} if chat else {"index": 0, "text": text}
            events.append(chunk([{**choice, "logprobs": None, "finish_reason": reason}]))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(chunk([], {"usage": usage}))
        events.append(b"data: [DONE]\n\n")
        times: list[float] = []
        written = bytearray()
        with self.lock:
            self.sent.append((times, written))  # type: ignore[arg-type]
        send(h11.Response(status_code=200, headers=[("content-type", "text/event-stream; charset=utf-8"), ("transfer-encoding", "chunked")]))
        half = len(events) // 2
        for n, event in enumerate(events):
            if fail == "error-event" and n == half:
                event = b'data: {"error": {"object": "error", "message": "engine died", "type": "InternalServerError", "code": 500}}\n\n'
                self._write(send, event, times, written, headers, delay)
                self._write(send, b"data: [DONE]\n\n", times, written, headers, 0)
                break
            if fail == "reset" and n == half:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
                raise _Reset
            self._write(send, event, times, written, headers, delay if n else 0)
        send(h11.EndOfMessage())

    @staticmethod
    def _write(send: Callable[[object], None], event: bytes, times: list[float], written: bytearray, headers: dict[str, str], delay: float) -> None:
        time.sleep(delay)
        if headers.get("x-split") and len(event) > 12:
            cut = next((i for i in range(6, len(event)) if event[i] >= 0x80 and (event[i] & 0xC0) == 0x80), len(event) // 2)
            send(h11.Data(data=event[:cut]))
            time.sleep(0.01)
            send(h11.Data(data=event[cut:]))
        else:
            send(h11.Data(data=event))
        times.append(time.monotonic())
        written += event

    @staticmethod
    def _json(send: Callable[[object], None], obj: object) -> None:
        data = json.dumps(obj).encode()
        send(h11.Response(status_code=200, headers=[("content-type", "application/json"), ("content-length", str(len(data)))]))
        send(h11.Data(data=data))
        send(h11.EndOfMessage())


class _Reset(Exception):
    """The scripted server reset its connection mid-stream."""
