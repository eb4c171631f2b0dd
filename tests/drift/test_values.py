"""Raw columns to typed values: what counts as missing, wrong type, infinite, and one category."""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitor.drift.values import categorical_values, numeric_values


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
