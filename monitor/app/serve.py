"""`driftwatch serve`: the monitor app under uvicorn (uvloop + httptools), wired to its collectors.

uvicorn turns SIGTERM/SIGINT into a graceful shutdown: it stops accepting, lets in-flight requests
finish (a batch being committed is acknowledged), then the app's lifespan closes the store. SIGTERM
then exits 0. With `server.tls` it serves HTTPS with that certificate and key (read once at start:
a renewed certificate takes a restart); auth is wired in `monitor.app.api` (`monitor.app.auth`).
"""

from __future__ import annotations

import gc
import logging
import signal
import socket
import sqlite3
import ssl
from typing import Any

from monitor.core.config import Config
from monitor.core.schema import SchemaVersionError
from monitor.core.store import EventStore
from monitor.core.storelock import StoreInUse, StoreLock

__all__ = ["ServeError", "run_server"]

log = logging.getLogger("driftwatch.serve")

GRACEFUL_SHUTDOWN_SECONDS = 20


class ServeError(RuntimeError):
    """A reason the monitor cannot start, worded for the operator."""


def _check_listen(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _check_store(config: Config) -> None:
    try:
        StoreLock(config.server.store.path).acquire().release()  # the monitor takes it for good at start-up
        EventStore(config.server.store.path).close()
    except StoreInUse as exc:
        raise ServeError(str(exc)) from None
    except (OSError, sqlite3.Error, RuntimeError) as exc:
        raise ServeError(f"cannot open the event store {config.server.store.path}: {exc}") from None


def _check_tls(config: Config) -> tuple[str, str] | None:
    """(cert file, key file) for uvicorn, None for plain HTTP; `ServeError` for ones that cannot be loaded."""
    tls = config.server.tls
    if tls is None:
        return None
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ServeError(f"cannot use server.tls (cert_file {tls.cert_file}, key_file {tls.key_file}): {why}") from None
    return str(tls.cert_file), str(tls.key_file)


def _check_semantic(config: Config) -> None:
    """`ServeError` when a `text: {semantic: true}` column's offline model is not installed."""
    if not any(c.type == "text" and c.options.semantic for m in config.models for c in (*m.features, *m.outputs)):
        return
    from monitor.text.embed import semantic_problems

    if problems := semantic_problems(config):
        raise ServeError("; ".join(f"{path}: {message}" for path, message in problems))


def run_server(config: Config, *, host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT; `ServeError` for a port or store that cannot be used."""
    import uvicorn

    from monitor.app.api import create_app
    from monitor.app.auth import AuthConfigError
    from monitor.resources.collector import ResourceCollector

    logging.basicConfig(level=logging.INFO, format="ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
    _check_listen(host, port)
    if config.fleet is None:
        _check_store(config)
    tls = _check_tls(config)
    _check_semantic(config)
    controller = _retrain_controller(config)
    mlflow = _mlflow_sync(config, controller)
    resources = ResourceCollector(config).start()
    try:
        # the controller hears every evaluated window (a VerdictListener) and serves the webhook;
        # in fleet mode the leaseholder reads the evaluations from PostgreSQL instead (retrain/fleet.py)
        listeners = [controller] if controller is not None and config.fleet is None else []
        if mlflow is not None:  # drift tags on the watched MLflow model version (docs/mlflow.md)
            listeners.append(mlflow)
        try:
            app = create_app(config, controller=controller, listeners=listeners, resources=resources.snapshot,
                             profile_in_child=True, mlflow=mlflow)  # pandas and scipy stay out of the idle process
        except AuthConfigError as exc:
            raise ServeError(str(exc)) from None

        class Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets)  # the app's lifespan: store open, windows rebuilt, references profiled
                _freeze_heap()

        server = Server(
            uvicorn.Config(
                app, host=host, port=port, loop="uvloop", http="httptools", access_log=False, log_config=None,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS, server_header=False,
                ssl_certfile=tls[0] if tls else None, ssl_keyfile=tls[1] if tls else None,
            )
        )
        log.info("monitor_starting host=%s port=%d models=%d tls=%s", host, port, len(config.models), bool(tls))
        # uvicorn re-raises the signal it shut down on once it is done; a no-op handler for SIGTERM
        # lets that end here, so a graceful stop exits 0 (what Kubernetes expects) after the log line.
        previous = signal.signal(signal.SIGTERM, lambda *_: None)
        try:
            server.run()
        finally:
            signal.signal(signal.SIGTERM, previous)
        if not server.started:
            raise ServeError("the monitor failed to start (see the log above)")
    finally:
        resources.stop()
        if mlflow is not None:
            mlflow.stop()
        if controller is not None:
            controller.stop()
    log.info("monitor_stopped")


def _freeze_heap() -> None:
    """Exempt what start-up built (modules, config, reference profiles) from garbage collection.

    It lives as long as the process, yet every full collection would traverse it again; ingest
    allocates enough to trigger those often (`python benchmarks/ingest.py` measures ingest with it).
    """
    gc.collect()
    gc.freeze()
    log.info("heap_frozen objects=%d", gc.get_freeze_count())


def _retrain_controller(config: Config):  # type: ignore[no-untyped-def]
    """The retraining controller when any model has a retrain config; it shares the store's file.

    In fleet mode, every replica's `FleetRetrainer`: the replica holding the lease runs the controller."""
    if all(config.retrain_for(m) is None for m in config.models):
        return None
    if config.fleet is not None:
        import os

        from retrain.fleet import FleetRetrainer

        dsn = os.environ.get(config.fleet.postgres.dsn_env)
        if not dsn:
            raise ServeError(f"fleet mode needs the PostgreSQL DSN in ${config.fleet.postgres.dsn_env}")
        return FleetRetrainer(config, dsn).start()
    from retrain.controller import RetrainController

    try:
        controller = RetrainController(config, config.server.store.path)
    except SchemaVersionError as exc:  # e.g. rolled back to an older image after a newer one upgraded the file
        raise ServeError(f"cannot use the event store {config.server.store.path}: {exc}") from None
    controller.start()
    return controller


def _mlflow_sync(config: Config, controller: Any):  # type: ignore[no-untyped-def]
    """The MLflow tagger and retraining linker when the config has an `mlflow` section (docs/mlflow.md)."""
    if config.mlflow is None:
        return None
    from retrain.mlflow import MlflowSync

    history = getattr(controller, "history", None)
    return MlflowSync(config, history=(lambda: history) if history is not None else None).start()
