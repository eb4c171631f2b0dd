"""Outbound credentials (launchers, MLflow): read at each use, a precise error when configured but unusable."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from monitor.core.config import HttpAuth
from monitor.core.secrets import SecretError, auth_headers, read_secret


def test_a_rotated_token_file_is_read_again(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("one\n")
    first = auth_headers(HttpAuth(token_file=token), "kubeflow")
    token.write_text("two\n")
    assert (first, auth_headers(HttpAuth(token_file=token), "kubeflow")) == (
        {"Authorization": "Bearer one"}, {"Authorization": "Bearer two"})


def test_basic_auth_sends_user_and_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DW_PW", "s3cret")
    header = auth_headers(HttpAuth(username="ml", password_env="DW_PW"), "airflow")["Authorization"]
    assert base64.b64decode(header.removeprefix("Basic ")) == b"ml:s3cret"


def test_an_unset_variable_names_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DW_NOT_SET", raising=False)
    with pytest.raises(SecretError, match="webhook secret: environment variable DW_NOT_SET is unset or empty"):
        read_secret(env="DW_NOT_SET", what="webhook secret")


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("  \n")
    with pytest.raises(SecretError, match="is empty"):
        read_secret(file=tmp_path / "token", what="MLflow credential token")
