"""One window's performance as stored and published: plain values, no numpy, pandas or scipy.

The idle monitor restores the newest results from the store at start-up; keeping the type here
keeps `monitor.performance.profile` (pandas, scipy) out of that path (docs/architecture.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["PerformanceResult"]


def _clean(value: Any) -> Any:
    """NaN/inf → None, recursively, so the record is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _nan(values: Mapping[str, Any] | None) -> dict[str, float] | None:
    return None if values is None else {k: float("nan") if v is None else float(v) for k, v in values.items()}


@dataclass(frozen=True)
class PerformanceResult:
    """One window's performance. Metric dicts map names of `monitor.core.performance_metrics` to
    values (NaN where undefined, e.g. ROC AUC with one class); degraded flags are None when not
    judged (too few labels, no probabilities, a metric that cannot be estimated)."""

    metric: str
    direction: str
    """"higher_is_better" or "lower_is_better" (of the headline metric)."""
    n_records: int
    n_labelled: int
    coverage: float | None
    realized: dict[str, float] | None
    per_class: tuple[dict[str, Any], ...] | None
    estimated: dict[str, float] | None
    band: tuple[float, float] | None
    reference: dict[str, float]
    threshold_realized: float | None
    threshold_estimated: float | None
    realized_degraded: bool | None
    estimated_degraded: bool | None
    n_excluded: int = 0
    """Labelled records without a label or a prediction value."""
    band_level: float = field(default=0.95)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: NaN and infinities become null."""
        out: dict[str, Any] = _clean(asdict(self))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PerformanceResult:
        d = dict(data)
        for key in ("realized", "estimated", "reference"):
            d[key] = _nan(d.get(key))
        if d.get("band") is not None:
            d["band"] = tuple(float("nan") if v is None else float(v) for v in d["band"])
        if d.get("per_class") is not None:
            d["per_class"] = tuple({k: float("nan") if v is None else v for k, v in row.items()} for row in d["per_class"])
        return cls(**d)
