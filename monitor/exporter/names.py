"""The names of the monitor's metric families, written once (docs/metrics.md).

`monitor/exporter/collector.py` (the exporter) creates its families from these constants; the generated
dashboards (`dashboards/`) and alert rules (`alerts/`) import them to build their PromQL, so a name
is spelled in exactly one place. The capture sidecar's families live beside its own exporter, in
`monitor/sidecar/metrics.py`.

Each constant is the sample name a query selects: counters carry their `_total` suffix
(prometheus-client strips it from the family name and adds it back to the sample, so the exposition
is the same). This module imports nothing, so consumers pull in no exporter machinery.
"""

from __future__ import annotations

# Drift
# One meaning per family (docs/metrics.md#drift): the severity is the one every method shares (how far past
# its threshold, 1 at the threshold, higher is more drift); the raw statistic sits in the family of its kind,
# so no series mixes distances (drift when high) with p-values (drift when low).
FEATURE_DRIFT_SEVERITY = "driftwatch_feature_drift_severity"
"""{model, feature, method}: statistic over threshold for distances, threshold over p-value for tests (the
p-value the verdict compared: Benjamini-Hochberg adjusted when enabled); +Inf for a changed type."""
FEATURE_DRIFT_DISTANCE = "driftwatch_feature_drift_distance"
"""{model, feature, method}: a distance method's value (drift at or above its threshold); distance methods only."""
FEATURE_DRIFT_DISTANCE_THRESHOLD = "driftwatch_feature_drift_distance_threshold"
FEATURE_DRIFT_P_VALUE = "driftwatch_feature_drift_p_value"
"""{model, feature, method}: a test's p-value as the verdict compared it (BH-adjusted when enabled); tests only."""
FEATURE_DRIFT_P_VALUE_THRESHOLD = "driftwatch_feature_drift_p_value_threshold"
FEATURE_DRIFT_DETECTED = "driftwatch_feature_drift_detected"
DATASET_DRIFT_SHARE = "driftwatch_dataset_drift_share"
DATASET_DRIFT_DETECTED = "driftwatch_dataset_drift_detected"
PREDICTION_DRIFT_SEVERITY = "driftwatch_prediction_drift_severity"
"""{model, method}: `FEATURE_DRIFT_SEVERITY` of the model's first output (its raw statistic is in the feature
families under `feature=<output>`)."""
WINDOW_RECORDS = "driftwatch_window_records"
LAST_EVALUATION_TIMESTAMP_SECONDS = "driftwatch_last_evaluation_timestamp_seconds"

# Data quality
FEATURE_MISSING_RATIO = "driftwatch_feature_missing_ratio"
FEATURE_OUT_OF_RANGE_RATIO = "driftwatch_feature_out_of_range_ratio"
FEATURE_NEW_CATEGORY_RATIO = "driftwatch_feature_new_category_ratio"

# Model performance (models with a `performance` section; docs/performance.md)
MODEL_PERFORMANCE = "driftwatch_model_performance"
"""{model, metric, kind="realized"|"estimated"}: the newest window's value (realized: the newest with
at least `min_labels` labelled records; estimated: before labels, from calibrated probabilities)."""
MODEL_PERFORMANCE_REFERENCE = "driftwatch_model_performance_reference"
"""{model, metric}: the metric on the reference data."""
MODEL_PERFORMANCE_THRESHOLD = "driftwatch_model_performance_threshold"
"""{model, metric, kind}: the headline metric's degradation threshold at that window's (labelled) size."""
MODEL_PERFORMANCE_DEGRADED = "driftwatch_model_performance_degraded"
"""{model, kind}: 1 when the headline metric crossed its threshold (held false-alarm rate per window)."""
LABEL_COVERAGE_RATIO = "driftwatch_label_coverage_ratio"
"""{model}: labelled share of the window behind the realized value."""
LABELS_TOTAL = "driftwatch_labels_total"
"""{model, outcome}: labels received, by outcome (joined, duplicate, unknown_id, too_late, ...)."""
LABEL_LAG_SECONDS = "driftwatch_label_lag_seconds"
"""{model}: histogram of the time from a prediction to its label's arrival (joined labels)."""

# Capture (ingest side)
EVENTS_INGESTED_TOTAL = "driftwatch_events_ingested_total"
EVENTS_REJECTED_TOTAL = "driftwatch_events_rejected_total"

# Resources
MODEL_CPU_USAGE_CORES = "driftwatch_model_cpu_usage_cores"
MODEL_MEMORY_WORKING_SET_BYTES = "driftwatch_model_memory_working_set_bytes"
MODEL_GPU_UTILIZATION_RATIO = "driftwatch_model_gpu_utilization_ratio"
MODEL_GPU_MEMORY_USED_BYTES = "driftwatch_model_gpu_memory_used_bytes"
RESOURCE_COLLECTION_ERRORS_TOTAL = "driftwatch_resource_collection_errors_total"

# Retraining
RETRAIN_JOBS_LAUNCHED_TOTAL = "driftwatch_retrain_jobs_launched_total"
"""{model}: runs launched; a sum over models is the runs launched."""
RETRAIN_JOBS_FINISHED_TOTAL = "driftwatch_retrain_jobs_finished_total"
"""{model, outcome}: runs ended, by outcome (succeeded, failed, deadline_exceeded); launched minus finished
is what still runs. Triggers a gate skipped are decisions (`RETRAIN_DECISIONS_TOTAL`), not runs."""
RETRAIN_DECISIONS_TOTAL = "driftwatch_retrain_decisions_total"
RETRAIN_LAST_TRIGGER_TIMESTAMP_SECONDS = "driftwatch_retrain_last_trigger_timestamp_seconds"
RETRAIN_JOBS_ACTIVE = "driftwatch_retrain_jobs_active"

# Process (the monitor itself; prometheus-client's `process_*` and `python_info` are served beside these)
BUILD_INFO = "driftwatch_build_info"
HTTP_REQUESTS_TOTAL = "driftwatch_http_requests_total"
"""{method, route, code}: requests answered, `route` the route template (`unmatched` for unknown paths)."""
HTTP_REQUEST_DURATION_SECONDS = "driftwatch_http_request_duration_seconds"
"""{method, route}: histogram of the time from a request's arrival to its answer's end."""
EVALUATION_DURATION_SECONDS = "driftwatch_evaluation_duration_seconds"
"""{model}: histogram of each window evaluation's wall time (drift, performance, storing the result)."""
STORE_SIZE_BYTES = "driftwatch_store_size_bytes"
"""(no labels): the embedded SQLite store on disk, file plus WAL (absent in fleet mode)."""

# Fleet mode (a replica's share of the consumer group; absent from an embedded monitor)
FLEET_PARTITIONS_OWNED = "driftwatch_fleet_partitions_owned"
FLEET_RECORDS_SKIPPED_TOTAL = "driftwatch_fleet_records_skipped_total"

MONITOR_METRICS = frozenset(
    {
        FEATURE_DRIFT_SEVERITY,
        FEATURE_DRIFT_DISTANCE,
        FEATURE_DRIFT_DISTANCE_THRESHOLD,
        FEATURE_DRIFT_P_VALUE,
        FEATURE_DRIFT_P_VALUE_THRESHOLD,
        FEATURE_DRIFT_DETECTED,
        DATASET_DRIFT_SHARE,
        DATASET_DRIFT_DETECTED,
        PREDICTION_DRIFT_SEVERITY,
        WINDOW_RECORDS,
        LAST_EVALUATION_TIMESTAMP_SECONDS,
        FEATURE_MISSING_RATIO,
        FEATURE_OUT_OF_RANGE_RATIO,
        FEATURE_NEW_CATEGORY_RATIO,
        MODEL_PERFORMANCE,
        MODEL_PERFORMANCE_REFERENCE,
        MODEL_PERFORMANCE_THRESHOLD,
        MODEL_PERFORMANCE_DEGRADED,
        LABEL_COVERAGE_RATIO,
        LABELS_TOTAL,
        LABEL_LAG_SECONDS,
        EVENTS_INGESTED_TOTAL,
        EVENTS_REJECTED_TOTAL,
        MODEL_CPU_USAGE_CORES,
        MODEL_MEMORY_WORKING_SET_BYTES,
        MODEL_GPU_UTILIZATION_RATIO,
        MODEL_GPU_MEMORY_USED_BYTES,
        RESOURCE_COLLECTION_ERRORS_TOTAL,
        RETRAIN_JOBS_LAUNCHED_TOTAL,
        RETRAIN_JOBS_FINISHED_TOTAL,
        RETRAIN_DECISIONS_TOTAL,
        RETRAIN_LAST_TRIGGER_TIMESTAMP_SECONDS,
        RETRAIN_JOBS_ACTIVE,
        BUILD_INFO,
        HTTP_REQUESTS_TOTAL,
        HTTP_REQUEST_DURATION_SECONDS,
        EVALUATION_DURATION_SECONDS,
        STORE_SIZE_BYTES,
    }
)
"""Every driftwatch sample name the monitor's `/metrics` serves (scrape job `alerts.job_label`), histograms
by family name; besides prometheus-client's `process_*` and `python_info` (`PROCESS_METRICS`)."""

PROCESS_METRICS = frozenset({
    "process_virtual_memory_bytes", "process_resident_memory_bytes", "process_start_time_seconds",
    "process_cpu_seconds_total", "process_open_fds", "process_max_fds", "python_info",
})
"""What prometheus-client's ProcessCollector (Linux) and PlatformCollector add to the monitor's `/metrics`."""

FLEET_METRICS = frozenset({FLEET_PARTITIONS_OWNED, FLEET_RECORDS_SKIPPED_TOTAL})
"""What a fleet replica's `/metrics` serves beside `MONITOR_METRICS` (docs/scale-out.md)."""

# MLflow (only with the config's `mlflow` section; docs/mlflow.md)
MLFLOW_REQUESTS_FAILED_TOTAL = "driftwatch_mlflow_requests_failed_total"
"""{operation}: writes to the MLflow tracking server that failed (`tag_version`, `link_run`); each is logged,
retried when transient, and never fails an evaluation."""
MLFLOW_METRICS = frozenset({MLFLOW_REQUESTS_FAILED_TOTAL})
