"""The shared part of the pipeline API test servers (KFP, Airflow, a webhook receiver) on 127.0.0.1.

Each server subclasses `FakeHttpServer` and implements `handle(method, path, query, headers, body)`
returning (status, JSON body). The base gives every server the same test controls as the fake
Kubernetes API (tests/retrain/kube_api.py): `inject()` faults (a status, a delay before the request
takes effect or after it did, i.e. a lost answer), `faults_left()`, and `requests` for assertions.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int | None
    times: int
    delay: float
    after: bool


class FakeHttpServer:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHttpServer:
        threading.Thread(target=self._server.serve_forever, name=type(self).__name__, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- test controls -------------------------------------------------------------------------------

    def inject(self, method: str, path: str = ".*", *, status: int | None = 500, times: int = 1,
               delay: float = 0.0, after: bool = False) -> None:
        """The next `times` matching requests fail with `status` and/or wait `delay` seconds
        (`after=True`: the request takes effect first, then the answer is late or lost)."""
        with self.lock:
            self._faults.append(Fault(method.upper(), re.compile(path), status, times, delay, after))

    def faults_left(self) -> int:
        with self.lock:
            return sum(f.times for f in self._faults)

    def count(self, method: str, path: str = ".*") -> int:
        with self.lock:
            return sum(1 for m, p in self.requests if m == method and re.search(path, p))

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for f in self._faults:
                if f.method == method and f.path.search(path) and f.times > 0:
                    f.times -= 1
                    return f
        return None

    # -- to implement -----------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: bytes) -> tuple[int, Any]:
        raise NotImplementedError

    def fault_body(self, status: int) -> Any:
        """The error body this API sends (overridden per API)."""
        return {"error": f"injected {status}"}

    # -- HTTP ---------------------------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            def _route(self, method: str) -> None:
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                with server.lock:
                    server.requests.append((method, url.path))
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                fault = server._take_fault(method, url.path)
                if fault and fault.delay and not fault.after:
                    time.sleep(fault.delay)
                if fault and fault.status is not None and not fault.after:
                    self._send(fault.status, server.fault_body(fault.status))
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                code, out = server.handle(method, url.path, query, headers, raw)
                if fault and fault.after:
                    time.sleep(fault.delay)
                    if fault.status is not None:  # it took effect; the answer says otherwise
                        code, out = fault.status, server.fault_body(fault.status)
                self._send(code, out)

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

        return Handler
