"""A small typed client for the MLflow tracking server's REST API (`/api/2.0/mlflow/...`).

driftwatch talks to MLflow over its documented REST API with httpx instead of importing the `mlflow`
package: the monitor stays light (the full `mlflow` pulls a web stack, SQLAlchemy, alembic…) and
nothing of it has to agree with our pins. Only what docs/mlflow.md needs is here: model versions (by
number or alias) and their tags, runs and their artifacts, and the two searches behind the
retraining link. It sits in core, beside the other storage adapters, so the runtime (references)
and retraining (tags, links) share it.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from monitor.core.config import HttpAuth, MlflowConfig
from monitor.core.secrets import SecretError, auth_headers

__all__ = ["MlflowClient", "MlflowError", "ModelVersion", "Run", "quote_filter"]

API = "/api/2.0/mlflow"


class MlflowError(Exception):
    """A request MLflow refused or did not answer. `transient`: worth retrying (unreachable, 429, 5xx);
    `code`: MLflow's `error_code` (`RESOURCE_DOES_NOT_EXIST`, …) when it sent one."""

    def __init__(self, message: str, *, transient: bool, code: str | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.code = code


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    run_id: str
    """Empty for a version registered from a path rather than a run."""
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Run:
    run_id: str
    experiment_id: str
    tags: Mapping[str, str] = field(default_factory=dict)


def quote_filter(value: str) -> str:
    """`value` as a single-quoted string constant of MLflow's search syntax."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _tags(items: Any) -> dict[str, str]:
    return {str(t["key"]): str(t.get("value", "")) for t in items or [] if isinstance(t, dict) and "key" in t}


def _version(d: Mapping[str, Any]) -> ModelVersion:
    return ModelVersion(name=str(d["name"]), version=str(d["version"]), run_id=str(d.get("run_id") or ""),
                        tags=_tags(d.get("tags")))


def _auth_headers(auth: HttpAuth) -> dict[str, str]:
    """Bearer or basic, read at each request (a rotated token is picked up); MLflow's own clients send
    the same from MLFLOW_TRACKING_TOKEN / MLFLOW_TRACKING_USERNAME+PASSWORD."""
    try:
        return auth_headers(auth, "MLflow credential")
    except SecretError as exc:
        raise MlflowError(str(exc), transient=False) from None


class MlflowClient:
    """One tracking server. Each call is one request (no retries here: callers decide, by `transient`)."""

    def __init__(self, config: MlflowConfig, *, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self._http = httpx.Client(base_url=config.tracking_uri, timeout=config.timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                 body: Mapping[str, Any] | None = None, what: str) -> Any:
        try:
            resp = self._http.request(method, path, params=params, json=body, headers=_auth_headers(self.config.auth))
        except httpx.HTTPError as exc:
            raise MlflowError(f"{what}: MLflow at {self.config.tracking_uri} is unreachable ({type(exc).__name__})",
                              transient=True) from None
        if resp.status_code >= 400:
            code, message = None, resp.text[:300]
            try:
                err = resp.json()
                code, message = err.get("error_code"), err.get("message", message)
            except ValueError:
                pass
            transient = resp.status_code == 429 or resp.status_code >= 500
            raise MlflowError(f"{what}: MLflow answered {resp.status_code} {code or ''} {message}".replace("  ", " "),
                              transient=transient, code=code)
        return resp.json() if resp.content else {}

    # -- the model registry ------------------------------------------------------------------------

    def model_version(self, name: str, version: int | str) -> ModelVersion:
        d = self._request("GET", f"{API}/model-versions/get", params={"name": name, "version": str(version)},
                          what=f"model {name!r} version {version}")
        return _version(d["model_version"])

    def model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        d = self._request("GET", f"{API}/registered-models/alias", params={"name": name, "alias": alias},
                          what=f"model {name!r} alias {alias!r}")
        return _version(d["model_version"])

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self._request("POST", f"{API}/model-versions/set-tag",
                      body={"name": name, "version": version, "key": key, "value": value},
                      what=f"tag {key} on model {name!r} version {version}")

    def model_versions_of_run(self, run_id: str) -> list[ModelVersion]:
        """The model versions registered from `run_id` (every registered model)."""
        d = self._request("GET", f"{API}/model-versions/search",
                          params={"filter": f"run_id = {quote_filter(run_id)}", "max_results": 100},
                          what=f"model versions of run {run_id}")
        return [_version(v) for v in d.get("model_versions", [])]

    # -- runs and their artifacts ------------------------------------------------------------------

    def experiment_ids(self, limit: int = 1000) -> list[str]:
        """The active experiments' ids (the first `limit`): runs/search needs them named."""
        d = self._request("POST", f"{API}/experiments/search", body={"max_results": limit}, what="experiments")
        return [str(e["experiment_id"]) for e in d.get("experiments", [])]

    def search_runs(self, filter_string: str, experiment_ids: list[str], limit: int = 10) -> list[Run]:
        d = self._request("POST", f"{API}/runs/search",
                          body={"experiment_ids": experiment_ids, "filter": filter_string, "max_results": limit},
                          what="run search")
        return [Run(run_id=str(r["info"]["run_id"]), experiment_id=str(r["info"]["experiment_id"]),
                    tags=_tags(r.get("data", {}).get("tags"))) for r in d.get("runs", [])]

    def artifact_size(self, run_id: str, path: str) -> int | None:
        """The size MLflow lists for the file `path` of the run; None when it lists no such file."""
        parent = path.rpartition("/")[0]
        d = self._request("GET", f"{API}/artifacts/list", params={"run_id": run_id, **({"path": parent} if parent else {})},
                          what=f"artifacts of run {run_id}")
        for f in d.get("files", []):
            if f.get("path") == path and not f.get("is_dir"):
                return int(f["file_size"]) if "file_size" in f else -1
        return None

    def download_artifact(self, run_id: str, path: str, dest: Path) -> str:
        """Stream the run's artifact `path` into `dest` (written beside it, then renamed: a reader never
        sees half a file); returns its sha256 (hex)."""
        what = f"artifact {path!r} of run {run_id}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        digest = hashlib.sha256()
        try:
            with self._http.stream("GET", "/get-artifact", params={"run_uuid": run_id, "path": path},
                                   headers=_auth_headers(self.config.auth)) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise MlflowError(f"{what}: MLflow answered {resp.status_code} {resp.text[:300]}",
                                      transient=resp.status_code == 429 or resp.status_code >= 500)
                with part.open("wb") as out:
                    for chunk in resp.iter_bytes():
                        digest.update(chunk)
                        out.write(chunk)
        except httpx.HTTPError as exc:
            part.unlink(missing_ok=True)
            raise MlflowError(f"{what}: MLflow at {self.config.tracking_uri} is unreachable ({type(exc).__name__})",
                              transient=True) from None
        os.replace(part, dest)
        return digest.hexdigest()


def safe_name(text: str) -> str:
    """`text` as one file-name segment (model names, versions, artifact paths in the cache)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)[:120] or "_"
