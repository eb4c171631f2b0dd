"""The exporter: contract names, HELP/TYPE, promtool-clean scrapes, start-up series, cardinality."""

from __future__ import annotations

import ast
import math
import subprocess
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pandas as pd
import pytest
from prometheus_client import make_wsgi_app
from prometheus_client.parser import text_string_to_metric_families

from monitor import __version__
from monitor.core.config import Config, load_config
from monitor.core.methods import DISTANCE_METHODS, P_VALUE_METHODS
from monitor.drift import DriftResult, detect
from monitor.exporter import names as n
from monitor.exporter.collector import KNOWN_REJECT_REASONS, RETRAIN_OUTCOMES, build_registry, render
from monitor.exporter.names import FLEET_METRICS, MLFLOW_METRICS, MONITOR_METRICS, PROCESS_METRICS
from monitor.exporter.service import ServiceStats
from monitor.performance.profile import LabelledRecords, PerformanceProfile
from monitor.resources import GpuUsage, PodUsage, ResourceSnapshot
from monitor.runtime import ModelSnapshot, PerformanceSnapshot
from monitor.runtime.snapshot import label_lag_histogram
from monitor.sidecar.metrics import SIDECAR_METRICS, SidecarMetrics
from retrain import history as retrain_history

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CONTRACT = {
    "driftwatch_feature_drift_severity": ("gauge", {"model", "feature", "method"}),
    "driftwatch_feature_drift_distance": ("gauge", {"model", "feature", "method"}),
    "driftwatch_feature_drift_distance_threshold": ("gauge", {"model", "feature", "method"}),
    "driftwatch_feature_drift_p_value": ("gauge", {"model", "feature", "method"}),
    "driftwatch_feature_drift_p_value_threshold": ("gauge", {"model", "feature", "method"}),
    "driftwatch_feature_drift_detected": ("gauge", {"model", "feature"}),
    "driftwatch_dataset_drift_share": ("gauge", {"model"}),
    "driftwatch_dataset_drift_detected": ("gauge", {"model"}),
    "driftwatch_prediction_drift_severity": ("gauge", {"model", "method"}),
    "driftwatch_window_records": ("gauge", {"model"}),
    "driftwatch_last_evaluation_timestamp_seconds": ("gauge", {"model"}),
    "driftwatch_feature_missing_ratio": ("gauge", {"model", "feature"}),
    "driftwatch_feature_out_of_range_ratio": ("gauge", {"model", "feature"}),
    "driftwatch_feature_new_category_ratio": ("gauge", {"model", "feature"}),
    "driftwatch_events_ingested": ("counter", {"model"}),
    "driftwatch_events_rejected": ("counter", {"model", "reason"}),
    "driftwatch_model_cpu_usage_cores": ("gauge", {"model", "pod"}),
    "driftwatch_model_memory_working_set_bytes": ("gauge", {"model", "pod"}),
    "driftwatch_model_gpu_utilization_ratio": ("gauge", {"model", "pod", "gpu"}),
    "driftwatch_model_gpu_memory_used_bytes": ("gauge", {"model", "pod", "gpu"}),
    "driftwatch_resource_collection_errors": ("counter", {"source", "reason"}),
    "driftwatch_retrain_jobs_launched": ("counter", {"model"}),
    "driftwatch_retrain_jobs_finished": ("counter", {"model", "outcome"}),
    "driftwatch_retrain_decisions": ("counter", {"model", "decision"}),
    "driftwatch_retrain_last_trigger_timestamp_seconds": ("gauge", {"model"}),
    "driftwatch_retrain_jobs_active": ("gauge", {"model"}),
    "driftwatch_build_info": ("gauge", {"version"}),
    "driftwatch_model_performance": ("gauge", {"model", "metric", "kind"}),
    "driftwatch_model_performance_reference": ("gauge", {"model", "metric"}),
    "driftwatch_model_performance_threshold": ("gauge", {"model", "metric", "kind"}),
    "driftwatch_model_performance_degraded": ("gauge", {"model", "kind"}),
    "driftwatch_label_coverage_ratio": ("gauge", {"model"}),
    "driftwatch_labels": ("counter", {"model", "outcome"}),
    "driftwatch_label_lag_seconds": ("histogram", {"model"}),
    "driftwatch_http_requests": ("counter", {"method", "route", "code"}),
    "driftwatch_http_request_duration_seconds": ("histogram", {"method", "route"}),
    "driftwatch_evaluation_duration_seconds": ("histogram", {"model"}),
    "driftwatch_store_size_bytes": ("gauge", set()),
    # prometheus-client's ProcessCollector (Linux) and PlatformCollector, on the monitor's registry
    "process_virtual_memory_bytes": ("gauge", set()),
    "process_resident_memory_bytes": ("gauge", set()),
    "process_start_time_seconds": ("gauge", set()),
    "process_cpu_seconds": ("counter", set()),
    "process_open_fds": ("gauge", set()),
    "process_max_fds": ("gauge", set()),
    "python_info": ("gauge", {"implementation", "major", "minor", "patchlevel", "version"}),
}
SELF_EMBEDDED_ONLY = frozenset({n.STORE_SIZE_BYTES})
"""Absent from a fleet replica (no embedded store)."""
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
PERFORMANCE_FAMILIES = frozenset({
    n.MODEL_PERFORMANCE, n.MODEL_PERFORMANCE_REFERENCE, n.MODEL_PERFORMANCE_THRESHOLD, n.MODEL_PERFORMANCE_DEGRADED,
    n.LABEL_COVERAGE_RATIO, n.LABELS_TOTAL, n.LABEL_LAG_SECONDS,
})
"""Exported for models with a `performance` section only."""


def _family(sample: str) -> str:
    """A histogram's `_bucket`, `_sum` and `_count` samples belong to its family."""
    for suffix in HISTOGRAM_SUFFIXES:
        base = sample.removesuffix(suffix)
        if base != sample and base in MONITOR_METRICS:
            return base
    return sample


@dataclass(frozen=True)
class Retrain:
    """The shape of retrain.controller.RetrainSnapshot."""

    active: int
    launched: int
    finished: Mapping[str, int]
    last_trigger: float | None
    decisions: Mapping[str, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(EXAMPLES / "config.yaml")


@pytest.fixture(scope="module")
def results(config: Config) -> dict[str, DriftResult]:
    """The real drift engine on the example data: churn's current data drifts, wine against itself does not."""
    churn = detect(pd.read_csv(EXAMPLES / "data/churn_reference.csv"), pd.read_csv(EXAMPLES / "data/churn_current.csv"), config, "churn")
    wine_ref = pd.read_csv(EXAMPLES / "data/wine_reference.csv")
    wine = detect(wine_ref, wine_ref.sample(frac=0.7, random_state=1), config, "wine")
    return {"churn": churn, "wine": wine}


@pytest.fixture(scope="module")
def wine_performance(config: Config) -> PerformanceSnapshot:
    """The real performance statistics on the example wine data: a labelled window of 300 reference rows."""
    model = config.model("wine")
    assert model.performance is not None
    reference = pd.read_csv(EXAMPLES / "data/wine_reference.csv")
    profile = PerformanceProfile.from_reference(reference, model.performance)
    window = reference.sample(n=300, random_state=2)
    rows = [{"label": r.label, "prediction": r.predicted_class,
             "probabilities": [r.proba_class_0, r.proba_class_1, r.proba_class_2]} for r in window.itertuples()]
    result = profile.evaluate(window, LabelledRecords.from_rows(rows, model.performance))
    lag = label_lag_histogram()
    for seconds in (30.0, 4000.0, 90_000.0):
        lag.observe(seconds)
    return PerformanceSnapshot(estimated=result, realized=result, labels={"joined": 300, "unknown_id": 2}, lag=lag)


def _evaluated(results: Mapping[str, DriftResult], performance: PerformanceSnapshot | None = None) -> dict[str, ModelSnapshot]:
    return {
        name: ModelSnapshot(
            model=name,
            result=result,
            window_records=result.dataset.n_current,
            last_evaluation=1_767_000_000.5,
            ingested=result.dataset.n_current + 3,
            rejected={"schema_mismatch": 3},
            performance=performance if name == "wine" else None,
        )
        for name, result in results.items()
    }


RESOURCES = ResourceSnapshot(
    pods={
        "wine": (
            PodUsage("wine-7d9c-abcde", Fraction(251234567, 10**9), Fraction(81920 * 1024)),
            PodUsage("wine-7d9c-fghij", None, Fraction(2**30)),
        )
    },
    gpus={"wine": (GpuUsage("wine-7d9c-abcde", "0", 0.87, 12 * 2**30),)},
    errors={("kubernetes", "forbidden"): 4, ("gpu", "unavailable"): 1},
)
RETRAIN = {"churn": Retrain(active=1, launched=2, finished={"succeeded": 1}, last_trigger=1_767_000_100.0, decisions={"launch": 2, "cooldown": 5})}


def _service() -> ServiceStats:
    """What the app's request middleware would have counted after two requests."""
    stats = ServiceStats()
    stats.observe("GET", "/v1/models/{model}/drift", 200, 0.002)
    stats.observe("POST", "unmatched", 404, 0.0004)
    return stats


def _samples(body: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def _value(samples: Mapping[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def _promtool_check(body: bytes) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", "check", "metrics"], input=body.decode(), capture_output=True, text=True, timeout=60)


@pytest.fixture
def live(config: Config, results: dict[str, DriftResult], wine_performance: PerformanceSnapshot) -> Iterator[str]:
    """The registry behind a real HTTP server on 127.0.0.1, as Prometheus scrapes it."""

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    registry = build_registry(config, lambda: _evaluated(results, wine_performance), lambda: RESOURCES, lambda: RETRAIN,
                              service=_service(), store_size=lambda: 4096)
    server: WSGIServer = make_server("127.0.0.1", 0, make_wsgi_app(registry), handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/metrics"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_live_scrape_is_promtool_clean_with_help_and_type_everywhere(live: str) -> None:
    response = httpx.get(live, headers={"Accept": "text/plain;version=0.0.4"}, timeout=10)
    assert response.status_code == 200
    check = _promtool_check(response.content)
    assert (check.returncode, check.stdout, check.stderr) == (0, "", "")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert set(families) == set(CONTRACT)
    for name, (kind, labels) in CONTRACT.items():
        assert families[name].type == kind, name
        assert families[name].documentation, name
        for sample in families[name].samples:
            bucket = kind == "histogram" and sample.name.endswith("_bucket")
            assert set(sample.labels) == labels | ({"le"} if bucket else set()), (name, sample.labels)
    help_lines = [line for line in response.text.splitlines() if line.startswith("# HELP ")]
    assert len(help_lines) == len(CONTRACT)


def test_the_names_dashboards_and_alerts_import_are_the_names_scraped(
        config: Config, results: dict[str, DriftResult], wine_performance: PerformanceSnapshot) -> None:
    """monitor/exporter/names.py and the sidecar's constants list exactly the samples each exporter serves."""
    body, _ = render(build_registry(config, lambda: _evaluated(results, wine_performance), lambda: RESOURCES, lambda: RETRAIN,
                                    service=_service(), store_size=lambda: 4096))
    assert {_family(name) for name, _ in _samples(body)} == MONITOR_METRICS | PROCESS_METRICS
    sidecar = SidecarMetrics("churn")
    sidecar.upstream_seconds.observe(0.001)
    scraped = {name for name, _ in _samples(sidecar.render()) if not name.endswith("_created")}
    assert {n for n in scraped if n.startswith("driftwatch_")} == SIDECAR_METRICS


def test_the_sidecar_exports_its_process_like_every_exporter() -> None:
    scraped = {name for name, _ in _samples(SidecarMetrics("churn").render())}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "python_info"} <= scraped


def test_a_fleet_replica_exports_only_its_own_models_and_its_share_of_the_group(config: Config, results: dict[str, DriftResult]) -> None:
    membership = {"partitions": [0, 3], "skipped_records": {"garbage": 2}}
    own = {"churn": _evaluated(results)["churn"]}
    body, _ = render(build_registry(config, lambda: own, lambda: RESOURCES, lambda: RETRAIN, fleet=lambda: membership,
                                    service=_service()))
    samples = _samples(body)
    assert {dict(labels)["model"] for name, labels in samples if name == "driftwatch_dataset_drift_share"} == {"churn"}
    # churn has no performance section, and wine (which has) is another replica's (the labels counter keeps its
    # unknown-model series); no embedded store
    assert {_family(name) for name, _ in samples} == (
        (MONITOR_METRICS - PERFORMANCE_FAMILIES - SELF_EMBEDDED_ONLY) | {n.LABELS_TOTAL} | FLEET_METRICS | PROCESS_METRICS)
    assert _value(samples, "driftwatch_fleet_partitions_owned") == 2
    assert _value(samples, "driftwatch_fleet_records_skipped_total", reason="garbage") == 2
    assert _value(samples, "driftwatch_fleet_records_skipped_total", reason="unknown_model") == 0


def test_values_from_the_real_drift_engine(config: Config, results: dict[str, DriftResult]) -> None:
    body, content_type = render(build_registry(config, lambda: _evaluated(results)))
    assert content_type.startswith("text/plain; version=0.0.4")
    samples = _samples(body)
    churn = results["churn"]
    assert churn.dataset.drifted, "the example churn data is meant to drift"
    assert _value(samples, "driftwatch_dataset_drift_detected", model="churn") == 1
    assert _value(samples, "driftwatch_dataset_drift_share", model="churn") == pytest.approx(churn.dataset.drift_share)
    assert _value(samples, "driftwatch_dataset_drift_detected", model="wine") == 0
    for name, fr in churn.features.items():
        kind = "p_value" if fr.is_test else "distance"
        assert _value(samples, f"driftwatch_feature_drift_{kind}", model="churn", feature=name, method=fr.method) == pytest.approx(fr.score)
        assert _value(samples, f"driftwatch_feature_drift_{kind}_threshold", model="churn", feature=name, method=fr.method) == fr.threshold
        assert _value(samples, "driftwatch_feature_drift_severity", model="churn", feature=name, method=fr.method) == pytest.approx(fr.excess)
        assert _value(samples, "driftwatch_feature_drift_detected", model="churn", feature=name) == int(fr.drifted)
        assert _value(samples, "driftwatch_feature_missing_ratio", model="churn", feature=name) == fr.quality.missing_ratio
    assert _value(samples, "driftwatch_feature_drift_detected", model="churn", feature="contract") == 1
    prediction = churn.prediction
    assert prediction is not None
    assert prediction.name == "churn_probability"
    assert _value(samples, "driftwatch_prediction_drift_severity", model="churn", method=prediction.method) == pytest.approx(prediction.excess)
    assert _value(samples, "driftwatch_last_evaluation_timestamp_seconds", model="wine") == 1_767_000_000.5
    assert _value(samples, "driftwatch_window_records", model="churn") == 2000
    assert _value(samples, "driftwatch_events_ingested_total", model="churn") == 2003
    assert _value(samples, "driftwatch_events_rejected_total", model="churn", reason="schema_mismatch") == 3
    assert _value(samples, "driftwatch_build_info", version=__version__) == 1


def test_every_model_and_feature_has_series_from_start_up(config: Config) -> None:
    """Before any evaluation nothing fires (detected 0, share 0) and nothing lies (no score, no timestamp)."""
    body, _ = render(build_registry(config, lambda: {}))
    assert _promtool_check(body).returncode == 0
    samples = _samples(body)
    names = {name for name, _ in samples}
    assert not names & {"driftwatch_feature_drift_severity", "driftwatch_feature_drift_distance", "driftwatch_feature_drift_p_value",
                        "driftwatch_feature_drift_distance_threshold", "driftwatch_feature_drift_p_value_threshold",
                        "driftwatch_prediction_drift_severity", "driftwatch_last_evaluation_timestamp_seconds"}
    for model in config.models:
        for feature in config.exported_features(model):
            for family in ("detected", "missing_ratio", "out_of_range_ratio", "new_category_ratio"):
                metric = "driftwatch_feature_drift_detected" if family == "detected" else f"driftwatch_feature_{family}"
                assert _value(samples, metric, model=model.name, feature=feature) == 0
        for metric in ("driftwatch_dataset_drift_share", "driftwatch_dataset_drift_detected", "driftwatch_window_records", "driftwatch_events_ingested_total", "driftwatch_retrain_jobs_active"):
            assert _value(samples, metric, model=model.name) == 0
        for reason in KNOWN_REJECT_REASONS:
            assert _value(samples, "driftwatch_events_rejected_total", model=model.name, reason=reason) == 0
        for outcome in RETRAIN_OUTCOMES:
            assert _value(samples, "driftwatch_retrain_jobs_finished_total", model=model.name, outcome=outcome) == 0


def test_feature_label_is_bounded_by_allowlist_then_cap(tmp_path: Path, results: dict[str, DriftResult]) -> None:
    text = (EXAMPLES / "config.yaml").read_text().replace(
        "max_features_per_model: 200", "max_features_per_model: 2"
    ).replace("feature_allowlist: null", "feature_allowlist: [contract, senior, proline, alcohol, tenure_months, no_such_feature]")
    (tmp_path / "config.yaml").write_text(text)
    (tmp_path / "data").symlink_to(EXAMPLES / "data")
    capped = load_config(tmp_path / "config.yaml")
    body, _ = render(build_registry(capped, lambda: _evaluated(results)))
    per_feature = {
        (dict(labels)["model"], dict(labels)["feature"])
        for (name, labels) in _samples(body)
        if "feature" in dict(labels)
    }
    # Config order, allowlisted only, at most 2 per model.
    assert per_feature == {("churn", "tenure_months"), ("churn", "contract"), ("wine", "alcohol"), ("wine", "proline")}
    assert _value(_samples(body), "driftwatch_dataset_drift_detected", model="churn") == 1  # the cap hides series, not drift


def test_resource_and_retrain_families(config: Config) -> None:
    samples = _samples(render(build_registry(config, lambda: {}, lambda: RESOURCES, lambda: RETRAIN))[0])
    assert _value(samples, "driftwatch_model_cpu_usage_cores", model="wine", pod="wine-7d9c-abcde") == 0.251234567
    assert ("driftwatch_model_cpu_usage_cores", frozenset({("model", "wine"), ("pod", "wine-7d9c-fghij")})) not in samples  # no rate yet
    assert _value(samples, "driftwatch_model_memory_working_set_bytes", model="wine", pod="wine-7d9c-fghij") == 2**30
    assert _value(samples, "driftwatch_model_gpu_utilization_ratio", model="wine", pod="wine-7d9c-abcde", gpu="0") == 0.87
    assert _value(samples, "driftwatch_model_gpu_memory_used_bytes", model="wine", pod="wine-7d9c-abcde", gpu="0") == 12 * 2**30
    assert _value(samples, "driftwatch_resource_collection_errors_total", source="kubernetes", reason="forbidden") == 4
    assert _value(samples, "driftwatch_retrain_jobs_launched_total", model="churn") == 2
    assert _value(samples, "driftwatch_retrain_jobs_finished_total", model="churn", outcome="succeeded") == 1
    assert _value(samples, "driftwatch_retrain_jobs_finished_total", model="churn", outcome="failed") == 0
    assert _value(samples, "driftwatch_retrain_jobs_launched_total", model="wine") == 0
    assert _value(samples, "driftwatch_retrain_decisions_total", model="churn", decision="cooldown") == 5
    assert _value(samples, "driftwatch_retrain_last_trigger_timestamp_seconds", model="churn") == 1_767_000_100.0
    assert ("driftwatch_retrain_last_trigger_timestamp_seconds", frozenset({("model", "wine")})) not in samples
    assert _value(samples, "driftwatch_retrain_jobs_active", model="churn") == 1


def test_uncomputable_score_is_nan_and_still_promtool_clean(config: Config, results: dict[str, DriftResult]) -> None:
    """An all-missing window gives NaN scores from the engine; Prometheus accepts NaN samples."""
    ref = pd.read_csv(EXAMPLES / "data/churn_reference.csv")
    empty = ref.head(50).assign(tenure_months=float("nan"))
    result = detect(ref, empty, config, "churn")
    assert math.isnan(result.features["tenure_months"].score)
    body, _ = render(build_registry(config, lambda: {"churn": ModelSnapshot(model="churn", result=result)}))
    assert _promtool_check(body).returncode == 0
    samples = _samples(body)
    method = result.features["tenure_months"].method
    kind = "p_value" if result.features["tenure_months"].is_test else "distance"
    assert math.isnan(_value(samples, f"driftwatch_feature_drift_{kind}", model="churn", feature="tenure_months", method=method))
    assert math.isnan(_value(samples, "driftwatch_feature_drift_severity", model="churn", feature="tenure_months", method=method))
    assert _value(samples, "driftwatch_feature_missing_ratio", model="churn", feature="tenure_months") == 1


def test_openmetrics_is_negotiated(config: Config) -> None:
    body, content_type = render(build_registry(config, lambda: {}), "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith(b"# EOF\n")
    assert b'driftwatch_events_ingested_total{model="wine"} 0.0' in body


def test_registries_are_independent(config: Config, results: dict[str, DriftResult]) -> None:
    a = build_registry(config, lambda: _evaluated(results))
    b = build_registry(config, lambda: {})
    assert _value(_samples(render(a)[0]), "driftwatch_dataset_drift_detected", model="churn") == 1
    assert _value(_samples(render(b)[0]), "driftwatch_dataset_drift_detected", model="churn") == 0


def test_every_capture_rejection_reason_is_pre_initialised() -> None:
    """`Rejected("<reason>", ...)` in monitor.capture: each reason must start at 0 for rate()."""
    reasons = set()
    for path in (ROOT / "monitor/capture").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Rejected" and node.args and isinstance(node.args[0], ast.Constant):
                reasons.add(node.args[0].value)
    assert reasons, "monitor.capture no longer raises Rejected: update this test"
    assert reasons <= set(KNOWN_REJECT_REASONS)


def test_performance_values_are_exported_as_computed(
        config: Config, results: dict[str, DriftResult], wine_performance: PerformanceSnapshot) -> None:
    body, _ = render(build_registry(config, lambda: _evaluated(results, wine_performance)))
    samples = _samples(body)
    realized = wine_performance.realized
    assert realized is not None and realized.realized is not None
    assert _value(samples, "driftwatch_model_performance", model="wine", metric="accuracy", kind="realized") == realized.realized["accuracy"]
    assert _value(samples, "driftwatch_model_performance_degraded", model="wine", kind="realized") == 0
    assert _value(samples, "driftwatch_labels_total", model="wine", outcome="unknown_id") == 2
    assert _value(samples, "driftwatch_labels_total", model="wine", outcome="too_late") == 0
    assert _value(samples, "driftwatch_label_lag_seconds_bucket", model="wine", le="3600.0") == 1
    assert _value(samples, "driftwatch_label_coverage_ratio", model="wine") == realized.coverage


def test_a_model_with_performance_exports_degraded_zero_and_label_counts_before_any_window(config: Config) -> None:
    body, _ = render(build_registry(config, dict))
    samples = _samples(body)
    assert _value(samples, "driftwatch_model_performance_degraded", model="wine", kind="estimated") == 0
    assert _value(samples, "driftwatch_labels_total", model="wine", outcome="joined") == 0
    assert not [name for name, labels in samples if name == "driftwatch_model_performance"]


def test_every_family_the_monitor_serves_is_documented() -> None:
    """docs/metrics.md is where on-call engineers look a series up: every family and process metric is in it."""
    doc = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    assert sorted(name for name in MONITOR_METRICS | FLEET_METRICS | MLFLOW_METRICS | PROCESS_METRICS
                  if f"`{name}`" not in doc) == []


@pytest.mark.parametrize(("family", "methods"), [("driftwatch_feature_drift_distance", DISTANCE_METHODS),
                                                 ("driftwatch_feature_drift_p_value", P_VALUE_METHODS)])
def test_each_statistic_family_holds_one_kind_of_method(config: Config, results: dict[str, DriftResult], family: str,
                                                        methods: frozenset[str]) -> None:
    """A distance never sits beside a p-value: summing or thresholding one family means one thing."""
    samples = _samples(render(build_registry(config, lambda: _evaluated(results)))[0])
    exported = {dict(labels)["method"] for name, labels in samples if name == family}
    assert exported and exported <= methods


def test_retrain_outcomes_are_the_ones_a_run_can_end_with() -> None:
    assert RETRAIN_OUTCOMES == retrain_history.OUTCOMES
