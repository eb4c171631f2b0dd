"""Turning a raw column (CSV, Parquet or parsed JSON payloads) into typed values plus counts of what
could not be used: missing, wrong type, infinite.

Numeric columns: numbers and numeric strings ("3.5") are values; booleans count as 0/1 (pandas'
semantics); anything else non-null (words, lists, objects) is the wrong type. +-inf are valid numbers
but outside every finite range: they are counted as out of range and left out of the statistics, as
Evidently drops them.
Categorical columns: values are compared by a canonical string, so 1, 1.0, "1" and numpy integers are
one category and a CSV reference matches JSON traffic; nested values (lists, objects) are the wrong type.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

_EXACT_INT = 2.0**53


@dataclass(frozen=True)
class NumericValues:
    finite: NDArray[np.float64]  # sorted
    n: int
    missing: int
    wrong_type: int
    infinite: int


@dataclass(frozen=True)
class CategoricalValues:
    keys: NDArray[np.object_]  # distinct canonical keys of the usable values
    counts: NDArray[np.float64]  # rows per key
    n: int
    missing: int
    wrong_type: int

    @property
    def n_valid(self) -> int:
        return int(self.counts.sum())


def numeric_values(column: pd.Series) -> NumericValues:
    """Sorted finite values of a column and the counts of rows that are not usable numbers."""
    n = int(column.size)
    if pd.api.types.is_bool_dtype(column.dtype) or pd.api.types.is_numeric_dtype(column.dtype):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        wrong = 0
    else:
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        wrong = int(np.count_nonzero(np.isnan(values) & column.notna().to_numpy()))
    nan = np.isnan(values)
    inf = np.isinf(values)
    finite = values[~(nan | inf)]
    finite.sort()
    return NumericValues(
        finite=finite,
        n=n,
        missing=int(np.count_nonzero(nan)) - wrong,
        wrong_type=wrong,
        infinite=int(np.count_nonzero(inf)),
    )


def categorical_values(column: pd.Series) -> CategoricalValues:
    """Distinct canonical category keys of a column with their counts, and the unusable rows.

    One hashing pass (`pd.factorize`) over the rows; keys are canonicalised on the distinct values
    only. Object columns holding anything but strings are canonicalised row by row first, so 1 and
    "1" meet, and True does not merge with 1 as hashing alone would do.
    """
    n = int(column.size)
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype(object)
    wrong = 0
    factorized = _factorize(column)
    if factorized is None or (factorized[1].dtype == object and not all(isinstance(v, str) for v in factorized[1])):
        # mixed or unhashable values: canonicalise row by row, then hash the canonical strings
        raw = column.to_numpy(dtype=object)
        null = column.isna().to_numpy()
        keys = np.array([None if is_null else _canonical(v) for v, is_null in zip(raw, null, strict=True)], dtype=object)
        wrong = int(np.count_nonzero(~null)) - int(np.count_nonzero(keys != None))  # noqa: E711
        factorized = pd.factorize(pd.Series(keys, dtype=object), use_na_sentinel=True)
    codes, uniques = factorized
    valid = codes >= 0
    counts = np.bincount(codes[valid], minlength=len(uniques)).astype(np.float64)
    return CategoricalValues(
        keys=_canonical_keys(uniques),
        counts=counts,
        n=n,
        missing=int(codes.size - np.count_nonzero(valid)) - wrong,
        wrong_type=wrong,
    )


def _factorize(column: pd.Series) -> tuple[np.ndarray, pd.Index] | None:
    """Codes and distinct values, or None when some values are unhashable (lists, dicts)."""
    try:
        return pd.factorize(column, use_na_sentinel=True)
    except TypeError:
        return None


def _canonical_keys(uniques: pd.Index | np.ndarray) -> NDArray[np.object_]:
    values = np.asarray(uniques)
    if values.dtype == object:
        if all(isinstance(v, str) for v in values):
            return values
        return np.array([_canonical(v) for v in values], dtype=object)
    if values.dtype == bool:
        return np.where(values, "True", "False").astype(object)
    if np.issubdtype(values.dtype, np.integer):
        return values.astype(str).astype(object)
    return _float_keys(values.astype(np.float64))


def _float_keys(values: NDArray[np.float64]) -> NDArray[np.object_]:
    integral = (np.mod(values, 1.0) == 0) & (np.abs(values) < _EXACT_INT)
    out = values.astype(str).astype(object)
    if integral.any():
        out[integral] = values[integral].astype(np.int64).astype(str)
    return out


def _canonical(value: object) -> str | None:
    """One category key per scalar; None marks a value of the wrong type (list, dict, bytes...)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return _float_keys(np.array([float(value)]))[0]
    return None
