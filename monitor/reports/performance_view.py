"""From stored performance rows to what the report's performance section shows (pure: no I/O, no HTML).

Rows are `PerformanceResult.to_dict()` as the runtime stored them. They are read here tolerantly (a
missing key is "not computed", never an error) rather than through `PerformanceResult.from_dict`,
because rows written by older or newer versions of the runtime stay in the store for a retention
period and a report must still render them. The band is stored for the headline metric as
`[lo, hi]`; a `{metric: [lo, hi]}` mapping is accepted too.

Windows are judged twice: the estimate (CBPE, from the model's own probabilities) as soon as the
window is evaluated, the realized value each time labels arrive. So a window with no labels yet has
the estimate alone, and the section says so instead of showing an empty realized column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.reports.source import PerformanceHistory, StoredPerformance
from monitor.runtime import LABEL_OUTCOMES

__all__ = [
    "ClassRow", "MetricRow", "PerfPoint", "PerformanceView", "performance_json", "performance_view",
]



@dataclass(frozen=True)
class PerfPoint:
    """One window on the performance chart: the headline metric, realized and estimated, and its judgement."""

    window_id: int
    n_records: int
    n_labelled: int
    realized: float | None
    estimated: float | None
    band: tuple[float, float] | None
    threshold_realized: float | None
    threshold_estimated: float | None
    realized_degraded: bool | None
    """None: not judged (no or too few labels)."""
    estimated_degraded: bool | None
    pending_refresh: bool

    @property
    def coverage(self) -> float:
        """Share of the window's records with a label (0 when the window is empty)."""
        return self.n_labelled / self.n_records if self.n_records else 0.0

    @property
    def degraded(self) -> bool:
        return bool(self.realized_degraded) or bool(self.estimated_degraded)


@dataclass(frozen=True)
class MetricRow:
    name: str
    realized: float | None
    estimated: float | None
    band: tuple[float, float] | None
    """The estimate's band: only the headline metric has one."""
    reference: float | None
    headline: bool


@dataclass(frozen=True)
class ClassRow:
    label: str
    precision: float | None
    recall: float | None
    f1: float | None
    support: int | None


@dataclass(frozen=True)
class PerformanceView:
    """The performance section of one window's report."""

    metric: str
    higher_is_better: bool
    reference: float | None
    """The headline metric on the labelled reference."""
    points: tuple[PerfPoint, ...]
    """Windows up to the report's, oldest first (the chart)."""
    window: PerfPoint | None
    """The window the table describes: the report's own when it has performance, else the newest before it."""
    is_report_window: bool
    metrics: tuple[MetricRow, ...]
    classes: tuple[ClassRow, ...]
    n_excluded: int
    band_level: float
    label_outcomes: tuple[tuple[str, int], ...]
    version: tuple[int, float, int]
    """Of the stored history: pages showing this view are cached under it."""

    @property
    def estimate_only(self) -> bool:
        """The table's window has no labels yet: the estimate is all there is."""
        return self.window is not None and self.window.n_labelled == 0


def _num(value: Any) -> float | None:
    """A finite float, or None (stored NaN is null; bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    x = float(value)
    return x if math.isfinite(x) else None


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _metrics(value: Any) -> dict[str, float | None]:
    return {str(k): _num(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def _pair(value: Any) -> tuple[float, float] | None:
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        lo, hi = _num(value[0]), _num(value[1])
        if lo is not None and hi is not None:
            return lo, hi
    return None


def _band(result: Mapping[str, Any], metric: str) -> tuple[float, float] | None:
    band = result.get("band")
    if isinstance(band, Mapping):
        return _pair(band.get(metric))
    return _pair(band)


def _point(row: StoredPerformance) -> PerfPoint:
    r = row.result
    metric = str(r.get("metric", ""))
    n_labelled = r.get("n_labelled")
    return PerfPoint(
        window_id=row.window_id,
        n_records=int(r.get("n_records") or row.n_records),
        n_labelled=int(n_labelled) if isinstance(n_labelled, int) else row.n_labelled,
        realized=_metrics(r.get("realized")).get(metric),
        estimated=_metrics(r.get("estimated")).get(metric),
        band=_band(r, metric),
        threshold_realized=_num(r.get("threshold_realized")),
        threshold_estimated=_num(r.get("threshold_estimated")),
        realized_degraded=_flag(r.get("realized_degraded")),
        estimated_degraded=_flag(r.get("estimated_degraded")),
        pending_refresh=row.pending_refresh,
    )


def _metric_rows(result: Mapping[str, Any], metric: str) -> tuple[MetricRow, ...]:
    """Every metric any of realized, estimated or reference has; the headline first, then the reference's order."""
    realized, estimated, reference = _metrics(result.get("realized")), _metrics(result.get("estimated")), _metrics(result.get("reference"))
    names = list(dict.fromkeys([metric, *reference, *realized, *estimated]))
    return tuple(
        MetricRow(name, realized.get(name), estimated.get(name), _band(result, metric) if name == metric else None,
                  reference.get(name), name == metric)
        for name in names
        if name in realized or name in estimated or name in reference
    )


def _class_rows(result: Mapping[str, Any]) -> tuple[ClassRow, ...]:
    rows = result.get("per_class")
    if not isinstance(rows, Sequence) or isinstance(rows, str):
        return ()
    out = []
    for row in rows:
        if isinstance(row, Mapping):
            support = row.get("support")
            out.append(ClassRow(str(row.get("class")), _num(row.get("precision")), _num(row.get("recall")),
                                _num(row.get("f1")), int(support) if isinstance(support, int) and not isinstance(support, bool) else None))
    return tuple(out)


def _outcomes(counts: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    """Every outcome the runtime knows, zeros included (a zero `joined` is the news); unknown ones after."""
    known = [(o, int(counts.get(o, 0))) for o in LABEL_OUTCOMES]
    return (*known, *sorted((o, int(n)) for o, n in counts.items() if o not in LABEL_OUTCOMES))


def performance_view(history: PerformanceHistory | None, window_id: int) -> PerformanceView | None:
    """The section of window `window_id`'s report; None when the model has no performance section."""
    if history is None:
        return None
    rows = [w for w in history.windows if w.window_id <= window_id]
    latest = rows[-1] if rows else None
    result: Mapping[str, Any] = latest.result if latest is not None else {}
    metric = str(result.get("metric", ""))
    return PerformanceView(
        metric=metric,
        higher_is_better=result.get("direction", "higher_is_better") != "lower_is_better",
        reference=_metrics(result.get("reference")).get(metric),
        points=tuple(_point(w) for w in rows),
        window=_point(latest) if latest is not None else None,
        is_report_window=latest is not None and latest.window_id == window_id,
        metrics=_metric_rows(result, metric) if latest is not None else (),
        classes=_class_rows(result),
        n_excluded=int(result.get("n_excluded") or 0),
        band_level=_num(result.get("band_level")) or 0.95,
        label_outcomes=_outcomes(history.label_outcomes),
        version=history.version,
    )


def performance_json(view: PerformanceView | None) -> dict[str, Any] | None:
    """The section for the report's JSON twin: what the chart and the table show, in plain numbers."""
    if view is None:
        return None
    w = view.window
    return {
        "metric": view.metric,
        "direction": "higher_is_better" if view.higher_is_better else "lower_is_better",
        "reference": view.reference,
        "window_id": w.window_id if w is not None else None,
        "estimate_only": view.estimate_only,
        "n_records": w.n_records if w is not None else None,
        "n_labelled": w.n_labelled if w is not None else None,
        "metrics": [
            {"name": m.name, "realized": m.realized, "estimated": m.estimated,
             "band": list(m.band) if m.band else None, "reference": m.reference}
            for m in view.metrics
        ],
        "per_class": [
            {"class": c.label, "precision": c.precision, "recall": c.recall, "f1": c.f1, "support": c.support}
            for c in view.classes
        ],
        "label_outcomes": dict(view.label_outcomes),
        "history": [
            {"window_id": p.window_id, "n_records": p.n_records, "n_labelled": p.n_labelled, "realized": p.realized,
             "estimated": p.estimated, "band": list(p.band) if p.band else None,
             "threshold_realized": p.threshold_realized, "threshold_estimated": p.threshold_estimated,
             "realized_degraded": p.realized_degraded, "estimated_degraded": p.estimated_degraded}
            for p in view.points
        ],
    }
