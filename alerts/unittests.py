"""promtool unit tests for the generated rules, generated from the same config.

For every alert and every model: series that stay quiet (no alert), cross the threshold (pending,
then firing after `for`), and, for dataset drift, cross warning then critical (warning alone, then
both), and for performance, the estimated value at one severity and the realized one at the other,
only for the models with a `performance` section. Windows below `min_records` must not alert, nor may a never-evaluated model whose window is
still short of its first evaluation. Drift alerts keep firing (no new `for`) when the monitor restarts
as a new pod and when a fleet replica hands a model over to another (its series move); so does
performance degradation. Expected annotations are rendered by
alerts.gotemplate, so promtool also checks the templates. Timelines use 1-minute samples and are
sized from each alert's `for`, so they stay valid whatever the config says.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alerts.gotemplate import render
from alerts.rules import (
    DATA_QUALITY_CHECKS,
    FAILED_OUTCOMES,
    NEVER_EVALUATED,
    PERFORMANCE_REFERENCE_QUERY,
    PERFORMANCE_THRESHOLD_QUERY,
    PROMETHEUS_UP,
    Rule,
    build,
    first_due_records,
    performance_kinds,
    prediction_output,
    retrain_failed_window,
)
from monitor.core.config import Config, FeatureConfig, ModelConfig
from monitor.core.performance_metrics import METRICS as PERFORMANCE_METRICS
from monitor.core.performance_metrics import names_for
from monitor.exporter.names import (
    DATASET_DRIFT_SHARE,
    EVENTS_INGESTED_TOTAL,
    FEATURE_DRIFT_DETECTED,
    FEATURE_DRIFT_SEVERITY,
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

__all__ = ["RULES_FILE", "unit_tests"]

RULES_FILE = "rules.yaml"
WHERE = {"cluster": "eu-west", "namespace": "ml"}
"""Where the test's models run: labels every series carries and every alert must keep (IDENTITY)."""
SIDECAR = {"instance": "10.0.0.7:8081", "job": "driftwatch-sidecar", **WHERE}
SEVERITY = 2.5
"""A drifted column's severity (multiples of its threshold)."""
PREDICTION_SEVERITY = 1.75


def _where(model: ModelConfig) -> dict[str, str]:
    """`WHERE`, with the model's own namespace when it has one (its series carry that, not the target's)."""
    return {**WHERE, "namespace": model.namespace} if model.namespace else WHERE


def _minutes(seconds: float) -> int:
    return math.ceil(seconds / 60)


def _selector(metric: str, labels: dict[str, str]) -> str:
    return metric + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _fmt(v: float) -> str:
    return repr(round(float(v), 9))


def _steps(*segments: tuple[float, int]) -> str:
    """promtool's series notation for constant segments of (value, samples)."""
    return " ".join(f"{_fmt(v)}x{n - 1}" for v, n in segments)


def _counter(start: float, per_sample: float, samples: int) -> str:
    return f"{_fmt(start)}+{_fmt(per_sample)}x{samples - 1}"


@dataclass
class _Group:
    name: str
    series: list[dict[str, str]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)

    def add(self, metric: str, labels: dict[str, str], values: str) -> None:
        self.series.append({"series": _selector(metric, labels), "values": values})

    def expect(self, minute: int, alert: str, alerts: list[dict[str, Any]]) -> None:
        self.checks.append({"eval_time": f"{minute}m", "alertname": alert, "exp_alerts": alerts})

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "interval": "1m", "input_series": self.series, "alert_rule_test": self.checks}


class _Rules:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.all = build(cfg)

    def find(self, alert: str, model: ModelConfig, **labels: str) -> Rule | None:
        for r in self.all:
            if r.alert == alert and model.name in {m.name for m in r.models} and labels.items() <= r.labels.items():
                return r
        return None

    def expected(self, alert: str, model: ModelConfig, series: dict[str, str], value: float,
                 queries: dict[str, float] | None = None, **labels: str) -> list[dict[str, Any]]:
        """The alert the rule fires for `series` at `value`; none when the alert is disabled.
        `queries`: what the annotations' `query` actions find (alerts.gotemplate.render)."""
        rule = self.find(alert, model, **labels)
        if rule is None:
            return []
        return [_alert(rule, series, value, queries)]


def _kept(rule: Rule, series: dict[str, str]) -> dict[str, str]:
    return series if rule.keeps is None else {k: v for k, v in series.items() if k in rule.keeps}


def _alert(rule: Rule, series: dict[str, str], value: float, queries: dict[str, float] | None = None) -> dict[str, Any]:
    return {
        "exp_labels": dict(sorted({**_kept(rule, series), **rule.labels}.items())),
        "exp_annotations": {k: render(v, series, value, queries) for k, v in sorted(rule.annotations.items())},
    }


def _method(cfg: Config, model: ModelConfig, col: FeatureConfig) -> str:
    """The method label the exporter would report for `col` (auto resolved for a small reference)."""
    policy = cfg.drift_policy(model)
    method = (col.drift.method if col.drift else "auto")
    if method == "auto":
        method = (policy.numeric if col.type == "numeric" else policy.categorical).method
    if method == "auto":
        method = "ks" if col.type == "numeric" else "chisquare"
    return method


def _monitor(cfg: Config, model: ModelConfig, **extra: str) -> dict[str, str]:
    return {"instance": "driftwatch:8080", "job": cfg.defaults.alerts.job_label, "model": model.name, **_where(model), **extra}


def _two_namespaces(cfg: Config, rules: _Rules, model: ModelConfig) -> _Group:
    """Models of one name in two namespaces are two models: one drifting pages for itself alone."""
    dd = cfg.alerts_for(model).dataset_drift
    seg = _minutes(dd.for_) + 5
    g = _Group(f"DriftwatchDatasetDrift {model.name}: the same name in another namespace is another model")
    drifting = _monitor(cfg, model)
    quiet = _monitor(cfg, model, namespace="ml-staging")
    for labels, share in ((drifting, dd.critical), (quiet, 0.0)):
        g.add(DATASET_DRIFT_SHARE, labels, _steps((share, seg)))
        g.add(WINDOW_RECORDS, labels, _steps((model.window.min_records, seg)))
    fired = [
        *rules.expected("DriftwatchDatasetDrift", model, drifting, dd.critical, severity="critical"),
        *rules.expected("DriftwatchDatasetDrift", model, drifting, dd.critical, severity="warning"),
    ]
    g.expect(seg - 1, "DriftwatchDatasetDrift", sorted(fired, key=lambda a: a["exp_labels"]["severity"]))
    return g


def _dataset_drift(cfg: Config, rules: _Rules, model: ModelConfig) -> _Group:
    dd = cfg.alerts_for(model).dataset_drift
    f = _minutes(dd.for_)
    seg = f + 5
    g = _Group(f"DriftwatchDatasetDrift {model.name}: quiet, warning, then critical")
    labels = _monitor(cfg, model)
    values: list[tuple[float, int]] = []
    t = 0
    if dd.warning > 0:
        values += [(0.0, seg), (dd.warning * 0.9, seg)]
        g.expect(seg - 1, "DriftwatchDatasetDrift", [])
        g.expect(2 * seg - 1, "DriftwatchDatasetDrift", [])
        t = 2 * seg
    if dd.warning < dd.critical:
        mid = round((dd.warning + dd.critical) / 2, 6)
        values.append((mid, seg))
        if f >= 2:
            g.expect(t + f - 1, "DriftwatchDatasetDrift", [])
        g.expect(t + f + 1, "DriftwatchDatasetDrift",
                 rules.expected("DriftwatchDatasetDrift", model, labels, mid, severity="warning"))
        t += seg
    values.append((dd.critical, seg))
    fired = [
        *rules.expected("DriftwatchDatasetDrift", model, labels, dd.critical, severity="critical"),
        *rules.expected("DriftwatchDatasetDrift", model, labels, dd.critical, severity="warning"),
    ]
    g.expect(t + f + 1, "DriftwatchDatasetDrift", sorted(fired, key=lambda a: a["exp_labels"]["severity"]))
    total = sum(n for _, n in values)
    g.add(DATASET_DRIFT_SHARE, labels, _steps(*values))
    g.add(WINDOW_RECORDS, labels, _steps((model.window.min_records, total)))
    return g


def _monitor_restarted(cfg: Config, rules: _Rules, model: ModelConfig) -> _Group:
    """Drift goes on while the monitor restarts as a new pod: the alerts keep firing, no `for` again."""
    a = cfg.alerts_for(model)
    seg = _minutes(max(a.dataset_drift.for_, a.feature_drift.for_)) + 5
    g = _Group(f"{model.name}: drift alerts keep firing across a monitor restart (new pod and instance)")
    old = {**_monitor(cfg, model), "pod": "driftwatch-0"}
    new = {**old, "instance": "10.0.0.9:8080", "pod": "driftwatch-1"}
    share = a.dataset_drift.critical
    exported = cfg.exported_features(model)
    col = next((c for c in model.columns if c.name in exported), None)
    # The old pod's series end with a stale marker; the new pod's start right after.
    timelines: tuple[tuple[dict[str, str], Callable[[float], str]], ...] = (
        (old, lambda v: f"{_steps((v, seg))} stale"),
        (new, lambda v: f"_x{seg - 1} {_steps((v, seg))}"),
    )
    for labels, values in timelines:
        _drifting(g, cfg, model, col, labels, values, share)
    after = seg + 2  # the new pod's series are 2 minutes old, far less than any `for`
    fired = [*rules.expected("DriftwatchDatasetDrift", model, new, share, severity="critical"),
             *rules.expected("DriftwatchDatasetDrift", model, new, share, severity="warning")]
    g.expect(after, "DriftwatchDatasetDrift", sorted(fired, key=lambda x: x["exp_labels"]["severity"]))
    if col is not None:
        g.expect(after, "DriftwatchFeatureDrift", rules.expected(
            "DriftwatchFeatureDrift", model, {**new, "feature": col.name, "method": _method(cfg, model, col)}, SEVERITY))
    return g


def _drifting(g: _Group, cfg: Config, model: ModelConfig, col: Any, labels: dict[str, str],
              values: Callable[[float], str], share: float) -> None:
    """A drifting model's series on one scrape target: dataset share, window size, and one feature's drift."""
    g.add(DATASET_DRIFT_SHARE, labels, values(share))
    g.add(WINDOW_RECORDS, labels, values(model.window.min_records))
    if col is not None:
        g.add(FEATURE_DRIFT_SEVERITY, {**labels, "feature": col.name, "method": _method(cfg, model, col)}, values(SEVERITY))
        g.add(FEATURE_DRIFT_DETECTED, {**labels, "feature": col.name}, values(1))


REPLICA_A = {"instance": "replica-a:8080", "pod": "driftwatch-0"}
REPLICA_B = {"instance": "replica-b:8080", "pod": "driftwatch-1"}
"""Scrape-target labels of two fleet replicas (fleet mode: a replica exports only its partitions' models)."""


def _replica_moved(cfg: Config, rules: _Rules, model: ModelConfig) -> _Group:
    """Fleet mode: the model's partition moves from replica A to replica B while its drift alerts fire.

    A's series end (a stale marker at the move) and B's begin at that same scrape, values unchanged, so
    no sample time sees both. The alerts fire before the move, at it and after it with the same labels:
    they neither resolve nor start their `for` again (B's series are younger than any `for`).
    """
    a = cfg.alerts_for(model)
    exported = cfg.exported_features(model)
    col = next((c for c in model.columns if c.name in exported), None)
    out = prediction_output(cfg, model)
    move = _minutes(max(a.dataset_drift.for_, a.feature_drift.for_, a.prediction_drift.for_)) + 5
    after = 3  # samples of B checked after the move, fewer than any `for` in whole minutes allows
    g = _Group(f"{model.name}: drift alerts keep firing when the model moves from replica A to replica B")
    old = {**_monitor(cfg, model), **REPLICA_A}
    new = {**_monitor(cfg, model), **REPLICA_B}
    share = a.dataset_drift.critical
    timelines: tuple[tuple[dict[str, str], Callable[[float], str]], ...] = (
        (old, lambda v: f"{_steps((v, move))} stale"),  # samples up to move - 1, gone at the move
        (new, lambda v: f"_x{move} {_steps((v, after + 1))}"),  # first sample at the move
    )
    for labels, values in timelines:
        _drifting(g, cfg, model, col, labels, values, share)
        if out is not None:
            output = next(c for c in model.outputs if c.name == out)
            g.add(PREDICTION_DRIFT_SEVERITY, {**labels, "method": _method(cfg, model, output)}, values(PREDICTION_SEVERITY))
            g.add(FEATURE_DRIFT_DETECTED, {**labels, "feature": out}, values(1))
    for minute, labels in ((move - 1, old), (move, new), (move + 1, new), (move + after, new)):
        fired = [*rules.expected("DriftwatchDatasetDrift", model, labels, share, severity="critical"),
                 *rules.expected("DriftwatchDatasetDrift", model, labels, share, severity="warning")]
        g.expect(minute, "DriftwatchDatasetDrift", sorted(fired, key=lambda x: x["exp_labels"]["severity"]))
        if col is not None:
            g.expect(minute, "DriftwatchFeatureDrift", rules.expected(
                "DriftwatchFeatureDrift", model, {**labels, "feature": col.name, "method": _method(cfg, model, col)},
                SEVERITY))
        if out is not None:
            output = next(c for c in model.outputs if c.name == out)
            g.expect(minute, "DriftwatchPredictionDrift", rules.expected(
                "DriftwatchPredictionDrift", model, {**labels, "method": _method(cfg, model, output)},
                PREDICTION_SEVERITY))
    return g


def _feature_drift(cfg: Config, rules: _Rules, model: ModelConfig) -> _Group | None:
    exported = set(cfg.exported_features(model))
    cols = [c for c in model.columns if c.name in exported][:2]
    if not cols:
        return None
    f = _minutes(cfg.alerts_for(model).feature_drift.for_)
    seg = f + 5
    g = _Group(f"DriftwatchFeatureDrift {model.name}: one column drifts, another does not")
    fired: list[dict[str, Any]] = []
    for i, col in enumerate(cols):
        drifts = i == 0
        score = _monitor(cfg, model, feature=col.name, method=_method(cfg, model, col))
        g.add(FEATURE_DRIFT_SEVERITY, score, _steps((SEVERITY, 2 * seg)))
        g.add(FEATURE_DRIFT_DETECTED, _monitor(cfg, model, feature=col.name),
              _steps((0, seg), (1 if drifts else 0, seg)))
        if drifts:
            fired = rules.expected("DriftwatchFeatureDrift", model, score, SEVERITY)
    g.add(WINDOW_RECORDS, _monitor(cfg, model), _steps((model.window.min_records, 2 * seg)))
    g.expect(seg - 1, "DriftwatchFeatureDrift", [])
    if f >= 2:
        g.expect(seg + f - 1, "DriftwatchFeatureDrift", [])
    g.expect(seg + f + 1, "DriftwatchFeatureDrift", fired)
    return g


def _prediction_drift(cfg: Config, rules: _Rules, model: ModelConfig) -> _Group | None:
    if not model.outputs or model.outputs[0].name not in cfg.exported_features(model):
        return None
    out = model.outputs[0]
    f = _minutes(cfg.alerts_for(model).prediction_drift.for_)
    seg = f + 5
    g = _Group(f"DriftwatchPredictionDrift {model.name}: output {out.name} drifts")
    score = _monitor(cfg, model, method=_method(cfg, model, out))
    g.add(PREDICTION_DRIFT_SEVERITY, score, _steps((PREDICTION_SEVERITY, 2 * seg)))
    g.add(FEATURE_DRIFT_DETECTED, _monitor(cfg, model, feature=out.name), _steps((0, seg), (1, seg)))
    g.add(WINDOW_RECORDS, _monitor(cfg, model), _steps((model.window.min_records, 2 * seg)))
    g.expect(seg - 1, "DriftwatchPredictionDrift", [])
    g.expect(seg + f + 1, "DriftwatchPredictionDrift",
             rules.expected("DriftwatchPredictionDrift", model, score, PREDICTION_SEVERITY))
    return g


def _data_quality(cfg: Config, rules: _Rules, model: ModelConfig) -> _Group | None:
    exported = cfg.exported_features(model)
    if not exported:
        return None
    dq = cfg.alerts_for(model).data_quality
    f = _minutes(dq.for_)
    seg = f + 5
    g = _Group(f"DriftwatchDataQuality {model.name}: missing, out-of-range and new-category ratios rise")
    series = _monitor(cfg, model, feature=exported[0])
    fired = []
    for check, metric, attr, _noun, _verb in DATA_QUALITY_CHECKS:
        limit = getattr(dq, attr)
        high = round((limit + 1) / 2, 6) if limit < 1 else limit
        g.add(metric, series, _steps((limit / 2, seg), (high, seg)))
        if high > limit:
            fired += rules.expected("DriftwatchDataQuality", model, series, high, check=check)
    g.add(WINDOW_RECORDS, _monitor(cfg, model), _steps((model.window.min_records, 2 * seg)))
    g.expect(seg - 1, "DriftwatchDataQuality", [])
    if f >= 2:
        g.expect(seg + f - 1, "DriftwatchDataQuality", [])
    g.expect(seg + f + 1, "DriftwatchDataQuality", sorted(fired, key=lambda a: a["exp_labels"]["check"]))
    return g


def _small_window(cfg: Config, rules: _Rules, model: ModelConfig) -> _Group:
    """Everything drifted, but the window is below min_records: drift and quality alerts stay silent."""
    a = cfg.alerts_for(model)
    f = _minutes(max(a.dataset_drift.for_, a.feature_drift.for_, a.prediction_drift.for_, a.data_quality.for_))
    total = f + 10
    g = _Group(f"{model.name}: a window below min_records ({model.window.min_records}) never alerts")
    exported = cfg.exported_features(model)
    g.add(WINDOW_RECORDS, _monitor(cfg, model), _steps((model.window.min_records - 1, total)))
    g.add(DATASET_DRIFT_SHARE, _monitor(cfg, model), _steps((1, total)))
    for name in exported[:1]:
        col = next(c for c in model.columns if c.name == name)
        g.add(FEATURE_DRIFT_SEVERITY, _monitor(cfg, model, feature=name, method=_method(cfg, model, col)),
              _steps((SEVERITY, total)))
        g.add(FEATURE_DRIFT_DETECTED, _monitor(cfg, model, feature=name), _steps((1, total)))
        for _check, metric, _attr, _noun, _verb in DATA_QUALITY_CHECKS:
            g.add(metric, _monitor(cfg, model, feature=name), _steps((1, total)))
    if model.outputs:
        out = model.outputs[0]
        g.add(PREDICTION_DRIFT_SEVERITY, _monitor(cfg, model, method=_method(cfg, model, out)),
              _steps((PREDICTION_SEVERITY, total)))
        g.add(FEATURE_DRIFT_DETECTED, _monitor(cfg, model, feature=out.name), _steps((1, total)))
    for alert in ("DriftwatchDatasetDrift", "DriftwatchFeatureDrift", "DriftwatchPredictionDrift",
                  "DriftwatchDataQuality"):
        g.expect(total - 1, alert, [])
    return g


def _no_traffic(cfg: Config, rules: _Rules, model: ModelConfig) -> _Group:
    f = _minutes(cfg.alerts_for(model).no_traffic.for_)
    g = _Group(f"DriftwatchNoTraffic {model.name}: traffic, then none")
    fire = 14 + f + 1  # flat from minute 9, so rate over 5m is 0 from minute 14
    g.add(EVENTS_INGESTED_TOTAL, _monitor(cfg, model),
          f"{_counter(0, 60, 10)} {_fmt(540)}x{fire - 9}")
    g.expect(9, "DriftwatchNoTraffic", [])
    g.expect(fire, "DriftwatchNoTraffic", rules.expected("DriftwatchNoTraffic", model, {**_where(model), "model": model.name}, 0))
    return g


def _sidecar_dropping(cfg: Config, rules: _Rules, model: ModelConfig) -> _Group:
    f = _minutes(cfg.alerts_for(model).sidecar_dropping.for_)
    g = _Group(f"DriftwatchSidecarDroppingEvents {model.name}: a sidecar starts dropping 1 event/s")
    fire = max(10 + f, 14) + 1  # rising from minute 10; the 5m rate is exactly 1/s from minute 14
    labels = {**SIDECAR, **_where(model), "model": model.name, "reason": "queue_full"}
    g.add(SIDECAR_EVENTS_DROPPED_TOTAL, labels, f"0x9 {_counter(60, 60, fire - 9)}")
    g.expect(9, "DriftwatchSidecarDroppingEvents", [])
    g.expect(fire, "DriftwatchSidecarDroppingEvents",
             rules.expected("DriftwatchSidecarDroppingEvents", model, {**_where(model), "model": model.name, "reason": "queue_full"}, 1))
    return g


def _evaluation_stale(cfg: Config, rules: _Rules, model: ModelConfig) -> _Group:
    es = cfg.alerts_for(model).evaluation_stale
    g = _Group(f"DriftwatchEvaluationStale {model.name}: evaluations stop while traffic flows")
    last = 540.0  # evaluations every minute until minute 9
    first_stale = math.floor((last + es.max_age) / 60) + 1
    fire = first_stale + _minutes(es.for_) + 1
    labels = _monitor(cfg, model)
    g.add(LAST_EVALUATION_TIMESTAMP_SECONDS, labels, f"{_counter(0, 60, 10)} {_fmt(last)}x{fire - 9}")
    g.add(EVENTS_INGESTED_TOTAL, labels, _counter(0, 60, fire + 1))
    g.add(WINDOW_RECORDS, labels, _steps((model.window.min_records, fire + 1)))
    g.expect(9, "DriftwatchEvaluationStale", [])
    g.expect(fire, "DriftwatchEvaluationStale",
             rules.expected("DriftwatchEvaluationStale", model, labels, fire * 60 - last))
    return g


def _never_evaluated(cfg: Config, rules: _Rules, model: ModelConfig) -> _Group:
    """No evaluation timestamp at all: a window full enough for one alerts after max_age + for, and
    resolves once the model is evaluated."""
    es = cfg.alerts_for(model).evaluation_stale
    due = first_due_records(model.window)
    f = _minutes(es.max_age + es.for_)
    fire = f + 1
    g = _Group(f"DriftwatchEvaluationStale {model.name}: never evaluated with {due} records in its window, then evaluated")
    labels = _monitor(cfg, model)
    g.add(WINDOW_RECORDS, labels, _steps((due, fire + 4)))
    g.add(LAST_EVALUATION_TIMESTAMP_SECONDS, labels, f"_x{fire + 1} {_counter((fire + 1) * 60, 60, 3)}")
    if f >= 2:
        g.expect(f - 1, "DriftwatchEvaluationStale", [])
    g.expect(fire, "DriftwatchEvaluationStale",
             rules.expected("DriftwatchEvaluationStale", model, labels, due, None, **NEVER_EVALUATED))
    g.expect(fire + 2, "DriftwatchEvaluationStale", [])
    return g


def _not_yet_due(cfg: Config, rules: _Rules, model: ModelConfig) -> _Group:
    """Never evaluated, but one record short of the first due window: waiting for traffic, no alert."""
    es = cfg.alerts_for(model).evaluation_stale
    due = first_due_records(model.window)
    total = _minutes(es.max_age + es.for_) + 3
    g = _Group(f"DriftwatchEvaluationStale {model.name}: never evaluated, {due - 1} records are not enough yet")
    g.add(WINDOW_RECORDS, _monitor(cfg, model), _steps((due - 1, total)))
    g.add(EVENTS_INGESTED_TOTAL, _monitor(cfg, model), _counter(0, 60, total))
    g.expect(total - 1, "DriftwatchEvaluationStale", [])
    return g


def _retrain_failed(cfg: Config, rules: _Rules, model: ModelConfig) -> _Group:
    for_ = cfg.alerts_for(model).retrain_failed.for_
    f = _minutes(for_)
    window = int(retrain_failed_window(for_) // 60)
    g = _Group(f"DriftwatchRetrainJobFailed {model.name}: one job fails, one succeeds")
    # Both counters step 0 -> 1 one increase() window after the series start, so the range starts
    # on a sample and increase() is exactly 1 (no extrapolation).
    step = window + 1
    fire = step + f + 1
    for outcome in ("succeeded", FAILED_OUTCOMES[0]):
        g.add(RETRAIN_JOBS_FINISHED_TOTAL, _monitor(cfg, model, outcome=outcome),
              _steps((0, step), (1, fire - step + 1)))
    g.expect(step - 1, "DriftwatchRetrainJobFailed", [])
    g.expect(fire, "DriftwatchRetrainJobFailed",
             rules.expected("DriftwatchRetrainJobFailed", model, {**_where(model), "model": model.name, "outcome": "failed"}, 1))
    return g


PERFORMANCE_VALUES = {True: (0.86, 0.8, 0.9, 0.71), False: (12.0, 15.0, 11.5, 19.5)}
"""(reference, threshold, healthy, degraded) of a headline metric, by higher_is_better."""


def _query(template: str, *values: str) -> str:
    """The PromQL a `query_value` action runs: its %q filled with the alert's quoted labels."""
    pieces = template.split("%q")
    return pieces[0] + "".join(f'"{v}"' + rest for v, rest in zip(values, pieces[1:], strict=True))


@dataclass(frozen=True)
class _Performance:
    """The series of one model's judged performance, as the exporter serves them."""

    model: ModelConfig
    headline: str
    kinds: tuple[str, ...]
    reference: float
    threshold: float
    healthy: float
    degraded: float

    @classmethod
    def of(cls, model: ModelConfig) -> _Performance | None:
        perf = model.performance
        if perf is None:
            return None
        reference, threshold, healthy, degraded = PERFORMANCE_VALUES[PERFORMANCE_METRICS[perf.headline].higher_is_better]
        return cls(model, perf.headline, performance_kinds(model), reference, threshold, healthy, degraded)

    def series(self, g: _Group, labels: dict[str, str], values: Callable[[str, float, float], str]) -> None:
        """`values(kind, ok, bad)`: the timeline of a series of `kind` that is `ok` while that kind is
        healthy and `bad` once degraded (the reference has kind ``)."""
        perf = self.model.performance
        assert perf is not None
        g.add(MODEL_PERFORMANCE_REFERENCE, {**labels, "metric": self.headline},
              values("", self.reference, self.reference))
        for kind in self.kinds:
            g.add(MODEL_PERFORMANCE, {**labels, "kind": kind, "metric": self.headline},
                  values(kind, self.healthy, self.degraded))
            g.add(MODEL_PERFORMANCE_THRESHOLD, {**labels, "kind": kind, "metric": self.headline},
                  values(kind, self.threshold, self.threshold))
            g.add(MODEL_PERFORMANCE_DEGRADED, {**labels, "kind": kind}, values(kind, 0, 1))
        # Another metric of the same model, unchanged: it is shown, not judged.
        other = next(n for n in names_for(perf.task, probabilities=bool(perf.probabilities)) if n != self.headline)
        g.add(MODEL_PERFORMANCE, {**labels, "kind": "realized", "metric": other}, values("", 0.5, 0.5))

    def fired(self, rules: _Rules, labels: dict[str, str], kinds: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        out = []
        for kind in self.kinds if kinds is None else kinds:
            series = {**labels, "kind": kind, "metric": self.headline}
            queries = {
                _query(PERFORMANCE_THRESHOLD_QUERY, self.model.name, self.headline, kind): self.threshold,
                _query(PERFORMANCE_REFERENCE_QUERY, self.model.name, self.headline): self.reference,
            }
            out += rules.expected("DriftwatchPerformanceDegraded", self.model, series, self.degraded, queries, kind=kind)
        return sorted(out, key=lambda a: a["exp_labels"]["kind"])


def _performance_degraded(cfg: Config, rules: _Rules, model: ModelConfig) -> _Group | None:
    """The headline metric holds (degraded 0: quiet); then the estimate degrades (pending, then firing
    after `for` at its severity) while the realized value still holds; then the labels confirm it
    (both fire, the realized kind at its own severity)."""
    perf = _Performance.of(model)
    if perf is None:
        return None
    f = _minutes(cfg.alerts_for(model).performance_degraded.for_)
    seg = f + 5
    estimated = "estimated" in perf.kinds
    realized_at = 2 * seg if estimated else seg
    total = realized_at + seg
    g = _Group(f"DriftwatchPerformanceDegraded {model.name}: {perf.headline} holds, then degrades "
               f"({', then '.join(perf.kinds)})")

    def values(kind: str, ok: float, bad: float) -> str:
        start = {"estimated": seg, "realized": realized_at}.get(kind, total)
        return _steps(*((v, n) for v, n in ((ok, start), (bad, total - start)) if n))

    labels = _monitor(cfg, model)
    perf.series(g, labels, values)
    g.expect(seg - 1, "DriftwatchPerformanceDegraded", [])
    if f >= 2:
        g.expect(seg + f - 1, "DriftwatchPerformanceDegraded", [])
    if estimated:
        g.expect(seg + f + 1, "DriftwatchPerformanceDegraded", perf.fired(rules, {**_where(model), "model": model.name}, ("estimated",)))
        if f >= 2:
            g.expect(realized_at + f - 1, "DriftwatchPerformanceDegraded",
                     perf.fired(rules, {**_where(model), "model": model.name}, ("estimated",)))
    g.expect(realized_at + f + 1, "DriftwatchPerformanceDegraded", perf.fired(rules, {**_where(model), "model": model.name}))
    return g


def _performance_replica_moved(cfg: Config, rules: _Rules, model: ModelConfig) -> _Group | None:
    """Fleet mode or a monitor restart: the degraded model's series move from replica A to replica B;
    the alert neither resolves nor starts its `for` again (B's series are younger than any `for`)."""
    perf = _Performance.of(model)
    if perf is None:
        return None
    move = _minutes(cfg.alerts_for(model).performance_degraded.for_) + 5
    after = 3
    g = _Group(f"DriftwatchPerformanceDegraded {model.name}: keeps firing when the model moves from replica A "
               "to replica B")
    old = {**_monitor(cfg, model), **REPLICA_A}
    new = {**_monitor(cfg, model), **REPLICA_B}
    perf.series(g, old, lambda _kind, _ok, bad: f"{_steps((bad, move))} stale")
    perf.series(g, new, lambda _kind, _ok, bad: f"_x{move} {_steps((bad, after + 1))}")
    for minute in (move - 1, move, move + 1, move + after):
        g.expect(minute, "DriftwatchPerformanceDegraded", perf.fired(rules, {**_where(model), "model": model.name}))
    return g


def _performance_not_configured(cfg: Config, rules: _Rules) -> list[_Group]:
    """A model without a `performance` section is no one's performance alert, whatever it exports (here:
    every headline metric of the config, judged degraded)."""
    if not any(r.alert == "DriftwatchPerformanceDegraded" for r in rules.all):
        return []
    headlines = sorted({m.performance.headline for m in cfg.models if m.performance is not None})
    groups = []
    for model in cfg.models:
        if model.performance is not None:
            continue
        g = _Group(f"DriftwatchPerformanceDegraded {model.name}: no performance section, no alert")
        labels = _monitor(cfg, model)
        total = max(_minutes(cfg.alerts_for(m).performance_degraded.for_) for m in cfg.models) + 10
        for kind in ("estimated", "realized"):
            for headline in headlines:
                g.add(MODEL_PERFORMANCE, {**labels, "kind": kind, "metric": headline}, _steps((0.1, total)))
            g.add(MODEL_PERFORMANCE_DEGRADED, {**labels, "kind": kind}, _steps((1, total)))
        g.expect(total - 1, "DriftwatchPerformanceDegraded", [])
        groups.append(g)
    return groups


def _monitor_down(cfg: Config, rules: _Rules) -> list[_Group]:
    a = cfg.defaults.alerts
    rule = next((r for r in rules.all if r.alert == "DriftwatchMonitorDown"), None)
    f = _minutes(a.monitor_down.for_)
    seg = f + 5
    up = {"instance": "driftwatch:8080", "job": a.job_label}
    down = _Group("DriftwatchMonitorDown: the scrape target goes down")
    down.add(PROMETHEUS_UP, up, _steps((1, seg), (0, seg)))
    down.expect(seg - 1, "DriftwatchMonitorDown", [])
    if f >= 2:
        down.expect(seg + f - 1, "DriftwatchMonitorDown", [])
    down.expect(seg + f + 1, "DriftwatchMonitorDown", [_alert(rule, up, 0)] if rule else [])
    absent = _Group("DriftwatchMonitorDown: the scrape target is missing")
    absent.add(PROMETHEUS_UP, {"instance": "other:9090", "job": "other"}, _steps((1, seg)))
    absent.expect(f + 1, "DriftwatchMonitorDown", [_alert(rule, {"job": a.job_label}, 1)] if rule else [])
    return [down, absent]


_PER_MODEL = (
    _dataset_drift, _two_namespaces, _monitor_restarted, _replica_moved, _feature_drift, _prediction_drift, _data_quality, _small_window,
    _performance_degraded, _performance_replica_moved, _no_traffic, _sidecar_dropping, _evaluation_stale,
    _never_evaluated, _not_yet_due, _retrain_failed,
)


def unit_tests(cfg: Config, rules_file: str = RULES_FILE) -> dict[str, Any]:
    """The promtool test document for the rules of `cfg` written to `rules_file` (relative to it)."""
    rules = _Rules(cfg)
    groups = [g for model in cfg.models for make in _PER_MODEL if (g := make(cfg, rules, model)) is not None]
    groups += _performance_not_configured(cfg, rules)
    groups += _monitor_down(cfg, rules)
    return {
        "rule_files": [rules_file],
        "evaluation_interval": "1m",
        "tests": [g.to_dict() for g in groups],
    }
