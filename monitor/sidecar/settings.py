"""Validated sidecar settings: everything the `driftwatch sidecar` flags configure.

Kept pure (no sockets, no files) so the CLI can report every bad flag before anything starts.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from monitor.core.names import MODEL_NAME_RE
from monitor.core.units import parse_duration, parse_size

__all__ = ["DEFAULT_CAPTURE_PATHS", "DEFAULT_HEADER_ALLOW", "SettingsError", "SidecarSettings", "Upstream", "build_settings"]

DEFAULT_CAPTURE_PATHS = (
    r"^/v1/models/[^/]+:predict$",  # KServe v1
    r"^/v2/models/[^/]+(/versions/[^/]+)?/infer$",  # Open Inference Protocol v2
)
DEFAULT_HEADER_ALLOW = ("x-request-id", "ce-id", "traceparent")
_HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


class SettingsError(ValueError):
    """A flag value the sidecar cannot run with; the message names the flag."""


@dataclass(frozen=True, slots=True)
class Upstream:
    host: str
    port: int

    @property
    def authority(self) -> bytes:
        return f"{self.host}:{self.port}".encode("ascii")


@dataclass(frozen=True)
class SidecarSettings:
    upstream: Upstream
    monitor_url: str
    model: str
    host: str = "0.0.0.0"
    port: int = 8000
    token: str | None = None
    token_file: Path | None = None
    """A mounted Secret holding the token, re-read when it changes (rotation without a restart)."""
    spool_dir: Path = Path("driftwatch-spool")
    spool_max_bytes: int = 256 * 1024**2
    spool_segment_bytes: int = 8 * 1024**2
    queue_max: int = 10_000
    queue_max_bytes: int = 64 * 1024**2
    batch_max: int = 500
    batch_max_bytes: int = 4 * 1024**2
    linger: float = 0.5
    sample_ratio: float = 1.0
    capture_paths: tuple[re.Pattern[str], ...] = field(default_factory=tuple)
    max_capture_bytes: int = 64 * 1024
    header_allow: frozenset[str] = frozenset(DEFAULT_HEADER_ALLOW)
    upstream_timeout: float = 120.0
    connect_timeout: float = 5.0
    upstream_keepalive: float = 4.0
    """Idle pooled upstream connections are closed after this, before the server's own timeout
    (uvicorn closes idle connections after 5 s) so a request rarely lands on a closing socket."""
    client_keepalive: float = 75.0
    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    grace_period: float = 25.0
    retry_max_backoff: float = 10.0
    fsync_interval: float = 1.0


def _parse_upstream(url: str) -> Upstream:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise SettingsError(f"--upstream {url!r}: expected http://HOST:PORT (the model server in the same pod; plain HTTP)")
    if parts.path not in ("", "/") or parts.query:
        raise SettingsError(f"--upstream {url!r}: must not have a path or query; paths are forwarded as received")
    try:
        port = parts.port or 80
    except ValueError as exc:
        raise SettingsError(f"--upstream {url!r}: {exc}") from None
    return Upstream(parts.hostname, port)


def _parse_monitor(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"--monitor {url!r}: expected http(s)://HOST[:PORT]")
    return url.rstrip("/")


def build_settings(
    *,
    upstream: str,
    monitor: str,
    model: str,
    host: str = "0.0.0.0",
    port: int = 8000,
    token_env: str | None = None,
    token_file: Path | None = None,
    spool_dir: Path | None = None,
    spool_max_bytes: str = "256MiB",
    queue_max: int = 10_000,
    batch_max: int = 500,
    linger: str = "500ms",
    sample_ratio: float = 1.0,
    capture_paths: list[str] | None = None,
    max_capture_bytes: str = "64KiB",
    header_allow: list[str] | None = None,
    upstream_timeout: str = "120s",
    grace_period: str = "25s",
    environ: dict[str, str] | None = None,
) -> SidecarSettings:
    """Validate flag values; raises SettingsError naming the first bad flag."""
    env = os.environ if environ is None else environ
    if not MODEL_NAME_RE.match(model):
        raise SettingsError(f"--model {model!r}: lowercase letters, digits and '-' (a DNS label, max 63), as in the config")
    if not 0 <= port <= 65535:
        raise SettingsError(f"--port {port}: must be 0..65535")
    token = None
    if token_env:
        token = env.get(token_env)
        if not token:
            raise SettingsError(f"--token-env {token_env}: the environment variable is not set or empty")
    if token_env and token_file:
        raise SettingsError("--token-file: give either --token-env or --token-file, not both")
    if not 0.0 <= sample_ratio <= 1.0:
        raise SettingsError(f"--sample-ratio {sample_ratio}: must be between 0 and 1")
    for flag, count in (("--queue-max", queue_max), ("--batch-max", batch_max)):
        if count < 1:
            raise SettingsError(f"{flag} {count}: must be >= 1")
    sizes: dict[str, int] = {}
    for flag, text in (("--spool-max-bytes", spool_max_bytes), ("--max-capture-bytes", max_capture_bytes)):
        try:
            sizes[flag] = parse_size(text)
        except ValueError as exc:
            raise SettingsError(f"{flag}: {exc}") from None
    durations: dict[str, float] = {}
    for flag, text in (("--linger", linger), ("--upstream-timeout", upstream_timeout), ("--grace-period", grace_period)):
        try:
            durations[flag] = parse_duration(text)
        except ValueError as exc:
            raise SettingsError(f"{flag}: {exc}") from None
    if durations["--upstream-timeout"] <= 0:
        raise SettingsError("--upstream-timeout: must be > 0")
    patterns = []
    for raw in capture_paths or DEFAULT_CAPTURE_PATHS:
        try:
            patterns.append(re.compile(raw))
        except re.error as exc:
            raise SettingsError(f"--capture-path {raw!r}: invalid regular expression: {exc}") from None
    allow = [h.strip().lower() for h in (header_allow if header_allow is not None else DEFAULT_HEADER_ALLOW)]
    for name in allow:
        if not _HEADER_NAME_RE.match(name):
            raise SettingsError(f"--header-allow {name!r}: not a valid header name")
    spool_max = sizes["--spool-max-bytes"]
    return SidecarSettings(
        upstream=_parse_upstream(upstream),
        monitor_url=_parse_monitor(monitor),
        model=model,
        host=host,
        port=port,
        token=token,
        token_file=token_file,
        spool_dir=spool_dir or Path(tempfile.gettempdir()) / f"driftwatch-spool-{model}",
        spool_max_bytes=spool_max,
        spool_segment_bytes=max(64 * 1024, min(8 * 1024**2, spool_max // 4)),
        queue_max=queue_max,
        batch_max=batch_max,
        linger=durations["--linger"],
        sample_ratio=sample_ratio,
        capture_paths=tuple(patterns),
        max_capture_bytes=sizes["--max-capture-bytes"],
        header_allow=frozenset(allow),
        upstream_timeout=durations["--upstream-timeout"],
        grace_period=durations["--grace-period"],
    )
