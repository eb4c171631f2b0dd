"""Prometheus alerting rules generated from the config (thresholds, `for`, severities, links).

Conventions (node-mixin style): CamelCase names prefixed `Driftwatch`; one name at two severities
for dataset drift (critical has the higher threshold, both fire above it); `summary`,
`description`, `runbook_url` (an anchor per alert in docs/runbooks.md) and `report_url` annotations.
Drift and data-quality alerts only consider windows holding at least the model's
`window.min_records` records, so a nearly empty window never pages. Every rule aggregates to the
labels the monitor exports and the ones an SRE routes on (`max by (cluster, namespace, model, …)`,
`IDENTITY`; a label a series lacks groups as empty, so single-cluster setups lose nothing): scrape
target labels such as `instance` and `pod` change when the monitor restarts, and in fleet mode when
a model's partition moves to another replica; an alert keyed on them would resolve and start its
`for` again on every upgrade or rebalance.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from alerts.gotemplate import query_value
from alerts.scopes import Scope, scopes
from monitor.core.config import Config, ModelConfig, WindowConfig
from monitor.core.performance_metrics import METRICS as PERFORMANCE_METRICS
from monitor.core.units import format_duration
from monitor.exporter.names import (
    DATASET_DRIFT_SHARE,
    EVENTS_INGESTED_TOTAL,
    FEATURE_DRIFT_DETECTED,
    FEATURE_DRIFT_SEVERITY,
    FEATURE_MISSING_RATIO,
    FEATURE_NEW_CATEGORY_RATIO,
    FEATURE_OUT_OF_RANGE_RATIO,
    LAST_EVALUATION_TIMESTAMP_SECONDS,
    MODEL_PERFORMANCE,
    MODEL_PERFORMANCE_DEGRADED,
    MODEL_PERFORMANCE_REFERENCE,
    MODEL_PERFORMANCE_THRESHOLD,
    PREDICTION_DRIFT_SEVERITY,
    RETRAIN_JOBS_FINISHED_TOTAL,
    WINDOW_RECORDS,
)
from monitor.sidecar.metrics import SIDECAR_EVENTS_DROPPED_TOTAL

__all__ = [
    "GROUPS", "IDENTITY", "NEVER_EVALUATED", "PERFORMANCE_KINDS", "PERFORMANCE_REFERENCE_QUERY",
    "PERFORMANCE_THRESHOLD_QUERY", "PROMETHEUS_UP", "RATE_WINDOW", "RETRAIN_FAILED_WINDOW", "Rule", "build", "first_due_records", "groups",
    "performance_kinds", "prediction_output", "retrain_failed_window", "runbook_anchor",
]

PROMETHEUS_UP = "up"
"""The one family the rules select that driftwatch does not export: Prometheus synthesises it per scrape target."""
RATE_WINDOW = "5m"
"""Range of the rate() behind NoTraffic, SidecarDroppingEvents and EvaluationStale's traffic gate."""
RETRAIN_FAILED_WINDOW = 3600.0
"""A failed retraining job keeps DriftwatchRetrainJobFailed firing this long after its `for`."""
FAILED_OUTCOMES = ("failed", "deadline_exceeded")
NEVER_EVALUATED = {"reason": "never_evaluated"}
"""Label of DriftwatchEvaluationStale's second rule: the model has no evaluation at all."""

IDENTITY = ("cluster", "namespace", "model")
"""The labels naming one model wherever it runs: every rule aggregates by them, joins on them, and
the shipped inhibition rules compare them (`cluster` from Prometheus' external labels or relabeling
in multi-cluster setups, `namespace` where the model runs)."""
ON_MODEL = f"on ({', '.join(IDENTITY)})"

GROUPS = ("driftwatch-drift", "driftwatch-data-quality", "driftwatch-performance", "driftwatch-capture",
          "driftwatch-monitor", "driftwatch-retraining")


@dataclass(frozen=True)
class Rule:
    """One alerting rule and the models it covers (the latter is for the promtool test generator)."""

    group: str
    alert: str
    expr: str
    for_: float
    labels: dict[str, str]
    annotations: dict[str, str]
    models: tuple[ModelConfig, ...] = field(default=())
    keeps: tuple[str, ...] | None = IDENTITY
    """The series labels an alert carries (what its expression aggregates by), None for all of them."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert": self.alert,
            "expr": self.expr,
            "for": _dur(self.for_),
            "labels": dict(sorted(self.labels.items())),
            "annotations": dict(sorted(self.annotations.items())),
        }


def runbook_anchor(alert: str) -> str:
    """The GitHub anchor of the runbook heading `## <alert>`."""
    return alert.lower()


def _annotations(cfg: Config, scope: Scope, alert: str, summary: str, description: str) -> dict[str, str]:
    out = {
        "summary": summary,
        "description": description,
        "runbook_url": f"{scope.alerts.runbook_url}#{runbook_anchor(alert)}",
    }
    if cfg.server.public_url:
        # the namespace picks the model when several namespaces share its name; otherwise (or empty) it is ignored
        out["report_url"] = (cfg.server.public_url.rstrip("/") + "/reports/{{ $labels.model }}"
                             "?namespace={{ $labels.namespace }}")
    return out


def _min_records(model: ModelConfig) -> int:
    return model.window.min_records


def first_due_records(window: WindowConfig) -> int:
    """Records in a window once its first evaluation is due, on monitor/windows.py's grids.

    Count grid: windows are due every `step` records and skipped below `min_records`, so the first
    evaluation comes at the first multiple of `step` reaching `min_records` (capped at `records`,
    the most a window holds). Time grid: a window of `min_records` is evaluated at the next tick.
    Below this, a model that was never evaluated may simply be waiting for traffic.
    """
    if window.step is None and window.step_duration is not None:
        return window.min_records
    step = window.effective_step
    due = step * math.ceil(window.min_records / step)
    return min(due, window.records) if window.records is not None else due


def _first_due(model: ModelConfig) -> int:
    return first_due_records(model.window)


def _records_gate(scope: Scope, threshold: Callable[[ModelConfig], int] = _min_records) -> str:
    """`driftwatch_window_records >= threshold` (default min_records), per model where they differ."""
    by_min: dict[int, list[ModelConfig]] = {}
    for m in scope.models:
        by_min.setdefault(threshold(m), []).append(m)
    if len(by_min) == 1:
        (n,) = by_min
        return f"{scope.selector(WINDOW_RECORDS)} >= {n}"
    parts = [f"{WINDOW_RECORDS}{{{_models_matcher(tuple(models))}}} >= {n}" for n, models in sorted(by_min.items())]
    return "(" + " or ".join(parts) + ")"


def _max_by(labels: tuple[str, ...], selector: str) -> str:
    """One series per exported identity, whatever the scrape target (see the module docstring)."""
    return f"max by ({', '.join(labels)}) ({selector})"


def _gated(expr: str, scope: Scope) -> str:
    return f"({expr}) and {ON_MODEL} ({_records_gate(scope)})"


def _dur(seconds: float) -> str:
    return format_duration(seconds) if seconds > 0 else "0s"


def _num(v: float) -> str:
    return repr(float(v)).removesuffix(".0") if float(v).is_integer() else repr(float(v))


def _dataset_drift(cfg: Config) -> Iterator[Rule]:
    for scope in scopes(cfg, "dataset_drift"):
        dd = scope.alerts.dataset_drift
        for severity, threshold in (("warning", dd.warning), ("critical", dd.critical)):
            labels = {**scope.labels, "severity": severity}
            if severity == "critical" and scope.alerts.retrain_on_critical:
                labels["driftwatch_action"] = "retrain"
            pct = f"{threshold * 100:g}%"
            yield Rule(
                "driftwatch-drift",
                "DriftwatchDatasetDrift",
                _gated(f"{_max_by(IDENTITY, scope.selector(DATASET_DRIFT_SHARE))} >= {_num(threshold)}",
                       scope),
                dd.for_,
                labels,
                _annotations(
                    cfg, scope, "DriftwatchDatasetDrift",
                    "Model {{ $labels.model }}: {{ $value | humanizePercentage }} of its input features drifted",
                    f"{{{{ $value | humanizePercentage }}}} of the input features of model {{{{ $labels.model }}}} drifted "
                    f"(the {severity} threshold is {pct}) for at least {_dur(dd.for_)}."
                    + (" Retraining is requested." if "driftwatch_action" in labels else ""),
                ),
                scope.models,
            )


def _enabled(cfg: Config, kind: str) -> Iterator[tuple[Scope, Any]]:
    for scope in scopes(cfg, kind):
        settings = getattr(scope.alerts, kind)
        if settings.enabled:
            yield scope, settings


def _feature_drift(cfg: Config) -> Iterator[Rule]:
    for scope, s in _enabled(cfg, "feature_drift"):
        detected = scope.selector(FEATURE_DRIFT_DETECTED)
        keeps = (*IDENTITY, "feature", "method")
        expr = (f"{_max_by(keeps, scope.selector(FEATURE_DRIFT_SEVERITY))} "
                f"and on ({', '.join((*IDENTITY, 'feature'))}) ({detected} == 1)")
        yield Rule(
            "driftwatch-drift",
            "DriftwatchFeatureDrift",
            _gated(expr, scope),
            s.for_,
            {**scope.labels, "severity": s.severity},
            _annotations(
                cfg, scope, "DriftwatchFeatureDrift",
                "Model {{ $labels.model }}: column {{ $labels.feature }} drifted",
                'Column {{ $labels.feature }} of model {{ $labels.model }} drifted: {{ $labels.method }} at '
                '{{ printf "%.3g" $value }} times its threshold.',
            ),
            scope.models,
            keeps,
        )


def prediction_output(cfg: Config, model: ModelConfig) -> str | None:
    """The model's first output, if it is exported (prediction drift is decided on its column)."""
    if not model.outputs or model.outputs[0].name not in cfg.exported_features(model):
        return None
    return model.outputs[0].name


def _prediction_drift(cfg: Config) -> Iterator[Rule]:
    for scope, s in _enabled(cfg, "prediction_drift"):
        outputs = [(m, out) for m in scope.models if (out := prediction_output(cfg, m)) is not None]
        if not outputs:
            continue
        detected = " or ".join(
            f'{FEATURE_DRIFT_DETECTED}{{{m.matcher},feature="{out}"}} == 1' for m, out in outputs
        )
        keeps = (*IDENTITY, "method")
        expr = f"{_max_by(keeps, scope.selector(PREDICTION_DRIFT_SEVERITY))} and {ON_MODEL} ({detected})"
        yield Rule(
            "driftwatch-drift",
            "DriftwatchPredictionDrift",
            _gated(expr, scope),
            s.for_,
            {**scope.labels, "severity": s.severity},
            _annotations(
                cfg, scope, "DriftwatchPredictionDrift",
                "Model {{ $labels.model }}: predictions drifted",
                'The predictions of model {{ $labels.model }} drifted: {{ $labels.method }} at '
                '{{ printf "%.3g" $value }} times its threshold.',
            ),
            tuple(m for m, _ in outputs),
            keeps,
        )


DATA_QUALITY_CHECKS = (
    ("missing", FEATURE_MISSING_RATIO, "missing_ratio", "missing values", "are missing"),
    ("out_of_range", FEATURE_OUT_OF_RANGE_RATIO, "out_of_range_ratio", "out-of-range values",
     "are out of the valid range"),
    ("new_category", FEATURE_NEW_CATEGORY_RATIO, "new_category_ratio", "new categories",
     "are categories unseen in the reference"),
)
"""(check label, metric, threshold field, summary noun, description verb) of DriftwatchDataQuality's rules."""


def _data_quality(cfg: Config) -> Iterator[Rule]:
    keeps = (*IDENTITY, "feature")
    for scope, s in _enabled(cfg, "data_quality"):
        for check, metric, attr, noun, verb in DATA_QUALITY_CHECKS:
            threshold = getattr(s, attr)
            yield Rule(
                "driftwatch-data-quality",
                "DriftwatchDataQuality",
                _gated(f"{_max_by(keeps, scope.selector(metric))} > {_num(threshold)}", scope),
                s.for_,
                {**scope.labels, "severity": s.severity, "check": check},
                _annotations(
                    cfg, scope, "DriftwatchDataQuality",
                    f"Model {{{{ $labels.model }}}}: column {{{{ $labels.feature }}}} has {noun}",
                    f"{{{{ $value | humanizePercentage }}}} of the values of column {{{{ $labels.feature }}}} "
                    f"of model {{{{ $labels.model }}}} {verb} (allowed: {threshold * 100:g}%).",
                ),
                scope.models,
                keeps,
            )


PERFORMANCE_KINDS = ("estimated", "realized")
"""The `kind` label of the performance families: estimated before labels arrive, realized from them."""


def performance_kinds(model: ModelConfig) -> tuple[str, ...]:
    """The kinds the monitor judges for `model`: estimated only for a metric CBPE can estimate from
    the model's class probabilities, realized for every model with a `performance` section."""
    perf = model.performance
    if perf is None:
        return ()
    estimable = bool(perf.probabilities) and PERFORMANCE_METRICS[perf.headline].estimable
    return PERFORMANCE_KINDS if estimable else ("realized",)


def _models_matcher(models: tuple[ModelConfig, ...]) -> str:
    """One model's matchers, or several models' names (models sharing a name share their settings)."""
    if len(models) == 1:
        return models[0].matcher
    return f'model=~"{"|".join(sorted({m.name for m in models}))}"'


PERFORMANCE_THRESHOLD_QUERY = f"max({MODEL_PERFORMANCE_THRESHOLD}{{model=%q,metric=%q,kind=%q}})"
PERFORMANCE_REFERENCE_QUERY = f"max({MODEL_PERFORMANCE_REFERENCE}{{model=%q,metric=%q}})"
"""What the description shows beside the value (`query` template function; the alert's own labels fill %q)."""

_PERFORMANCE_TEXT = {
    "estimated": ("estimated", "estimated from its calibrated class probabilities (CBPE, before labels arrive)"),
    "realized": ("realized", "measured on its labelled predictions"),
}


def _performance_degraded(cfg: Config) -> Iterator[Rule]:
    """DriftwatchPerformanceDegraded, one name at two severities: the estimate warns, the labels confirm.

    The monitor judges degradation itself (`driftwatch_model_performance_degraded`, a threshold holding
    the model's false-alarm rate per window); the rule fires on that judgement and carries the headline
    metric's value, which the config names, so only models with a `performance` section are selected.
    """
    for scope, s in _enabled(cfg, "performance_degraded"):
        by_metric: dict[str, list[ModelConfig]] = {}
        for m in scope.models:
            if m.performance is not None:
                by_metric.setdefault(m.performance.headline, []).append(m)
        for headline, group in sorted(by_metric.items()):
            metric = PERFORMANCE_METRICS[headline]
            direction = "below" if metric.higher_is_better else "above"
            for kind in PERFORMANCE_KINDS:
                models = tuple(m for m in group if kind in performance_kinds(m))
                if not models:
                    continue
                matcher = _models_matcher(models)
                value = f'{MODEL_PERFORMANCE}{{{matcher},kind="{kind}",metric="{headline}"}}'
                degraded = f'{MODEL_PERFORMANCE_DEGRADED}{{{matcher},kind="{kind}"}}'
                keeps = (*IDENTITY, "kind", "metric")
                expr = (f"{_max_by(keeps, value)} "
                        f"and on ({', '.join((*IDENTITY, 'kind'))}) ({_max_by((*IDENTITY, 'kind'), degraded)} == 1)")
                severity = s.estimated_severity if kind == "estimated" else s.realized_severity
                adjective, how = _PERFORMANCE_TEXT[kind]
                yield Rule(
                    "driftwatch-performance",
                    "DriftwatchPerformanceDegraded",
                    expr,
                    s.for_,
                    # kind and metric repeat the series' own values: they keep promtool's duplicate-rule
                    # lint quiet where two headline metrics, or both kinds, share a severity.
                    {**scope.labels, "severity": severity, "kind": kind, "metric": headline},
                    _annotations(
                        cfg, scope, "DriftwatchPerformanceDegraded",
                        f"Model {{{{ $labels.model }}}}: {adjective} {headline} degraded to "
                        '{{ printf "%.3g" $value }}',
                        f"The {headline} of model {{{{ $labels.model }}}}, {how}, is "
                        f'{{{{ printf "%.3g" $value }}}}, {direction} its degradation threshold of '
                        f"{query_value(PERFORMANCE_THRESHOLD_QUERY, ('model', 'metric', 'kind'))} "
                        f"(reference: {query_value(PERFORMANCE_REFERENCE_QUERY, ('model', 'metric'))}), "
                        f"for at least {_dur(s.for_)}. The threshold is set from the reference so that unchanged "
                        "data crosses it in at most `false_alarm_rate` of the windows.",
                    ),
                    models,
                    keeps,
                )


def _no_traffic(cfg: Config) -> Iterator[Rule]:
    for scope, s in _enabled(cfg, "no_traffic"):
        rate = f"rate({scope.selector(EVENTS_INGESTED_TOTAL)}[{RATE_WINDOW}])"
        yield Rule(
            "driftwatch-capture",
            "DriftwatchNoTraffic",
            f"sum by ({', '.join(IDENTITY)}) ({rate}) == 0",
            s.for_,
            {**scope.labels, "severity": s.severity},
            _annotations(
                cfg, scope, "DriftwatchNoTraffic",
                "Model {{ $labels.model }}: no events ingested",
                "The monitor ingested no events for model {{ $labels.model }} in the last "
                f"{RATE_WINDOW} (and for {_dur(s.for_)} before alerting): "
                "drift is not being evaluated.",
            ),
            scope.models,
        )


def _sidecar_dropping(cfg: Config) -> Iterator[Rule]:
    for scope, s in _enabled(cfg, "sidecar_dropping"):
        rate = f"rate({scope.selector(SIDECAR_EVENTS_DROPPED_TOTAL)}[{RATE_WINDOW}])"
        keeps = (*IDENTITY, "reason")
        yield Rule(
            "driftwatch-capture",
            "DriftwatchSidecarDroppingEvents",
            f"sum by ({', '.join(keeps)}) ({rate}) > 0",
            s.for_,
            {**scope.labels, "severity": s.severity},
            _annotations(
                cfg, scope, "DriftwatchSidecarDroppingEvents",
                "Model {{ $labels.model }}: capture sidecars drop events ({{ $labels.reason }})",
                "Sidecars of model {{ $labels.model }} drop {{ $value | humanize }} events/s "
                "(reason {{ $labels.reason }}): drift is evaluated on part of the traffic only.",
            ),
            scope.models,
            keeps,
        )


def _evaluation_stale(cfg: Config) -> Iterator[Rule]:
    for scope, s in _enabled(cfg, "evaluation_stale"):
        rate = f"rate({scope.selector(EVENTS_INGESTED_TOTAL)}[{RATE_WINDOW}])"
        age = f"time() - {_max_by(IDENTITY, scope.selector(LAST_EVALUATION_TIMESTAMP_SECONDS))}"
        expr = f"({age} > {_num(s.max_age)}) and {ON_MODEL} (sum by ({', '.join(IDENTITY)}) ({rate}) > 0)"
        yield Rule(
            "driftwatch-monitor",
            "DriftwatchEvaluationStale",
            _gated(expr, scope),
            s.for_,
            {**scope.labels, "severity": s.severity},
            _annotations(
                cfg, scope, "DriftwatchEvaluationStale",
                "Model {{ $labels.model }}: drift not evaluated for {{ $value | humanizeDuration }}",
                "Model {{ $labels.model }} receives traffic and has a full window, but its last drift evaluation "
                f"was {{{{ $value | humanizeDuration }}}} ago (allowed: {format_duration(s.max_age)}).",
            ),
            scope.models,
        )
        # No timestamp exists before the first evaluation (a 0 would lie), so the rule above cannot see
        # a model that never evaluated: its window is full enough for one, yet there is no timestamp.
        # It gets the same allowance as an evaluated model: max_age, then `for`.
        never_for = s.max_age + s.for_
        yield Rule(
            "driftwatch-monitor",
            "DriftwatchEvaluationStale",
            f"{_max_by(IDENTITY, _records_gate(scope, _first_due))} unless {ON_MODEL} "
            f"{scope.selector(LAST_EVALUATION_TIMESTAMP_SECONDS)}",
            never_for,
            {**scope.labels, "severity": s.severity, **NEVER_EVALUATED},
            _annotations(
                cfg, scope, "DriftwatchEvaluationStale",
                "Model {{ $labels.model }}: drift never evaluated",
                "Model {{ $labels.model }} has never been evaluated, although its window has held enough records "
                f"for an evaluation for {_dur(never_for)} (it holds {{{{ $value | humanize }}}} now): its reference "
                "may have failed to profile, or the evaluation loop is not running.",
            ),
            scope.models,
        )


def retrain_failed_window(for_: float) -> float:
    """Seconds of the increase() range: the hour after `for` (in whole minutes, aligned to scrapes)."""
    return RETRAIN_FAILED_WINDOW + 60 * math.ceil(for_ / 60)


def _retrain_failed(cfg: Config) -> Iterator[Rule]:
    outcome = f'outcome=~"{"|".join(FAILED_OUTCOMES)}"'
    for scope, s in _enabled(cfg, "retrain_failed"):
        window = _dur(retrain_failed_window(s.for_))
        increase = f"increase({scope.selector(RETRAIN_JOBS_FINISHED_TOTAL, outcome)}[{window}])"
        keeps = (*IDENTITY, "outcome")
        yield Rule(
            "driftwatch-retraining",
            "DriftwatchRetrainJobFailed",
            f"sum by ({', '.join(keeps)}) ({increase}) > 0",
            s.for_,
            {**scope.labels, "severity": s.severity},
            _annotations(
                cfg, scope, "DriftwatchRetrainJobFailed",
                "Model {{ $labels.model }}: retraining job {{ $labels.outcome }}",
                "{{ $value | humanize }} retraining job(s) of model {{ $labels.model }} ended "
                f"{{{{ $labels.outcome }}}} in the last {window}.",
            ),
            scope.models,
            keeps,
        )


def _monitor_down(cfg: Config) -> Iterator[Rule]:
    a = cfg.defaults.alerts
    if not a.monitor_down.enabled:
        return
    up = f'{PROMETHEUS_UP}{{job="{a.job_label}"}}'
    yield Rule(
        "driftwatch-monitor",
        "DriftwatchMonitorDown",
        f"{up} == 0 or absent({up})",
        a.monitor_down.for_,
        {"severity": a.monitor_down.severity},
        {
            "summary": "The driftwatch monitor is down",
            "description": f'Prometheus cannot scrape the driftwatch monitor (job="{a.job_label}" is down or '
            "absent): no drift is evaluated and no drift alert can fire.",
            "runbook_url": f"{a.runbook_url}#{runbook_anchor('DriftwatchMonitorDown')}",
        },
        tuple(cfg.models),
        None,  # the scrape target is what is down: its labels are the alert's
    )


_BUILDERS = (
    _dataset_drift, _feature_drift, _prediction_drift, _data_quality, _performance_degraded, _no_traffic,
    _sidecar_dropping, _evaluation_stale, _monitor_down, _retrain_failed,
)


def build(cfg: Config) -> list[Rule]:
    """Every rule, in group order then alert order."""
    rules = [r for builder in _BUILDERS for r in builder(cfg)]
    return sorted(rules, key=lambda r: GROUPS.index(r.group))


def groups(cfg: Config) -> dict[str, Any]:
    """The `groups:` document Prometheus and promtool load."""
    rules = build(cfg)
    return {
        "groups": [
            {"name": name, "rules": [r.to_dict() for r in rules if r.group == name]}
            for name in GROUPS
            if any(r.group == name for r in rules)
        ]
    }
