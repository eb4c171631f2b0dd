"""Launching retraining Jobs on Kubernetes and following their status.

Creating is idempotent: the Job name is derived from the trigger, so a 409 AlreadyExists (our
retry after a timeout whose request did land, a restarted monitor, a second replica) means
"already launched", checked against the trigger label. Transient failures (5xx, 429, timeouts,
refused connections) are retried with capped exponential backoff and jitter, then reported.

Status is followed per namespace with a watch that resumes from the last resourceVersion; a 410
Gone relists; a watch that keeps failing falls back to polling with a periodic list. Every list is
also handed over whole (`on_relist`), so Jobs that vanished while no watch was open are noticed.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from pydantic import ValidationError

from monitor.core.config import KubernetesLauncher as KubernetesConfig
from retrain.manifest import LABEL_MODEL, LABEL_TRIGGER, SELECTOR, build_job
from retrain.run import LaunchError, Run

log = logging.getLogger("driftwatch.retrain.kubernetes")


@dataclass(frozen=True)
class Retry:
    attempts: int = 5
    base: float = 0.5
    cap: float = 10.0
    timeout: tuple[float, float] = (5.0, 15.0)
    """(connect, read) seconds for each API call."""

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Equal jitter: half the capped exponential step, plus a random half."""
        step = min(self.cap, self.base * 2**attempt)
        return step / 2 + rng.uniform(0, step / 2)


@dataclass(frozen=True)
class JobStatus:
    name: str
    namespace: str
    model: str | None
    fingerprint: str | None
    outcome: str | None
    """succeeded / failed / deadline_exceeded, or None while the Job is still running."""
    detail: str | None
    raw: dict[str, Any]


def job_outcome(job: dict[str, Any], deleted: bool = False) -> tuple[str | None, str | None]:
    """Terminal outcome from the Job's conditions (Complete / Failed with its reason)."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return "succeeded", None
        if cond.get("type") == "Failed":
            reason = cond.get("reason") or "Failed"
            return ("deadline_exceeded" if reason == "DeadlineExceeded" else "failed"), reason
    if deleted:
        return "failed", "deleted before finishing"
    return None, None


def job_status(job: dict[str, Any], deleted: bool = False) -> JobStatus:
    meta = job.get("metadata") or {}
    lbl = meta.get("labels") or {}
    outcome, detail = job_outcome(job, deleted)
    return JobStatus(
        name=meta.get("name", ""), namespace=meta.get("namespace", ""), model=lbl.get(LABEL_MODEL),
        fingerprint=lbl.get(LABEL_TRIGGER), outcome=outcome, detail=detail, raw=job,
    )


def default_api_client() -> client.ApiClient:
    """In-cluster service account first, then the local kubeconfig.

    urllib3's own retries are off: `Retry` is the only retry loop, so `Retry.timeout` bounds each
    attempt (urllib3's default would repeat every request 3 more times inside each attempt).
    """
    cfg = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=cfg)
    except config.ConfigException:
        config.load_kube_config(client_configuration=cfg)
    cfg.retries = False
    return client.ApiClient(cfg)


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, ApiException):
        return exc.status in (0, 429) or exc.status >= 500
    return isinstance(exc, (urllib3.exceptions.HTTPError, OSError))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"


class KubernetesLauncher:
    kind = "kubernetes"

    def __init__(
        self,
        api_client: client.ApiClient | None = None,
        *,
        retry: Retry = Retry(),
        watch_timeout: int = 300,
        poll_interval: float = 30.0,
        watch_failures_before_polling: int = 3,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._api_client = api_client or default_api_client()
        self._batch = client.BatchV1Api(self._api_client)
        self.retry = retry
        self.watch_timeout = watch_timeout
        self.poll_interval = poll_interval
        self.watch_failures_before_polling = watch_failures_before_polling
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._watches: set[watch.Watch] = set()
        self._lock = threading.Lock()

    # -- calls ------------------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run an API call, retrying transient failures; non-transient ApiExceptions propagate."""
        for attempt in range(self.retry.attempts):
            try:
                return fn()
            except Exception as exc:
                if not _transient(exc):
                    raise
                if attempt + 1 >= self.retry.attempts or self._stop.is_set():
                    raise LaunchError(f"{what}: gave up after {attempt + 1} attempt(s): {_describe(exc)}",
                                      transient=True) from exc
                pause = self.retry.delay(attempt, self._rng)
                log.warning("k8s_retry call=%s attempt=%d error=%r pause_s=%.2f", what, attempt + 1,
                            _describe(exc), pause)
                self._sleep(pause)
        raise AssertionError("unreachable")

    def launch(self, run: Run, cfg: KubernetesConfig) -> str:
        """Create the run's Job; returns "created" or "exists" (an earlier attempt's Job for this trigger)."""
        body = build_job(run, cfg)
        ns = cfg.namespace
        try:
            job = client.V1Job.model_validate(body)  # the client's own typed validation (pydantic), before any call
            self._call(f"create {ns}/{run.name}", lambda: self._batch.create_namespaced_job(
                ns, job, _request_timeout=self.retry.timeout))
            return "created"
        except ValueError as exc:
            raise LaunchError(f"create {ns}/{run.name}: the template is not a valid Job: {_invalid(exc)}",
                              transient=False) from exc
        except ApiException as exc:
            if exc.status != 409 or _api_reason(exc) != "AlreadyExists":
                raise LaunchError(f"create {ns}/{run.name}: {_describe(exc)}: {_api_message(exc)}",
                                  transient=False) from exc
        try:
            existing = self._call(f"get {ns}/{run.name}", lambda: self._batch.read_namespaced_job(
                run.name, ns, _request_timeout=self.retry.timeout))
        except ApiException as exc:  # e.g. deleted between the 409 and the read
            raise LaunchError(f"create {ns}/{run.name} answered AlreadyExists, then get: {_describe(exc)}",
                              transient=True) from exc
        labels = existing.metadata.labels or {}
        if labels.get(LABEL_TRIGGER) != run.fingerprint:
            raise LaunchError(f"Job {ns}/{run.name} exists but belongs to another trigger "
                              f"({labels.get(LABEL_TRIGGER)!r})", transient=False)
        return "exists"

    def list_jobs(self, namespace: str) -> tuple[list[JobStatus], str]:
        """driftwatch's Jobs in `namespace` and the list's resourceVersion (to watch from)."""
        result = self._call(f"list {namespace}", lambda: self._batch.list_namespaced_job(
            namespace, label_selector=SELECTOR, _request_timeout=self.retry.timeout))
        data = self._api_client.sanitize_for_serialization(result)
        items = [job_status(item) for item in data.get("items") or []]
        return items, (data.get("metadata") or {}).get("resourceVersion", "")

    def exists(self, name: str, namespace: str) -> bool:
        """Whether the Job is in the cluster now (a GET: authoritative, unlike a list taken earlier)."""
        try:
            self._call(f"get {namespace}/{name}", lambda: self._batch.read_namespaced_job(
                name, namespace, _request_timeout=self.retry.timeout))
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def delete(self, name: str, namespace: str) -> None:
        self._call(f"delete {namespace}/{name}", lambda: self._batch.delete_namespaced_job(
            name, namespace, propagation_policy="Background", _request_timeout=self.retry.timeout))

    # -- following --------------------------------------------------------------------------------

    def follow(self, namespace: str, on_status: Callable[[JobStatus], None], resource_version: str | None,
               on_relist: Callable[[list[JobStatus]], None] | None = None) -> None:
        """Report every status change of driftwatch's Jobs in `namespace` from a background thread.

        Each (re)list reports its Jobs to `on_status`, then the whole list to `on_relist`: a Job
        deleted while no watch was open (reconnecting, polling, after a 410) is only noticed by
        its absence there.
        """
        t = threading.Thread(target=self._follow, args=(namespace, on_status, resource_version, on_relist),
                             name=f"retrain-k8s-follow-{namespace}", daemon=True)
        t.start()  # before it is listed: stop() may run now, from another thread, and joins what is listed
        with self._lock:
            self._threads.append(t)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop following; open watches are cut (again, if one was still connecting)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            while t.is_alive() and time.monotonic() < deadline:
                with self._lock:
                    for w in list(self._watches):
                        w.stop()
                t.join(0.05)

    def _follow(self, ns: str, on_status: Callable[[JobStatus], None], rv: str | None,
                on_relist: Callable[[list[JobStatus]], None] | None) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                if rv is None:
                    items, rv = self.list_jobs(ns)
                    for item in items:
                        on_status(item)
                    if on_relist is not None:
                        on_relist(items)
                if failures >= self.watch_failures_before_polling:
                    # Polling mode: the list above was this round's poll; try the watch again later.
                    failures -= 1
                    rv = None
                    self._stop.wait(self.poll_interval)
                    continue
                rv = self._watch_once(ns, rv, on_status)
                failures = 0
            except ApiException as exc:
                if self._stop.is_set():
                    return
                if exc.status == 410:
                    log.info("k8s_watch_expired namespace=%s", ns)
                    rv = None
                    continue
                failures += 1
                rv = None
                log.warning("k8s_watch_error namespace=%s error=%r failures=%d", ns, _describe(exc), failures)
                self._stop.wait(min(self.poll_interval, self.retry.delay(failures, self._rng)))
            except Exception as exc:
                if self._stop.is_set():
                    return
                failures += 1
                rv = None
                log.warning("k8s_watch_error namespace=%s error=%r failures=%d", ns, _describe(exc), failures)
                self._stop.wait(min(self.poll_interval, self.retry.delay(failures, self._rng)))

    def _watch_once(self, ns: str, rv: str, on_status: Callable[[JobStatus], None]) -> str:
        """One watch request until the server ends it; returns the resourceVersion to resume from."""
        w = watch.Watch()
        with self._lock:
            if self._stop.is_set():
                return rv
            self._watches.add(w)
        try:
            stream = w.stream(
                self._batch.list_namespaced_job, ns, label_selector=SELECTOR, resource_version=rv,
                allow_watch_bookmarks=True, timeout_seconds=self.watch_timeout,
                _request_timeout=(self.retry.timeout[0], self.watch_timeout + self.retry.timeout[1]),
            )
            for event in stream:
                obj = event["raw_object"]
                rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                    on_status(job_status(obj, deleted=event["type"] == "DELETED"))
        finally:
            with self._lock:
                self._watches.discard(w)
        return rv



def _status_field(exc: ApiException, key: str) -> str:
    """A field of the `Status` object the API server sends with an error."""
    try:
        data = json.loads(exc.body or "{}")
    except ValueError:
        return ""
    return str(data.get(key, "")) if isinstance(data, dict) else ""


def _api_message(exc: ApiException) -> str:
    return _status_field(exc, "message")


def _api_reason(exc: ApiException) -> str:
    return _status_field(exc, "reason")


def _invalid(exc: ValueError) -> str:
    """One line per problem, `spec.template...: message`, from the client's pydantic validation."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return str(exc)
