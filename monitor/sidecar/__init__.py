"""The capture sidecar: a reverse proxy in the model's pod that ships request/response pairs.

Deliberately light: no evidently, pandas or drift engine here (fast start, small memory).

Modules: the HTTP/1.1 hot path is `server` (listening, timeouts, own endpoints, hand-over),
`client` (client connections and the proxy's decisions), `upstream` (model-server connections and
their pool), `exchange` (one request/response pair's state) and `framing` (heads and error bodies);
`capture` (what is kept of a pair and its wire form), `shipper` (queue, batches, retries,
ordering), `monitor_client` (the POST to the monitor), `kafka_producer` (fleet mode: the same
batches produced to Kafka), `spool` (on-disk framing and fsync policy),
`metrics` (series and drop reasons), `settings` (flags), `app` (process and SIGTERM).
Own endpoints live on the proxy port under /driftwatch/ (healthz, readyz, metrics).
"""

from monitor.sidecar.settings import SettingsError, SidecarSettings, build_settings

__all__ = ["SettingsError", "SidecarSettings", "build_settings"]
