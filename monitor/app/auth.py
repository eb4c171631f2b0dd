"""Bearer tokens for every route but the probes: where they come from and who may do what.

Tokens come from files (a mounted Kubernetes Secret: one or more tokens per file, one a line, blank
lines and `#` comments ignored) and from `server.auth_token_env` (one more write token). A file is
re-read when its inode, size or mtime changes, checked at most once a second when a request comes
in, so a rotated Secret takes effect without a restart; a file that cannot be read (or holds no
token) keeps its last good tokens and is logged, by path and count, never by value.

`AuthMiddleware` guards the whole app (default deny: a route added later is guarded too):
`/healthz` and `/readyz` are open, `/metrics` is open unless `protect_metrics`; `GET`/`HEAD`/
`OPTIONS` need a read or write token, every other method a write token. The token comes as
`Authorization: Bearer <token>` only (never from the query string); with `cloudevents_path_token`,
`POST /v1/cloudevents/<token>` carries it in the path instead, for KServe's payload logger. Every
candidate is compared with `hmac.compare_digest` against every accepted token (their SHA-256
digests, so not even a token's length shows in the timing). 401 (with
`WWW-Authenticate: Bearer`) for a missing or unknown token, 403 for a read token on a write.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from monitor.core.config import ServerConfig
from monitor.core.errors import error_response

__all__ = ["AuthConfigError", "AuthMiddleware", "TokenFile", "Tokens", "tokens_from_config"]

log = logging.getLogger("driftwatch.auth")

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CLOUDEVENTS_PATH_PREFIX = "/v1/cloudevents/"
RELOAD_INTERVAL_SECONDS = 1.0
MAX_TOKEN_FILE_BYTES = 64 * 1024


class AuthConfigError(ValueError):
    """Auth is configured but cannot be enforced (fail closed): worded for the operator."""


def parse_tokens(text: str) -> tuple[bytes, ...]:
    """The tokens of a file: one a line, surrounding blanks stripped, blank lines and `#` comments skipped."""
    out: list[bytes] = []
    for line in text.splitlines():
        token = line.strip()
        if token and not token.startswith("#") and token.encode() not in out:
            out.append(token.encode())
    return tuple(out)


class TokenFile:
    """One token file and its last good tokens."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tokens: tuple[bytes, ...] = ()
        self._signature: tuple[int, int, int] | None = None
        self.error: str | None = None

    def refresh(self) -> bool:
        """Re-read the file if it changed; True when its tokens changed. Never raises for I/O."""
        try:
            st = os.stat(self.path)
            signature = (st.st_ino, st.st_size, st.st_mtime_ns)
            if signature == self._signature:
                return False
            if st.st_size > MAX_TOKEN_FILE_BYTES:
                raise ValueError(f"larger than {MAX_TOKEN_FILE_BYTES} bytes")
            with open(self.path, encoding="utf-8") as fh:
                text = fh.read(MAX_TOKEN_FILE_BYTES + 1)
            st2 = os.stat(self.path)
            if (st2.st_ino, st2.st_size, st2.st_mtime_ns) != signature:
                return False  # changed while being read: read it again next time
            tokens = parse_tokens(text)
            if not tokens:
                raise ValueError("holds no token")
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            if why != self.error:
                log.warning("auth_token_file_unusable path=%s reason=%r kept_tokens=%d", self.path, why, len(self.tokens))
            self.error = why
            return False
        changed = tokens != self.tokens
        self._signature, self.tokens, self.error = signature, tokens, None
        if changed:
            log.info("auth_token_file_loaded path=%s tokens=%d", self.path, len(tokens))
        return changed


class Tokens:
    """The accepted write and read tokens, reloaded from their files at most once per `interval`."""

    def __init__(
        self,
        write_files: Sequence[Path] = (),
        read_files: Sequence[Path] = (),
        static_write: Sequence[str] = (),
        *,
        interval: float = RELOAD_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.write_files = [TokenFile(Path(p)) for p in write_files]
        self.read_files = [TokenFile(Path(p)) for p in read_files]
        self.static_write = tuple(t.encode() for t in static_write if t)
        self.interval = interval
        self._clock = clock
        self._checked = float("-inf")
        self.write: tuple[bytes, ...] = ()
        self.read: tuple[bytes, ...] = ()
        self.reload(force=True)

    def reload(self, *, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._checked < self.interval:
            return
        self._checked = now
        for f in (*self.write_files, *self.read_files):
            f.refresh()
        self.write = tuple(_digest(t) for t in (*self.static_write, *(t for f in self.write_files for t in f.tokens)))
        self.read = tuple(_digest(t) for f in self.read_files for t in f.tokens)

    def check_startup(self) -> None:
        """Fail closed: every named file readable and at least one write token, or `AuthConfigError`."""
        broken = [f"{f.path} ({f.error})" for f in (*self.write_files, *self.read_files) if f.error]
        if broken:
            raise AuthConfigError(f"auth is configured but token files cannot be used: {', '.join(broken)}")
        if not self.write:
            raise AuthConfigError("auth is configured but no write token could be loaded "
                                  "(server.auth_token_env names an unset variable and there are no server.auth.token_files)")

    def scope_of(self, given: bytes) -> str | None:
        """"write", "read" or None; compares against every token (no early exit)."""
        self.reload()
        digest = _digest(given)
        is_write = False
        for t in self.write:
            is_write |= hmac.compare_digest(digest, t)
        is_read = False
        for t in self.read:
            is_read |= hmac.compare_digest(digest, t)
        return "write" if is_write else "read" if is_read else None


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


def tokens_from_config(server: ServerConfig, environ: Any = None) -> Tokens | None:
    """The tokens `server` configures (None: auth off); `AuthConfigError` when none can be loaded."""
    env = os.environ if environ is None else environ
    auth = server.auth
    if not (server.auth_token_env or auth.token_files or auth.read_token_files):
        if auth.protect_metrics or auth.cloudevents_path_token:
            raise AuthConfigError("server.auth.protect_metrics / cloudevents_path_token need tokens: "
                                  "set server.auth.token_files or server.auth_token_env")
        return None
    static = [env.get(server.auth_token_env, "").strip()] if server.auth_token_env else []
    if server.auth_token_env and not static[0]:
        log.warning("auth_token_env_unset env=%s", server.auth_token_env)
    tokens = Tokens(auth.token_files, auth.read_token_files, static)
    tokens.check_startup()
    log.info("auth_enabled write_tokens=%d read_tokens=%d protect_metrics=%s cloudevents_path_token=%s",
             len(tokens.write), len(tokens.read), auth.protect_metrics, auth.cloudevents_path_token)
    return tokens


def _bearer(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    values = [v for k, v in headers if k.lower() == b"authorization"]
    if len(values) != 1:
        return None  # none, or several (ambiguous): refused
    scheme, _, token = values[0].strip().partition(b" ")
    token = token.strip()
    if scheme.lower() != b"bearer" or not token:
        return None
    return token


class AuthMiddleware:
    """ASGI middleware enforcing `tokens` on every HTTP request (see the module's docstring)."""

    def __init__(self, app: Any, *, tokens: Tokens, protect_metrics: bool = False, cloudevents_path_token: bool = False) -> None:
        self.app = app
        self.tokens = tokens
        self.protect_metrics = protect_metrics
        self.cloudevents_path_token = cloudevents_path_token

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":  # none are served; never let one through unauthenticated
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in OPEN_PATHS or (path == "/metrics" and not self.protect_metrics):
            await self.app(scope, receive, send)
            return
        need = "read" if scope["method"] in READ_METHODS else "write"
        if self.cloudevents_path_token and scope["method"] == "POST" and path.startswith(CLOUDEVENTS_PATH_PREFIX):
            given: bytes | None = path[len(CLOUDEVENTS_PATH_PREFIX):].encode()
        else:
            given = _bearer(scope.get("headers", []))
        scope_of = self.tokens.scope_of(given) if given else None
        if scope_of is None:
            response = error_response(401, "unauthorized", "missing or invalid bearer token (send Authorization: Bearer <token>)",
                                      {"WWW-Authenticate": 'Bearer realm="driftwatch"'})
        elif need == "write" and scope_of != "write":
            response = error_response(403, "forbidden", "this token may only read",
                                      {"WWW-Authenticate": 'Bearer realm="driftwatch", error="insufficient_scope"'})
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)
