"""PromQL shared by the overview and per-model dashboards.

Each function takes the model matcher (`model="$model"` on a model's dashboard, `model=~"$model"`
on the overview) so both dashboards ask the same question the same way.
"""

from __future__ import annotations

from monitor.config import P_VALUE_METHODS

RATE = "$__rate_interval"
_P_VALUE_RE = "|".join(sorted(P_VALUE_METHODS))


def drift_share(m: str) -> str:
    return f"driftwatch_dataset_drift_share{{{m}}}"


def drifted_columns(m: str) -> str:
    return f"sum by (model) (driftwatch_feature_drift_detected{{{m}}})"


def window_records(m: str) -> str:
    return f"driftwatch_window_records{{{m}}}"


def evaluation_age(m: str) -> str:
    return f"time() - driftwatch_last_evaluation_timestamp_seconds{{{m}}}"


def ingested_rate(m: str) -> str:
    return f"sum by (model) (rate(driftwatch_events_ingested_total{{{m}}}[{RATE}]))"


def rejected_rate(m: str) -> str:
    return f"sum by (model, reason) (rate(driftwatch_events_rejected_total{{{m}}}[{RATE}]))"


def dropped_rate(m: str) -> str:
    return f"sum by (model, reason) (rate(driftwatch_sidecar_events_dropped_total{{{m}}}[{RATE}]))"


def retrain_jobs(m: str) -> str:
    return f"sum by (model, outcome) (increase(driftwatch_retrain_jobs_total{{{m}}}[{RATE}]))"


def retrain_active(m: str) -> str:
    return f"driftwatch_retrain_jobs_active{{{m}}}"


def drift_severity(m: str) -> str:
    """Score relative to threshold, > 1 beyond the threshold for every method.

    Distance methods drift when score >= threshold, p-value methods when p < threshold, so the
    ratio is inverted for the latter; one number then ranks columns across methods. It ranks, it
    does not decide: the exported p-value is raw, while the verdict (`*_drift_detected`) uses the
    Benjamini-Hochberg adjusted one, or the CUSUM under a false-alarm budget.
    """
    dist = f'{m},method!~"{_P_VALUE_RE}"'
    pval = f'{m},method=~"{_P_VALUE_RE}"'
    return (
        f"(driftwatch_feature_drift_score{{{dist}}} / driftwatch_feature_drift_threshold{{{dist}}})"
        f" or (driftwatch_feature_drift_threshold{{{pval}}} / driftwatch_feature_drift_score{{{pval}}})"
    )


def sidecar(expr_of_selector: str, m: str) -> str:
    """Restrict a sidecar series without a `model` label to the model's sidecars.

    Sidecar histograms and gauges carry no `model` label; the sidecar's event counters do, so the
    scrape `instance` joins them (one sidecar per model pod).
    """
    owned = f"clamp_max(count by (instance) (driftwatch_sidecar_events_captured_total{{{m}}}), 1)"
    return f"{expr_of_selector} * on (instance) group_left () {owned}"


def sidecar_latency(quantile: float, m: str) -> str:
    rate = sidecar(f"rate(driftwatch_sidecar_request_duration_seconds_bucket[{RATE}])", m)
    return f"histogram_quantile({quantile}, sum by (le, phase) ({rate}))"
