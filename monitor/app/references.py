"""`PUT /v1/models/{model}/reference` and `GET` of it: a model's reference as a versioned object.

The body is the reference itself, CSV (`text/csv`) or Parquet (`application/vnd.apache.parquet`),
or JSON naming an MLflow model version whose run logged it: `{"mlflow": {"model": "wine",
"version": 3, "artifact": "reference.csv"}}` (the artifact defaults to the one the model's config
names). Answers: 201 a new object became current, 200 the same content was stored before (switched
back to it, or already current: idempotent by sha256), 404 unknown model, 413 over
`server.max_reference_bytes`, 415 another media type, 422 unusable (a reason per column), 503 while
MLflow cannot be asked, 501 in fleet mode. Auth is the middleware's: PUT needs a write token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from monitor.core.config import Config
from monitor.core.errors import ApiError, read_body, validation_detail
from monitor.core.names import InvalidVersion, check_version
from monitor.runtime.reference_switch import ReferenceRejected, mlflow_artifact

__all__ = ["reference_router"]

MEDIA_FORMATS: dict[str, Literal["csv", "parquet"]] = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "application/parquet": "parquet",
}
VERSION = Query(default=None, max_length=256,
                description="The serving model version the reference is for (default: the model as a whole)")


class _MlflowSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1, max_length=256)
    version: int = Field(ge=1)
    artifact: str | None = Field(default=None, min_length=1, max_length=1024)


class _MlflowBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mlflow: _MlflowSource


def reference_router(config: Config, mon: Any, model_key: Callable[[str, str | None], str], namespace: Any) -> APIRouter:
    """The routes; `model_key` resolves (model, ?namespace=) to a configured key or raises 404."""
    router = APIRouter()
    fleet = config.fleet is not None

    def checked(version: str | None) -> str | None:
        """The version as the traffic's are checked (`check_version`): a reference for a version that could
        never be tracked would never be used."""
        if version is None:
            return None
        try:
            return check_version(version)
        except InvalidVersion as exc:
            raise ApiError(422, "invalid_version", str(exc)) from None

    def embedded_only() -> None:
        if fleet:
            raise ApiError(501, "not_implemented", "setting references through the API is not available in fleet mode yet: "
                                                   "change `reference` in the config and roll the replicas (docs/references.md)")

    @router.put("/v1/models/{model}/reference")
    async def put_reference(request: Request, model: str, namespace: str | None = namespace,
                            version: str | None = VERSION) -> JSONResponse:
        key = model_key(model, namespace)
        version = checked(version)
        embedded_only()
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json" and media not in MEDIA_FORMATS:
            raise ApiError(415, "unsupported_media_type",
                           "send the reference as text/csv or application/vnd.apache.parquet, or application/json naming an MLflow model version")
        body = await read_body(request, config.server.max_reference_bytes)
        try:
            if media == "application/json":
                try:
                    src = _MlflowBody.model_validate_json(body).mlflow
                except ValidationError as exc:
                    raise ApiError(422, "validation_failed", validation_detail(exc.errors())) from None
                data, fmt, origin = await run_in_threadpool(mlflow_artifact, config, config.model(key), src.model, src.version, src.artifact)
                source: Literal["file", "mlflow"] = "mlflow"
            else:
                data, fmt, origin, source = body, MEDIA_FORMATS[media], media, "file"
            result = await run_in_threadpool(mon.set_reference, key, version, source, origin, fmt, data)
        except ReferenceRejected as exc:
            headers = {"Retry-After": "10"} if exc.status == 503 else None
            raise ApiError(exc.status, exc.error, exc.detail, headers) from None
        ref = result.reference
        return JSONResponse(
            {"reference": ref.to_json(), "created": result.created, "switched": result.switched},
            status_code=201 if result.created else 200,
            headers={"Location": f"/v1/models/{model}/reference"},
        )

    @router.get("/v1/models/{model}/reference")
    async def get_reference(model: str, namespace: str | None = namespace, version: str | None = VERSION) -> JSONResponse:
        key = model_key(model, namespace)
        cfg = config.model(key)
        version = checked(version)
        if fleet:
            current = None
        else:
            current = await run_in_threadpool(mon.current_reference, key, version)
        view: dict[str, Any] = {"model": cfg.name, "namespace": cfg.namespace, "version": version}
        if current is None:
            view["reference"] = {"id": None, "source": "config", "origin": cfg.reference.source,
                                 "label": f"the configured reference ({cfg.reference.source})"}
        else:
            view["reference"] = {**current.reference.to_json(), "from_record": current.from_rec, "set_at": current.set_at}
        return JSONResponse(view)

    return router
