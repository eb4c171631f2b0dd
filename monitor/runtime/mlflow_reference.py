"""A reference read from an MLflow model version: resolved, downloaded into a cache, verified.

The model version (by number or alias) names its run; the run's artifact is streamed into
`<store's folder>/mlflow-references/<model>/` and checked against the size MLflow lists for it, and its
sha256 is recorded. From there it is a file reference like any other (`load_reference`). What was
used is written beside it (`current.json`) and logged, so `GET /v1/models/{model}/drift` and the
retraining run's `DRIFTWATCH_REFERENCE` can say which reference judged the traffic.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from monitor.core.config import Config, ModelConfig
from monitor.core.mlflowapi import MlflowClient, MlflowError, safe_name

__all__ = ["MlflowReferenceError", "ReferenceProvenance", "fetch_reference", "reference_provenance"]

log = logging.getLogger("driftwatch.monitor")


class MlflowReferenceError(ValueError):
    """The reference could not be read from MLflow: no such version or alias, no such artifact, the
    server unreachable, or a download that does not match what MLflow lists. `transient`: MLflow did
    not answer (or answered 429/5xx), rather than said no."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class ReferenceProvenance:
    """Which reference a model was profiled against."""

    mlflow_model: str
    version: str
    alias: str | None
    run_id: str
    artifact: str
    sha256: str
    size: int
    path: str
    fetched_at: float


def cache_dir(config: Config) -> Path:
    return config.server.store.path.parent / "mlflow-references"


def _model_dir(config: Config, key: str) -> Path:
    return cache_dir(config) / safe_name(key.replace("/", "__"))


def fetch_reference(config: Config, model: ModelConfig, *, client: MlflowClient | None = None) -> ReferenceProvenance:
    """Resolve and download `model`'s MLflow reference (reusing a verified earlier download of the same
    run's artifact); `MlflowReferenceError` with what is wrong."""
    ref = model.reference.mlflow
    if ref is None or config.mlflow is None:
        raise MlflowReferenceError(f"model {model.key} has no MLflow reference (or the config no `mlflow` section)")
    own = client is None
    mlflow = client or MlflowClient(config.mlflow)
    try:
        return _fetch(config, model, mlflow)
    except MlflowReferenceError as exc:
        if not exc.transient:
            raise
        cached = _last_good(config, model)
        if cached is None:
            raise
        log.warning("reference_from_mlflow_cache model=%s version=%s run_id=%s sha256=%s reason=%s",
                    model.key, cached.version, cached.run_id, cached.sha256, exc)
        return cached
    finally:
        if own:
            mlflow.close()


def _fetch(config: Config, model: ModelConfig, mlflow: MlflowClient) -> ReferenceProvenance:
    ref = model.reference.mlflow
    assert ref is not None
    try:
        mv = (mlflow.model_version(ref.model, ref.version) if ref.version is not None
              else mlflow.model_version_by_alias(ref.model, str(ref.alias)))
    except MlflowError as exc:
        raise MlflowReferenceError(f"MLflow model {ref.model!r} {ref.selector}: {exc}", transient=exc.transient) from None
    if not mv.run_id:
        raise MlflowReferenceError(f"MLflow model {ref.model!r} version {mv.version} was not registered from a run: "
                                   "it has no run artifacts to read the reference from")
    try:
        size = mlflow.artifact_size(mv.run_id, ref.artifact)
    except MlflowError as exc:
        raise MlflowReferenceError(f"MLflow model {ref.model!r} version {mv.version}: {exc}",
                                   transient=exc.transient) from None
    if size is None:
        raise MlflowReferenceError(f"MLflow model {ref.model!r} version {mv.version}: run {mv.run_id} has no "
                                   f"artifact {ref.artifact!r}")
    dest = _model_dir(config, model.key) / safe_name(mv.run_id) / safe_name(ref.artifact)
    sha = _verified(dest, size)
    if sha is None:
        try:
            sha = mlflow.download_artifact(mv.run_id, ref.artifact, dest)
        except MlflowError as exc:
            raise MlflowReferenceError(f"MLflow model {ref.model!r} version {mv.version}: {exc}",
                                       transient=exc.transient) from None
        got = dest.stat().st_size
        if size >= 0 and got != size:
            dest.unlink(missing_ok=True)
            raise MlflowReferenceError(f"artifact {ref.artifact!r} of run {mv.run_id}: downloaded {got} bytes, "
                                       f"MLflow lists {size}")
    prov = ReferenceProvenance(mlflow_model=ref.model, version=mv.version, alias=ref.alias, run_id=mv.run_id,
                               artifact=ref.artifact, sha256=sha, size=dest.stat().st_size, path=str(dest),
                               fetched_at=time.time())
    record = _model_dir(config, model.key) / "current.json"
    record.write_text(json.dumps(asdict(prov), sort_keys=True), encoding="utf-8")
    log.info("reference_from_mlflow model=%s mlflow_model=%s version=%s run_id=%s artifact=%s sha256=%s",
             model.key, ref.model, mv.version, mv.run_id, ref.artifact, sha)
    return prov


def _verified(dest: Path, size: int) -> str | None:
    """The sha256 of an earlier download at `dest` when its size is the listed one (run artifacts are
    immutable once logged); None when it must be fetched."""
    try:
        if size < 0 or dest.stat().st_size != size:
            return None
    except OSError:
        return None
    digest = hashlib.sha256()
    with dest.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _last_good(config: Config, model: ModelConfig) -> ReferenceProvenance | None:
    """The reference this model was last profiled against, when MLflow cannot be asked: only for the
    same registered model and version (or alias), and only if the cached file still has its sha256."""
    ref = model.reference.mlflow
    try:
        data = json.loads((_model_dir(config, model.key) / "current.json").read_text(encoding="utf-8"))
        prov = ReferenceProvenance(**data)
    except (OSError, ValueError, TypeError):
        return None
    same = ref is not None and prov.mlflow_model == ref.model and prov.artifact == ref.artifact and (
        prov.alias == ref.alias if ref.alias is not None else prov.version == str(ref.version))
    if not same or _verified(Path(prov.path), prov.size) != prov.sha256:
        return None
    return prov


def reference_provenance(config: Config, key: str) -> dict[str, Any] | None:
    """What `fetch_reference` last used for the model `key` (None before, or for a file reference)."""
    try:
        if config.model(key).reference.mlflow is None:
            return None
        data: dict[str, Any] = json.loads((_model_dir(config, key) / "current.json").read_text(encoding="utf-8"))
        return data
    except (KeyError, OSError, ValueError):
        return None
