"""Raw columns to typed values: what counts as missing, wrong type, infinite, and one category."""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitor.drift.values import categorical_values, looks_like_datetimes, numeric_values


def test_numeric_object_column_counts_each_kind_of_bad_value() -> None:
    col = pd.Series([1, "2", " 3.5 ", "abc", None, np.nan, [1, 2], {"a": 1}, True, "inf", float("-inf")], dtype=object)
    v = numeric_values(col)
    assert v.n == 11
    assert v.missing == 2  # None, NaN
    assert v.wrong_type == 3  # "abc", a list, an object
    assert v.infinite == 2  # "inf", -inf
    np.testing.assert_array_equal(v.finite, [1.0, 1.0, 2.0, 3.5])  # True counts as 1


def test_numeric_nullable_and_float_columns() -> None:
    v = numeric_values(pd.Series(pd.array([3, None, 1], dtype="Int64")))
    assert (v.missing, v.wrong_type, v.infinite) == (1, 0, 0)
    np.testing.assert_array_equal(v.finite, [1.0, 3.0])
    v = numeric_values(pd.Series([np.inf, 2.0, np.nan]))
    assert (v.n, v.missing, v.infinite, v.finite.tolist()) == (3, 1, 1, [2.0])


def _as_dict(col: pd.Series) -> dict[str, float]:
    v = categorical_values(col)
    return dict(zip(v.keys.tolist(), v.counts.tolist(), strict=True))


def test_categories_are_canonical_across_types() -> None:
    mixed = pd.Series([1, "1", 1.0, np.int64(1), 2.5, "x", True, None, np.nan, [1], {"k": 2}], dtype=object)
    v = categorical_values(mixed)
    assert _as_dict(mixed) == {"1": 4.0, "2.5": 1.0, "x": 1.0, "True": 1.0}
    assert (v.n, v.missing, v.wrong_type, v.n_valid) == (11, 2, 2, 7)
    # a CSV-read integer column and JSON strings land on the same keys
    assert _as_dict(pd.Series([0, 1, 1])) == _as_dict(pd.Series(["0", "1", "1"]))
    assert _as_dict(pd.Series([1.0, 2.0, np.nan])) == {"1": 1.0, "2": 1.0}
    assert _as_dict(pd.Series([True, False, True])) == {"True": 2.0, "False": 1.0}
    assert _as_dict(pd.Series(["a", None, "b"], dtype="category")) == {"a": 1.0, "b": 1.0}


def test_all_missing_categorical_column() -> None:
    v = categorical_values(pd.Series([None, None], dtype=object))
    assert (v.n, v.missing, v.wrong_type, v.n_valid, v.keys.size) == (2, 2, 0, 0, 0)


def test_time_columns_are_seconds_with_timezones_normalised_to_utc() -> None:
    naive = pd.Series(pd.to_datetime(["2024-01-01 00:00:00", None, "2024-01-01 00:00:10"]))
    paris = naive.dt.tz_localize("UTC").dt.tz_convert("Europe/Paris")  # the same instants, shown in Paris
    for col in (naive, paris, naive.astype("datetime64[s]")):
        v = numeric_values(col)
        assert (v.n, v.missing, v.wrong_type) == (3, 1, 0)
        assert v.finite.tolist() == [1704067200.0, 1704067210.0]
    durations = numeric_values(pd.Series(pd.to_timedelta([1.5, None], unit="s")))
    assert (durations.finite.tolist(), durations.missing) == ([1.5], 1)


def test_time_periods_and_intervals_are_distinct_readable_categories() -> None:
    paris = pd.Series(pd.date_range("2024-01-01", periods=3, freq="h", tz="Europe/Paris"))
    assert list(_as_dict(paris)) == ["2023-12-31T23:00:00", "2024-01-01T00:00:00", "2024-01-01T01:00:00"]  # UTC
    assert _as_dict(paris) == _as_dict(paris.dt.tz_convert("UTC").dt.tz_localize(None))  # naive is taken as UTC
    assert _as_dict(pd.Series(pd.period_range("2024-01", periods=2, freq="M"))) == {"2024-01": 1.0, "2024-02": 1.0}
    assert _as_dict(pd.Series(pd.interval_range(0, 2))) == {"(0, 1]": 1.0, "(1, 2]": 1.0}
    assert _as_dict(pd.Series([pd.Timestamp("2024-01-01", tz="UTC"), "x"], dtype=object)) == {"2024-01-01T00:00:00": 1.0, "x": 1.0}


def test_periods_intervals_and_complex_numbers_are_the_wrong_type_for_numeric_columns() -> None:
    for col in (pd.Series(pd.period_range("2024-01", periods=3, freq="D")), pd.Series(pd.interval_range(0, 3)),
                pd.Series([1 + 1j, 2 + 0j, None])):
        v = numeric_values(col)
        assert v.finite.size == 0 and v.wrong_type == col.notna().sum()


def test_python_ints_beyond_a_double_are_infinite_not_an_error() -> None:
    v = numeric_values(pd.Series([10**400, -(10**400), 5, "abc", None], dtype=object))
    assert (v.finite.tolist(), v.infinite, v.wrong_type, v.missing) == ([5.0], 2, 1, 1)


def test_iso_text_parses_to_the_epoch_seconds_of_the_same_datetimes() -> None:
    text = pd.Series(["2024-01-05T10:00:00", "2024-01-05 12:30:00+02:00", "2024-01-06", None])
    parsed = numeric_values(text, datetime=True).finite
    expected = numeric_values(pd.Series(pd.to_datetime(["2024-01-05T10:00:00", "2024-01-05T10:30:00", "2024-01-06T00:00:00"]))).finite
    np.testing.assert_array_equal(parsed, expected)


def test_a_datetime_column_takes_numbers_as_epoch_seconds_and_words_as_the_wrong_type() -> None:
    """JSON payloads may send epoch seconds; anything else that is not a date/time is the wrong type."""
    vals = numeric_values(pd.Series(["1970-01-01T00:01:00", 30, "soon", None], dtype=object), datetime=True)
    assert vals.finite.tolist() == [30.0, 60.0]
    assert (vals.wrong_type, vals.missing) == (1, 1)


def test_only_text_that_is_all_iso_datetimes_looks_like_datetimes() -> None:
    assert looks_like_datetimes(pd.Series(["2024-01-05", "2024-02-01T08:00:00Z", None]))
    assert not looks_like_datetimes(pd.Series(["2024-01-05", "next week"]))
    assert not looks_like_datetimes(pd.Series(["2024", "2025"]))  # years are labels, not instants
    assert not looks_like_datetimes(pd.Series([20240105, 20240106]))
