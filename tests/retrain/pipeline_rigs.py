"""The pipeline launchers wired to their faithful test servers, one `rig` per launcher kind.

Argo Workflows through the fake Kubernetes API (Workflows validated against Argo's published
schema), Kubeflow Pipelines and Airflow through their REST test servers, the signed webhook through
a receiver that verifies the signature. Tests that take `rig` run for every launcher.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from airflow_api import FakeAirflowAPI
from hook_receiver import HookReceiver
from kfp_api import FakeKfpAPI
from kube_api import FakeKubeAPI, running_api

from monitor.core.config import AirflowLauncher as AirflowConfig
from monitor.core.config import ArgoLauncher as ArgoConfig
from monitor.core.config import KubeflowLauncher as KubeflowConfig
from monitor.core.config import WebhookLauncher as WebhookConfig
from retrain.airflow import AirflowLauncher
from retrain.argo import ArgoLauncher
from retrain.kubeflow import KubeflowLauncher
from retrain.launcher import PipelineLauncher, Retry
from retrain.policy import Trigger
from retrain.run import Run, job_name
from retrain.signed_webhook import WebhookLauncher

TRIGGER = Trigger("window", 1795348800.0, 1795352400.0, 0.6, ("alcohol", "ash"), "http://dw/reports/wine",
                  "drift held for 2 windows")
FAST = Retry(attempts=4, base=0.01, cap=0.05, timeout=(1.0, 0.5))
CONTEXT_KEYS = {"DRIFTWATCH_MODEL", "DRIFTWATCH_TRIGGER", "DRIFTWATCH_WINDOW_START", "DRIFTWATCH_WINDOW_END",
                "DRIFTWATCH_DRIFTED_FEATURES", "DRIFTWATCH_REPORT_URL", "DRIFTWATCH_REFERENCE"}


def make_run(fp: str = "00112233445566ff", model: str = "wine") -> Run:
    return Run(job_name(model, fp), model, fp, TRIGGER, "ref.csv")


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        time.sleep(seconds)


@dataclass
class Rig:
    """One launcher kind wired to its test server, with the server-side view the tests need."""

    kind: str
    make: Callable[[Retry], PipelineLauncher]
    cfg: Any
    server: Any
    create_path: str
    created: Callable[[], list[dict[str, Any]]]
    """Runs the server holds (whatever their shape)."""
    params: Callable[[dict[str, Any]], dict[str, Any]]
    """The DRIFTWATCH_* context as the server received it, from one of `created()`."""
    finish: Callable[[Run, bool], None]
    """Play the pipeline's own controller: end the run in success or failure."""
    remove: Callable[[Run], None]


SECRET = "s3cr3t-hmac-key"


@pytest.fixture(params=["argo", "kubeflow", "airflow", "webhook"])
def rig(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    kind = request.param
    if kind == "argo":
        with running_api() as kube:
            cfg = ArgoConfig(namespace="ml", workflow_template="train-wine", service_account="trainer")
            yield Rig(kind, lambda r: ArgoLauncher(kube.api_client(), retry=r, sleep=Sleeps(), rng=random.Random(3)),
                      cfg, kube, "/workflows$", lambda: kube.workflows("ml"),
                      lambda wf: {p["name"]: p["value"] for p in wf["spec"]["arguments"]["parameters"]},
                      lambda run, ok: kube.set_phase("ml", run.name, "Succeeded" if ok else "Failed",
                                                     "" if ok else "child 'train' failed"),
                      lambda run: kube.delete_workflow("ml", run.name))
    elif kind == "kubeflow":
        token = tmp_path / "kfp-token"
        token.write_text("kfp-bearer\n")
        with FakeKfpAPI(token="kfp-bearer") as kfp:
            kfp.add_pipeline("p-1", "v-1", CONTEXT_KEYS)
            cfg = KubeflowConfig(host=kfp.url, pipeline_id="p-1", pipeline_version_id="v-1",
                                 experiment_id="exp-retrain", auth={"token_file": token})

            def kfp_id(run: Run) -> str:
                return next(r["run_id"] for r in kfp.runs() if r["display_name"] == run.name)

            def kfp_remove(run: Run) -> None:
                with kfp.lock:
                    del kfp._runs[kfp_id(run)]

            yield Rig(kind, lambda r: KubeflowLauncher(retry=r, sleep=Sleeps(), rng=random.Random(3)), cfg, kfp,
                      "/apis/v2beta1/runs$", kfp.runs, lambda r: r["runtime_config"]["parameters"],
                      lambda run, ok: kfp.set_state(kfp_id(run), "SUCCEEDED" if ok else "FAILED",
                                                    None if ok else "task train failed"),
                      kfp_remove)
    elif kind == "airflow":
        monkeypatch.setenv("AIRFLOW_PASSWORD", "pw")
        with FakeAirflowAPI(username="driftwatch", password="pw") as af:
            af.add_dag("retrain_wine")
            cfg = AirflowConfig(host=af.url, dag_id="retrain_wine",
                                auth={"username": "driftwatch", "password_env": "AIRFLOW_PASSWORD"})

            def af_remove(run: Run) -> None:
                with af.lock:
                    del af._runs[("retrain_wine", run.name)]

            yield Rig(kind, lambda r: AirflowLauncher(retry=r, sleep=Sleeps(), rng=random.Random(3)), cfg, af,
                      "/dagRuns$", lambda: af.dag_runs("retrain_wine"),
                      lambda d: {k: v for k, v in d["conf"].items() if k.startswith("DRIFTWATCH_")},
                      lambda run, ok: af.set_state("retrain_wine", run.name, "success" if ok else "failed"),
                      af_remove)
    else:
        monkeypatch.setenv("HOOK_SECRET", SECRET)
        with HookReceiver(SECRET) as hook:
            cfg = WebhookConfig(url=f"{hook.url}/hooks/retrain", secret_env="HOOK_SECRET",
                                status_url=hook.url + "/runs/{name}")

            def hook_remove(run: Run) -> None:
                with hook.lock:
                    del hook._states[run.name]

            yield Rig(kind, lambda r: WebhookLauncher(retry=r, sleep=Sleeps(), rng=random.Random(3)), cfg, hook,
                      "/hooks/retrain$", lambda: hook.deliveries, lambda d: d["parameters"],
                      lambda run, ok: hook.set_state(run.name, "succeeded" if ok else "failed",
                                                     None if ok else "trainer crashed"),
                      hook_remove)


def posts(rig: Rig) -> int:
    """Create requests the rig's server received."""
    server = rig.server
    if isinstance(server, FakeKubeAPI):
        return sum(1 for m, p in server.requests if m == "POST" and p.endswith("/workflows"))
    return int(server.count("POST", rig.create_path))
