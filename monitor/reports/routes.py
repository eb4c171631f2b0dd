"""HTTP routes of the reports: HTML for people, JSON twins for scripts.

    GET /reports/                          models, latest verdict, window range, links
    GET /reports/{model}                   the latest window's report, links to earlier windows
    GET /reports/{model}/{window}          one window's report (window = its id in the listings)
    GET /reports/{model}/{window}/evidently   Evidently's own page for that window
    GET /reports/{model}/{window}/agreement   each column's score beside Evidently's (framed by the report)
The report page never waits for Evidently (it starts Evidently in the background); the last two
URLs do, and the report frames them.
JSON twins: add `.json` to the last path segment (`/reports.json`, `/reports/churn.json`,
`/reports/churn/1500.json`) or pass `?format=json`. Unknown models or windows are 404s, as an HTML
page for browsers and as `{"error": "not_found", "detail": ...}` for the JSON twins.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response

from monitor.core.config import ModelRouter, UnknownModel
from monitor.core.names import InvalidVersion, check_version
from monitor.reports.build import render_error, render_index
from monitor.reports.page import EVIDENTLY_HEADER_CSP
from monitor.reports.source import ReportSource
from monitor.reports.view import index_json, report_json
from monitor.reports.worker import NotFound, ReportWorker
from monitor.runtime import SEPARATOR, track_key

__all__ = ["create_router"]

MAX_NAME_IN_MESSAGE = 80
NAMESPACE = Query(None, max_length=63, description="The model's namespace, when models of this name run in several")


class _BadRequest(ValueError):
    pass


def _split(segment: str, fmt: str | None) -> tuple[str, bool]:
    """(name, wants_json) from a path segment that may end in `.json` and the `format` parameter."""
    if fmt not in (None, "html", "json"):
        raise _BadRequest(f"format must be 'html' or 'json', got {fmt[:MAX_NAME_IN_MESSAGE]!r}")
    if segment.endswith(".json"):
        return segment[: -len(".json")], True
    return segment, fmt == "json"


def _window_id(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise _BadRequest(f"window must be a window id (a non-negative integer), got {raw[:MAX_NAME_IN_MESSAGE]!r}")
    return int(raw)


def create_router(source: ReportSource, *, base: str = "/reports", evidently: bool = True, history: int = 30) -> APIRouter:
    """The reports' routes over `source`; the worker (threads, Evidently's process) stops with the app."""
    worker = ReportWorker(source, base=base, evidently=evidently, history=history)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            worker.close()
            close = getattr(source, "close", None)
            if callable(close):
                close()

    router = APIRouter(lifespan=lifespan)
    models = ModelRouter(source.models())

    def model_key(name: str, namespace: str | None) -> str:
        """The key of the model a path names; `?namespace=` picks among namespaces sharing the name. A
        name `model@version` is that version's track (docs/versions.md; the reports' own links)."""
        name, _, version = name.partition(SEPARATOR)
        try:
            key = models.key(name, namespace or None)
        except UnknownModel as exc:
            raise NotFound(exc.reason[:200]) from None
        if not version:
            return key
        try:
            return track_key(key, check_version(version))
        except InvalidVersion as exc:
            raise _BadRequest(f"version: {exc}") from None
    router.worker = worker  # type: ignore[attr-defined]  # for tests and the service's shutdown

    def error(status: int, message: str, as_json: bool) -> Response:
        title = {400: "Bad request", 404: "Not found", 503: "Unavailable"}.get(status, "Error")
        if as_json:
            return JSONResponse({"error": title.lower().replace(" ", "_"), "detail": message}, status_code=status)
        return HTMLResponse(render_error(status, title, message, base), status_code=status)

    async def index(as_json: bool) -> Response:
        rows = await worker.index()
        return JSONResponse(index_json(rows, base)) if as_json else HTMLResponse(render_index(rows, base))

    @router.get(f"{base}/", include_in_schema=True, summary="Models and their latest drift verdict")
    async def reports_index(format: str | None = Query(None)) -> Response:
        try:
            _, as_json = _split("", format)
        except _BadRequest as exc:
            return error(400, str(exc), True)
        return await index(as_json)

    @router.get(f"{base}.json", include_in_schema=False)
    async def reports_index_json() -> Response:
        return await index(True)

    async def report(model_seg: str, window_seg: str | None, format: str | None, namespace: str | None) -> Response:
        as_json = format == "json" or (window_seg or model_seg).endswith(".json")
        try:
            if window_seg is None:
                name, as_json = _split(model_seg, format)
                window = None
            else:
                raw, as_json = _split(window_seg, format)
                name, window = model_seg, _window_id(raw)
            model = model_key(name, namespace)
            if as_json:
                view = await worker.json_view(model, window)
                return JSONResponse(_json_safe(report_json(view, base)))
            return HTMLResponse(await worker.page(model, window))
        except _BadRequest as exc:
            return error(400, str(exc), as_json)
        except NotFound as exc:
            return error(404, str(exc), as_json)

    @router.get(f"{base}/{{model}}", summary="The latest drift report of a model")
    async def model_report(model: str, format: str | None = Query(None), namespace: str | None = NAMESPACE) -> Response:
        return await report(model, None, format, namespace)

    @router.get(f"{base}/{{model}}/{{window}}", summary="The drift report of one evaluated window")
    async def window_report(model: str, window: str, format: str | None = Query(None),
                            namespace: str | None = NAMESPACE) -> Response:
        return await report(model, window, format, namespace)

    @router.get(f"{base}/{{model}}/{{window}}/evidently", summary="Evidently's data drift report of one window")
    async def evidently_report(model: str, window: str, namespace: str | None = NAMESPACE) -> Response:
        try:
            view = await worker.view(model_key(model, namespace), _window_id(window))
        except _BadRequest as exc:
            return error(400, str(exc), False)
        except NotFound as exc:
            return error(404, str(exc), False)
        outcome = await worker.evidently(view)
        if isinstance(outcome, str):
            return error(503, f"Evidently could not build its report for this window: {outcome}", False)
        # Evidently's page carries traffic data raw in its scripts: never run it in the monitor's origin.
        return HTMLResponse(outcome.html, headers={"Content-Security-Policy": EVIDENTLY_HEADER_CSP})

    @router.get(f"{base}/{{model}}/{{window}}/agreement", summary="driftwatch's and Evidently's score of each column")
    async def agreement(model: str, window: str, namespace: str | None = NAMESPACE) -> Response:
        try:
            return HTMLResponse(await worker.agreement(model_key(model, namespace), _window_id(window)))
        except _BadRequest as exc:
            return error(400, str(exc), False)
        except NotFound as exc:
            return error(404, str(exc), False)

    return router


def _json_safe(value: Any) -> Any:
    """NaN and infinities (not JSON) become None, as in `DriftResult.to_dict()`."""
    from monitor.drift.result import json_safe

    return json_safe(value)
