"""Two-sample categorical tests against scipy, and their false-alarm rate on unchanged data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from monitor.drift import categorical as ct

TABLES = [
    (np.array([120.0, 80, 50, 10]), np.array([100.0, 95, 40, 25])),
    (np.array([30.0, 0, 12]), np.array([25.0, 8, 0])),  # a category on one side only
    (np.array([500.0, 500]), np.array([430.0, 570])),
]


@pytest.mark.parametrize(("ref", "cur"), TABLES)
def test_chisquare_is_scipys_contingency_test(ref: np.ndarray, cur: np.ndarray) -> None:
    expected = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
    statistic, p = ct.chisquare_two_sample(ref, cur)
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-10)


def test_chisquare_ignores_categories_absent_on_both_sides_and_degenerate_tables() -> None:
    with_empty = ct.chisquare_two_sample(np.array([10.0, 0, 5]), np.array([7.0, 0, 9]))
    assert with_empty == pytest.approx(ct.chisquare_two_sample(np.array([10.0, 5]), np.array([7.0, 9])))
    assert ct.chisquare_two_sample(np.array([10.0]), np.array([4.0])) == (0.0, 1.0)
    assert ct.chisquare_two_sample(np.array([10.0, 3]), np.array([0.0, 0])) == (0.0, 1.0)


@pytest.mark.parametrize(("ref", "cur"), [(np.array([300.0, 700]), np.array([340.0, 660])), (np.array([5.0, 20]), np.array([12.0, 9]))])
def test_z_test_squared_is_the_2x2_chisquare(ref: np.ndarray, cur: np.ndarray) -> None:
    z, p = ct.z_two_proportion(ref, cur)
    chi, chi_p = ct.chisquare_two_sample(ref, cur)
    assert z**2 == pytest.approx(chi, rel=1e-12)
    assert p == pytest.approx(chi_p, rel=1e-9)
    # and the textbook pooled formula
    p1, p2 = ref[0] / ref.sum(), cur[0] / cur.sum()
    pooled = (ref[0] + cur[0]) / (ref.sum() + cur.sum())
    assert z == pytest.approx((p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / ref.sum() + 1 / cur.sum())))


def test_z_test_single_category_on_both_sides_cannot_drift() -> None:
    assert ct.z_two_proportion(np.array([40.0, 0]), np.array([12.0, 0])) == (0.0, 1.0)


@pytest.mark.parametrize(("ref", "cur"), [(np.array([8.0, 2]), np.array([1.0, 5])), (np.array([400.0, 600]), np.array([380.0, 620]))])
def test_fisher_exact_matches_scipy(ref: np.ndarray, cur: np.ndarray) -> None:
    expected = stats.fisher_exact(np.vstack([ref, cur]).astype(int))
    odds, p = ct.fisher_exact(ref, cur)
    assert odds == pytest.approx(expected.statistic)
    assert p == pytest.approx(expected.pvalue, rel=1e-12)


def test_tests_hold_their_nominal_rate_on_unchanged_categories() -> None:
    """Counts drawn straight from the multinomial: 2000 unchanged windows at 1k rows per side."""
    rng = np.random.default_rng(11)
    reps = 2000
    shares = np.array([0.4, 0.25, 0.15, 0.1, 0.06, 0.04])
    refs, curs = rng.multinomial(1000, shares, reps).astype(float), rng.multinomial(1000, shares, reps).astype(float)
    rate = np.mean([ct.chisquare_two_sample(r, c)[1] < 0.05 for r, c in zip(refs, curs, strict=True)])
    se = np.sqrt(0.05 * 0.95 / reps)
    assert abs(rate - 0.05) < 3 * se, rate
    binary = np.array([0.3, 0.7])
    refs, curs = rng.multinomial(1000, binary, reps).astype(float), rng.multinomial(1000, binary, reps).astype(float)
    z_rate = np.mean([ct.z_two_proportion(r, c)[1] < 0.05 for r, c in zip(refs, curs, strict=True)])
    assert abs(z_rate - 0.05) < 3 * se, z_rate
    fisher_rate = np.mean([ct.fisher_exact(r, c)[1] < 0.05 for r, c in zip(refs[:500], curs[:500], strict=True)])
    assert fisher_rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 500), fisher_rate  # exact tests are conservative
