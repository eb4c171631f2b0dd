"""The collector: every model's source each round, failures counted and logged on change, never fatal."""

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pynvml
import pytest
from kubernetes import client
from metrics_api_server import FakePod, MetricsApiServer, MetricsApiState, SilentServer

from monitor.core.config import Config, parse_config
from monitor.exporter.collector import build_registry, render
from monitor.resources import GpuUsage, PodUsage, ResourceCollector
from monitor.resources.gpu import NvmlSampler
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
    assert len(warnings) == 1
    assert warnings[0].startswith("resource_collection_failed model=wine ")
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
        assert usage.cpu_cores is not None
        assert usage.memory_working_set_bytes > 1_000_000
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


def test_stop_is_prompt_while_a_request_hangs(tmp_path: Path, silent_server: SilentServer, caplog: pytest.LogCaptureFixture) -> None:
    """Shutdown must fit Kubernetes' 30 s grace: stop() does not wait out a hung request, and the
    request ending later publishes and logs nothing."""
    configuration = client.Configuration()
    configuration.host = silent_server.url
    cfg = _config(tmp_path, wine={"selector": {"app": "wine"}})
    collector = ResourceCollector(cfg, kubernetes=PodMetricsSource(client.ApiClient(configuration), timeout=1.5), interval=0.05)
    collector.start()
    deadline = time.monotonic() + 10
    while not silent_server.connections:
        assert time.monotonic() < deadline, "the collector never called the API"
        time.sleep(0.01)
    (thread,) = [t for t in threading.enumerate() if t.name == "driftwatch-resources"]
    before = collector.snapshot()
    with caplog.at_level(logging.DEBUG, logger="driftwatch"):
        started = time.monotonic()
        collector.stop()
        assert time.monotonic() - started < 2.5  # was: the interval + 10 s, behind 4 attempts x the timeout
        thread.join(timeout=10)  # the request times out on its own
        assert not thread.is_alive()
    assert collector.snapshot() is before
    assert caplog.records == []
    assert len(silent_server.connections) == 1


def test_selector_matching_no_pods_is_logged_on_each_change(
    tmp_path: Path, metrics_api: tuple[MetricsApiState, PodMetricsSource], caplog: pytest.LogCaptureFixture
) -> None:
    state, source = metrics_api
    cfg = _config(tmp_path, wine={"namespace": "ml", "selector": {"app": "wnie"}})  # a typo
    collector = ResourceCollector(cfg, kubernetes=source)
    with caplog.at_level(logging.INFO, logger="driftwatch.resources"):
        for _ in range(3):
            assert collector.collect_once().pods == {"wine": ()}
        state.pods.append(FakePod("wine-2", "ml", {"app": "wnie"}, {"main": ("1", "1Gi")}))
        collector.collect_once()
        collector.collect_once()
        state.pods.pop()
        collector.collect_once()
    assert [r.getMessage() for r in caplog.records] == [
        "resource_selector_matches_no_pods model=wine namespace=ml selector=app=wnie",
        "resource_selector_matches_pods model=wine namespace=ml selector=app=wnie pods=1",
        "resource_selector_matches_no_pods model=wine namespace=ml selector=app=wnie",
    ]
    assert collector.snapshot().errors == {}


class _BuggySource(PodMetricsSource):
    """A source with a bug (not a CollectionError): what the `unexpected` reason is for."""

    def pod_usage(self, namespace: str, selector: Mapping[str, str]) -> list[PodUsage]:
        raise KeyError("items")


def test_a_source_bug_is_counted_every_round_and_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    collector = ResourceCollector(_config(tmp_path, wine={"selector": {"app": "wine"}}), kubernetes=_BuggySource())
    with caplog.at_level(logging.WARNING, logger="driftwatch.resources"):
        for _ in range(3):
            snap = collector.collect_once()
    assert snap.errors == {("kubernetes", "unexpected"): 3}
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1
    assert tracebacks[0].getMessage() == "resource_collection_bug model=wine source=kubernetes"
    assert sum("resource_collection_failed" in r.getMessage() for r in caplog.records) == 1


def _two_gpus_one_mig(model_pid: int) -> ModuleType:
    """pynvml's API for two GPUs the model runs on; GPU 1 is in MIG mode, where NVML answers
    NOT_SUPPORTED for device utilisation (NVIDIA's documented behaviour). The error classes are
    the real pynvml ones; there is no NVIDIA GPU on this machine to read."""
    nvml = ModuleType("pynvml")
    nvml.NVMLError = pynvml.NVMLError  # type: ignore[attr-defined]
    nvml.nvmlInit = nvml.nvmlShutdown = lambda: None  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetCount = lambda: 2  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetComputeRunningProcesses = lambda h: [SimpleNamespace(pid=model_pid)]  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetGraphicsRunningProcesses = lambda h: []  # type: ignore[attr-defined]

    def utilization(handle: int) -> SimpleNamespace:
        if handle == 1:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return SimpleNamespace(gpu=87, memory=10)

    nvml.nvmlDeviceGetUtilizationRates = utilization  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetMemoryInfo = lambda h: SimpleNamespace(used=(12 + h) * 2**30, total=40 * 2**30, free=0)  # type: ignore[attr-defined]
    return nvml


def test_a_gpu_field_nvml_cannot_read_leaves_the_others(
    tmp_path: Path, model_server: subprocess.Popen[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    """A MIG GPU's utilisation used to wipe every GPU's readings, every round."""
    cfg = _config(tmp_path, wine={})
    nvml = _two_gpus_one_mig(model_server.pid)
    collector = ResourceCollector(cfg, pids={"wine": model_server.pid}, gpu=NvmlSampler(loader=lambda: nvml))
    with caplog.at_level(logging.INFO, logger="driftwatch.resources"):
        for _ in range(3):
            snap = collector.collect_once()
    pod = f"local-{model_server.pid}"
    assert snap.gpus["wine"] == (GpuUsage(pod, "0", 0.87, 12 * 2**30), GpuUsage(pod, "1", None, 13 * 2**30))
    assert snap.errors == {("gpu", "not_supported"): 1}  # once per change of state, not per round
    assert [r.getMessage() for r in caplog.records] == ["gpu_field_unreadable gpu=1 field=utilization reason=not_supported"]
    body = render(build_registry(cfg, dict, collector.snapshot))[0].decode()
    assert f'driftwatch_model_gpu_utilization_ratio{{gpu="0",model="wine",pod="{pod}"}} 0.87' in body
    assert 'driftwatch_model_gpu_utilization_ratio{gpu="1"' not in body
    assert f'driftwatch_model_gpu_memory_used_bytes{{gpu="1",model="wine",pod="{pod}"}} 1.3958643712e+10' in body

    nvml.nvmlDeviceGetUtilizationRates = lambda h: SimpleNamespace(gpu=50, memory=1)  # type: ignore[attr-defined]
    with caplog.at_level(logging.INFO, logger="driftwatch.resources"):
        snap = collector.collect_once()
    assert snap.gpus["wine"][1].utilization_ratio == 0.5
    assert caplog.records[-1].getMessage() == "gpu_field_readable gpu=1 field=utilization"
