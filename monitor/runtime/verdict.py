"""The runtime's verdict on one evaluated window, and the protocol of those who hear it.

The evaluator hands every listener a `WindowVerdict` after the window's result is stored. It says
what was evaluated and what the drift engine found, nothing about what a consumer does with it:
retraining (`retrain.adapter`) turns it into its own policy input, with the config's notion of
critical columns and report links. A listener is called on the evaluator thread and should return
quickly; one that raises is logged and does not stop evaluation or the other listeners.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from monitor.drift import DriftResult
    from monitor.performance.result import PerformanceResult

__all__ = ["PerformanceListener", "PerformanceVerdict", "VerdictListener", "WindowVerdict", "notify_performance"]

log = logging.getLogger("driftwatch.monitor")


@dataclass(frozen=True)
class WindowVerdict:
    """One evaluated window of a model (unix seconds of the monitor's clock and of the events)."""

    model: str
    window_start: float
    window_end: float
    n_records: int
    point: tuple[str, float]
    """The grid point the window ends at (`DueWindow.point`): ("count", last record ordinal) or
    ("time", grid seconds of the monitor's clock)."""
    result: DriftResult
    evaluated_at: float
    performance: PerformanceResult | None = None
    """The window's performance as known at its evaluation: estimated, and realized from the labels
    already joined (models with a `performance` section)."""
    reference_id: int | None = None
    """The stored reference the window was judged against (`monitor.core.referencestore`); None: the config's."""
    version: str | None = None
    """The model version whose traffic filled the window (None: traffic that named no version)."""
    superseded: bool = False
    """A newer version of the model was serving when the window was judged (docs/versions.md):
    consumers that act once per model (retraining) act on the newest serving version only."""

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        """Every monitored column (outputs included) the engine found drifted, sorted by name."""
        return tuple(sorted(name for name, f in self.result.features.items() if f.drifted))


class VerdictListener(Protocol):
    """Hears every evaluated window (on the evaluator thread, after the result is stored)."""

    def on_verdict(self, verdict: WindowVerdict) -> None: ...


@dataclass(frozen=True)
class PerformanceVerdict:
    """Labels landed in an evaluated window and its realized performance was judged again; sent
    when that window is the model's newest judged one (on at least `min_labels` labels)."""

    model: str
    window_start: float
    window_end: float
    point: tuple[str, float] | None
    result: PerformanceResult
    realized_streak: int
    """Consecutive judged windows, ending at this one, whose realized headline metric degraded."""
    first_degraded_point: tuple[str, float] | None
    """The grid point of the streak's first window (what a trigger on it is identified by)."""
    evaluated_at: float
    version: str | None = None
    """As `WindowVerdict.version`."""
    superseded: bool = False
    """As `WindowVerdict.superseded`."""


@runtime_checkable
class PerformanceListener(Protocol):
    """Hears each newly judged realized performance (on the evaluator thread)."""

    def on_performance(self, verdict: PerformanceVerdict) -> None: ...


def notify_performance(listeners: Iterable[object], verdict: PerformanceVerdict) -> None:
    """Hand `verdict` to every listener that hears performance; one that raises is logged and stops nothing."""
    for listener in listeners:
        if not isinstance(listener, PerformanceListener):
            continue
        try:
            listener.on_performance(verdict)
        except Exception:
            log.exception("performance_listener_error model=%s listener=%s", verdict.model, type(listener).__name__)
