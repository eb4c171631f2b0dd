"""Embedding columns in the drift engine: a column of vectors as a matrix, its reference profile, and
one window's test, so a vector column is evaluated, decided and reported like any other column.

A cell is a vector when it is a list, tuple or 1-D array of numbers, or a JSON list in text (how a
CSV holds one); None or NaN is missing. A vector of another length than the column's, with a NaN or
infinite entry, or holding anything but numbers is a wrong-type value for data quality: ingest
rejects such events before they reach a window, but a reference or current file may hold them.
The statistics are `monitor.drift.embedding`'s (docs/drift-methods.md#embeddings).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from monitor.drift import embedding
from monitor.drift.embedding.profile import EmbeddingProfile
from monitor.drift.spec import ColumnSpec

F32 = NDArray[np.float32]
SAMPLE_ROWS = 2000
"""Reference rows kept beside the profile for the on-demand MMD check and the report's scatter."""
MIN_REFERENCE = 20
"""Fewer valid reference vectors cannot be split into fit and held-out rows (`embedding.profile`)."""


@dataclass(frozen=True)
class VectorValues:
    """A column's usable vectors as one float32 matrix, and the counts of rows that are not."""

    matrix: F32
    n: int
    missing: int
    wrong_type: int


def _missing(cell: Any) -> bool:
    return cell is None or (isinstance(cell, float) and math.isnan(cell)) or cell is pd.NA


def _as_sequence(cell: Any) -> Any:
    """The cell as a list-like of numbers, or None when it cannot be one (a JSON list in text is one)."""
    if isinstance(cell, str):
        try:
            cell = json.loads(cell)
        except ValueError:
            return None
    if isinstance(cell, (list, tuple)) or (isinstance(cell, np.ndarray) and cell.ndim == 1):
        return cell
    return None


def vector_values(column: pd.Series, dimensions: int | None) -> VectorValues:
    """The valid vectors of `column` (n x d) and the missing and wrong counts (see the module docstring);
    with `dimensions` None the first vector's length is the column's."""
    cells = column.tolist()
    rows: list[Any] = []
    missing = wrong = 0
    width = dimensions
    for cell in cells:
        if _missing(cell):
            missing += 1
            continue
        seq = _as_sequence(cell)
        if seq is None or (width is not None and len(seq) != width) or len(seq) == 0:
            wrong += 1
            continue
        width = len(seq) if width is None else width
        rows.append(seq)
    if not rows:
        return VectorValues(np.empty((0, width or 0), dtype=np.float32), len(cells), missing, wrong)
    try:
        matrix = np.array(rows, dtype=np.float32)
        if matrix.ndim != 2:  # lists nested in a cell
            raise ValueError(matrix.shape)
    except (TypeError, ValueError):  # a non-number or a nested list somewhere: find the rows one by one
        matrix, bad = _numbers_only(rows, width or 0)
        wrong += bad
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.isfinite(matrix.sum(axis=1, dtype=np.float64)) if matrix.size else np.ones(matrix.shape[0], bool)
    if not finite.all():
        wrong += int(np.count_nonzero(~finite))
        matrix = matrix[finite]
    return VectorValues(np.ascontiguousarray(matrix), len(cells), missing, wrong)


def looks_like_vectors(column: pd.Series, probe: int = 20) -> bool:
    """The first `probe` present cells are all vectors of one length (lists or arrays of numbers, or
    JSON lists in text): how `detect` without a config tells an embedding column from a categorical one."""
    present = column.dropna()
    if present.empty or present.dtype != object:
        return False
    lengths = set()
    for cell in present.iloc[:probe].tolist():
        seq = _as_sequence(cell)
        if seq is None or len(seq) == 0 or not all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in seq):
            return False
        lengths.add(len(seq))
    return len(lengths) == 1


def _numbers_only(rows: list[Any], width: int) -> tuple[F32, int]:
    kept, bad = [], 0
    for row in rows:
        try:
            if any(isinstance(v, bool) for v in row):
                raise TypeError
            vec = np.asarray(row, dtype=np.float32)
            if vec.shape != (width,):
                raise ValueError(vec.shape)
            kept.append(vec)
        except (TypeError, ValueError):
            bad += 1
    return (np.stack(kept) if kept else np.empty((0, width), dtype=np.float32)), bad


@dataclass(frozen=True, eq=False)
class EmbeddingColumnProfile:
    """An embedding column's reference, prepared once: the test's profile (None when the reference has
    fewer than MIN_REFERENCE vectors) and a seeded sample of its rows for MMD and the report."""

    spec: ColumnSpec
    method: str
    threshold: float
    profile: EmbeddingProfile | None
    sample: F32
    n: int
    """Valid reference vectors."""
    dimensions: int


def embedding_profile(spec: ColumnSpec, column: pd.Series, method: str, threshold: float) -> EmbeddingColumnProfile:
    vals = vector_values(column, spec.dimensions)
    x = vals.matrix
    dims = spec.dimensions or x.shape[1]
    prof = embedding.profile(x) if x.shape[0] >= MIN_REFERENCE else None
    rng = np.random.default_rng(0)
    sample = x[np.sort(rng.choice(x.shape[0], SAMPLE_ROWS, replace=False))] if x.shape[0] > SAMPLE_ROWS else x
    return EmbeddingColumnProfile(spec, method, threshold, prof, np.ascontiguousarray(sample), int(x.shape[0]), dims)


@dataclass(frozen=True)
class VectorOutcome:
    """One window's embedding test in the engine's terms; `untested` says why there is none."""

    p_value: float
    effect: float
    details: dict[str, Any]
    untested: str | None


def test_window(p: EmbeddingColumnProfile, window: F32, alpha: float) -> VectorOutcome:
    """The always-on test of the window's vectors against the prepared reference."""
    nan = math.nan
    if p.profile is None:
        return VectorOutcome(nan, nan, {}, f"the reference has {p.n} vectors: the embedding test needs at least {MIN_REFERENCE}")
    if window.shape[0] < 2:
        return VectorOutcome(nan, nan, {}, f"the window has {window.shape[0]} vector(s): the embedding test needs at least 2")
    result = embedding.test(p.profile, window, alpha)
    details = {
        "dimensions": p.dimensions,
        "family_p": result.family_p,
        "top_dimensions": [asdict(d) for d in result.top_dimensions],
        "top_components": [asdict(c) for c in result.top_components],
    }
    effect = max((c.ks for c in result.top_components), default=nan)
    return VectorOutcome(result.p_value, effect, details, None)
