"""Model performance: realized metrics from delayed labels, CBPE estimates before they arrive, and
degradation thresholds that hold a stated false-alarm rate (docs/performance.md).

Pure layer: numpy/scipy/pandas and `monitor.core` only, no I/O. The runtime builds one
`PerformanceProfile` per model from its labelled reference and calls `evaluate` per window.
The names below load their module on first use (PEP 562): `monitor.performance.result`, which the
idle monitor restores, does not load pandas and scipy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.performance.metrics import class_key, classification_metrics, regression_metrics
    from monitor.performance.profile import LabelledRecords, PerformanceProfile
    from monitor.performance.result import PerformanceResult

_HOME = {
    **dict.fromkeys(("class_key", "classification_metrics", "regression_metrics"), "metrics"),
    **dict.fromkeys(("LabelledRecords", "PerformanceProfile"), "profile"),
    "PerformanceResult": "result",
}

__all__ = [
    "LabelledRecords",
    "PerformanceProfile",
    "PerformanceResult",
    "class_key",
    "classification_metrics",
    "regression_metrics",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # once: later lookups do not come back here
    return value
