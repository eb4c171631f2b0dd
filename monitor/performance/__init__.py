"""Model performance: realized metrics from delayed labels, CBPE estimates before they arrive, and
degradation thresholds that hold a stated false-alarm rate (docs/performance.md).

Pure layer: numpy/scipy/pandas and `monitor.core` only, no I/O. The runtime builds one
`PerformanceProfile` per model from its labelled reference and calls `evaluate` per window.
"""

from __future__ import annotations

from monitor.performance.metrics import class_key, classification_metrics, regression_metrics
from monitor.performance.profile import LabelledRecords, PerformanceProfile, PerformanceResult

__all__ = [
    "LabelledRecords",
    "PerformanceProfile",
    "PerformanceResult",
    "class_key",
    "classification_metrics",
    "regression_metrics",
]
