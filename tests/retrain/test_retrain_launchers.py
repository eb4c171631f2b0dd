"""Each pipeline launcher against its faithful test server: exactly once, 409s, 5xx, status, parameters.

Argo Workflows through the fake Kubernetes API (Workflows validated against Argo's published
schema), Kubeflow Pipelines and Airflow through their REST test servers, the signed webhook through
a receiver that verifies the signature. The same scenarios run for every launcher.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from airflow_api import FakeAirflowAPI
from hook_receiver import HookReceiver
from kfp_api import FakeKfpAPI
from kube_api import FakeKubeAPI, running_api
from pipeline_rigs import CONTEXT_KEYS, FAST, SECRET, TRIGGER, Rig, make_run, posts

from monitor.core.config import AirflowLauncher as AirflowConfig
from monitor.core.config import ArgoLauncher as ArgoConfig
from monitor.core.config import KubeflowLauncher as KubeflowConfig
from monitor.core.config import WebhookLauncher as WebhookConfig
from retrain.airflow import AirflowLauncher
from retrain.argo import ArgoLauncher, build_workflow
from retrain.kubeflow import KubeflowLauncher
from retrain.launcher import LaunchError, PipelineLauncher
from retrain.run import Run, job_name
from retrain.signed_webhook import WebhookLauncher, payload, sign, verify
from tests.ports import free_port

# -- the same scenarios for every launcher ----------------------------------------------------------------


def test_a_launch_creates_one_run_carrying_the_context(rig: Rig) -> None:
    run = make_run()
    assert rig.make(FAST).launch(run, rig.cfg) == "created"
    (created,) = rig.created()
    assert rig.params(created) == {**run.env()}  # the Job's DRIFTWATCH_* environment, as parameters


def test_relaunching_the_same_trigger_from_a_new_process_creates_nothing(rig: Rig) -> None:
    run = make_run()
    rig.make(FAST).launch(run, rig.cfg)
    restarted = rig.make(FAST)  # a restarted monitor: a new launcher, nothing in memory
    assert restarted.launch(run, rig.cfg) == "exists"
    assert len(rig.created()) == 1


def lose_next_answer(rig: Rig) -> None:
    """The next create takes effect, but its answer is lost: a 503 from a proxy, or (Kubernetes) a
    read timeout (the fake API server's faults with a status never take effect)."""
    if isinstance(rig.server, FakeKubeAPI):
        rig.server.inject("POST", rig.create_path, status=None, delay=1.5, after=True)
    else:
        rig.server.inject("POST", rig.create_path, status=503, after=True)


def test_a_create_that_landed_but_whose_answer_was_lost_is_not_repeated(rig: Rig) -> None:
    lose_next_answer(rig)
    run = make_run()
    assert rig.make(FAST).launch(run, rig.cfg) == "exists"
    assert len(rig.created()) == 1


def test_5xx_before_the_create_are_retried_then_it_is_created(rig: Rig) -> None:
    rig.server.inject("POST", rig.create_path, status=500, times=2)
    assert rig.make(FAST).launch(make_run(), rig.cfg) == "created"
    assert posts(rig) == 3
    assert len(rig.created()) == 1


def test_5xx_that_never_stop_are_reported_as_transient_without_a_run(rig: Rig) -> None:
    rig.server.inject("POST", rig.create_path, status=502, times=100)
    with pytest.raises(LaunchError, match="gave up after 4 attempt") as err:
        rig.make(FAST).launch(make_run(), rig.cfg)
    assert err.value.transient
    assert rig.created() == []


def test_a_refused_create_is_not_retried(rig: Rig) -> None:
    rig.server.inject("POST", rig.create_path, status=403, times=5)
    with pytest.raises(LaunchError) as err:
        rig.make(FAST).launch(make_run(), rig.cfg)
    assert not err.value.transient
    assert posts(rig) == 1


@pytest.mark.parametrize("ok", [True, False], ids=["succeeded", "failed"])
def test_status_follows_the_run_to_its_outcome(rig: Rig, ok: bool) -> None:
    run = make_run()
    launcher = rig.make(FAST)
    launcher.launch(run, rig.cfg)
    assert launcher.status(run, rig.cfg).outcome is None
    rig.finish(run, ok)
    status = launcher.status(run, rig.cfg)
    assert status.outcome == ("succeeded" if ok else "failed")


def test_a_failed_run_says_why(rig: Rig) -> None:
    run = make_run()
    launcher = rig.make(FAST)
    launcher.launch(run, rig.cfg)
    rig.finish(run, False)
    assert launcher.status(run, rig.cfg).detail


def test_a_run_deleted_on_the_other_side_is_not_found(rig: Rig) -> None:
    run = make_run()
    launcher = rig.make(FAST)
    launcher.launch(run, rig.cfg)
    rig.remove(run)
    assert not launcher.status(run, rig.cfg).found


# -- per launcher --------------------------------------------------------------------------------------


def test_the_argo_workflow_references_its_template_and_passes_the_schema() -> None:
    import jsonschema

    schema = json.loads((Path(__file__).parent / "argo_workflow_schema.json").read_text())
    wf = build_workflow(make_run(), ArgoConfig(namespace="ml", workflow_template="train-wine", cluster_scope=True))
    jsonschema.validate(wf, schema)
    assert wf["spec"]["workflowTemplateRef"] == {"name": "train-wine", "clusterScope": True}


def test_the_fake_api_refuses_a_workflow_the_schema_refuses() -> None:
    with running_api() as kube:
        bad = build_workflow(make_run(), ArgoConfig(namespace="ml", workflow_template="t"))
        bad["spec"]["arguments"]["parameters"][0]["value"] = 7  # Argo parameter values are strings
        code, body = kube.create_workflow("ml", bad)
        assert (code, body["reason"]) == (422, "Invalid")


def test_an_argo_name_taken_by_another_trigger_is_an_error() -> None:
    with running_api() as kube:
        cfg = ArgoConfig(namespace="ml", workflow_template="t")
        k = ArgoLauncher(kube.api_client(), retry=FAST)
        k.launch(make_run("aaaaaaaaaaaaaaaa"), cfg)
        clash = Run(job_name("wine", "aaaaaaaaaaaaaaaa"), "wine", "aaaaaaaaaaaaaaab", TRIGGER, "ref.csv")
        with pytest.raises(LaunchError, match="another trigger"):
            k.launch(clash, cfg)


@pytest.mark.parametrize(("phase", "outcome"), [("", None), ("Pending", None), ("Running", None),
                                                ("Succeeded", "succeeded"), ("Failed", "failed"), ("Error", "failed")])
def test_every_argo_phase_maps_to_an_outcome(phase: str, outcome: str | None) -> None:
    from retrain.argo import workflow_status

    assert workflow_status({"status": {"phase": phase}}).outcome == outcome


def test_kfp_lookup_sends_kfps_json_filter_on_the_display_name() -> None:
    with FakeKfpAPI() as kfp:
        kfp.add_pipeline("p", "v", CONTEXT_KEYS)
        cfg = KubeflowConfig(host=kfp.url, pipeline_id="p", pipeline_version_id="v")
        run = make_run()
        KubeflowLauncher(retry=FAST).launch(run, cfg)
        other = make_run("ffffffffffffffff", "churn")
        KubeflowLauncher(retry=FAST).launch(other, cfg)
        found = KubeflowLauncher(retry=FAST).find(run, cfg)
        assert found is not None
        assert found["display_name"] == run.name


def test_kfp_without_the_token_is_refused_with_its_message(tmp_path: Path) -> None:
    with FakeKfpAPI(token="right") as kfp:
        kfp.add_pipeline("p", "v", CONTEXT_KEYS)
        (tmp_path / "t").write_text("wrong")
        cfg = KubeflowConfig(host=kfp.url, pipeline_id="p", pipeline_version_id="v", auth={"token_file": tmp_path / "t"})
        with pytest.raises(LaunchError, match="HTTP 401: Unauthenticated") as err:
            KubeflowLauncher(retry=FAST).launch(make_run(), cfg)
        assert not err.value.transient


def test_kfp_refuses_parameters_the_pipeline_does_not_declare() -> None:
    with FakeKfpAPI() as kfp:
        kfp.add_pipeline("p", "v", {"DRIFTWATCH_MODEL"})
        cfg = KubeflowConfig(host=kfp.url, pipeline_id="p", pipeline_version_id="v")
        with pytest.raises(LaunchError, match="not declared by the pipeline"):
            KubeflowLauncher(retry=FAST).launch(make_run(), cfg)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_airflow_gets_the_trigger_in_conf_on_both_api_versions(version: str) -> None:
    with FakeAirflowAPI(token="jwt") as af:
        af.add_dag("retrain_wine")
        cfg = AirflowConfig(host=af.url, dag_id="retrain_wine", api_version=version, auth={"token_env": "AF_TOKEN"})
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AF_TOKEN", "jwt")
            AirflowLauncher(retry=FAST).launch(make_run(), cfg)
        (dag_run,) = af.dag_runs()
        assert dag_run["conf"]["driftwatch"]["trigger"]["reason"] == TRIGGER.reason


def test_an_airflow_dag_that_does_not_exist_is_a_precise_error() -> None:
    with FakeAirflowAPI() as af:
        cfg = AirflowConfig(host=af.url, dag_id="nope")
        with pytest.raises(LaunchError, match="DAG with dag_id: 'nope' not found"):
            AirflowLauncher(retry=FAST).launch(make_run(), cfg)


def test_the_webhook_signature_covers_the_timestamp() -> None:
    body = payload(make_run())
    header = sign(SECRET.encode(), body, 1_800_000_000)
    assert verify(SECRET.encode(), body, header, now=1_800_000_100)
    assert not verify(SECRET.encode(), body, header, now=1_800_000_000 + 301)  # a replay, too late
    assert not verify(SECRET.encode(), body + b" ", header, now=1_800_000_000)


def test_each_webhook_attempt_is_signed_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    with HookReceiver(SECRET) as hook:
        hook.inject("POST", status=500, times=1)
        ticks = iter([time.time() - 60, time.time()])
        cfg = WebhookConfig(url=f"{hook.url}/hooks/retrain", secret_env="HOOK_SECRET")
        WebhookLauncher(retry=FAST, clock=lambda: next(ticks)).launch(make_run(), cfg)
        (accepted,) = hook.signatures
        assert accepted.startswith(f"t={int(time.time())}") or accepted.startswith(f"t={int(time.time()) - 1}")


def test_a_webhook_signed_with_another_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", "not-the-secret")
    with HookReceiver(SECRET) as hook:
        cfg = WebhookConfig(url=f"{hook.url}/hooks/retrain", secret_env="HOOK_SECRET")
        with pytest.raises(LaunchError, match="HTTP 401"):
            WebhookLauncher(retry=FAST).launch(make_run(), cfg)
        assert hook.deliveries == []


def test_an_unset_secret_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOOK_SECRET", raising=False)
    cfg = WebhookConfig(url="http://127.0.0.1:9/hooks", secret_env="HOOK_SECRET")
    with pytest.raises(LaunchError, match="HOOK_SECRET is unset"):
        WebhookLauncher(retry=FAST).launch(make_run(), cfg)


@pytest.mark.parametrize("kind", ["kubeflow", "airflow", "webhook"])
def test_an_api_that_refuses_connections_is_retried_then_reported_as_transient(
        kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    host = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    launcher: PipelineLauncher
    cfg: Any
    if kind == "kubeflow":
        launcher, cfg = KubeflowLauncher(retry=FAST), KubeflowConfig(host=host, pipeline_id="p", pipeline_version_id="v")
    elif kind == "airflow":
        launcher, cfg = AirflowLauncher(retry=FAST), AirflowConfig(host=host, dag_id="d")
    else:
        launcher, cfg = WebhookLauncher(retry=FAST), WebhookConfig(url=host + "/h", secret_env="HOOK_SECRET")
    with pytest.raises(LaunchError, match=r"gave up after 4 attempt.*ConnectError") as err:
        launcher.launch(make_run(), cfg)
    assert err.value.transient
