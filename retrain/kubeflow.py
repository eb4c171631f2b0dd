"""Kubeflow Pipelines: a run of a pipeline version through the v2beta1 REST API.

KFP does not deduplicate runs by name, so exactly-once is ours to keep:

- the run is recorded `pending` in the history (one transaction with the decision) before any
  request, under its deterministic name, which becomes the KFP run's `display_name`;
- every create attempt first looks the name up (`GET /apis/v2beta1/runs?filter=...` on
  `display_name`, KFP's JSON filter syntax) and creates only when no run has it. So a create whose
  answer was lost (a timeout, a 5xx after it landed) is found by the retry's lookup, and a monitor
  that crashed between create and record finds its run when it relaunches the pending one at start;
- a run found under our name but carrying another trigger's `DRIFTWATCH_TRIGGER` is an error, not
  ours to adopt.

What this cannot close is two processes creating at the same instant (the lookup and the create are
two requests): the embedded monitor launches from one thread pool, and fleet mode launches from the
one lease holder, so only a lease handover in the middle of a create could race; the docs say so.

Completion is the run's `state` (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELING, CANCELED, PAUSED,
SKIPPED), looked up by name too, so nothing but the history is needed after a restart.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import httpx

from monitor.core.config import KubeflowLauncher as KubeflowConfig
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
    http_transient,
    parameters,
    retrying,
)
from retrain.run import Run

log = logging.getLogger("driftwatch.retrain.kubeflow")

RUNS = "/apis/v2beta1/runs"
OUTCOMES = {"SUCCEEDED": "succeeded", "FAILED": "failed", "CANCELED": "failed", "SKIPPED": "failed"}
"""Terminal run states; every other state (PENDING, RUNNING, CANCELING, PAUSED, unspecified) is active."""


def name_filter(name: str) -> str:
    """KFP's list filter (a JSON-encoded `Filter` message) for runs whose display_name is `name`."""
    return json.dumps({"predicates": [{"key": "display_name", "operation": "EQUALS", "string_value": name}]})


def run_body(run: Run, cfg: KubeflowConfig) -> dict[str, Any]:
    body: dict[str, Any] = {
        "display_name": run.name,
        "description": run.trigger.reason,
        "pipeline_version_reference": {"pipeline_id": cfg.pipeline_id, "pipeline_version_id": cfg.pipeline_version_id},
        "runtime_config": {"parameters": parameters(run)},
    }
    if cfg.experiment_id:
        body["experiment_id"] = cfg.experiment_id
    if cfg.service_account:
        body["service_account"] = cfg.service_account
    return body


def run_status(obj: dict[str, Any]) -> RunStatus:
    state = str(obj.get("state") or "RUNTIME_STATE_UNSPECIFIED")
    outcome = OUTCOMES.get(state)
    if outcome is None:
        return RunStatus(found=True)
    if outcome == "succeeded":
        return RunStatus(found=True, outcome=outcome)
    message = (obj.get("error") or {}).get("message")
    return RunStatus(found=True, outcome=outcome, detail=f"{state}: {message}" if message else state)


class KubeflowLauncher:
    kind = "kubeflow"

    def __init__(self, *, retry: Retry = DEFAULT_RETRY, rng: random.Random | None = None,
                 sleep: Callable[[float], None] = time.sleep, transport: httpx.BaseTransport | None = None) -> None:
        self.retry = retry
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._http = HttpApi(retry=retry, rng=self._rng, sleep=sleep, transport=transport)

    def close(self) -> None:
        self._http.close()

    def follows(self, cfg: KubeflowConfig) -> bool:
        return True

    def _headers(self, cfg: KubeflowConfig) -> dict[str, str]:
        return auth_headers(cfg.auth, "kubeflow")

    def find(self, run: Run, cfg: KubeflowConfig, *, retry: bool = True) -> dict[str, Any] | None:
        """The KFP run named after `run` (the oldest, should a race have made two), or None."""
        params = {"filter": name_filter(run.name), "page_size": "100", "sort_by": "created_at"}
        if cfg.experiment_id:
            params["experiment_id"] = cfg.experiment_id
        if cfg.namespace:
            params["namespace"] = cfg.namespace
        resp = self._http.request(f"list runs named {run.name}", "GET", cfg.host + RUNS, params=params,
                                  headers=self._headers(cfg), retry=retry)
        runs = [r for r in _json(resp).get("runs") or [] if r.get("display_name") == run.name]
        if not runs:
            return None
        ours = [r for r in runs if ((r.get("runtime_config") or {}).get("parameters") or {}).get(
            "DRIFTWATCH_TRIGGER") == run.fingerprint]
        if not ours:
            raise LaunchError(f"KFP run {run.name!r} exists but belongs to another trigger", transient=False)
        if len(ours) > 1:
            log.warning("kfp_duplicate_runs name=%s run_ids=%s", run.name, [r.get("run_id") for r in ours])
        return min(ours, key=lambda r: str(r.get("created_at") or ""))

    def launch(self, run: Run, cfg: KubeflowConfig) -> Created:
        body = run_body(run, cfg)

        def attempt() -> Created:
            if self.find(run, cfg, retry=False) is not None:
                return "exists"
            self._http.request(f"create run {run.name}", "POST", cfg.host + RUNS, json_body=body,
                               headers=self._headers(cfg), retry=False)
            return "created"

        try:
            result: Created = retrying(f"launch {run.name}", attempt, self.retry, transient=http_transient,
                                       describe=http_describe, rng=self._rng, sleep=self._sleep)
        except HttpStatusError as exc:
            raise LaunchError(f"KFP create run {run.name}: {http_describe(exc)}", transient=False) from exc
        if result == "created":
            log.info("kfp_run_created name=%s pipeline=%s version=%s", run.name, cfg.pipeline_id,
                     cfg.pipeline_version_id)
        return result

    def status(self, run: Run, cfg: KubeflowConfig) -> RunStatus:
        try:
            found = self.find(run, cfg)
        except HttpStatusError as exc:
            raise LaunchError(f"KFP list runs: {http_describe(exc)}", transient=True) from exc
        return NOT_FOUND if found is None else run_status(found)


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError as exc:
        raise LaunchError(f"KFP answered {resp.status_code} with a body that is not JSON", transient=True) from exc
    return data if isinstance(data, dict) else {}
