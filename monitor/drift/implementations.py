"""The drift methods' implementations, keyed by their names in the registry (monitor.core.methods).

Two tables, by what a method compares:

- `ON_SAMPLES`: numeric methods with their own computation on the reference profile and the sorted
  window (the tests and distances of raw samples, and PSI on the profile's fixed decile bins);
- `ON_VECTORS`: methods on an embedding column's matrix of vectors against its prepared reference
  (`monitor.drift.vectors`);
- `ON_COUNTS`: methods on aligned count vectors (one entry per category or bin, reference and window).
  Categorical columns always use these; a numeric column whose method is not in `ON_SAMPLES` is binned
  first by the engine (per distinct value when few, else Evidently's Sturges bins).

`mismatches` compares the tables with the registry and runs at import, so a method declared without an
implementation (or implemented without a declaration) fails every entry point at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from monitor.core import methods as registry
from monitor.drift import categorical as cat_tests
from monitor.drift import distance, numeric, permutation, vectors
from monitor.drift.profile import NumericProfile

NAN = math.nan
Counts = NDArray[np.float64]


@dataclass(frozen=True)
class Outcome:
    """A method's raw output before multiple-testing correction. `method` may differ from the one
    asked for: a two-valued test falls back to chi-square when a third category appears."""

    method: str
    score: float
    statistic: float | None = None
    p_value: float | None = None


SampleMethod = Callable[[NumericProfile, NDArray[np.float64]], Outcome]
VectorMethod = Callable[[vectors.EmbeddingColumnProfile, NDArray[np.float32], float], vectors.VectorOutcome]
CountMethod = Callable[[Counts, Counts], Outcome]


def finite_or_nan(score: float) -> float:
    """An overflowed score is no verdict, not drift."""
    return score if math.isfinite(score) else NAN


def pooled_range(p: NumericProfile, cur: NDArray[np.float64]) -> float:
    """max - min over reference and window; what energy and Sturges bins need finite."""
    return float(max(p.sorted[-1], cur[-1]) - min(p.sorted[0], cur[0]))


# -- on samples ------------------------------------------------------------------------------------
# Rank and quantile methods (KS, Anderson-Darling, Cramer-von Mises, PSI) stay defined up to the float
# limits; those computing with magnitudes give NaN (no verdict) when the magnitude they need overflows.


def _sample_test(name: str, test: Callable[[NDArray[np.float64], NDArray[np.float64]], tuple[float, float]]) -> SampleMethod:
    def run(p: NumericProfile, cur: NDArray[np.float64]) -> Outcome:
        statistic, p_value = test(p.sorted, cur)
        return Outcome(name, p_value, statistic, p_value)

    return run


def _wasserstein(p: NumericProfile, cur: NDArray[np.float64]) -> Outcome:
    if not math.isfinite(p.std):  # normed W1 divides by the reference std
        return Outcome("wasserstein", NAN)
    return Outcome("wasserstein", finite_or_nan(numeric.wasserstein_normed(p.sorted, p.prefix, p.mean, p.std, cur)))


def _energy(p: NumericProfile, cur: NDArray[np.float64]) -> Outcome:
    if not math.isfinite(pooled_range(p, cur)):  # the CDF integral runs over the pooled range
        return Outcome("energy", NAN)
    return Outcome("energy", finite_or_nan(numeric.energy_distance(p.sorted, cur)))


def _psi_on_deciles(p: NumericProfile, cur: NDArray[np.float64]) -> Outcome:
    """PSI over the profile's reference-quantile bins, fixed so consecutive windows compare."""
    return Outcome("psi", distance.psi(p.psi_counts, numeric.binned_counts(cur, p.psi_edges)))


def _wasserstein_test(p: NumericProfile, cur: NDArray[np.float64]) -> Outcome:
    """Normed W1 (the score's statistic) with its permutation p-value at the window's size."""
    if not math.isfinite(pooled_range(p, cur)):  # the group positions' gaps overflow
        return Outcome("wasserstein_test", NAN)
    groups = permutation.numeric_groups(p.sorted, cur)
    result = permutation.permutation_test(groups, permutation.wasserstein_statistic(groups), permutation.wasserstein_tail(groups))
    normed = numeric.wasserstein_normed(p.sorted, p.prefix, p.mean, p.std, cur) if math.isfinite(p.std) else NAN
    return Outcome("wasserstein_test", result.p_value, finite_or_nan(normed), result.p_value)


ON_SAMPLES: Mapping[str, SampleMethod] = {
    "wasserstein_test": _wasserstein_test,
    "ks": _sample_test("ks", numeric.ks_test),
    "cramer_von_mises": _sample_test("cramer_von_mises", numeric.cramer_von_mises),
    "anderson": _sample_test("anderson", numeric.anderson_darling),
    "wasserstein": _wasserstein,
    "energy": _energy,
    "psi": _psi_on_deciles,
}


# -- on counts -------------------------------------------------------------------------------------


def _count_test(name: str) -> CountMethod:
    def run(ref: Counts, cur: Counts) -> Outcome:
        statistic, p_value = cat_tests.TESTS[name](ref, cur)
        return Outcome(name, p_value, statistic, p_value)

    return run


def _chisquare_test(ref: Counts, cur: Counts) -> Outcome:
    """Pearson's chi-square statistic with its permutation p-value (exact where the asymptotic
    chi-square p-value of sparse counts is not)."""
    groups = permutation.category_groups(ref, cur)
    result = permutation.permutation_test(groups, permutation.chisquare_statistic(groups), permutation.chisquare_tail(groups))
    return Outcome("chisquare_test", result.p_value, result.statistic, result.p_value)


def _two_valued_test(name: str) -> CountMethod:
    """z and Fisher need two categories; with more observed, the chi-square test takes over."""

    def run(ref: Counts, cur: Counts) -> Outcome:
        seen = (ref + cur) > 0
        if seen.sum() > 2:
            return _count_test("chisquare")(ref, cur)
        keep = np.flatnonzero(seen)
        keep = np.concatenate([keep, np.setdiff1d(np.arange(ref.size), keep)])[:2]
        ref, cur = ref[keep], cur[keep]
        if ref.size < 2:  # a single category on both sides: nothing can differ
            ref, cur = np.append(ref, 0.0), np.append(cur, 0.0)
        return _count_test(name)(ref, cur)

    return run


def _distance(name: str) -> CountMethod:
    def run(ref: Counts, cur: Counts) -> Outcome:
        return Outcome(name, distance.DISTANCES[name](ref, cur))

    return run


ON_COUNTS: Mapping[str, CountMethod] = {
    "chisquare_test": _chisquare_test,
    "chisquare": _count_test("chisquare"),
    "z": _two_valued_test("z"),
    "fisher_exact": _two_valued_test("fisher_exact"),
    **{name: _distance(name) for name in distance.DISTANCES},
}


# -- on vectors ------------------------------------------------------------------------------------

ON_VECTORS: Mapping[str, VectorMethod] = {"embedding": vectors.test_window}


def mismatches(
    on_samples: Mapping[str, object], on_counts: Mapping[str, object], declared: tuple[registry.DriftMethod, ...] = registry.METHODS,
    on_vectors: Mapping[str, object] = ON_VECTORS,
) -> list[str]:
    """Where the implementation tables and the registry disagree (empty when they agree)."""
    found = []
    names = {m.name for m in declared}
    for m in declared:
        if ("embedding" in m.applies_to) != (m.name in on_vectors):
            found.append(f"{m.name!r} applies to embedding columns exactly when it has an implementation on vectors")
    for extra in sorted((set(on_samples) | set(on_counts) | set(on_vectors)) - names):
        found.append(f"{extra!r} is implemented but not declared in monitor.core.methods")
    for m in declared:
        if "categorical" in m.applies_to and m.name not in on_counts:
            found.append(f"{m.name!r} applies to categorical columns but has no implementation on counts")
        if "numeric" in m.applies_to and m.name not in on_samples and m.name not in on_counts:
            found.append(f"{m.name!r} applies to numeric columns but has no implementation")
        if "numeric" not in m.applies_to and m.name in on_samples:
            found.append(f"{m.name!r} is implemented on numeric samples but does not apply to numeric columns")
    return found


_MISMATCHES = mismatches(ON_SAMPLES, ON_COUNTS)
if _MISMATCHES:
    raise RuntimeError("drift implementations disagree with the registry: " + "; ".join(_MISMATCHES))
