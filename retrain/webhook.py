"""`POST /v1/alertmanager`: Alertmanager (webhook version 4) alerts into the retraining policy.

Only firing alerts labelled `driftwatch_action="retrain"` with a `model` label count; they go
through the same gates as window triggers (cooldown, active caps, budget, dry run), deduplicated on
(alert fingerprint, startsAt), so a silence in Alertmanager is how on-call stops retraining.
Everything else is answered with a precise 4xx in the project's `{"error", "detail"}` shape; the
body is read with a hard size limit before any parsing.
"""

from __future__ import annotations

import hmac
import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool

from monitor.core.errors import ApiError, read_body, validation_detail
from retrain.policy import Decision
from retrain.run import job_name

log = logging.getLogger("driftwatch.retrain.webhook")

DEFAULT_MAX_BODY = 1024 * 1024
ACTION_LABEL = "driftwatch_action"


class Controller(Protocol):
    def model_key(self, name: str, namespace: str | None) -> str | None: ...

    def on_alert(self, model: str, alert_fingerprint: str, starts_at: float, *, alertname: str = "",
                 report_url: str | None = None) -> Decision: ...


class _Lenient(BaseModel):
    """Alertmanager may add fields in later versions: unknown ones are ignored, known ones typed.

    Field names are Alertmanager's wire names (camelCase), so payloads validate as sent.
    """

    model_config = ConfigDict(extra="ignore", strict=False)


class Alert(_Lenient):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: str = Field(min_length=1, max_length=128)

    @field_validator("startsAt", "endsAt")
    @classmethod
    def _in_utc_range(cls, value: datetime | None) -> datetime | None:
        """A time whose UTC date leaves years 1-9999 (e.g. 0001-01-01T00:00+14:00) cannot be dated or named."""
        if value is not None:
            try:
                datetime.fromtimestamp(value.timestamp(), UTC)
            except (OverflowError, OSError, ValueError):
                raise ValueError("time out of range: its UTC date must fall in years 1-9999") from None
        return value


class Payload(_Lenient):
    version: Literal["4"]
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupKey: str = ""
    truncatedAlerts: int = Field(default=0, ge=0)
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[Alert]


def _handle(controller: Controller, payload: Payload) -> dict[str, Any]:
    decisions: list[dict[str, Any]] = []
    ignored: list[dict[str, Any]] = []
    for alert in payload.alerts:
        model = alert.labels.get("model")
        alertname = alert.labels.get("alertname", "")
        base = {"fingerprint": alert.fingerprint, "alertname": alertname, "model": model}
        if alert.labels.get(ACTION_LABEL) != "retrain":
            ignored.append({**base, "reason": "not_a_retrain_alert"})
        elif alert.status != "firing":
            ignored.append({**base, "reason": "resolved"})
        elif not model:
            ignored.append({**base, "reason": "missing_model_label"})
        elif (key := controller.model_key(model, alert.labels.get("namespace"))) is None:
            ignored.append({**base, "reason": "unknown_model"})
        else:
            d = controller.on_alert(key, alert.fingerprint, alert.startsAt.timestamp(),
                                    alertname=alertname, report_url=alert.annotations.get("report_url") or None)
            decisions.append({
                **base, "startsAt": alert.startsAt.isoformat(), "action": d.action, "reason": d.reason,
                "trigger": d.fingerprint,
                "job": job_name(model, d.fingerprint) if d.action == "launch" and d.fingerprint else None,
            })
    log.info("alertmanager_webhook alerts=%d decisions=%d launched=%d ignored=%d truncated=%d",
             len(payload.alerts), len(decisions), sum(d["action"] == "launch" for d in decisions), len(ignored),
             payload.truncatedAlerts)
    return {"status": "ok", "received": len(payload.alerts), "decisions": decisions, "ignored": ignored}


async def _read_payload(request: Request, expected: bytes | None, limit: int) -> Payload:
    """The validated payload, or the `ApiError` to answer (401, 415, 413, 400, 422 in that order)."""
    if expected is not None:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            raise ApiError(401, "unauthorized", "missing or invalid bearer token",
                           {"WWW-Authenticate": 'Bearer realm="driftwatch"'})
    ctype = request.headers.get("content-type", "")
    if ctype.split(";")[0].strip().lower() != "application/json":
        raise ApiError(415, "unsupported_media_type", f"expected application/json, got {ctype or 'nothing'}")
    body = await read_body(request, limit)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(400, "invalid_json", str(exc)[:200] or type(exc).__name__) from None
    try:
        return Payload.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "validation_failed", validation_detail(exc.errors())) from None


def router(controller: Controller, token: str | None, *, max_body_bytes: int = DEFAULT_MAX_BODY) -> APIRouter:
    """The Alertmanager webhook route; `token` (when set) must come as `Authorization: Bearer <token>`."""
    api = APIRouter()
    expected = f"Bearer {token}".encode() if token else None

    @api.post("/v1/alertmanager", response_model=None)
    async def alertmanager(request: Request) -> JSONResponse:
        try:
            payload = await _read_payload(request, expected, max_body_bytes)
        except ApiError as exc:
            return exc.response()
        # The policy writes to SQLite: keep that off the event loop.
        return JSONResponse(await run_in_threadpool(_handle, controller, payload))

    return api
