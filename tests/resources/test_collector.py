"""The collector: every model's source each round, failures counted and logged on change, never fatal."""

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from metrics_api_server import FakePod, MetricsApiServer, MetricsApiState

from monitor.config import Config, parse_config
from monitor.resources import ResourceCollector
from monitor.resources.kubernetes import PodMetricsSource


def _config(tmp_path: Path, **resources: dict[str, Any]) -> Config:
    models = [
        {
            "name": name,
            "features": [{"name": "x", "type": "numeric"}],
            "reference": {"path": str(tmp_path / "ref.csv")},
            "resources": res,
        }
        for name, res in resources.items()
    ]
    return parse_config({"models": models})


@pytest.fixture
def metrics_api() -> Iterator[tuple[MetricsApiState, PodMetricsSource]]:
    state = MetricsApiState(pods=[FakePod("wine-1", "ml", {"app": "wine"}, {"main": ("500m", "256Mi")})])
    with MetricsApiServer(state) as url:
        configuration = client.Configuration()
        configuration.host = url
        yield state, PodMetricsSource(client.ApiClient(configuration))


@pytest.fixture
def model_server() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield proc
    proc.kill()
    proc.wait(timeout=10)


def test_pods_per_model_and_failures_counted_without_crashing(
    tmp_path: Path, metrics_api: tuple[MetricsApiState, PodMetricsSource], caplog: pytest.LogCaptureFixture
) -> None:
    state, source = metrics_api
    cfg = _config(tmp_path, wine={"namespace": "ml", "selector": {"app": "wine"}}, churn={})
    collector = ResourceCollector(cfg, kubernetes=source)
    snap = collector.collect_once()
    assert [(p.pod, p.cpu_cores, p.memory_working_set_bytes) for p in snap.pods["wine"]] == [("wine-1", 0.5, 256 * 2**20)]
    assert "churn" not in snap.pods  # no selector, no pid: nothing to collect
    assert snap.errors == {}

    state.failure = 403
    with caplog.at_level(logging.WARNING, logger="driftwatch.resources"):
        for _ in range(3):
            snap = collector.collect_once()
    assert "wine" not in snap.pods  # no stale values after a failed round
    assert snap.errors == {("kubernetes", "forbidden"): 3}
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and warnings[0].startswith("resource_collection_failed model=wine ")
    assert "reason=forbidden" in warnings[0]

    state.failure = 404
    snap = collector.collect_once()
    assert snap.errors == {("kubernetes", "forbidden"): 3, ("kubernetes", "not_found"): 1}

    state.failure = None
    snap = collector.collect_once()
    assert [p.pod for p in snap.pods["wine"]] == ["wine-1"]
    assert collector.snapshot() is snap


def test_no_cluster_config_is_counted_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    cfg = _config(tmp_path, wine={"selector": {"app": "wine"}}, churn={"selector": {"app": "churn"}})
    collector = ResourceCollector(cfg)
    for _ in range(3):
        snap = collector.collect_once()
    assert snap.errors == {("kubernetes", "no_config"): 1}
    assert snap.pods == {}


def test_local_process_with_gpu_unavailable_reported_once(tmp_path: Path, model_server: subprocess.Popen[bytes]) -> None:
    pid_file = tmp_path / "model.pid"
    pid_file.write_text(str(model_server.pid))
    cfg = _config(tmp_path, wine={"pid_file": str(pid_file)}, churn={})
    collector = ResourceCollector(cfg, pids={"churn": model_server.pid})
    first = collector.collect_once()
    time.sleep(0.2)
    snap = collector.collect_once()
    snap = collector.collect_once()
    assert first.pods["wine"][0].cpu_cores is None
    for model in ("wine", "churn"):
        (usage,) = snap.pods[model]
        assert usage.pod == f"local-{model_server.pid}"
        assert usage.cpu_cores is not None and usage.memory_working_set_bytes > 1_000_000
    assert snap.gpus == {}  # NVML disabled after the first round
    assert snap.errors == {("gpu", "unavailable"): 1}  # this machine has no NVIDIA GPU


def test_background_thread_collects_until_stopped(tmp_path: Path, model_server: subprocess.Popen[bytes]) -> None:
    cfg = _config(tmp_path, wine={})
    collector = ResourceCollector(cfg, pids={"wine": model_server.pid}, interval=0.05)
    with collector:
        deadline = time.monotonic() + 10
        while collector.snapshot().pods.get("wine", (None,))[0] is None or collector.snapshot().pods["wine"][0].cpu_cores is None:
            assert time.monotonic() < deadline, "no CPU sample within 10 s"
            time.sleep(0.05)
    assert not any(t.name == "driftwatch-resources" for t in threading.enumerate())
    model_server.kill()
    model_server.wait()
    assert collector.collect_once().errors[("local", "no_such_process")] == 1


def test_interval_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ResourceCollector(_config(tmp_path, wine={}), interval=0)
