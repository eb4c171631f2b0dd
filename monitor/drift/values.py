"""Turning a raw column (CSV, Parquet or parsed JSON payloads) into typed values plus counts of what
could not be used: missing, wrong type, infinite.

Numeric columns: numbers and numeric strings ("3.5") are values; booleans count as 0/1 (pandas'
semantics); anything else non-null (words, lists, objects) is the wrong type. +-inf are valid numbers
but outside every finite range: they are counted as out of range and left out of the statistics, as
Evidently drops them.
Categorical columns: values are compared by a canonical string, so 1, 1.0, "1" and numpy integers are
one category and a CSV reference matches JSON traffic; nested values (lists, objects) are the wrong type.

Time values (docs/drift-methods.md, "Time columns"): datetimes are numbers as epoch seconds, with
timezone-aware ones normalised to UTC and naive ones taken as UTC; durations are seconds. As categories
they are ISO 8601 strings on the same convention. Periods and intervals are labels ("2024-01",
"(0, 1]"): categories by that label, the wrong type for a numeric column. Complex numbers are the
wrong type (no order, no distance of a drift method applies). A Python int beyond a double is +-inf,
as a JSON parser reads it (and as monitor/capture does).

Date/time columns held as text (a CSV's ISO 8601 strings, JSON payloads) are parsed when the column is
declared a datetime (`numeric_values(column, datetime=True)`) or when every reference value looks like
one (`looks_like_datetimes`): otherwise each timestamp would be a category of its own. Numbers in such
a column are epoch seconds; anything unparseable is the wrong type.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

_EXACT_INT = 2.0**53
_PER_SECOND = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}
# A date, optionally with a time and an offset: 2024-01-05, 2024-01-05T10:00, 2024-01-05 10:00:00.5+02:00
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$")
_DETECT_SAMPLE = 1000


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


def numeric_values(column: pd.Series, datetime: bool = False) -> NumericValues:
    """Sorted finite values of a column and the counts of rows that are not usable numbers.

    `datetime`: text values are ISO 8601 date/times (epoch seconds, UTC), not numbers.
    """
    n = int(column.size)
    dtype = column.dtype
    wrong = 0
    if is_time_dtype(dtype):
        values = _seconds(column)
    elif datetime and not (pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype)):
        values = _datetime_seconds(column)
        wrong = int(np.count_nonzero(np.isnan(values) & column.notna().to_numpy()))
    elif isinstance(dtype, (pd.PeriodDtype, pd.IntervalDtype)) or pd.api.types.is_complex_dtype(dtype):
        values = np.full(n, np.nan)
        wrong = int(column.notna().sum())
    elif pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        values = _object_floats(column)
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


def is_time_dtype(dtype: Any) -> bool:
    """Datetimes (naive or timezone-aware) and durations: quantities, measured in seconds."""
    return bool(pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype))


def _seconds(column: pd.Series) -> NDArray[np.float64]:
    """Epoch seconds (UTC: a timezone-aware array stores UTC instants) or duration seconds; NaT is NaN."""
    array = column.array
    values = np.asarray(array.asi8, dtype=np.float64) / _PER_SECOND[array.unit]
    values[column.isna().to_numpy()] = np.nan
    return values


def looks_like_datetimes(column: pd.Series) -> bool:
    """Text whose every value is an ISO 8601 date/time (checked on up to 1000 distinct values, then parsed)."""
    if is_time_dtype(column.dtype) or pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
        return False
    present = column.dropna()
    if present.empty:
        return False
    sample = pd.unique(present.iloc[: _DETECT_SAMPLE * 10])[:_DETECT_SAMPLE]
    if not all(isinstance(v, str) and _ISO_DATETIME.match(v) for v in sample):
        return False
    try:
        return bool(_to_utc(present).notna().all())
    except (TypeError, ValueError, OverflowError):
        return False


def _to_utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")


def _datetime_seconds(column: pd.Series) -> NDArray[np.float64]:
    """Epoch seconds of a text column of date/times; numbers are taken as epoch seconds already."""
    raw = column.to_numpy(dtype=object)
    values = np.full(raw.size, np.nan)
    null = column.isna().to_numpy()
    if pd.api.types.infer_dtype(column, skipna=True) == "string":  # a CSV's column: no per-row check
        numbers = np.zeros(raw.size, dtype=bool)
    else:
        numbers = np.fromiter(
            (isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) for v in raw),
            dtype=bool,
            count=raw.size,
        ) & ~null
    if numbers.any():
        values[numbers] = raw[numbers].astype(np.float64)
    text = ~null & ~numbers
    if text.any():
        try:
            parsed = _to_utc(pd.Series(raw[text], dtype=object))
        except (TypeError, ValueError, OverflowError):  # unhashable or otherwise unparseable values: one by one
            parsed = pd.Series([_one_datetime(v) for v in raw[text]], dtype="datetime64[ns, UTC]")
        values[text] = _seconds(parsed)
    return values


def _one_datetime(value: object) -> pd.Timestamp | None:
    try:
        return pd.Timestamp(_to_utc(pd.Series([value], dtype=object)).iloc[0])
    except (TypeError, ValueError, OverflowError):
        return None


def _object_floats(column: pd.Series) -> NDArray[np.float64]:
    try:
        parsed = pd.to_numeric(column, errors="coerce")
    except OverflowError:  # an int beyond a double: parse value by value with it as +-inf
        parsed = pd.to_numeric(column.map(_huge_int_as_inf, na_action="ignore"), errors="coerce")
    return np.asarray(parsed.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def _huge_int_as_inf(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            float(value)
        except OverflowError:
            return np.inf if value > 0 else -np.inf
    return value


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
    if is_time_dtype(uniques.dtype) or isinstance(uniques.dtype, (pd.PeriodDtype, pd.IntervalDtype)):
        return np.array([_canonical(v) for v in uniques], dtype=object)
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
    if isinstance(value, (float, np.floating, decimal.Decimal)):
        return _float_keys(np.array([float(value)]))[0]
    if isinstance(value, (dt.datetime, np.datetime64)):
        ts = pd.Timestamp(value)
        return (ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts).isoformat()
    if isinstance(value, (dt.timedelta, np.timedelta64)):
        return pd.Timedelta(value).isoformat()
    if isinstance(value, (dt.date, pd.Period, pd.Interval)):
        return str(value)
    return None
