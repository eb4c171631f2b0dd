"""A webhook receiver that does what docs/retraining.md asks of one, on 127.0.0.1.

`POST /hooks/retrain` checks the `Driftwatch-Signature` (HMAC-SHA256 over "<t>." + body, a
timestamp at most 5 minutes old) with `retrain.signed_webhook.verify` (401 otherwise), answers 409
to an `Idempotency-Key` it has seen and 202 to a new one, keeping the delivery. `GET /runs/{name}`
answers `{"state", "detail"}` for a delivered run (404 otherwise). Test controls: `set_state()`,
`deliveries`, plus the shared faults (fake_http.py).
"""

from __future__ import annotations

import json
import time
from typing import Any

from fake_http import FakeHttpServer

from retrain.signed_webhook import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, verify


class HookReceiver(FakeHttpServer):
    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret.encode()
        self.deliveries: list[dict[str, Any]] = []
        self.signatures: list[str] = []
        self._states: dict[str, tuple[str, str | None]] = {}
        self._keys: set[str] = set()

    def set_state(self, name: str, state: str, detail: str | None = None) -> None:
        with self.lock:
            self._states[name] = (state, detail)

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: bytes) -> tuple[int, Any]:
        if method == "POST" and path == "/hooks/retrain":
            signature = headers.get(SIGNATURE_HEADER.lower(), "")
            if not verify(self.secret, body, signature, time.time()):
                return 401, {"error": "bad or stale signature"}
            key = headers.get(IDEMPOTENCY_HEADER.lower())
            if not key:
                return 400, {"error": "Idempotency-Key is required"}
            with self.lock:
                self.signatures.append(signature)
                if key in self._keys:
                    return 409, {"error": "already received", "idempotency_key": key}
                self._keys.add(key)
                doc = json.loads(body)
                self.deliveries.append(doc)
                self._states[doc["name"]] = ("pending", None)
            return 202, {"accepted": doc["name"]}
        if method == "GET" and path.startswith("/runs/"):
            with self.lock:
                found = self._states.get(path.removeprefix("/runs/"))
            if found is None:
                return 404, {"error": "no such run"}
            return 200, {"state": found[0], "detail": found[1]}
        return 404, {"error": f"{method} {path}"}
