"""What the commands that talk to a running monitor share: the token they send and one request,
retried while the monitor answers 503 (its Retry-After) or cannot be reached."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from monitor.app.cli.base import fail

__all__ = ["RETRIES", "auth_headers", "request", "token"]

RETRIES = 5


def token(env: str | None, file: Path | None) -> str | None:
    """The token from `file` (its first line) or the environment variable `env`; None: send none."""
    if file is not None:
        try:
            return file.read_text().strip().splitlines()[0].strip()
        except (OSError, IndexError):
            fail(f"cannot read a token from {file}")
    if env is not None:
        value = os.environ.get(env, "").strip()
        if not value:
            fail(f"environment variable {env} is unset or empty")
        return value
    return None


def auth_headers(env: str | None, file: Path | None) -> dict[str, str]:
    value = token(env, file)
    return {"authorization": f"Bearer {value}"} if value else {}


def request(client: Any, method: str, path: str, *, what: str, ok: tuple[int, ...] = (200,), **kwargs: Any) -> Any:
    """One request; retried while the monitor answers 503 or cannot be reached. Any other answer
    than `ok` ends the command (exit 1) with the monitor's error, `what` naming what was refused."""
    import httpx

    for attempt in range(RETRIES):
        try:
            resp = client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            if attempt == RETRIES - 1:
                fail(f"cannot reach the monitor: {exc}", code=1)
            time.sleep(2.0**attempt)
            continue
        if resp.status_code == 503 and attempt < RETRIES - 1:
            time.sleep(float(resp.headers.get("retry-after", "2")))
            continue
        if resp.status_code not in ok:
            try:
                detail = resp.json()
            except ValueError:
                detail = resp.text[:500]
            fail(f"the monitor refused {what} ({resp.status_code}): {detail}", code=1)
        return resp
    fail("the monitor stayed unavailable", code=1)
