"""The overview dashboard: every model at a glance, linking to each model's own dashboard.

Its `model` variable (multi, All by default) only narrows which models are listed: every panel here
is model-agnostic (no column, threshold or metric of one model is baked in), so any choice is true.
"""

from __future__ import annotations

from typing import Any

from dashboards import grafana as gf
from dashboards import per_model
from dashboards import queries as q
from monitor.core.config import Config
from monitor.exporter.names import DATASET_DRIFT_SHARE

M = q.where('model=~"$model"')
UID = gf.stable_uid("driftwatch", "overview")


def _models_table(cfg: Config, grid: gf.Grid) -> Any:
    """One row per model; every query is reduced to the model's identity (cluster, namespace, model) so
    the merge lines rows up. With a model's `performance` section, a column shows whether the monitor
    judges it degraded."""

    def per_model(expr: str) -> str:
        return f"max by ({q.ID}) ({expr})"

    t = [
        gf.target(per_model(q.drift_share(M)), ref="A", instant=True, table=True),
        gf.target(q.drifted_columns(M), ref="B", instant=True, table=True),
        gf.target(q.ingested_rate(M), ref="C", instant=True, table=True),
        gf.target(per_model(q.window_records(M)), ref="D", instant=True, table=True),
        gf.target(per_model(q.evaluation_age(M)), ref="E", instant=True, table=True),
        gf.target(per_model(q.retrain_active(M)), ref="F", instant=True, table=True),
    ]
    rename = {
        "cluster": "Cluster",  # shown only where the series carry it
        "namespace": "Namespace",
        "model": "Model",
        "Value #A": "Dataset drift share",
        "Value #B": "Drifted columns",
        "Value #C": "Events/s",
        "Value #D": "Records in window",
        "Value #E": "Since last evaluation",
        "Value #F": "Retraining jobs running",
    }
    if any(m.performance is not None for m in cfg.models):
        t.append(gf.target(q.performance_degraded(M, "model"), ref="G", instant=True, table=True))
        rename["Value #G"] = "Performance degraded"
    return gf.table(
        "Models", t, grid.place(24, 7), rename=rename, sort_by="Dataset drift share",
        overrides=[
            gf.unit_override("Dataset drift share", "percentunit"),
            gf.unit_override("Events/s", "reqps"),
            gf.unit_override("Since last evaluation", "s"),
        ],
    )


def build(cfg: Config) -> dict[str, Any]:
    alerts = cfg.defaults.alerts
    share = [(None, "green"), (alerts.dataset_drift.warning, "orange"), (alerts.dataset_drift.critical, "red")]
    grid = gf.Grid()
    panels = [
        gf.row("Models", grid),
        _models_table(cfg, grid),
        gf.row("Drift", grid),
        gf.timeseries("Dataset drift share", [gf.target(q.drift_share(M), "{{model}}")], grid.place(12, 8),
                      unit="percentunit", thresholds=share, max_value=1,
                      description="Lines: the default warning and critical thresholds (models may override them)."),
        gf.timeseries("Drifted columns", [gf.target(q.drifted_columns(M), "{{model}}")], grid.place(12, 8),
                      unit="none"),
        gf.row("Traffic", grid),
        gf.timeseries("Events ingested", [gf.target(q.ingested_rate(M), "{{model}}")], grid.place(8, 8),
                      unit="reqps"),
        gf.timeseries("Events rejected by the monitor", [gf.target(q.rejected_rate(M), "{{model}} {{reason}}")],
                      grid.place(8, 8), unit="reqps"),
        gf.timeseries("Events dropped by sidecars", [gf.target(q.dropped_rate(M), "{{model}} {{reason}}")],
                      grid.place(8, 8), unit="reqps"),
        gf.row("Evaluation and retraining", grid),
        gf.timeseries("Since last evaluation", [gf.target(q.evaluation_age(M), "{{model}}")], grid.place(12, 8),
                      unit="s", thresholds=[(None, "green"), (alerts.evaluation_stale.max_age, "red")]),
        gf.timeseries("Retraining runs", [gf.target(q.retrain_launched(M), "{{model}} launched"),
                                          gf.target(q.retrain_finished(M), "{{model}} {{outcome}}", "B")],
                      grid.place(12, 8), unit="none", draw_style="bars"),
        gf.row("The monitor itself", grid),
        gf.timeseries("API requests", [gf.target(q.http_requests_rate(), "{{route}} {{code}}")], grid.place(6, 8),
                      unit="reqps", description="By route template and status code; 401/403 are refused tokens."),
        gf.timeseries("API latency p99", [gf.target(q.http_latency(0.99), "{{route}}")], grid.place(6, 8), unit="s",
                      description="Ingest answers after the batch is durable (fsync), so its latency includes the disk."),
        gf.timeseries("Evaluation time p90", [gf.target(q.evaluation_duration(0.9, M), "{{model}}")], grid.place(6, 8),
                      unit="s", description="Wall time of a window's evaluation: drift, performance, storing the result."),
        gf.timeseries("Store size", [gf.target(q.store_size(), "{{instance}}")], grid.place(6, 8), unit="bytes",
                      description="The embedded SQLite store (file + WAL); bounded by server.store.max_bytes."),
    ]
    links = [gf.link(f"Model {m.name}", per_model.uid(m), f"Drift, data quality and resources of {m.name}")
             for m in cfg.models]
    return gf.dashboard(
        title="Driftwatch / Overview",
        uid=UID,
        description=f"Drift of every monitored model ({', '.join(m.name for m in cfg.models)}).",
        tags=per_model.TAGS,
        panels=panels,
        variables=[
            *per_model.scope_variables(),
            gf.query_variable("model", "Model", f"label_values({DATASET_DRIFT_SHARE}{{{q.SCOPE}}}, model)",
                              default="$__all", multi=True, include_all=True),
        ],
        annotations=[],
        links=links,
    )
