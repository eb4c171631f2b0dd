"""What reports need from the monitor, and nothing more.

Reports read evaluated windows (their stored `DriftResult.to_dict()`), the records of one window,
the model's reference data and, for models with ground truth, each window's stored performance. Keeping this a small Protocol lets the HTTP routes be tested against any
source and keeps the reports package independent of how the store is laid out.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from monitor.capture import CapturedEvent, ModelSchema, event_records
from monitor.core.config import Config, ModelConfig
from monitor.core.labelstore import PerformanceRow
from monitor.core.referencestore import ReferenceStore, StoredReference
from monitor.core.store import EvaluationRow, EventStore
from monitor.runtime import load_reference_texts, split_track, stored_model, window_selection

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ConfiguredModels", "Evaluation", "PerformanceHistory", "ReportSource", "StoreReportSource", "StoredPerformance",
    "text_examples",
]


@dataclass(frozen=True)
class Evaluation:
    """One evaluated window of a model, as stored."""

    model: str
    window_id: int
    start: float
    end: float
    first_seq: int
    last_seq: int
    n_records: int
    evaluated_at: float
    result: Mapping[str, Any]
    """`DriftResult.to_dict()` of the window."""
    reference_id: int | None = None
    """The stored reference the window was judged against (None: the config's)."""
    reference: str | None = None
    """How that reference is named (`reference #3 (file, 2026-12-06 18:20 UTC)`); None: the config's."""

    @classmethod
    def of(cls, row: EvaluationRow, reference: str | None = None) -> Evaluation:
        """A stored evaluation row (SQLite or, in fleet mode, PostgreSQL); its window id is its last ordinal."""
        return cls(
            model=row.model, window_id=row.last_rec, start=row.window_start, end=row.window_end,
            first_seq=row.first_seq, last_seq=row.last_seq, n_records=row.n_records,
            evaluated_at=row.evaluated_at, result=row.result, reference_id=row.reference_id, reference=reference,
        )


@dataclass(frozen=True)
class StoredPerformance:
    """One window's performance, as stored beside its drift evaluation (same window id)."""

    window_id: int
    start: float
    end: float
    n_records: int
    n_labelled: int
    evaluated_at: float
    updated_at: float
    pending_refresh: bool
    """Labels arrived since `result` was computed; the evaluator will judge the window again."""
    result: Mapping[str, Any]
    """`PerformanceResult.to_dict()` of the window."""

    @classmethod
    def of(cls, row: PerformanceRow) -> StoredPerformance:
        """A stored performance row; like an evaluation, its window id is its last record's ordinal."""
        return cls(
            window_id=row.last_rec, start=row.window_start, end=row.window_end, n_records=row.n_records,
            n_labelled=row.n_labelled, evaluated_at=row.evaluated_at, updated_at=row.updated_at,
            pending_refresh=row.stale, result=row.result,
        )


@dataclass(frozen=True)
class PerformanceHistory:
    """A model's recent windows' performance (oldest first) and the labels it has received, by outcome.

    The outcome counts are the model's totals (every label ever received, across windows), so a
    report can show whether labels are arriving and joining at all, not only this window's share.
    """

    windows: tuple[StoredPerformance, ...]
    label_outcomes: Mapping[str, int]

    @property
    def version(self) -> tuple[int, float, int]:
        """Changes whenever labels arrive or a window is judged again: pages are cached by it."""
        newest = max((w.updated_at for w in self.windows), default=0.0)
        return len(self.windows), newest, sum(self.label_outcomes.values())


class ReportSource(Protocol):
    def models(self) -> Sequence[str]:
        """Configured models' keys (`ModelConfig.key`), in config order."""
        ...

    def evaluations(self, model: str, limit: int, before: int | None = None) -> Sequence[Evaluation]:
        """The latest `limit` evaluations of `model` (with window_id <= `before` if given), oldest first."""
        ...

    def evaluation(self, model: str, window_id: int) -> Evaluation | None:
        ...

    def window_frame(self, model: str, window_id: int) -> pd.DataFrame:
        """The parsed records of that window, one column per feature and output (a text column as its
        descriptors, and its raw texts under its own name)."""
        ...

    def reference_frame(self, model: str, reference_id: int | None = None) -> pd.DataFrame:
        """The model's reference rows (the stored reference `reference_id`, or the config's) as the
        engine's columns, with each text column's raw texts under its name."""
        ...

    def text_examples(self, model: str) -> Mapping[str, int]:
        """Each text column of the model and how many example texts its report shows (`text.examples`)."""
        ...

    def performance(self, model: str, limit: int, before: int | None = None) -> PerformanceHistory | None:
        """The latest `limit` windows' performance (window_id <= `before` if given), oldest first; None
        when the model has no `performance` section."""
        ...


def text_examples(model: ModelConfig) -> dict[str, int]:
    """Each text column of a model and its `text.examples`."""
    return {c.name: c.options.examples for c in model.text_columns}


class ConfiguredModels:
    """What every source answers from the config alone: the models, their reference frames (loaded
    once) and a window's records as a frame of the model's columns."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._references: dict[tuple[str, int | None], tuple[pd.DataFrame, dict[str, Any]]] = {}

    def models(self) -> Sequence[str]:
        return [m.key for m in self.config.models]

    def reference_frame(self, model: str, reference_id: int | None = None) -> pd.DataFrame:
        return self._reference(model, reference_id)[0]

    def text_examples(self, model: str) -> Mapping[str, int]:
        return text_examples(self.config.model(split_track(model)[0]))

    def _reference(self, model: str, reference_id: int | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
        """The reference frame (raw texts kept, for examples) and its text profiles, loaded once per
        reference (a model's versions share the config's)."""
        key = (split_track(model)[0], reference_id)
        if key not in self._references:
            self._references[key] = load_reference_texts(self._reference_model(key[0], reference_id), self.config, keep_texts=True)
        return self._references[key]

    def _reference_model(self, model: str, reference_id: int | None) -> ModelConfig:
        """The model's config with the stored reference `reference_id` as its reference (the config alone knows none)."""
        return self.config.model(model)

    def _frame(self, model: str, records: Sequence[Mapping[str, Any]], reference_id: int | None = None) -> pd.DataFrame:
        from monitor.text.columns import model_frame  # on a report's first request, not in the idle monitor

        model_cfg = self.config.model(split_track(model)[0])
        return model_frame(model_cfg, records, self._reference(model, reference_id)[1] if model_cfg.text_columns else {}, keep_texts=True)


class StoreReportSource(ConfiguredModels):
    """`ReportSource` over the monitor's SQLite store, through the store's public functions.

    A window's id is the ordinal of its last record (`last_rec`): unique per model, known as soon as
    the window is evaluated (so alerts and retraining Jobs can link to it) and stable across
    restarts. It opens its own connection to the store file (WAL lets it read beside the monitor's
    writer) and serializes its own use of it. Windows are looked up by id on the store's
    (model, last_rec) index, so a lookup (a miss too) parses only the results it returns; records
    come from re-parsing the window's stored events, as the monitor does when it rebuilds windows
    after a restart.
    """

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self._lock = threading.Lock()
        self._store: EventStore | None = None
        self._refs: ReferenceStore | None = None

    def _db(self) -> EventStore:
        if self._store is None:
            self._store = EventStore(self.config.server.store.path)
        return self._store

    def _stored(self, reference_id: int) -> StoredReference:
        if self._refs is None:
            self._refs = ReferenceStore(self.config.server.store.path)
        ref = self._refs.get(reference_id)
        if ref is None:
            raise LookupError(f"no stored reference #{reference_id}")
        return ref

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
            if self._refs is not None:
                self._refs.close()
                self._refs = None

    def _of(self, row: EvaluationRow) -> Evaluation:
        """The row, with its reference named (hold the lock)."""
        return Evaluation.of(row, None if row.reference_id is None else self._stored(row.reference_id).label)

    def _reference_model(self, model: str, reference_id: int | None) -> ModelConfig:
        if reference_id is None:
            return self.config.model(model)
        with self._lock:
            return stored_model(self.config.model(model), self._stored(reference_id))

    def evaluations(self, model: str, limit: int, before: int | None = None) -> Sequence[Evaluation]:
        with self._lock:
            rows = self._db().window_evaluations(model, limit, up_to=before)
            return [self._of(row) for row in reversed(rows)]

    def evaluation(self, model: str, window_id: int) -> Evaluation | None:
        with self._lock:
            row = self._db().evaluation_at(model, window_id)
            return None if row is None else self._of(row)

    def window_frame(self, model: str, window_id: int) -> pd.DataFrame:
        schema = ModelSchema.from_config(self.config.model(split_track(model)[0]))
        records: list[dict[str, Any]] = []
        with self._lock:
            ev = self._db().evaluation_at(model, window_id)
            if ev is None:
                raise LookupError(f"no evaluated window {window_id} for model {model!r}")
            # Only the window's events, parsed one at a time: an old window costs its own size.
            for stored in self._db().accepted_between(model, ev.first_rec, ev.last_rec):
                parsed = event_records(schema, CapturedEvent.model_validate_json(stored.raw))
                records.extend(window_selection(ev, stored, parsed))
        if len(records) != ev.n_records:
            raise LookupError(f"the store holds {len(records)} of the window's {ev.n_records} records (retention)")
        return self._frame(model, records, ev.reference_id)

    def performance(self, model: str, limit: int, before: int | None = None) -> PerformanceHistory | None:
        if self.config.model(split_track(model)[0]).performance is None:
            return None
        with self._lock:
            labels = self._db().labels
            rows = labels.history(model, limit, up_to=before)
            outcomes = labels.counts().get(model, {})
        return PerformanceHistory(tuple(StoredPerformance.of(r) for r in reversed(rows)), outcomes)
