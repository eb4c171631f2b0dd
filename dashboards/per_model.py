"""One dashboard per configured model: drift, performance (models with a `performance` section), data
quality, capture, resources and retraining.

A model's dashboard is that model's, with no `model` dropdown: what the config knows about the model
is baked in (the thresholds of its alert rules drawn as lines, its headline performance metric, its
first output as the prediction, its critical columns, its data-quality checks, its pods), so a
dropdown switching to another model would show that model's series against this one's thresholds,
or empty panels for columns the other model does not have. Every selector names the model itself
(`model="wine"`); the per-column panels repeat over a `feature` variable filled from this model's
series. Other models are one click away: the "Driftwatch" dropdown lists every dashboard, keeping
the time range, cluster and namespace. The datasource, `cluster` and `namespace` variables (All by
default, `.*`, which also matches series without the label) narrow every selector.
"""

from __future__ import annotations

from typing import Any

from dashboards import grafana as gf
from dashboards import queries as q
from monitor.core.config import Config, ModelConfig
from monitor.core.performance_metrics import METRICS as PERFORMANCE_METRICS
from monitor.core.units import format_duration
from monitor.exporter.names import (
    DATASET_DRIFT_SHARE,
    FEATURE_DRIFT_DISTANCE,
    FEATURE_DRIFT_DISTANCE_THRESHOLD,
    FEATURE_DRIFT_P_VALUE,
    FEATURE_DRIFT_P_VALUE_THRESHOLD,
    FEATURE_DRIFT_SEVERITY,
    FEATURE_MISSING_RATIO,
    FEATURE_NEW_CATEGORY_RATIO,
    FEATURE_OUT_OF_RANGE_RATIO,
    MODEL_CPU_USAGE_CORES,
    MODEL_GPU_MEMORY_USED_BYTES,
    MODEL_GPU_UTILIZATION_RATIO,
    MODEL_MEMORY_WORKING_SET_BYTES,
    PREDICTION_DRIFT_SEVERITY,
    RETRAIN_JOBS_FINISHED_TOTAL,
    RETRAIN_JOBS_LAUNCHED_TOTAL,
    RETRAIN_LAST_TRIGGER_TIMESTAMP_SECONDS,
)
from monitor.sidecar.metrics import (
    SIDECAR_OUTPUT_TOKENS_PER_SECOND,
    SIDECAR_QUEUE_EVENTS,
    SIDECAR_SPOOL_BYTES,
    SIDECAR_TIME_PER_OUTPUT_TOKEN_SECONDS,
    SIDECAR_TIME_TO_FIRST_TOKEN_SECONDS,
)

TAGS = ["driftwatch", "ml", "drift"]
MODEL_VARIABLE_POLICY = (
    "No model dropdown: this dashboard draws this model's own thresholds, columns and headline metric; "
    "the Driftwatch links lead to the other models. Cluster and namespace (All matches series without "
    "those labels) narrow every query."
)


def uid(model: ModelConfig) -> str:
    return gf.stable_uid("driftwatch", "model", model.slug)


def matcher(model: ModelConfig) -> str:
    """The matchers every selector of `model`'s dashboard carries: cluster, namespace and the model itself."""
    return q.where(model.matcher)


def scope_variables(model: ModelConfig | None = None) -> list[Any]:
    """Datasource, then `cluster` and `namespace`, each filled from the series the one before allows
    (and, on a model's dashboard, from that model's series only)."""
    share = DATASET_DRIFT_SHARE if model is None else f'{DATASET_DRIFT_SHARE}{{{model.matcher}}}'
    share_in_cluster = ",".join([f'{q.CLUSTER}=~"${q.CLUSTER}"', *([] if model is None else [model.matcher])])
    return [
        gf.datasource_variable(),
        gf.query_variable(q.CLUSTER, "Cluster", f"label_values({share}, {q.CLUSTER})",
                          default="$__all", multi=True, include_all=True, all_value=q.ALL),
        gf.query_variable(q.NAMESPACE, "Namespace",
                          f"label_values({DATASET_DRIFT_SHARE}{{{share_in_cluster}}}, {q.NAMESPACE})",
                          default="$__all", multi=True, include_all=True, all_value=q.ALL),
    ]


def _drift_row(cfg: Config, model: ModelConfig, grid: gf.Grid) -> list[Any]:
    M = matcher(model)
    alerts = cfg.alerts_for(model)
    share = [(None, "green"), (alerts.dataset_drift.warning, "orange"), (alerts.dataset_drift.critical, "red")]
    max_age = alerts.evaluation_stale.max_age
    panels: list[Any] = [
        gf.row("Drift", grid),
        gf.stat("Dataset drift share", [gf.target(q.drift_share(M))], grid.place(4, 4),
                unit="percentunit", thresholds=share,
                description="Share of the input features (not the outputs) that drifted in the last evaluated window."),
        gf.stat("Drifted columns", [gf.target(q.drifted_columns(M))], grid.place(4, 4),
                unit="none", thresholds=[(None, "green"), (1, "orange")], decimals=0),
        gf.stat("Records in window", [gf.target(q.window_records(M))], grid.place(4, 4),
                unit="none", thresholds=[(None, "red"), (model.window.min_records, "green")], decimals=0,
                description=f"Windows with fewer than {model.window.min_records} records are not evaluated."),
        gf.stat("Since last evaluation", [gf.target(q.evaluation_age(M))], grid.place(4, 4),
                unit="s", thresholds=[(None, "green"), (max_age, "red")]),
        gf.stat("Retraining jobs running", [gf.target(q.retrain_active(M))], grid.place(4, 4),
                unit="none", decimals=0),
        gf.stat("Last retraining trigger",
                [gf.target(f"{RETRAIN_LAST_TRIGGER_TIMESTAMP_SECONDS}{{{M}}} * 1000 > 0")],
                grid.place(4, 4), unit="dateTimeFromNow", no_value="Never"),
        gf.timeseries("Dataset drift share", [gf.target(q.drift_share(M), "{{model}}")], grid.place(12, 9),
                      unit="percentunit", thresholds=share, max_value=1,
                      description="Lines: the warning and critical thresholds of DriftwatchDatasetDrift."),
        gf.table(
            "Most drifted columns",
            [
                gf.target(f"topk(10, {q.drift_severity(M)})", ref="A", instant=True, table=True),
                gf.target(f"{FEATURE_DRIFT_DISTANCE}{{{M}}} or {FEATURE_DRIFT_P_VALUE}{{{M}}}", ref="B",
                          instant=True, table=True),
                gf.target(f"{FEATURE_DRIFT_DISTANCE_THRESHOLD}{{{M}}} or {FEATURE_DRIFT_P_VALUE_THRESHOLD}{{{M}}}",
                          ref="C", instant=True, table=True),
            ],
            grid.place(12, 9),
            description="Severity ranks columns across methods: distance/threshold, or threshold/p-value (adjusted for "
            "testing many columns) for tests. Under a false-alarm budget the verdict is accumulated evidence, "
            "so a column slightly above 1 may not be drifted: the Drifted columns panel and the alerts show the "
            "verdict. Statistic: the method's raw value (a distance, drift when high; or a p-value, drift when low).",
            rename={"feature": "Column", "method": "Method", "Value #A": "Severity (x threshold)",
                    "Value #B": "Statistic", "Value #C": "Threshold"},
            sort_by="Severity (x threshold)",
        ),
    ]
    return panels


LABEL_OUTCOMES = "joined, duplicate, unknown_id, too_late, event_rejected, count_mismatch, invalid"


def _performance_row(cfg: Config, model: ModelConfig, grid: gf.Grid) -> list[Any]:
    """Realized (from labels) and estimated (before them) performance, and the health of the labels."""
    perf = model.performance
    if perf is None:
        return []
    M = matcher(model)
    headline = perf.headline
    metric = PERFORMANCE_METRICS[headline]
    h = f'{M},metric="{headline}"'
    direction = "below" if metric.higher_is_better else "above"
    kinds = "realized and estimated" if perf.probabilities else "realized"
    return [
        gf.row("Performance", grid),
        gf.timeseries(
            f"{headline}: realized vs estimated",
            [
                gf.target(q.performance(h, "kind"), "{{kind}}", "A"),
                gf.target(q.performance_reference(h, "metric"), "reference", "B"),
                gf.target(q.performance_threshold(h), "threshold ({{kind}})", "C"),
            ],
            grid.place(16, 9),
            unit="none",
            description=f"The headline metric ({metric.doc}), {kinds}: realized on the labelled predictions of "
            "the newest window with enough labels, estimated from the calibrated class probabilities before "
            f"labels arrive (CBPE). Degraded {direction} the threshold, which holds a false-alarm rate of "
            f"{perf.false_alarm_rate:g} per window; the reference is the metric on the reference data.",
        ),
        gf.stat(
            "Performance degraded",
            [gf.target(q.performance_degraded(M, "kind"), "{{kind}}")],
            grid.place(8, 9),
            unit="none",
            thresholds=[(None, "green"), (1, "red")],
            decimals=0,
            description="1: the monitor judges the headline metric degraded (DriftwatchPerformanceDegraded "
            "fires after its `for`).",
        ),
        gf.table(
            "All metrics",
            [
                gf.target(q.performance(f'{M},kind="realized"', "metric"), ref="A", instant=True, table=True),
                gf.target(q.performance(f'{M},kind="estimated"', "metric"), ref="B", instant=True, table=True),
                gf.target(q.performance_reference(M, "metric"), ref="C", instant=True, table=True),
            ],
            grid.place(8, 8),
            description=f"Every metric of the model; {headline} decides degradation. Estimated only where "
            "calibrated probabilities allow it.",
            rename={"metric": "Metric", "Value #A": "Realized", "Value #B": "Estimated", "Value #C": "Reference"},
            sort_by="Metric",
        ),
        gf.timeseries(
            "Label coverage",
            [gf.target(q.label_coverage(M), "{{model}}")],
            grid.place(5, 8),
            unit="percentunit",
            max_value=1,
            description="Labelled share of the window behind the realized value. Low coverage: the realized "
            f"value rests on few labels (judged from {perf.min_labels} labelled records).",
        ),
        gf.timeseries(
            "Label lag",
            [
                gf.target(q.label_lag(0.5, M), "p50", "A"),
                gf.target(q.label_lag(0.9, M), "p90", "B"),
            ],
            grid.place(5, 8),
            unit="s",
            thresholds=[(None, "green"), (perf.label_delay, "red")],
            description="Time from a prediction to its label's arrival (joined labels). The line: label_delay "
            f"({format_duration(perf.label_delay)}); later labels are not joined (too_late).",
        ),
        gf.timeseries(
            "Labels by outcome",
            [gf.target(q.labels_rate(M), "{{outcome}}")],
            grid.place(6, 8),
            unit="short",
            axis_label="labels/s",
            description=f"Labels received per second, by outcome ({LABEL_OUTCOMES}). Anything but joined "
            "points at the label sender, not the model.",
        ),
    ]


def _feature_row(model: ModelConfig, grid: gf.Grid) -> list[Any]:
    M = matcher(model)
    f = f'{M},feature="$feature"'
    panels: list[Any] = [
        gf.row("Drift severity per column", grid),
        gf.timeseries(
            "$feature",
            [gf.target(f"{FEATURE_DRIFT_SEVERITY}{{{f}}}", "{{method}}", "A")],
            grid.place(6, 7),
            unit="none",
            thresholds=[(None, "green"), (1, "red")],
            repeat="feature",
            description="Multiples of the column's threshold (distance/threshold, or threshold/p-value for tests): "
            "above 1 is past it, whatever the method.",
        ),
    ]
    grid.newline()
    critical = [c.name for c in model.columns if c.critical]
    if critical:
        crit = f'{M},feature=~"{"|".join(critical)}"'
        panels.append(
            gf.timeseries(
                "Critical columns: drift severity",
                [gf.target(q.drift_severity(crit), "{{feature}}")],
                grid.place(12, 8),
                unit="none",
                thresholds=[(None, "green"), (1, "red")],
                description=f"Columns marked critical in the config ({', '.join(critical)}): "
                "their drift alone may trigger retraining. Above 1: past the threshold.",
            )
        )
    if model.outputs:
        first = model.outputs[0].name
        panels.append(
            gf.timeseries(
                f"Prediction drift ({first})",
                [gf.target(f"{PREDICTION_DRIFT_SEVERITY}{{{M}}}", "{{method}}", "A")],
                grid.place(12, 8),
                unit="none",
                thresholds=[(None, "green"), (1, "red")],
                description=f"Drift severity of the model's first output, {first!r}: multiples of its threshold.",
            )
        )
    return panels


def _llm_row(model: ModelConfig, grid: gf.Grid) -> list[Any]:
    """Tokens, time to first token and speed from the sidecars, beside the text descriptors' drift
    (models with `protocol: openai`; docs/text.md)."""
    if model.protocol != "openai":
        return []
    M = matcher(model)
    texts = "|".join(c.name for c in model.text_columns)
    descriptors = f'{M},feature=~"({texts})[.].+"'
    panels = [
        gf.row("LLM: tokens, latency and text descriptors", grid),
        gf.timeseries("Tokens per second", [gf.target(q.tokens_rate(M), "{{type}}")], grid.place(6, 8), unit="short",
                      axis_label="tokens/s",
                      description="Input (prompt) and output (completion) tokens per second, as the model server reported "
                      "them in `usage` (gen_ai.client.token.usage). Streamed calls report usage only when asked "
                      "(stream_options.include_usage)."),
        gf.timeseries("Tokens per call", [gf.target(q.tokens_per_call(M), "{{type}}")], grid.place(6, 8), unit="short",
                      description="Mean input and output tokens per call, from the same histogram."),
        gf.timeseries(
            "Time to first token",
            [gf.target(q.genai_quantile(SIDECAR_TIME_TO_FIRST_TOKEN_SECONDS, 0.5, M), "p50", "A"),
             gf.target(q.genai_quantile(SIDECAR_TIME_TO_FIRST_TOKEN_SECONDS, 0.9, M), "p90", "B")],
            grid.place(6, 8), unit="s",
            description="Streamed calls: from the request sent upstream to the first event carrying content "
            "(gen_ai.server.time_to_first_token), measured by the sidecars.",
        ),
        gf.timeseries(
            "Output tokens per second",
            [gf.target(q.genai_quantile(SIDECAR_OUTPUT_TOKENS_PER_SECOND, 0.5, M), "p50", "A"),
             gf.target(q.genai_quantile(SIDECAR_OUTPUT_TOKENS_PER_SECOND, 0.9, M), "p90", "B")],
            grid.place(6, 8), unit="short", axis_label="tokens/s",
            description="Output tokens over the whole call (request sent to last byte), when the server reports usage.",
        ),
        gf.timeseries(
            "Time per output token",
            [gf.target(q.genai_quantile(SIDECAR_TIME_PER_OUTPUT_TOKEN_SECONDS, 0.5, M), "p50", "A"),
             gf.target(q.genai_quantile(SIDECAR_TIME_PER_OUTPUT_TOKEN_SECONDS, 0.9, M), "p90", "B")],
            grid.place(6, 8), unit="s",
            description="Streamed calls: (last byte - first token) / (output tokens - 1) (gen_ai.server.time_per_output_token).",
        ),
        gf.timeseries(
            "Text descriptor drift severity",
            [gf.target(q.drift_severity(descriptors), "{{feature}}")],
            grid.place(18, 8), unit="none", thresholds=[(None, "green"), (1, "red")],
            description=f"Drift severity of the descriptors of the text columns ({', '.join(c.name for c in model.text_columns)}): "
            "length, script, non-ASCII and out-of-vocabulary shares, refusals, PII hits, token counts (docs/text.md). "
            "Above 1: past the threshold.",
        ),
    ]
    grid.newline()
    return panels


def _quality_row(cfg: Config, model: ModelConfig, grid: gf.Grid) -> list[Any]:
    dq = cfg.alerts_for(model).data_quality
    M = matcher(model)
    checks = [
        ("Missing values", FEATURE_MISSING_RATIO, dq.missing_ratio),
        ("Out of range", FEATURE_OUT_OF_RANGE_RATIO, dq.out_of_range_ratio),
    ]
    if any(c.type == "categorical" for c in model.columns):
        checks.append(("New categories", FEATURE_NEW_CATEGORY_RATIO, dq.new_category_ratio))
    width = 24 // len(checks)
    panels: list[Any] = [gf.row("Data quality", grid)]
    for title, metric, limit in checks:
        panels.append(
            gf.timeseries(title, [gf.target(f"{metric}{{{M}}}", "{{feature}}")], grid.place(width, 8),
                          unit="percentunit", thresholds=[(None, "green"), (limit, "red")],
                          description="Share of the window's records; the line is DriftwatchDataQuality's threshold.")
        )
    return panels


def _capture_row(model: ModelConfig, grid: gf.Grid) -> list[Any]:
    M = matcher(model)
    return [
        gf.row("Traffic and capture", grid),
        gf.timeseries("Events ingested", [gf.target(q.ingested_rate(M), "{{model}}")], grid.place(6, 8), unit="reqps"),
        gf.timeseries("Events rejected by the monitor", [gf.target(q.rejected_rate(M), "{{reason}}")],
                      grid.place(6, 8), unit="reqps"),
        gf.timeseries("Events dropped by sidecars", [gf.target(q.dropped_rate(M), "{{reason}}")],
                      grid.place(6, 8), unit="reqps",
                      description="Dropped events are never evaluated: drift results then miss that traffic."),
        gf.timeseries("Model server answers", [gf.target(q.upstream_responses_rate(M), "{{code}}")],
                      grid.place(6, 8), unit="reqps",
                      description="Responses of the model server itself through its sidecars, by status class: 5xx is the "
                      "model failing (the sidecar's own 502/504 when it cannot reach the model are not counted here)."),
        gf.timeseries(
            "Sidecar latency: upstream vs capture overhead",
            [
                gf.target(q.sidecar_latency(0.5, M), "p50 {{phase}}", "A"),
                gf.target(q.sidecar_latency(0.99, M), "p99 {{phase}}", "B"),
            ],
            grid.place(12, 8),
            unit="s",
            description="upstream: the model server's answer; overhead: what the capture sidecar adds.",
        ),
        gf.timeseries(
            "Sidecar queue",
            [gf.target(q.sidecar(SIDECAR_QUEUE_EVENTS, M), "{{instance}}")],
            grid.place(6, 8),
            unit="none",
        ),
        gf.timeseries(
            "Sidecar spool",
            [gf.target(q.sidecar(SIDECAR_SPOOL_BYTES, M), "{{instance}}")],
            grid.place(6, 8),
            unit="bytes",
        ),
    ]


def _resources_row(model: ModelConfig, grid: gf.Grid) -> list[Any]:
    sel = ",".join(f"{k}={v}" for k, v in sorted(model.resources.selector.items())) or "(local process)"
    where = f"Pods in namespace {model.resources.namespace} selected by {sel}."
    M = matcher(model)
    return [
        gf.row("Resources of the model's pods, beside drift", grid),
        gf.timeseries("CPU", [gf.target(f"sum by ({q.CLUSTER}, {q.NAMESPACE}, pod) ({MODEL_CPU_USAGE_CORES}{{{M}}})", "{{pod}}")],
                      grid.place(8, 8), unit="short", axis_label="cores", description=where),
        gf.timeseries("Memory working set",
                      [gf.target(f"sum by ({q.CLUSTER}, {q.NAMESPACE}, pod) ({MODEL_MEMORY_WORKING_SET_BYTES}{{{M}}})", "{{pod}}")],
                      grid.place(8, 8), unit="bytes", description=where),
        gf.timeseries("Dataset drift share", [gf.target(q.drift_share(M), "{{model}}")], grid.place(8, 8),
                      unit="percentunit", max_value=1),
        gf.timeseries("GPU utilisation",
                      [gf.target(f"{MODEL_GPU_UTILIZATION_RATIO}{{{M}}}", "{{pod}} gpu {{gpu}}")],
                      grid.place(8, 8), unit="percentunit", max_value=1),
        gf.timeseries("GPU memory used",
                      [gf.target(f"{MODEL_GPU_MEMORY_USED_BYTES}{{{M}}}", "{{pod}} gpu {{gpu}}")],
                      grid.place(8, 8), unit="bytes"),
        gf.timeseries("Drifted columns", [gf.target(q.drifted_columns(M), "{{model}}")], grid.place(8, 8),
                      unit="none"),
    ]


def _retrain_row(model: ModelConfig, grid: gf.Grid) -> list[Any]:
    M = matcher(model)
    return [
        gf.row("Retraining", grid),
        gf.timeseries("Retraining runs", [gf.target(q.retrain_launched(M), "launched"),
                                          gf.target(q.retrain_finished(M), "{{outcome}}", "B")], grid.place(12, 8),
                      unit="none", draw_style="bars",
                      description="Runs launched, and runs ended by outcome (succeeded, failed, deadline_exceeded). "
                      "Triggers held back by a cooldown or budget are decisions, not runs."),
        gf.timeseries("Retraining jobs running", [gf.target(q.retrain_active(M), "{{model}}")], grid.place(12, 8),
                      unit="none"),
    ]


def _retrain_annotations(model: ModelConfig) -> list[dict[str, Any]]:
    M = matcher(model)

    def ended(outcomes: str) -> str:
        return f'changes({RETRAIN_JOBS_FINISHED_TOTAL}{{{M},outcome=~"{outcomes}"}}[{q.RATE}]) > 0'

    return [
        gf.annotation("Retraining launched", f"changes({RETRAIN_JOBS_LAUNCHED_TOTAL}{{{M}}}[{q.RATE}]) > 0",
                      "Retraining launched", "blue"),
        gf.annotation("Retraining succeeded", ended("succeeded"), "Retraining succeeded", "green"),
        gf.annotation("Retraining failed", ended("failed|deadline_exceeded"), "Retraining {{outcome}}", "red"),
    ]


def build(cfg: Config, model: ModelConfig, overview_uid: str) -> dict[str, Any]:
    grid = gf.Grid()
    panels = [
        *_drift_row(cfg, model, grid),
        *_performance_row(cfg, model, grid),
        *_llm_row(model, grid),
        *_feature_row(model, grid),
        *_quality_row(cfg, model, grid),
        *_capture_row(model, grid),
        *_resources_row(model, grid),
        *_retrain_row(model, grid),
    ]
    return gf.dashboard(
        title=f"Driftwatch / {model.display}",
        uid=uid(model),
        description=f"Drift monitoring of model {model.name}: {len(model.features)} features, "
        f"{len(model.outputs)} outputs. {MODEL_VARIABLE_POLICY}",
        tags=[*TAGS, f"model:{model.name}", *([f"namespace:{model.namespace}"] if model.namespace else [])],
        panels=panels,
        variables=[
            *scope_variables(model),
            gf.query_variable("feature", "Column",
                              f"label_values({FEATURE_DRIFT_SEVERITY}{{{matcher(model)}}}, feature)",
                              default="$__all", multi=True, include_all=True),
        ],
        annotations=_retrain_annotations(model),
        links=[
            gf.link("Driftwatch overview", overview_uid),
            gf.dashboards_link("Driftwatch", ["driftwatch"], "Every driftwatch dashboard: the other models"),
        ],
    )
