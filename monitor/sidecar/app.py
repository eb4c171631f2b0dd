"""Runs the sidecar: uvloop, the proxy, the shipper, and a graceful SIGTERM.

On SIGTERM/SIGINT: stop accepting, let in-flight requests finish (their responses carry
`Connection: close`), then flush the queue to the monitor, or to the spool, all within
--grace-period; exit 0. Logs are key=value lines and never contain payloads.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
import time

import prometheus_client

from monitor.sidecar.metrics import SidecarMetrics
from monitor.sidecar.server import ProxyServer
from monitor.sidecar.settings import SidecarSettings
from monitor.sidecar.shipper import Shipper
from monitor.sidecar.spool import Spool

__all__ = ["run", "serve"]

log = logging.getLogger("driftwatch.sidecar")


async def serve(settings: SidecarSettings, stop: asyncio.Event) -> None:
    """Serve until `stop` is set, then shut down gracefully within the grace period."""
    metrics = SidecarMetrics(settings.model)
    spool = Spool(settings.spool_dir, settings.spool_max_bytes, settings.spool_segment_bytes)
    shipper = Shipper(settings, metrics, spool)
    proxy = ProxyServer(
        settings,
        metrics,
        shipper.submit,
        lambda: {"queue_events": len(shipper.queue), "spool_events": spool.pending, "monitor_reachable": shipper.healthy},
    )
    port = await proxy.start()
    shipper.start()
    # Start-up objects (modules, the registry, settings) live forever: keep them out of the
    # collector's full passes, which would otherwise show up as millisecond stalls in p99.
    gc.collect()
    gc.freeze()
    kafka = settings.kafka
    destination = f"kafka:{kafka.topic}@{kafka.bootstrap_servers}" if kafka else settings.monitor_url
    log.info(
        "sidecar_listening host=%s port=%d upstream=%s:%d model=%s destination=%s spool_dir=%s spool_events=%d",
        settings.host, port, settings.upstream.host, settings.upstream.port, settings.model, destination, settings.spool_dir, spool.pending,
    )
    # One parseable line on stdout for supervisors and tests that start us on --port 0.
    print(f"driftwatch-sidecar listening on {settings.host}:{port}", flush=True)
    await stop.wait()
    deadline = time.monotonic() + settings.grace_period
    log.info("sidecar_draining in_flight_connections=%d", len(proxy.clients))
    await proxy.drain(max(0.0, deadline - time.monotonic() - 1.0))
    await shipper.close(max(0.0, deadline - time.monotonic()))
    log.info("sidecar_stopped queue_events=0 spool_events=%d", spool.pending)


def run(settings: SidecarSettings) -> None:
    """Blocking entry point of `driftwatch sidecar`."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
    prometheus_client.disable_created_metrics()  # `_created` series only double the scrape
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; plain asyncio still works
        asyncio.run(main())
    else:
        uvloop.run(main())
