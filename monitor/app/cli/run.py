"""Commands that start processes: demo, serve, sidecar."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:

    pass


from monitor.app.cli.base import app, fail, load_config_or_exit


@app.command()
def demo(
    keep_running: Annotated[bool, typer.Option("--keep-running", help="Leave everything up for browsing.")] = False,
    records: Annotated[int, typer.Option(min=400, max=100_000, help="Records per phase (unchanged, then drifted).")] = 1200,
    workdir: Annotated[Path | None, typer.Option(help="Keep the store, logs and config here instead of a temp dir.")] = None,
    llm: Annotated[bool, typer.Option("--llm", help="A streaming chat model instead: text descriptors, tokens, time to first token.")] = False,
) -> None:
    """End to end on embedded defaults: model server, sidecar, monitor, drifted traffic, alerts, retraining."""
    from monitor.app.demo.run import run_demo

    if workdir is not None:
        # Absolute: the generated config names its files by this path, and relative paths in a
        # config resolve next to the config file (so `demo1/...` would become `demo1/demo1/...`).
        workdir = workdir.resolve()
        try:
            workdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fail(f"--workdir {workdir}: {exc.strerror or exc}")
        if not os.access(workdir, os.W_OK):
            fail(f"--workdir {workdir}: not writable")
    if llm:
        from monitor.app.demo.llm import run_llm_demo

        raise typer.Exit(run_llm_demo(keep_running=keep_running, records=records, workdir=workdir))
    raise typer.Exit(run_demo(keep_running=keep_running, records=records, workdir=workdir))


@app.command()
def serve(
    config: Annotated[Path, typer.Option("--config", help="The YAML config.")],
    host: Annotated[str | None, typer.Option(help="Listen address (default: server.host).")] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="Listen port (default: server.port).")] = None,
) -> None:
    """Run the monitor: ingest API, event store, drift evaluation loop, /metrics. SIGTERM stops it gracefully."""
    cfg = load_config_or_exit(config)
    from monitor.app.serve import ServeError, run_server

    try:
        run_server(cfg, host=host or cfg.server.host, port=cfg.server.port if port is None else port)
    except ServeError as exc:
        fail(str(exc))


@app.command()
def sidecar(
    upstream: Annotated[str, typer.Option(help="The model server, e.g. http://127.0.0.1:8080 (same pod).")],
    model: Annotated[str, typer.Option(help="Model name in the driftwatch config.")],
    namespace: Annotated[str | None, typer.Option(help="The model's namespace (default: $POD_NAMESPACE, which "
                                                  "`driftwatch inject` sets from the pod); tells same-named models apart.")] = None,
    monitor: Annotated[str | None, typer.Option(help="The monitor's base URL; events go to POST /v1/events (or give --kafka-bootstrap).")] = None,
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port, printed on stdout).")] = 8000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",
    token_env: Annotated[str | None, typer.Option(help="Environment variable holding the monitor's bearer token.")] = None,
    token_file: Annotated[Path | None, typer.Option(help="File holding the monitor's bearer token (a mounted Secret); re-read when it changes.")] = None,
    spool_dir: Annotated[Path | None, typer.Option(help="Directory of the on-disk spool (default: driftwatch-spool-MODEL in $TMPDIR).")] = None,
    spool_max_bytes: Annotated[str, typer.Option(help="Spool size limit, e.g. 256MiB; 0 disables the spool.")] = "256MiB",
    queue_max: Annotated[int, typer.Option(help="Events held in memory before spilling to the spool.")] = 10_000,
    batch_max: Annotated[int, typer.Option(help="Events per POST to the monitor.")] = 500,
    linger: Annotated[str, typer.Option(help="Longest wait to fill a batch, e.g. 500ms.")] = "500ms",
    sample_ratio: Annotated[float, typer.Option(help="Share of inference requests captured (0..1).")] = 1.0,
    capture_path: Annotated[list[str] | None, typer.Option(help="Regex of paths to capture (repeatable); default KServe v1 :predict and v2 /infer.")] = None,
    max_capture_bytes: Annotated[str, typer.Option(help="Bytes kept of each request/response body, e.g. 64KiB.")] = "64KiB",
    header_allow: Annotated[list[str] | None, typer.Option(help="Request header copied into events (repeatable); default x-request-id, ce-id, traceparent.")] = None,
    version_header: Annotated[str, typer.Option(help="The model server's response header naming the model version "
                                                "that served the call ('' reads none; docs/versions.md).")] = "x-model-version",
    model_version: Annotated[str | None, typer.Option(help="The version of calls whose response names none (default: "
                                                      "the environment variable DRIFTWATCH_MODEL_VERSION, set by `driftwatch inject --version-label`).")] = None,
    upstream_timeout: Annotated[str, typer.Option(help="No answer from the model server within this -> 504.")] = "120s",
    grace_period: Annotated[str, typer.Option(help="On SIGTERM: time to finish requests and flush events.")] = "25s",
    kafka_bootstrap: Annotated[str | None, typer.Option(help="Fleet mode: produce events to Kafka at HOST:PORT[,HOST:PORT...] instead of POSTing to --monitor.")] = None,
    kafka_topic: Annotated[str, typer.Option(help="Kafka topic of captured events (keyed by model).")] = "driftwatch-events",
    kafka_security_protocol: Annotated[str, typer.Option(help="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.")] = "PLAINTEXT",
    kafka_sasl_mechanism: Annotated[str | None, typer.Option(help="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (with a SASL protocol).")] = None,
    kafka_username_env: Annotated[str | None, typer.Option(help="Environment variable holding the SASL user name.")] = None,
    kafka_password_env: Annotated[str | None, typer.Option(help="Environment variable holding the SASL password.")] = None,
    kafka_ca_file: Annotated[Path | None, typer.Option(help="PEM CA bundle for the brokers' certificates (default: the system's).")] = None,
    kafka_cert_file: Annotated[Path | None, typer.Option(help="Client certificate (PEM) for mutual TLS.")] = None,
    kafka_key_file: Annotated[Path | None, typer.Option(help="Client key (PEM) for mutual TLS.")] = None,
    kafka_delivery_timeout: Annotated[str, typer.Option(help="A batch not acknowledged (acks=all) within this is spooled and retried.")] = "30s",
    kafka_message_max_bytes: Annotated[str, typer.Option(help="Largest event produced (librdkafka message.max.bytes); larger ones are dropped as too_large.")] = "1000000",
) -> None:
    """The capture proxy: forwards to the model server, ships request/response pairs to the monitor (or Kafka)."""
    from monitor.sidecar import SettingsError, build_settings

    try:
        settings = build_settings(
            upstream=upstream, monitor=monitor, model=model, namespace=namespace, host=host, port=port, token_env=token_env,
            token_file=token_file, spool_dir=spool_dir, spool_max_bytes=spool_max_bytes, queue_max=queue_max, batch_max=batch_max,
            linger=linger, sample_ratio=sample_ratio, capture_paths=capture_path, max_capture_bytes=max_capture_bytes,
            header_allow=header_allow, version_header=version_header, model_version=model_version, upstream_timeout=upstream_timeout, grace_period=grace_period,
            kafka_bootstrap=kafka_bootstrap, kafka_topic=kafka_topic, kafka_security_protocol=kafka_security_protocol,
            kafka_sasl_mechanism=kafka_sasl_mechanism, kafka_username_env=kafka_username_env,
            kafka_password_env=kafka_password_env, kafka_ca_file=kafka_ca_file, kafka_cert_file=kafka_cert_file,
            kafka_key_file=kafka_key_file, kafka_delivery_timeout=kafka_delivery_timeout,
            kafka_message_max_bytes=kafka_message_max_bytes,
        )
    except SettingsError as exc:
        fail(str(exc))
    from monitor.sidecar.app import run

    try:
        run(settings)
    except OSError as exc:
        fail(f"cannot start the sidecar on {host}:{port}: {exc.strerror or exc}")
