"""Job manifests: golden for the example config, strict validation for every shape we can produce."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes.client import ApiClient, V1Container, V1Job, V1JobSpec, V1ObjectMeta, V1PodSpec, V1PodTemplateSpec

from monitor.core.config import KubernetesLauncher, load_config
from retrain.manifest import build_job
from retrain.policy import Trigger
from retrain.run import Run, job_name
from tests.golden import assert_golden

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
TRIGGER = Trigger(source="window", window_start=1795348800.0, window_end=1795352400.0, drift_share=0.615,
                  drifted_features=("flavanoids", "alcohol", "hue"), report_url="http://127.0.0.1:8080/reports/wine",
                  reason="drift held for 2 consecutive windows")

GPU_TEMPLATE: dict[str, Any] = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "ignored", "generateName": "x-", "labels": {"team": "ml"}, "annotations": {"owner": "ml"}},
    "spec": {
        "backoffLimit": 0,
        "template": {
            "metadata": {"labels": {"sidecar.istio.io/inject": "false"}},
            "spec": {
                "nodeSelector": {"nvidia.com/gpu.present": "true"},
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "initContainers": [{"name": "fetch", "image": "busybox:1.36", "command": ["sh", "-c", "true"],
                                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                "containers": [{
                    "name": "train",
                    "image": "ghcr.io/example/train:2.0",
                    "args": ["--epochs", "3"],
                    "env": [{"name": "DRIFTWATCH_MODEL", "value": "stale"}, {"name": "EPOCHS", "value": "3"},
                            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}],
                    "resources": {"requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
                                  "limits": {"memory": "16Gi", "nvidia.com/gpu": "1"}},
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "shm", "mountPath": "/dev/shm"}],
                }],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "training-data"}},
                            {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}}],
            },
        },
    },
}


def run_for(model: str, fp: str = "0f1e2d3c4b5a6978", trigger: Trigger = TRIGGER) -> Run:
    return Run(name=job_name(model, fp), model=model, fingerprint=fp, trigger=trigger, reference="data/ref.csv")


def check(job: dict[str, Any]) -> None:
    kubernetes_validate.validate(job, "1.33", strict=True)


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_example_config_job_matches_golden() -> None:
    cfg = load_config(ROOT / "examples" / "config.yaml")
    rc = cfg.retrain_for(cfg.model("wine"))
    assert rc is not None
    assert rc.kubernetes is not None
    job = build_job(run_for("wine"), rc.kubernetes)
    check(job)
    assert_golden(GOLDEN / "wine_job.json", json.dumps(job, indent=2, sort_keys=True) + "\n")


def test_the_job_carries_identity_context_and_safe_defaults() -> None:
    job = build_job(run_for("wine"), KubernetesLauncher(namespace="ml", template={
        "spec": {"template": {"spec": {"containers": [{"name": "t", "image": "i"}]}}}}))
    check(job)
    meta = job["metadata"]
    assert meta["name"] == "wine-retrain-0f1e2d3c4b"
    assert meta["namespace"] == "ml"
    assert meta["labels"] == {
        "app.kubernetes.io/name": "driftwatch-retrain", "app.kubernetes.io/managed-by": "driftwatch",
        "app.kubernetes.io/instance": "wine-retrain-0f1e2d3c4b", "driftwatch.io/model": "wine",
        "driftwatch.io/trigger": "0f1e2d3c4b5a6978"}
    assert meta["annotations"]["driftwatch.io/drift-share"] == "0.6150"
    assert meta["annotations"]["driftwatch.io/window-start"] == "2026-11-22T12:00:00Z"
    assert meta["annotations"]["driftwatch.io/report-url"] == "http://127.0.0.1:8080/reports/wine"
    spec = job["spec"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"], spec["ttlSecondsAfterFinished"]) == (2, 21600, 604800)
    assert spec["podFailurePolicy"]["rules"][0] == {
        "action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    pod = spec["template"]
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["metadata"]["labels"]["driftwatch.io/model"] == "wine"
    assert env_of(pod["spec"]["containers"][0]) == {
        "DRIFTWATCH_MODEL": "wine", "DRIFTWATCH_TRIGGER": "0f1e2d3c4b5a6978",
        "DRIFTWATCH_WINDOW_START": "2026-11-22T12:00:00Z", "DRIFTWATCH_WINDOW_END": "2026-11-22T13:00:00Z",
        "DRIFTWATCH_DRIFTED_FEATURES": "flavanoids,alcohol,hue",
        "DRIFTWATCH_REPORT_URL": "http://127.0.0.1:8080/reports/wine", "DRIFTWATCH_REFERENCE": "data/ref.csv"}


def test_gpu_template_with_volumes_keeps_what_the_user_set() -> None:
    job = build_job(run_for("wine"), KubernetesLauncher(namespace="gpu", template=GPU_TEMPLATE))
    check(job)
    assert "generateName" not in job["metadata"]
    assert job["metadata"]["labels"]["team"] == "ml"
    assert job["metadata"]["annotations"]["owner"] == "ml"
    assert job["spec"]["backoffLimit"] == 0  # the template's, not the default
    pod = job["spec"]["template"]
    assert pod["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"
    train = pod["spec"]["containers"][0]
    assert train["resources"]["limits"]["nvidia.com/gpu"] == "1"
    env = env_of(train)
    assert env["DRIFTWATCH_MODEL"] == "wine"  # ours replace same-named, others kept
    assert env["EPOCHS"] == "3"
    assert env["TOKEN"] == {"secretKeyRef": {"name": "hf", "key": "token"}}
    assert [e["name"] for e in train["env"]].count("DRIFTWATCH_MODEL") == 1
    assert env_of(pod["spec"]["initContainers"][0])["DRIFTWATCH_MODEL"] == "wine"
    assert GPU_TEMPLATE["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "stale"  # not mutated


def test_on_failure_restart_policy_gets_no_pod_failure_policy() -> None:
    template = {"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                                               "containers": [{"name": "t", "image": "i"}]}}}}
    job = build_job(run_for("wine"), KubernetesLauncher(template=template))
    check(job)  # the API rejects podFailurePolicy unless restartPolicy is Never
    assert "podFailurePolicy" not in job["spec"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"


def test_client_object_templates_serialize_and_validate() -> None:
    obj = V1Job(api_version="batch/v1", kind="Job", metadata=V1ObjectMeta(name="t"), spec=V1JobSpec(
        template=V1PodTemplateSpec(spec=V1PodSpec(containers=[V1Container(name="t", image="i")]))))
    template = ApiClient().sanitize_for_serialization(obj)
    job = build_job(run_for("churn"), KubernetesLauncher(template=template))
    check(job)


def test_unknown_report_and_share_are_left_out_rather_than_invented() -> None:
    t = Trigger("alert", 0.0, 60.0, None, (), None, "alert DriftwatchDatasetDrift firing")
    job = build_job(run_for("wine", trigger=t), KubernetesLauncher(template=GPU_TEMPLATE))
    check(job)
    ann = job["metadata"]["annotations"]
    assert "driftwatch.io/drift-share" not in ann
    assert "driftwatch.io/report-url" not in ann
    assert env_of(job["spec"]["template"]["spec"]["containers"][0])["DRIFTWATCH_REPORT_URL"] == ""


@pytest.mark.parametrize("model", ["a", "m" * 63, "a-" * 31 + "b"])
def test_names_are_dns_labels_of_at_most_63_characters(model: str) -> None:
    name = job_name(model, "ffffffffffffffff")
    assert len(name) <= 63
    assert name.endswith("-retrain-ffffffffff")
    assert "--" not in name.replace("-retrain-", "")
    check(build_job(run_for(model, "ffffffffffffffff"), KubernetesLauncher(template=GPU_TEMPLATE)))


model_names = st.from_regex(r"\A[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?\Z")
features = st.lists(st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_.\-]{0,40}\Z"), max_size=300)
templates = st.sampled_from([
    GPU_TEMPLATE,
    {"spec": {"template": {"spec": {"containers": [{"name": "t", "image": "i"}, {"name": "u", "image": "j"}]}}}},
    {"metadata": None, "spec": {"completions": 1, "template": {"metadata": None, "spec": {
        "containers": [{"name": "t", "image": "i", "env": None}]}}}},
])


@settings(max_examples=60, deadline=None)
@given(model=model_names, fp=st.from_regex(r"\A[0-9a-f]{16}\Z"), feats=features,
       share=st.one_of(st.none(), st.floats(0, 1)), url=st.one_of(st.none(), st.just("http://h/reports/x?a=1&b=2")),
       start=st.floats(0, 4e9), template=templates)
def test_every_manifest_the_launcher_can_produce_validates(model: str, fp: str, feats: list[str],
                                                           share: float | None, url: str | None, start: float,
                                                           template: dict[str, Any]) -> None:
    t = Trigger("window", start, start + 3600, share, tuple(feats), url, "drift held for 3 consecutive windows")
    job = build_job(run_for(model, fp, t), KubernetesLauncher(namespace="ml", template=template))
    check(job)
    assert len(job["metadata"]["name"]) <= 63
