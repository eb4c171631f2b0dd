"""Name grammars, public and in one place: model names and Kubernetes' own name and label grammars.

The config validates against them, and so do the sidecar's and `driftwatch inject`'s flags, which
must accept exactly the model names a config accepts. Standard library only (the core layer).
"""

from __future__ import annotations

import re

__all__ = ["DNS1123_LABEL_RE", "DNS1123_SUBDOMAIN_RE", "LABEL_NAME_RE", "MAX_VERSION", "MODEL_NAME_RE", "VERSION_RE",
           "InvalidVersion", "check_version", "report_path"]

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


MAX_VERSION = 64
"""The longest model version kept (MLflow's integers, semver with build metadata, KServe revisions, image tags)."""
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+\-]*\Z")
"""A model version: it becomes a metric label value and part of a store key, so letters, digits and `._+-`."""


class InvalidVersion(ValueError):
    """A version the traffic named that driftwatch will not track; the message says exactly why."""


def check_version(raw: str) -> str:
    """`raw` without surrounding blanks, when it is a version (`VERSION_RE`, at most `MAX_VERSION`);
    `InvalidVersion` saying why otherwise (the message never echoes the value: it is sender data)."""
    text = raw.strip(" \t")
    if len(text) <= MAX_VERSION and VERSION_RE.match(text):  # the common case: one match
        return text
    if not text:
        raise InvalidVersion("the version is empty")
    if len(text) > MAX_VERSION:
        raise InvalidVersion(f"the version is {len(text)} characters long, more than {MAX_VERSION}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise InvalidVersion("the version contains a control character")
    if not VERSION_RE.match(text):
        raise InvalidVersion("the version may hold only letters, digits and '._+-', starting with a letter or digit")
    return text
