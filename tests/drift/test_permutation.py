"""The permutation tests behind the `auto` defaults: statistics equal scipy's, p-values equal the exact
permutation p-value (full enumeration) within Monte Carlo error, and draws are reproducible."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from monitor.drift import permutation as perm


def _sorted(rng: np.random.Generator, n: int, loc: float = 0.0) -> np.ndarray:
    return np.sort(rng.normal(loc, 1.0, n))


def test_grouped_wasserstein_equals_scipy_when_every_value_is_its_own_group() -> None:
    rng = np.random.default_rng(1)
    ref, cur = _sorted(rng, 150), _sorted(rng, 90, 0.3)
    groups = perm.numeric_groups(ref, cur)
    assert perm.wasserstein_statistic(groups)(groups.reference) == pytest.approx(stats.wasserstein_distance(ref, cur), rel=1e-12)


def test_grouped_wasserstein_stays_within_a_hundredth_of_scipy_with_many_values() -> None:
    rng = np.random.default_rng(2)
    ref, cur = _sorted(rng, 5000), _sorted(rng, 20_000, 0.2)
    groups = perm.numeric_groups(ref, cur)
    exact = stats.wasserstein_distance(ref, cur)
    assert perm.wasserstein_statistic(groups)(groups.reference) == pytest.approx(exact, rel=0.01)


def test_groups_never_split_tied_values() -> None:
    rng = np.random.default_rng(3)
    ref = np.sort(rng.integers(0, 3, 4000).astype(float))
    cur = np.sort(np.concatenate([rng.normal(size=3000), np.zeros(2000)]))
    groups = perm.numeric_groups(ref, cur, max_groups=64)
    pooled = np.sort(np.concatenate([ref, cur]))
    starts = np.concatenate([[0], np.cumsum(groups.sizes)[:-1]])
    assert not np.any(pooled[starts[1:]] == pooled[starts[1:] - 1])


def test_group_reference_counts_add_up_to_the_reference() -> None:
    rng = np.random.default_rng(4)
    ref, cur = _sorted(rng, 777), _sorted(rng, 333)
    assert int(perm.numeric_groups(ref, cur, max_groups=50).reference.sum()) == 777


def test_chisquare_statistic_equals_scipys_contingency_statistic() -> None:
    ref, cur = np.array([40.0, 25.0, 0.0, 9.0]), np.array([10.0, 12.0, 5.0, 0.0])
    groups = perm.category_groups(ref, cur)
    expected = stats.chi2_contingency(np.vstack([ref, cur]), correction=False).statistic
    assert float(perm.chisquare_statistic(groups)(groups.reference)) == pytest.approx(expected, rel=1e-12)


def _exact_p(ref: np.ndarray, cur: np.ndarray) -> float:
    """The permutation p-value by enumerating every split of the pooled sample."""
    pooled = np.concatenate([ref, cur])
    observed = stats.wasserstein_distance(ref, cur)
    count = total = 0
    for idx in itertools.combinations(range(pooled.size), ref.size):
        mask = np.zeros(pooled.size, dtype=bool)
        mask[list(idx)] = True
        total += 1
        count += stats.wasserstein_distance(pooled[mask], pooled[~mask]) >= observed - 1e-12
    return count / total


@pytest.mark.parametrize("shift", [0.0, 0.8, 1.6])
def test_p_value_matches_full_enumeration_within_monte_carlo_error(shift: float) -> None:
    rng = np.random.default_rng(5)
    ref, cur = _sorted(rng, 9), _sorted(rng, 7, shift)
    exact = _exact_p(ref, cur)
    groups = perm.numeric_groups(ref, cur)
    result = perm.permutation_test(groups, perm.wasserstein_statistic(groups))
    # Besag-Clifford stops at EXCEED exceedances: relative error about 1/sqrt(EXCEED) when it stops early
    se = max(np.sqrt(exact * (1 - exact) / result.draws), exact / np.sqrt(perm.EXCEED)) if result.draws else 0.0
    assert abs(result.p_value - exact) <= 4 * se + 1 / (perm.MAX_DRAWS + 1)


def test_the_same_data_gives_the_same_p_value() -> None:
    rng = np.random.default_rng(6)
    ref, cur = _sorted(rng, 300), _sorted(rng, 100, 0.1)
    groups = perm.numeric_groups(ref, cur)
    first = perm.permutation_test(groups, perm.wasserstein_statistic(groups))
    assert perm.permutation_test(groups, perm.wasserstein_statistic(groups)) == first


def test_unchanged_columns_stop_early_and_clear_drift_uses_every_draw() -> None:
    rng = np.random.default_rng(7)
    ref = _sorted(rng, 1000)
    quiet = perm.numeric_groups(ref, _sorted(rng, 200))
    loud = perm.numeric_groups(ref, _sorted(rng, 200, 1.0))
    assert perm.permutation_test(quiet, perm.wasserstein_statistic(quiet)).draws < 200
    assert perm.permutation_test(loud, perm.wasserstein_statistic(loud)).draws == perm.MAX_DRAWS


def test_without_a_tail_bound_clear_drift_gets_the_monte_carlo_floor() -> None:
    rng = np.random.default_rng(8)
    groups = perm.numeric_groups(_sorted(rng, 1000), _sorted(rng, 200, 1.0))
    assert perm.permutation_test(groups, perm.wasserstein_statistic(groups)).p_value == pytest.approx(1 / (perm.MAX_DRAWS + 1))


def test_beyond_every_draw_the_tail_bound_gives_a_smaller_p_value() -> None:
    rng = np.random.default_rng(8)
    groups = perm.numeric_groups(_sorted(rng, 1000), _sorted(rng, 200, 1.0))
    result = perm.permutation_test(groups, perm.wasserstein_statistic(groups), perm.wasserstein_tail(groups))
    assert result.p_value < 1e-6


def test_the_tail_bound_never_replaces_a_p_value_the_draws_resolve() -> None:
    rng = np.random.default_rng(9)
    groups = perm.numeric_groups(_sorted(rng, 1000), _sorted(rng, 200, 0.1))
    with_tail = perm.permutation_test(groups, perm.wasserstein_statistic(groups), perm.wasserstein_tail(groups))
    assert with_tail == perm.permutation_test(groups, perm.wasserstein_statistic(groups))


def test_the_wasserstein_tail_bounds_the_permutation_tail() -> None:
    """Borell-TIS, checked on 20,000 drawn splits of a skewed pooled sample: the share of splits with
    W1 beyond E W1 + s sigma* stays below exp(-s^2 / 2)."""
    rng = np.random.default_rng(10)
    groups = perm.numeric_groups(np.sort(rng.lognormal(0, 1.5, 3000)), np.sort(rng.lognormal(0, 1.5, 200)))
    drawn = perm.wasserstein_statistic(groups)(rng.multivariate_hypergeometric(groups.sizes, 3000, size=20_000))
    bound = perm.wasserstein_tail(groups)
    shares = [float(np.mean(drawn >= t)) for t in np.quantile(drawn, [0.9, 0.99, 0.999])]
    bounds = [bound(float(t), drawn) for t in np.quantile(drawn, [0.9, 0.99, 0.999])]
    assert all(s <= b for s, b in zip(shares, bounds, strict=True)), (shares, bounds)


def test_the_category_tail_is_bonferroni_over_exact_hypergeometric_tails() -> None:
    ref, cur = np.array([90.0, 10.0, 0.0]), np.array([20.0, 10.0, 20.0])
    groups = perm.category_groups(ref, cur)
    # the new category: none of its 20 rows among the reference's 100 of 150 pooled rows
    p_new = stats.hypergeom(150, 20, 100).pmf(0)
    low_b = stats.hypergeom(150, 20, 100).cdf(10)
    expected = 3 * min(2 * p_new, 2 * low_b, 1.0)
    assert perm.chisquare_tail(groups)(0.0, np.empty(0)) == pytest.approx(min(expected, 1.0), rel=1e-9)


def test_a_single_group_is_never_drift() -> None:
    groups = perm.numeric_groups(np.full(50, 3.0), np.full(20, 3.0))
    assert perm.permutation_test(groups, perm.wasserstein_statistic(groups)).p_value == 1.0
