"""A faithful stand-in for Airflow's stable REST API DAG-run endpoints, v1 (Airflow 2) and v2 (Airflow 3).

- `POST /api/{v1,v2}/dags/{dag_id}/dagRuns`: the DAG must exist (404 otherwise); `dag_run_id`
  must match Airflow's default `allowed_run_id_pattern` (`^[A-Za-z0-9_.~:+-]+$`); `conf` must be an
  object; unknown fields are refused (v1: 400 "Unknown field.", v2: 422 like FastAPI); v2 requires
  the `logical_date` key (null allowed). A `dag_run_id` already used answers 409
  "DAGRun with DAG ID: '…' and DAGRun ID: '…' already exists". Created runs are `queued`,
  `run_type: manual`.
- `GET /api/{v}/dags/{dag_id}/dagRuns/{dag_run_id}` → the DAG run or 404.
- Errors are problem+json `{"detail", "status", "title", "type"}` (v2: FastAPI's `{"detail": ...}`).
- Auth: basic (`username`/`password`, Airflow 2's basic_auth backend) or bearer (`token`, the JWT
  Airflow 3 issues); a missing or wrong credential is 401.

Test controls: `add_dag()`, `set_state()`, `dag_runs()`, plus the shared faults (fake_http.py).
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from fake_http import FakeHttpServer

_RUNS = re.compile(r"^/api/(?P<v>v1|v2)/dags/(?P<dag>[^/]+)/dagRuns(?:/(?P<run>[^/]+))?$")
RUN_ID = re.compile(r"^[A-Za-z0-9_.~:+-]+$")
STATES = ("queued", "running", "success", "failed")


def problem(status: int, title: str, detail: str) -> tuple[int, dict[str, Any]]:
    return status, {"detail": detail, "status": status, "title": title,
                    "type": f"https://airflow.apache.org/docs/apache-airflow/stable/stable-rest-api-ref.html#section/Errors/{title.replace(' ', '')}"}


def _now() -> str:
    return datetime.now(UTC).isoformat()


class FakeAirflowAPI(FakeHttpServer):
    def __init__(self, *, username: str | None = None, password: str | None = None, token: str | None = None) -> None:
        super().__init__()
        self.username, self.password, self.token = username, password, token
        self._dags: set[str] = set()
        self._runs: dict[tuple[str, str], dict[str, Any]] = {}

    def add_dag(self, dag_id: str) -> None:
        with self.lock:
            self._dags.add(dag_id)

    def dag_runs(self, dag_id: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(json.dumps(r)) for (d, _), r in self._runs.items() if dag_id in (None, d)]

    def set_state(self, dag_id: str, run_id: str, state: str) -> None:
        assert state in STATES, state
        with self.lock:
            run = self._runs[(dag_id, run_id)]
            run["state"] = state
            if state != "queued" and run["start_date"] is None:
                run["start_date"] = _now()
            if state in ("success", "failed"):
                run["end_date"] = _now()

    def fault_body(self, status: int) -> Any:
        return problem(status, "Injected", f"injected {status}")[1]

    def _authorized(self, headers: dict[str, str]) -> bool:
        given = headers.get("authorization", "")
        if self.token is not None:
            return given == f"Bearer {self.token}"
        if self.username is not None:
            want = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return given == f"Basic {want}"
        return True

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: bytes) -> tuple[int, Any]:
        if not self._authorized(headers):
            return problem(401, "Unauthorized", "No credentials found or they are invalid")
        m = _RUNS.match(path)
        if m is None:
            return problem(404, "Not Found", f"{path} is not an API path")
        version, dag_id = m["v"], unquote(m["dag"])
        with self.lock:
            if dag_id not in self._dags:
                return problem(404, "DAG not found", f"DAG with dag_id: '{dag_id}' not found")
        if method == "GET" and m["run"]:
            run_id = unquote(m["run"])
            with self.lock:
                run = self._runs.get((dag_id, run_id))
            if run is None:
                return problem(404, "DAGRun not found",
                               f"DAGRun with DAG ID: '{dag_id}' and DagRun ID: '{run_id}' not found")
            return 200, json.loads(json.dumps(run))
        if method == "POST" and not m["run"]:
            try:
                doc = json.loads(body)
            except ValueError as exc:
                return problem(400, "Bad Request", f"invalid JSON: {exc}")
            return self._trigger(version, dag_id, doc)
        return problem(405, "Method Not Allowed", f"{method} {path}")

    def _trigger(self, version: str, dag_id: str, doc: Any) -> tuple[int, Any]:
        if not isinstance(doc, dict):
            return problem(400, "Bad Request", "the body must be a JSON object")
        allowed = {"dag_run_id", "logical_date", "conf", "note", "data_interval_start", "data_interval_end"}
        # v2 is Airflow 3's TriggerDAGRunPostBody (a StrictBaseModel: extra fields are 422s).
        allowed |= {"run_after", "partition_key", "bundle_version"} if version == "v2" else {"execution_date"}
        if unknown := sorted(set(doc) - allowed):
            if version == "v2":
                return 422, {"detail": [{"type": "extra_forbidden", "loc": ["body", k], "msg": "Extra inputs are not permitted"}
                                        for k in unknown]}
            return problem(400, "Bad Request", str({k: ["Unknown field."] for k in unknown}))
        if version == "v2" and "logical_date" not in doc:
            return 422, {"detail": [{"type": "missing", "loc": ["body", "logical_date"], "msg": "Field required"}]}
        run_id = doc.get("dag_run_id")
        if not isinstance(run_id, str) or not RUN_ID.match(run_id):
            return problem(400, "Bad Request", f"The run_id provided '{run_id}' does not match the pattern "
                           f"'{RUN_ID.pattern}'")
        conf = doc.get("conf", {})
        if not isinstance(conf, dict):
            return problem(400, "Bad Request", "conf must be an object")
        with self.lock:
            if (dag_id, run_id) in self._runs:
                return problem(409, "Conflict", f"DAGRun with DAG ID: '{dag_id}' and DAGRun ID: '{run_id}' already exists")
            run = {
                "dag_run_id": run_id, "dag_id": dag_id, "logical_date": doc.get("logical_date"),
                "queued_at": _now(), "start_date": None, "end_date": None,
                "data_interval_start": None, "data_interval_end": None, "last_scheduling_decision": None,
                "run_type": "manual", "state": "queued", "conf": conf, "note": doc.get("note"),
            }
            if version == "v1":
                run["execution_date"] = run["logical_date"] = doc.get("logical_date") or _now()
                run["external_trigger"] = True
            else:
                run["triggered_by"] = "rest_api"
            self._runs[(dag_id, run_id)] = run
            return 200, json.loads(json.dumps(run))
