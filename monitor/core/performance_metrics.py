"""The one list of model-performance metrics: each declared once, everything else derived from it.

Config validation (`performance.metric`), the statistics (`monitor.performance.metrics`), the
exporter's `metric` label, the dashboards and docs/performance.md read this module. It sits in the
bottom layer beside the config schema, so it imports nothing heavy: plain declarations only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Task = Literal["classification", "regression"]
TASKS: tuple[Task, ...] = ("classification", "regression")

__all__ = ["METRICS", "TASKS", "PerformanceMetric", "Task", "default_metric", "names_for"]


@dataclass(frozen=True)
class PerformanceMetric:
    name: str
    task: Task
    higher_is_better: bool
    needs_probabilities: bool
    """Computed only when the model's output declares class probabilities."""
    estimable: bool
    """Estimated before labels arrive (CBPE, from calibrated probabilities)."""
    doc: str


METRICS: Mapping[str, PerformanceMetric] = MappingProxyType({m.name: m for m in (
    PerformanceMetric("accuracy", "classification", True, False, True, "share of records whose predicted class is the label"),
    PerformanceMetric("precision_macro", "classification", True, False, True, "precision of each class, averaged over classes"),
    PerformanceMetric("recall_macro", "classification", True, False, True, "recall of each class, averaged over classes"),
    PerformanceMetric("f1_macro", "classification", True, False, True, "F1 of each class, averaged over classes"),
    PerformanceMetric("roc_auc", "classification", True, True, True,
                      "area under the ROC curve (binary), or one-vs-rest averaged over classes"),
    PerformanceMetric("log_loss", "classification", False, True, False, "mean negative log-likelihood of the label"),
    PerformanceMetric("calibration_error", "classification", False, True, False,
                      "expected calibration error of the predicted class's probability (10 equal-width bins)"),
    PerformanceMetric("mae", "regression", False, False, False, "mean absolute error"),
    PerformanceMetric("rmse", "regression", False, False, False, "root mean squared error"),
    PerformanceMetric("mape", "regression", False, False, False, "mean absolute percentage error (labels of 0 excluded)"),
    PerformanceMetric("r2", "regression", True, False, False, "coefficient of determination"),
)})


def names_for(task: Task, *, probabilities: bool = True) -> tuple[str, ...]:
    """The metrics a model of `task` gets (those needing probabilities only when it has them)."""
    return tuple(m.name for m in METRICS.values() if m.task == task and (probabilities or not m.needs_probabilities))


def default_metric(task: Task, *, probabilities: bool) -> str:
    """The headline metric when the config names none: ROC AUC with probabilities, else accuracy; MAE for regression."""
    if task == "regression":
        return "mae"
    return "roc_auc" if probabilities else "accuracy"
