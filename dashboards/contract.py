"""The metric names generated dashboards and alert rules may select (DESIGN.md §3, issue 4).

Kept as data so tests can check every generated expression against it, and the exporter's tests can
check it against a live scrape. Histograms appear under the sample names queries use (`_bucket`).
"""

from __future__ import annotations

__all__ = ["MONITOR_METRICS", "PROMETHEUS_METRICS", "SIDECAR_METRICS", "all_metrics"]

MONITOR_METRICS = frozenset(
    {
        "driftwatch_feature_drift_score",
        "driftwatch_feature_drift_threshold",
        "driftwatch_feature_drift_detected",
        "driftwatch_dataset_drift_share",
        "driftwatch_dataset_drift_detected",
        "driftwatch_prediction_drift_score",
        "driftwatch_window_records",
        "driftwatch_last_evaluation_timestamp_seconds",
        "driftwatch_feature_missing_ratio",
        "driftwatch_feature_out_of_range_ratio",
        "driftwatch_feature_new_category_ratio",
        "driftwatch_events_ingested_total",
        "driftwatch_events_rejected_total",
        "driftwatch_model_cpu_usage_cores",
        "driftwatch_model_memory_working_set_bytes",
        "driftwatch_model_gpu_utilization_ratio",
        "driftwatch_model_gpu_memory_used_bytes",
        "driftwatch_retrain_jobs_total",
        "driftwatch_retrain_last_trigger_timestamp_seconds",
        "driftwatch_retrain_jobs_active",
    }
)
"""Exported by the monitor (`/metrics`, scrape job `alerts.job_label`)."""

SIDECAR_METRICS = frozenset(
    {
        "driftwatch_sidecar_request_duration_seconds_bucket",
        "driftwatch_sidecar_events_captured_total",
        "driftwatch_sidecar_events_shipped_total",
        "driftwatch_sidecar_events_dropped_total",
        "driftwatch_sidecar_queue_events",
        "driftwatch_sidecar_spool_bytes",
    }
)
"""Exported by each capture sidecar in the model pods (a different scrape job)."""

PROMETHEUS_METRICS = frozenset({"up"})
"""Synthesised by Prometheus itself (MonitorDown)."""


def all_metrics() -> frozenset[str]:
    return MONITOR_METRICS | SIDECAR_METRICS | PROMETHEUS_METRICS
