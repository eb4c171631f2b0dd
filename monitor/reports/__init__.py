"""HTML drift reports per model and window, their JSON twins, and the offline `driftwatch report`.

Evidently is imported only inside the report worker's process (or the offline command), never here;
pandas only when a report needs a window's records (docs/architecture.md, "The idle process").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from monitor.reports.routes import create_router
from monitor.reports.source import Evaluation, ReportSource, StoreReportSource

if TYPE_CHECKING:
    from monitor.reports.fleet_source import FleetReportSource

__all__ = ["Evaluation", "FleetReportSource", "ReportSource", "StoreReportSource", "create_router"]


def __getattr__(name: str) -> Any:
    """`FleetReportSource` on first use: its Kafka and PostgreSQL clients are fleet mode's alone."""
    if name != "FleetReportSource":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from monitor.reports.fleet_source import FleetReportSource

    return FleetReportSource
