"""Reference vs window distributions of every column, for the report's own plots (pure: no I/O).

A score says *that* a column moved; a picture says *how* (a shift, a wider spread, a new category).
Numeric columns get overlaid histograms on shared bins, computed from the data when the worker has the
window's records; categorical columns (and numeric ones with few distinct values) get side-by-side
shares. When a window's records are gone (retention), numeric columns fall back to the cumulative
shares at the quantiles the stored result keeps, and say so, so old windows still get a picture.
Embedding columns get a scatter of both sides on the reference's first two principal components and
the on-demand MMD check (`monitor.drift.embedding.mmd_test`), both from the records, when they are read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from monitor.drift.result import FeatureResult

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Bars", "Distribution", "Histogram", "QuantileSteps", "Scatter", "distribution", "distributions"]

MAX_DISTINCT_AS_BARS = 12
"""Numeric columns with at most this many distinct values (counts, flags) are drawn as bars per value."""
TAIL = 0.005
"""Bins span the pooled 0.5-99.5% range; the outer bins also hold the tails, so one outlier cannot flatten the plot."""


@dataclass(frozen=True)
class Histogram:
    """Shares of each side's values per bin (each side sums to 1), bins shared by both sides."""

    edges: tuple[float, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]


@dataclass(frozen=True)
class Bars:
    """Shares per category (or distinct value), widest first; `other` is what the shown ones leave out."""

    labels: tuple[str, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]
    other_reference: float = 0.0
    other_current: float = 0.0


@dataclass(frozen=True)
class QuantileSteps:
    """Cumulative share at stored quantiles (min, p5 ... p95, max), for when the records are gone."""

    reference: tuple[tuple[float, float], ...]
    current: tuple[tuple[float, float], ...]


SCATTER_POINTS = 400
"""Points drawn per side of an embedding column's scatter (a seeded sample: the page stays small)."""
MMD_SAMPLE = 1000
MMD_PERMUTATIONS = 200


@dataclass(frozen=True)
class Scatter:
    """An embedding column: both sides on the reference's first two principal components, the share
    of the reference's variance they hold, and the MMD check's outcome."""

    reference: tuple[tuple[float, float], ...]
    current: tuple[tuple[float, float], ...]
    explained: tuple[float, float]
    mmd2: float
    mmd_p: float
    mmd_drifted: bool
    mmd_rows: tuple[int, int]
    permutations: int


@dataclass(frozen=True)
class Distribution:
    feature: str
    kind: Literal["numeric", "categorical", "embedding"]
    drifted: bool
    shape: Histogram | Bars | QuantileSteps | Scatter | None
    note: str = ""
    """Said under the plot when the picture is approximate or missing."""


def _bins(n: int) -> int:
    """About sqrt(n) bins for the smaller side, between 10 and 40."""
    return max(10, min(40, int(math.sqrt(max(n, 1)))))


def _histogram(ref: np.ndarray, cur: np.ndarray) -> Histogram:
    lo = float(min(np.quantile(ref, TAIL), np.quantile(cur, TAIL)))
    hi = float(max(np.quantile(ref, 1 - TAIL), np.quantile(cur, 1 - TAIL)))
    if not hi > lo:
        lo, hi = float(min(ref[0], cur[0])), float(max(ref[-1], cur[-1]))
    edges = np.linspace(lo, hi, _bins(min(ref.size, cur.size)) + 1)

    def shares(x: np.ndarray) -> tuple[float, ...]:
        counts, _ = np.histogram(np.clip(x, lo, hi), edges)
        return tuple(round(float(c) / x.size, 6) for c in counts)

    return Histogram(tuple(round(float(e), 9) for e in edges), shares(ref), shares(cur))


def _label(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def _value_bars(ref: np.ndarray, cur: np.ndarray) -> Bars:
    values = np.union1d(np.unique(ref), np.unique(cur))
    r = np.array([np.count_nonzero(ref == v) for v in values]) / ref.size
    c = np.array([np.count_nonzero(cur == v) for v in values]) / cur.size
    return Bars(tuple(_label(v) for v in values), tuple(round(float(x), 6) for x in r), tuple(round(float(x), 6) for x in c))


def _category_bars(f: FeatureResult) -> Bars | None:
    """The engine's own top categories (the shares it compared), as stored with the result."""
    cats = [c for c in f.details.get("categories") or [] if isinstance(c, Mapping)]
    if not cats:
        return None
    r = tuple(_share(c.get("reference")) for c in cats)
    c_ = tuple(_share(c.get("current")) for c in cats)
    return Bars(
        tuple(str(c.get("value")) for c in cats), r, c_,
        other_reference=round(max(0.0, 1.0 - sum(r)), 6), other_current=round(max(0.0, 1.0 - sum(c_)), 6),
    )


def _share(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else 0.0


def _steps(summary: Any) -> tuple[tuple[float, float], ...]:
    if not isinstance(summary, Mapping):
        return ()
    points = [(summary.get("min"), 0.0)]
    stored = summary.get("quantiles")
    quantiles: Mapping[str, Any] = stored if isinstance(stored, Mapping) else {}
    points += [(v, int(q) / 100) for q, v in sorted(quantiles.items(), key=lambda kv: int(kv[0]))]
    points.append((summary.get("max"), 1.0))
    return tuple((float(v), p) for v, p in points if isinstance(v, (int, float)) and math.isfinite(v))


def _quantile_steps(f: FeatureResult) -> QuantileSteps | None:
    ref, cur = _steps(f.details.get("reference")), _steps(f.details.get("current"))
    return QuantileSteps(ref, cur) if len(ref) > 1 and len(cur) > 1 else None


GONE = "the window's records are no longer available: cumulative shares at the stored quantiles"


def _scatter(f: FeatureResult, reference: pd.Series, current: pd.Series) -> Scatter | None:
    """The reference's first two principal components (of up to MMD_SAMPLE of its rows) and the MMD
    permutation test of both sides, at the test's level; None when a side has fewer than 2 vectors."""
    from monitor.drift.embedding import mmd_test  # scipy-free, but only a report with vectors needs it
    from monitor.drift.vectors import vector_values

    dims = f.details.get("dimensions")
    ref = vector_values(reference, dims if isinstance(dims, int) else None).matrix
    cur = vector_values(current, ref.shape[1] if ref.size else None).matrix
    if min(ref.shape[0], cur.shape[0]) < 2 or ref.shape[1] != cur.shape[1]:
        return None
    rng = np.random.default_rng(0)

    def rows(x: np.ndarray, k: int) -> np.ndarray:
        return x if x.shape[0] <= k else x[np.sort(rng.choice(x.shape[0], k, replace=False))]

    fit = rows(ref, MMD_SAMPLE).astype(np.float64)
    centre = fit.mean(axis=0)
    _, sv, vt = np.linalg.svd(fit - centre, full_matrices=False)
    axes = vt[:2].T if vt.shape[0] >= 2 else np.column_stack([vt[0], np.zeros(vt.shape[1])])
    total = float((sv**2).sum()) or 1.0
    explained = tuple(round(float(v**2) / total, 4) for v in [*sv[:2], 0.0][:2])

    def points(x: np.ndarray) -> tuple[tuple[float, float], ...]:
        proj = (rows(x, SCATTER_POINTS).astype(np.float64) - centre) @ axes
        return tuple((round(float(a), 4), round(float(b), 4)) for a, b in proj)

    level = f.threshold if 0 < f.threshold < 1 else 0.01
    mmd = mmd_test(ref, cur, alpha=level, sample=MMD_SAMPLE, permutations=MMD_PERMUTATIONS)
    return Scatter(points(ref), points(cur), (explained[0], explained[1]), round(mmd.mmd2, 9), mmd.p_value,
                   mmd.drifted, (mmd.n_reference, mmd.n_window), mmd.permutations)


def distribution(f: FeatureResult, reference: pd.Series | None, current: pd.Series | None, spec_datetime: bool = False) -> Distribution:
    """One column's picture; `reference`/`current` are the raw columns, or None when unavailable."""
    if f.kind == "embedding":
        if reference is None or current is None:
            return Distribution(f.name, "embedding", f.drifted, None, "the window's vectors are no longer available: no scatter or MMD check")
        scatter = _scatter(f, reference, current)
        return Distribution(f.name, "embedding", f.drifted, scatter, "" if scatter else "fewer than 2 vectors on a side: nothing to compare")
    kind: Literal["numeric", "categorical"] = "categorical" if f.kind == "categorical" else "numeric"
    if kind == "categorical":
        bars = _category_bars(f)
        return Distribution(f.name, kind, f.drifted, bars, "" if bars else "no values to compare")
    if reference is not None and current is not None:
        from monitor.drift.values import numeric_values  # pandas: loaded by a report's first request, not at idle

        ref = numeric_values(reference, datetime=spec_datetime).finite
        cur = numeric_values(current, datetime=spec_datetime).finite
        if ref.size and cur.size:
            if np.union1d(np.unique(ref), np.unique(cur)).size <= MAX_DISTINCT_AS_BARS:
                return Distribution(f.name, kind, f.drifted, _value_bars(ref, cur))
            return Distribution(f.name, kind, f.drifted, _histogram(ref, cur))
    steps = _quantile_steps(f)
    if steps is None:
        return Distribution(f.name, kind, f.drifted, None, "no values to compare")
    return Distribution(f.name, kind, f.drifted, steps, GONE if reference is None or current is None else "")


def _column(frame: pd.DataFrame | None, name: str) -> pd.Series | None:
    if frame is None or name not in frame.columns:
        return None
    column = frame[name]
    return column.iloc[:, 0] if column.ndim == 2 else column  # a duplicated label gives a DataFrame: the first counts


def distributions(
    columns: Sequence[FeatureResult], reference: pd.DataFrame | None, current: pd.DataFrame | None,
    datetime_columns: frozenset[str] = frozenset(),
) -> tuple[Distribution, ...]:
    """A picture per column, in the given order; None frames mean the records are unavailable."""
    return tuple(
        distribution(f, _column(reference, f.name), _column(current, f.name), f.name in datetime_columns) for f in columns
    )
