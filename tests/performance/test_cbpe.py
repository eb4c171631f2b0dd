"""CBPE: the calibrator is scikit-learn's isotonic regression, the estimates are NannyML's formulas,
and on calibrated data the band covers the realized value as often as it says."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from monitor.performance.cbpe import CBPE, IsotonicCalibrator
from monitor.performance.profile import PerformanceProfile
from tests.infra.performance_data import binary, binary_config, labelled, multiclass, multiclass_config


def test_isotonic_calibrator_equals_sklearn() -> None:
    rng = np.random.default_rng(0)
    s = np.round(rng.random(2000), 2)
    y = (rng.random(2000) < s**2).astype(float)
    ours = IsotonicCalibrator.fit(s, y)
    theirs = IsotonicRegression(out_of_bounds="clip").fit(s, y)
    grid = np.linspace(-0.1, 1.1, 301)
    assert ours(grid) == pytest.approx(theirs.predict(grid))


def test_calibrated_multiclass_probabilities_sum_to_one() -> None:
    frame = multiclass(np.random.default_rng(1), 2000)
    proba = frame[["p_a", "p_b", "p_c"]].to_numpy()
    y = frame["label"].map({"a": 0, "b": 1, "c": 2}).to_numpy()
    assert CBPE.fit(y, proba).calibrate(proba).sum(axis=1) == pytest.approx(np.ones(2000))


def test_calibration_corrects_an_overconfident_model() -> None:
    rng = np.random.default_rng(2)
    frame = binary(rng, 5000, concept_shift=0.5)
    profile = PerformanceProfile.from_reference(frame, binary_config())
    window = binary(rng, 5000, concept_shift=0.5)
    result = profile.evaluate(window, labelled(window, binary_config()))
    assert result.estimated["accuracy"] == pytest.approx(result.realized["accuracy"], abs=0.02)


@pytest.mark.slow
@pytest.mark.parametrize(("make", "config", "metric"), [
    (binary, binary_config, "roc_auc"), (binary, binary_config, "f1_macro"),
    (multiclass, multiclass_config, "accuracy"), (multiclass, multiclass_config, "roc_auc"),
])
def test_band_covers_the_realized_value(make, config, metric: str) -> None:
    """200 windows of 500: a 95% band must cover at least 91% (the binomial 99.9% lower bound at
    95% is 90.5%; a 90% band would cover about 90% and fail)."""
    cfg = config(metric=metric, resamples=100)
    rng = np.random.default_rng(3)
    profile = PerformanceProfile.from_reference(make(rng, 5000), cfg)
    covered = 0
    for _ in range(200):
        window = make(rng, 500)
        r = profile.evaluate(window, labelled(window, cfg))
        covered += r.band[0] <= r.realized[metric] <= r.band[1]
    assert covered / 200 >= 0.91


def test_estimate_follows_a_covariate_shift() -> None:
    """x moved towards the decision boundary: fewer confident records, lower accuracy, and the
    estimate sees it without labels."""
    rng = np.random.default_rng(4)
    cfg = binary_config(metric="accuracy")
    profile = PerformanceProfile.from_reference(binary(rng, 5000, covariate_shift=1.0), cfg)
    window = binary(rng, 2000)
    result = profile.evaluate(window, labelled(window, cfg))
    assert result.estimated["accuracy"] == pytest.approx(result.realized["accuracy"], abs=0.03)
    assert result.estimated_degraded is True
