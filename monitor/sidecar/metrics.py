"""The sidecar's own Prometheus registry (served at /driftwatch/metrics).

Every labelled series that can appear is created at start, so `rate()` works from the first scrape
and a dashboard shows 0 rather than "no data". What is updated per request (the duration histogram
and the captured counter) is kept in plain ints and floats and turned into samples at scrape time
by a custom collector: a prometheus_client `observe` takes a lock and costs microseconds, paid
twice per proxied request; `PhaseHistogram.observe` is a bisect and two additions.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, PlatformCollector, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = [
    "AUTH_STATUSES",
    "BUCKETS",
    "DROP_REASONS",
    "GENAI_HISTOGRAMS",
    "GENAI_OPERATIONS",
    "SIDECAR_METRICS",
    "STATUS_CLASSES",
    "TOKEN_TYPES",
    "UPSTREAM_ERROR_KINDS",
    "GenAIMetrics",
    "PhaseHistogram",
    "SidecarMetrics",
]

# The sidecar's family names, written once: the collectors below create their families from them
# and the generated dashboards and alert rules import them. Counters carry `_total` (the sample name
# a query selects; prometheus-client strips it from the family name).
SIDECAR_REQUEST_DURATION_SECONDS = "driftwatch_sidecar_request_duration_seconds"
SIDECAR_REQUEST_DURATION_SECONDS_BUCKET = SIDECAR_REQUEST_DURATION_SECONDS + "_bucket"
SIDECAR_EVENTS_CAPTURED_TOTAL = "driftwatch_sidecar_events_captured_total"
SIDECAR_EVENTS_SHIPPED_TOTAL = "driftwatch_sidecar_events_shipped_total"
SIDECAR_EVENTS_DROPPED_TOTAL = "driftwatch_sidecar_events_dropped_total"
SIDECAR_UPSTREAM_ERRORS_TOTAL = "driftwatch_sidecar_upstream_errors_total"
SIDECAR_UPSTREAM_RESPONSES_TOTAL = "driftwatch_sidecar_upstream_responses_total"
SIDECAR_AUTH_REJECTED_TOTAL = "driftwatch_sidecar_auth_rejected_total"
SIDECAR_QUEUE_EVENTS = "driftwatch_sidecar_queue_events"
SIDECAR_SPOOL_EVENTS = "driftwatch_sidecar_spool_events"
SIDECAR_SPOOL_BYTES = "driftwatch_sidecar_spool_bytes"
# Generative calls (OpenAI-compatible paths), after OpenTelemetry's GenAI metrics (docs/metrics.md).
SIDECAR_TIME_TO_FIRST_TOKEN_SECONDS = "driftwatch_sidecar_time_to_first_token_seconds"  # gen_ai.server.time_to_first_token
SIDECAR_TIME_PER_OUTPUT_TOKEN_SECONDS = "driftwatch_sidecar_time_per_output_token_seconds"  # gen_ai.server.time_per_output_token
SIDECAR_OUTPUT_TOKENS_PER_SECOND = "driftwatch_sidecar_output_tokens_per_second"  # no OTel counterpart
SIDECAR_TOKEN_USAGE_TOKENS = "driftwatch_sidecar_token_usage_tokens"  # gen_ai.client.token.usage
GENAI_HISTOGRAMS = (
    SIDECAR_TIME_TO_FIRST_TOKEN_SECONDS, SIDECAR_TIME_PER_OUTPUT_TOKEN_SECONDS, SIDECAR_OUTPUT_TOKENS_PER_SECOND,
    SIDECAR_TOKEN_USAGE_TOKENS,
)
SIDECAR_METRICS = frozenset(
    {
        *(name + suffix for name in GENAI_HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")),
        SIDECAR_REQUEST_DURATION_SECONDS_BUCKET,
        SIDECAR_REQUEST_DURATION_SECONDS + "_sum",
        SIDECAR_REQUEST_DURATION_SECONDS + "_count",
        SIDECAR_EVENTS_CAPTURED_TOTAL,
        SIDECAR_EVENTS_SHIPPED_TOTAL,
        SIDECAR_EVENTS_DROPPED_TOTAL,
        SIDECAR_UPSTREAM_ERRORS_TOTAL,
        SIDECAR_UPSTREAM_RESPONSES_TOTAL,
        SIDECAR_AUTH_REJECTED_TOTAL,
        SIDECAR_QUEUE_EVENTS,
        SIDECAR_SPOOL_EVENTS,
        SIDECAR_SPOOL_BYTES,
    }
)
"""Every driftwatch sample name a sidecar's /driftwatch/metrics serves, besides `*_created` (a scrape
job of its own), and besides the client library's `process_*` and `python_info`."""

DROP_REASONS = (
    "spool_full",  # queue full or monitor unreachable, and the spool is at --spool-max-bytes (or disabled)
    "spool_error",  # the spool could not be written (I/O error other than a full disk)
    "rejected",  # the monitor answered a permanent 4xx (not 401/403/408/413/429) for the batch; Kafka: an invalid record
    "too_large",  # the monitor answered 413 for a single event; Kafka: MSG_SIZE_TOO_LARGE (client or broker)
    "corrupt",  # a spool record failed its CRC on replay (torn write after a crash)
    "shutdown",  # still queued when the grace period ended and could not be spooled
)
AUTH_STATUSES = (
    "401",  # the monitor does not accept the token (rotated, missing): the batch is kept and retried
    "403",  # the token is valid but not allowed to write events: the batch is kept and retried
)
UPSTREAM_ERROR_KINDS = (
    "connect",  # connection refused / unreachable -> 502
    "connect_timeout",  # no connection within the connect timeout -> 504
    "timeout",  # no answer within --upstream-timeout -> 504 (or aborted mid-body)
    "reset",  # the connection closed before the response was complete
    "protocol",  # the upstream's answer was not valid HTTP/1.x
)
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
"""`code` of driftwatch_sidecar_upstream_responses_total: the model server's own answers, by class
(a 5xx here is the model failing, not the sidecar; the sidecar's own 502/504 are upstream_errors)."""
GENAI_OPERATIONS = ("chat", "text_completion", "embeddings")
"""`operation` label: OpenTelemetry's `gen_ai.operation.name` for /v1/chat/completions, /v1/completions, /v1/embeddings."""
TOKEN_TYPES = ("input", "output")
"""`type` label of the token-usage histogram (OpenTelemetry's `gen_ai.token.type`)."""
# Bucket bounds advised by the OpenTelemetry GenAI conventions for the same instruments.
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
TOKENS_PER_SECOND_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
# Fine buckets from 50 µs: the overhead phase lives in the first few.
BUCKETS = (
    0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
    0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0,
)
_LE = (*(floatToGoString(b) for b in BUCKETS), "+Inf")


class PhaseHistogram:
    """A histogram as plain per-bucket counts (not cumulative; the last slot is +Inf)."""

    __slots__ = ("bounds", "counts", "le", "sum")

    def __init__(self, bounds: tuple[float, ...] = BUCKETS) -> None:
        self.bounds = bounds
        self.le = _LE if bounds is BUCKETS else (*(floatToGoString(b) for b in bounds), "+Inf")
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        # bisect_left: the first bound >= seconds, i.e. Prometheus' `le` bucket.
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip(self.le, self.counts, strict=True):
            total += count
            out.append((bound, float(total)))
        return out


class _HotPathCollector(Collector):
    def __init__(self, metrics: SidecarMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        duration = HistogramMetricFamily(
            SIDECAR_REQUEST_DURATION_SECONDS,
            "Proxied request time: `upstream` from request sent to response received, `overhead` what the sidecar added.",
            labels=["phase"],
        )
        for phase, hist in (("upstream", m.upstream_seconds), ("overhead", m.overhead_seconds)):
            duration.add_metric([phase], hist.cumulative(), hist.sum)
        yield duration
        captured = CounterMetricFamily(
            SIDECAR_EVENTS_CAPTURED_TOTAL, "Request/response pairs captured for the monitor.", labels=["model"]
        )
        captured.add_metric([m.model], float(m.captured))
        yield captured
        responses = CounterMetricFamily(
            SIDECAR_UPSTREAM_RESPONSES_TOTAL, "Responses the model server sent (forwarded to the client), by status class.",
            labels=["model", "code"],
        )
        for code, count in zip(STATUS_CLASSES, m.responses[1:6], strict=True):
            responses.add_metric([m.model, code], float(count))
        yield responses
        yield from m.genai.families(m.model)


class GenAIMetrics:
    """Histograms of OpenAI-compatible calls, per operation; observed once per captured call, after
    its response was written (never per chunk)."""

    def __init__(self) -> None:
        self.ttft = {op: PhaseHistogram(TTFT_BUCKETS) for op in GENAI_OPERATIONS[:2]}
        self.tpot = {op: PhaseHistogram(TPOT_BUCKETS) for op in GENAI_OPERATIONS[:2]}
        self.tokens_per_second = {op: PhaseHistogram(TOKENS_PER_SECOND_BUCKETS) for op in GENAI_OPERATIONS[:2]}
        self.tokens = {(op, t): PhaseHistogram(TOKEN_BUCKETS) for op in GENAI_OPERATIONS for t in TOKEN_TYPES}

    def families(self, model: str) -> Iterator[Metric]:
        specs = (
            (SIDECAR_TIME_TO_FIRST_TOKEN_SECONDS, "Streamed generative calls: request sent upstream to the first event carrying content.", self.ttft),
            (SIDECAR_TIME_PER_OUTPUT_TOKEN_SECONDS, "Streamed generative calls: (last byte - first token) / (output tokens - 1), when the server reports usage.", self.tpot),
            (SIDECAR_OUTPUT_TOKENS_PER_SECOND, "Generative calls: output tokens / (request sent upstream to last byte), when the server reports usage.", self.tokens_per_second),
        )
        for name, doc, hists in specs:
            family = HistogramMetricFamily(name, doc, labels=["model", "operation"])
            for op, hist in hists.items():
                family.add_metric([model, op], hist.cumulative(), hist.sum)
            yield family
        usage = HistogramMetricFamily(
            SIDECAR_TOKEN_USAGE_TOKENS, "Tokens per generative or embeddings call as the server reported them (usage), by type.",
            labels=["model", "operation", "type"],
        )
        for (op, kind), hist in self.tokens.items():
            usage.add_metric([model, op, kind], hist.cumulative(), hist.sum)
        yield usage


class SidecarMetrics:
    def __init__(self, model: str) -> None:
        self.model = model
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.upstream_seconds = PhaseHistogram()
        self.overhead_seconds = PhaseHistogram()
        self.captured = 0  # incremented by the shipper for every capture it is handed
        self.genai = GenAIMetrics()
        self.responses = [0] * 7
        """Upstream responses by `status // 100` (slots 1-5 exported; 0 and 6 catch the impossible)."""
        r.register(_HotPathCollector(self))
        # The process itself (CPU, RSS, open fds, start time) and the Python build, as every exporter has.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.shipped = Counter(
            SIDECAR_EVENTS_SHIPPED_TOTAL, "Events the monitor (or, with --kafka-bootstrap, the Kafka brokers, acks=all) acknowledged.", ["model"], registry=r
        ).labels(model=model)
        dropped = Counter(
            SIDECAR_EVENTS_DROPPED_TOTAL, "Captured events given up, by reason.", ["model", "reason"], registry=r
        )
        self.dropped = {reason: dropped.labels(model=model, reason=reason) for reason in DROP_REASONS}
        # POSTs refused, not events: the batch stays (memory -> spool) and is retried, so no event is
        # counted here and in `dropped` both; one series per status.
        auth = Counter(
            SIDECAR_AUTH_REJECTED_TOTAL, "POSTs to the monitor answered 401/403 (batch kept, retried), by status.",
            ["model", "status"], registry=r,
        )
        self.auth_rejected = {status: auth.labels(model=model, status=status) for status in AUTH_STATUSES}
        errors = Counter(
            SIDECAR_UPSTREAM_ERRORS_TOTAL, "Failed exchanges with the model server, by kind.", ["kind"], registry=r
        )
        self.upstream_errors = {kind: errors.labels(kind=kind) for kind in UPSTREAM_ERROR_KINDS}
        self.queue_events = Gauge(SIDECAR_QUEUE_EVENTS, "Events waiting in memory to be shipped.", registry=r)
        self.spool_events = Gauge(SIDECAR_SPOOL_EVENTS, "Events waiting in the on-disk spool.", registry=r)
        self.spool_bytes = Gauge(SIDECAR_SPOOL_BYTES, "Disk used by the spool's segment files.", registry=r)

    def bind(self, queue_events: Callable[[], float], spool_events: Callable[[], float], spool_bytes: Callable[[], float]) -> None:
        """Read the gauges from the shipper at scrape time (no hot-path cost)."""
        self.queue_events.set_function(queue_events)
        self.spool_events.set_function(spool_events)
        self.spool_bytes.set_function(spool_bytes)

    def render(self) -> bytes:
        return generate_latest(self.registry)
