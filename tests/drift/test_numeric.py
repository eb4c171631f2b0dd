"""Numeric statistics against scipy/numpy on the same data: continuous, tied, shifted, offset, unequal sizes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from monitor.drift import numeric as nm

RNG = np.random.default_rng(20240601)


def _pairs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Sorted sample pairs covering the shapes a feature takes in practice."""
    return [
        ("normal-shifted", RNG.normal(0, 1, 800), RNG.normal(0.3, 1.2, 1300)),
        ("unchanged", RNG.normal(5, 2, 1000), RNG.normal(5, 2, 1000)),
        ("ties", RNG.integers(0, 7, 600).astype(float), RNG.integers(1, 8, 450).astype(float)),
        ("large-offset", 1e6 + RNG.normal(0, 3, 5000), 1e6 + RNG.normal(0.5, 3, 2000)),
        ("lognormal", RNG.lognormal(0, 1, 3000), RNG.lognormal(0.1, 1, 700)),
        ("tiny", RNG.normal(0, 1, 3), RNG.normal(1, 1, 2)),
        ("one-row-window", RNG.normal(0, 1, 200), np.array([0.7])),
        ("disjoint", RNG.uniform(0, 1, 300), RNG.uniform(5, 6, 300)),
    ]


PAIRS = [(name, np.sort(a), np.sort(b)) for name, a, b in _pairs()]
IDS = [p[0] for p in PAIRS]


@pytest.mark.parametrize(("name", "ref", "cur"), PAIRS, ids=IDS)
def test_ks_matches_scipy(name: str, ref: np.ndarray, cur: np.ndarray) -> None:
    expected = stats.ks_2samp(ref, cur)
    d, p = nm.ks_test(ref, cur)
    assert d == pytest.approx(expected.statistic, abs=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-12)
    assert nm.ks_statistic(ref, cur) == pytest.approx(expected.statistic, abs=1e-12)


def test_ks_asymptotic_path_matches_scipy_beyond_exact_sizes() -> None:
    ref = np.sort(RNG.normal(0, 1, 30_000))
    cur = np.sort(RNG.normal(0.02, 1, 12_000))
    expected = stats.ks_2samp(ref, cur)  # scipy itself switches to asymptotic above 10k rows
    d, p = nm.ks_test(ref, cur)
    assert d == pytest.approx(expected.statistic, abs=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9)


@pytest.mark.parametrize(("name", "ref", "cur"), PAIRS, ids=IDS)
def test_wasserstein_matches_scipy(name: str, ref: np.ndarray, cur: np.ndarray) -> None:
    center = float(ref.mean())
    prefix = nm.prefix_sums(ref, center)
    expected = stats.wasserstein_distance(ref, cur)
    assert nm.wasserstein(ref, prefix, center, cur) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    normed = nm.wasserstein_normed(ref, prefix, center, float(ref.std()), cur)
    assert normed == pytest.approx(expected / max(float(np.std(ref)), 0.001), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(("name", "ref", "cur"), PAIRS, ids=IDS)
def test_both_wasserstein_algorithms_match_scipy(name: str, ref: np.ndarray, cur: np.ndarray) -> None:
    """`wasserstein` picks one algorithm by size; each must be exact on every pair, whichever it picks."""
    center = float(ref.mean())
    expected = stats.wasserstein_distance(ref, cur)
    assert nm._wasserstein_prefix(ref, nm.prefix_sums(ref, center), center, cur) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert nm._wasserstein_merged(ref, cur) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert nm._wasserstein_merged(cur, ref) == pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(
    ("n", "m"),
    [(1_000, 1_000), (20_000, 18_000), (20_000, 23_000), (20_000, 300), (7, 20_000), (9_973, 10_007)],
    ids=["equal", "window-0.9", "window-larger", "small-window", "tiny-reference", "coprime"],
)
def test_wasserstein_matches_scipy_across_size_ratios(n: int, m: int) -> None:
    """Windows smaller, larger and equal to the reference, each size ratio on its chosen algorithm."""
    rng = np.random.default_rng(n * 31 + m)
    ref, cur = np.sort(rng.lognormal(0, 1, n)), np.sort(rng.lognormal(0.05, 1.1, m))
    center = float(ref.mean())
    got = nm.wasserstein(ref, nm.prefix_sums(ref, center), center, cur)
    assert got == pytest.approx(stats.wasserstein_distance(ref, cur), rel=1e-9)


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 400),
    m=st.integers(1, 400),
    ties=st.booleans(),
    offset=st.sampled_from([0.0, -3.5, 1e6]),
    seed=st.integers(0, 2**32 - 1),
)
def test_merged_wasserstein_equals_scipy_on_unequal_sizes(n: int, m: int, ties: bool, offset: float, seed: int) -> None:
    """The merged-quantile W1 (any sizes, tied or not, far from zero) against scipy within 1e-9."""
    rng = np.random.default_rng(seed)
    draw = (lambda k: rng.integers(0, 5, k).astype(float)) if ties else (lambda k: rng.normal(0, 2, k))
    ref, cur = np.sort(draw(n) + offset), np.sort(draw(m) * 1.3 + offset + 0.4)
    expected = stats.wasserstein_distance(ref, cur)
    assert nm._wasserstein_merged(ref, cur) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    center = float(ref.mean())
    assert nm._wasserstein_prefix(ref, nm.prefix_sums(ref, center), center, cur) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_wasserstein_normed_constant_reference_uses_evidently_floor() -> None:
    ref = np.full(50, 3.0)
    cur = np.sort(RNG.normal(3.0, 1.0, 40))
    prefix = nm.prefix_sums(ref, 3.0)
    score = nm.wasserstein_normed(ref, prefix, 3.0, 0.0, cur)
    assert score == pytest.approx(stats.wasserstein_distance(ref, cur) / 0.001, rel=1e-9)


@pytest.mark.parametrize(("name", "ref", "cur"), PAIRS, ids=IDS)
def test_energy_distance_matches_scipy(name: str, ref: np.ndarray, cur: np.ndarray) -> None:
    assert nm.energy_distance(ref, cur) == pytest.approx(stats.energy_distance(ref, cur), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("name", "ref", "cur"), [p for p in PAIRS if p[1].size > 1 and p[2].size > 1], ids=lambda v: v if isinstance(v, str) else "")
def test_cramer_von_mises_matches_scipy(name: str, ref: np.ndarray, cur: np.ndarray) -> None:
    expected = stats.cramervonmises_2samp(ref, cur)
    t, p = nm.cramer_von_mises(ref, cur)
    assert t == pytest.approx(expected.statistic, rel=1e-9, abs=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-7, abs=1e-10)


def test_cramer_von_mises_undefined_below_two_rows() -> None:
    t, p = nm.cramer_von_mises(np.sort(RNG.normal(size=30)), np.array([0.1]))
    assert np.isnan(t) and np.isnan(p)


@pytest.mark.parametrize(("name", "ref", "cur"), [p for p in PAIRS if p[0] != "disjoint"], ids=lambda v: v if isinstance(v, str) else "")
def test_anderson_darling_matches_scipy(name: str, ref: np.ndarray, cur: np.ndarray) -> None:
    expected = _scipy_anderson(ref, cur)
    a, p = nm.anderson_darling(ref, cur)
    assert a == pytest.approx(expected.statistic, rel=1e-9)
    assert p == pytest.approx(expected.pvalue, rel=1e-9)


def test_anderson_darling_single_distinct_value_is_undefined() -> None:
    a, p = nm.anderson_darling(np.full(10, 2.0), np.full(5, 2.0))
    assert np.isnan(a) and np.isnan(p)


def test_sturges_edges_and_histogram_match_numpy() -> None:
    for ref, cur in [(p[1], p[2]) for p in PAIRS] + [(np.full(5, 1.0), np.full(3, 1.0))]:
        pooled = np.concatenate([ref, cur])
        expected_edges = np.histogram_bin_edges(pooled, bins="sturges")
        edges = nm.sturges_edges(min(ref[0], cur[0]), max(ref[-1], cur[-1]), pooled.size)
        np.testing.assert_array_equal(edges, expected_edges)
        np.testing.assert_array_equal(nm.histogram_sorted(ref, edges), np.histogram(ref, expected_edges)[0])
        np.testing.assert_array_equal(nm.histogram_sorted(cur, edges), np.histogram(cur, expected_edges)[0])


def test_binned_counts_are_right_closed_with_open_ends() -> None:
    sample = np.array([-5.0, 1.0, 1.0, 1.5, 2.0, 2.0, 9.0])
    # bins: (-inf, 1], (1, 2], (2, inf)
    np.testing.assert_array_equal(nm.binned_counts(sample, np.array([1.0, 2.0])), [3, 3, 1])


def test_quantiles_and_distinct_match_numpy() -> None:
    sample = np.sort(RNG.integers(0, 9, 333).astype(float))
    qs = np.array([0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0])
    np.testing.assert_allclose(nm.quantiles_sorted(sample, qs), np.quantile(sample, qs), rtol=0, atol=1e-12)
    assert nm.count_distinct(sample) == np.unique(sample).size and nm.count_distinct(np.empty(0)) == 0
    values, counts = nm.distinct_sorted(sample)
    expected_values, expected_counts = np.unique(sample, return_counts=True)
    np.testing.assert_array_equal(values, expected_values)
    np.testing.assert_array_equal(counts, expected_counts)
    assert np.isnan(nm.quantiles_sorted(np.empty(0), qs)).all()


def _scipy_anderson(ref: np.ndarray, cur: np.ndarray) -> stats._result_classes.Anderson_ksampResult:  # type: ignore[name-defined]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return stats.anderson_ksamp([ref, cur])

