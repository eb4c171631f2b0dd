"""A model's performance profile: what its labelled reference says, and how to judge a window by it.

Built once per model from the reference (`PerformanceProfile.from_reference`), it holds the
reference's metric values, the CBPE calibrators and the bootstrap state of the thresholds; the
runtime calls `evaluate` per window with the window's output frame (for the estimate) and the
window's labelled records (for the realized value). The result is a plain, JSON-safe record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from monitor.core import performance_metrics
from monitor.core.config import PerformanceConfig
from monitor.performance.cbpe import CBPE, ESTIMABLE
from monitor.performance.metrics import (
    class_key,
    class_keys,
    classification_batch,
    classification_metrics,
    complete_binary,
    encode,
    regression_batch,
    regression_metrics,
)
from monitor.performance.result import PerformanceResult
from monitor.performance.threshold import BootstrapThreshold

__all__ = ["LabelledRecords", "PerformanceProfile", "PerformanceResult"]

_REALIZED, _ESTIMATED = 1, 2


@dataclass(frozen=True)
class LabelledRecords:
    """The window's records that have a label: raw label and predicted values as captured, and the
    model's probabilities (columns in the order of `config.probabilities`) or None."""

    labels: Sequence[Any]
    predictions: Sequence[Any]
    probabilities: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]], config: PerformanceConfig) -> LabelledRecords:
        """From the runtime's stored rows {"label", "prediction", "probabilities": [..] | None}; a row
        without probabilities gets NaN ones (left out of the probability metrics only)."""
        rows = list(rows)
        probabilities = None
        if config.probabilities:
            width = len(config.probabilities)
            probabilities = np.full((len(rows), width), np.nan)
            for i, row in enumerate(rows):
                p = row.get("probabilities")
                if p is not None:
                    if len(p) != width:
                        raise ValueError(f"labelled row {i} has {len(p)} probabilities, the config names {width}")
                    probabilities[i] = [np.nan if v is None else float(v) for v in p]
        return cls([row.get("label") for row in rows], [row.get("prediction") for row in rows], probabilities)


# The bootstraps' statistics: (B, m) reference indices -> (B,) values of the headline metric. Classes,
# not closures, so a profile pickles (the monitor profiles in a child process: monitor.runtime.profiling).
@dataclass(frozen=True, eq=False)
class _RealizedRegression:
    headline: str
    y: np.ndarray
    pred: np.ndarray

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        return regression_batch([self.headline], self.y[idx], self.pred[idx])[self.headline]


@dataclass(frozen=True, eq=False)
class _Realized:
    headline: str
    y: np.ndarray
    pred: np.ndarray
    n_codes: int
    scores: np.ndarray | None
    """The probabilities when the metric needs them."""

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        proba = self.scores[idx] if self.scores is not None else None
        return classification_batch([self.headline], self.y[idx], self.pred[idx], self.n_codes, proba)[self.headline]


@dataclass(frozen=True, eq=False)
class _Estimated:
    headline: str
    cbpe: CBPE
    pred: np.ndarray
    scores: np.ndarray
    calibrated: np.ndarray
    n_codes: int

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        h = self.headline
        return self.cbpe.estimate_batch([h], self.pred[idx], self.scores[idx], self.calibrated[idx], self.n_codes)[h]


class PerformanceProfile:
    """The labelled reference of one model, ready to judge windows (see module docstring)."""

    def __init__(self, config: PerformanceConfig, classes: list[str], y: np.ndarray, pred: np.ndarray,
                 scores: np.ndarray | None, reference: dict[str, float], n_reference: int) -> None:
        self.config = config
        self.headline = config.headline
        self.spec = performance_metrics.METRICS[self.headline]
        self.classes = classes
        self.n_probability_classes = 0 if scores is None else scores.shape[1]
        self.reference = reference
        self.n_reference = n_reference
        self.cbpe: CBPE | None = None
        self.reference_estimated: dict[str, float] | None = None
        self.threshold_estimated: BootstrapThreshold | None = None
        common: dict[str, Any] = {"higher_is_better": self.spec.higher_is_better, "false_alarm_rate": config.false_alarm_rate,
                  "resamples": config.resamples, "seed": config.seed}
        h = self.headline
        n_codes = len(classes)
        realized: _Realized | _RealizedRegression
        if config.task == "regression":
            realized = _RealizedRegression(h, y, pred)
        else:
            realized = _Realized(h, y, pred, n_codes, scores if self.spec.needs_probabilities else None)
        self.threshold_realized = BootstrapThreshold(realized, n_reference, reference[h], purpose=_REALIZED,
                                                     width=n_codes + 1, **common)
        if scores is not None:
            cbpe = self.cbpe = CBPE.fit(y, scores)
            calibrated = cbpe.calibrate(scores)
            self.reference_estimated = cbpe.estimate(pred, scores, n_codes)
            if h in ESTIMABLE:
                estimated = _Estimated(h, cbpe, pred, scores, calibrated, n_codes)
                self.threshold_estimated = BootstrapThreshold(estimated, n_reference, self.reference_estimated[h],
                                                              purpose=_ESTIMATED, width=3 * n_codes, **common)

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def from_reference(cls, frame: pd.DataFrame, config: PerformanceConfig) -> PerformanceProfile:
        """Reference metrics, calibrators and threshold state from the labelled reference frame.

        Raises ValueError naming a missing column, a label class without a probability column, a
        binary single-column model whose reference does not show exactly one other class, or a
        reference with fewer usable labelled rows than `min_labels`."""
        needed = {config.label_column: "performance.label_column", config.prediction: "performance.prediction"}
        needed.update({col: f"performance.probabilities[{c!r}]" for c, col in config.probabilities.items()})
        for col, where in needed.items():
            if col not in frame.columns:
                raise ValueError(f"the reference has no column {col!r} (named by {where}); it has {sorted(map(str, frame.columns))}")
        if config.task == "regression":
            y = pd.to_numeric(frame[config.label_column], errors="coerce").to_numpy(float)
            p = pd.to_numeric(frame[config.prediction], errors="coerce").to_numpy(float)
            ok = np.isfinite(y) & np.isfinite(p)
            cls._enough(int(ok.sum()), config)
            got = regression_batch(performance_metrics.names_for("regression"), y[ok][None], p[ok][None])
            return cls(config, [], y[ok], p[ok], None, {m: float(v[0]) for m, v in got.items()}, int(ok.sum()))
        y_keys, y_ok = class_keys(frame[config.label_column])
        p_keys, p_ok = class_keys(frame[config.prediction])
        ok = y_ok & p_ok
        cls._enough(int(ok.sum()), config)
        scores = None
        classes: list[str] = []
        if config.probabilities:
            scores, classes = cls._probabilities(frame, config, set(y_keys[ok]) | set(p_keys[ok]))
            ok &= np.isfinite(scores).all(axis=1)
            scores = scores[ok]
            unknown = sorted(set(y_keys[ok]) - set(classes))
            if unknown:
                raise ValueError(f"class {unknown[0]!r} appears in the reference labels ({config.label_column!r}) "
                                 "but has no column in performance.probabilities")
        else:
            classes = sorted(set(y_keys[ok]) | set(p_keys[ok]))
        cls._enough(int(ok.sum()), config)
        y = encode(y_keys[ok], classes)
        pred = encode(p_keys[ok], classes)
        realized = classification_metrics(y_keys[ok], p_keys[ok], scores, classes if scores is not None else None)
        return cls(config, classes, y, pred, scores, realized.values, int(ok.sum()))

    @staticmethod
    def _enough(n: int, config: PerformanceConfig) -> None:
        if n < config.min_labels:
            raise ValueError(f"the reference has {n} rows with both a label and a prediction; "
                             f"performance needs at least min_labels={config.min_labels}")

    @staticmethod
    def _probabilities(frame: pd.DataFrame, config: PerformanceConfig, seen: set[str]) -> tuple[np.ndarray, list[str]]:
        """The (n, K) probability matrix in the profile's class order, and those classes."""
        classes = [class_key(c) for c in config.probabilities]
        columns = list(config.probabilities.values())
        for col in columns:
            if not pd.api.types.is_numeric_dtype(frame[col]):
                raise ValueError(f"probability column {col!r} is not numeric")
        raw = frame[columns].to_numpy(dtype=float)
        if len(classes) == 1:
            others = sorted(seen - set(classes))
            if len(others) != 1:
                raise ValueError(f"performance.probabilities names one class ({classes[0]!r}), so the model is binary, "
                                 f"but the reference's labels and predictions hold {len(others)} other classes {others}: "
                                 "expected exactly one")
            return complete_binary(raw), [others[0], classes[0]]
        return raw, classes

    # -- judging a window ----------------------------------------------------------------------

    def _window_scores(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, int]:
        """The window's predicted codes and probabilities (rows with both), and the code count."""
        cfg = self.config
        for col in [cfg.prediction, *cfg.probabilities.values()]:
            if col not in frame.columns:
                raise ValueError(f"the window has no column {col!r}")
        keys, ok = class_keys(frame[cfg.prediction])
        raw = frame[list(cfg.probabilities.values())].apply(pd.to_numeric, errors="coerce").to_numpy(float)
        scores = complete_binary(raw) if raw.shape[1] == 1 else raw
        ok &= np.isfinite(scores).all(axis=1)
        classes = list(self.classes)
        pred = encode(keys[ok], classes)
        return pred, scores[ok], len(classes)

    def _labelled_probabilities(self, labelled: LabelledRecords) -> np.ndarray | None:
        if labelled.probabilities is None or self.n_probability_classes == 0:
            return None
        p = np.asarray(labelled.probabilities, dtype=float)
        return complete_binary(p) if p.ndim == 1 or p.shape[1] == 1 else p

    def evaluate(self, window: pd.DataFrame, labelled: LabelledRecords | None) -> PerformanceResult:
        """The window's estimate (from its outputs) and realized performance (from its labelled records),
        each judged against its own threshold at the window's size."""
        unlabelled = PerformanceResult(
            metric=self.headline, direction="higher_is_better" if self.spec.higher_is_better else "lower_is_better",
            n_records=len(window), n_labelled=0, coverage=None, realized=None, per_class=None,
            reference=dict(self.reference), threshold_realized=None, realized_degraded=None, **self._estimate(window),
        )
        return self.realize(unlabelled, labelled)

    def realize(self, previous: PerformanceResult, labelled: LabelledRecords | None) -> PerformanceResult:
        """`previous` (a window's result) with its realized part computed again from `labelled`, the
        window's labelled records so far; the estimate, made before labels, is kept as it was."""
        h = self.headline
        realized = per_class = threshold_realized = realized_degraded = None
        n_labelled = n_excluded = 0
        if labelled is not None and len(labelled):
            if self.config.task == "regression":
                r = regression_metrics(labelled.labels, labelled.predictions)
            else:
                proba = self._labelled_probabilities(labelled)
                r = classification_metrics(labelled.labels, labelled.predictions, proba,
                                           self.classes[: self.n_probability_classes] if proba is not None else None)
                per_class = tuple({"class": row.label, "precision": row.precision, "recall": row.recall, "f1": row.f1,
                                   "support": row.support} for row in r.per_class)
            n_labelled, n_excluded = r.n_used, r.n_excluded
            if n_labelled:
                realized = r.values
            if realized is not None and h in realized and n_labelled >= self.config.min_labels:
                threshold_realized = self.threshold_realized.at(n_labelled)
                realized_degraded = self.threshold_realized.degraded(realized[h], n_labelled)
        n = previous.n_records
        return replace(previous, n_labelled=n_labelled, coverage=n_labelled / n if n else None, realized=realized,
                       per_class=per_class, threshold_realized=threshold_realized, realized_degraded=realized_degraded,
                       n_excluded=n_excluded)

    def _estimate(self, window: pd.DataFrame) -> dict[str, Any]:
        """CBPE's estimate of the window, its band and judgement (all None without probabilities)."""
        h = self.headline
        estimated = band = threshold_estimated = estimated_degraded = None
        if self.cbpe is not None:
            pred, scores, n_codes = self._window_scores(window)
            if len(pred):
                estimated = self.cbpe.estimate(pred, scores, n_codes)
                if h in ESTIMABLE:
                    band = self.cbpe.band(h, pred, scores, n_codes, seed=[self.config.seed, len(pred)])
            if self.threshold_estimated is not None and estimated is not None and len(pred) >= self.config.min_labels:
                threshold_estimated = self.threshold_estimated.at(len(pred))
                estimated_degraded = self.threshold_estimated.degraded(estimated[h], len(pred))
        return {"estimated": estimated, "band": band, "threshold_estimated": threshold_estimated,
                "estimated_degraded": estimated_degraded}
