"""A faithful stand-in for the aggregated metrics API (metrics-server behind kube-apiserver).

Serves `GET /apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods?labelSelector=...` with the JSON the
real API returns (PodMetricsList: kind, apiVersion, metadata, items with metadata, timestamp, window,
containers[].usage), filtering by equality label selectors, and answers with `Status` objects for
the failures a real cluster produces: 403 Forbidden (RBAC), 404 NotFound (metrics API not
installed), 503 ServiceUnavailable (metrics-server down). Runs on 127.0.0.1 in a thread.
`SilentServer` is the other failure: an API server that accepts connections and never answers.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_PATH_RE = re.compile(r"^/apis/metrics\.k8s\.io/v1beta1/namespaces/(?P<ns>[^/]+)/pods$")


@dataclass
class FakePod:
    name: str
    namespace: str
    labels: dict[str, str]
    containers: dict[str, tuple[str, str]]
    """container name -> (cpu quantity, memory quantity)"""


@dataclass
class MetricsApiState:
    pods: list[FakePod] = field(default_factory=list)
    failure: int | None = None
    """Answer every request with this status (403, 404, 503) instead of data."""
    requests: list[str] = field(default_factory=list)


def _status(code: int, reason: str, message: str, details: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code,
    }


def _matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


def _pod_metrics(pod: FakePod) -> dict[str, Any]:
    return {
        "metadata": {
            "name": pod.name,
            "namespace": pod.namespace,
            "creationTimestamp": "2025-03-01T10:00:05Z",
            "labels": pod.labels,
        },
        "timestamp": "2025-03-01T10:00:00Z",
        "window": "10.068s",
        "containers": [
            {"name": name, "usage": {"cpu": cpu, "memory": memory}} for name, (cpu, memory) in pod.containers.items()
        ],
    }


def _make_handler(state: MetricsApiState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            state.requests.append(self.path)
            m = _PATH_RE.match(url.path)
            if state.failure == 403 and m:
                user = "system:serviceaccount:driftwatch:driftwatch"
                msg = f'pods.metrics.k8s.io is forbidden: User "{user}" cannot list resource "pods" in API group "metrics.k8s.io" in the namespace "{m["ns"]}"'
                self._send(403, _status(403, "Forbidden", msg, {"group": "metrics.k8s.io", "kind": "pods"}))
                return
            if state.failure == 503:
                self._send(503, _status(503, "ServiceUnavailable", "the server is currently unable to handle the request", {}))
                return
            if state.failure == 404 or m is None:
                self._send(404, _status(404, "NotFound", "the server could not find the requested resource", {}))
                return
            selector = parse_qs(url.query).get("labelSelector", [""])[0]
            items = [_pod_metrics(p) for p in state.pods if p.namespace == m["ns"] and _matches(p.labels, selector)]
            self._send(
                200,
                {"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": items},
            )

    return Handler


class MetricsApiServer:
    """Context manager: `with MetricsApiServer(state) as url: ...`."""

    def __init__(self, state: MetricsApiState) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> str:
        self._thread.start()
        return self.url

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class SilentServer:
    """Accepts connections and never answers: a hung API server or a blackholed aggregated API."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                self.connections.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()
        for conn in self.connections:
            conn.close()
