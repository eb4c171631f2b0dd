"""Ingest with group commit: parse on arrival, commit on the writer thread, then feed the windows.

The asyncio loop parses each batch on arrival (the writer's SQLite calls release the GIL, so this
overlaps the commit of earlier batches), queues it and awaits the writer. Batches that queue up
while the writer commits are committed together in its next transaction (one fsync for all of
them, up to `group_commit_bytes`); each is answered only after that commit, with its own counts.
The same transaction first deletes the oldest events that would push the store past its size
target (`EventStore.make_room`), so the file stays within `server.store.max_bytes`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import traceback
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from monitor.capture import CapturedEvent, Record, encode_event
from monitor.capture.extract import versioned_records
from monitor.core.names import InvalidVersion, check_version
from monitor.core.store import EventRow, StoredEvent, StoreFull, wal_limit
from monitor.runtime.state import RuntimeState, UnknownModel
from monitor.runtime.tracks import track_key

__all__ = ["GroupCommit", "IngestResult", "feed", "group_commit_bytes", "prepare"]

log = logging.getLogger("driftwatch.monitor")


def group_commit_bytes(max_bytes: int) -> int:
    """Event bytes one transaction takes from the queue at most (a single larger batch goes alone):
    the WAL's share of the store (`wal_limit`: 64 KiB to 4 MiB), so one commit's WAL stays near
    it and the store's size bound (docs/deploy.md) holds under any number of waiting batches."""
    return wal_limit(max_bytes)


@dataclass(frozen=True)
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    reasons: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected, "reasons": dict(self.reasons)}


@dataclass(frozen=True, slots=True)
class _Queued:
    """A parsed batch waiting for the writer's next commit."""

    rows: list[EventRow]
    parsed: list[list[Record]]
    unknown: int
    """Events of models that are not configured: counted, not stored."""
    future: Future[IngestResult]
    received_at: float
    """The clock the rows were received at (the windows judge timestamps against it)."""


class GroupCommit:
    """The ingest path of `/v1/events`: one durable transaction per writer turn, however many batches wait."""

    def __init__(self, state: RuntimeState) -> None:
        self._state = state
        self._queue: list[_Queued] = []
        self._queue_lock = threading.Lock()

    async def ingest(self, events: Sequence[CapturedEvent]) -> IngestResult:
        """Store a batch durably (committed with whatever queued beside it), then feed the windows."""
        state = self._state
        known = list(keyed(state, events))
        now = state.clock()
        rows, parsed = prepare(state, known, now)
        batch = _Queued(rows, parsed, len(events) - len(known), Future(), now)
        with self._queue_lock:
            self._queue.append(batch)
        state.writer.submit(self._commit_queued)
        return await asyncio.wrap_future(batch.future)

    def _commit_queued(self) -> None:
        """Commit the queued batches, up to `group_commit_bytes` (on the writer thread); a no-op when an
        earlier call took them. What is left stays queued for the next call, queued at once."""
        with self._queue_lock:
            size, n, cap = 0, 0, group_commit_bytes(self._state.config.server.store.max_bytes)
            while n < len(self._queue):
                more = sum(len(r.raw) for r in self._queue[n].rows)
                if n and size + more > cap:
                    break
                size += more
                n += 1
            queued, self._queue = self._queue[:n], self._queue[n:]
            if self._queue:
                self._state.writer.submit(self._commit_queued)
        # A batch whose request was cancelled before its turn is not stored (it was never acknowledged).
        batches = [b for b in queued if b.future.set_running_or_notify_cancel()]
        if not batches:
            return
        state = self._state
        try:
            store = state.require_store()
            rows = [row for b in batches for row in b.rows]
            with store.transaction():
                store.make_room(rows, state.config.server.store.max_bytes)  # freed pages are reused by the rows
                stored = store.append(rows)
        except BaseException as exc:  # every waiting request gets the error, none hangs (and none is acknowledged)
            for b in batches:
                b.future.set_exception(exc)
            if isinstance(exc, StoreFull):
                log.warning("store_full path=%s batches_refused=%d", exc.path, len(batches))
                return
            raise
        state.on_commit()
        results, start = [], 0
        with state.lock:
            for b in batches:
                mine = stored[start : start + len(b.rows)]
                start += len(b.rows)
                reasons = feed(state, mine, b.parsed, b.received_at)
                if b.unknown:
                    state.unknown_model_events += b.unknown
                    reasons["unknown_model"] += b.unknown
                duplicates = sum(1 for s in mine if s is None)
                rejected = sum(reasons.values())
                results.append(IngestResult(len(b.rows) + b.unknown - duplicates - rejected, duplicates, rejected, dict(reasons)))
        for b, result in zip(batches, results, strict=True):
            b.future.set_result(result)


def keyed(state: RuntimeState, events: Iterable[CapturedEvent]) -> Iterator[tuple[str, CapturedEvent]]:
    """(model key, event) of the events of configured models; the others are left out (`unknown_model`)."""
    for e in events:
        try:
            yield state.router.key(e.model, e.namespace), e
        except UnknownModel:
            continue


def prepare(state: RuntimeState, events: Iterable[tuple[str, CapturedEvent]], now: float) -> tuple[list[EventRow], list[list[Record]]]:
    """Parse events of configured models into store rows (and their records) before the commit.

    Each row is keyed by its version's track (`monitor.runtime.tracks`), made here if new. A payload
    the parser fails on unexpectedly (a bug, or input nobody foresaw) is one rejected event
    (`parse_error`), never a failed batch: a sender would retry that batch for ever; so is a version
    driftwatch will not track (`invalid_version`: too long, control characters, other symbols)."""
    rows, parsed = [], []
    tracks: set[str] = set()
    for key, e in events:
        version = None
        try:
            records, named, rejected = versioned_records(state.models[key].schema, e)
            reason = rejected.reason if rejected is not None else None
            if named is not None:
                version = check_version(named)
        except InvalidVersion as exc:
            records, reason = [], "invalid_version"
            log.warning("event_version_invalid model=%s id=%s detail=%s", key, e.id, exc)
        except Exception as exc:
            records, reason = [], "parse_error"
            where = traceback.extract_tb(exc.__traceback__)[-1]
            log.error("payload_parse_failed model=%s error=%s at=%s:%s", key, type(exc).__name__, where.filename, where.lineno)
        if version is not None:
            key = track_key(key, version)
            tracks.add(key)
        rows.append(EventRow(key, e.id, e.timestamp, now, reason, len(records), encode_event(e)))
        parsed.append(records)
    if tracks:
        with state.lock:
            for key in tracks:
                state.track(key, now)
    return rows, parsed


def feed(state: RuntimeState, stored: Sequence[StoredEvent | None], parsed: Sequence[list[Record]], now: float,
         unmatched: str | None = None) -> Counter[str]:
    """After the commit: count outcomes and append accepted records, received at `now`, to the windows (hold `state.lock`)."""
    reasons: Counter[str] = Counter()
    for s, records in zip(stored, parsed, strict=True):
        if s is None:
            continue
        model = state.track(s.model, now)  # a track retired since `prepare` comes back
        state.tracks.seen(s.model, 1, now)
        reason = s.reason or unmatched
        if reason is None:
            model.ingested += 1
        else:
            model.rejected[reason] += 1
            reasons[reason] += 1
        if s.rec_end is not None:
            model.window.add(s.seq, s.ts, s.rec_end, records, now=now)
    return reasons
