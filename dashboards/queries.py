"""PromQL shared by the overview and per-model dashboards.

Each function takes the matchers of the series it selects: the cluster and namespace variables
(`SCOPE`) and the model (`model="wine"` on a model's own dashboard, `model=~"$model"` on the
overview), built by `where(...)`, so both dashboards ask the same question the same way. Every
selector carries `SCOPE`; every aggregation that keeps `model` keeps `cluster` and `namespace` too
(`ID`), so two models of one name in two namespaces or clusters never add up to one line. Where the
series carry neither label (one Prometheus, no namespace exported yet), both matchers are `=~".*"`
and the `by` lists lose nothing.
"""

from __future__ import annotations

from monitor.exporter.names import (
    DATASET_DRIFT_SHARE,
    EVALUATION_DURATION_SECONDS,
    EVENTS_INGESTED_TOTAL,
    EVENTS_REJECTED_TOTAL,
    FEATURE_DRIFT_DETECTED,
    FEATURE_DRIFT_SEVERITY,
    HTTP_REQUEST_DURATION_SECONDS,
    HTTP_REQUESTS_TOTAL,
    LABEL_COVERAGE_RATIO,
    LABEL_LAG_SECONDS,
    LABELS_TOTAL,
    LAST_EVALUATION_TIMESTAMP_SECONDS,
    MODEL_PERFORMANCE,
    MODEL_PERFORMANCE_DEGRADED,
    MODEL_PERFORMANCE_REFERENCE,
    MODEL_PERFORMANCE_THRESHOLD,
    RETRAIN_JOBS_ACTIVE,
    RETRAIN_JOBS_FINISHED_TOTAL,
    RETRAIN_JOBS_LAUNCHED_TOTAL,
    STORE_SIZE_BYTES,
    WINDOW_RECORDS,
)
from monitor.sidecar.metrics import (
    SIDECAR_EVENTS_CAPTURED_TOTAL,
    SIDECAR_EVENTS_DROPPED_TOTAL,
    SIDECAR_REQUEST_DURATION_SECONDS_BUCKET,
    SIDECAR_TOKEN_USAGE_TOKENS,
    SIDECAR_UPSTREAM_RESPONSES_TOTAL,
)

RATE = "$__rate_interval"

CLUSTER = "cluster"
NAMESPACE = "namespace"
SCOPE = f'{CLUSTER}=~"${CLUSTER}",{NAMESPACE}=~"${NAMESPACE}"'
"""The matchers of the cluster and namespace variables, on every selector of every dashboard."""
ALL = ".*"
"""What "All" of the cluster and namespace variables stands for: it also matches series without the label."""


def _by(*labels: str) -> str:
    """A `by (...)` list that keeps the cluster and namespace beside `labels`."""
    return ", ".join([CLUSTER, NAMESPACE, *labels])


ID = _by("model")
"""A model's identity in `by (...)` lists."""


def where(*matchers: str) -> str:
    """`SCOPE` and `matchers`, comma-separated, for inside a selector's braces."""
    return ",".join([SCOPE, *matchers])


def drift_share(m: str) -> str:
    return f"{DATASET_DRIFT_SHARE}{{{m}}}"


def drifted_columns(m: str) -> str:
    return f"sum by ({ID}) ({FEATURE_DRIFT_DETECTED}{{{m}}})"


def window_records(m: str) -> str:
    return f"{WINDOW_RECORDS}{{{m}}}"


def evaluation_age(m: str) -> str:
    return f"time() - {LAST_EVALUATION_TIMESTAMP_SECONDS}{{{m}}}"


def ingested_rate(m: str) -> str:
    return f"sum by ({ID}) (rate({EVENTS_INGESTED_TOTAL}{{{m}}}[{RATE}]))"


def rejected_rate(m: str) -> str:
    return f"sum by ({ID}, reason) (rate({EVENTS_REJECTED_TOTAL}{{{m}}}[{RATE}]))"


def dropped_rate(m: str) -> str:
    return f"sum by ({ID}, reason) (rate({SIDECAR_EVENTS_DROPPED_TOTAL}{{{m}}}[{RATE}]))"


def retrain_launched(m: str) -> str:
    return f"sum by ({ID}) (increase({RETRAIN_JOBS_LAUNCHED_TOTAL}{{{m}}}[{RATE}]))"


def retrain_finished(m: str) -> str:
    return f"sum by ({ID}, outcome) (increase({RETRAIN_JOBS_FINISHED_TOTAL}{{{m}}}[{RATE}]))"


def retrain_active(m: str) -> str:
    return f"{RETRAIN_JOBS_ACTIVE}{{{m}}}"


def drift_severity(m: str) -> str:
    """How far past its threshold each column is, > 1 beyond it, whatever its method.

    It ranks, it does not decide: under a false-alarm budget the verdict (`*_drift_detected`) is the
    CUSUM's, and a driftwatch-mode test also asks for a minimum effect size.
    """
    return f"{FEATURE_DRIFT_SEVERITY}{{{m}}}"


def sidecar(metric: str, m: str) -> str:
    """A sidecar series without a `model` label, restricted to the model's sidecars.

    Sidecar histograms and gauges carry no `model` label; the sidecar's event counters do, so the
    scrape `instance` joins them (one sidecar per model pod; `cluster` too, as instances repeat
    across clusters).
    """
    return _owned_by(f"{metric}{{{SCOPE}}}", m)


def _owned_by(expr: str, m: str) -> str:
    owned = f"clamp_max(count by ({CLUSTER}, instance) ({SIDECAR_EVENTS_CAPTURED_TOTAL}{{{m}}}), 1)"
    return f"{expr} * on ({CLUSTER}, instance) group_left () {owned}"


def sidecar_latency(quantile: float, m: str) -> str:
    rate = _owned_by(f"rate({SIDECAR_REQUEST_DURATION_SECONDS_BUCKET}{{{SCOPE}}}[{RATE}])", m)
    return f"histogram_quantile({quantile}, sum by ({_by('le', 'phase')}) ({rate}))"


# Generative calls (the sidecar's GenAI histograms carry `model` and `operation`): chat and completions.
GENERATIVE = 'operation=~"chat|text_completion"'


def genai_quantile(histogram: str, quantile: float, m: str) -> str:
    """A quantile of one of the sidecar's generative-call histograms, over the model's sidecars."""
    return (f"histogram_quantile({quantile}, sum by ({_by('model', 'le')}) "
            f"(rate({histogram}_bucket{{{m},{GENERATIVE}}}[{RATE}])))")


def tokens_rate(m: str) -> str:
    """Tokens per second the server reported (usage), by `type` (input, output)."""
    return f"sum by ({ID}, type) (rate({SIDECAR_TOKEN_USAGE_TOKENS}_sum{{{m},{GENERATIVE}}}[{RATE}]))"


def tokens_per_call(m: str) -> str:
    """Mean tokens per call, by `type`: the usage histogram's sum over its count."""
    def total(part: str) -> str:
        return f"sum by ({ID}, type) (rate({SIDECAR_TOKEN_USAGE_TOKENS}_{part}{{{m},{GENERATIVE}}}[{RATE}]))"

    return f"{total('sum')} / {total('count')}"


# Model performance (models with a `performance` section). Aggregated to the exported identity, so a
# model moving between monitor pods or fleet replicas stays one line.


def performance(m: str, *by: str) -> str:
    """`driftwatch_model_performance` by `by` (e.g. kind, or metric for one kind's table column)."""
    return f"max by ({_by(*by)}) ({MODEL_PERFORMANCE}{{{m}}})"


def performance_reference(m: str, *by: str) -> str:
    return f"max by ({_by(*by)}) ({MODEL_PERFORMANCE_REFERENCE}{{{m}}})"


def performance_threshold(m: str) -> str:
    return f"max by ({_by('kind')}) ({MODEL_PERFORMANCE_THRESHOLD}{{{m}}})"


def performance_degraded(m: str, *by: str) -> str:
    return f"max by ({_by(*by)}) ({MODEL_PERFORMANCE_DEGRADED}{{{m}}})"


def label_coverage(m: str) -> str:
    return f"max by ({ID}) ({LABEL_COVERAGE_RATIO}{{{m}}})"


def label_lag(quantile: float, m: str) -> str:
    return f"histogram_quantile({quantile}, sum by ({_by('le')}) (rate({LABEL_LAG_SECONDS}_bucket{{{m}}}[{RATE}])))"


def labels_rate(m: str) -> str:
    return f"sum by ({_by('outcome')}) (rate({LABELS_TOTAL}{{{m}}}[{RATE}]))"


def upstream_responses_rate(m: str) -> str:
    """The model server's own answers through the sidecars, by status class (5xx: the model failing)."""
    return f"sum by ({ID}, code) (rate({SIDECAR_UPSTREAM_RESPONSES_TOTAL}{{{m}}}[{RATE}]))"


# The monitor itself (no `model` label): its API, its evaluations, its store.


def http_requests_rate() -> str:
    return f"sum by ({_by('route', 'code')}) (rate({HTTP_REQUESTS_TOTAL}{{{SCOPE}}}[{RATE}]))"


def http_latency(quantile: float) -> str:
    rate = f"rate({HTTP_REQUEST_DURATION_SECONDS}_bucket{{{SCOPE}}}[{RATE}])"
    return f"histogram_quantile({quantile}, sum by ({_by('le', 'route')}) ({rate}))"


def evaluation_duration(quantile: float, m: str) -> str:
    rate = f"rate({EVALUATION_DURATION_SECONDS}_bucket{{{m}}}[{RATE}])"
    return f"histogram_quantile({quantile}, sum by ({_by('le', 'model')}) ({rate}))"


def store_size() -> str:
    return f"max by ({_by('instance')}) ({STORE_SIZE_BYTES}{{{SCOPE}}})"
