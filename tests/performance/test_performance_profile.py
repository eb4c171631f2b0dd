"""PerformanceProfile: clear errors on a bad reference, labelled rows as the runtime stores them,
a JSON round trip, and the fields a window's result carries."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from monitor.core.config import PerformanceConfig
from monitor.performance.profile import LabelledRecords, PerformanceProfile, PerformanceResult
from tests.infra.performance_data import binary, binary_config, labelled, multiclass, multiclass_config


@pytest.fixture(scope="module")
def profile() -> PerformanceProfile:
    return PerformanceProfile.from_reference(binary(np.random.default_rng(0), 2000), binary_config(resamples=200))


def test_missing_column_is_named() -> None:
    frame = binary(np.random.default_rng(1), 200).drop(columns=["score"])
    with pytest.raises(ValueError, match="'score'"):
        PerformanceProfile.from_reference(frame, binary_config())


def test_label_class_without_probability_is_named() -> None:
    frame = multiclass(np.random.default_rng(2), 300)
    frame.loc[:5, "label"] = "z"
    with pytest.raises(ValueError, match="'z'"):
        PerformanceProfile.from_reference(frame, multiclass_config())


def test_binary_single_column_needs_exactly_one_other_class() -> None:
    frame = binary(np.random.default_rng(3), 300)
    frame.loc[:5, "label"] = 7
    with pytest.raises(ValueError, match="exactly one"):
        PerformanceProfile.from_reference(frame, binary_config())


def test_too_few_labelled_reference_rows() -> None:
    frame = binary(np.random.default_rng(4), 300)
    frame["label"] = np.nan
    with pytest.raises(ValueError, match="min_labels"):
        PerformanceProfile.from_reference(frame, binary_config())


def test_from_rows_as_the_runtime_stores_them() -> None:
    rows = [{"label": 1, "prediction": "1", "probabilities": [0.9]}, {"label": 0.0, "prediction": 1, "probabilities": None}]
    records = LabelledRecords.from_rows(rows, binary_config())
    assert records.labels == [1, 0.0]
    assert np.isnan(records.probabilities[1, 0])


def test_result_round_trips_through_json(profile: PerformanceProfile) -> None:
    window = binary(np.random.default_rng(5), 300)
    result = profile.evaluate(window, labelled(window, profile.config))
    again = PerformanceResult.from_dict(json.loads(json.dumps(result.to_dict(), allow_nan=False)))
    assert again.to_dict() == result.to_dict()


def test_window_without_labels_is_estimated_but_not_realized(profile: PerformanceProfile) -> None:
    result = profile.evaluate(binary(np.random.default_rng(6), 300), None)
    assert result.realized is None
    assert result.realized_degraded is None
    assert result.estimated_degraded is not None


def test_too_few_labels_are_not_judged(profile: PerformanceProfile) -> None:
    window = binary(np.random.default_rng(7), 300)
    result = profile.evaluate(window, labelled(window.iloc[:20], profile.config))
    assert result.n_labelled == 20
    assert result.threshold_realized is None


def test_coverage_is_the_labelled_share(profile: PerformanceProfile) -> None:
    window = binary(np.random.default_rng(8), 400)
    assert profile.evaluate(window, labelled(window.iloc[:100], profile.config)).coverage == 0.25


def test_regression_is_realized_only() -> None:
    rng = np.random.default_rng(9)
    y = rng.normal(10, 2, 1000)
    frame = pd.DataFrame({"yhat": y + rng.normal(0, 1, 1000), "label": y})
    config = PerformanceConfig(task="regression", prediction="yhat", resamples=200)
    prof = PerformanceProfile.from_reference(frame, config)
    worse = LabelledRecords(list(y[:300]), list(y[:300] + rng.normal(0, 2, 300)))
    result = prof.evaluate(frame.iloc[:300], worse)
    assert result.estimated is None
    assert result.realized_degraded is True


def test_an_empty_window_is_neither_estimated_nor_realized(profile: PerformanceProfile) -> None:
    result = profile.evaluate(binary(np.random.default_rng(9), 300).iloc[:0], None)
    assert (result.n_records, result.estimated, result.realized, result.coverage) == (0, None, None, None)


def test_realize_keeps_the_estimate_made_before_labels(profile: PerformanceProfile) -> None:
    window = binary(np.random.default_rng(10), 400)
    before = profile.evaluate(window, None)
    after = profile.realize(before, labelled(window.iloc[:200], profile.config))
    assert (after.estimated, after.band, after.estimated_degraded) == (before.estimated, before.band, before.estimated_degraded)


def test_realize_matches_evaluating_with_the_labels(profile: PerformanceProfile) -> None:
    window = binary(np.random.default_rng(11), 400)
    labels = labelled(window.iloc[:200], profile.config)
    assert profile.realize(profile.evaluate(window, None), labels) == profile.evaluate(window, labels)
