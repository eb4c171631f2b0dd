"""The rules as a Prometheus Operator PrometheusRule (monitoring.coreos.com/v1)."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["DEFAULT_LABELS", "prometheus_rule"]

DEFAULT_LABELS = {"app.kubernetes.io/name": "driftwatch", "app.kubernetes.io/component": "alerts"}
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def prometheus_rule(groups: dict[str, Any], name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    """Wrap a `groups:` document; `labels` (merged over the defaults) must match the operator's
    ruleSelector, e.g. `release: kube-prometheus-stack`."""
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise ValueError(f"invalid PrometheusRule name {name!r}: lowercase letters, digits, '-' and '.'")
    if not _DNS_LABEL.match(namespace):
        raise ValueError(f"invalid namespace {namespace!r}: a DNS label such as monitoring")
    for key, value in labels.items():
        if not _LABEL_KEY.match(key):
            raise ValueError(f"invalid label key {key!r}")
        if not _LABEL_VALUE.match(value):
            raise ValueError(f"invalid value {value!r} for label {key!r}: at most 63 letters, digits, '-', '_', '.'")
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": name, "namespace": namespace, "labels": {**DEFAULT_LABELS, **labels}},
        "spec": groups,
    }
