"""Embedding columns in the drift engine (monitor.drift.vectors): cells to a matrix, the column's test
through `build_profile`/`evaluate` like any column's, its place in the window's verdicts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from monitor.drift import ColumnSpec, EngineSettings, build_profile, embedding, evaluate, unusable_columns
from monitor.drift.vectors import vector_values

F32 = np.float32


def _frame(x: np.ndarray, **other: object) -> pd.DataFrame:
    return pd.DataFrame({"v": [list(map(float, row)) for row in x], **other})


# -- cells to a matrix -----------------------------------------------------------------------------


def test_lists_arrays_and_json_text_are_vectors() -> None:
    vals = vector_values(pd.Series([[1, 2], np.array([3.0, 4.0]), "[5, 6]", (7, 8)], dtype=object), 2)
    assert vals.matrix.tolist() == [[1, 2], [3, 4], [5, 6], [7, 8]]


def test_none_and_nan_are_missing() -> None:
    vals = vector_values(pd.Series([[1, 2], None, float("nan")], dtype=object), 2)
    assert (vals.n, vals.missing, vals.wrong_type) == (3, 2, 0)


@pytest.mark.parametrize("cell", [[1, 2, 3], [1, float("nan")], [1, float("inf")], ["a", "b"], "not json", 4.0, "[1, null]", [],
                                  [[1, 2], [3, 4]], "[[1, 2], [3, 4]]"])
def test_a_cell_that_is_no_vector_of_the_columns_length_is_a_wrong_type(cell: object) -> None:
    vals = vector_values(pd.Series([[1, 2], cell], dtype=object), 2)
    assert (vals.matrix.shape[0], vals.wrong_type) == (1, 1)


def test_without_dimensions_the_first_vector_sets_the_width() -> None:
    vals = vector_values(pd.Series([None, [1, 2, 3], [1, 2]], dtype=object), None)
    assert (vals.matrix.shape, vals.wrong_type) == ((1, 3), 1)


# -- through the engine ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((3000, 16)).astype(F32)


def test_the_columns_p_value_is_the_detectors(reference: np.ndarray) -> None:
    window = np.random.default_rng(1).standard_normal((400, 16)).astype(F32)
    f = evaluate(build_profile(_frame(reference), [ColumnSpec("v", "embedding")]), _frame(window)).features["v"]
    assert f.p_value == pytest.approx(embedding.test(embedding.profile(reference), window, 0.01).p_value, rel=1e-9)


def test_an_embedding_column_is_a_test_at_the_windows_level(reference: np.ndarray) -> None:
    f = evaluate(build_profile(_frame(reference), [ColumnSpec("v", "embedding")]), _frame(reference[:300])).features["v"]
    assert (f.kind, f.method, f.is_test, f.threshold) == ("embedding", "embedding", True, EngineSettings().level)


def test_a_shift_in_three_of_sixty_four_dimensions_drifts_in_every_window() -> None:
    rng = np.random.default_rng(4)
    profile = build_profile(_frame(rng.standard_normal((5000, 64)).astype(F32)), [ColumnSpec("v", "embedding")])
    flagged = 0
    for _ in range(20):
        window = rng.standard_normal((500, 64)).astype(F32)
        window[:, [3, 17, 40]] += 0.4
        flagged += evaluate(profile, _frame(window)).features["v"].drifted
    assert flagged == 20


def test_the_shifted_dimensions_are_named_first() -> None:
    rng = np.random.default_rng(5)
    profile = build_profile(_frame(rng.standard_normal((5000, 64)).astype(F32)), [ColumnSpec("v", "embedding")])
    window = rng.standard_normal((500, 64)).astype(F32)
    window[:, [3, 17, 40]] += 0.6
    top = evaluate(profile, _frame(window)).features["v"].details["top_dimensions"]
    assert {d["dimension"] for d in top[:3]} == {3, 17, 40}


AA_REPS = 600


def test_unchanged_windows_drift_at_most_at_the_level_beside_other_columns() -> None:
    """The engine's verdict (BH across the window's columns, then the level 0.01) on windows from
    the reference's distribution, with constant and sparse dimensions: the binomial 0.999 bound."""
    rng = np.random.default_rng(6)

    def draw(n: int) -> pd.DataFrame:
        x = rng.standard_normal((n, 24)).astype(F32)
        x[:, :4] = 0.25
        x[:, 4] = (rng.random(n) < 0.003).astype(F32)
        return _frame(x, n=rng.normal(size=n))

    profile = build_profile(draw(4000), [ColumnSpec("v", "embedding"), ColumnSpec("n", "numeric")])
    drifted = sum(evaluate(profile, draw(200)).features["v"].drifted for _ in range(AA_REPS))
    assert drifted <= stats.binom.ppf(0.999, AA_REPS, 0.01)


def test_the_window_enters_the_multiple_testing_correction(reference: np.ndarray) -> None:
    rng = np.random.default_rng(7)
    frame = _frame(reference, a=rng.normal(size=3000), b=rng.normal(size=3000))
    profile = build_profile(frame, [ColumnSpec("v", "embedding"), ColumnSpec("a", "numeric"), ColumnSpec("b", "numeric")])
    f = evaluate(profile, _frame(reference[:300], a=rng.normal(size=300), b=rng.normal(size=300))).features["v"]
    assert f.adjusted_p_value is not None and f.adjusted_p_value >= f.p_value


def test_a_window_of_numbers_where_vectors_belong_is_a_changed_type(reference: np.ndarray) -> None:
    profile = build_profile(_frame(reference), [ColumnSpec("v", "embedding")])
    f = evaluate(profile, pd.DataFrame({"v": [1.0] * 50})).features["v"]
    assert (f.drifted, f.details.get("type_changed")) == (True, True)


def test_a_window_of_one_vector_is_untested_and_says_why(reference: np.ndarray) -> None:
    f = evaluate(build_profile(_frame(reference), [ColumnSpec("v", "embedding")]), _frame(reference[:1])).features["v"]
    assert f.untested == "the window has 1 vector(s): the embedding test needs at least 2"


def test_a_reference_without_vectors_is_unusable() -> None:
    profile = build_profile(pd.DataFrame({"v": [None, "x"]}), [ColumnSpec("v", "embedding", dimensions=4)])
    assert unusable_columns(profile) == {"v": "finite vector of 4 numbers"}


def test_a_small_reference_leaves_the_column_untested_with_the_reason() -> None:
    small = np.random.default_rng(8).standard_normal((10, 4)).astype(F32)
    f = evaluate(build_profile(_frame(small), [ColumnSpec("v", "embedding")]), _frame(small)).features["v"]
    assert f.untested == "the reference has 10 vectors: the embedding test needs at least 20"


def test_the_result_is_json(reference: np.ndarray) -> None:
    result = evaluate(build_profile(_frame(reference), [ColumnSpec("v", "embedding")]), _frame(reference[:300]))
    assert json.loads(json.dumps(result.to_dict()))["features"]["v"]["method"] == "embedding"
