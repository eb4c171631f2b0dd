"""Name grammars, public and in one place: model names and Kubernetes' own name and label grammars.

The config validates against them, and so do the sidecar's and `driftwatch inject`'s flags, which
must accept exactly the model names a config accepts. Standard library only (the core layer).
"""

from __future__ import annotations

import re

__all__ = ["DNS1123_LABEL_RE", "DNS1123_SUBDOMAIN_RE", "LABEL_NAME_RE", "MODEL_NAME_RE", "report_path"]

REPORTS = "/reports"
"""Where the monitor serves its HTML reports (monitor/reports/routes.py)."""


def report_path(key: str, window: int | None = None, base: str = REPORTS, suffix: str = "") -> str:
    """The path of a model's report (its newest window, or `window`): `/reports/<name>[/<window>][suffix]`,
    with `?namespace=` for a model keyed `namespace/name` (`ModelConfig.key`; a path segment cannot hold '/')."""
    namespace, _, name = key.rpartition("/")
    path = f"{base}/{name}" + (f"/{window}" if window is not None else "") + suffix
    return path + (f"?namespace={namespace}" if namespace else "")

MODEL_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?$")
"""A model's name: a DNS-1123 label (it names Kubernetes objects and metric label values)."""

# Kubernetes' grammars (apimachinery validation).
DNS1123_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
"""A DNS-1123 label: namespaces."""
DNS1123_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
"""A DNS-1123 subdomain: label key prefixes (the length, at most 253, is checked apart)."""
LABEL_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$")
"""A qualified name: label key names and non-empty label values."""
