"""KServe CloudEvents: each request and response arrives as its own event; join the halves on `ce-id`.

A half waits in the store (durably, so it survives a restart) until its partner arrives; the join
is one transaction on the writer thread. Halves whose partner never comes expire after
`server.cloudevents_join_timeout`: a lone request still gives features, and both kinds are counted.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from monitor.capture import CapturedEvent, encode_event
from monitor.capture.cloudevents import Half, join_halves
from monitor.core.store import EventRow, PendingHalf
from monitor.runtime.ingest import feed, prepare
from monitor.runtime.state import RuntimeState

__all__ = ["CloudEventOutcome", "HalfJoiner"]

log = logging.getLogger("driftwatch.monitor")


@dataclass(frozen=True)
class CloudEventOutcome:
    status: str
    """`pending` (waiting for its partner), `joined`, or `duplicate`."""
    reason: str | None = None
    """Why the joined event was rejected, if it was."""


class HalfJoiner:
    def __init__(self, state: RuntimeState) -> None:
        self._state = state

    async def ingest_half(self, half: Half) -> CloudEventOutcome:
        """Keep a KServe request/response half, or join it with its waiting partner, durably.
        `UnknownModel` when its InferenceService (in its namespace) is not a configured model."""
        key = self._state.router.key(half.model, half.namespace)
        return await asyncio.get_running_loop().run_in_executor(self._state.writer, self._ingest_half, key, half)

    def _ingest_half(self, key: str, half: Half) -> CloudEventOutcome:
        state = self._state
        store = state.require_store()
        now = state.clock()
        other = "response" if half.kind == "request" else "request"
        with store.transaction():
            if store.contains(key, half.id):
                return CloudEventOutcome("duplicate")
            partner = store.take_half(key, half.id, other)
            if partner is None:
                added = store.put_half(PendingHalf(key, half.id, half.kind, now, half.to_json()))
                return CloudEventOutcome("pending" if added else "duplicate")
            halves = {half.kind: half, partner.kind: Half.from_json(partner.half)}
            rows, parsed = prepare(state, [(key, join_halves(halves["request"], halves["response"], now))], now)
            stored = store.append(rows)
        state.on_commit()
        with state.lock:
            feed(state, stored, parsed, now)
        return CloudEventOutcome("joined", rows[0].reason)

    def expire(self) -> int:
        """Halves whose partner never came (on the writer thread): a request still gives features; both are counted."""
        state = self._state
        store = state.require_store()
        now = state.clock()
        with store.transaction():
            expired = store.take_expired_halves(now - state.config.server.cloudevents_join_timeout)
            events: list[tuple[str, CapturedEvent]] = []
            kinds: list[str] = []
            for p in expired:
                if p.model not in state.models or store.contains(p.model, p.id):
                    continue
                try:
                    half = Half.from_json(p.half)
                    event = join_halves(half if p.kind == "request" else None, half if p.kind == "response" else None, now)
                    encode_event(event)
                except Exception as exc:  # one unusable half must not keep every other one (and evaluation) waiting
                    log.error("cloudevent_half_unusable model=%s kind=%s error=%s", p.model, p.kind, type(exc).__name__)
                    with state.lock:
                        state.models[p.model].rejected["parse_error"] += 1
                    continue
                events.append((p.model, event))
                kinds.append(p.kind)
            rows, parsed = prepare(state, events, now)
            rows = [r if k == "request" else _with_reason(r, "unmatched_response") for r, k in zip(rows, kinds, strict=True)]
            parsed = [records if k == "request" else [] for records, k in zip(parsed, kinds, strict=True)]
            stored = store.append(rows)
        with state.lock:
            for s, records, k in zip(stored, parsed, kinds, strict=True):
                feed(state, [s], [records], now, unmatched="unmatched_request" if k == "request" else None)
        if expired:
            log.info("cloudevent_halves_expired count=%d", len(expired))
        return len(expired)


def _with_reason(row: EventRow, reason: str) -> EventRow:
    return EventRow(row.model, row.id, row.ts, row.received_at, reason, 0, row.raw)
