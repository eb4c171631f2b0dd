"""References read from a real MLflow server's model versions: by number and by alias, verified and
recorded; a missing version or artifact is a clear error and the model is left unprofiled."""

from __future__ import annotations

import hashlib
import io
import secrets
from pathlib import Path

import pandas as pd
import pytest

from monitor.core.mlflowapi import MlflowClient
from monitor.runtime import load_reference, reference_provenance
from monitor.runtime.mlflow_reference import MlflowReferenceError, fetch_reference
from monitor.runtime.reference import profile_references
from tests.infra.mlflow_server import MlflowServer
from tests.mlflow_helpers import frame, log_reference, mlflow_config, reference_csv


def name() -> str:
    return f"toy-{secrets.token_hex(4)}"


def test_a_reference_is_read_from_a_model_version_by_number(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    body = reference_csv(tmp_path / "ref")
    model = name()
    log_reference(mlflow_server, model, b"f0,f1\n1,2\n")  # version 1: not the one asked for
    _, version = log_reference(mlflow_server, model, body)
    cfg = mlflow_config(tmp_path, mlflow_server, {"model": model, "version": int(version), "artifact": "reference/train.csv"})
    pd.testing.assert_frame_equal(load_reference(cfg.models[0], cfg), frame(body))


def test_a_reference_follows_an_alias(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    body = reference_csv(tmp_path / "ref")
    model = name()
    _, v1 = log_reference(mlflow_server, model, b"f0,f1\n1,2\n")
    _, v2 = log_reference(mlflow_server, model, body)
    mlflow_server.set_alias(model, "champion", v2)
    cfg = mlflow_config(tmp_path, mlflow_server, {"model": model, "alias": "champion", "artifact": "reference/train.csv"})
    assert fetch_reference(cfg, cfg.models[0]).version == v2
    mlflow_server.set_alias(model, "champion", v1)
    assert fetch_reference(cfg, cfg.models[0]).version == v1


def test_a_parquet_artifact_is_read_as_parquet(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    df = frame(reference_csv(tmp_path / "ref"))
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    model = name()
    _, version = log_reference(mlflow_server, model, buf.getvalue(), artifact="data/reference.parquet")
    cfg = mlflow_config(tmp_path, mlflow_server, {"model": model, "version": int(version), "artifact": "data/reference.parquet"})
    pd.testing.assert_frame_equal(load_reference(cfg.models[0], cfg), df)


def test_which_reference_was_used_is_recorded_with_its_digest(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    body = reference_csv(tmp_path / "ref")
    model = name()
    run_id, version = log_reference(mlflow_server, model, body)
    cfg = mlflow_config(tmp_path, mlflow_server, {"model": model, "version": int(version), "artifact": "reference/train.csv"})
    load_reference(cfg.models[0], cfg)
    prov = reference_provenance(cfg, "toy")
    assert prov is not None
    assert (prov["mlflow_model"], prov["version"], prov["run_id"], prov["artifact"], prov["sha256"]) == (
        model, version, run_id, "reference/train.csv", hashlib.sha256(body).hexdigest())


def test_a_verified_download_is_reused(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    body = reference_csv(tmp_path / "ref")
    model = name()
    _, version = log_reference(mlflow_server, model, body)
    cfg = mlflow_config(tmp_path, mlflow_server, {"model": model, "version": int(version), "artifact": "reference/train.csv"})
    first = Path(fetch_reference(cfg, cfg.models[0]).path)
    first_stat = first.stat().st_mtime_ns
    again = fetch_reference(cfg, cfg.models[0])
    assert (Path(again.path), Path(again.path).stat().st_mtime_ns) == (first, first_stat)


def test_a_tampered_cached_file_is_downloaded_again(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    body = reference_csv(tmp_path / "ref")
    model = name()
    _, version = log_reference(mlflow_server, model, body)
    cfg = mlflow_config(tmp_path, mlflow_server, {"model": model, "version": int(version), "artifact": "reference/train.csv"})
    cached = Path(fetch_reference(cfg, cfg.models[0]).path)
    cached.write_bytes(b"x" * 10)  # a different size: not the artifact MLflow lists
    assert fetch_reference(cfg, cfg.models[0]).sha256 == hashlib.sha256(body).hexdigest()


def test_a_missing_version_is_a_clear_error(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    model = name()
    log_reference(mlflow_server, model, b"f0\n1\n")
    cfg = mlflow_config(tmp_path, mlflow_server, {"model": model, "version": 9, "artifact": "reference/train.csv"})
    with pytest.raises(MlflowReferenceError, match=rf"MLflow model '{model}' version 9: .*RESOURCE_DOES_NOT_EXIST"):
        load_reference(cfg.models[0], cfg)


def test_a_missing_alias_is_a_clear_error(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    model = name()
    log_reference(mlflow_server, model, b"f0\n1\n")
    cfg = mlflow_config(tmp_path, mlflow_server, {"model": model, "alias": "champion", "artifact": "reference/train.csv"})
    with pytest.raises(MlflowReferenceError, match=rf"MLflow model '{model}' alias champion"):
        load_reference(cfg.models[0], cfg)


def test_a_missing_artifact_is_a_clear_error(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    model = name()
    run_id, version = log_reference(mlflow_server, model, b"f0\n1\n")
    cfg = mlflow_config(tmp_path, mlflow_server, {"model": model, "version": int(version), "artifact": "reference/other.csv"})
    with pytest.raises(MlflowReferenceError, match=f"run {run_id} has no artifact 'reference/other.csv'"):
        load_reference(cfg.models[0], cfg)


def test_a_model_whose_reference_cannot_be_read_is_left_unprofiled(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    model = name()
    log_reference(mlflow_server, model, b"f0\n1\n")
    cfg = mlflow_config(tmp_path, mlflow_server, {"model": model, "version": 9, "artifact": "reference/train.csv"})
    profiles, errors = profile_references(cfg, cfg.models)
    assert sorted(profiles) == ["plain"]
    assert errors["toy"].startswith(f"MlflowReferenceError: MLflow model '{model}' version 9")


def test_an_unreachable_server_is_a_clear_error(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    from tests.ports import free_port

    cfg = mlflow_config(tmp_path, mlflow_server, {"model": "toy", "version": 1, "artifact": "reference/train.csv"})
    down = cfg.model_copy(update={"mlflow": cfg.mlflow.model_copy(update={"tracking_uri": f"http://127.0.0.1:{free_port()}"})})  # type: ignore[union-attr]
    with pytest.raises(MlflowReferenceError, match="is unreachable"):
        load_reference(down.models[0], down)


def test_the_provenance_of_a_file_reference_is_none(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    cfg = mlflow_config(tmp_path, mlflow_server, {"model": "toy", "version": 1, "artifact": "reference/train.csv"})
    assert reference_provenance(cfg, "plain") is None


def test_the_client_sends_the_configured_bearer_token(tmp_path: Path, mlflow_server: MlflowServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"model_version": {"name": "m", "version": "1", "run_id": "r"}})

    monkeypatch.setenv("MLFLOW_TOKEN_FOR_TEST", "s3cret")
    cfg = mlflow_config(tmp_path, mlflow_server, {"model": "m", "version": 1, "artifact": "a.csv"},
                        mlflow={"auth": {"token_env": "MLFLOW_TOKEN_FOR_TEST"}})
    assert cfg.mlflow is not None
    MlflowClient(cfg.mlflow, transport=httpx.MockTransport(handler)).model_version("m", 1)
    assert seen == ["Bearer s3cret"]


def test_while_mlflow_is_down_the_last_verified_download_of_the_same_version_is_used(
        tmp_path: Path, mlflow_server: MlflowServer) -> None:
    body = reference_csv(tmp_path / "ref")
    model = name()
    run_id, version = log_reference(mlflow_server, model, body)
    cfg = mlflow_config(tmp_path, mlflow_server, {"model": model, "version": int(version), "artifact": "reference/train.csv"})
    fetch_reference(cfg, cfg.models[0])
    mlflow_server.stop()
    try:
        prov = fetch_reference(cfg, cfg.models[0])  # a monitor restarted during an MLflow outage
    finally:
        mlflow_server.start()
    assert (prov.run_id, prov.sha256) == (run_id, hashlib.sha256(body).hexdigest())


def test_while_mlflow_is_down_a_tampered_cache_is_not_used(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    body = reference_csv(tmp_path / "ref")
    model = name()
    _, version = log_reference(mlflow_server, model, body)
    cfg = mlflow_config(tmp_path, mlflow_server, {"model": model, "version": int(version), "artifact": "reference/train.csv"})
    cached = Path(fetch_reference(cfg, cfg.models[0]).path)
    cached.write_bytes(body.replace(b"red", b"RED"))  # same size, other content
    mlflow_server.stop()
    try:
        with pytest.raises(MlflowReferenceError, match="is unreachable"):
            fetch_reference(cfg, cfg.models[0])
    finally:
        mlflow_server.start()


def test_a_cached_version_does_not_stand_in_for_another(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    body = reference_csv(tmp_path / "ref")
    model = name()
    _, version = log_reference(mlflow_server, model, body)
    cfg = mlflow_config(tmp_path, mlflow_server, {"model": model, "version": int(version), "artifact": "reference/train.csv"})
    fetch_reference(cfg, cfg.models[0])
    other = mlflow_config(tmp_path, mlflow_server, {"model": model, "version": int(version) + 1, "artifact": "reference/train.csv"})
    mlflow_server.stop()
    try:
        with pytest.raises(MlflowReferenceError, match="is unreachable"):
            fetch_reference(other, other.models[0])
    finally:
        mlflow_server.start()
