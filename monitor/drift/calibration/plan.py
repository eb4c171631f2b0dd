"""What is calibrated for: the false-alarm budget and the model's windows as calibration sees them.

Both are duck-typed from `monitor.core.config` objects (this package imports no config).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from monitor.drift.spec import EngineSettings

Progress = Callable[[int, int], None]
"""Called with (done, total) as a long computation advances."""


@dataclass(frozen=True)
class WindowPlan:
    """A model's windows as calibration sees them: rows per window, new rows per evaluation, and
    seconds between evaluations."""

    records: int
    step: int
    interval: float

    def __post_init__(self) -> None:
        if self.records < 1 or self.step < 1 or not self.interval > 0:
            raise ValueError(f"window plan needs records >= 1, step >= 1, interval > 0; got {self}")

    @property
    def overlap(self) -> int:
        """Evaluations a record stays in the window (1: no overlap)."""
        return max(1, round(self.records / self.step))

    def windows_per(self, period: float) -> float:
        return period / self.interval


@dataclass(frozen=True)
class BudgetSpec:
    """`alarms` false alerts per `period` seconds for a model, and the practical-size gate."""

    alarms: float = 1.0
    period: float = 30 * 86400.0
    min_effect_numeric: float = EngineSettings.min_effect_numeric
    min_effect_categorical: float = EngineSettings.min_effect_categorical
    resamples: int = 500
    seed: int = 0

    @classmethod
    def from_config(cls, budget: Any, settings: EngineSettings) -> BudgetSpec:
        """From a `monitor.core.config.FalseAlarmBudget` (duck-typed: this package imports no config);
        an unset minimum effect is the drift policy's (`settings`), so one number gates both paths."""
        numeric, categorical = budget.min_effect_numeric, budget.min_effect_categorical
        return cls(
            alarms=float(budget.alarms),
            period=float(budget.period),
            min_effect_numeric=float(settings.min_effect_numeric if numeric is None else numeric),
            min_effect_categorical=float(settings.min_effect_categorical if categorical is None else categorical),
            resamples=int(budget.resamples),
            seed=int(budget.seed),
        )


def plan_from_config(window: Any, budget: Any) -> WindowPlan:
    """The window plan of a `WindowConfig` and `FalseAlarmBudget`.

    A count window of `records` rows evaluated every `step` rows needs the traffic rate to know how
    often that is (`expected_records_per_second`), unless `step_duration` fixes the interval; a
    time-only window needs the rate to know its size. Raises ValueError naming the missing setting.
    """
    rate = getattr(budget, "expected_records_per_second", None)
    need = "set false_alarm_budget.expected_records_per_second (the model's typical traffic)"
    if window.records is not None:
        records = int(window.records)
        if window.duration is not None and rate is not None:
            records = max(1, min(records, round(rate * window.duration)))
    elif rate is not None:
        records = max(1, round(rate * window.duration))
    else:
        raise ValueError(f"a time-only window's size depends on traffic: {need}")
    if window.step_duration is not None and window.step is None:
        interval = float(window.step_duration)
        if rate is None:
            raise ValueError(f"windows evaluated every {interval:g}s overlap by an amount that depends on traffic: {need}")
        step = max(1, min(records, round(rate * interval)))
    else:
        step = min(records, int(window.effective_step))
        if window.step_duration is not None:
            interval = float(window.step_duration)
        elif rate is not None:
            interval = step / rate
        else:
            raise ValueError(f"windows evaluated every {step} records: how often that happens depends on traffic; "
                             f"{need} or window.step_duration")
    return WindowPlan(records=records, step=step, interval=interval)
