"""A faithful stand-in for the Kubeflow Pipelines v2beta1 run API (`/apis/v2beta1/runs`), on 127.0.0.1.

It speaks the documented shapes (backend/api/v2beta1 run.proto through grpc-gateway's JSON):

- `POST /apis/v2beta1/runs` takes a `Run` (`display_name` required, `pipeline_version_reference`
  with a known pipeline and version, `runtime_config.parameters` whose names the pipeline version
  declares) and answers 200 with the stored run: `run_id`, `experiment_id` (the default experiment
  when none is given), `state: PENDING`, `storage_state: AVAILABLE`, `created_at`. Like KFP, it
  does NOT deduplicate: the same `display_name` twice makes two runs.
- `GET /apis/v2beta1/runs` with `filter` (a JSON `Filter`: `predicates` of `key`, `operation`
  EQUALS / NOT_EQUALS / IS_SUBSTRING, `string_value`), `experiment_id`, `page_size`, `sort_by`;
  an empty result omits `runs` (proto3 JSON leaves out empty repeated fields).
- `GET /apis/v2beta1/runs/{run_id}`.
- Errors are grpc-gateway statuses `{"error", "code", "message", "details"}` with the gRPC code
  (3 InvalidArgument → 400, 5 NotFound → 404, 16 Unauthenticated → 401, 13 Internal → 500).
- With `token` set every request needs `Authorization: Bearer <token>`.

Test controls: `add_pipeline()`, `set_state()`, `runs()`, plus the shared faults (fake_http.py).
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fake_http import FakeHttpServer

_RUN = re.compile(r"^/apis/v2beta1/runs/(?P<id>[^/:]+)$")
DEFAULT_EXPERIMENT = "00000000-0000-0000-0000-00000000e0e0"
STATES = {"RUNTIME_STATE_UNSPECIFIED", "PENDING", "RUNNING", "SUCCEEDED", "SKIPPED", "FAILED", "CANCELING",
          "CANCELED", "PAUSED"}
GRPC_HTTP = {3: 400, 5: 404, 13: 500, 14: 503, 16: 401}
HTTP_GRPC = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 429: 8, 500: 13, 502: 14, 503: 14, 504: 4}


def grpc_error(code: int, message: str) -> tuple[int, dict[str, Any]]:
    return GRPC_HTTP.get(code, 500), {"error": message, "code": code, "message": message, "details": []}


class FakeKfpAPI(FakeHttpServer):
    def __init__(self, *, token: str | None = None) -> None:
        super().__init__()
        self.token = token
        self._pipelines: dict[tuple[str, str], set[str]] = {}
        self._runs: dict[str, dict[str, Any]] = {}
        self._t0 = datetime(2026, 1, 1, tzinfo=UTC)

    # -- test controls ----------------------------------------------------------------------------

    def add_pipeline(self, pipeline_id: str, version_id: str, inputs: set[str]) -> None:
        """A pipeline version whose root declares `inputs` as its parameters."""
        with self.lock:
            self._pipelines[(pipeline_id, version_id)] = set(inputs)

    def runs(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(json.dumps(r)) for r in self._runs.values()]

    def set_state(self, run_id: str, state: str, error: str | None = None) -> None:
        assert state in STATES, state
        with self.lock:
            run = self._runs[run_id]
            run["state"] = state
            run["state_history"].append({"update_time": self._stamp(), "state": state})
            if state in ("SUCCEEDED", "FAILED", "CANCELED", "SKIPPED"):
                run["finished_at"] = self._stamp()
            if error is not None:
                run["error"] = {"code": 2, "message": error, "details": []}

    def fault_body(self, status: int) -> Any:
        return grpc_error(HTTP_GRPC.get(status, 2), f"injected {status}")[1]

    # -- API --------------------------------------------------------------------------------------------

    def _stamp(self) -> str:
        with self.lock:  # strictly increasing, so created_at orders runs like KFP's clock would
            self._t0 += timedelta(milliseconds=1)
            return self._t0.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: bytes) -> tuple[int, Any]:
        if self.token is not None and headers.get("authorization") != f"Bearer {self.token}":
            return grpc_error(16, "Unauthenticated: missing or invalid bearer token")
        if path == "/apis/v2beta1/runs" and method == "POST":
            try:
                doc = json.loads(body)
            except ValueError as exc:
                return grpc_error(3, f"invalid JSON: {exc}")
            return self._create(doc)
        if path == "/apis/v2beta1/runs" and method == "GET":
            return self._list(query)
        if (m := _RUN.match(path)) and method == "GET":
            with self.lock:
                run = self._runs.get(m["id"])
            if run is None:
                return grpc_error(5, f"Failed to get run: run {m['id']} not found")
            return 200, run
        return grpc_error(5, f"Not Found: {method} {path}")

    def _create(self, doc: Any) -> tuple[int, Any]:
        if not isinstance(doc, dict):
            return grpc_error(3, "the body must be a Run object")
        known = {"experiment_id", "display_name", "description", "pipeline_version_reference", "pipeline_spec",
                 "runtime_config", "service_account", "recurring_run_id"}
        if unknown := set(doc) - known:
            return grpc_error(3, f"unknown field(s) in Run: {sorted(unknown)}")
        name = doc.get("display_name")
        if not isinstance(name, str) or not name:
            return grpc_error(3, "Failed to create a run due to invalid input: run name (display_name) is empty")
        ref = doc.get("pipeline_version_reference") or {}
        key = (ref.get("pipeline_id"), ref.get("pipeline_version_id"))
        with self.lock:
            inputs = self._pipelines.get(key)  # type: ignore[arg-type]
        if inputs is None:
            return grpc_error(5, f"Failed to create a run: pipeline version {key[1]!r} of pipeline {key[0]!r} not found")
        params = (doc.get("runtime_config") or {}).get("parameters") or {}
        if not isinstance(params, dict):
            return grpc_error(3, "runtime_config.parameters must be a map")
        if undeclared := set(params) - inputs:
            return grpc_error(3, f"Failed to create a run: parameter(s) {sorted(undeclared)} not declared by the pipeline")
        now = self._stamp()
        run = {
            "run_id": str(uuid.uuid4()),
            "experiment_id": doc.get("experiment_id") or DEFAULT_EXPERIMENT,
            "display_name": name,
            "description": doc.get("description", ""),
            "storage_state": "AVAILABLE",
            "pipeline_version_reference": {"pipeline_id": key[0], "pipeline_version_id": key[1]},
            "runtime_config": {"parameters": params, "pipeline_root": "minio://mlpipeline/v2/artifacts"},
            "service_account": doc.get("service_account") or "pipeline-runner",
            "created_at": now,
            "scheduled_at": now,
            "finished_at": "1970-01-01T00:00:00Z",
            "state": "PENDING",
            "state_history": [{"update_time": now, "state": "PENDING"}],
        }
        with self.lock:
            self._runs[run["run_id"]] = run
        return 200, json.loads(json.dumps(run))

    def _list(self, query: dict[str, str]) -> tuple[int, Any]:
        predicates: list[dict[str, Any]] = []
        if "filter" in query:
            try:
                flt = json.loads(query["filter"])
                predicates = flt.get("predicates") or []
                if not isinstance(predicates, list) or not all(isinstance(p, dict) for p in predicates):
                    raise ValueError("predicates must be a list of objects")
            except (ValueError, AttributeError) as exc:
                return grpc_error(3, f"Failed to list runs: invalid filter: {exc}")
        for p in predicates:
            if p.get("operation") not in ("EQUALS", "NOT_EQUALS", "IS_SUBSTRING"):
                return grpc_error(3, f"invalid filter: operation {p.get('operation')!r} is not supported on strings")
            if p.get("key") not in ("display_name", "name", "run_id", "state"):
                return grpc_error(3, f"invalid filter: key {p.get('key')!r} is not a run field")
            if not isinstance(p.get("string_value"), str):
                return grpc_error(3, "invalid filter: string_value is required")
        with self.lock:
            runs = [json.loads(json.dumps(r)) for r in self._runs.values()]
        experiment = query.get("experiment_id")
        out = [r for r in runs if (experiment is None or r["experiment_id"] == experiment)
               and all(_match(r, p) for p in predicates)]
        sort = query.get("sort_by", "created_at")
        field, _, order = sort.partition(" ")
        out.sort(key=lambda r: str(r.get(field, "")), reverse=order == "desc")
        size = int(query.get("page_size") or 20)
        page = out[:size]
        body: dict[str, Any] = {"total_size": len(out)}
        if page:
            body["runs"] = page
        if len(out) > size:
            body["next_page_token"] = "opaque-token"
        return 200, body


def _match(run: dict[str, Any], p: dict[str, Any]) -> bool:
    key = "display_name" if p["key"] == "name" else p["key"]
    value = str(run.get(key, ""))
    op, want = p["operation"], p["string_value"]
    if op == "EQUALS":
        return value == want
    if op == "NOT_EQUALS":
        return value != want
    return want in value
