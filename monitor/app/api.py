"""The monitor's HTTP API: ingest, CloudEvents, results, metrics, health (the README lists every route).

Every error is JSON `{"error": "...", "detail": ...}` with a precise 4xx; bodies are read against
`server.max_body_bytes` *while streaming* (413 before anything is parsed), and the JSON is parsed
once, straight into the validated wire model. Auth (`monitor.app.auth`) guards every route but
`/healthz` and `/readyz` when tokens are configured (`server.auth`, `server.auth_token_env`): reads
need a read or write token, writes a write token; KServe's logger, which cannot send a header, may
carry its token in the path (`POST /v1/cloudevents/<token>`, with `server.auth.cloudevents_path_token`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.app.auth import AuthMiddleware, tokens_from_config
from monitor.app.references import reference_router
from monitor.capture import EnvelopeError, decode_batch
from monitor.capture.cloudevents import CloudEventError, parse_cloudevent
from monitor.capture.labels import decode_labels
from monitor.core.config import Config, ModelRouter
from monitor.core.errors import ApiError, error_response, read_body, validation_detail
from monitor.core.names import InvalidVersion, check_version
from monitor.core.store import disk_bytes
from monitor.exporter.service import UNMATCHED, ServiceStats
from monitor.reports import ReportSource, StoreReportSource
from monitor.reports import create_router as create_reports_router
from monitor.runtime import (
    KafkaUnavailable,
    LabelError,
    Monitor,
    PgUnavailable,
    StoreFull,
    UnknownModel,
    VerdictListener,
    reference_provenance,
    split_track,
    track_key,
)

__all__ = ["create_app"]

log = logging.getLogger("driftwatch.api")

_STATUS_ERRORS = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def create_app(
    config: Config,
    *,
    monitor: Monitor | None = None,
    controller: Any = None,
    listeners: Sequence[VerdictListener] | None = None,
    resources: Callable[[], Any] | None = None,
    profile_in_child: bool = False,
    mlflow: Any = None,
) -> FastAPI:
    """The monitor app. Without `monitor` it creates one and starts/stops it with the app's lifespan.

    `controller` (a `retrain.controller.RetrainController`) serves `POST /v1/alertmanager`, the
    retraining view and has its snapshot exported; `listeners` hear every evaluated window of the
    monitor created here (default: the controller, when there is one). `resources` is the resource
    collector's snapshot callable (monitor.exporter.collector.build_registry renders both beside the drift state).
    `profile_in_child`: the embedded monitor created here profiles its references in a child process
    (`driftwatch serve`: pandas and scipy stay out of the idle process; monitor.runtime.profiling).
    `mlflow` (a `retrain.mlflow.MlflowSync`): its failure counts are exported; it hears evaluated
    windows when `listeners` is not given.
    """
    owned = monitor is None
    if listeners is None:
        listeners = [x for x in (controller, mlflow) if x is not None]
    mon: Any = monitor if monitor is not None else _new_monitor(config, listeners, profile_in_child)
    fleet = config.fleet is not None
    limit = config.server.max_body_bytes
    tokens = tokens_from_config(config.server)  # AuthConfigError (fail closed) before anything starts

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if owned:
            await mon.start()
        try:
            yield
        finally:
            if owned:
                await mon.stop()

    app = FastAPI(title="driftwatch monitor", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.monitor = mon
    app.state.tokens = tokens
    stats = ServiceStats()
    app.state.service_stats = stats
    models = ModelRouter(m.key for m in config.models)
    if tokens is not None:  # every route, including any added later, unless listed open in monitor.app.auth
        app.add_middleware(AuthMiddleware, tokens=tokens, protect_metrics=config.server.auth.protect_metrics,
                           cloudevents_path_token=config.server.auth.cloudevents_path_token)
    # outermost (added last): counts every answer, the auth middleware's 401/403 included
    app.add_middleware(RequestMetrics, stats=stats, routes=app.router.routes)
    # GET /reports/... (monitor/reports): the embedded store's windows, or in fleet mode PostgreSQL's
    # evaluations with each window's records re-read from Kafka (any replica, any model)
    reports: ReportSource = _fleet_reports(config) if fleet else StoreReportSource(config)
    app.include_router(create_reports_router(reports))

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.error, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "validation_failed", validation_detail(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, _STATUS_ERRORS.get(exc.status_code, "http_error"), exc.detail, exc.headers)

    @app.exception_handler(StoreFull)
    async def _store_full(_: Request, exc: StoreFull) -> JSONResponse:  # nothing was stored: the sender retries
        detail = "the monitor's disk is full; nothing of this request was stored, retry later"
        return error_response(503, "storage_full", detail, {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(KafkaUnavailable)
    async def _kafka_down(_: Request, exc: KafkaUnavailable) -> JSONResponse:  # not acknowledged: the sender retries
        return error_response(503, "event_log_unavailable", f"{exc}; nothing of this request was acknowledged, retry later",
                              {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(PgUnavailable)
    async def _postgres_down(_: Request, exc: PgUnavailable) -> JSONResponse:
        return error_response(503, "database_unavailable", "the shared database cannot be reached, retry later", {"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        path = request.url.path
        if path.startswith("/v1/cloudevents/"):
            path = "/v1/cloudevents/<token>"  # never log a path token
        log.error("unhandled_error path=%s error=%s", path, type(exc).__name__, exc_info=exc)
        return error_response(500, "internal_error", "see the monitor's log")

    @app.post("/v1/events")
    async def post_events(request: Request) -> JSONResponse:
        if _media_type(request) != "application/json":
            raise ApiError(415, "unsupported_media_type", "send Content-Type: application/json")
        body = await read_body(request, limit)
        try:
            batch = decode_batch(body)
        except EnvelopeError as exc:
            raise ApiError(400 if exc.error == "invalid_json" else 422, exc.error, exc.detail) from None
        result = await mon.ingest(batch.events)
        stats.unknown_model_events += result.reasons.get("unknown_model", 0)  # counted, never named, in /metrics
        return JSONResponse(result.to_dict())

    @app.post("/v1/cloudevents")
    async def post_cloudevent(request: Request) -> JSONResponse:
        return await cloudevent(request)

    if config.server.auth.cloudevents_path_token:
        @app.post("/v1/cloudevents/{token}", include_in_schema=False)
        async def post_cloudevent_path_token(request: Request) -> JSONResponse:
            """KServe's logger URL carries the write token (checked by the middleware)."""
            return await cloudevent(request)

    async def cloudevent(request: Request) -> JSONResponse:
        media = _media_type(request)
        if "ce-specversion" not in request.headers and media != "application/cloudevents+json":
            raise ApiError(415, "unsupported_media_type", "send a binary-mode CloudEvent (ce-* headers) or application/cloudevents+json")
        body = await read_body(request, limit)
        try:
            half = parse_cloudevent(dict(request.headers), body)
            outcome = await mon.ingest_half(half)
        except CloudEventError as exc:
            raise ApiError(400, exc.error, exc.detail) from None
        except UnknownModel as exc:
            stats.unknown_model_events += 1
            raise ApiError(404, "unknown_model", exc.reason) from None
        return JSONResponse({"status": outcome.status, "rejected": outcome.reason})

    @app.post("/v1/labels")
    async def post_labels(request: Request) -> JSONResponse:
        """Delayed ground truth keyed by the captured event's id; 200 once durable, each label counted by outcome.
        In fleet mode 200 once the batch is appended to the event log (acks=all): the model's owner
        counts the outcomes (docs/scale-out.md, "Labels")."""
        if _media_type(request) != "application/json":
            raise ApiError(415, "unsupported_media_type", "send Content-Type: application/json")
        body = await read_body(request, limit)
        try:
            batch, stamps = decode_labels(body)
        except EnvelopeError as exc:
            named = _batch_model(body)
            key = _key_or_none(*named) if named is not None else None
            if key is not None:
                mon.refuse_labels(key, _batch_size(body))
            raise ApiError(400 if exc.error == "invalid_json" else 422, exc.error, exc.detail) from None
        try:  # from here on the batch names its model by key (namespace/name for a namespaced model)
            batch = msgspec.structs.replace(batch, model=models.key(batch.model, batch.namespace), namespace=None)
            result = await mon.ingest_labels(batch, stamps)
        except UnknownModel as exc:
            stats.unknown_model_labels += len(batch.labels)
            raise ApiError(404, "unknown_model", exc.reason) from None
        except LabelError as exc:
            raise ApiError(exc.status, exc.error, exc.detail) from None
        return JSONResponse(result.to_dict())

    def model_key(model: str, namespace: str | None) -> str:
        """The key of the model a path names (`?namespace=` when several namespaces share the name)."""
        try:
            key = models.key(model, namespace)
        except UnknownModel as exc:
            raise ApiError(404, "unknown_model", exc.reason) from None
        if not mon.has_model(key):
            raise ApiError(404, "unknown_model", f"no model {model!r} is configured")
        return key

    def version_key(key: str, version: str | None) -> str:
        """The key of the version track `?version=` names; without one, the model's own key, or its
        newest version's when all its traffic names a version (`Monitor.default_track`)."""
        if version is None:
            return key if fleet else mon.default_track(key)
        try:
            version = check_version(version)
        except InvalidVersion as exc:
            raise ApiError(422, "invalid_version", str(exc)) from None
        if not mon.has_model(track_key(key, version)):
            raise ApiError(404, "unknown_version", f"model {key!r} has no tracked version {version!r}")
        return track_key(key, version)

    def _key_or_none(model: str, namespace: str | None) -> str | None:
        try:
            return models.key(model, namespace)
        except UnknownModel:
            return None

    app.include_router(reference_router(config, mon, model_key, NAMESPACE))  # PUT/GET a model's reference

    @app.get("/v1/models/{model}/performance")
    async def model_performance(model: str, namespace: str | None = NAMESPACE, version: str | None = VERSION,
                                limit: int = Query(default=100, ge=1, le=1000)) -> JSONResponse:
        """Each evaluated window's performance, oldest first: realized (labels so far) and estimated."""
        key = model_key(model, namespace)
        cfg = config.model(key)
        if cfg.performance is None:
            return JSONResponse({**_identity(cfg), "enabled": False, "windows": []})
        rows = await run_in_threadpool(mon.performance_history, version_key(key, version), limit)
        return JSONResponse({**_identity(cfg), "enabled": True, "windows": [_performance_view(r) for r in reversed(rows)]})

    @app.get("/v1/models")
    async def list_models() -> JSONResponse:
        snaps = mon.snapshot()
        return JSONResponse({"models": [_model_view(config, snaps[m.key]) for m in config.models]})

    @app.get("/v1/models/{model}/versions")
    async def model_versions(model: str, namespace: str | None = NAMESPACE) -> JSONResponse:
        """The versions the model's traffic named: first and last event, events, superseded (docs/versions.md)."""
        key = model_key(model, namespace)
        versions = [] if fleet else mon.versions(key)  # fleet mode does not track versions (docs/versions.md)
        return JSONResponse({**_identity(config.model(key)), "max_tracked": config.model(key).versions.max_tracked,
                             "versions": versions})

    @app.get("/v1/models/{model}/drift")
    async def model_drift(model: str, namespace: str | None = NAMESPACE, version: str | None = VERSION) -> JSONResponse:
        snap = mon.snapshot().get(version_key(model_key(model, namespace), version))
        if snap is None:
            raise ApiError(404, "unknown_model", f"no model {model!r} is configured")
        view = _model_view(config, snap)
        view["result"] = snap.result.to_dict() if snap.result is not None else None
        if config.model(snap.model).reference.mlflow is not None:  # which model version's reference judges it
            view["reference"] = await run_in_threadpool(reference_provenance, config, snap.model)
        current = None if fleet else await run_in_threadpool(mon.current_reference, snap.model, snap.version)
        if current is not None:  # set while running (docs/references.md): it judges now
            view["reference"] = current.reference.to_json()
        return JSONResponse(view)

    @app.get("/v1/models/{model}/evaluations")
    async def model_evaluations(model: str, namespace: str | None = NAMESPACE, version: str | None = VERSION,
                                limit: int = Query(default=100, ge=1, le=1000)) -> JSONResponse:
        """Evaluated windows, oldest first: the history behind the reports and the demo's summary."""
        key = model_key(model, namespace)
        track = version_key(key, version)
        rows = await run_in_threadpool(reports.evaluations, track, limit)
        return JSONResponse({**_identity(config.model(key)), "version": split_track(track)[1],
                             "evaluations": [_evaluation_view(e) for e in rows]})

    @app.get("/v1/models/{model}/retraining")
    async def model_retraining(model: str, namespace: str | None = NAMESPACE,
                               limit: int = Query(default=50, ge=1, le=1000)) -> JSONResponse:
        """Retraining runs and the policy's recent decisions (launched, or skipped and why)."""
        key = model_key(model, namespace)
        ident = _identity(config.model(key))
        if controller is None:
            return JSONResponse({**ident, "enabled": False, "jobs": [], "decisions": []})
        history = controller.history
        jobs = await run_in_threadpool(history.jobs, model=key)
        decisions = await run_in_threadpool(history.recent_decisions, key, limit)
        return JSONResponse({
            **ident,
            "enabled": controller.retrain_config(key) is not None,
            "jobs": [_job_view(j) for j in jobs],
            "decisions": [_decision_view(d) for d in decisions],
        })

    if fleet:
        @app.get("/v1/fleet")
        async def fleet_membership() -> JSONResponse:
            """This replica's partitions and models, and the Kafka records it skipped by reason."""
            return JSONResponse(mon.membership())

    # HEAD answers too (load balancers probe with it), outside the schema: one operation per path.
    @app.head("/healthz", include_in_schema=False)
    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.head("/readyz", include_in_schema=False)
    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        if mon.ready:
            return JSONResponse({"status": "ready"})
        detail: dict[str, Any] = {"reference_errors": dict(mon.profile_errors)}
        detail |= {"consumer_started": False} if fleet else {"store_open": mon.store is not None}
        return error_response(503, "not_ready", detail)

    if controller is not None:
        from retrain.webhook import router as webhook_router

        app.include_router(webhook_router(controller, None, max_body_bytes=limit))  # the middleware checks its token
    _mount_metrics(app, config, mon, resources, controller.snapshot if controller is not None else None, stats,
                   mlflow.failures if mlflow is not None else None)
    stats.declare((method, route.path) for route in app.router.routes if isinstance(route, APIRoute) for method in sorted(route.methods or ()))
    return app


class RequestMetrics:
    """ASGI middleware: each answer counted by method, route template and status, and its duration observed.

    The route is the one the router matched (`scope["route"]`, set on a match and on a 405); a request
    answered before routing (the auth middleware's 401/403) is matched here against the same routes;
    any other path is `unmatched`. Never the raw path: ids and path tokens stay out of the labels."""

    def __init__(self, app: ASGIApp, stats: ServiceStats, routes: list[BaseRoute]) -> None:
        self.app = app
        self.stats = stats
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception that escapes is answered 500 by the outermost error middleware

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.stats.observe(scope["method"], self._route(scope), status, time.perf_counter() - started)

    def _route(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            for candidate in self.routes:
                match, _ = candidate.matches(scope)
                if match is Match.FULL:
                    route = candidate
                    break
                if match is Match.PARTIAL and route is None:
                    route = candidate
        path = getattr(route, "path", None)
        return path if isinstance(path, str) else UNMATCHED


NAMESPACE = Query(default=None, min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                  description="The model's namespace, when models of this name run in several")


VERSION = Query(default=None, max_length=256, description="A version of the model: that version's own windows and "
                "results (docs/versions.md)")


def _identity(model: Any) -> dict[str, Any]:
    """How a model is named in answers: `model` (its name) and `namespace` (null when it has none)."""
    return {"model": model.name, "namespace": model.namespace}


def _model_view(config: Config, snap: Any) -> dict[str, Any]:
    model = config.model(snap.model)
    window = snap.window
    return {
        **_identity(model),
        "version": snap.version,
        "protocol": model.protocol,
        "columns": [c.name for c in model.columns],
        "window_records": snap.window_records,
        "last_evaluation": snap.last_evaluation,
        "window": None if window is None else {
            "start": window.start, "end": window.end, "first_seq": window.first_seq,
            "last_seq": window.last_seq, "n_records": window.n_records,
        },
        "ingested": snap.ingested,
        "rejected": dict(snap.rejected),
    }


def _evaluation_view(ev: Any) -> dict[str, Any]:
    return {
        "window_id": ev.window_id, "start": ev.start, "end": ev.end, "first_seq": ev.first_seq,
        "last_seq": ev.last_seq, "n_records": ev.n_records, "evaluated_at": ev.evaluated_at,
        "result": ev.result, "reference_id": ev.reference_id,
    }


def _performance_view(row: Any) -> dict[str, Any]:
    return {
        "window_id": row.last_rec, "first_rec": row.first_rec, "start": row.window_start, "end": row.window_end,
        "n_records": row.n_records, "n_labelled": row.n_labelled, "evaluated_at": row.evaluated_at,
        "updated_at": row.updated_at, "pending_refresh": row.stale, "result": row.result,
    }


def _batch_model(body: bytes) -> tuple[str, str | None] | None:
    """(model, namespace) a refused label batch names, if it names one (for the `invalid` count)."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    model = value.get("model") if isinstance(value, dict) else None
    namespace = value.get("namespace") if isinstance(value, dict) else None
    return (model, namespace if isinstance(namespace, str) else None) if isinstance(model, str) else None


def _batch_size(body: bytes) -> int:
    try:
        labels = json.loads(body).get("labels")
    except (ValueError, RecursionError, AttributeError):
        return 0
    return len(labels) if isinstance(labels, list) else 0


def _job_view(job: Any) -> dict[str, Any]:
    """A retraining run, with its MLflow run and model versions once `retrain.mlflow` linked them."""
    return {
        **({"mlflow": job.mlflow.to_json()} if job.mlflow is not None else {}),
        "name": job.name, "launcher": job.launcher, "namespace": job.namespace, "state": job.state,
        "created_at": job.created_at, "started_at": job.started_at, "finished_at": job.finished_at,
        "duration_seconds": job.duration, "exit_code": job.exit_code, "log_path": job.log_path,
        "detail": job.detail,
    }


def _decision_view(d: Any) -> dict[str, Any]:
    return {
        "at": d.at, "source": d.source, "action": d.action, "reason": d.reason,
        "fingerprint": d.fingerprint, "job_name": d.job_name,
    }


def _mount_metrics(
    app: FastAPI,
    config: Config,
    mon: Any,
    resources: Callable[[], Any] | None,
    retrain: Callable[[], Mapping[str, Any]] | None,
    stats: ServiceStats,
    mlflow: Callable[[], Mapping[str, int]] | None = None,
) -> None:
    from monitor.exporter.collector import build_registry, render

    def store_size() -> int | None:
        """The embedded store's file plus WAL while it is open (a stat, not the writer's connection)."""
        return disk_bytes(config.server.store.path) if mon.store is not None else None

    # a fleet replica exports the models it owns, and nothing another replica exports too
    registry = build_registry(config, mon.owned_snapshot if config.fleet else mon.snapshot, resources, retrain,
                              fleet=mon.membership if config.fleet else None, service=stats, store_size=None if config.fleet else store_size,
                              mlflow=mlflow)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        body, content_type = render(registry, request.headers.get("accept"))
        return Response(body, media_type=content_type)


def _new_monitor(config: Config, listeners: Sequence[VerdictListener], profile_in_child: bool) -> Any:
    """The embedded `Monitor`, or a fleet replica when the config has a `fleet` section."""
    if config.fleet is None:
        return Monitor(config, listeners=listeners, profile_in_child=profile_in_child)
    from monitor.runtime.fleet import FleetMonitor

    return FleetMonitor(config, listeners=listeners)


def _fleet_reports(config: Config) -> ReportSource:
    """Fleet mode's report source (its Kafka reader and PostgreSQL client load only in fleet mode)."""
    from monitor.reports.fleet_source import FleetReportSource

    return FleetReportSource(config)
