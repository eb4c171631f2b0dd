"""The sidecar's own Prometheus registry (served at /driftwatch/metrics).

Every labelled series that can appear is created at start, so `rate()` works from the first scrape
and a dashboard shows 0 rather than "no data". Hot-path updates are single `inc`/`observe` calls on
pre-resolved children.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["DROP_REASONS", "UPSTREAM_ERROR_KINDS", "SidecarMetrics"]

DROP_REASONS = (
    "spool_full",  # queue full or monitor unreachable, and the spool is at --spool-max-bytes (or disabled)
    "spool_error",  # the spool could not be written (I/O error other than a full disk)
    "rejected",  # the monitor answered a permanent 4xx (not 408/413/429) for the batch
    "too_large",  # the monitor answered 413 for a single event
    "corrupt",  # a spool record failed its CRC on replay (torn write after a crash)
    "shutdown",  # still queued when the grace period ended and could not be spooled
)
UPSTREAM_ERROR_KINDS = (
    "connect",  # connection refused / unreachable -> 502
    "connect_timeout",  # no connection within the connect timeout -> 504
    "timeout",  # no answer within --upstream-timeout -> 504 (or aborted mid-body)
    "reset",  # the connection closed before the response was complete
    "protocol",  # the upstream's answer was not valid HTTP/1.x
)
# Fine buckets from 50 µs: the overhead phase lives in the first few.
BUCKETS = (
    0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
    0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0,
)


class SidecarMetrics:
    def __init__(self, model: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        duration = Histogram(
            "driftwatch_sidecar_request_duration_seconds",
            "Proxied request time: `upstream` from request sent to response received, `overhead` what the sidecar added.",
            ["phase"], buckets=BUCKETS, registry=r,
        )
        self.upstream_seconds = duration.labels(phase="upstream")
        self.overhead_seconds = duration.labels(phase="overhead")
        self.captured = Counter(
            "driftwatch_sidecar_events_captured", "Request/response pairs captured for the monitor.", ["model"], registry=r
        ).labels(model=model)
        self.shipped = Counter(
            "driftwatch_sidecar_events_shipped", "Events the monitor acknowledged.", ["model"], registry=r
        ).labels(model=model)
        dropped = Counter(
            "driftwatch_sidecar_events_dropped", "Captured events given up, by reason.", ["model", "reason"], registry=r
        )
        self.dropped = {reason: dropped.labels(model=model, reason=reason) for reason in DROP_REASONS}
        errors = Counter(
            "driftwatch_sidecar_upstream_errors", "Failed exchanges with the model server, by kind.", ["kind"], registry=r
        )
        self.upstream_errors = {kind: errors.labels(kind=kind) for kind in UPSTREAM_ERROR_KINDS}
        self.queue_events = Gauge("driftwatch_sidecar_queue_events", "Events waiting in memory to be shipped.", registry=r)
        self.spool_events = Gauge("driftwatch_sidecar_spool_events", "Events waiting in the on-disk spool.", registry=r)
        self.spool_bytes = Gauge("driftwatch_sidecar_spool_bytes", "Disk used by the spool's segment files.", registry=r)

    def bind(self, queue_events: Callable[[], float], spool_events: Callable[[], float], spool_bytes: Callable[[], float]) -> None:
        """Read the gauges from the shipper at scrape time (no hot-path cost)."""
        self.queue_events.set_function(queue_events)
        self.spool_events.set_function(spool_events)
        self.spool_bytes.set_function(spool_bytes)

    def render(self) -> bytes:
        return generate_latest(self.registry)
