"""Evidently's data drift report, run with the same per-column methods and thresholds as our engine.

Data scientists know Evidently's report; showing it beside ours, configured identically, lets them
check our numbers instead of trusting them. Evidently is imported lazily (about 3-5 s) and only ever
runs in the report worker, never on the ingest path.

Where a method has no Evidently twin, or Evidently defines it differently, the column runs with
Evidently's own default and the summary says so instead of pretending the numbers should agree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd


__all__ = [
    "DIFFERENT_DEFINITIONS",
    "EVIDENTLY_METHODS",
    "ColumnPlan",
    "EvidentlyOutcome",
    "EvidentlyScore",
    "definition_note",
    "plans_from_result",
    "run_evidently",
]

# Our method name -> Evidently's stattest name.
EVIDENTLY_METHODS: dict[str, str] = {
    "ks": "ks",
    "wasserstein": "wasserstein",
    "psi": "psi",
    "jensenshannon": "jensenshannon",
    "kl_div": "kl_div",
    "hellinger": "hellinger",
    "anderson": "anderson",
    "cramer_von_mises": "cramer_von_mises",
    "energy": "ed",
    "chisquare": "chisquare",
    "fisher_exact": "fisher_exact",
    "z": "z",
}

# Methods both define, but not as the same number: (kind or None for both, method) -> why.
DIFFERENT_DEFINITIONS: dict[tuple[str | None, str], str] = {
    (None, "chisquare"): "Evidently's chi-square is a one-sample goodness-of-fit test against the reference shares; "
    "ours is a two-sample contingency test that accounts for the reference's own noise",
    ("numeric", "psi"): "our numeric PSI bins on reference deciles (fixed per reference); Evidently bins with "
    "Sturges' rule over the pooled range of each window",
    (None, "linf"): "Evidently has no L-infinity distance; its default method is shown",
    (None, "total_variation"): "Evidently's TVD is a permutation p-value, ours the distance itself; Evidently's default is shown",
    (None, "wasserstein_test"): "Evidently has no permutation test of the Wasserstein distance (its `wasserstein` is the "
    "distance against a fixed threshold); its default method is shown",
    (None, "chisquare_test"): "Evidently's chi-square is an asymptotic one-sample goodness-of-fit test; ours is a permutation "
    "test of the two-sample statistic; Evidently's default is shown",
    (None, "embedding"): "Evidently's DataDriftPreset takes scalar columns only; an embedding column is left out of the "
    "comparison (its own section shows the MMD check and the principal components)",
}


def definition_note(kind: str, method: str) -> str | None:
    """Why Evidently's number for this column is not expected to equal ours, or None when it is."""
    return DIFFERENT_DEFINITIONS.get((kind, method)) or DIFFERENT_DEFINITIONS.get((None, method))


CATEGORICAL_ONLY = frozenset({"chisquare_test", "chisquare", "z", "fisher_exact"})
P_VALUE_STATTESTS = frozenset({"wasserstein_test", "chisquare_test", "ks", "anderson", "cramer_von_mises", "chisquare", "fisher_exact", "z", "embedding"})


@dataclass(frozen=True)
class ColumnPlan:
    """How one column is handed to Evidently: its type as our engine treated it, method and threshold."""

    name: str
    kind: Literal["numeric", "categorical"]
    method: str
    threshold: float

    @property
    def evidently_method(self) -> str | None:
        return None if self.method in ("linf", "total_variation") else EVIDENTLY_METHODS.get(self.method)


@dataclass(frozen=True)
class EvidentlyScore:
    method: str
    threshold: float | None
    score: float

    @property
    def drifted(self) -> bool:
        if self.threshold is None or not math.isfinite(self.score):
            return False
        if self.method in P_VALUE_STATTESTS:
            return self.score < self.threshold
        return self.score >= self.threshold


@dataclass(frozen=True)
class EvidentlyOutcome:
    html: str
    scores: Mapping[str, EvidentlyScore]


def plans_from_result(result: Mapping[str, Any]) -> list[ColumnPlan]:
    """Column plans from a stored `DriftResult.to_dict()`: the methods our engine actually used.

    A numeric column our engine tested as categories (few distinct values under `auto` resolve to
    a chi-square test, z or Fisher) is declared categorical to Evidently, which allows those tests only there.
    """
    plans = []
    for name, f in result.get("features", {}).items():
        method = str(f["method"])
        if f.get("kind") == "embedding":  # vectors: Evidently's preset has no such column type
            continue
        discrete = f.get("kind") == "categorical" or method in CATEGORICAL_ONLY
        plans.append(ColumnPlan(name, "categorical" if discrete else "numeric", method, float(f["threshold"])))
    return plans


def run_evidently(reference: pd.DataFrame, current: pd.DataFrame, plans: Sequence[ColumnPlan], drift_share: float) -> EvidentlyOutcome:
    """Run Evidently's DataDriftPreset on the planned columns; returns its standalone HTML and scores."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    names = [p.name for p in plans]
    definition = DataDefinition(
        numerical_columns=[p.name for p in plans if p.kind == "numeric"],
        categorical_columns=[p.name for p in plans if p.kind == "categorical"],
    )
    per_method = {p.name: m for p in plans if (m := p.evidently_method) is not None}
    per_threshold = {p.name: p.threshold for p in plans if p.evidently_method is not None}
    preset = DataDriftPreset(
        columns=names,
        drift_share=drift_share,
        per_column_method=per_method or None,
        per_column_threshold=per_threshold or None,
    )
    ref = Dataset.from_pandas(_prepared(reference, plans), data_definition=definition)
    cur = Dataset.from_pandas(_prepared(current, plans), data_definition=definition)
    snapshot = Report([preset]).run(cur, ref)
    return EvidentlyOutcome(html=snapshot.get_html_str(as_iframe=False), scores=_scores(snapshot.dict()))


def _prepared(frame: pd.DataFrame, plans: Sequence[ColumnPlan]) -> pd.DataFrame:
    """The planned columns only; categorical ones as strings so Evidently sees the categories we saw."""
    import pandas as pd  # on a report's first request, not in the idle monitor

    out = {}
    for p in plans:
        col = frame[p.name] if p.name in frame.columns else pd.Series([None] * len(frame), index=frame.index)
        if p.kind == "categorical":
            col = col.map(_category, na_action="ignore").astype(object)
        else:
            col = pd.to_numeric(col, errors="coerce")
        out[p.name] = col
    return pd.DataFrame(out, index=frame.index)


SCRIPT_SAFE_LT = "<\u200b"
"""`<` followed by a zero-width space: looks the same, but can never start `</script` or `<!--`."""


def _category(value: Any) -> str:
    """`3.0` and `3` are one category (as in our engine), anything else its string.

    Evidently writes category values raw into a `<script>` block of its page, so a value from model
    traffic such as `</script><script>...` would run; every `<` is defused (the page is also sandboxed).
    """
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).replace("<", SCRIPT_SAFE_LT)


def _scores(snapshot: Mapping[str, Any]) -> dict[str, EvidentlyScore]:
    scores = {}
    for metric in snapshot.get("metrics", []):
        config = metric.get("config", {})
        if config.get("type") != "evidently:metric_v2:ValueDrift":
            continue
        value = metric.get("value")
        scores[config["column"]] = EvidentlyScore(
            method=str(config.get("method")),
            threshold=config.get("threshold"),
            score=float(value) if isinstance(value, (int, float)) else math.nan,
        )
    return scores
