"""Building the batch/v1 Job for a run from the model's template (pure).

The template owns what the user cares about (image, command, resources, volumes, scheduling);
driftwatch adds identity (name, labels), context (annotations, env) and safe defaults, the latter
only where the template is silent so a user can always override them.
"""

from __future__ import annotations

import copy
from typing import Any

from monitor.core.config import KubernetesLauncher
from retrain.run import Run, rfc3339

APP_NAME = "driftwatch-retrain"
MANAGED_BY = "driftwatch"
LABEL_MODEL = "driftwatch.io/model"
LABEL_MODEL_NAMESPACE = "driftwatch.io/model-namespace"
"""On Jobs of a model configured with a namespace (a label value cannot hold `namespace/name`)."""
LABEL_TRIGGER = "driftwatch.io/trigger"
SELECTOR = f"app.kubernetes.io/managed-by={MANAGED_BY},{LABEL_MODEL}"
MAX_ANNOTATION_FEATURES = 4096
"""Characters of the drifted-feature list kept in the annotation (the env var has them all)."""


def job_labels(run: Run) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/instance": run.name,
        LABEL_MODEL: run.model_name,
        LABEL_TRIGGER: run.fingerprint,
        **({LABEL_MODEL_NAMESPACE: run.model_namespace} if run.model_namespace else {}),
    }


def job_annotations(run: Run) -> dict[str, str]:
    t = run.trigger
    features = ",".join(t.drifted_features)
    if len(features) > MAX_ANNOTATION_FEATURES:
        features = features[:MAX_ANNOTATION_FEATURES] + "…"
    out = {
        "driftwatch.io/reason": t.reason,
        "driftwatch.io/source": t.source,
        "driftwatch.io/window-start": rfc3339(t.window_start),
        "driftwatch.io/window-end": rfc3339(t.window_end),
        "driftwatch.io/drifted-features": features,
    }
    if t.drift_share is not None:
        out["driftwatch.io/drift-share"] = f"{t.drift_share:.4f}"
    if t.report_url:
        out["driftwatch.io/report-url"] = t.report_url
    return out


def _with_env(container: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """driftwatch's variables replace same-named ones from the template; others are kept in order."""
    kept = [e for e in container.get("env") or [] if e.get("name") not in env]
    return {**container, "env": [*kept, *({"name": k, "value": v} for k, v in env.items())]}


def build_job(run: Run, cfg: KubernetesLauncher) -> dict[str, Any]:
    """The Job manifest to create for `run` in `cfg.namespace` (a plain dict, ready for the API)."""
    job = copy.deepcopy(cfg.template)
    job["apiVersion"] = "batch/v1"
    job["kind"] = "Job"
    meta = job.setdefault("metadata", {}) or {}
    meta.pop("generateName", None)
    meta.pop("resourceVersion", None)
    meta.pop("uid", None)
    meta["name"] = run.name
    meta["namespace"] = cfg.namespace
    meta["labels"] = {**(meta.get("labels") or {}), **job_labels(run)}
    meta["annotations"] = {**(meta.get("annotations") or {}), **job_annotations(run)}
    job["metadata"] = meta

    spec = job.setdefault("spec", {})
    spec.setdefault("backoffLimit", cfg.backoff_limit)
    spec.setdefault("activeDeadlineSeconds", int(cfg.active_deadline))
    spec.setdefault("ttlSecondsAfterFinished", int(cfg.ttl_after_finished))
    pod = spec["template"]
    pod_meta = pod.get("metadata") or {}
    pod_meta["labels"] = {**(pod_meta.get("labels") or {}), **job_labels(run)}
    pod["metadata"] = pod_meta
    pod_spec = pod["spec"]
    pod_spec.setdefault("restartPolicy", "Never")
    if pod_spec["restartPolicy"] == "Never":
        # The API only accepts podFailurePolicy with restartPolicy Never. Evictions and preemptions
        # (DisruptionTarget) are not the training's fault, so they must not use up backoffLimit.
        spec.setdefault(
            "podFailurePolicy",
            {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]},
        )
    env = run.env()
    for key in ("containers", "initContainers"):
        if pod_spec.get(key):
            pod_spec[key] = [_with_env(c, env) for c in pod_spec[key]]
    return job
