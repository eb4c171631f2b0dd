"""Validated sidecar settings: everything the `driftwatch sidecar` flags configure.

Kept pure (no sockets, no files) so the CLI can report every bad flag before anything starts.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ValidationError

from monitor.core.config import KafkaSecurity
from monitor.core.names import DNS1123_LABEL_RE, MODEL_NAME_RE, InvalidVersion, check_version
from monitor.core.units import parse_duration, parse_size

__all__ = [
    "DEFAULT_CAPTURE_PATHS", "DEFAULT_HEADER_ALLOW", "DEFAULT_KAFKA_TOPIC", "KafkaSink", "SettingsError", "SidecarSettings",
    "Upstream", "build_settings",
]

DEFAULT_KAFKA_TOPIC = "driftwatch-events"
_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")  # as `fleet.kafka.topic` in monitor/core/config.py
_BOOTSTRAP_RE = re.compile(r"^[^\s,:]+:\d{1,5}$")

DEFAULT_CAPTURE_PATHS = (
    r"^/v1/models/[^/]+:predict$",  # KServe v1
    r"^/v2/models/[^/]+(/versions/[^/]+)?/infer$",  # Open Inference Protocol v2
    r"(^|/)v1/(chat/completions|completions|embeddings)$",  # OpenAI-compatible (vLLM, KServe's /openai/v1/..., TGI)
)
DEFAULT_HEADER_ALLOW = ("x-request-id", "ce-id", "traceparent")
DEFAULT_VERSION_HEADER = b"x-model-version"
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
class KafkaSink:
    """Fleet mode: captured events are produced to this topic instead of POSTed to /v1/events.

    `security` is the monitor's own `fleet.kafka.security` model (same names, same checks); the
    SASL credentials it names by environment variable are read once at start-up."""

    bootstrap_servers: str
    topic: str = DEFAULT_KAFKA_TOPIC
    security: KafkaSecurity = field(default_factory=KafkaSecurity)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    delivery_timeout: float = 30.0
    """librdkafka's `message.timeout.ms`: a batch not acknowledged (acks=all) within this fails as
    retriable and is spooled, as an unreachable monitor would be."""
    message_max_bytes: int = 1_000_000
    """librdkafka's `message.max.bytes`: a bigger event is dropped (`too_large`) before it is sent."""


@dataclass(frozen=True)
class SidecarSettings:
    upstream: Upstream
    monitor_url: str | None
    """POST /v1/events here; None when `kafka` is set."""
    model: str
    namespace: str | None = None
    """Sent with every event: the monitor tells models of one name in several namespaces apart by it."""
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
    version_header: bytes | None = DEFAULT_VERSION_HEADER
    """The model server's response header naming the version that served the call (lower-case); None: not read."""
    model_version: str | None = None
    """The version of every event whose response names none (`--model-version`, `$DRIFTWATCH_MODEL_VERSION`)."""
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
    kafka: KafkaSink | None = None


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


def _parse_kafka(
    bootstrap: str, topic: str, protocol: str, sasl_mechanism: str | None, username_env: str | None,
    password_env: str | None, ca_file: Path | None, cert_file: Path | None, key_file: Path | None,
    delivery_timeout: str, message_max_bytes: str, env: Mapping[str, str],
) -> KafkaSink:
    servers = [part.strip() for part in bootstrap.split(",")]
    for server in servers:
        if not _BOOTSTRAP_RE.match(server):
            raise SettingsError(f"--kafka-bootstrap {bootstrap!r}: expected HOST:PORT[,HOST:PORT...]")
    if not _TOPIC_RE.match(topic):
        raise SettingsError(f"--kafka-topic {topic!r}: 1-249 of letters, digits, '.', '_' and '-'")
    try:
        security = KafkaSecurity(
            protocol=protocol, sasl_mechanism=sasl_mechanism, username_env=username_env,  # type: ignore[arg-type]
            password_env=password_env, ca_file=ca_file, cert_file=cert_file, key_file=key_file,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = str(first["loc"][0]) if first["loc"] else "protocol"
        flag = "--kafka-security-protocol" if where == "protocol" else "--kafka-" + where.replace("_", "-")
        raise SettingsError(f"{flag}: {first['msg']}") from None
    credentials: dict[str, str | None] = {"username": None, "password": None}
    for name, var in (("username", security.username_env), ("password", security.password_env)):
        if var is not None:
            credentials[name] = env.get(var)
            if not credentials[name]:
                raise SettingsError(f"--kafka-{name}-env {var}: the environment variable is not set or empty")
    for flag, path in (("--kafka-ca-file", ca_file), ("--kafka-cert-file", cert_file), ("--kafka-key-file", key_file)):
        if path is not None and not path.is_file():
            raise SettingsError(f"{flag} {path}: no such file")
    if (cert_file is None) != (key_file is None):
        raise SettingsError("--kafka-cert-file: mutual TLS needs both --kafka-cert-file and --kafka-key-file")
    try:
        timeout = parse_duration(delivery_timeout)
        max_bytes = parse_size(message_max_bytes)
    except ValueError as exc:
        raise SettingsError(f"--kafka-delivery-timeout / --kafka-message-max-bytes: {exc}") from None
    if not 1.0 <= timeout <= 3600:
        raise SettingsError(f"--kafka-delivery-timeout {delivery_timeout}: must be between 1s and 1h")
    if not 1000 <= max_bytes <= 1_000_000_000:
        raise SettingsError(f"--kafka-message-max-bytes {message_max_bytes}: must be between 1000 and 1000000000 bytes")
    return KafkaSink(
        bootstrap_servers=",".join(servers), topic=topic, security=security, username=credentials["username"],
        password=credentials["password"], delivery_timeout=timeout, message_max_bytes=max_bytes,
    )


def build_settings(
    *,
    upstream: str,
    monitor: str | None = None,
    model: str,
    namespace: str | None = None,
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
    version_header: str = DEFAULT_VERSION_HEADER.decode(),
    model_version: str | None = None,
    upstream_timeout: str = "120s",
    grace_period: str = "25s",
    kafka_bootstrap: str | None = None,
    kafka_topic: str = DEFAULT_KAFKA_TOPIC,
    kafka_security_protocol: str = "PLAINTEXT",
    kafka_sasl_mechanism: str | None = None,
    kafka_username_env: str | None = None,
    kafka_password_env: str | None = None,
    kafka_ca_file: Path | None = None,
    kafka_cert_file: Path | None = None,
    kafka_key_file: Path | None = None,
    kafka_delivery_timeout: str = "30s",
    kafka_message_max_bytes: str = "1000000",
    environ: Mapping[str, str] | None = None,
) -> SidecarSettings:
    """Validate flag values; raises SettingsError naming the first bad flag.

    Exactly one destination: `monitor` (POST /v1/events) or `kafka_bootstrap` (fleet mode)."""
    env = os.environ if environ is None else environ
    if (monitor is None) == (kafka_bootstrap is None):
        raise SettingsError("--monitor / --kafka-bootstrap: give exactly one (POST to the monitor, or produce to Kafka)")
    kafka = None
    if kafka_bootstrap is not None:
        kafka = _parse_kafka(
            kafka_bootstrap, kafka_topic, kafka_security_protocol, kafka_sasl_mechanism, kafka_username_env,
            kafka_password_env, kafka_ca_file, kafka_cert_file, kafka_key_file, kafka_delivery_timeout,
            kafka_message_max_bytes, env,
        )
    elif kafka_topic != DEFAULT_KAFKA_TOPIC or kafka_username_env or kafka_password_env or kafka_sasl_mechanism:
        raise SettingsError("--kafka-topic / --kafka-*: need --kafka-bootstrap")
    if not MODEL_NAME_RE.match(model):
        raise SettingsError(f"--model {model!r}: lowercase letters, digits and '-' (a DNS label, max 63), as in the config")
    namespace = namespace or env.get("POD_NAMESPACE") or None
    if namespace is not None and not DNS1123_LABEL_RE.match(namespace):
        raise SettingsError(f"--namespace {namespace!r}: a Kubernetes namespace (lowercase letters, digits and '-', max 63)")
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
    version_header = version_header.strip().lower()
    if version_header and not _HEADER_NAME_RE.match(version_header):
        raise SettingsError(f"--version-header {version_header!r}: not a valid header name ('' reads none)")
    model_version = model_version or env.get("DRIFTWATCH_MODEL_VERSION") or None
    if model_version is not None:
        try:
            model_version = check_version(model_version)
        except InvalidVersion as exc:
            raise SettingsError(f"--model-version / $DRIFTWATCH_MODEL_VERSION: {exc}") from None
    spool_max = sizes["--spool-max-bytes"]
    return SidecarSettings(
        upstream=_parse_upstream(upstream),
        monitor_url=None if monitor is None else _parse_monitor(monitor),
        model=model,
        namespace=namespace,
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
        version_header=version_header.encode() or None,
        model_version=model_version,
        upstream_timeout=durations["--upstream-timeout"],
        grace_period=durations["--grace-period"],
        kafka=kafka,
    )
