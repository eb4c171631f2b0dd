"""Retention: the store's age and size limits, on the writer thread.

Two triggers: the periodic pass (`RETENTION_INTERVAL`, from the monitor's loop) deletes what is
older than `server.store.max_age` (events: or the longest `performance.label_delay`, so
late labels still find their predictions) and trims evaluations and retraining decisions; and, between
passes, every ingest commit asks the store whether it is past its size target (two pragmas, no
I/O) and, if so, queues one size step behind the commits already waiting. A step deletes one
batch of the oldest events in its own transaction, gives the pages back to the file system and
checkpoints the WAL; it queues the next step while the store is still over, so ingest
transactions interleave with the trimming and the file never drifts more than a few commits
past `server.store.max_bytes` (docs/deploy.md states the bound).
"""

from __future__ import annotations

import asyncio
import logging

from monitor.core.store import StoreFull
from monitor.runtime.state import RuntimeState

__all__ = ["RETENTION_INTERVAL", "Retention"]

log = logging.getLogger("driftwatch.monitor")

RETENTION_INTERVAL = 60.0


class Retention:
    def __init__(self, state: RuntimeState) -> None:
        self._state = state
        self._scheduled = False
        """A size step is queued on the writer (only the writer thread reads or writes it)."""
        self.size_trimmed = 0
        """Events deleted by size steps between the periodic passes (for tests and logs)."""

    def after_commit(self) -> None:
        """On the writer thread, after each ingest commit: queue a size step if the store is over its target."""
        store = self._state.store
        if self._scheduled or store is None or store.closed:
            return
        if store.over_size(self._state.config.server.store.max_bytes):
            self._schedule()

    def _schedule(self) -> None:
        try:
            self._state.writer.submit(self._size_step)
            self._scheduled = True
        except RuntimeError:  # the writer is shutting down
            pass

    def _size_step(self) -> None:
        self._scheduled = False
        store = self._state.store
        if store is None or store.closed:
            return
        try:
            deleted = store.trim_to_size(self._state.config.server.store.max_bytes)
        except StoreFull:
            log.warning("retention_store_full path=%s", store.path)
            return
        self.size_trimmed += deleted
        if deleted and store.over_size(self._state.config.server.store.max_bytes):
            self._schedule()

    async def run_pass(self) -> int:
        """The periodic pass: age, evaluation and decision limits, then size; the events deleted."""
        store = self._state.require_store()
        cfg = self._state.config.server.store
        loop = asyncio.get_running_loop()
        clock = self._state.clock
        total = 0
        # labels join their events up to `performance.label_delay` after the prediction
        delays = [m.performance.label_delay for m in self._state.config.models if m.performance is not None]
        keep_events = max([cfg.max_age, *delays])
        while deleted := await loop.run_in_executor(
            self._state.writer, lambda: store.trim(older_than=clock() - cfg.max_age, max_bytes=cfg.max_bytes,
                                                   events_older_than=clock() - keep_events)
        ):
            total += deleted
        if total:
            log.info("retention_deleted events=%d", total)
        return total
