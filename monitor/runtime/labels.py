"""Delayed ground truth: labels joined to their predictions and back-filled into their windows.

A label names the captured event it judges by id. On the writer thread, in one transaction, each
label of a batch gets exactly one outcome, counted durably:

- `joined`: the event is stored, accepted, at most `performance.label_delay` old, not labelled
  yet, and the label count matches its records. Each record's label is stored with the
  record's ordinal and the prediction (and class probabilities) parsed from the event, and the
  evaluated windows holding those ordinals are marked stale: the evaluator recomputes their
  realized performance (`Evaluator.refresh_performance`).
- `duplicate`: the event already has its labels (the first label wins; re-sending is safe), or
  the id came twice in the batch.
- `unknown_id`: no such event (never captured, or already deleted by retention).
- `too_late`: the prediction is older than `label_delay` when the label arrives.
- `event_rejected`: the event was stored as rejected (it has no records to judge).
- `count_mismatch`: `labels` does not hold one label per record of the event.

The reply is sent after the commit, so an acknowledged label is durable, and its count with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.capture import CapturedEvent, Rejected, event_records
from monitor.capture.labels import LabelBatch
from monitor.core.config import ModelConfig
from monitor.core.labelstore import LabelRow
from monitor.core.store import StoredEvent
from monitor.runtime.state import ModelState, RuntimeState, UnknownModel

__all__ = ["OUTCOMES", "LabelError", "LabelIngest", "LabelResult", "check_batch", "judge", "predictions_of"]

log = logging.getLogger("driftwatch.monitor")

OUTCOMES = ("joined", "duplicate", "unknown_id", "too_late", "event_rejected", "count_mismatch", "invalid")
"""Every outcome a received label can have (`invalid`: in a batch refused whole, nothing stored)."""
_MAX_IDS_ECHOED = 100


class LabelError(ValueError):
    """A batch refused whole (nothing stored): `status`, `error` and `detail` for the API's reply."""

    def __init__(self, status: int, error: str, detail: Any) -> None:
        super().__init__(error)
        self.status, self.error, self.detail = status, error, detail


@dataclass(frozen=True)
class LabelResult:
    outcomes: dict[str, int]
    unknown_ids: list[str] = field(default_factory=list)
    """The first ids that matched no stored event (to resend once their events are captured)."""

    def to_dict(self) -> dict[str, Any]:
        return {"outcomes": dict(self.outcomes), "unknown_ids": list(self.unknown_ids)}


def check_batch(model: ModelConfig | None, batch: LabelBatch) -> None:
    """What refuses a well-formed batch whole, in embedded and fleet mode alike: `UnknownModel`, or
    `LabelError` (409 for a model without `performance`, 422 for a regression label that is not a number)."""
    if model is None:
        raise UnknownModel(batch.model)
    perf = model.performance
    if perf is None:
        raise LabelError(409, "no_performance", f"model {batch.model!r} has no `performance` section: its labels would judge nothing")
    if perf.task == "regression":
        for i, item in enumerate(batch.labels):
            if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in item.values()):
                raise LabelError(422, "validation_failed", [{"loc": f"labels[{i}]", "msg": "a regression label must be a number"}])


def judge(perf: Any, *, found: bool, rejected: bool, duplicate: bool, age: float, n_labels: int, n_records: int) -> str:
    """One label's outcome from what is known of its event (`joined` when it can be joined)."""
    if not found:
        return "unknown_id"
    if rejected:
        return "event_rejected"
    if duplicate:
        return "duplicate"
    if age > perf.label_delay:
        return "too_late"
    if n_labels != n_records:
        return "count_mismatch"
    return "joined"


def predictions_of(perf: Any, records: Sequence[Any]) -> list[dict[str, Any]]:
    """Each record's prediction (and class probabilities) as a label is stored beside it."""
    columns = list(perf.probabilities.values())
    return [{"prediction": record.get(perf.prediction), "probabilities": [record.get(c) for c in columns] if columns else None}
            for record in records]


class LabelIngest:
    """The `/v1/labels` path of the embedded monitor."""

    def __init__(self, state: RuntimeState) -> None:
        self._state = state

    def load_counts(self) -> None:
        """Restore the durable outcome counts (on the writer thread, at start-up)."""
        counts = self._state.require_store().labels.counts()
        with self._state.lock:
            for name, model in self._state.models.items():
                model.label_counts = Counter(counts.get(name, {}))

    def refuse(self, model: str, n: int) -> None:
        """Count the labels of a batch refused whole as `invalid` (their model, when it is configured)."""
        state = self._state.models.get(model)
        if state is not None and n:
            with self._state.lock:
                state.label_counts["invalid"] += n

    async def ingest(self, batch: LabelBatch, stamps: Sequence[float | None]) -> LabelResult:
        model = self._state.models.get(batch.model)
        try:
            check_batch(model.config if model is not None else None, batch)
        except LabelError as exc:
            if exc.status == 422:
                self.refuse(batch.model, len(batch.labels))
            raise
        assert model is not None
        if not batch.labels:
            return LabelResult({o: 0 for o in OUTCOMES})
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._state.writer, self._commit, model, batch, stamps)

    def _commit(self, model: ModelState, batch: LabelBatch, stamps: Sequence[float | None]) -> LabelResult:
        """Decide every label's outcome and store the joined ones, in one transaction (writer thread)."""
        state = self._state
        store = state.require_store()
        perf = model.config.performance
        assert perf is not None
        now = state.clock()
        ids = list(dict.fromkeys(item.id for item in batch.labels))
        outcomes: Counter[str] = Counter()
        unknown: list[str] = []
        lags: list[float] = []
        with state.lock:  # the model's own key and its version tracks' (their events are stored under those)
            keys = [key for key, s in state.models.items() if s.config.key == batch.model]
        with store.transaction():
            events: dict[str, StoredEvent] = {}
            labelled: set[str] = set()
            for key in keys:
                events.update(store.events_by_id(key, ids))
                labelled.update(store.labels.labelled_ids(key, ids))
            rows: list[LabelRow] = []
            ranges: dict[str, list[tuple[int, int]]] = {}
            seen: set[str] = set()
            for item, stamp in zip(batch.labels, stamps, strict=True):
                outcome, joined = self._join(model, events.get(item.id), item.values(), item.id in labelled or item.id in seen, now)
                outcomes[outcome] += 1
                if outcome == "unknown_id" and len(unknown) < _MAX_IDS_ECHOED:
                    unknown.append(item.id)
                if outcome != "joined":
                    continue
                seen.add(item.id)
                event = events[item.id]
                assert event.rec_end is not None
                first = event.rec_end - event.n_records + 1
                rows += [LabelRow(event.model, first + i, item.id, value, prediction, event.ts, stamp, now)
                         for i, (value, prediction) in enumerate(joined)]
                ranges.setdefault(event.model, []).append((first, event.rec_end))
                lags.append(now - event.ts)
            store.labels.add(rows)
            for key, spans in ranges.items():
                store.labels.mark_stale(key, spans)
            store.labels.count(batch.model, outcomes)
        with state.lock:
            model.label_counts.update(outcomes)
            for lag in lags:
                model.label_lag.observe(lag)
        log.info("labels_ingested model=%s %s", batch.model, " ".join(f"{k}={v}" for k, v in sorted(outcomes.items())))
        return LabelResult({o: outcomes.get(o, 0) for o in OUTCOMES}, unknown)

    def _join(
        self, model: ModelState, event: StoredEvent | None, values: list[Any], duplicate: bool, now: float,
    ) -> tuple[str, list[tuple[Any, dict[str, Any]]]]:
        """One label's outcome and, when joined, each record's (label, prediction)."""
        perf = model.config.performance
        assert perf is not None
        outcome = judge(perf, found=event is not None, rejected=event is not None and (event.reason is not None or event.rec_end is None),
                        duplicate=duplicate, age=now - event.ts if event is not None else 0.0, n_labels=len(values),
                        n_records=event.n_records if event is not None else 0)
        if outcome != "joined":
            return outcome, []
        assert event is not None
        try:
            records = event_records(model.schema, CapturedEvent.model_validate_json(event.raw))
        except (Rejected, ValueError):  # stored by an older parser that accepted it: nothing to judge now
            return "event_rejected", []
        if len(records) != event.n_records:
            return "event_rejected", []
        return "joined", list(zip(values, predictions_of(perf, records), strict=True))
