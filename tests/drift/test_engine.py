"""build_profile / evaluate / detect: verdicts, data quality, multiple testing and edge cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from monitor.drift import (
    CATEGORICAL_METHODS,
    NUMERIC_METHODS,
    ColumnSpec,
    DriftResult,
    EngineSettings,
    build_profile,
    detect,
    engine,
    evaluate,
)

RNG = np.random.default_rng(7)


def _frame(n: int, shift: float = 0.0, cat_shift: bool = False, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    shares = [0.2, 0.3, 0.5] if cat_shift else [0.5, 0.3, 0.2]
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1, n),
            "y": rng.normal(0, 1, n),
            "color": rng.choice(["red", "green", "blue"], n, p=shares),
            "flag": rng.choice([True, False], n),
            "score": rng.uniform(0, 1, n) + shift,
        }
    )


def _json(result: DriftResult) -> dict:
    return json.loads(json.dumps(result.to_dict(), allow_nan=False))


def test_detect_without_config_infers_types_and_finds_the_shifted_columns() -> None:
    ref, cur = _frame(3000, seed=1), _frame(2000, shift=0.5, cat_shift=True, seed=2)
    cur["only_here"] = 1.0
    result = detect(ref, cur)
    kinds = {f.name: (f.kind, f.method) for f in result.features.values()}
    assert kinds == {
        "x": ("numeric", "wasserstein_test"),
        "y": ("numeric", "wasserstein_test"),
        "color": ("categorical", "chisquare_test"),
        "flag": ("categorical", "chisquare_test"),  # booleans are categories
        "score": ("numeric", "wasserstein_test"),
    }
    assert sorted(f.name for f in result.drifted_features()) == ["color", "score", "x"]
    assert result.dataset.drift_share == pytest.approx(3 / 5) and result.dataset.drifted
    assert (result.dataset.n_reference, result.dataset.n_current) == (3000, 2000)


def test_to_dict_contract_is_json_safe() -> None:
    result = detect(_frame(500, seed=1), _frame(300, shift=1.0, seed=2))
    d = _json(result)
    assert set(d["dataset"]) >= {"drift_share", "drifted", "n_drifted", "n_features", "n_reference", "n_current"}
    x = d["features"]["x"]
    assert x["method"] == "wasserstein_test" and x["drifted"] is True and 0 < x["p_value"] < 0.01 and x["threshold"] == 0.01
    assert x["adjusted_p_value"] >= x["p_value"] and x["statistic"] > 0.3
    assert x["effect_metric"] == "wasserstein_normed" and x["effect_size"] == pytest.approx(x["statistic"])
    color = d["features"]["color"]
    assert color["effect_metric"] == "total_variation" and 0 <= color["effect_size"] <= 1
    assert set(x["quality"]) == {"missing_ratio", "out_of_range_ratio", "new_category_ratio", "wrong_type_ratio", "n"}
    assert set(x["details"]["reference"]["quantiles"]) == {"5", "25", "50", "75", "95"}
    assert d["features"]["color"]["details"]["categories"][0].keys() == {"value", "reference", "current"}


def test_outputs_are_prediction_drift_and_do_not_count_towards_dataset_share() -> None:
    specs = [ColumnSpec("x", "numeric"), ColumnSpec("y", "numeric"), ColumnSpec("score", "numeric", role="output")]
    result = evaluate(build_profile(_frame(2000, seed=1), specs), _frame(2000, shift=0.8, seed=2))
    assert result.prediction is not None and result.prediction.name == "score" and result.prediction.drifted
    assert result.dataset.n_features == 2 and result.dataset.n_drifted == 1
    assert result.dataset.drift_share == 0.5 and result.dataset.drifted  # share >= 0.5 is dataset drift
    no_outputs = evaluate(build_profile(_frame(100), specs[:2]), _frame(100))
    assert no_outputs.prediction is None and no_outputs.to_dict()["prediction"] is None


def test_dataset_drift_share_setting() -> None:
    specs = [ColumnSpec("x", "numeric"), ColumnSpec("y", "numeric")]
    ref, cur = _frame(2000, seed=1), _frame(2000, shift=0.8, seed=2)
    assert not evaluate(build_profile(ref, specs, EngineSettings(dataset_drift_share=0.6)), cur).dataset.drifted
    assert evaluate(build_profile(ref, specs, EngineSettings(dataset_drift_share=0.5)), cur).dataset.drifted


def _many_tests_window(n_features: int = 20) -> tuple[pd.DataFrame, pd.DataFrame, list[ColumnSpec]]:
    """One column with a raw p-value just under 0.05 among unchanged ones."""
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({f"f{i}": rng.normal(size=400) for i in range(n_features)})
    cur = pd.DataFrame({f"f{i}": rng.normal(size=400) for i in range(n_features)})
    cur["f0"] = cur["f0"] + 0.16
    return ref, cur, [ColumnSpec(c, "numeric") for c in ref.columns]


def test_benjamini_hochberg_decides_but_raw_p_value_is_reported() -> None:
    ref, cur, specs = _many_tests_window()
    # evidently mode: KS at 0.05, where this window's f0 sits just under the level (BH works alike in both modes)
    bh = evaluate(build_profile(ref, specs, EngineSettings(auto="evidently")), cur).features["f0"]
    raw = evaluate(build_profile(ref, specs, EngineSettings(auto="evidently", multiple_testing="none")), cur).features["f0"]
    assert bh.p_value == raw.p_value == bh.score and bh.p_value < 0.05
    assert raw.adjusted_p_value == raw.p_value and raw.drifted
    assert bh.adjusted_p_value is not None and bh.adjusted_p_value >= 0.05 and not bh.drifted


def _shifted(x: float, y: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A reference and the same rows with columns x and y shifted (in reference units, std about 1)."""
    ref = _frame(3000, seed=1)
    return ref, ref.assign(x=ref["x"] + x, y=ref["y"] + y)


def test_drifted_features_are_ranked_by_how_far_past_threshold() -> None:
    ref, cur = _shifted(0.3, 2.0)  # normed Wasserstein ~ 0.3 (3x its threshold) and ~ 2.0 (20x)
    specs = [ColumnSpec(c, "numeric") for c in ("x", "y", "score")]
    result = evaluate(build_profile(ref, specs, EngineSettings(auto="evidently")), cur)
    assert [f.method for f in result.features.values()] == ["wasserstein"] * 3
    assert [f.name for f in result.drifted_features()] == ["y", "x"]


def test_drifted_tests_beyond_every_draw_are_ranked_by_their_tail_p_values() -> None:
    ref, cur = _shifted(0.3, 2.0)
    result = detect(ref, cur)
    x, y = result.features["x"], result.features["y"]
    assert x.method == y.method == "wasserstein_test" and y.p_value < x.p_value  # both beyond every drawn statistic
    assert [f.name for f in result.drifted_features()] == ["y", "x"]


def test_drifted_tests_tied_at_the_same_p_value_are_ranked_by_effect_size() -> None:
    ref, cur = _shifted(1.5, 2.0)
    specs = [ColumnSpec(c, "numeric", "ks") for c in ("x", "y")]
    result = evaluate(build_profile(ref, specs, EngineSettings(auto="evidently")), cur)
    x, y = result.features["x"], result.features["y"]
    assert x.p_value == y.p_value == 0.0  # KS's p underflows for both
    assert [f.name for f in result.drifted_features()] == ["y", "x"]


def test_every_method_flags_a_clear_shift_and_not_an_identical_window() -> None:
    rng = np.random.default_rng(9)
    ref = pd.DataFrame({"n": rng.normal(size=1500), "c": rng.choice(list("ab"), 1500, p=[0.7, 0.3])})
    shifted = pd.DataFrame({"n": rng.normal(1.0, 1, 1500), "c": rng.choice(list("ab"), 1500, p=[0.3, 0.7])})
    for kind, col, methods in (("numeric", "n", NUMERIC_METHODS), ("categorical", "c", CATEGORICAL_METHODS)):
        for method in sorted(methods):
            profile = build_profile(ref, [ColumnSpec(col, kind, method)])  # type: ignore[arg-type]
            same = evaluate(profile, ref).features[col]
            moved = evaluate(profile, shifted).features[col]
            assert moved.drifted and not same.drifted, (method, same, moved)
            assert same.method == moved.method == method


def test_empty_window_gives_no_drift_and_undefined_scores() -> None:
    profile = build_profile(_frame(500), [ColumnSpec("x", "numeric"), ColumnSpec("color", "categorical")])
    for window in (_frame(500).iloc[0:0], pd.DataFrame()):
        result = evaluate(profile, window)
        assert result.dataset.n_current == 0 and result.dataset.drift_share == 0.0 and not result.dataset.drifted
        for f in result.features.values():
            assert math.isnan(f.score) and f.p_value is None and not f.drifted and f.n_current == 0
        d = _json(result)
        assert d["features"]["x"]["score"] is None and d["features"]["x"]["quality"]["missing_ratio"] is None


def test_all_missing_columns_on_either_side() -> None:
    ref = _frame(300)
    ref["empty"] = np.nan
    specs = [ColumnSpec("x", "numeric"), ColumnSpec("empty", "numeric"), ColumnSpec("color", "categorical")]
    cur = _frame(200, seed=3)
    cur["x"] = np.nan
    cur["color"] = None
    cur["empty"] = RNG.normal(size=200)
    result = evaluate(build_profile(ref, specs), cur)
    for name in ("x", "color"):
        f = result.features[name]
        assert f.quality.missing_ratio == 1.0 and math.isnan(f.score) and not f.drifted
    empty = result.features["empty"]
    assert empty.n_reference == 0 and math.isnan(empty.score) and not empty.drifted
    assert empty.quality.out_of_range_ratio == 0.0  # no reference range and none configured


def test_column_absent_from_the_window_is_all_missing_and_absent_from_reference_is_an_error() -> None:
    profile = build_profile(_frame(300), [ColumnSpec("x", "numeric")])
    f = evaluate(profile, pd.DataFrame({"other": [1, 2]})).features["x"]
    assert f.quality.missing_ratio == 1.0 and f.quality.n == 2 and not f.drifted
    with pytest.raises(ValueError, match=r"no column.*nope"):
        build_profile(_frame(10), [ColumnSpec("nope", "numeric")])
    with pytest.raises(ValueError, match="no column in common"):
        detect(pd.DataFrame({"a": [1]}), pd.DataFrame({"b": [1]}))


def test_constant_reference_uses_the_documented_std_floor() -> None:
    ref = pd.DataFrame({"c": np.full(2000, 4.0)})
    cur = pd.DataFrame({"c": np.r_[np.full(1800, 4.0), np.full(200, 4.5)]})
    f = detect(ref, cur).features["c"]
    # one distinct reference value: auto compares values as categories
    assert f.method == "chisquare_test" and f.drifted and f.effect_size == pytest.approx(0.1)
    evidently = evaluate(build_profile(ref, [ColumnSpec("c", "numeric")], EngineSettings(auto="evidently")), cur).features["c"]
    assert evidently.method == "jensenshannon" and evidently.drifted  # Jensen-Shannon for a large reference
    w = evaluate(build_profile(ref, [ColumnSpec("c", "numeric", "wasserstein")]), cur).features["c"]
    assert w.score == pytest.approx((200 * 0.5 / 2000) / 0.001)  # W1 / max(std=0, 0.001)
    ks = evaluate(build_profile(ref.iloc[:500], [ColumnSpec("c", "numeric", "ks")]), cur).features["c"]
    assert ks.p_value is not None and 0 <= ks.p_value <= 1


@pytest.mark.parametrize("method", sorted(NUMERIC_METHODS))
def test_single_row_window_has_a_defined_result_for_every_numeric_method(method: str) -> None:
    profile = build_profile(_frame(400), [ColumnSpec("x", "numeric", method)])
    f = evaluate(profile, pd.DataFrame({"x": [0.3]})).features["x"]
    assert f.n_current == 1 and isinstance(f.drifted, bool)
    json.dumps(f.to_dict(), allow_nan=False)


@pytest.mark.parametrize("method", sorted(CATEGORICAL_METHODS))
def test_single_row_and_unseen_category_for_every_categorical_method(method: str) -> None:
    profile = build_profile(_frame(400), [ColumnSpec("color", "categorical", method)])
    f = evaluate(profile, pd.DataFrame({"color": ["purple"]})).features["color"]
    assert f.n_current == 1 and f.quality.new_category_ratio == 1.0
    json.dumps(f.to_dict(), allow_nan=False)


def test_unseen_categories_are_counted_and_drive_drift() -> None:
    ref = _frame(800)
    cur = _frame(800, seed=4)
    cur.loc[:199, "color"] = "purple"
    for method in ("chisquare", "jensenshannon", "psi"):
        f = evaluate(build_profile(ref, [ColumnSpec("color", "categorical", method)]), cur).features["color"]
        assert f.quality.new_category_ratio == pytest.approx(0.25) and f.drifted, method
        assert f.details["new_categories"] == 1
        assert {c["value"] for c in f.details["categories"]} == {"red", "green", "blue", "purple"}


def test_two_valued_tests_fall_back_to_chisquare_when_a_third_category_appears() -> None:
    ref = pd.DataFrame({"s": ["yes", "no"] * 300})
    cur = pd.DataFrame({"s": ["yes", "no", "maybe"] * 200})
    for method in ("z", "fisher_exact"):
        f = evaluate(build_profile(ref, [ColumnSpec("s", "categorical", method)]), cur).features["s"]
        assert f.method == "chisquare" and f.drifted
        same = evaluate(build_profile(ref, [ColumnSpec("s", "categorical", method)]), ref).features["s"]
        assert same.method == method and same.p_value == pytest.approx(1.0)


def test_mixed_types_and_infinities_are_data_quality_not_crashes() -> None:
    ref = pd.DataFrame({"x": RNG.normal(size=500), "k": RNG.choice(["1", "2"], 500)})
    cur = pd.DataFrame(
        {
            "x": pd.Series([0.1, "0.2", "oops", None, np.inf, -np.inf, 1e9, [1]] * 25, dtype=object),
            "k": pd.Series([1, "2", 2.0, {"a": 1}, None] * 40, dtype=object),
        }
    )
    result = detect(ref, cur)
    x, k = result.features["x"].quality, result.features["k"].quality
    assert (x.missing_ratio, x.wrong_type_ratio) == (pytest.approx(1 / 8), pytest.approx(2 / 8))
    assert x.out_of_range_ratio == pytest.approx(3 / 8)  # +inf, -inf and 1e9 beyond the reference range
    assert result.features["x"].n_current == 4 * 25 - 25  # finite values only: 0.1, "0.2", 1e9
    assert (k.missing_ratio, k.wrong_type_ratio, k.new_category_ratio) == (0.2, 0.2, 0.0)


def test_configured_range_overrides_the_reference_range() -> None:
    ref = pd.DataFrame({"age": RNG.uniform(20, 60, 500)})
    cur = pd.DataFrame({"age": [10.0, 15.0, 30.0, 70.0, 130.0]})
    default = evaluate(build_profile(ref, [ColumnSpec("age", "numeric")]), cur).features["age"]
    configured = evaluate(build_profile(ref, [ColumnSpec("age", "numeric", min_value=0, max_value=120)]), cur)
    assert default.quality.out_of_range_ratio == pytest.approx(4 / 5)
    assert configured.features["age"].quality.out_of_range_ratio == pytest.approx(1 / 5)


def test_discrete_numeric_column_is_compared_as_categories_under_auto() -> None:
    ref = pd.DataFrame({"rooms": RNG.integers(1, 5, 600)})  # 4 distinct values, small reference
    cur = pd.DataFrame({"rooms": RNG.integers(2, 6, 600)})
    f = detect(ref, cur).features["rooms"]
    assert f.method == "chisquare_test" and f.drifted and f.statistic is not None and f.statistic > 50
    assert f.effect_metric == "total_variation"
    evidently = evaluate(build_profile(ref, [ColumnSpec("rooms", "numeric")], EngineSettings(auto="evidently")), cur).features["rooms"]
    assert evidently.method == "chisquare" and evidently.drifted and evidently.statistic == pytest.approx(f.statistic)


def test_unlabelled_frames_and_duplicated_labels() -> None:
    ref, cur = pd.DataFrame(RNG.normal(size=(300, 2))), pd.DataFrame(RNG.normal(2.0, 1, size=(300, 2)))
    result = detect(ref, cur)  # frames from bare arrays are labelled 0, 1
    assert set(result.features) == {"0", "1"} and result.dataset.drifted
    dup = pd.DataFrame(RNG.normal(size=(200, 2)), columns=["x", "x"])
    f = evaluate(build_profile(dup, [ColumnSpec("x", "numeric")]), dup).features["x"]
    assert f.n_reference == f.n_current == 200 and not f.drifted


def test_evaluate_is_deterministic_and_reuses_the_profile() -> None:
    profile = build_profile(_frame(1000), [ColumnSpec("x", "numeric"), ColumnSpec("color", "categorical")])
    window = _frame(700, shift=0.2, seed=8)
    assert _json(evaluate(profile, window)) == _json(evaluate(profile, window))


@pytest.mark.parametrize("m", [3_000, 2_700, 150, 4_100])
def test_wasserstein_scores_of_any_window_size_equal_scipy(m: int) -> None:
    """Windows equal to, 10% shorter than, far shorter and longer than the reference; columns of one
    window with different missing counts (so different sizes share nothing by accident)."""
    rng = np.random.default_rng(m)
    ref = pd.DataFrame({"a": rng.normal(0, 1, 3_000), "b": rng.lognormal(0, 1, 3_000), "c": rng.uniform(0, 9, 3_000)})
    cur = pd.DataFrame({"a": rng.normal(0.2, 1, m), "b": rng.lognormal(0.1, 1, m), "c": rng.uniform(1, 9, m)})
    cur.loc[rng.random(m) < 0.1, "b"] = np.nan
    cur.loc[rng.random(m) < 0.3, "c"] = np.nan
    specs = [ColumnSpec(name, "numeric", "wasserstein") for name in ref.columns]
    result = evaluate(build_profile(ref, specs), cur)
    for name in ref.columns:
        window = cur[name].dropna().to_numpy()
        expected = stats.wasserstein_distance(ref[name], window) / ref[name].std(ddof=0)
        assert result.features[name].n_current == window.size
        assert result.features[name].score == pytest.approx(expected, rel=1e-9), name


def test_datetime_columns_are_compared_as_time_whatever_their_timezone() -> None:
    ts = pd.Series(pd.date_range("2024-01-01", periods=200, freq="h"))
    for ref_col in (ts, ts.dt.tz_localize("UTC"), ts.dt.tz_localize("UTC").dt.tz_convert("Asia/Tokyo")):
        ref = pd.DataFrame({"t": ref_col})
        later = detect(ref, pd.DataFrame({"t": ref_col + pd.Timedelta(days=30)})).features["t"]
        assert (later.kind, later.drifted, later.quality.out_of_range_ratio) == ("numeric", True, 1.0)
        same = detect(ref, pd.DataFrame({"t": ref_col.sample(100, random_state=0)})).features["t"]
        assert not same.drifted and same.untested is None
    periods = pd.DataFrame({"p": pd.period_range("2024-01", periods=5, freq="M").repeat(20)})
    moved = detect(periods, pd.DataFrame({"p": pd.period_range("2024-06", periods=2, freq="M").repeat(25)})).features["p"]
    assert (moved.kind, moved.drifted, moved.quality.new_category_ratio) == ("categorical", True, 1.0)
    as_numbers = evaluate(build_profile(periods, [ColumnSpec("p", "numeric")]), periods).features["p"]
    assert as_numbers.quality.wrong_type_ratio == 1.0 and as_numbers.untested == engine.NO_REFERENCE


def test_inverted_configured_range_counts_each_value_once() -> None:
    ref = pd.DataFrame({"x": np.arange(100.0)})
    r = evaluate(build_profile(ref, [ColumnSpec("x", "numeric", min_value=100.0, max_value=0.0)]), ref)
    assert r.features["x"].quality.out_of_range_ratio == 1.0  # was 2.0: below min and above max both counted
    r = evaluate(build_profile(ref, [ColumnSpec("x", "numeric", min_value=10.0, max_value=89.0)]), ref)
    assert r.features["x"].quality.out_of_range_ratio == 0.2


@pytest.mark.parametrize("method", ["wasserstein", "energy", "jensenshannon", "kl_div", "hellinger"])
def test_values_near_the_float_limits_give_no_verdict_with_a_reason(method: str) -> None:
    """The reference std of ~1e300 values overflows (normed W1 was 0.0), a pooled range of 2e308 too
    (Sturges bins raised), and energy reached inf (drifted): all are NaN and untested now."""
    ref = pd.DataFrame({"x": np.linspace(-1.0, 1.0, 60) * 1e308})
    cur = pd.DataFrame({"x": np.linspace(-1.0, 0.5, 40) * 1e308})
    f = evaluate(build_profile(ref, [ColumnSpec("x", "numeric", method)]), cur).features["x"]
    assert math.isnan(f.score) and not f.drifted and f.untested == engine.OVERFLOW
    assert f.to_dict()["untested"] == engine.OVERFLOW


def test_a_window_without_any_testable_column_says_so() -> None:
    r = detect(pd.DataFrame({"x": [np.nan] * 100, "c": [None] * 100}), pd.DataFrame({"x": np.arange(50.0), "c": ["a"] * 50}))
    assert r.dataset.n_tested == 0 and not r.dataset.drifted
    assert {f.untested for f in r.features.values()} == {engine.NO_REFERENCE}
    r = detect(pd.DataFrame({"x": np.arange(100.0), "y": np.arange(100.0)}), pd.DataFrame({"x": np.arange(50.0), "y": [np.nan] * 50}))
    assert r.dataset.n_tested == 1 and r.features["y"].untested == engine.NO_WINDOW and r.dataset.to_dict()["n_tested"] == 1


def test_a_reference_std_that_overflows_gives_no_wasserstein_verdict() -> None:
    """Values ~1e300: the std overflows to inf and W1/std was 0.0 ("no drift"); energy stays scipy's finite value."""
    ref = pd.DataFrame({"x": RNG.normal(size=100) * 1e300})
    cur = pd.DataFrame({"x": RNG.normal(size=80) * 1e300 + 5e299})
    w = evaluate(build_profile(ref, [ColumnSpec("x", "numeric", "wasserstein")]), cur).features["x"]
    assert math.isnan(w.score) and w.untested == engine.OVERFLOW
    e = evaluate(build_profile(ref, [ColumnSpec("x", "numeric", "energy")]), cur).features["x"]
    assert e.score == pytest.approx(stats.energy_distance(ref["x"], cur["x"]), rel=1e-9) and e.untested is None


def _iso(seconds: np.ndarray) -> pd.Series:
    return pd.Series(pd.Timestamp("2024-03-01") + pd.to_timedelta(seconds, unit="s")).dt.strftime("%Y-%m-%dT%H:%M:%S")


def test_iso_text_columns_are_compared_as_datetimes() -> None:
    """The same draws as text and as datetimes score the same (text used to be one category per value)."""
    rng = np.random.default_rng(3)
    ref_s, cur_s = rng.uniform(0, 86400 * 30, 1500), rng.uniform(0, 86400 * 30, 1500)
    as_text = detect(pd.DataFrame({"t": _iso(ref_s)}), pd.DataFrame({"t": _iso(cur_s)})).features["t"]
    as_time = detect(pd.DataFrame({"t": pd.to_datetime(_iso(ref_s))}), pd.DataFrame({"t": pd.to_datetime(_iso(cur_s))})).features["t"]
    assert as_text.score == as_time.score
    assert as_text.drifted is False


def test_a_changed_type_is_drift_and_counts_toward_the_dataset_share() -> None:
    ref = pd.DataFrame({"a": np.arange(100.0), "b": np.arange(100.0)})
    cur = pd.DataFrame({"a": ["ten"] * 100, "b": np.arange(100.0)})
    result = detect(ref, cur)
    assert result.features["a"].drifted is True
    assert result.features["a"].details["type_changed"] is True
    assert result.dataset.drift_share == 0.5
    assert result.drifted_features()[0].name == "a"


def test_a_few_values_of_the_wrong_type_are_data_quality_not_a_type_change() -> None:
    ref = pd.DataFrame({"a": np.arange(100.0)})
    cur = pd.DataFrame({"a": [*np.arange(90.0).tolist(), *["ten"] * 10]})
    a = detect(ref, cur).features["a"]
    assert a.quality.wrong_type_ratio == 0.1
    assert "type_changed" not in a.details
