"""Which model version served a captured call, as the traffic itself says (docs/versions.md).

Pure: the strings found here are the sender's; `monitor.core.names.check_version` decides whether
one is kept. Sources, first found wins:

1. the event's own `version` (the sidecar's `--version-header` from the model server's response,
   or its fixed `--model-version`, e.g. a pod label through the downward API);
2. Open Inference Protocol v2: the response's `model_version`, then the version in the request
   path (`/v2/models/{name}/versions/{version}/infer`);
3. KServe's payload logger: the Knative revision in `Ce-Source`, which KServe sets to the pod's
   name (`{isvc}-predictor-00002-deployment-7cdb7955f8-s244d` → `00002`).
"""

from __future__ import annotations

import re
from typing import Any

from monitor.capture.wire import CapturedEvent

__all__ = ["body_version", "envelope_version", "kserve_revision"]

_V2_PATH = re.compile(r"/v2/models/[^/]+/versions/([^/]+)/(?:infer|generate|generate_stream)\Z")
_REVISION = re.compile(r"-(\d{5})-deployment-[a-z0-9]+-[a-z0-9]+\Z")
"""A Knative revision's pod: `<configuration>-<5-digit generation>-deployment-<replicaset hash>-<suffix>`."""


def kserve_revision(source: str) -> str | None:
    """The revision generation a KServe (Knative, serverless mode) pod name carries; None for other
    names (raw deployment mode has no revision: there the sidecar's pod label is the source)."""
    found = _REVISION.search(source)
    return found.group(1) if found else None


def envelope_version(event: CapturedEvent) -> str | None:
    """The version the event says without reading its bodies: its `version`, a v2 path's, or a
    KServe revision (sources 1, 2's path and 3)."""
    if event.version is not None:
        return event.version
    if "/versions/" in event.path:
        found = _V2_PATH.search(event.path)
        if found:
            return found.group(1)
    source = event.headers.get("ce-source")
    return kserve_revision(source) if source else None


def body_version(response: Any) -> str | None:
    """An Open Inference Protocol v2 response's `model_version` (when it is a string)."""
    if isinstance(response, dict):
        version = response.get("model_version")
        if isinstance(version, str):
            return version
    return None
