"""Realized metrics equal scikit-learn's, on random data and on the edge cases a window hits."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from monitor.performance.metrics import (
    class_key,
    class_keys,
    classification_metrics,
    complete_binary,
    regression_metrics,
)


def _dirichlet(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return rng.dirichlet(np.ones(k), n)


def _data(seed: int, n: int, classes: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    proba = _dirichlet(rng, n, len(classes))
    y = np.array([classes[rng.choice(len(classes), p=p)] for p in proba], dtype=object)
    pred = np.array(classes, dtype=object)[proba.argmax(axis=1)]
    noisy = rng.random(n) < 0.2
    pred[noisy] = rng.choice(classes, noisy.sum())
    return y, pred, proba


def _sk_auc_ovr_present(y: np.ndarray, proba: np.ndarray, classes: list[str]) -> float:
    return float(np.mean([skm.roc_auc_score(y == c, proba[:, j]) for j, c in enumerate(classes) if 0 < (y == c).sum() < len(y)]))


def _ece_loop(y: np.ndarray, pred: np.ndarray, proba: np.ndarray, classes: list[str]) -> float:
    conf = np.array([proba[i, classes.index(p)] for i, p in enumerate(pred)])
    total = 0.0
    for b in range(10):
        lo, hi = b / 10, (b + 1) / 10
        inside = (conf >= lo) & ((conf < hi) if b < 9 else (conf <= hi))
        if inside.any():
            total += inside.sum() / len(y) * abs((y[inside] == pred[inside]).mean() - conf[inside].mean())
    return total


@pytest.mark.parametrize("classes", [["0", "1"], ["a", "b", "c"], ["a", "b", "c", "d", "e"]])
@pytest.mark.parametrize("seed", [0, 1])
def test_classification_metrics_equal_sklearn(classes: list[str], seed: int) -> None:
    y, pred, proba = _data(seed, 400, classes)
    got = classification_metrics(y, pred, proba, classes).values
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["precision_macro"] == pytest.approx(skm.precision_score(y, pred, average="macro", zero_division=0))
    assert got["recall_macro"] == pytest.approx(skm.recall_score(y, pred, average="macro", zero_division=0))
    assert got["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro", zero_division=0))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=classes))
    if len(classes) == 2:
        assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y == classes[1], proba[:, 1]))
    else:
        assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes))
    assert got["calibration_error"] == pytest.approx(_ece_loop(y, pred, proba, classes))


def test_per_class_table_equals_sklearn() -> None:
    classes = ["a", "b", "c"]
    y, pred, proba = _data(3, 300, classes)
    rows = classification_metrics(y, pred, proba, classes).per_class
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=classes, zero_division=0)
    assert [row.label for row in rows] == classes
    assert [row.precision for row in rows] == pytest.approx(p)
    assert [row.recall for row in rows] == pytest.approx(r)
    assert [row.f1 for row in rows] == pytest.approx(f)
    assert [row.support for row in rows] == list(s)


def test_class_absent_from_the_window_is_left_out_of_the_macro_average_like_sklearn() -> None:
    classes = ["a", "b", "c"]
    y, pred, proba = _data(4, 300, classes)
    keep = (y != "c") & (pred != "c")
    y, pred, proba = y[keep], pred[keep], proba[keep]
    got = classification_metrics(y, pred, proba, classes).values
    assert got["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro", zero_division=0))
    assert got["precision_macro"] == pytest.approx(skm.precision_score(y, pred, average="macro", zero_division=0))
    assert got["roc_auc"] == pytest.approx(_sk_auc_ovr_present(y, proba, classes))


def test_class_only_in_labels_counts_with_zero_precision_like_sklearn() -> None:
    classes = ["a", "b", "c"]
    y, pred, proba = _data(5, 300, classes)
    pred = np.where(pred == "c", "a", pred)
    got = classification_metrics(y, pred, proba, classes).values
    assert got["precision_macro"] == pytest.approx(skm.precision_score(y, pred, average="macro", zero_division=0))
    assert got["recall_macro"] == pytest.approx(skm.recall_score(y, pred, average="macro", zero_division=0))


def test_all_predictions_one_class() -> None:
    classes = ["0", "1"]
    y, _, proba = _data(6, 200, classes)
    pred = np.full(len(y), "1", dtype=object)
    got = classification_metrics(y, pred, proba, classes).values
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro", zero_division=0))
    assert got["precision_macro"] == pytest.approx(skm.precision_score(y, pred, average="macro", zero_division=0))


def test_roc_auc_is_nan_when_the_labels_hold_one_class() -> None:
    classes = ["0", "1"]
    _, pred, proba = _data(7, 100, classes)
    got = classification_metrics(np.full(100, "1", dtype=object), pred, proba, classes).values
    assert np.isnan(got["roc_auc"])


def test_missing_labels_and_predictions_are_excluded_and_counted() -> None:
    classes = ["0", "1"]
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 300).astype(float)
    pred = rng.integers(0, 2, 300).astype(object)
    proba = complete_binary(rng.random(300))
    y[:10] = np.nan
    pred[290:] = None
    result = classification_metrics(y, pred, proba, classes)
    keep = np.arange(300)[10:290]
    assert result.n_excluded == 20
    assert result.n_used == 280
    assert result.values["accuracy"] == pytest.approx(skm.accuracy_score(y[keep].astype(int), pred[keep].astype(int)))
    assert result.values["roc_auc"] == pytest.approx(skm.roc_auc_score(y[keep].astype(int), proba[keep, 1]))


def test_missing_probability_leaves_only_the_probability_metrics() -> None:
    classes = ["0", "1"]
    y, pred, proba = _data(9, 200, classes)
    proba[:5] = np.nan
    got = classification_metrics(y, pred, proba, classes).values
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y[5:], proba[5:], labels=classes))


def test_empty_window_gives_nan_not_an_error() -> None:
    got = classification_metrics([], [], np.zeros((0, 2)), ["0", "1"]).values
    assert all(np.isnan(v) for v in got.values())


def test_binary_single_column_complement() -> None:
    assert complete_binary(np.array([0.2, 0.9])).ravel().tolist() == pytest.approx([0.8, 0.2, 0.1, 0.9])


@pytest.mark.parametrize(("value", "key"), [(1, "1"), (1.0, "1"), (np.int64(2), "2"), (np.float32(3.0), "3"),
                                            (True, "true"), (np.bool_(False), "false"), ("1", "1"), ("cat", "cat"),
                                            (0.5, "0.5")])
def test_class_key(value: object, key: str) -> None:
    assert class_key(value) == key


def test_class_keys_of_arrays_match_the_scalar_function() -> None:
    values = [np.array([1.0, 2.0, 0.5]), np.array([1, 2]), np.array([True, False]), np.array(["1", "x"], dtype=object)]
    for arr in values:
        assert class_keys(arr)[0].tolist() == [class_key(v) for v in arr]


def test_labels_as_floats_match_predictions_as_strings() -> None:
    result = classification_metrics([1.0, 0.0, 1.0], ["1", "0", "0"])
    assert result.values["accuracy"] == pytest.approx(2 / 3)


def test_regression_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(10)
    y = rng.normal(5, 2, 500)
    y[:20] = 0.0
    p = y + rng.normal(0, 1, 500)
    got = regression_metrics(y, p).values
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, p))
    assert got["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))
    assert got["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y[20:], p[20:]))
    assert got["r2"] == pytest.approx(skm.r2_score(y, p))


def test_regression_nan_excluded_and_constant_labels_like_sklearn() -> None:
    y = np.array([2.0, 2.0, np.nan, 2.0])
    p = np.array([1.0, 3.0, 2.0, np.nan])
    result = regression_metrics(y, p)
    assert result.n_excluded == 2
    assert result.values["r2"] == skm.r2_score([2.0, 2.0], [1.0, 3.0])
