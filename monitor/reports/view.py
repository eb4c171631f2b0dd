"""From stored evaluations to what a report shows (pure: no I/O, no HTML).

Stored results are `DriftResult.to_dict()`; they are turned back into the engine's own result types
so verdicts and p-value handling are defined once, in monitor.drift: the report's verdicts are the
metrics' and the alerts'. Columns are ranked by effect size (`effect_size`), not by p-value: with
thousands of rows a negligible shift has a p-value of 1e-40, so "how small is p" says more about the
sample size than about how much a column moved. Its numbers differ in one place,
on purpose: for p-value tests `driftwatch_feature_drift_p_value` exports the raw p-value, while the
history plot shows the value the verdict compares with the threshold (`decision_value`: the
Benjamini-Hochberg adjusted p-value when that correction is on), so drifted windows sit on the drift
side of the threshold line. The plot names what it shows and the columns table gives both p-values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from monitor.core.names import report_path
from monitor.drift.result import DriftResult, FeatureResult, result_from_dict
from monitor.reports.distributions import Distribution, distributions
from monitor.reports.examples import TextExamples, window_examples
from monitor.reports.performance_view import PerformanceView, performance_json
from monitor.reports.plots import HistoryPoint, ScoreSeries
from monitor.reports.source import Evaluation

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Effect", "IndexRow", "ReportView", "WindowRef", "decision_value", "effect_size", "index_json", "ranked",
    "report_json", "report_view", "result_from_dict", "with_distributions", "with_examples",
]


@dataclass(frozen=True)
class WindowRef:
    window_id: int
    start: float
    end: float
    n_records: int
    evaluated_at: float
    drift_share: float
    drifted: bool

    @classmethod
    def of(cls, ev: Evaluation) -> WindowRef:
        ds = ev.result.get("dataset", {})
        return cls(ev.window_id, ev.start, ev.end, ev.n_records, ev.evaluated_at, _num(ds.get("drift_share")), bool(ds.get("drifted")))

    def to_dict(self) -> dict[str, Any]:
        return {
            "window_id": self.window_id,
            "start": self.start,
            "end": self.end,
            "n_records": self.n_records,
            "evaluated_at": self.evaluated_at,
            "drift_share": None if math.isnan(self.drift_share) else self.drift_share,
            "drifted": self.drifted,
        }


@dataclass(frozen=True)
class ReportView:
    """One window's report: the result, the windows before it and each column's score history."""

    model: str
    window: WindowRef
    result: DriftResult
    raw_result: Mapping[str, Any]
    history: tuple[WindowRef, ...]
    """Recent windows up to and including this one, oldest first."""
    series: tuple[ScoreSeries, ...]
    distributions: tuple[Distribution, ...] = ()
    """Reference vs window per column, in table order; empty until the worker adds them (they need the data)."""
    performance: PerformanceView | None = None
    """Realized vs estimated performance up to this window; None for a model without ground truth.
    Unlike the drift part it changes as labels arrive, so it is attached per request, not cached."""
    examples: tuple[TextExamples, ...] = ()
    """Per text column, example texts of the window (`with_examples`: they need the data too)."""
    reference: str | None = None
    """The stored reference the window was judged against, named (`Evaluation.reference`); None: the config's."""

    @property
    def judged_against(self) -> str:
        """`reference #3 (file, 2026-12-06 18:20 UTC)`, or `the configured reference`."""
        return self.reference or "the configured reference"

    @property
    def columns(self) -> list[FeatureResult]:
        """Every column in report order: drifted first, each group by effect size (`ranked`)."""
        return ranked(self.result)

    @property
    def drifted(self) -> list[FeatureResult]:
        return [f for f in self.columns if f.drifted]


@dataclass(frozen=True)
class IndexRow:
    model: str
    latest: WindowRef | None
    n_drifted: int
    top_features: tuple[str, ...]


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _opt(value: Any) -> float | None:
    return None if value is None else _num(value)


def decision_value(f: FeatureResult) -> float:
    """The number compared with the threshold: the distance, or the (adjusted) p-value of a test."""
    if f.is_test:
        p = f.adjusted_p_value if f.adjusted_p_value is not None else f.p_value
        return math.nan if p is None else p
    return f.score


@dataclass(frozen=True)
class Effect:
    """How much a column moved, on a scale that does not grow with the sample size.

    `value` is the distance itself for distance methods; tests get a standardized effect from their
    statistic (`label` names which), since their p-value shrinks with n however small the shift.
    """

    value: float
    label: str


def _cramers_v(chi2: float | None, n: int) -> float:
    """Cramér's V of a 2-by-k table (reference vs window): sqrt(chi2 / n), in [0, 1]."""
    if chi2 is None or n <= 0 or not math.isfinite(chi2):
        return math.nan
    return min(1.0, math.sqrt(max(chi2, 0.0) / n))


def _phi_from_shares(f: FeatureResult) -> float:
    """phi (= Cramér's V) of the 2x2 table rebuilt from the stored shares of the two categories."""
    cats = [c for c in f.details.get("categories") or [] if isinstance(c, Mapping)]
    if len(cats) < 2 or f.n_reference <= 0 or f.n_current <= 0:
        return math.nan
    a, b = (_num(cats[0].get("reference")) * f.n_reference, _num(cats[1].get("reference")) * f.n_reference)
    c, d = (_num(cats[0].get("current")) * f.n_current, _num(cats[1].get("current")) * f.n_current)
    denom = math.sqrt((a + b) * (c + d) * (a + c) * (b + d))
    return abs(a * d - b * c) / denom if denom > 0 else math.nan


def _mean_shift(f: FeatureResult) -> float:
    """|mean(window) - mean(reference)| in reference standard deviations (Glass's delta)."""
    ref, cur = f.details.get("reference") or {}, f.details.get("current") or {}
    mr, sr, mc = _num(ref.get("mean")), _num(ref.get("std")), _num(cur.get("mean"))
    if not (math.isfinite(mr) and math.isfinite(mc) and math.isfinite(sr)) or sr <= 0:
        return math.nan
    return abs(mc - mr) / sr


EFFECT_LABELS = {"wasserstein_normed": "normed W1 (std units)", "total_variation": "total variation",
                 "ks_component": "largest KS D over principal components"}


def effect_size(f: FeatureResult) -> Effect:
    """The distance, or a standardized effect for a test (NaN when the column was not tested)."""
    if f.details.get("type_changed"):
        return Effect(math.inf, "type changed")  # nothing drifts louder: ranks first
    if f.untested is not None:
        return Effect(math.nan, "")
    if not f.is_test:
        return Effect(f.score, "distance")
    if not math.isnan(f.effect_size):  # the engine's own (results stored before it had one: below)
        return Effect(f.effect_size, EFFECT_LABELS.get(f.effect_metric, f.effect_metric))
    n, m = f.n_reference, f.n_current
    if f.method == "ks":
        return Effect(_num(f.statistic), "KS D (largest CDF gap)")
    if f.method == "cramer_von_mises":
        # scipy's T is about n*m/(n+m) times the mean squared CDF gap; its root is that gap's RMS.
        t = _num(f.statistic)
        value = math.sqrt(max(t, 0.0) * (n + m) / (n * m)) if n > 0 and m > 0 and math.isfinite(t) else math.nan
        return Effect(value, "RMS CDF gap")
    if f.method == "anderson":
        return Effect(_mean_shift(f), "mean shift in SDs")
    if f.method == "chisquare":
        return Effect(_cramers_v(f.statistic, n + m), "Cramér's V")
    if f.method == "z":
        z = f.statistic
        return Effect(_cramers_v(None if z is None else z * z, n + m), "Cramér's V")
    return Effect(_phi_from_shares(f), "Cramér's V")


def ranked(result: DriftResult) -> list[FeatureResult]:
    """Drifted columns first, then the rest; within each, largest effect first (untested last)."""

    def key(f: FeatureResult) -> tuple[bool, bool, float, str]:
        e = effect_size(f).value
        return (not f.drifted, math.isnan(e), -e if not math.isnan(e) else 0.0, f.name)

    return sorted(result.features.values(), key=key)


def _quantity(f: FeatureResult) -> str:
    """Names the plotted p-value of a test; a distance is what its method says."""
    if not f.is_test:
        return ""
    return "BH-adjusted p" if f.adjusted_p_value is not None else "p-value"


def _series(history: Sequence[tuple[WindowRef, DriftResult]], current: DriftResult) -> tuple[ScoreSeries, ...]:
    """One series per column of the current window, in the table's order (`ranked`)."""
    order = [f.name for f in ranked(current)]
    out = []
    for name in order:
        f = current.features[name]
        points = []
        for ref, res in history:
            past = res.features.get(name)
            # A window evaluated with another method (config changed) is not comparable on this axis.
            if past is None or past.method != f.method:
                points.append(HistoryPoint(str(ref.window_id), None, False))
                continue
            value = decision_value(past)
            points.append(HistoryPoint(str(ref.window_id), None if math.isnan(value) else value, past.drifted))
        out.append(ScoreSeries(name, f.method, f.threshold, f.is_test, tuple(points), _quantity(f)))
    return tuple(out)


def report_view(evaluation: Evaluation, history: Sequence[Evaluation]) -> ReportView:
    """`history`: recent evaluations of the model up to this one, oldest first (this one may be last)."""
    result = result_from_dict(evaluation.result)
    past = [(WindowRef.of(e), result_from_dict(e.result)) for e in history if e.window_id != evaluation.window_id]
    past = [(r, res) for r, res in past if r.window_id < evaluation.window_id]
    window = WindowRef.of(evaluation)
    timeline = [*past, (window, result)]
    return ReportView(
        model=evaluation.model,
        window=window,
        result=result,
        raw_result=evaluation.result,
        history=tuple(r for r, _ in timeline),
        series=_series(timeline, result),
        reference=evaluation.reference,
    )


def with_distributions(view: ReportView, reference: pd.DataFrame | None, current: pd.DataFrame | None) -> ReportView:
    """The view with a reference-vs-window picture per column; None frames: the records are unavailable."""
    return replace(view, distributions=distributions(view.columns, reference, current))


def with_examples(
    view: ReportView, reference: pd.DataFrame | None, current: pd.DataFrame | None, counts: Mapping[str, int]
) -> ReportView:
    """The view with example texts per text column (`counts`: how many each shows, its `text.examples`)."""
    return replace(view, examples=window_examples(view.columns, reference, current, counts))


def index_row(model: str, latest: Evaluation | None) -> IndexRow:
    if latest is None:
        return IndexRow(model, None, 0, ())
    drifted = [f for f in ranked(result_from_dict(latest.result)) if f.drifted]
    return IndexRow(model, WindowRef.of(latest), len(drifted), tuple(f.name for f in drifted))


def report_json(view: ReportView, base: str) -> dict[str, Any]:
    """The JSON twin of a report page; `base` is the URL prefix of the reports (e.g. `/reports`)."""
    m, w = view.model, view.window.window_id
    namespace, _, name = m.rpartition("/")
    return {
        "model": name,
        "namespace": namespace or None,
        "window": view.window.to_dict(),
        "judged_against": view.judged_against,
        "drifted_features": [f.name for f in view.drifted],
        "columns": [
            {"name": f.name, "drifted": f.drifted, "effect": _json_num(e.value), "effect_kind": e.label or None}
            for f in view.columns
            for e in [effect_size(f)]
        ],
        "result": dict(view.raw_result),
        "performance": performance_json(view.performance),
        "examples": [e.to_dict() for e in view.examples],
        "history": [
            {**w.to_dict(), "scores": {s.feature: s.points[i].value for s in view.series}}
            for i, w in enumerate(view.history)
        ],
        "links": {
            "html": report_path(m, w, base),
            "json": report_path(m, w, base, ".json"),
            "evidently": report_path(m, w, base, "/evidently"),
            "earlier": [report_path(m, e.window_id, base) for e in reversed(view.history[:-1])],
        },
    }


def _json_num(x: float) -> float | None:
    return x if math.isfinite(x) else None


def index_json(rows: Sequence[IndexRow], base: str) -> dict[str, Any]:
    return {
        "models": [
            {
                "model": r.model.rpartition("/")[2],
                "namespace": r.model.rpartition("/")[0] or None,
                "latest": r.latest.to_dict() if r.latest else None,
                "drifted_features": list(r.top_features),
                "links": {"html": report_path(r.model, base=base), "json": report_path(r.model, base=base, suffix=".json")},
            }
            for r in rows
        ]
    }
