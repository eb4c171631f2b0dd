"""Invariants over generated data (hypothesis): identical samples never drift, clear shifts always do,
the fast statistics equal scipy's on any input, and hostile columns never crash the engine."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from monitor.core.methods import CATEGORICAL_METHODS, NUMERIC_METHODS, P_VALUE_METHODS
from monitor.drift import ColumnSpec, build_profile, evaluate
from monitor.drift import numeric as nm

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
samples = st.lists(finite, min_size=2, max_size=150)


@FAST
@given(values=samples)
def test_identical_numeric_samples_score_zero_and_never_drift(values: list[float]) -> None:
    frame = pd.DataFrame({"x": values})
    for method in sorted(NUMERIC_METHODS):
        f = evaluate(build_profile(frame, [ColumnSpec("x", "numeric", method)]), frame).features["x"]
        assert not f.drifted, (method, f)
        if method in P_VALUE_METHODS:
            if method == "anderson" and len(set(values)) < 2:
                continue  # Anderson-Darling needs two distinct pooled values (docs/drift-methods.md, edge cases)
            assert f.p_value is not None, (method, values)
            assert f.p_value >= 0.05, (method, f.p_value)
        else:
            assert f.p_value is None, (method, f.p_value)
            assert math.isclose(f.score, 0.0, abs_tol=1e-9), (method, f.score)


@FAST
@given(values=st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, max_size=200))
def test_identical_categorical_samples_score_zero_and_never_drift(values: list[str]) -> None:
    frame = pd.DataFrame({"c": values})
    for method in sorted(CATEGORICAL_METHODS):
        f = evaluate(build_profile(frame, [ColumnSpec("c", "categorical", method)]), frame).features["c"]
        assert not f.drifted, (method, f)
        if method in P_VALUE_METHODS:
            assert f.p_value is not None, (method, values)
        else:
            assert math.isclose(f.score, 0.0, abs_tol=1e-9), (method, f.score)


@FAST
@given(
    n=st.integers(60, 400),
    m=st.integers(60, 400),
    scale=st.floats(0.5, 100),
    loc=st.floats(-1e4, 1e4),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_shift_of_five_standard_deviations_is_always_caught(n: int, m: int, scale: float, loc: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({"x": loc + scale * rng.standard_normal(n)})
    cur = pd.DataFrame({"x": loc + scale * (5 + rng.standard_normal(m))})
    for method in sorted(NUMERIC_METHODS):
        f = evaluate(build_profile(ref, [ColumnSpec("x", "numeric", method)]), cur).features["x"]
        assert f.drifted, (method, f.score)
        assert (f.p_value is not None) == (method in P_VALUE_METHODS), (method, f.p_value)


@FAST
@given(n=st.integers(50, 400), m=st.integers(50, 400), seed=st.integers(0, 2**32 - 1))
def test_a_swap_of_category_shares_is_always_caught(n: int, m: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({"c": rng.choice(["a", "b"], n, p=[0.85, 0.15])})
    cur = pd.DataFrame({"c": rng.choice(["a", "b"], m, p=[0.15, 0.85])})
    for method in sorted(CATEGORICAL_METHODS):
        f = evaluate(build_profile(ref, [ColumnSpec("c", "categorical", method)]), cur).features["c"]
        assert f.drifted, (method, f.score)
        assert (f.p_value is not None) == (method in P_VALUE_METHODS), (method, f.p_value)


@FAST
@given(ref=samples, cur=st.lists(finite, min_size=1, max_size=150))
def test_fast_ks_and_wasserstein_equal_scipy_on_any_input(ref: list[float], cur: list[float]) -> None:
    r, c = np.sort(np.array(ref)), np.sort(np.array(cur))
    center = float(r.mean())
    w = nm.wasserstein(r, nm.prefix_sums(r, center), center, c)
    assert math.isclose(w, stats.wasserstein_distance(r, c), rel_tol=1e-9, abs_tol=1e-6)
    assert math.isclose(nm.ks_statistic(r, c), stats.ks_2samp(r, c).statistic, abs_tol=1e-12)


hostile = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.text(max_size=5),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ref=st.lists(hostile, min_size=0, max_size=40), cur=st.lists(hostile, min_size=0, max_size=40))
def test_hostile_values_never_crash_and_results_stay_json_safe(ref: list[object], cur: list[object]) -> None:
    specs = [ColumnSpec("n", "numeric"), ColumnSpec("c", "categorical")]
    ref_df = pd.DataFrame({"n": pd.Series(ref, dtype=object), "c": pd.Series(ref, dtype=object)})
    cur_df = pd.DataFrame({"n": pd.Series(cur, dtype=object), "c": pd.Series(cur, dtype=object)})
    result = evaluate(build_profile(ref_df, specs), cur_df)
    text = json.dumps(result.to_dict(), allow_nan=False)
    for f in result.features.values():
        q = f.quality
        if q.n:
            total = q.missing_ratio + q.wrong_type_ratio + q.out_of_range_ratio + q.new_category_ratio
            assert 0.0 <= total <= 1.0 + 1e-9
    assert text
