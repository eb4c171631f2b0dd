"""A generic launcher: a JSON POST signed with HMAC-SHA256, for any system without its own launcher.

The scheme (docs/retraining.md, "The webhook launcher"):

- `Driftwatch-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`: the
  timestamp is signed with the body, so a receiver that rejects stamps older than a few minutes
  stops replays; each retry is signed afresh (a new `t`), the body is byte-identical;
- `Idempotency-Key: <trigger fingerprint>`: the same on every attempt and after a restart, so the
  receiver can make "launch once per trigger" hold on its side; 2xx is launched, 409 is "already
  launched" (the receiver saw the key before);
- 5xx, 408, 429 and connection errors are retried with capped jittered backoff, other 4xx refused.

Completion is followed only with `status_url` (`{name}` replaced by the run name), which answers
`{"state": "pending"|"running"|"succeeded"|"failed", "detail": ...}`; without it the run is closed
as succeeded once delivered, with a detail saying completion is not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from collections.abc import Callable
from typing import Any

import httpx

from monitor.core.config import WebhookLauncher as WebhookConfig
from retrain.launcher import (
    DEFAULT_RETRY,
    NOT_FOUND,
    Created,
    HttpApi,
    HttpStatusError,
    LaunchError,
    Retry,
    RunStatus,
    auth_headers,
    http_describe,
    parameters,
    read_secret,
)
from retrain.run import Run

SIGNATURE_HEADER = "Driftwatch-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
STATES = {"pending": None, "running": None, "succeeded": "succeeded", "failed": "failed"}


def payload(run: Run) -> bytes:
    """The body: the run's identity, its DRIFTWATCH_* parameters and the trigger (canonical JSON)."""
    doc = {"name": run.name, "model": run.model_name, "namespace": run.model_namespace or None,
           "fingerprint": run.fingerprint, "parameters": parameters(run), "trigger": run.trigger.to_json()}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The signature header's value for `body` sent at `timestamp`."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: bytes, body: bytes, header: str, now: float, tolerance: float = 300.0) -> bool:
    """What a receiver checks (the test receiver uses it): a valid MAC on a recent timestamp."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), header)


class WebhookLauncher:
    kind = "webhook"

    def __init__(self, *, retry: Retry = DEFAULT_RETRY, rng: random.Random | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.retry = retry
        self._clock = clock
        self._http = HttpApi(retry=retry, rng=rng, sleep=sleep, transport=transport)

    def close(self) -> None:
        self._http.close()

    def follows(self, cfg: WebhookConfig) -> bool:
        return cfg.status_url is not None

    def launch(self, run: Run, cfg: WebhookConfig) -> Created:
        secret = read_secret(env=cfg.secret_env, file=cfg.secret_file, what="webhook secret")
        assert secret is not None  # the config requires one of the two
        body = payload(run)

        def headers() -> dict[str, str]:
            return {"Content-Type": "application/json", IDEMPOTENCY_HEADER: run.fingerprint,
                    SIGNATURE_HEADER: sign(secret.encode(), body, int(self._clock())),
                    **auth_headers(cfg.auth, "webhook")}

        try:
            self._http.request(f"webhook {run.name}", "POST", cfg.url, content=body, headers=headers)
            return "created"
        except HttpStatusError as exc:
            if exc.status == 409:
                return "exists"
            raise LaunchError(f"webhook {cfg.url}: {http_describe(exc)}", transient=False) from exc

    def status(self, run: Run, cfg: WebhookConfig) -> RunStatus:
        if cfg.status_url is None:
            raise LaunchError("the webhook launcher has no status_url: completion is not followed", transient=False)
        url = cfg.status_url.replace("{name}", run.name)
        try:
            resp = self._http.request(f"webhook status {run.name}", "GET", url,
                                      headers=lambda: auth_headers(cfg.auth, "webhook"))
        except HttpStatusError as exc:
            if exc.status == 404:
                return NOT_FOUND
            raise LaunchError(f"webhook status {url}: {http_describe(exc)}", transient=True) from exc
        try:
            data: Any = resp.json()
            state = str(data["state"])
        except (ValueError, KeyError, TypeError) as exc:
            raise LaunchError(f"webhook status {url}: expected JSON with a `state`", transient=True) from exc
        if state not in STATES:
            raise LaunchError(f"webhook status {url}: unknown state {state!r} (expected one of "
                              f"{', '.join(STATES)})", transient=True)
        outcome = STATES[state]
        detail = data.get("detail") if isinstance(data.get("detail"), str) else None
        return RunStatus(found=True, outcome=outcome, detail=detail if outcome == "failed" else None)
