"""A/A tests: on unchanged data each p-value test flags at its nominal 5% (within sampling error), and
with Benjamini-Hochberg a window of 50 unchanged features rarely flags anything at all.

Repetitions are sized so the module stays fast: many at small sizes, fewer at 100k rows. Each
(test, size) rate must lie within 3 standard errors of 0.05, and the rate pooled over sizes within
3 standard errors of the pooled count. Categorical counts are drawn straight from the multinomial.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from monitor.drift import ColumnSpec, EngineSettings, build_profile, evaluate
from monitor.drift import categorical as ct
from monitor.drift import numeric as nm

ALPHA = 0.05

NUMERIC_TESTS: dict[str, tuple[Callable[[np.ndarray, np.ndarray], tuple[float, float]], dict[int, int]]] = {
    # method: (test, {rows per side: repetitions})
    "ks": (nm.ks_test, {500: 1000, 2000: 500, 20_000: 200, 100_000: 80}),
    "cramer_von_mises": (nm.cramer_von_mises, {500: 800, 2000: 400, 20_000: 120, 100_000: 40}),
    "anderson": (nm.anderson_darling, {500: 600, 2000: 400, 20_000: 100}),
}
CATEGORICAL_TESTS = {
    "chisquare": (ct.chisquare_two_sample, np.array([0.35, 0.25, 0.2, 0.1, 0.06, 0.04])),
    "z": (ct.z_two_proportion, np.array([0.3, 0.7])),
}
CATEGORICAL_SIZES = {500: 1500, 2000: 1500, 20_000: 1000, 100_000: 1000}


def _assert_nominal(flags_by_size: dict[int, int], reps_by_size: dict[int, int], name: str) -> None:
    for size, flags in flags_by_size.items():
        reps = reps_by_size[size]
        se = np.sqrt(ALPHA * (1 - ALPHA) / reps)
        assert abs(flags / reps - ALPHA) < 3 * se, f"{name} at {size} rows: {flags}/{reps} flagged"
    total_flags, total_reps = sum(flags_by_size.values()), sum(reps_by_size.values())
    se = np.sqrt(ALPHA * (1 - ALPHA) / total_reps)
    assert abs(total_flags / total_reps - ALPHA) < 3 * se, f"{name} pooled: {total_flags}/{total_reps}"


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(NUMERIC_TESTS))
def test_numeric_tests_hold_nominal_rate_on_unchanged_data(method: str) -> None:
    test, reps_by_size = NUMERIC_TESTS[method]
    rng = np.random.default_rng(100 + sorted(NUMERIC_TESTS).index(method))
    flags = {}
    for size, reps in reps_by_size.items():
        flags[size] = sum(
            test(np.sort(rng.standard_normal(size)), np.sort(rng.standard_normal(size)))[1] < ALPHA for _ in range(reps)
        )
    _assert_nominal(flags, reps_by_size, method)


@pytest.mark.parametrize("method", sorted(CATEGORICAL_TESTS))
def test_categorical_tests_hold_nominal_rate_on_unchanged_data(method: str) -> None:
    test, shares = CATEGORICAL_TESTS[method]
    rng = np.random.default_rng(200 + sorted(CATEGORICAL_TESTS).index(method))
    flags = {}
    for size, reps in CATEGORICAL_SIZES.items():
        refs = rng.multinomial(size, shares, reps).astype(float)
        curs = rng.multinomial(size, shares, reps).astype(float)
        flags[size] = sum(test(r, c)[1] < ALPHA for r, c in zip(refs, curs, strict=True))
    _assert_nominal(flags, CATEGORICAL_SIZES, method)


@pytest.mark.slow
def test_bh_keeps_windows_of_50_unchanged_features_quiet() -> None:
    """Under the global null BH's chance of any flag equals alpha (Simes), against ~92% for 50
    uncorrected tests. We run the engine on 200 windows and check the observed share is not
    significantly above 5% (one-sided binomial test at 0.001), and that uncorrected tests would page."""
    rng = np.random.default_rng(50)
    names = [f"f{i}" for i in range(50)]
    reference = pd.DataFrame(rng.standard_normal((500, 50)), columns=names)
    # evidently mode: KS at level 0.05 and no effect gate, so BH alone keeps the windows quiet
    profile = build_profile(reference, [ColumnSpec(n, "numeric") for n in names], EngineSettings(auto="evidently"))
    assert {c.method for c in profile.columns.values()} == {"ks"}
    windows, any_flag, any_raw = 200, 0, 0
    for _ in range(windows):
        result = evaluate(profile, pd.DataFrame(rng.standard_normal((500, 50)), columns=names))
        any_flag += result.dataset.n_drifted > 0
        any_raw += any(f.p_value is not None and f.p_value < ALPHA for f in result.features.values())
    assert stats.binomtest(any_flag, windows, ALPHA, alternative="greater").pvalue > 0.001, any_flag / windows
    assert any_flag / windows <= 0.08, any_flag / windows
    assert any_raw / windows > 0.8  # without correction nearly every window would flag something
