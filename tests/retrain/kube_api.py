"""A faithful stand-in for the Kubernetes API server's batch/v1 Jobs endpoints, on 127.0.0.1.

It speaks the real JSON: Job objects with uid / resourceVersion / creationTimestamp, JobList,
watch streams of WatchEvents as chunked JSON lines (ADDED / MODIFIED / DELETED / BOOKMARK, ERROR
410 for an expired resourceVersion), and `Status` objects for errors (400, 404, 409 AlreadyExists,
422 Invalid, 500). Created Jobs are validated strictly with kubernetes-validate (1.33), so every
manifest a test sends is checked like an API server would.

Test controls: `inject()` faults (status codes, delays before or after the request takes effect),
`complete()` / `fail()` a Job, `compact()` the event history (so old watches get 410),
`faults_left()` (has the injected fault been hit yet?) and `requests` (method, path) for assertions. Reusable by any test that needs a cluster. `BlackHole`
is the API server that accepts and never answers.

It also serves Argo's `argoproj.io/v1alpha1` Workflows as the custom resource they are
(`/apis/argoproj.io/v1alpha1/namespaces/{ns}/workflows[/{name}]`): create (201, validated against
Argo's published JSON schema, vendored in argo_workflow_schema.json; 409 AlreadyExists; 422
Invalid), get (404 NotFound Status), with the same faults. `set_phase()` plays Argo's controller.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import kubernetes_validate
import yaml
from kubernetes import client

_JOBS = re.compile(r"^/apis/batch/v1/namespaces/(?P<ns>[a-z0-9-]+)/jobs(?:/(?P<name>[^/]+))?$")
_ALL_JOBS = "/apis/batch/v1/jobs"
_WORKFLOWS = re.compile(r"^/apis/argoproj\.io/v1alpha1/namespaces/(?P<ns>[a-z0-9-]+)/workflows(?:/(?P<name>[^/]+))?$")
ARGO_SCHEMA = json.loads((Path(__file__).parent / "argo_workflow_schema.json").read_text())
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def write_kubeconfig(path: Path, server: str) -> Path:
    """A kubeconfig whose one context talks to `server` with a dummy token (for clients in other processes)."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "u"}}],
    }))
    return path


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_object(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The API server's `Status` error body."""
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": message, "reason": reason, "code": code}
    if details is not None:
        body["details"] = details
    return body


# -- label selectors ---------------------------------------------------------------------------------

_SET_RE = re.compile(r"^\s*(?P<key>[^\s!=]+)\s+(?P<op>in|notin)\s+\((?P<values>[^)]*)\)\s*$")


def parse_selector(selector: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """`a=b,c!=d,e,!f,g in (h,i)` → [(key, op, values)]; raises ValueError like the API's 400."""
    terms, depth, cur = [], 0, ""
    for ch in selector:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        terms.append(cur)
    out: list[tuple[str, str, tuple[str, ...]]] = []
    for term in terms:
        t = term.strip()
        if not t:
            raise ValueError(f"invalid label selector {selector!r}: empty requirement")
        if m := _SET_RE.match(t):
            vals = tuple(v.strip() for v in m["values"].split(",") if v.strip())
            out.append((m["key"], m["op"], vals))
        elif "!=" in t:
            k, v = t.split("!=", 1)
            out.append((k.strip(), "!=", (v.strip(),)))
        elif "==" in t or "=" in t:
            k, v = t.split("==", 1) if "==" in t else t.split("=", 1)
            out.append((k.strip(), "=", (v.strip(),)))
        elif t.startswith("!"):
            out.append((t[1:].strip(), "!", ()))
        else:
            out.append((t, "exists", ()))
    for key, _, _ in out:
        if not key or " " in key:
            raise ValueError(f"invalid label selector {selector!r}")
    return out


def matches(selector: list[tuple[str, str, tuple[str, ...]]], labels: dict[str, str]) -> bool:
    for key, op, vals in selector:
        have = labels.get(key)
        ok = {
            "=": have == vals[0] if vals else False,
            "!=": have != vals[0] if vals else True,
            "exists": key in labels,
            "!": key not in labels,
            "in": have in vals,
            "notin": have not in vals,
        }[op]
        if not ok:
            return False
    return True


# -- faults --------------------------------------------------------------------------------------------


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int | None
    times: int
    delay: float
    after: bool
    """Delay after the request took effect (a client timeout on a request that landed)."""
    watch_only: bool


# -- server --------------------------------------------------------------------------------------------


class FakeKubeAPI:
    def __init__(self, *, validate: bool = True) -> None:
        self.validate = validate
        self._cond = threading.Condition()
        self._jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self._workflows: dict[tuple[str, str], dict[str, Any]] = {}
        self._rv = 100
        self._events: list[tuple[int, str, str, dict[str, Any]]] = []  # (rv, ns, type, object)
        self._compacted = 0
        self._faults: list[Fault] = []
        self._stopping = False
        self.requests: list[tuple[str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeKubeAPI:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-kube-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def api_client(self, **config: Any) -> client.ApiClient:
        cfg = client.Configuration(host=self.url)
        for key, value in config.items():
            setattr(cfg, key, value)
        return client.ApiClient(cfg)

    # -- test controls ------------------------------------------------------------------------------

    def inject(self, method: str, path: str = ".*", *, status: int | None = 500, times: int = 1,
               delay: float = 0.0, after: bool = False, watch_only: bool = False) -> None:
        """Make the next `times` matching requests fail with `status` and/or wait `delay` seconds."""
        with self._cond:
            self._faults.append(Fault(method.upper(), re.compile(path), status, times, delay, after, watch_only))

    def faults_left(self) -> int:
        """Injected faults not yet taken by a request: 0 once every injected one has been hit."""
        with self._cond:
            return sum(f.times for f in self._faults)

    def jobs(self, namespace: str | None = None) -> list[dict[str, Any]]:
        with self._cond:
            return [json.loads(json.dumps(j)) for (ns, _), j in sorted(self._jobs.items())
                    if namespace is None or ns == namespace]

    def complete(self, namespace: str, name: str) -> None:
        ts = _now()
        self._finish(namespace, name, {"succeeded": 1, "completionTime": ts, "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
             "message": "Reached expected number of succeeded pods", "lastProbeTime": ts, "lastTransitionTime": ts},
            {"type": "Complete", "status": "True", "reason": "CompletionsReached",
             "message": "Reached expected number of succeeded pods", "lastProbeTime": ts, "lastTransitionTime": ts},
        ]})

    def fail(self, namespace: str, name: str, reason: str = "BackoffLimitExceeded") -> None:
        ts = _now()
        message = {"BackoffLimitExceeded": "Job has reached the specified backoff limit",
                   "DeadlineExceeded": "Job was active longer than specified deadline"}.get(reason, reason)
        self._finish(namespace, name, {"failed": 1, "conditions": [
            {"type": "FailureTarget", "status": "True", "reason": reason, "message": message,
             "lastProbeTime": ts, "lastTransitionTime": ts},
            {"type": "Failed", "status": "True", "reason": reason, "message": message,
             "lastProbeTime": ts, "lastTransitionTime": ts},
        ]})

    def workflows(self, namespace: str | None = None) -> list[dict[str, Any]]:
        with self._cond:
            return [json.loads(json.dumps(w)) for (ns, _), w in sorted(self._workflows.items())
                    if namespace is None or ns == namespace]

    def set_phase(self, namespace: str, name: str, phase: str, message: str = "") -> None:
        """What Argo's workflow controller writes: `status.phase` (and `message` when it failed)."""
        with self._cond:
            wf = self._workflows[(namespace, name)]
            wf["status"] = {**wf.get("status", {}), "phase": phase, "startedAt": _now()}
            if phase in ("Succeeded", "Failed", "Error"):
                wf["status"]["finishedAt"] = _now()
            if message:
                wf["status"]["message"] = message
            self._rv += 1
            wf["metadata"]["resourceVersion"] = str(self._rv)

    def delete_workflow(self, namespace: str, name: str) -> None:
        with self._cond:
            del self._workflows[(namespace, name)]

    def create_workflow(self, ns: str, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict):
            return 400, status_object(400, "BadRequest", "the body must be a Workflow object")
        try:
            jsonschema.validate(body, ARGO_SCHEMA)
        except jsonschema.ValidationError as exc:
            path = ".".join(str(p) for p in exc.absolute_path) or "(root)"
            return 422, status_object(422, "Invalid", f"Workflow.argoproj.io is invalid: {path}: {exc.message}",
                                      {"kind": "Workflow", "group": "argoproj.io",
                                       "causes": [{"reason": "FieldValueInvalid", "message": exc.message, "field": path}]})
        meta = body.get("metadata") or {}
        name = meta.get("name")
        if meta.get("namespace") not in (None, ns):
            return 400, status_object(400, "BadRequest",
                                      "the namespace of the provided object does not match the namespace sent on the request")
        if not isinstance(name, str) or not _DNS_LABEL.match(name) or len(name) > 63:
            return 422, status_object(422, "Invalid", f"metadata.name: Invalid value: {name!r}")
        with self._cond:
            if (ns, name) in self._workflows:
                return 409, status_object(409, "AlreadyExists", f'workflows.argoproj.io "{name}" already exists',
                                          {"name": name, "group": "argoproj.io", "kind": "workflows"})
            self._rv += 1
            wf = json.loads(json.dumps(body))
            wf["metadata"] = {**meta, "namespace": ns, "uid": str(uuid.uuid4()), "generation": 1,
                              "creationTimestamp": _now(), "resourceVersion": str(self._rv)}
            self._workflows[(ns, name)] = wf
            return 201, json.loads(json.dumps(wf))

    def get_workflow(self, ns: str, name: str) -> tuple[int, dict[str, Any]]:
        with self._cond:
            wf = self._workflows.get((ns, name))
        if wf is None:
            return 404, status_object(404, "NotFound", f'workflows.argoproj.io "{name}" not found',
                                      {"name": name, "group": "argoproj.io", "kind": "workflows"})
        return 200, json.loads(json.dumps(wf))

    def compact(self) -> None:
        """Forget the event history: watches from an older resourceVersion now get 410 Expired."""
        with self._cond:
            self._compacted = self._rv
            self._events.clear()

    def _finish(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        with self._cond:
            job = self._jobs[(namespace, name)]
            job["status"] = {**{k: v for k, v in job["status"].items() if k not in ("active", "ready")},
                             "active": 0, "ready": 0, **status}
            self._emit(namespace, "MODIFIED", job)

    def _emit(self, ns: str, type_: str, job: dict[str, Any]) -> None:
        """Call with the condition held: bump the resourceVersion and record the event."""
        self._rv += 1
        job["metadata"]["resourceVersion"] = str(self._rv)
        self._events.append((self._rv, ns, type_, json.loads(json.dumps(job))))
        self._cond.notify_all()

    def _take_fault(self, method: str, path: str, watching: bool) -> Fault | None:
        with self._cond:
            for f in self._faults:
                if f.method == method and f.path.search(path) and (watching or not f.watch_only) and f.times > 0:
                    f.times -= 1
                    return f
        return None

    # -- API operations (each returns (status code, body)) ----------------------------------------

    def create(self, ns: str, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict) or body.get("kind") != "Job" or body.get("apiVersion") != "batch/v1":
            return 400, status_object(400, "BadRequest", "the body must be a batch/v1 Job")
        meta = body.get("metadata") or {}
        name = meta.get("name")
        if meta.get("namespace") not in (None, ns):
            return 400, status_object(400, "BadRequest",
                                      "the namespace of the provided object does not match the namespace sent on the request")
        if not isinstance(name, str) or not _DNS_LABEL.match(name) or len(name) > 63:
            return 422, self._invalid(str(name), "metadata.name", "a lowercase RFC 1123 label of at most 63 characters")
        if self.validate:
            try:
                kubernetes_validate.validate(body, "1.33", strict=True)
            except kubernetes_validate.ValidationError as exc:
                return 422, self._invalid(name, ".".join(str(p) for p in exc.path) or "(root)", exc.message)
        with self._cond:
            if (ns, name) in self._jobs:
                return 409, status_object(409, "AlreadyExists", f'jobs.batch "{name}" already exists',
                                          {"name": name, "group": "batch", "kind": "jobs"})
            uid = str(uuid.uuid4())
            job = json.loads(json.dumps(body))
            job["metadata"] = {**meta, "namespace": ns, "uid": uid, "generation": 1, "creationTimestamp": _now()}
            spec = job["spec"]
            spec.setdefault("parallelism", 1)
            spec.setdefault("completions", 1)
            spec.setdefault("completionMode", "NonIndexed")
            spec.setdefault("suspend", False)
            spec.setdefault("manualSelector", False)
            spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
            pod_meta = spec["template"].setdefault("metadata", {})
            pod_meta["labels"] = {**(pod_meta.get("labels") or {}), "batch.kubernetes.io/controller-uid": uid,
                                  "batch.kubernetes.io/job-name": name, "controller-uid": uid, "job-name": name}
            job["status"] = {"active": 1, "ready": 0, "startTime": _now()}
            self._jobs[(ns, name)] = job
            self._emit(ns, "ADDED", job)
            return 201, json.loads(json.dumps(job))

    def get(self, ns: str, name: str) -> tuple[int, dict[str, Any]]:
        with self._cond:
            job = self._jobs.get((ns, name))
            if job is None:
                return 404, self._not_found(name)
            return 200, json.loads(json.dumps(job))

    def list(self, ns: str | None, selector: list[Any]) -> tuple[int, dict[str, Any]]:
        with self._cond:
            items = [json.loads(json.dumps(j)) for (n, _), j in sorted(self._jobs.items())
                     if (ns is None or n == ns) and matches(selector, j["metadata"].get("labels") or {})]
            return 200, {"kind": "JobList", "apiVersion": "batch/v1",
                         "metadata": {"resourceVersion": str(self._rv)}, "items": items}

    def delete(self, ns: str, name: str) -> tuple[int, dict[str, Any]]:
        with self._cond:
            job = self._jobs.pop((ns, name), None)
            if job is None:
                return 404, self._not_found(name)
            job["metadata"]["deletionTimestamp"] = _now()
            self._emit(ns, "DELETED", job)
            return 200, json.loads(json.dumps(job))

    def watch(self, ns: str | None, selector: list[Any], rv: str | None, timeout: float,
              bookmarks: bool) -> Iterator[dict[str, Any]]:
        """WatchEvents after `rv` (or synthetic ADDED for the current state without one)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            if rv in (None, "", "0"):
                start = self._rv
                initial = [j for (n, _), j in sorted(self._jobs.items()) if ns is None or n == ns]
                pending = [{"type": "ADDED", "object": json.loads(json.dumps(j))} for j in initial
                           if matches(selector, j["metadata"].get("labels") or {})]
            else:
                start = int(rv)
                pending = []
                if start < self._compacted:
                    yield {"type": "ERROR", "object": status_object(
                        410, "Expired", f"too old resource version: {start} ({self._compacted})")}
                    return
        yield from pending
        last = start
        while True:
            with self._cond:
                while not self._stopping and time.monotonic() < deadline and not any(
                        r > last for r, *_ in self._events):
                    self._cond.wait(timeout=max(0.0, min(0.5, deadline - time.monotonic())))
                if self._stopping:
                    return
                batch = [(r, n, t, o) for r, n, t, o in self._events if r > last]
                current = self._rv
            for r, n, t, o in batch:
                last = r
                if (ns is None or n == ns) and matches(selector, o["metadata"].get("labels") or {}):
                    yield {"type": t, "object": o}
            if time.monotonic() >= deadline:
                if bookmarks:
                    yield {"type": "BOOKMARK", "object": {"kind": "Job", "apiVersion": "batch/v1",
                                                          "metadata": {"resourceVersion": str(current)}}}
                return

    def _not_found(self, name: str) -> dict[str, Any]:
        return status_object(404, "NotFound", f'jobs.batch "{name}" not found',
                             {"name": name, "group": "batch", "kind": "jobs"})

    def _invalid(self, name: str, field: str, message: str) -> dict[str, Any]:
        return status_object(422, "Invalid", f'Job.batch "{name}" is invalid: {field}: Invalid value: {message}',
                             {"name": name, "group": "batch", "kind": "Job",
                              "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}]})

    # -- HTTP ---------------------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up
                    self.wfile.write(data)

            def _route(self, method: str) -> None:
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                watching = query.get("watch") in ("true", "1")
                api.requests.append((method, url.path + ("?watch" if watching else "")))
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                fault = api._take_fault(method, url.path, watching)
                if fault and fault.delay and not fault.after:
                    time.sleep(fault.delay)
                if fault and fault.status is not None:
                    reason = {500: "InternalError", 503: "ServiceUnavailable", 429: "TooManyRequests",
                              403: "Forbidden", 405: "MethodNotAllowed", 409: "Conflict"}.get(fault.status, "Unknown")
                    self._send(fault.status, status_object(fault.status, reason, f"injected {fault.status}"))
                    return
                try:
                    selector = parse_selector(query.get("labelSelector", ""))
                except ValueError as exc:
                    self._send(400, status_object(400, "BadRequest", str(exc)))
                    return
                if w := _WORKFLOWS.match(url.path):
                    if method == "POST" and w["name"] is None:
                        try:
                            wf_body = json.loads(raw)
                        except ValueError as exc:
                            self._send(400, status_object(400, "BadRequest", f"invalid JSON: {exc}"))
                            return
                        code, out = api.create_workflow(w["ns"], wf_body)
                    elif method == "GET" and w["name"] is not None:
                        code, out = api.get_workflow(w["ns"], w["name"])
                    else:
                        code, out = 405, status_object(405, "MethodNotAllowed", f"{method} is not supported here")
                    if fault and fault.delay and fault.after:
                        time.sleep(fault.delay)
                    self._send(code, out)
                    return
                m = _JOBS.match(url.path)
                if url.path == _ALL_JOBS and method == "GET":
                    ns, name = None, None
                elif m:
                    ns, name = m["ns"], m["name"]
                else:
                    self._send(404, status_object(404, "NotFound", "the server could not find the requested resource"))
                    return
                if method == "GET" and name is None and watching:
                    self._stream(api.watch(ns, selector, query.get("resourceVersion"),
                                           float(query.get("timeoutSeconds", 1800)),
                                           query.get("allowWatchBookmarks") == "true"))
                    return
                if method == "POST" and name is None and ns is not None:
                    try:
                        body = json.loads(raw)
                    except ValueError as exc:
                        self._send(400, status_object(400, "BadRequest", f"invalid JSON: {exc}"))
                        return
                    code, out = api.create(ns, body)
                elif method == "GET" and name is None:
                    code, out = api.list(ns, selector)
                elif method == "GET" and ns is not None and name is not None:
                    code, out = api.get(ns, name)
                elif method == "DELETE" and ns is not None and name is not None:
                    code, out = api.delete(ns, name)
                else:
                    code, out = 405, status_object(405, "MethodNotAllowed", f"{method} is not supported here")
                if fault and fault.delay and fault.after:
                    time.sleep(fault.delay)
                self._send(code, out)

            def _stream(self, events: Iterator[dict[str, Any]]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for event in events:
                        line = (json.dumps(event) + "\n").encode()
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_DELETE(self) -> None:
                self._route("DELETE")

        return Handler


@contextmanager
def running_api(**kwargs: Any) -> Iterator[FakeKubeAPI]:
    api = FakeKubeAPI(**kwargs).start()
    try:
        yield api
    finally:
        api.stop()


class BlackHole:
    """A TCP port on 127.0.0.1 that accepts connections and never answers (an API server hung or
    behind a dead load balancer); `accepted` counts the connections, so retries can be counted."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._held: list[socket.socket] = []
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept, name="black-hole", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:  # closed
                return
            self._held.append(conn)
            self.accepted += 1

    def __enter__(self) -> BlackHole:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._sock.close()
        for conn in self._held:
            conn.close()
