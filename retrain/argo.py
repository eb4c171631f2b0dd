"""Argo Workflows: a Workflow submitted from a WorkflowTemplate through the Kubernetes API.

The Workflow is a custom object (`argoproj.io/v1alpha1`, plural `workflows`) created with the
official client's CustomObjectsApi, so RBAC, kubeconfig and in-cluster auth are the Job
launcher's. Its name is the run's deterministic name: a second create for the same trigger answers
409 AlreadyExists, which is "already launched" once the trigger label matches. The DRIFTWATCH_*
context goes in as `spec.arguments.parameters`, which Argo merges over the template's own
parameter defaults. Completion is `status.phase`: Succeeded, Failed or Error (a Workflow that was
deleted is reported as not found, and the controller closes its run).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from monitor.core.config import ArgoLauncher as ArgoConfig
from retrain.kubernetes import api_describe, api_message, api_reason, api_transient, default_api_client
from retrain.launcher import DEFAULT_RETRY, NOT_FOUND, Created, LaunchError, Retry, RunStatus, parameters, retrying
from retrain.manifest import LABEL_TRIGGER, job_annotations, job_labels
from retrain.run import Run

GROUP = "argoproj.io"
VERSION = "v1alpha1"
PLURAL = "workflows"
FINISHED = {"Succeeded": "succeeded", "Failed": "failed", "Error": "failed"}
"""Argo's terminal `status.phase` values (Pending and Running are not, nor the empty phase of a
Workflow the controller has not picked up yet)."""


def build_workflow(run: Run, cfg: ArgoConfig) -> dict[str, Any]:
    """The Workflow to create for `run` (pure): identity and context on a WorkflowTemplate reference."""
    ref: dict[str, Any] = {"name": cfg.workflow_template}
    if cfg.cluster_scope:
        ref["clusterScope"] = True
    spec: dict[str, Any] = {
        "workflowTemplateRef": ref,
        "arguments": {"parameters": [{"name": k, "value": v} for k, v in parameters(run).items()]},
    }
    if cfg.service_account:
        spec["serviceAccountName"] = cfg.service_account
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workflow",
        "metadata": {"name": run.name, "namespace": cfg.namespace, "labels": job_labels(run),
                     "annotations": job_annotations(run)},
        "spec": spec,
    }


def workflow_status(obj: dict[str, Any]) -> RunStatus:
    status = obj.get("status") or {}
    phase = status.get("phase") or ""
    outcome = FINISHED.get(phase)
    if outcome is None:
        return RunStatus(found=True)
    detail = None if outcome == "succeeded" else f"{phase}: {status.get('message') or 'no message'}"
    return RunStatus(found=True, outcome=outcome, detail=detail)


class ArgoLauncher:
    kind = "argo"

    def __init__(self, api_client: client.ApiClient | None = None, *, retry: Retry = DEFAULT_RETRY,
                 rng: random.Random | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self._api_client = api_client or default_api_client()
        self._api = client.CustomObjectsApi(self._api_client)
        self.retry = retry
        self._rng = rng or random.Random()
        self._sleep = sleep

    def follows(self, cfg: ArgoConfig) -> bool:
        return True

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        return retrying(what, fn, self.retry, transient=api_transient, describe=api_describe, rng=self._rng,
                        sleep=self._sleep)

    def _get(self, run: Run, ns: str) -> dict[str, Any]:
        return self._call(f"get workflow {ns}/{run.name}", lambda: self._api.get_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, run.name, _request_timeout=self.retry.timeout))  # type: ignore[no-any-return]

    def launch(self, run: Run, cfg: ArgoConfig) -> Created:
        body = build_workflow(run, cfg)
        ns = cfg.namespace
        try:
            self._call(f"create workflow {ns}/{run.name}", lambda: self._api.create_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, body, _request_timeout=self.retry.timeout))
            return "created"
        except ApiException as exc:
            if exc.status != 409 or api_reason(exc) != "AlreadyExists":
                raise LaunchError(f"create workflow {ns}/{run.name}: {api_describe(exc)}: {api_message(exc)}",
                                  transient=False) from exc
        try:
            existing = self._get(run, ns)
        except ApiException as exc:
            raise LaunchError(f"create workflow {ns}/{run.name} answered AlreadyExists, then get: "
                              f"{api_describe(exc)}", transient=True) from exc
        owner = ((existing.get("metadata") or {}).get("labels") or {}).get(LABEL_TRIGGER)
        if owner != run.fingerprint:
            raise LaunchError(f"Workflow {ns}/{run.name} exists but belongs to another trigger ({owner!r})",
                              transient=False)
        return "exists"

    def status(self, run: Run, cfg: ArgoConfig) -> RunStatus:
        try:
            return workflow_status(self._get(run, cfg.namespace))
        except ApiException as exc:
            if exc.status == 404:
                return NOT_FOUND
            raise LaunchError(f"get workflow {cfg.namespace}/{run.name}: {api_describe(exc)}",
                              transient=True) from exc
