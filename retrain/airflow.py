"""Airflow: a DAG run through the stable REST API, the trigger in its `conf`.

`POST /api/v1/dags/{dag_id}/dagRuns` (Airflow 2) or `/api/v2/...` (Airflow 3, whose body also
names `logical_date`, null for "no data interval") with `dag_run_id` = the run's deterministic
name. Airflow refuses a second DAG run with the same id (409), so a retry after a lost answer, a
restarted monitor and a second replica all land on the one run: a 409 is "already launched" once
the existing run's `conf` carries our trigger. Completion is the DAG run's `state`: queued and
running are active, success and failed are final.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from monitor.core.config import AirflowLauncher as AirflowConfig
from retrain.launcher import (
    DEFAULT_RETRY,
    NOT_FOUND,
    Created,
    HttpApi,
    HttpStatusError,
    LaunchError,
    Retry,
    RunStatus,
    auth_headers,
    http_describe,
    parameters,
)
from retrain.run import Run

OUTCOMES = {"success": "succeeded", "failed": "failed"}


def dag_runs_url(cfg: AirflowConfig) -> str:
    return f"{cfg.host}/api/{cfg.api_version}/dags/{quote(cfg.dag_id, safe='')}/dagRuns"


def conf(run: Run) -> dict[str, Any]:
    """The DRIFTWATCH_* context at the top level (`dag_run.conf["DRIFTWATCH_MODEL"]`), the trigger whole beside it."""
    return {**parameters(run), "driftwatch": {"run": run.name, "trigger": run.trigger.to_json()}}


def dag_run_body(run: Run, cfg: AirflowConfig) -> dict[str, Any]:
    body: dict[str, Any] = {"dag_run_id": run.name, "conf": conf(run), "note": run.trigger.reason}
    if cfg.api_version == "v2":
        body["logical_date"] = None
    return body


def dag_run_status(obj: dict[str, Any]) -> RunStatus:
    state = str(obj.get("state") or "")
    outcome = OUTCOMES.get(state)
    if outcome is None:
        return RunStatus(found=True)
    return RunStatus(found=True, outcome=outcome, detail=None if outcome == "succeeded" else f"DAG run {state}")


class AirflowLauncher:
    kind = "airflow"

    def __init__(self, *, retry: Retry = DEFAULT_RETRY, rng: random.Random | None = None,
                 sleep: Callable[[float], None] = time.sleep, transport: httpx.BaseTransport | None = None) -> None:
        self.retry = retry
        self._http = HttpApi(retry=retry, rng=rng, sleep=sleep, transport=transport)

    def close(self) -> None:
        self._http.close()

    def follows(self, cfg: AirflowConfig) -> bool:
        return True

    def _get(self, run: Run, cfg: AirflowConfig) -> dict[str, Any]:
        resp = self._http.request(f"get DAG run {cfg.dag_id}/{run.name}", "GET",
                                  f"{dag_runs_url(cfg)}/{quote(run.name, safe='')}",
                                  headers=lambda: auth_headers(cfg.auth, "airflow"))
        data = resp.json()
        return data if isinstance(data, dict) else {}

    def launch(self, run: Run, cfg: AirflowConfig) -> Created:
        what = f"trigger DAG {cfg.dag_id} run {run.name}"
        try:
            self._http.request(what, "POST", dag_runs_url(cfg), json_body=dag_run_body(run, cfg),
                               headers=lambda: auth_headers(cfg.auth, "airflow"))
            return "created"
        except HttpStatusError as exc:
            if exc.status != 409:
                raise LaunchError(f"{what}: {http_describe(exc)}", transient=False) from exc
        try:
            existing = self._get(run, cfg)
        except HttpStatusError as exc:
            raise LaunchError(f"{what} answered 409, then get: {http_describe(exc)}", transient=True) from exc
        owner = (existing.get("conf") or {}).get("DRIFTWATCH_TRIGGER")
        if owner != run.fingerprint:
            raise LaunchError(f"DAG run {cfg.dag_id}/{run.name} exists but belongs to another trigger ({owner!r})",
                              transient=False)
        return "exists"

    def status(self, run: Run, cfg: AirflowConfig) -> RunStatus:
        try:
            return dag_run_status(self._get(run, cfg))
        except HttpStatusError as exc:
            if exc.status == 404:
                return NOT_FOUND
            raise LaunchError(f"get DAG run {cfg.dag_id}/{run.name}: {http_describe(exc)}", transient=True) from exc
