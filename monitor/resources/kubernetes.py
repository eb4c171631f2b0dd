"""CPU and memory of a model's pods from the Kubernetes metrics API (`metrics.k8s.io/v1beta1`).

The same numbers `kubectl top pod` shows: metrics-server's PodMetrics, whose container `usage.cpu`
is a rate in cores over `window` and `usage.memory` the working set in bytes. Containers are summed
per pod, exactly (see `quantity`). Read with the official client so in-cluster service-account auth
and kubeconfig contexts behave as everywhere else in Kubernetes.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from monitor.resources.quantity import parse_quantity
from monitor.resources.usage import CollectionError, PodUsage

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, Configuration

__all__ = ["PodMetricsSource", "failure_reason", "label_selector", "pod_usage_from_list"]

SOURCE = "kubernetes"
_REASONS_BY_STATUS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 503: "unavailable"}


def label_selector(selector: Mapping[str, str]) -> str:
    """An equality-based selector string (`app=wine,tier=model`), in a stable order."""
    return ",".join(f"{key}={value}" for key, value in sorted(selector.items()))


def pod_usage_from_list(body: Any) -> list[PodUsage]:
    """Per-pod usage from a PodMetricsList body; `CollectionError` if it is not one."""
    if not isinstance(body, Mapping) or not isinstance(body.get("items"), list):
        raise CollectionError(SOURCE, "invalid_response", "expected a PodMetricsList with `items`")
    pods = []
    for item in body["items"]:
        try:
            name = item["metadata"]["name"]
            cpu = sum((parse_quantity(c["usage"]["cpu"]) for c in item["containers"]), start=parse_quantity("0"))
            memory = sum((parse_quantity(c["usage"]["memory"]) for c in item["containers"]), start=parse_quantity("0"))
        except (KeyError, TypeError, ValueError) as exc:
            raise CollectionError(SOURCE, "invalid_response", f"malformed PodMetrics item: {exc!r}") from None
        if not isinstance(name, str):
            raise CollectionError(SOURCE, "invalid_response", "PodMetrics metadata.name is not a string")
        pods.append(PodUsage(pod=name, cpu_cores=cpu, memory_working_set_bytes=memory))
    return sorted(pods, key=lambda p: p.pod)


def _default_configuration() -> Configuration:
    """In-cluster service account first, then kubeconfig; no config at all is a permanent failure.

    `KUBECONFIG` is read at call time (the client reads it once at import). With neither a service
    (`KUBERNETES_SERVICE_HOST`) nor a kubeconfig file, the client (~35 MiB) is not even imported.
    """
    kubeconfig = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    if not os.environ.get("KUBERNETES_SERVICE_HOST") and not any(os.path.exists(p) for p in kubeconfig.split(os.pathsep) if p):
        raise CollectionError(SOURCE, "no_config", f"no in-cluster config or kubeconfig: no $KUBERNETES_SERVICE_HOST and no {kubeconfig}",
                              permanent=True)
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        try:
            config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        except Exception as exc:  # the loader raises several types for absent or broken files
            raise CollectionError(SOURCE, "no_config", f"no in-cluster config or kubeconfig: {exc}", permanent=True) from None
    return configuration


def _without_retries(configuration: Configuration) -> ApiClient:
    """A client whose urllib3 pool never retries: the next round is the retry.

    urllib3's default (3 retries) turned one hung API server into 4 attempts x the timeout per
    model per round and 3 warnings each. The pool takes `retries` when it is built, so a given
    client's configuration is copied rather than changed under its owner.
    """
    from kubernetes import client

    configuration = copy.deepcopy(configuration)
    configuration.retries = False
    return client.ApiClient(configuration)


def failure_reason(exc: BaseException) -> str:
    """`timeout` (connect or read), else `unreachable`, for a transport error from urllib3."""
    from urllib3.exceptions import MaxRetryError, NewConnectionError, TimeoutError

    if isinstance(exc, MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    # NewConnectionError (refused, no route, DNS) subclasses ConnectTimeoutError in urllib3 2.
    if isinstance(exc, TimeoutError) and not isinstance(exc, NewConnectionError):
        return "timeout"
    return "unreachable"


class PodMetricsSource:
    """Lists PodMetrics by namespace and label selector; every failure is a `CollectionError`.

    One attempt per call, bounded by `timeout` seconds to connect and again to read.
    """

    def __init__(self, api_client: ApiClient | None = None, timeout: float = 5.0) -> None:
        self._api_client = _without_retries(api_client.configuration) if api_client is not None else None
        self._timeout = timeout

    def pod_usage(self, namespace: str, selector: Mapping[str, str]) -> list[PodUsage]:
        if self._api_client is None:
            self._api_client = _without_retries(_default_configuration())
        from kubernetes.client import CustomObjectsApi
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        api = CustomObjectsApi(self._api_client)
        try:
            body = api.list_namespaced_custom_object(
                group="metrics.k8s.io",
                version="v1beta1",
                namespace=namespace,
                plural="pods",
                label_selector=label_selector(selector),
                _request_timeout=(self._timeout, self._timeout),
            )
        except ApiException as exc:
            reason = _REASONS_BY_STATUS.get(exc.status or 0, "http_error")
            raise CollectionError(SOURCE, reason, f"metrics API answered {exc.status} {exc.reason}") from None
        except (HTTPError, OSError) as exc:
            reason = failure_reason(exc)
            raise CollectionError(SOURCE, reason, f"metrics API {'timed out' if reason == 'timeout' else 'unreachable'}: {exc}") from None
        except ValueError as exc:  # a body that is not JSON
            raise CollectionError(SOURCE, "invalid_response", f"metrics API body is not JSON: {exc}") from None
        return pod_usage_from_list(body)
