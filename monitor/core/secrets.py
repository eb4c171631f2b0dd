"""Credentials for outbound HTTP (pipeline launchers, MLflow): one reading of `HttpAuth`, fresh at each use
so a rotated Secret is picked up without a restart. Standard library only (the core layer)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from monitor.core.config import HttpAuth

__all__ = ["SecretError", "auth_headers", "read_secret"]


class SecretError(ValueError):
    """A configured credential that cannot be read (unset variable, unreadable or empty file): never transient."""


def read_secret(*, env: str | None = None, file: Path | None = None, what: str) -> str | None:
    """The secret in environment variable `env` or in `file` (stripped); None when neither is configured."""
    if env:
        value = os.environ.get(env, "").strip()
        if not value:
            raise SecretError(f"{what}: environment variable {env} is unset or empty")
        return value
    if file is not None:
        try:
            value = file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretError(f"{what}: cannot read {file}: {exc.strerror or exc}") from None
        if not value:
            raise SecretError(f"{what}: {file} is empty")
        return value
    return None


def auth_headers(auth: HttpAuth, what: str) -> dict[str, str]:
    """The Authorization header for `auth`: bearer, else basic, else none."""
    token = read_secret(env=auth.token_env, file=auth.token_file, what=f"{what} token")
    if token is not None:
        return {"Authorization": f"Bearer {token}"}
    if auth.username is not None:
        password = read_secret(env=auth.password_env, file=auth.password_file, what=f"{what} password") or ""
        return {"Authorization": "Basic " + base64.b64encode(f"{auth.username}:{password}".encode()).decode("ascii")}
    return {}
