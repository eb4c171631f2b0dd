"""Distances between binned distributions against scipy and their definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance as sd

from monitor.drift import distance as dd

CASES = [
    (np.array([50.0, 30, 20]), np.array([40.0, 40, 20])),
    (np.array([10.0, 0, 5, 85]), np.array([0.0, 30, 5, 65])),  # empty bins on both sides
    (np.array([1.0, 1]), np.array([1.0, 1])),
    (np.array([3.0, 0, 0, 0, 7]), np.array([1.0, 2, 3, 4, 0])),
]


@pytest.mark.parametrize(("ref", "cur"), CASES)
def test_jensenshannon_is_scipys_natural_log_distance(ref: np.ndarray, cur: np.ndarray) -> None:
    assert dd.jensenshannon(ref, cur) == pytest.approx(sd.jensenshannon(ref, cur), abs=1e-12)
    assert dd.jensenshannon(ref, cur) <= math.sqrt(math.log(2)) + 1e-12


def test_jensenshannon_extremes() -> None:
    assert dd.jensenshannon(np.array([5.0, 0]), np.array([0.0, 9])) == pytest.approx(math.sqrt(math.log(2)))
    assert dd.jensenshannon(np.array([2.0, 6]), np.array([1.0, 3])) == 0.0


def _evidently_filled(p: np.ndarray) -> np.ndarray:
    """Evidently's `get_binned_data(..., feel_zeroes=True)` rule, written out independently."""
    p = p.copy()
    smallest = p[p != 0].min()
    np.place(p, p == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001)
    return p


@pytest.mark.parametrize(("ref", "cur"), CASES)
def test_psi_and_kl_with_evidentlys_empty_bin_rule(ref: np.ndarray, cur: np.ndarray) -> None:
    r, c = _evidently_filled(ref / ref.sum()), _evidently_filled(cur / cur.sum())
    assert dd.psi(ref, cur) == pytest.approx(float(np.sum((r - c) * np.log(r / c))), abs=1e-12)
    assert dd.kl_div(ref, cur) == pytest.approx(float(stats.entropy(r, c)), abs=1e-12)


def test_fill_empty_uses_a_millionth_of_the_smallest_share_when_it_is_tiny() -> None:
    p = np.array([0.99995, 0.00005, 0.0])
    np.testing.assert_array_equal(dd.fill_empty(p), [0.99995, 0.00005, 0.00005 / 1e6])
    np.testing.assert_array_equal(dd.fill_empty(np.array([0.5, 0.5, 0.0])), [0.5, 0.5, 1e-4])


@pytest.mark.parametrize(("ref", "cur"), CASES)
def test_hellinger_linf_total_variation_definitions(ref: np.ndarray, cur: np.ndarray) -> None:
    p, q = ref / ref.sum(), cur / cur.sum()
    assert dd.hellinger(ref, cur) == pytest.approx(sd.euclidean(np.sqrt(p), np.sqrt(q)) / math.sqrt(2), abs=1e-12)
    assert dd.linf(ref, cur) == pytest.approx(sd.chebyshev(p, q), abs=1e-15)
    assert dd.total_variation(ref, cur) == pytest.approx(sd.cityblock(p, q) / 2, abs=1e-15)


def test_identical_distributions_score_zero_everywhere() -> None:
    counts = np.array([7.0, 0, 3, 12])
    for name, fn in dd.DISTANCES.items():
        assert fn(counts, counts * 3) == pytest.approx(0.0, abs=1e-12), name
