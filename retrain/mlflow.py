"""MLflow in the loop: drift tags on the watched model version, and each retraining run linked to the
model version it produced (docs/mlflow.md).

`MlflowSync` hears every evaluated window (a `VerdictListener`) and hands the tags to one background
thread: the evaluator never waits on MLflow and no evaluation fails because of it. Per model only the
newest tags wait (a slow or absent MLflow holds one pending write per model, never a queue that grows);
a transient failure is retried with backoff, every failure is logged and counted by operation
(`driftwatch_mlflow_requests_failed_total`). Tags are written when the verdict changes, and at most
every `mlflow.tag_interval` otherwise, to keep the load on the tracking server low.

The same thread looks, every `mlflow.poll_interval`, for the MLflow run of each recent retraining run
(tagged `driftwatch.trigger=<DRIFTWATCH_TRIGGER>` by the user's training code) and for the model versions
registered from it; each such version is tagged `driftwatch.trigger` and the link is kept beside the
run in the retraining history (`History.link`: the SQLite file, or PostgreSQL in fleet mode, so every
replica and a restart see it), which `GET /v1/models/{model}/retraining` shows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from monitor.core.config import Config
from monitor.core.mlflowapi import MlflowClient, MlflowError, quote_filter
from monitor.core.names import report_path
from monitor.runtime import WindowVerdict, reference_provenance
from retrain.history import JobRecord, MlflowLink

__all__ = ["OPERATIONS", "TRIGGER_TAG", "MlflowSync"]

log = logging.getLogger("driftwatch.retrain")

TRIGGER_TAG = "driftwatch.trigger"
STATUS_TAG, SHARE_TAG, REPORT_TAG, EVALUATED_TAG = (
    "driftwatch.drift_status", "driftwatch.drift_share", "driftwatch.report_url", "driftwatch.last_evaluated")
OPERATIONS = ("tag_version", "link_run")
"""The `operation` label of the failure counter (pre-initialised at 0)."""
RECENT_JOBS = 5
"""Retraining runs per model still looked up in MLflow (the newest ones not yet linked)."""
LINK_MAX_AGE = 7 * 86400.0
"""A retraining run older than this (seconds since launch) is no longer looked up."""
BACKOFF = (1.0, 2.0, 5.0, 15.0, 60.0)


class JobSource(Protocol):
    """What the linker reads and writes of the retraining history (`retrain.history.History`)."""

    def jobs(self, *, model: str | None = None, active_only: bool = False) -> list[JobRecord]: ...

    def link(self, name: str, link: MlflowLink) -> None: ...


@dataclass
class _Pending:
    name: str
    version: str
    tags: dict[str, str]
    status: str
    attempts: int = 0
    not_before: float = 0.0


class MlflowSync:
    """Tags and links, written by one background thread (`start`/`stop`)."""

    def __init__(self, config: Config, *, history: Callable[[], JobSource | None] | None = None,
                 client: MlflowClient | None = None, clock: Callable[[], float] = time.time) -> None:
        if config.mlflow is None:
            raise ValueError("MlflowSync needs the config's `mlflow` section")
        self.config = config
        self.settings = config.mlflow
        self._client = client or MlflowClient(config.mlflow)
        self._history = history
        self._clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: dict[str, _Pending] = {}
        self._tagged: dict[str, tuple[str, str, float]] = {}  # model → (version, status, when) last written
        self._failures = dict.fromkeys(OPERATIONS, 0)
        self._next_poll = 0.0

    # -- what the app reads ------------------------------------------------------------------------

    def failures(self) -> Mapping[str, int]:
        """Failed MLflow writes by operation, since start (the exporter's counter)."""
        with self._lock:
            return dict(self._failures)

    # -- tags after evaluations --------------------------------------------------------------------

    def on_verdict(self, verdict: WindowVerdict) -> None:
        """Queue the drift tags of the model's watched version (the version its MLflow reference came
        from); models with a file reference have none and are left alone. Never blocks."""
        if not self.settings.tag_versions:
            return
        prov = reference_provenance(self.config, verdict.model)
        if prov is None:
            return
        status = "drift" if verdict.result.dataset.drifted else "ok"
        version = str(prov["version"])
        with self._lock:
            last = self._tagged.get(verdict.model)
            unchanged = last is not None and last[:2] == (version, status)
            if unchanged and last is not None and verdict.evaluated_at - last[2] < self.settings.tag_interval:
                return
            base = self.config.server.public_url
            tags = {
                STATUS_TAG: status,
                SHARE_TAG: f"{verdict.result.dataset.drift_share:.4f}",
                EVALUATED_TAG: datetime.fromtimestamp(verdict.evaluated_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            if base:
                tags[REPORT_TAG] = base.rstrip("/") + report_path(verdict.model)
            self._pending[verdict.model] = _Pending(str(prov["mlflow_model"]), version, tags, status)
        self._wake.set()

    def flush_once(self) -> None:
        """Write every pending model's tags that is due (the worker's step; tests call it directly)."""
        now = self._clock()
        with self._lock:
            due = [(m, p) for m, p in self._pending.items() if p.not_before <= now]
        for model, p in due:
            try:
                for key, value in p.tags.items():
                    self._client.set_model_version_tag(p.name, p.version, key, value)
            except MlflowError as exc:
                self._failed("tag_version", exc, model=model)
                with self._lock:
                    if self._pending.get(model) is p:
                        if exc.transient:
                            p.attempts += 1
                            p.not_before = self._clock() + BACKOFF[min(p.attempts, len(BACKOFF)) - 1]
                        else:
                            del self._pending[model]
                continue
            with self._lock:
                if self._pending.get(model) is p:
                    del self._pending[model]
                self._tagged[model] = (p.version, p.status, self._clock())
            log.info("mlflow_version_tagged model=%s mlflow_model=%s version=%s status=%s",
                     model, p.name, p.version, p.status)

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    # -- retraining runs → model versions ----------------------------------------------------------

    def link_once(self) -> int:
        """Look up the recent retraining runs not yet linked; returns how many were linked now."""
        source = self._history() if self._history is not None else None
        if source is None or not self.settings.link_runs:
            return 0
        now, linked = self._clock(), 0
        todo = []
        for model in self.config.models:
            if self.config.retrain_for(model) is None:
                continue
            recent = [j for j in source.jobs(model=model.key) if now - j.created_at <= LINK_MAX_AGE]
            todo += [j for j in sorted(recent, key=lambda j: -j.created_at)[:RECENT_JOBS]
                     if j.mlflow is None or not j.mlflow.model_versions]
        if not todo:
            return 0
        try:
            experiments = self._client.experiment_ids()
            for job in todo:
                runs = self._client.search_runs(f"tags.`{TRIGGER_TAG}` = {quote_filter(job.fingerprint)}", experiments)
                if not runs:
                    continue
                run = runs[0]
                versions = self._client.model_versions_of_run(run.run_id)
                for v in versions:
                    if v.tags.get(TRIGGER_TAG) != job.fingerprint:
                        self._client.set_model_version_tag(v.name, v.version, TRIGGER_TAG, job.fingerprint)
                source.link(job.name, MlflowLink(run.run_id, tuple((v.name, v.version) for v in versions), now))
                if versions:
                    linked += 1
                    log.info("mlflow_run_linked job=%s run_id=%s versions=%s", job.name, run.run_id,
                             ",".join(f"{v.name}/{v.version}" for v in versions))
        except MlflowError as exc:
            self._failed("link_run", exc)
        return linked

    # -- the worker --------------------------------------------------------------------------------

    def start(self) -> MlflowSync:
        self._thread = threading.Thread(target=self._loop, name="driftwatch-mlflow", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.timeout * 2 + 5)
        self._client.close()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.flush_once()
                if self._clock() >= self._next_poll:
                    self._next_poll = self._clock() + self.settings.poll_interval
                    self.link_once()
            except Exception:  # never let the worker die: the next tick tries again
                log.exception("mlflow_worker_error")
            self._wake.wait(timeout=1.0)
            self._wake.clear()

    def _failed(self, operation: str, exc: MlflowError, *, model: str | None = None) -> None:
        with self._lock:
            self._failures[operation] += 1
        log.warning("mlflow_request_failed operation=%s model=%s transient=%s error=%s",
                    operation, model or "", exc.transient, exc)
