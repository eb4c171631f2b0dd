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
    keys: NDArray[np.object_]  # canonical strings of the usable values, in row order
    n: int
    missing: int
    wrong_type: int


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
    """Canonical category keys of a column (missing and wrong-type rows dropped) and their counts."""
    n = int(column.size)
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype(object)
    missing_mask = column.isna().to_numpy()
    present = column[~missing_mask]
    dtype = present.dtype
    if pd.api.types.is_bool_dtype(dtype):
        keys = np.where(present.to_numpy(dtype=bool), "True", "False").astype(object)
    elif pd.api.types.is_integer_dtype(dtype):
        keys = present.to_numpy(dtype=np.int64).astype(str).astype(object)
    elif pd.api.types.is_float_dtype(dtype):
        keys = _float_keys(present.to_numpy(dtype=np.float64))
    elif pd.api.types.infer_dtype(present, skipna=False) == "string":
        keys = present.to_numpy(dtype=object)
    else:
        keys = np.array([_canonical(v) for v in present.to_numpy(dtype=object)], dtype=object)
    ok = keys != None  # noqa: E711 - elementwise comparison on an object array
    return CategoricalValues(
        keys=keys[ok],
        n=n,
        missing=int(np.count_nonzero(missing_mask)),
        wrong_type=int(keys.size - np.count_nonzero(ok)),
    )


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
