"""The one registry of drift methods: each method declared once, everything else derived from it.

Config validation, the engine's dispatch (`monitor.drift.implementations`), calibration's score table,
the `auto` choice, docs/drift-methods.md's method table and the dashboards' PromQL read this module,
and tests/drift/test_registry.py fails when any of them disagrees with it. It sits in the bottom layer
beside the config schema, which validates method names against it, so it imports nothing from
driftwatch and nothing heavy (no numpy): plain declarations only.

To add a method: declare it in `METHODS`, implement it in `monitor.drift.implementations` (an import
check names what is missing), then regenerate the docs table with `python -m monitor.core.methods`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal

Kind = Literal["numeric", "categorical", "embedding"]
Yields = Literal["p_value", "distance"]
Direction = Literal["low", "high"]
AutoMode = Literal["driftwatch", "evidently"]
"""How `method: auto` chooses: driftwatch's permutation tests at the window's size (the default), or
Evidently's DataDriftPreset choice, exactly (docs/drift-methods.md)."""
AUTO_MODES: tuple[AutoMode, ...] = ("driftwatch", "evidently")
AutoCase = Literal["continuous", "discrete", "small_continuous", "large_continuous", "small_discrete", "small_binary", "large_discrete"]
"""Situations in which `method: auto` picks a method (monitor.drift.spec.resolve_method decides which
one applies). In driftwatch mode: continuous numeric columns, or discrete ones (categorical, or numeric
with few distinct reference values). In evidently mode the same split by a small or large reference;
`small_binary` is a discrete column of at most two values."""

KINDS: tuple[Kind, ...] = ("numeric", "categorical", "embedding")
CALIBRATED_KINDS: tuple[Kind, ...] = ("numeric", "categorical")
"""Kinds a `false_alarm_budget` calibrates (by resampling cells of the reference). An embedding column
is decided by its own test's level: its p-value already holds the false-alarm rate (docs/drift-methods.md#embeddings)."""
AUTO_CASES_BY_MODE: Mapping[AutoMode, tuple[AutoCase, ...]] = MappingProxyType({
    "driftwatch": ("continuous", "discrete"),
    "evidently": ("small_continuous", "large_continuous", "small_discrete", "small_binary", "large_discrete"),
})
AUTO_CASES: tuple[AutoCase, ...] = tuple(c for mode in AUTO_MODES for c in AUTO_CASES_BY_MODE[mode])
DISCRETE_AUTO_CASES: frozenset[AutoCase] = frozenset({"discrete", "small_discrete", "small_binary", "large_discrete"})

# Calibration compares cells of the reference: ordered cells (numeric) by KS combined with rank tests
# of location and dispersion, unordered ones (categories) by chi-square, whatever the fixed-threshold
# method (docs/calibration.md).
_CELLS_BY_KIND: Mapping[Kind, str] = MappingProxyType({"numeric": "ks_location_scale", "categorical": "chisquare"})


@dataclass(frozen=True)
class DriftMethod:
    """One drift method as every consumer sees it."""

    name: str
    kinds: frozenset[Kind]
    """Column kinds a config may choose it for (`auto` may also use a discrete method on a numeric
    column with few distinct values, compared as categories: see `applies_to`)."""
    yields: Yields
    """A p-value (a test: BH-adjusted, drift when low) or a distance (drift when high)."""
    direction: Direction
    """Drift when the score is below the threshold (`low`) or at or above it (`high`)."""
    default_threshold: float
    """The threshold when a column sets none; a test's is the engine's one alpha."""
    doc: str
    """One line: what it measures (the docs table's last column)."""
    auto: frozenset[AutoCase] = frozenset()
    """Where `method: auto` picks it."""
    calibration: Mapping[Kind, str] = field(default_factory=lambda: _CELLS_BY_KIND)
    """Calibration's per-window score by column kind (a name in `CALIBRATION_SCORES`)."""

    @property
    def applies_to(self) -> frozenset[Kind]:
        """Kinds a column evaluated by this method can have: configured ones, plus numeric when `auto`
        uses it on few-valued numeric columns."""
        return self.kinds | ({"numeric"} if self.auto & DISCRETE_AUTO_CASES else frozenset())


def _method(name: str, kinds: Iterable[Kind], yields: Yields, doc: str, auto: Iterable[AutoCase] = (), threshold: float | None = None) -> DriftMethod:
    """A declaration with the defaults every method of its kind shares: tests 0.05 and distances 0.1,
    calibration by the cells of each kind the method applies to."""
    default = threshold if threshold is not None else (0.05 if yields == "p_value" else 0.1)
    method = DriftMethod(
        name=name,
        kinds=frozenset(kinds),
        yields=yields,
        direction="low" if yields == "p_value" else "high",
        default_threshold=default,
        doc=doc,
        auto=frozenset(auto),
    )
    scores = {k: s for k, s in _CELLS_BY_KIND.items() if k in method.applies_to}
    return replace(method, calibration=MappingProxyType(scores))


# Declaration order is the order config errors list the choices in.
METHODS: tuple[DriftMethod, ...] = (
    _method("wasserstein_test", ["numeric"], "p_value",
            "normed Wasserstein distance tested by permutation at the window's size (exact level, any distribution)", ["continuous"]),
    _method("chisquare_test", ["categorical"], "p_value",
            "chi-square statistic of the category counts tested by permutation (exact level at any size)", ["discrete"]),
    _method("ks", ["numeric"], "p_value", "two-sample Kolmogorov-Smirnov test: largest gap between the empirical CDFs", ["small_continuous"]),
    _method("wasserstein", ["numeric"], "distance", "Wasserstein-1 distance divided by the reference std (normed W1)", ["large_continuous"]),
    _method("chisquare", ["categorical"], "p_value", "two-sample chi-square test of homogeneity on category counts", ["small_discrete"]),
    _method("psi", ["numeric", "categorical"], "distance", "population stability index over reference-decile bins or categories"),
    _method("jensenshannon", ["numeric", "categorical"], "distance", "Jensen-Shannon distance (natural log) of the binned shares", ["large_discrete"]),
    _method("kl_div", ["numeric"], "distance", "Kullback-Leibler divergence KL(reference ‖ current), natural log, binned"),
    _method("hellinger", ["numeric"], "distance", "Hellinger distance of the binned shares"),
    _method("linf", ["categorical"], "distance", "L-infinity distance of the category shares (TFDV's measure)"),
    _method("total_variation", ["categorical"], "distance", "total variation distance: half the L1 distance of the category shares"),
    _method("anderson", ["numeric"], "p_value", "k-sample Anderson-Darling test (p-value capped to [0.001, 0.25])"),
    _method("cramer_von_mises", ["numeric"], "p_value", "two-sample Cramér-von Mises test"),
    _method("energy", ["numeric"], "distance", "energy distance of the two samples"),
    _method("fisher_exact", ["categorical"], "p_value", "Fisher's exact test on a two-valued column (chi-square beyond two)"),
    _method("z", ["categorical"], "p_value", "pooled two-proportion z-test on a two-valued column (chi-square beyond two)", ["small_binary"]),
    _method("embedding", ["embedding"], "p_value",
            "vector column: per-dimension mean and variance tests and KS on principal components, weighted Bonferroni"),
)

BY_NAME: Mapping[str, DriftMethod] = MappingProxyType({m.name: m for m in METHODS})
NAMES: tuple[str, ...] = tuple(BY_NAME)
NUMERIC_METHODS: frozenset[str] = frozenset(m.name for m in METHODS if "numeric" in m.kinds)
CATEGORICAL_METHODS: frozenset[str] = frozenset(m.name for m in METHODS if "categorical" in m.kinds)
P_VALUE_METHODS: frozenset[str] = frozenset(m.name for m in METHODS if m.yields == "p_value")
DISTANCE_METHODS: frozenset[str] = frozenset(m.name for m in METHODS if m.yields == "distance")
EMBEDDING_METHODS: frozenset[str] = frozenset(m.name for m in METHODS if "embedding" in m.kinds)
DISCRETE_NUMERIC_METHODS: frozenset[str] = frozenset(m.name for m in METHODS if m.auto & DISCRETE_AUTO_CASES)
"""Methods a numeric column with few distinct reference values may resolve to under `auto`."""
CALIBRATION_SCORES: frozenset[str] = frozenset(s for m in METHODS for s in m.calibration.values())


def get(name: str) -> DriftMethod:
    """The declaration of `name`; KeyError naming the choices for an unknown one."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown drift method {name!r}; choose one of {', '.join(NAMES)}") from None


def vector_method() -> str:
    """The method `auto` means on an embedding column: the kind has one."""
    (name,) = names_for("embedding")
    return name


def names_for(kind: Kind) -> tuple[str, ...]:
    """Methods a config may choose for a column of `kind`, in declaration order."""
    return tuple(m.name for m in METHODS if kind in m.kinds)


def auto_choice(case: AutoCase) -> str:
    """The method `auto` picks in `case` (case names are unique across modes)."""
    return _AUTO[case]


def calibration_score(method: str, kind: Kind) -> str:
    """Calibration's per-window score for a column of `kind` evaluated by `method`."""
    return get(method).calibration[kind]


def problems(methods: Iterable[DriftMethod]) -> list[str]:
    """What is inconsistent in a registry (empty when nothing): checked at import, so a bad
    declaration fails every entry point instead of one code path at run time."""
    methods = tuple(methods)
    found: list[str] = []
    names = [m.name for m in methods]
    found += [f"{n!r} is declared twice" for n in sorted({n for n in names if names.count(n) > 1})]
    for m in methods:
        if not m.kinds or not m.kinds <= set(KINDS):
            found.append(f"{m.name!r}: kinds {sorted(m.kinds)} must be a non-empty subset of {list(KINDS)}")
        if m.direction != ("low" if m.yields == "p_value" else "high"):
            found.append(f"{m.name!r}: a {m.yields} drifts when {'low' if m.yields == 'p_value' else 'high'}, not {m.direction!r}")
        if not m.default_threshold > 0 or (m.yields == "p_value" and not m.default_threshold < 1):
            found.append(f"{m.name!r}: default threshold {m.default_threshold!r} out of range for a {m.yields}")
        if set(m.calibration) != set(m.applies_to) & set(CALIBRATED_KINDS):
            found.append(f"{m.name!r}: calibration scores for {sorted(m.calibration)}, but it applies to {sorted(m.applies_to)}")
        if m.doc.strip() != m.doc or not m.doc or "\n" in m.doc or "|" in m.doc:
            found.append(f"{m.name!r}: the documentation must be one non-empty line without '|'")
    for case in AUTO_CASES:
        chosen = [m.name for m in methods if case in m.auto]
        if len(chosen) != 1:
            found.append(f"auto case {case!r} must pick exactly one method, not {chosen}")
    return found


def _auto_table(methods: Iterable[DriftMethod]) -> Mapping[AutoCase, str]:
    return MappingProxyType({case: m.name for m in methods for case in m.auto})


def markdown_table(methods: Iterable[DriftMethod] = METHODS) -> str:
    """The method table of docs/drift-methods.md (between its `methods-table` markers)."""
    rows = [
        "| method | column kinds | yields | drift when | default threshold | calibration score | `auto` picks it for | what it measures |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in methods:
        kinds = ", ".join(k for k in KINDS if k in m.kinds)
        kinds += "; numeric under `auto`" if m.applies_to != m.kinds else ""
        drift_when = "score < threshold (BH-adjusted)" if m.direction == "low" else "score ≥ threshold"
        scores = ", ".join(f"{k}: `{m.calibration[k]}`" for k in KINDS if k in m.calibration) or "— (its own level)"
        auto = "; ".join(
            f"{mode}: " + ", ".join(c.replace("_", " ") for c in AUTO_CASES_BY_MODE[mode] if c in m.auto)
            for mode in AUTO_MODES if m.auto & set(AUTO_CASES_BY_MODE[mode])
        ) or ("every embedding column (the kind's one method)" if "embedding" in m.kinds else "—")
        yields = "p-value" if m.yields == "p_value" else "distance"
        # a test's threshold is the policy's one level (0.01; Evidently's 0.05 in evidently mode)
        default = "the level" if m.yields == "p_value" else f"{m.default_threshold:g}"
        rows.append(f"| `{m.name}` | {kinds} | {yields} | {drift_when} | {default} | {scores} | {auto} | {m.doc} |")
    return "\n".join(rows) + "\n"


_PROBLEMS = problems(METHODS)
if _PROBLEMS:
    raise RuntimeError("the drift-method registry is inconsistent: " + "; ".join(_PROBLEMS))
_AUTO = _auto_table(METHODS)

if __name__ == "__main__":
    sys.stdout.write(markdown_table())
