"""HTML drift reports per model and window, their JSON twins, and the offline `driftwatch report`.

Evidently is imported only inside the report worker's process (or the offline command), never here.
"""

from monitor.reports.fleet_source import FleetReportSource
from monitor.reports.routes import create_router
from monitor.reports.source import Evaluation, ReportSource, StoreReportSource

__all__ = ["Evaluation", "FleetReportSource", "ReportSource", "StoreReportSource", "create_router"]
