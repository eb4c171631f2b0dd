"""Generated alert rules: golden files, the real promtool (check and unit tests), conventions."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import alerts
from alerts.rules import PROMETHEUS_UP, build, first_due_records
from dashboards.promql import metric_names
from monitor.core.config import Config, WindowConfig, load_config
from monitor.exporter.names import MONITOR_METRICS
from monitor.sidecar.metrics import SIDECAR_METRICS
from monitor.windows import SlidingWindow
from tests.golden import assert_golden

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
CONFIGS = {
    "example": ROOT / "examples" / "config.yaml",
    "override": Path(__file__).parent / "configs" / "override.yaml",
    "performance": Path(__file__).parent / "configs" / "performance.yaml",
    "namespaces": Path(__file__).parent / "configs" / "namespaces.yaml",
}
REQUIRED = {
    "DriftwatchDatasetDrift", "DriftwatchFeatureDrift", "DriftwatchPredictionDrift", "DriftwatchDataQuality",
    "DriftwatchNoTraffic", "DriftwatchSidecarDroppingEvents", "DriftwatchEvaluationStale",
    "DriftwatchRetrainJobFailed", "DriftwatchMonitorDown",
}
PERFORMANCE = "DriftwatchPerformanceDegraded"
"""Only for configs with a model's `performance` section."""
CRD = {"name": "driftwatch", "namespace": "monitoring", "labels": {"release": "kube-prometheus-stack"}}


def promtool() -> str:
    found = shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None)
    assert found, "promtool is required (Debian package prometheus; scripts/test.sh installs it)"
    return found


def check_golden(name: str, text: str) -> None:
    assert_golden(GOLDEN / name, text)


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Config, Path]:
    name = request.param
    cfg = load_config(CONFIGS[name])
    out = tmp_path_factory.mktemp(name)
    alerts.write(cfg, out, CRD)
    return name, cfg, out


def all_rules(cfg: Config) -> list[dict[str, Any]]:
    return [r for g in alerts.rules(cfg)["groups"] for r in g["rules"]]


def test_golden_files(case: tuple[str, Config, Path]) -> None:
    name, _, out = case
    for filename in (alerts.RULES_FILE, alerts.TESTS_FILE, alerts.CRD_FILE):
        check_golden(f"{name}/{filename}", (out / filename).read_text(encoding="utf-8"))


def test_promtool_check_rules(case: tuple[str, Config, Path], tmp_path: Path) -> None:
    _, _, out = case
    res = subprocess.run([promtool(), "check", "rules", str(out / alerts.RULES_FILE)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    # The PrometheusRule's spec is the same rules, and loads the same way.
    spec = yaml.safe_load((out / alerts.CRD_FILE).read_text())["spec"]
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    res = subprocess.run([promtool(), "check", "rules", str(tmp_path / "spec.yaml")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_promtool_unit_tests_pass(case: tuple[str, Config, Path]) -> None:
    _, _, out = case
    res = subprocess.run([promtool(), "test", "rules", alerts.TESTS_FILE], cwd=out, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout + res.stderr


@pytest.mark.parametrize(
    ("change", "broken_test"),
    [
        # Warning threshold raised above the midpoint: the warning/critical split test must notice.
        (lambda e: e.replace("(driftwatch_dataset_drift_share) >= 0.3", "(driftwatch_dataset_drift_share) >= 0.45"),
         "DriftwatchDatasetDrift wine: quiet, warning, then critical"),
        # Keyed on the scrape target again: a monitor restart would resolve the alert and restart its `for`.
        (lambda e: e.replace("max by (cluster, namespace, model) (driftwatch_dataset_drift_share)", "driftwatch_dataset_drift_share"),
         "wine: drift alerts keep firing across a monitor restart (new pod and instance)"),
        # The namespace aggregated away: a model of the same name in another namespace would merge with it.
        (lambda e: e.replace("max by (cluster, namespace, model) (driftwatch_dataset_drift_share)",
                             "max by (model) (driftwatch_dataset_drift_share)"),
         "DriftwatchDatasetDrift wine: the same name in another namespace is another model"),
        # Keyed on the replica: a fleet handing the model over to another replica would resolve and re-fire it.
        (lambda e: e.replace("max by (cluster, namespace, model) (driftwatch_dataset_drift_share)",
                             "max by (cluster, namespace, model, pod) (driftwatch_dataset_drift_share)"),
         "wine: drift alerts keep firing when the model moves from replica A to replica B"),
        (lambda e: e.replace("max by (cluster, namespace, model, feature, method) (",
                             "max by (cluster, namespace, model, feature, method, instance) ("),
         "wine: drift alerts keep firing when the model moves from replica A to replica B"),
        # The min_records gate removed: the small-window test must notice.
        (lambda e: e.replace("driftwatch_window_records >= 100", "driftwatch_window_records >= 0"),
         "wine: a window below min_records (100) never alerts"),
        # The job filter of MonitorDown broken: the absent() test must notice.
        (lambda e: e.replace('absent(up{job="driftwatch"})', 'absent(up{job="driftwatch", instance="x"}) unless up'),
         "DriftwatchMonitorDown: the scrape target is missing"),
        # The never-evaluated rule gated on any window: a model still waiting for traffic would page.
        (lambda e: e.replace('driftwatch_window_records{model="wine"} >= 250', 'driftwatch_window_records{model="wine"} >= 0'),
         "DriftwatchEvaluationStale wine: never evaluated, 249 records are not enough yet"),
        # The never-evaluated rule blind to evaluations: it would keep firing after the first one.
        (lambda e: e.replace(" unless on (cluster, namespace, model) driftwatch_last_evaluation_timestamp_seconds", ""),
         "DriftwatchEvaluationStale wine: never evaluated with 250 records in its window, then evaluated"),
    ],
)
def test_unit_tests_catch_broken_rules(change: Any, broken_test: str, tmp_path: Path) -> None:
    res = _promtool_on_mutated_rules(CONFIGS["example"], change, tmp_path)
    assert res.returncode != 0
    assert broken_test in res.stdout + res.stderr


def _promtool_on_mutated_rules(config: Path, change: Any, tmp_path: Path, alert: str | None = None) -> subprocess.CompletedProcess[str]:
    """`promtool test rules` on the generated tests, run against rules whose `expr` (of `alert`, or
    every rule) went through `change`: a mutation the tests must catch."""
    alerts.write(load_config(config), tmp_path)
    rules_path = tmp_path / alerts.RULES_FILE
    doc = yaml.safe_load(rules_path.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if alert is None or rule["alert"] == alert:
                rule["expr"] = change(rule["expr"])
    assert yaml.safe_dump(doc) != yaml.safe_dump(yaml.safe_load(rules_path.read_text())), "mutation did not apply"
    rules_path.write_text(yaml.safe_dump(doc))
    return subprocess.run([promtool(), "test", "rules", alerts.TESTS_FILE], cwd=tmp_path, capture_output=True, text=True)


def test_every_required_alert_with_firing_and_quiet_tests(case: tuple[str, Config, Path]) -> None:
    _, cfg, _ = case
    rules = all_rules(cfg)
    required = REQUIRED | ({PERFORMANCE} if any(m.performance for m in cfg.models) else set())
    assert {r["alert"] for r in rules} == required
    tests = alerts.unit_tests(cfg)["tests"]
    for alert in required:
        checks = [c for t in tests for c in t["alert_rule_test"] if c["alertname"] == alert]
        assert any(c["exp_alerts"] for c in checks), f"no promtool test where {alert} fires"
        assert any(not c["exp_alerts"] for c in checks), f"no promtool test where {alert} stays quiet"
    split = [c for t in tests for c in t["alert_rule_test"] if c["alertname"] == "DriftwatchDatasetDrift"]
    severities = [sorted(a["exp_labels"]["severity"] for a in c["exp_alerts"]) for c in split]
    assert ["warning"] in severities
    assert ["critical", "warning"] in severities


def test_rule_expressions_use_exported_metrics_only(case: tuple[str, Config, Path]) -> None:
    _, cfg, _ = case
    exported = MONITOR_METRICS | SIDECAR_METRICS | {PROMETHEUS_UP}
    for rule in all_rules(cfg):
        names = metric_names(rule["expr"])
        assert names, f"{rule['alert']} selects no metric"
        assert names <= exported, f"{rule['alert']}: {sorted(names - exported)}"


def test_annotations_and_labels(case: tuple[str, Config, Path]) -> None:
    _, cfg, _ = case
    anchors = {h.lower() for h in re.findall(r"^## (\w+)$", (ROOT / "docs" / "runbooks.md").read_text(), re.M)}
    public = cfg.server.public_url.rstrip("/")
    for rule in all_rules(cfg):
        a, labels = rule["annotations"], rule["labels"]
        assert labels["severity"] in {"info", "warning", "critical"}
        assert {"summary", "description", "runbook_url"} <= set(a)
        base, _, anchor = a["runbook_url"].partition("#")
        assert anchor == rule["alert"].lower(), a["runbook_url"]
        assert anchor in anchors, a["runbook_url"]
        assert base == cfg.defaults.alerts.runbook_url
        if rule["alert"] != "DriftwatchMonitorDown":
            assert "{{ $labels.model }}" in a["summary"] + a["description"]
            assert a["report_url"] == public + "/reports/{{ $labels.model }}?namespace={{ $labels.namespace }}"
        if rule["alert"] in {"DriftwatchDatasetDrift", "DriftwatchFeatureDrift", "DriftwatchPredictionDrift",
                             "DriftwatchDataQuality", "DriftwatchSidecarDroppingEvents",
                             "DriftwatchEvaluationStale", "DriftwatchRetrainJobFailed", PERFORMANCE}:
            assert "$value" in a["description"]


def test_drift_alerts_are_gated_on_min_records(case: tuple[str, Config, Path]) -> None:
    _, cfg, _ = case
    for rule in all_rules(cfg):
        if rule["alert"] in {"DriftwatchDatasetDrift", "DriftwatchFeatureDrift", "DriftwatchPredictionDrift",
                             "DriftwatchDataQuality", "DriftwatchEvaluationStale"}:
            assert "driftwatch_window_records" in rule["expr"], rule["alert"]
        if rule["alert"] == "DriftwatchFeatureDrift":
            assert "driftwatch_feature_drift_detected" in rule["expr"]
            assert rule["for"] != "0s"


def test_per_model_overrides() -> None:
    cfg = load_config(CONFIGS["override"])
    rules = all_rules(cfg)
    dataset = [r for r in rules if r["alert"] == "DriftwatchDatasetDrift"]
    shared = [r for r in dataset if "model" not in r["labels"]]
    churn = [r for r in dataset if r["labels"].get("model") == "churn"]
    assert len(shared) == 2
    assert len(churn) == 2
    assert all('model!~"churn"' in r["expr"] for r in shared)
    assert {r["labels"]["severity"]: r["for"] for r in churn} == {"warning": "5m", "critical": "5m"}
    assert any(">= 0.8" in r["expr"] for r in churn)
    # retrain_on_critical: false for churn, true by default.
    assert not any("driftwatch_action" in r["labels"] for r in churn)
    assert [r["labels"].get("driftwatch_action") for r in shared if r["labels"]["severity"] == "critical"] == ["retrain"]
    # Disabled for churn: only the shared rule exists, and it excludes churn.
    feature = [r for r in rules if r["alert"] == "DriftwatchFeatureDrift"]
    assert len(feature) == 1
    assert 'model!~"churn"' in feature[0]["expr"]
    # Alerts churn does not override stay shared (one rule, no model label).
    assert [r["labels"] for r in rules if r["alert"] == "DriftwatchNoTraffic"] == [{"severity": "warning"}]
    # Different min_records within the shared scope: each model gated on its own.
    assert 'driftwatch_window_records{model="fraud"} >= 50' in shared[0]["expr"]
    assert 'driftwatch_window_records{model="wine"} >= 100' in shared[0]["expr"]
    # fraud has no outputs: no prediction-drift clause for it.
    prediction = " ".join(r["expr"] for r in rules if r["alert"] == "DriftwatchPredictionDrift")
    assert 'model="fraud"' not in prediction.replace('driftwatch_window_records{model="fraud"}', "")
    monitor_down = next(r for r in rules if r["alert"] == "DriftwatchMonitorDown")
    assert monitor_down["expr"] == 'up{job="driftwatch-monitor"} == 0 or absent(up{job="driftwatch-monitor"})'


def test_prometheus_rule_manifest() -> None:
    cfg = load_config(CONFIGS["example"])
    obj = alerts.prometheus_rule(cfg, "drift-rules", "observability", {"release": "prom", "team": "ml"})
    schema = json.loads((ROOT / "tests" / "charts" / "prometheus_operator_schemas.json").read_text())
    jsonschema.validate(obj, schema["PrometheusRule"])
    assert obj["apiVersion"] == "monitoring.coreos.com/v1"
    assert obj["kind"] == "PrometheusRule"
    assert obj["metadata"]["name"] == "drift-rules"
    assert obj["metadata"]["namespace"] == "observability"
    assert obj["metadata"]["labels"]["release"] == "prom"
    assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == "driftwatch"
    assert obj["spec"] == alerts.rules(cfg)


@pytest.mark.parametrize(
    ("name", "namespace", "labels", "message"),
    [
        ("Bad_Name", "monitoring", {}, "invalid PrometheusRule name"),
        ("ok", "Not A Namespace", {}, "invalid namespace"),
        ("ok", "monitoring", {"bad key!": "x"}, "invalid label key"),
        ("ok", "monitoring", {"release": "x" * 64}, "invalid value"),
    ],
)
def test_prometheus_rule_refuses_invalid_metadata(name: str, namespace: str, labels: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        alerts.prometheus_rule(load_config(CONFIGS["example"]), name, namespace, labels)


def test_evaluation_stale_also_covers_models_never_evaluated(case: tuple[str, Config, Path]) -> None:
    """Without a last-evaluation series the age rule is blind; a second rule of the same name fires
    on a window full enough for its first evaluation, after max_age + for, with its own label."""
    _, cfg, _ = case
    never = [r for r in build(cfg) if r.alert == "DriftwatchEvaluationStale" and r.labels.get("reason") == "never_evaluated"]
    assert {m.name for r in never for m in r.models} == {m.name for m in cfg.models}
    for rule in never:
        assert "unless on (cluster, namespace, model) driftwatch_last_evaluation_timestamp_seconds" in rule.expr
        assert "never evaluated" in rule.annotations["summary"]
        assert "never been evaluated" in rule.annotations["description"]
        for model in rule.models:
            es = cfg.alerts_for(model).evaluation_stale
            assert rule.for_ == es.max_age + es.for_
            assert f">= {first_due_records(model.window)}" in rule.expr


def _first_evaluation(window: SlidingWindow, records: int) -> int | None:
    """Feed one record at a time as the service does; the ordinal of the first evaluated window."""
    for i in range(1, records + 1):
        window.add(i, float(i), i, [{"x": float(i)}], now=float(i))
        due = window.due(now=float(i))
        if due is None:
            continue
        if window.evaluable(due):
            return i
        window.done(due)
    return None


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_first_due_records_matches_the_monitors_count_grid(data: st.DataObject) -> None:
    """Once `driftwatch_window_records` reaches the gate, the monitor has evaluated the model, and
    not before it (where the gate fits in a window), so the rule neither pages early nor late."""
    records = data.draw(st.integers(1, 300), "records")
    step = data.draw(st.none() | st.integers(1, records), "step")
    min_records = data.draw(st.integers(1, records), "min_records")
    cfg = WindowConfig(records=records, step=step, min_records=min_records)
    gate = first_due_records(cfg)
    window = SlidingWindow(cfg)
    first = _first_evaluation(window, 3 * records + 3)
    assert first is not None
    assert min_records <= gate <= records
    if gate < records or first == records:
        sizes = SlidingWindow(cfg)
        for i in range(1, first + 1):
            sizes.add(i, float(i), i, [{"x": float(i)}], now=float(i))
            assert (sizes.current_size() >= gate) == (i >= first), (i, first, gate)
    else:  # the first due multiple of `step` lies beyond a full window: due within one more step
        assert records < first < records + cfg.effective_step


def test_first_due_records_on_a_time_grid() -> None:
    """`step_duration` windows: whatever holds min_records at a tick is evaluated at that tick."""
    cfg = WindowConfig(records=1000, step_duration=60.0, min_records=40)
    assert first_due_records(cfg) == 40
    for n, evaluable in ((39, False), (40, True)):
        window = SlidingWindow(cfg)
        for i in range(1, n + 1):
            window.add(i, 100.0 + i * 0.1, i, [{"x": float(i)}], now=100.0 + i * 0.1)
        due = window.due(now=120.0)
        assert due is not None
        assert window.evaluable(due) is evaluable
        assert window.current_size() == n


# -- DriftwatchPerformanceDegraded -----------------------------------------------------------------


def _performance_rules(name: str = "performance") -> list[dict[str, Any]]:
    return [r for r in all_rules(load_config(CONFIGS[name])) if r["alert"] == PERFORMANCE]


def _performance_rule(model: str, kind: str) -> dict[str, Any]:
    (rule,) = [r for r in _performance_rules() if f'model="{model}",kind="{kind}"' in r["expr"]]
    return rule


def test_performance_rules_live_in_their_own_group() -> None:
    groups = {g["name"]: g["rules"] for g in alerts.rules(load_config(CONFIGS["performance"]))["groups"]}
    assert {r["alert"] for r in groups["driftwatch-performance"]} == {PERFORMANCE}


def test_no_performance_section_no_performance_alert() -> None:
    assert _performance_rules("override") == []


def test_the_example_alerts_on_wine_performance_only() -> None:
    assert {r["labels"]["kind"] for r in _performance_rules("example") if 'model="wine"' in r["expr"]} == {"estimated", "realized"}


def test_models_without_a_performance_section_are_not_selected() -> None:
    exprs = " ".join(r["expr"] for r in _performance_rules())
    assert "churn" not in exprs


def test_estimated_warns_and_realized_confirms_at_the_configured_severities() -> None:
    assert _performance_rule("fraud", "estimated")["labels"]["severity"] == "warning"
    assert _performance_rule("fraud", "realized")["labels"]["severity"] == "critical"


def test_a_models_own_performance_alert_settings() -> None:
    estimated, realized = _performance_rule("wine", "estimated"), _performance_rule("wine", "realized")
    assert estimated["labels"] == {"kind": "estimated", "metric": "f1_macro", "model": "wine", "severity": "info"}
    assert realized["labels"]["severity"] == "warning"
    assert realized["for"] == "1h"
    assert _performance_rule("fraud", "realized")["for"] == "30m"


def test_the_alert_carries_the_headline_metric_of_the_config() -> None:
    expr = _performance_rule("fraud", "realized")["expr"]
    assert expr == (
        'max by (cluster, namespace, model, kind, metric) '
        '(driftwatch_model_performance{model="fraud",kind="realized",metric="roc_auc"}) '
        'and on (cluster, namespace, model, kind) (max by (cluster, namespace, model, kind) '
        '(driftwatch_model_performance_degraded{model="fraud",kind="realized"}) == 1)'
    )


def test_a_metric_nothing_estimates_before_labels_has_only_the_realized_rule() -> None:
    price = [r for r in _performance_rules() if 'model="price"' in r["expr"]]
    assert [r["labels"]["kind"] for r in price] == ["realized"]


def test_the_description_names_value_threshold_and_reference() -> None:
    description = _performance_rule("price", "realized")["annotations"]["description"]
    assert "The mae of model {{ $labels.model }}" in description
    assert 'is {{ printf "%.3g" $value }}, above its degradation threshold of' in description
    assert "driftwatch_model_performance_threshold{model=%q,metric=%q,kind=%q}" in description
    assert "driftwatch_model_performance_reference{model=%q,metric=%q}" in description


def test_the_alert_fires_with_the_reference_and_threshold_filled_in() -> None:
    tests = alerts.unit_tests(load_config(CONFIGS["performance"]))["tests"]
    fired = [a for t in tests if t["name"].startswith("DriftwatchPerformanceDegraded fraud: roc_auc holds")
             for c in t["alert_rule_test"] for a in c["exp_alerts"]]
    assert {a["exp_labels"]["severity"] for a in fired} == {"warning", "critical"}
    realized = next(a for a in fired if a["exp_labels"]["kind"] == "realized")
    assert "is 0.71, below its degradation threshold of 0.8 (reference: 0.86)" in realized["exp_annotations"]["description"]


@pytest.mark.parametrize(
    ("change", "broken_test"),
    [
        # Keyed on the scrape target: a model moving to another replica would restart the `for`.
        (lambda e: e.replace("max by (cluster, namespace, model, kind, metric) (", "max by (cluster, namespace, model, kind, metric, pod) ("),
         "DriftwatchPerformanceDegraded fraud: keeps firing when the model moves from replica A to replica B"),
        # The monitor's judgement ignored: a healthy value would page.
        (lambda e: e.split(" and on (cluster, namespace, model, kind) ")[0],
         "DriftwatchPerformanceDegraded fraud: roc_auc holds, then degrades (estimated, then realized)"),
        # The model filter dropped: a model without a performance section would page.
        (lambda e: e.replace('{model="fraud",', "{"),
         "DriftwatchPerformanceDegraded churn: no performance section, no alert"),
        # Both rules on the realized value: the estimate would no longer warn first.
        (lambda e: e.replace('kind="estimated"', 'kind="realized"'),
         "DriftwatchPerformanceDegraded fraud: roc_auc holds, then degrades (estimated, then realized)"),
    ],
)
def test_performance_unit_tests_catch_broken_rules(change: Any, broken_test: str, tmp_path: Path) -> None:
    res = _promtool_on_mutated_rules(CONFIGS["performance"], change, tmp_path, alert=PERFORMANCE)
    assert res.returncode != 0
    assert broken_test in res.stdout + res.stderr


def test_every_metric_a_rule_selects_is_documented(case: tuple[str, Config, Path]) -> None:
    """The on-call engineer following an alert looks its series up in docs/metrics.md."""
    _, cfg, _ = case
    doc = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    selected = {n for rule in all_rules(cfg) for n in metric_names(rule["expr"])} - {PROMETHEUS_UP}
    assert sorted(n for n in selected if f"`{n}`" not in doc) == []
