"""The monitor's own HTTP traffic, counted on the hot path in plain ints and rendered at scrape time.

`monitor.app.api`'s request middleware calls `ServiceStats.observe` once per answered request: a dict
look-up, a bisect and three additions, no lock (the app's requests and its /metrics scrape all run
on the one event loop). The families are built from these counts when /metrics is scraped, like the
sidecar's `PhaseHistogram`.

Labels stay bounded: `route` is the matched route's template (`/v1/models/{model}/drift`, the
path-token CloudEvents route as `/v1/cloudevents/{token}`), `unmatched` for any other path; `method`
is one of `METHODS` or `other`; `code` is the status code sent. Requests naming a model that is not
configured are counted without its name (`unknown_model_events`, `unknown_model_labels`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator

from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from monitor.exporter import names as n

__all__ = ["HTTP_BUCKETS", "METHODS", "UNMATCHED", "ServiceStats"]

HTTP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Upper bounds (seconds) of `driftwatch_http_request_duration_seconds`."""
_LE = (*(floatToGoString(b) for b in HTTP_BUCKETS), "+Inf")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
UNMATCHED = "unmatched"


class ServiceStats:
    """Requests by (method, route, code) and their durations by (method, route); unknown-model refusals."""

    __slots__ = ("durations", "requests", "unknown_model_events", "unknown_model_labels")

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}
        self.durations: dict[tuple[str, str], list[float]] = {}
        """Per-bucket counts (not cumulative, +Inf last), then the sum of the observations."""
        self.unknown_model_events = 0
        """CloudEvents refused with 404 unknown_model (a batch's events of unknown models are the runtime's count)."""
        self.unknown_model_labels = 0
        """Labels of batches refused with 404 unknown_model."""

    def declare(self, routes: Iterable[tuple[str, str]]) -> None:
        """Create the duration histograms of these (method, route) pairs at 0, so rate() sees the first request."""
        for method, route in routes:
            self.durations.setdefault((method, route), [0.0] * (len(HTTP_BUCKETS) + 2))

    def observe(self, method: str, route: str, code: int, seconds: float) -> None:
        if method not in METHODS:
            method = "other"
        key = (method, route, str(code))
        self.requests[key] = self.requests.get(key, 0) + 1
        counts = self.durations.get((method, route))
        if counts is None:
            counts = self.durations[(method, route)] = [0.0] * (len(HTTP_BUCKETS) + 2)
        counts[bisect_left(HTTP_BUCKETS, seconds)] += 1
        counts[-1] += seconds

    def families(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(n.HTTP_REQUESTS_TOTAL, "HTTP requests the monitor answered, by method, route "
                                       "template (unmatched for unknown paths) and status code.", labels=["method", "route", "code"])
        for (method, route, code), count in sorted(self.requests.items()):
            requests.add_metric([method, route, code], count)
        durations = HistogramMetricFamily(n.HTTP_REQUEST_DURATION_SECONDS, "Time from a request's arrival to the end of "
                                          "its answer, by method and route template.", labels=["method", "route"])
        for (method, route), counts in sorted(self.durations.items()):
            buckets: list[tuple[str, float]] = []
            running = 0.0
            for bound, observed in zip(_LE, counts[:-1], strict=True):
                running += observed
                buckets.append((bound, running))
            durations.add_metric([method, route], buckets, counts[-1])
        yield from (requests, durations)
