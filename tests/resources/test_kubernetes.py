"""PodMetrics through the official client against a faithful metrics API on 127.0.0.1."""

import logging
import time
from collections.abc import Iterator
from fractions import Fraction

import pytest
from kubernetes import client
from metrics_api_server import FakePod, MetricsApiServer, MetricsApiState, SilentServer

from monitor.resources.kubernetes import PodMetricsSource, failure_reason, label_selector, pod_usage_from_list
from monitor.resources.usage import CollectionError, PodUsage

WINE_PODS = [
    FakePod("wine-7d9c-abcde", "default", {"app": "wine", "tier": "model"}, {"kserve-container": ("1234567n", "81920Ki"), "driftwatch-sidecar": ("250m", "64Mi")}),
    FakePod("wine-7d9c-fghij", "default", {"app": "wine", "tier": "model"}, {"kserve-container": ("2", "1Gi")}),
    FakePod("churn-55f-xyz", "default", {"app": "churn"}, {"main": ("1", "1Gi")}),
    FakePod("wine-other-ns", "staging", {"app": "wine"}, {"main": ("1", "1Gi")}),
]


@pytest.fixture
def api() -> Iterator[tuple[MetricsApiState, PodMetricsSource]]:
    state = MetricsApiState(pods=list(WINE_PODS))
    with MetricsApiServer(state) as url:
        configuration = client.Configuration()
        configuration.host = url
        yield state, PodMetricsSource(client.ApiClient(configuration), timeout=5)


def test_sums_containers_per_pod_exactly(api: tuple[MetricsApiState, PodMetricsSource]) -> None:
    state, source = api
    pods = source.pod_usage("default", {"app": "wine"})
    assert pods == [
        PodUsage("wine-7d9c-abcde", Fraction(1234567, 10**9) + Fraction(1, 4), Fraction(81920 * 1024 + 64 * 2**20)),
        PodUsage("wine-7d9c-fghij", Fraction(2), Fraction(2**30)),
    ]
    assert state.requests == ["/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dwine"]


def test_selector_and_namespace_narrow_the_pods(api: tuple[MetricsApiState, PodMetricsSource]) -> None:
    _, source = api
    assert [p.pod for p in source.pod_usage("staging", {"app": "wine"})] == ["wine-other-ns"]
    assert [p.pod for p in source.pod_usage("default", {"tier": "model", "app": "wine"})] == ["wine-7d9c-abcde", "wine-7d9c-fghij"]
    assert source.pod_usage("default", {"app": "nothing"}) == []


@pytest.mark.parametrize(("status", "reason"), [(403, "forbidden"), (404, "not_found"), (503, "unavailable")])
def test_api_failures_become_counted_reasons(api: tuple[MetricsApiState, PodMetricsSource], status: int, reason: str) -> None:
    state, source = api
    state.failure = status
    with pytest.raises(CollectionError) as err:
        source.pod_usage("default", {"app": "wine"})
    assert (err.value.source, err.value.reason, err.value.permanent) == ("kubernetes", reason, False)
    assert str(status) in str(err.value)


def test_unreachable_api_is_one_attempt_without_urllib3_warnings(caplog: pytest.LogCaptureFixture) -> None:
    with MetricsApiServer(MetricsApiState()) as url:
        pass  # the port is closed now
    configuration = client.Configuration()  # urllib3's default: 3 retries, each logging a warning
    configuration.host = url
    with caplog.at_level(logging.WARNING), pytest.raises(CollectionError) as err:
        PodMetricsSource(client.ApiClient(configuration)).pod_usage("default", {"app": "wine"})
    assert err.value.reason == "unreachable"
    assert [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")] == []


def test_hung_api_is_a_timeout_after_one_attempt(silent_server: SilentServer) -> None:
    configuration = client.Configuration()
    configuration.host = silent_server.url
    started = time.monotonic()
    with pytest.raises(CollectionError) as err:
        PodMetricsSource(client.ApiClient(configuration), timeout=0.5).pod_usage("default", {"app": "wine"})
    assert err.value.reason == "timeout"
    assert "timed out" in str(err.value)
    assert len(silent_server.connections) == 1  # urllib3's default retries made it 4 (x the timeout)
    assert time.monotonic() - started < 0.5 * 4


def test_transport_errors_map_to_documented_reasons() -> None:
    from urllib3.exceptions import (
        ConnectTimeoutError,
        MaxRetryError,
        NewConnectionError,
        ProtocolError,
        ReadTimeoutError,
    )

    read_timeout = ReadTimeoutError(None, "/", "Read timed out.")  # type: ignore[arg-type]
    refused = NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    assert failure_reason(read_timeout) == "timeout"
    assert failure_reason(ConnectTimeoutError("connect timed out")) == "timeout"
    assert failure_reason(refused) == "unreachable"  # a ConnectTimeoutError subclass in urllib3 2
    assert failure_reason(MaxRetryError(None, "/", read_timeout)) == "timeout"  # type: ignore[arg-type]
    assert failure_reason(MaxRetryError(None, "/", refused)) == "unreachable"  # type: ignore[arg-type]
    assert failure_reason(ProtocolError("Connection aborted.")) == "unreachable"
    assert failure_reason(ConnectionResetError()) == "unreachable"


def test_no_cluster_config_is_permanent(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(CollectionError) as err:
        PodMetricsSource().pod_usage("default", {"app": "wine"})
    assert (err.value.reason, err.value.permanent) == ("no_config", True)


def test_kubeconfig_is_used(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = MetricsApiState(pods=list(WINE_PODS))
    with MetricsApiServer(state) as url:
        kubeconfig = tmp_path / "config"
        kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
            f"clusters: [{{name: test, cluster: {{server: '{url}'}}}}]\n"
            "contexts: [{name: test, context: {cluster: test, user: test}}]\n"
            "users: [{name: test, user: {token: abc}}]\n"
        )
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        assert [p.pod for p in PodMetricsSource().pod_usage("default", {"app": "churn"})] == ["churn-55f-xyz"]


@pytest.mark.parametrize(
    "body",
    [
        None,
        {"kind": "Status"},
        {"items": [{"metadata": {}, "containers": []}]},
        {"items": [{"metadata": {"name": "p"}, "containers": [{"usage": {"cpu": "lots", "memory": "1Ki"}}]}]},
        {"items": [{"metadata": {"name": 5}, "containers": []}]},
    ],
)
def test_malformed_bodies_are_invalid_responses(body: object) -> None:
    with pytest.raises(CollectionError) as err:
        pod_usage_from_list(body)
    assert err.value.reason == "invalid_response"


def test_label_selector_is_stable() -> None:
    assert label_selector({"tier": "model", "app": "wine"}) == "app=wine,tier=model"
