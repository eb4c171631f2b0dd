"""The `mlflow` section and MLflow references: each mistake named at its field."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.core.config import parse_config
from tests.monitor.test_config import errors_of, minimal

MLFLOW = {"tracking_uri": "http://mlflow.example:5000"}
REF = {"model": "churn", "version": 3, "artifact": "reference/train.csv"}


def with_mlflow(reference: dict, mlflow: dict | None = MLFLOW) -> dict:
    data = minimal(reference=reference)
    if mlflow is not None:
        data["mlflow"] = mlflow
    return data


@pytest.mark.parametrize(
    ("data", "path", "fragment"),
    [
        (with_mlflow({"path": "ref.csv", "mlflow": REF}), "models[0:m].reference", "exactly one of `path`"),
        (with_mlflow({}), "models[0:m].reference", "exactly one of `path`"),
        (with_mlflow({"mlflow": {**REF, "alias": "champion"}}), "models[0:m].reference.mlflow", "exactly one of `version` and `alias`"),
        (with_mlflow({"mlflow": {"model": "churn", "artifact": "a.csv"}}), "models[0:m].reference.mlflow", "exactly one of `version`"),
        (with_mlflow({"mlflow": {**REF, "version": 0}}), "models[0:m].reference.mlflow.version", "greater than or equal to 1"),
        (with_mlflow({"mlflow": {**REF, "artifact": "../etc/passwd"}}), "models[0:m].reference.mlflow", "relative path inside the run"),
        (with_mlflow({"mlflow": {**REF, "artifact": "/abs.csv"}}), "models[0:m].reference.mlflow", "relative path inside the run"),
        (with_mlflow({"mlflow": {k: v for k, v in REF.items() if k != "artifact"}}), "models[0:m].reference.mlflow.artifact", "Field required"),
        (with_mlflow({"mlflow": REF}, mlflow=None), "(root)", "set the top-level `mlflow` section"),
        (with_mlflow({"mlflow": REF}, mlflow={"tracking_uri": "mlflow:5000"}), "mlflow.tracking_uri", "is not an http(s) URL"),
        (with_mlflow({"mlflow": REF}, mlflow={**MLFLOW, "auth": {"token_env": "A", "token_file": "t"}}), "mlflow.auth", "set one of"),
        (with_mlflow({"mlflow": REF}, mlflow={**MLFLOW, "timeout": "0s"}), "mlflow.timeout", "greater than 0"),
        (with_mlflow({"mlflow": REF}, mlflow={**MLFLOW, "tags": True}), "mlflow.tags", "unknown key"),
    ],
)
def test_mlflow_mistakes_are_named(data: dict, path: str, fragment: str) -> None:
    errs = errors_of(data)
    assert path in errs, errs
    assert fragment in errs[path]


def test_an_mlflow_reference_names_its_source_as_a_model_uri() -> None:
    cfg = parse_config(with_mlflow({"mlflow": REF}))
    assert cfg.models[0].reference.source == "models:/churn/3#reference/train.csv"


def test_an_alias_reference_names_its_source_with_the_alias() -> None:
    cfg = parse_config(with_mlflow({"mlflow": {"model": "churn", "alias": "champion", "artifact": "r.parquet"}}))
    assert cfg.models[0].reference.source == "models:/churn@champion#r.parquet"


def test_a_token_file_resolves_against_the_config_folder(tmp_path: Path) -> None:
    cfg = parse_config(with_mlflow({"mlflow": REF}, mlflow={**MLFLOW, "auth": {"token_file": "secrets/mlflow"}}),
                       base_dir=tmp_path)
    assert cfg.mlflow is not None and cfg.mlflow.auth.token_file == tmp_path / "secrets" / "mlflow"
