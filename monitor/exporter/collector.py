"""The Prometheus exporter: a custom collector over pulled, frozen snapshots.

Nothing is pushed into prometheus-client's mutable metric objects; every scrape asks the service for
its latest snapshots and renders them, so a scrape never races an evaluation and series vanish when
their source (a deleted pod) does. Each app gets its own `CollectorRegistry`, so several monitors
can live in one process (tests) without colliding on the global one.

Series that exist from start-up for every configured model, before any evaluation (docs/metrics.md):
`*_drift_detected` 0, `dataset_drift_share` 0, data-quality ratios 0, `window_records`, the event
counters (every known rejection reason at 0) and the retraining counters and gauge. Drift severities,
distances, p-values, thresholds and timestamps appear only once there is a value: a value of 0 would be
a claim (for a p-value it would even mean "drifted"), and a timestamp of 0 would make staleness alerts fire.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, TypeGuard

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.capture.message import SKIP_REASONS
from monitor.core.config import Config, ModelConfig
from monitor.drift.result import FeatureResult
from monitor.exporter import names as n
from monitor.exporter.service import ServiceStats
from monitor.resources.usage import ResourceSnapshot
from monitor.runtime import LABEL_OUTCOMES, ModelSnapshot, PerformanceSnapshot
from monitor.runtime.snapshot import evaluation_histogram

__all__ = ["KNOWN_REJECT_REASONS", "RETRAIN_OUTCOMES", "UNKNOWN_MODEL", "RetrainSnapshot", "ServiceStats", "build_registry", "render"]

KNOWN_REJECT_REASONS = (
    "empty_payload",
    "invalid_encoding",
    "invalid_json",
    "schema_mismatch",
    "truncated",
    "type_mismatch",
    "unmatched_request",
    "unmatched_response",
    "upstream_error",
    "vector_dimensions",
    "vector_non_finite",
    "parse_error",
    "invalid_version",
)
"""The per-event rejection reasons of monitor.capture and the KServe CloudEvents join, pre-initialised at 0 so `rate()` and
`increase()` see the first rejection (a series that appears at 1 has no increase)."""
KNOWN_SKIP_REASONS = SKIP_REASONS
"""A fleet replica's skipped-record reasons, pre-initialised at 0 likewise."""
UNKNOWN_MODEL = ("", "", "", "unknown_model")
"""(namespace, model, version, reason) of the events and labels naming a model that is not configured: the name they
carry is never a label value (anyone can send any name); `model` is empty, which PromQL reads as no label."""
RETRAIN_OUTCOMES = ("succeeded", "failed", "deadline_exceeded")
"""How a retraining run ends (retrain.history.OUTCOMES; a test holds the two equal), pre-initialised at 0."""


class RetrainSnapshot(Protocol):
    """What `retrain/controller.py` reports per model."""

    @property
    def active(self) -> int: ...
    @property
    def launched(self) -> int: ...
    @property
    def finished(self) -> Mapping[str, int]: ...
    @property
    def last_trigger(self) -> float | None: ...
    @property
    def decisions(self) -> Mapping[str, int]: ...


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


def _counter(name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=labels)


class DriftwatchCollector(Collector):
    def __init__(
        self,
        config: Config,
        models: Callable[[], Mapping[str, ModelSnapshot]],
        resources: Callable[[], ResourceSnapshot] | None,
        retrain: Callable[[], Mapping[str, RetrainSnapshot]] | None,
        *,
        fleet: Callable[[], Mapping[str, Any]] | None = None,
        service: ServiceStats | None = None,
        store_size: Callable[[], int | None] | None = None,
        mlflow: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self._config = config
        self._mlflow = mlflow
        self._service = service
        self._store_size = store_size
        self._models = models
        self._fleet = fleet
        self._resources = resources
        self._retrain = retrain
        self._exported = {m.key: config.exported_features(m) for m in config.models}
        self._ids = {m.key: _id(m) for m in config.models}

    def _families(self) -> Iterator[Metric]:
        info = _gauge(n.BUILD_INFO, "Always 1; the running driftwatch version.", ["version"])
        info.add_metric([__version__], 1)
        yield info
        snapshots = self._models()
        yield from self._drift(snapshots)
        yield from self._performance(snapshots)
        yield from self._resource_families(self._resources() if self._resources else ResourceSnapshot())
        yield from self._retrain_families(self._retrain() if self._retrain else {})
        if self._fleet is not None:
            yield from self._fleet_families(self._fleet())
        if self._mlflow is not None:
            failed = _counter(n.MLFLOW_REQUESTS_FAILED_TOTAL, "Writes to the MLflow tracking server that failed, by "
                              "operation (logged, retried when transient; evaluations never wait on them).", ["operation"])
            for operation, count in sorted(self._mlflow().items()):
                failed.add_metric([operation], count)
            yield failed
        yield from self._self_families(snapshots)

    def collect(self) -> Iterator[Metric]:
        for family in self._families():
            yield _without_empty_namespace(family)

    def _self_families(self, snapshots: Mapping[str, ModelSnapshot]) -> Iterator[Metric]:
        """The monitor itself: evaluation time per model, its requests (with a `service`), its store's size."""
        evaluation = HistogramMetricFamily(n.EVALUATION_DURATION_SECONDS, "Wall time of each window evaluation "
                                           "(drift, performance, storing the result) since the monitor started.", labels=MODEL)
        for model in self._config.models:
            if model.key not in snapshots and self._fleet is not None:
                continue
            for ident, snap in _tracks(model, snapshots):
                times = (snap.window.evaluation_seconds if snap.window is not None else None) or evaluation_histogram()
                buckets = [("+Inf" if bound == float("inf") else repr(bound), count) for bound, count in times.cumulative()]
                evaluation.add_metric(ident, buckets, times.total)
        yield evaluation
        if self._service is not None:
            yield from self._service.families()
        size = self._store_size() if self._store_size is not None else None
        if size is not None:
            store = _gauge(n.STORE_SIZE_BYTES, "Size of the embedded SQLite store on disk (file plus WAL), in bytes.", [])
            store.add_metric([], size)
            yield store

    def _fleet_families(self, membership: Mapping[str, Any]) -> Iterator[Metric]:
        owned = _gauge(n.FLEET_PARTITIONS_OWNED, "Partitions of the event topic this replica owns now.", [])
        owned.add_metric([], len(membership.get("partitions", ())))
        skipped = _counter(n.FLEET_RECORDS_SKIPPED_TOTAL, "Kafka records this replica skipped, by reason.", ["reason"])
        reasons = membership.get("skipped_records", {})
        for reason in sorted(set(KNOWN_SKIP_REASONS) | set(reasons)):
            skipped.add_metric([reason], reasons.get(reason, 0))
        yield from (owned, skipped)

    def _drift(self, snapshots: Mapping[str, ModelSnapshot]) -> Iterator[Metric]:
        labels = [*MODEL, "feature", "method"]
        severity = _gauge(n.FEATURE_DRIFT_SEVERITY, "How far past its threshold a feature's last evaluated window drifted: "
                          "distance over threshold, or threshold over (adjusted) p-value; 1 at the threshold, higher is more drift.", labels)
        distance = _gauge(n.FEATURE_DRIFT_DISTANCE, "A distance method's value for the feature's last evaluated window "
                          "(drift at or above its threshold).", labels)
        distance_threshold = _gauge(n.FEATURE_DRIFT_DISTANCE_THRESHOLD, "Threshold in force for the feature's distance method.", labels)
        p_value = _gauge(n.FEATURE_DRIFT_P_VALUE, "A test's raw p-value for the feature's last evaluated window (the verdict "
                         "compares the Benjamini-Hochberg adjusted one when enabled).", labels)
        p_value_threshold = _gauge(n.FEATURE_DRIFT_P_VALUE_THRESHOLD, "Significance level in force for the feature's test.", labels)
        detected = _gauge(n.FEATURE_DRIFT_DETECTED, "1 if the feature drifted in the last evaluated window, else 0.", [*MODEL, "feature"])
        share = _gauge(n.DATASET_DRIFT_SHARE, "Share of the model's input features (not its outputs) that drifted in the last evaluated window.", MODEL)
        dataset = _gauge(n.DATASET_DRIFT_DETECTED, "1 if the drifted share reached the model's dataset drift share, else 0.", MODEL)
        prediction = _gauge(n.PREDICTION_DRIFT_SEVERITY, "Drift severity of the model's first output in the last evaluated "
                            "window (as the feature severity).", [*MODEL, "method"])
        records = _gauge(n.WINDOW_RECORDS, "Records currently in the model's sliding window.", MODEL)
        last = _gauge(n.LAST_EVALUATION_TIMESTAMP_SECONDS, "Unix time of the model's last drift evaluation.", MODEL)
        quality = {
            "missing_ratio": _gauge(n.FEATURE_MISSING_RATIO, "Share of the window's records missing the feature.", [*MODEL, "feature"]),
            "out_of_range_ratio": _gauge(
                n.FEATURE_OUT_OF_RANGE_RATIO, "Share of the window's numeric values outside the feature's valid range.", [*MODEL, "feature"]
            ),
            "new_category_ratio": _gauge(
                n.FEATURE_NEW_CATEGORY_RATIO, "Share of the window's categorical values never seen in the reference.", [*MODEL, "feature"]
            ),
        }
        ingested = _counter(n.EVENTS_INGESTED_TOTAL, "Captured events accepted for the model (durable before acknowledged).", MODEL)
        rejected = _counter(n.EVENTS_REJECTED_TOTAL, "Captured events rejected for the model, by reason.", [*MODEL, "reason"])

        for model in self._config.models:
            name = model.key
            if self._fleet is not None and name not in snapshots:
                continue
            for ident, snap in _tracks(model, snapshots):
                result = snap.result
                features = result.features if result is not None else {}
                for feature in self._exported[name]:
                    fr = features.get(feature)
                    if fr is None:
                        detected.add_metric([*ident, feature], 0)
                        for gauge in quality.values():
                            gauge.add_metric([*ident, feature], 0)
                        continue
                    key = [*ident, feature, fr.method]
                    severity.add_metric(key, _severity(fr))
                    if fr.is_test:
                        p_value.add_metric(key, fr.score)
                        p_value_threshold.add_metric(key, fr.threshold)
                    else:
                        distance.add_metric(key, fr.score)
                        distance_threshold.add_metric(key, fr.threshold)
                    detected.add_metric([*ident, feature], 1 if fr.drifted else 0)
                    for attr, gauge in quality.items():
                        gauge.add_metric([*ident, feature], getattr(fr.quality, attr))
                share.add_metric(ident, result.dataset.drift_share if result is not None else 0)
                dataset.add_metric(ident, 1 if result is not None and result.dataset.drifted else 0)
                if result is not None and result.prediction is not None:
                    prediction.add_metric([*ident, result.prediction.method], _severity(result.prediction))
                records.add_metric(ident, snap.window_records)
                if snap.last_evaluation is not None:
                    last.add_metric(ident, snap.last_evaluation)
                ingested.add_metric(ident, snap.ingested)
                for reason in sorted(set(KNOWN_REJECT_REASONS) | set(snap.rejected)):
                    rejected.add_metric([*ident, reason], snap.rejected.get(reason, 0))
        rejected.add_metric(list(UNKNOWN_MODEL), self._service.unknown_model_events if self._service is not None else 0)
        yield from (severity, distance, distance_threshold, p_value, p_value_threshold, detected, share, dataset, prediction, records, last, *quality.values(), ingested, rejected)

    def _performance(self, snapshots: Mapping[str, ModelSnapshot]) -> Iterator[Metric]:
        """Models with a `performance` section: degraded and label counts from start-up, values once known."""
        value = _gauge(n.MODEL_PERFORMANCE, "Performance metric of the model's newest window: realized from labels "
                       "(the newest window with at least min_labels), or estimated before labels.", [*MODEL, "metric", "kind"])
        reference = _gauge(n.MODEL_PERFORMANCE_REFERENCE, "Performance metric on the reference data.", [*MODEL, "metric"])
        threshold = _gauge(n.MODEL_PERFORMANCE_THRESHOLD, "Degradation threshold of the headline metric at that "
                           "window's (labelled) size.", [*MODEL, "metric", "kind"])
        degraded = _gauge(n.MODEL_PERFORMANCE_DEGRADED, "1 if the headline metric crossed its threshold in the newest "
                          "judged window, else 0.", [*MODEL, "kind"])
        coverage = _gauge(n.LABEL_COVERAGE_RATIO, "Labelled share of the window behind the realized value.", MODEL)
        labels = _counter(n.LABELS_TOTAL, "Labels received, by outcome.", [*MODEL, "outcome"])
        lag = HistogramMetricFamily(n.LABEL_LAG_SECONDS, "Time from a prediction to its label's arrival (joined labels "
                                    "since the monitor started).", labels=MODEL)
        for model in self._config.models:
            if model.performance is None:
                continue
            name = model.key
            if self._fleet is not None and name not in snapshots:
                continue
            for ident, snap in _tracks(model, snapshots):
                perf = snap.performance or PerformanceSnapshot()
                headline = model.performance.headline
                estimated, realized = perf.estimated, perf.realized
                source = realized or estimated
                if source is not None:
                    for metric, v in sorted(source.reference.items()):
                        if _finite(v):
                            reference.add_metric([*ident, metric], v)
                for kind, result in (("estimated", estimated), ("realized", realized)):
                    values = None if result is None else (result.estimated if kind == "estimated" else result.realized)
                    for metric, v in sorted((values or {}).items()):
                        if _finite(v):
                            value.add_metric([*ident, metric, kind], v)
                    bound = None if result is None else (result.threshold_estimated if kind == "estimated" else result.threshold_realized)
                    if _finite(bound):
                        threshold.add_metric([*ident, headline, kind], bound)
                    flag = None if result is None else (result.estimated_degraded if kind == "estimated" else result.realized_degraded)
                    degraded.add_metric([*ident, kind], 1 if flag else 0)
                if realized is not None and _finite(realized.coverage):
                    coverage.add_metric(ident, realized.coverage)
                for outcome in sorted(set(LABEL_OUTCOMES) | set(perf.labels)):
                    labels.add_metric([*ident, outcome], perf.labels.get(outcome, 0))
                buckets = [("+Inf" if bound == float("inf") else repr(bound), count) for bound, count in perf.lag.cumulative()]
                lag.add_metric(ident, buckets, perf.lag.total)
        # labels of batches naming no configured model (404): always served, whether or not a model takes labels
        labels.add_metric(list(UNKNOWN_MODEL), self._service.unknown_model_labels if self._service is not None else 0)
        yield from (value, reference, threshold, degraded, coverage, labels, lag)

    def _resource_families(self, snap: ResourceSnapshot) -> Iterator[Metric]:
        cpu = _gauge(n.MODEL_CPU_USAGE_CORES, "CPU used by the model's pod, in cores.", [*MODEL, "pod"])
        memory = _gauge(n.MODEL_MEMORY_WORKING_SET_BYTES, "Working set memory of the model's pod, in bytes.", [*MODEL, "pod"])
        gpu_util = _gauge(n.MODEL_GPU_UTILIZATION_RATIO, "Utilisation of a GPU the model's pod runs on (0-1, device-wide).", [*MODEL, "pod", "gpu"])
        gpu_mem = _gauge(n.MODEL_GPU_MEMORY_USED_BYTES, "Memory used on a GPU the model's pod runs on, in bytes (device-wide).", [*MODEL, "pod", "gpu"])
        errors = _counter(n.RESOURCE_COLLECTION_ERRORS_TOTAL, "Failed resource collections, by source and reason.", ["source", "reason"])
        for model in sorted(k for k in snap.pods if k in self._ids):
            for pod in snap.pods[model]:
                if pod.cpu_cores is not None:
                    cpu.add_metric([*self._ids[model], pod.pod], float(pod.cpu_cores))
                memory.add_metric([*self._ids[model], pod.pod], float(pod.memory_working_set_bytes))
        for model in sorted(k for k in snap.gpus if k in self._ids):
            for g in snap.gpus[model]:
                if g.utilization_ratio is not None:  # unreadable fields (MIG utilisation) are left out
                    gpu_util.add_metric([*self._ids[model], g.pod, g.gpu], g.utilization_ratio)
                if g.memory_used_bytes is not None:
                    gpu_mem.add_metric([*self._ids[model], g.pod, g.gpu], g.memory_used_bytes)
        for (source, reason), count in sorted(snap.errors.items()):
            errors.add_metric([source, reason], count)
        yield from (cpu, memory, gpu_util, gpu_mem, errors)

    def _retrain_families(self, snapshots: Mapping[str, RetrainSnapshot]) -> Iterator[Metric]:
        launched = _counter(n.RETRAIN_JOBS_LAUNCHED_TOTAL, "Retraining runs launched (each once, whatever became of it).", MODEL)
        finished = _counter(n.RETRAIN_JOBS_FINISHED_TOTAL, "Retraining runs ended, by outcome (each launched run ends "
                            "at most once).", [*MODEL, "outcome"])
        decisions = _counter(n.RETRAIN_DECISIONS_TOTAL, "Retraining policy decisions (drift windows and Alertmanager webhooks), by decision.", [*MODEL, "decision"])
        last = _gauge(n.RETRAIN_LAST_TRIGGER_TIMESTAMP_SECONDS, "Unix time retraining was last triggered for the model.", MODEL)
        active = _gauge(n.RETRAIN_JOBS_ACTIVE, "Retraining jobs running for the model.", MODEL)
        for model in self._config.models:
            snap = snapshots.get(model.key)
            launched.add_metric(_id(model), snap.launched if snap is not None else 0)
            ended = snap.finished if snap is not None else {}
            for outcome in sorted(set(RETRAIN_OUTCOMES) | set(ended)):
                finished.add_metric([*_id(model), outcome], ended.get(outcome, 0))
            if snap is not None:
                for decision, count in sorted(snap.decisions.items()):
                    decisions.add_metric([*_id(model), decision], count)
                if snap.last_trigger is not None:
                    last.add_metric(_id(model), snap.last_trigger)
            active.add_metric(_id(model), snap.active if snap is not None else 0)
        yield from (launched, finished, decisions, last, active)


MODEL = ["namespace", "model", "version"]
"""A model's identity labels; `namespace` is left out of the samples of models without one, `version` out of
every series but a version track's (`_id`), so an unversioned model's series are what they always were."""


def _id(model: ModelConfig, version: str | None = None) -> list[str]:
    """The values of `MODEL` for `model` (an empty namespace or version is removed from the exposition)."""
    return [model.namespace or "", model.name, version or ""]


def _tracks(model: ModelConfig, snapshots: Mapping[str, ModelSnapshot]) -> Iterator[tuple[list[str], ModelSnapshot]]:
    """(identity labels, snapshot) of the model, then of each of its version tracks (docs/versions.md):
    at most `versions.max_tracked` of them, so the `version` label stays bounded."""
    yield _id(model), snapshots.get(model.key) or ModelSnapshot(model=model.key)
    for snap in snapshots.values():
        if snap.version is not None and snap.model == model.key:
            yield _id(model, snap.version), snap


def _without_empty_namespace(family: Metric) -> Metric:
    """Drop `namespace=""` and `version=""` from a family's samples. A model without a namespace must not
    export the label at all: with `honor_labels` an empty exported label would erase the scrape target's
    namespace; `version` is only on a version track's series."""
    for sample in family.samples:
        for label in ("namespace", "version"):
            if sample.labels.get(label) == "":
                del sample.labels[label]
    return family


def _severity(fr: FeatureResult) -> float:
    """`FeatureResult.excess`, but NaN (not 0) when the window gave no score: unknown is not calm."""
    if math.isnan(fr.score) and not fr.details.get("type_changed"):
        return math.nan
    return fr.excess


def _finite(v: Any) -> TypeGuard[float]:
    return isinstance(v, (int, float)) and v == v and abs(v) != float("inf")


def build_registry(
    config: Config,
    models: Callable[[], Mapping[str, ModelSnapshot]],
    resources: Callable[[], ResourceSnapshot] | None = None,
    retrain: Callable[[], Mapping[str, RetrainSnapshot]] | None = None,
    *,
    fleet: Callable[[], Mapping[str, Any]] | None = None,
    service: ServiceStats | None = None,
    store_size: Callable[[], int | None] | None = None,
    process: bool = True,
    mlflow: Callable[[], Mapping[str, int]] | None = None,
) -> CollectorRegistry:
    """A registry whose every scrape renders the snapshots the callables return at that moment.

    `fleet`: a replica's membership (`FleetMonitor.membership`); then only the models `models`
    returns (the replica's own) are exported, never every configured one, so no series is served twice.
    `service`: the app's request counts (`driftwatch_http_*`) and the events and labels it refused for
    naming an unconfigured model (`reason`/`outcome="unknown_model"`, `model=""`); `store_size`: the embedded
    store's bytes on disk (None: no gauge); `mlflow`: failed MLflow writes by operation (`retrain.mlflow`). `process`: prometheus-client's `process_*` and `python_info`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DriftwatchCollector(config, models, resources, retrain, fleet=fleet, service=service,
                                          store_size=store_size, mlflow=mlflow))
    if process:  # process_* (CPU, memory, fds, start time) and python_info, like every exporter
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry, accept: str | None = None) -> tuple[bytes, str]:
    """The scrape body and its content type, negotiated from the Accept header as Prometheus does."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
