"""ConfigMaps the Grafana sidecar (e.g. kube-prometheus-stack's) picks up as dashboards.

The sidecar watches ConfigMaps carrying a label (`grafana_dashboard: "1"` by default) and files
their dashboards into the folder named by an annotation; both are configurable because every
Grafana installation chooses its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dashboards.grafana import dumps

__all__ = ["SidecarConvention", "build"]

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_KEY_RE = re.compile(rf"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_NAME}$")
_VALUE_RE = re.compile(rf"^({_NAME})?$")
_NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class SidecarConvention:
    """How the Grafana sidecar finds dashboards; `namespace=None` leaves it to `kubectl -n`."""

    label_key: str = "grafana_dashboard"
    label_value: str = "1"
    folder_annotation_key: str = "grafana_folder"
    folder: str = "Driftwatch"
    namespace: str | None = None

    def __post_init__(self) -> None:
        for what, key in (("label key", self.label_key), ("folder annotation key", self.folder_annotation_key)):
            prefix = key.rpartition("/")[0]
            if not _KEY_RE.match(key) or len(prefix) > 253:
                raise ValueError(f"invalid {what} {key!r}: expected a Kubernetes label key such as grafana_dashboard")
        if not self.label_value:
            raise ValueError("empty label value: the Grafana sidecar finds dashboards by this label's value, e.g. 1")
        if not _VALUE_RE.match(self.label_value):
            raise ValueError(
                f"invalid label value {self.label_value!r}: at most 63 letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit"
            )
        if not self.folder.strip():
            raise ValueError("empty folder: name the Grafana folder for the dashboards, e.g. Driftwatch")
        if self.namespace is not None and not _NAMESPACE_RE.match(self.namespace):
            raise ValueError(f"invalid namespace {self.namespace!r}: expected a DNS label such as monitoring")


def build(dashboards: dict[str, dict[str, Any]], convention: SidecarConvention) -> list[dict[str, Any]]:
    """One ConfigMap per dashboard file, named after the file, in filename order."""
    out = []
    for filename in sorted(dashboards):
        metadata: dict[str, Any] = {
            "name": "driftwatch-dashboard-" + filename.removeprefix("driftwatch-").removesuffix(".json"),
            "labels": {
                convention.label_key: convention.label_value,
                "app.kubernetes.io/name": "driftwatch",
                "app.kubernetes.io/component": "dashboards",
            },
            "annotations": {convention.folder_annotation_key: convention.folder},
        }
        if convention.namespace is not None:
            metadata["namespace"] = convention.namespace
        out.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": metadata,
                "data": {filename: dumps(dashboards[filename])},
            }
        )
    return out
