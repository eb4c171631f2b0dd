"""Restart recovery: windows after a restart equal those before it, and so does the last result.

At start-up (on the writer thread, before anything is ingested) each model's window is refilled
from the store's accepted events, re-parsed with this version's parser, and the records of the
last stored evaluation are collected; once the reference is profiled they are evaluated again
(`restore_result`), from the calibrated detector's CUSUM state before that window, so a restart
neither resets nor double-counts accumulated evidence.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from monitor.capture import CapturedEvent, Record, Rejected, event_records
from monitor.core.store import EvaluationRow, EventStore, StoredEvent
from monitor.runtime.snapshot import WindowInfo
from monitor.runtime.state import ModelState
from monitor.windows import SlidingWindow

__all__ = ["cusum_state", "rebuild", "restore_result", "window_selection"]

log = logging.getLogger("driftwatch.monitor")


def rebuild(store: EventStore, state: ModelState, now: float) -> None:
    """Refill the window from the store, so windows after a restart equal those before, and
    collect the last evaluation's records (its result is restored by re-evaluating them)."""
    name = state.key
    last = store.evaluations(name, limit=2)
    ev = last[0] if last else None
    if ev is not None:
        state.info = WindowInfo(ev.window_start, ev.window_end, ev.first_seq, ev.last_seq, ev.n_records)
        state.last_evaluation = ev.evaluated_at
        if ev.reference_id == state.reference_id:  # else: a detector of another reference; this one starts fresh
            state.cusum = (cusum_state(last[1].result) if len(last) > 1 else {}, cusum_state(ev.result))
    points, last_rec = store.evaluated_points(name)
    window = SlidingWindow(
        state.config.window, last_rec=max(last_rec, state.reference_from), last_end=ev.window_end if ev else 0.0,
        last_points=points, now=now,
    )
    total = store.record_total(name)
    after = window.needed_from(total, now, lambda ts: store.first_rec_since(name, ts, received_since=ts - window.horizon))
    after = max(after, state.reference_from)  # records before the current reference took over are never windowed again
    if ev is not None and ev.reference_id != state.reference_id:
        ev = None  # judged against another reference: its result is not restored against this one
    # The last window's records restore its result, however long ago it was; when they are older
    # than the replay they are read on their own: replaying everything since them would re-parse
    # all retained events at every start-up of a model whose later windows were all skipped.
    apart = ev is not None and ev.first_rec <= after
    replayed, reread, restore = 0, 0, []
    for stored, records in _reparsed(state, store.accepted_since(name, after)):
        window.add(stored.seq, stored.ts, stored.rec_end or 0, records, now=now)
        replayed += len(records)
        if ev is not None and not apart:
            restore += window_selection(ev, stored, records)
    if ev is not None and apart:
        for stored, records in _reparsed(state, store.accepted_between(name, ev.first_rec, ev.last_rec)):
            reread += len(records)
            restore += window_selection(ev, stored, records)
    state.window = window
    state.restore = restore if ev is not None and len(restore) == ev.n_records else None
    log.info("window_rebuilt model=%s records_total=%d replayed=%d reread=%d restored=%s",
             name, total, replayed, reread, state.restore is not None)


def restore_result(state: ModelState, profile: Any, detector: Any) -> Any:
    """The last stored window's result, evaluated again against the new `profile` (None when there
    is none to restore).

    A calibrated `detector`'s CUSUM is first set to its state before that window (after it, when
    there is nothing to re-evaluate), so the re-evaluation ends where the stored one did."""
    from monitor.drift import evaluate

    records, state.restore = state.restore, None  # needed once: do not hold a window's records
    if detector is not None:
        detector.restore(state.cusum[0] if records else state.cusum[1])
    if not records:
        return None
    try:
        frame = state.frame(records, profile)
        return detector.evaluate(frame) if detector is not None else evaluate(profile, frame)
    except Exception as exc:  # start without the last result rather than not at all
        log.error("restore_evaluation_failed model=%s error=%s", state.key, type(exc).__name__)
        return None


def window_selection(ev: EvaluationRow, stored: StoredEvent, records: list[Record]) -> list[Record]:
    """The records of a stored event that the evaluated window `ev` held (its ordinals and stamps).

    The one rule for rebuilding a stored window (restart, reports): its ordinal range alone would
    also take records stamped outside the window (late, or far in the future)."""
    if not ev.window_start <= stored.ts <= ev.window_end:
        return []
    first = (stored.rec_end or 0) - len(records) + 1
    return records[max(0, ev.first_rec - first) : max(0, ev.last_rec - first + 1)]


def _reparsed(state: ModelState, events: Iterable[StoredEvent]) -> Iterator[tuple[StoredEvent, list[Record]]]:
    """Stored events with their records parsed again (those this version cannot parse are left out)."""
    for stored in events:
        records = _reparse(state, stored)
        if records is not None:
            yield stored, records


def _reparse(state: ModelState, stored: StoredEvent) -> list[Record] | None:
    try:
        records = event_records(state.schema, CapturedEvent.model_validate_json(stored.raw))
    except Rejected as exc:
        log.warning("rebuild_reparse_rejected model=%s seq=%d reason=%s", state.key, stored.seq, exc.reason)
        return None
    except ValueError:  # a row this version's envelope refuses must not stop the start-up
        log.warning("rebuild_reparse_invalid model=%s seq=%d", state.key, stored.seq)
        return None
    if len(records) != stored.n_records:
        log.warning("rebuild_record_count_changed model=%s seq=%d", state.key, stored.seq)
        return None
    return records


def cusum_state(result: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per column, the CUSUM a stored calibrated result ended with (see CalibratedDetector.state)."""
    state = {}
    for name, feature in result.get("features", {}).items():
        evidence = (feature.get("details") or {}).get("calibration")
        if evidence and evidence.get("cusum") is not None:
            state[name] = {"s": evidence["cusum"], "alarm": bool(evidence["alarm"])}
    return state
