"""The Kubernetes launcher through the official client against the fake batch/v1 API on 127.0.0.1."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kube_api import BlackHole, FakeKubeAPI, running_api, write_kubeconfig
from kubernetes import client
from kubernetes.config import kube_config

from monitor.core.config import KubernetesLauncher as KubeConfig
from retrain.kubernetes import JobStatus, KubernetesLauncher, LaunchError, Retry, job_outcome
from retrain.policy import Trigger
from retrain.run import Run, job_name
from tests.ports import free_port

TEMPLATE = {"apiVersion": "batch/v1", "kind": "Job",
            "spec": {"template": {"spec": {"containers": [{"name": "train", "image": "ghcr.io/x/train:1"}]}}}}
KCFG = KubeConfig(namespace="ml", template=TEMPLATE)
TRIGGER = Trigger("window", 1795348800.0, 1795352400.0, 0.6, ("alcohol",), None, "drift held for 2 windows")
FAST = Retry(attempts=4, base=0.02, cap=0.1, timeout=(2.0, 1.5))  # a loaded CI machine can take 0.5 s to answer


def make_run(fp: str = "00112233445566ff", model: str = "wine") -> Run:
    return Run(job_name(model, fp), model, fp, TRIGGER, "ref.csv")


def wait_for(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        time.sleep(seconds)


@pytest.fixture
def api() -> Iterator[FakeKubeAPI]:
    with running_api() as server:
        yield server


@pytest.fixture
def launcher(api: FakeKubeAPI) -> Iterator[tuple[KubernetesLauncher, Sleeps]]:
    sleeps = Sleeps()
    k = KubernetesLauncher(api.api_client(), retry=FAST, watch_timeout=2, poll_interval=0.2,
                           rng=random.Random(7), sleep=sleeps)
    yield k, sleeps
    k.stop()


def posts(api: FakeKubeAPI) -> int:
    return sum(1 for m, _ in api.requests if m == "POST")


def test_creates_the_job_the_api_accepts(api: FakeKubeAPI, launcher: tuple[KubernetesLauncher, Sleeps]) -> None:
    k, _ = launcher
    assert k.launch(make_run(), KCFG) == "created"
    (job,) = api.jobs("ml")
    assert job["metadata"]["name"] == "wine-retrain-0011223344"
    assert job["metadata"]["labels"]["driftwatch.io/trigger"] == "00112233445566ff"
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_a_second_launch_of_the_same_trigger_is_already_exists(api: FakeKubeAPI,
                                                               launcher: tuple[KubernetesLauncher, Sleeps]) -> None:
    k, _ = launcher
    assert [k.launch(make_run(), KCFG) for _ in range(3)] == ["created", "exists", "exists"]
    assert len(api.jobs()) == 1


def test_5xx_answers_are_retried_with_jittered_backoff(api: FakeKubeAPI,
                                                       launcher: tuple[KubernetesLauncher, Sleeps]) -> None:
    k, sleeps = launcher
    api.inject("POST", status=500, times=1)
    api.inject("POST", status=503, times=1)
    api.inject("POST", status=429, times=1)
    assert k.launch(make_run(), KCFG) == "created"
    assert posts(api) == 4
    assert len(api.jobs()) == 1
    for attempt, pause in enumerate(sleeps):
        step = min(FAST.cap, FAST.base * 2**attempt)
        assert step / 2 <= pause <= step


def test_a_timed_out_create_that_landed_is_recognised_on_retry(api: FakeKubeAPI,
                                                               launcher: tuple[KubernetesLauncher, Sleeps]) -> None:
    k, sleeps = launcher
    api.inject("POST", status=None, delay=3.0, after=True)  # the Job is created, the answer comes too late
    assert k.launch(make_run(), KCFG) == "exists"
    assert len(api.jobs()) == 1
    assert posts(api) == 2
    assert len(sleeps) == 1


def test_retries_are_exhausted_then_reported(api: FakeKubeAPI, launcher: tuple[KubernetesLauncher, Sleeps]) -> None:
    k, sleeps = launcher
    api.inject("POST", status=500, times=10)
    with pytest.raises(LaunchError, match="gave up after 4 attempt") as err:
        k.launch(make_run(), KCFG)
    assert err.value.transient
    assert posts(api) == 4
    assert len(sleeps) == 3
    assert api.jobs() == []


def test_refused_connections_are_retried_then_reported() -> None:
    port = free_port()  # nothing listens there
    cfg = client.Configuration(host=f"http://127.0.0.1:{port}")
    cfg.retries = 0
    sleeps = Sleeps()
    k = KubernetesLauncher(client.ApiClient(cfg), retry=FAST, sleep=sleeps, rng=random.Random(1))
    with pytest.raises(LaunchError, match=r"gave up after 4 attempt.*(Connection refused|NewConnectionError)") as err:
        k.launch(make_run(), KCFG)
    assert err.value.transient
    assert len(sleeps) == 3


def test_an_invalid_template_is_refused_without_a_request(api: FakeKubeAPI,
                                                          launcher: tuple[KubernetesLauncher, Sleeps]) -> None:
    k, sleeps = launcher
    bad = KubeConfig(namespace="ml", template={"spec": {"template": {"spec": {
        "containers": [{"name": "train", "image": "x", "imagePullPolicyy": "Always"}]}}}})
    with pytest.raises(LaunchError, match=r"not a valid Job: spec\.template\.spec\.containers\.0\.imagePullPolicyy: Extra inputs") as err:
        k.launch(make_run(), bad)
    assert not err.value.transient
    assert posts(api) == 0
    assert sleeps == []


def test_a_forbidden_create_is_not_retried(api: FakeKubeAPI, launcher: tuple[KubernetesLauncher, Sleeps]) -> None:
    k, sleeps = launcher
    api.inject("POST", status=403)
    with pytest.raises(LaunchError, match=r"HTTP 403.*injected 403") as err:
        k.launch(make_run(), KCFG)
    assert not err.value.transient
    assert posts(api) == 1
    assert sleeps == []


def test_a_name_taken_by_another_trigger_is_an_error(api: FakeKubeAPI,
                                                     launcher: tuple[KubernetesLauncher, Sleeps]) -> None:
    k, _ = launcher
    k.launch(make_run("aaaaaaaaaaaaaaaa"), KCFG)
    clash = Run(job_name("wine", "aaaaaaaaaaaaaaaa"), "wine", "aaaaaaaaaaaaaaab", TRIGGER, "ref.csv")
    with pytest.raises(LaunchError, match="another trigger"):
        k.launch(clash, KCFG)


def test_a_409_that_is_not_already_exists_is_reported(api: FakeKubeAPI,
                                                     launcher: tuple[KubernetesLauncher, Sleeps]) -> None:
    k, _ = launcher
    api.inject("POST", status=409)
    with pytest.raises(LaunchError, match=r"HTTP 409.*injected 409") as err:
        k.launch(make_run(), KCFG)
    assert not err.value.transient
    assert api.jobs() == []


def test_list_finds_jobs_by_label_only(api: FakeKubeAPI, launcher: tuple[KubernetesLauncher, Sleeps]) -> None:
    k, _ = launcher
    k.launch(make_run("1111111111111111"), KCFG)
    k.launch(make_run("2222222222222222", "churn"), KCFG)
    foreign = {**TEMPLATE, "metadata": {"name": "someone-elses", "labels": {"driftwatch.io/model": "wine"}}}
    assert api.create("ml", foreign)[0] == 201
    api.complete("ml", job_name("churn", "2222222222222222"))
    items, rv = k.list_jobs("ml")
    assert sorted((i.model, i.outcome) for i in items) == [("churn", "succeeded"), ("wine", None)]
    assert int(rv) > 0
    assert k.list_jobs("other")[0] == []


@pytest.mark.parametrize(("job", "expected"), [
    ({"status": {"active": 1}}, (None, None)),
    ({"status": {"conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
                                {"type": "Complete", "status": "True"}]}}, ("succeeded", None)),
    ({"status": {"conditions": [{"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded"}]}},
     (None, None)),
    ({"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]}},
     ("deadline_exceeded", "DeadlineExceeded")),
    ({"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}},
     ("failed", "BackoffLimitExceeded")),
    ({"status": {"conditions": [{"type": "Failed", "status": "False"}]}}, (None, None)),
])
def test_outcomes_come_from_terminal_conditions(job: dict[str, Any], expected: tuple[str | None, str | None]) -> None:
    assert job_outcome(job) == expected


class Recorder:
    def __init__(self) -> None:
        self.seen: list[JobStatus] = []
        self.lock = threading.Lock()

    def __call__(self, status: JobStatus) -> None:
        with self.lock:
            self.seen.append(status)

    def outcome(self, name: str) -> str | None:
        with self.lock:
            outs = [s.outcome for s in self.seen if s.name == name and s.outcome]
        return outs[-1] if outs else None


def test_the_watch_reports_every_outcome(api: FakeKubeAPI, launcher: tuple[KubernetesLauncher, Sleeps]) -> None:
    k, _ = launcher
    runs = [make_run(str(i) * 16) for i in range(4)]
    for r in runs:
        k.launch(r, KCFG)
    _, rv = k.list_jobs("ml")
    rec = Recorder()
    k.follow("ml", rec, rv)
    api.complete("ml", runs[0].name)
    api.fail("ml", runs[1].name, "BackoffLimitExceeded")
    api.fail("ml", runs[2].name, "DeadlineExceeded")
    api.delete("ml", runs[3].name)
    wait_for(lambda: all(rec.outcome(r.name) for r in runs))
    assert [rec.outcome(r.name) for r in runs] == ["succeeded", "failed", "deadline_exceeded", "failed"]


def test_the_watch_reconnects_from_its_resource_version(api: FakeKubeAPI) -> None:
    # The watch's read timeout is watch_timeout + the retry's read timeout: FAST's 1.5 s would leave a
    # loaded server 1.5 s to end the watch before the client gives up and relists.
    k = KubernetesLauncher(api.api_client(), retry=replace(FAST, timeout=(1.0, 3.0)), watch_timeout=1, poll_interval=5)
    try:
        r = make_run()
        k.launch(r, KCFG)
        _, rv = k.list_jobs("ml")
        rec = Recorder()
        k.follow("ml", rec, rv)
        # The first watch ends server-side after its timeout; wait for the launcher to open a second.
        wait_for(lambda: sum(1 for _, p in api.requests if p.endswith("?watch")) >= 2)
        api.complete("ml", r.name)
        wait_for(lambda: rec.outcome(r.name) == "succeeded")
        lists = [p for m, p in api.requests if m == "GET" and p.endswith("/jobs")]
        assert len(lists) == 1  # resumed from its resourceVersion, not relisted
    finally:
        k.stop()


def test_an_expired_resource_version_relists(api: FakeKubeAPI, launcher: tuple[KubernetesLauncher, Sleeps],
                                            caplog: pytest.LogCaptureFixture) -> None:
    k, _ = launcher
    r = make_run()
    k.launch(r, KCFG)
    _, old_rv = k.list_jobs("ml")
    api.complete("ml", r.name)  # while nothing watches: only a fresh list can tell
    api.compact()  # so a watch from old_rv gets 410 Expired
    before = len(api.requests)
    rec = Recorder()
    relists: list[list[JobStatus]] = []
    with caplog.at_level(logging.INFO, logger="driftwatch.retrain.kubernetes"):
        k.follow("ml", rec, old_rv, on_relist=relists.append)
        wait_for(lambda: sum(1 for _, p in api.requests[before:] if p.endswith("?watch")) >= 2)
    jobs = "/apis/batch/v1/namespaces/ml/jobs"
    # The watch from old_rv (answered 410), then a LIST, then a watch from the list's resourceVersion.
    assert api.requests[before : before + 3] == [("GET", f"{jobs}?watch"), ("GET", jobs), ("GET", f"{jobs}?watch")]
    assert [m for m in caplog.messages if m.startswith("k8s_watch")] == ["k8s_watch_expired namespace=ml"]
    assert [[(s.name, s.outcome) for s in listed] for listed in relists] == [[(r.name, "succeeded")]]
    assert rec.outcome(r.name) == "succeeded"  # delivered by the relist


def test_a_failing_watch_falls_back_to_polling(api: FakeKubeAPI, launcher: tuple[KubernetesLauncher, Sleeps]) -> None:
    k, _ = launcher
    r = make_run()
    k.launch(r, KCFG)
    api.inject("GET", status=500, times=1000, watch_only=True)
    rec = Recorder()
    k.follow("ml", rec, None)
    wait_for(lambda: sum(1 for _, p in api.requests if p.endswith("?watch")) >= 3)
    api.complete("ml", r.name)
    wait_for(lambda: rec.outcome(r.name) == "succeeded")
    lists = [p for m, p in api.requests if m == "GET" and p.endswith("/jobs")]
    assert len(lists) >= 4


def test_stop_interrupts_an_open_watch_promptly(api: FakeKubeAPI) -> None:
    k = KubernetesLauncher(api.api_client(), retry=FAST, watch_timeout=60)
    k.follow("ml", Recorder(), None)
    wait_for(lambda: any(p.endswith("?watch") for _, p in api.requests))
    started = time.monotonic()
    k.stop()
    assert time.monotonic() - started < 3


def test_the_default_client_does_not_retry_inside_each_attempt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # urllib3's default would send each request 4 times inside each of our attempts, so a hung API
    # server would cost 4 × the timeout per attempt: one connection per attempt is what bounds it.
    with BlackHole() as hole:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", hole.url)
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        # $KUBECONFIG is read when the client is imported; this is where it lands.
        monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
        k = KubernetesLauncher(retry=Retry(attempts=2, base=0.01, cap=0.01, timeout=(1.0, 0.3)))
        with pytest.raises(LaunchError, match=r"gave up after 2 attempt.*(timed out|Timeout)"):
            k.list_jobs("ml")
        assert hole.accepted == 2
