"""Read-only views of the runtime's state, pulled by the Prometheus exporter and the JSON API.

The runtime owns the mutable state; the exporter only ever sees these frozen snapshots, so a scrape
never races an evaluation and never blocks ingestion.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.drift import DriftResult


@dataclass(frozen=True)
class WindowInfo:
    """The records a drift result was computed on (unix seconds, store sequence numbers)."""

    start: float
    end: float
    first_seq: int
    last_seq: int
    n_records: int


@dataclass(frozen=True)
class ModelSnapshot:
    model: str
    result: DriftResult | None = None
    window: WindowInfo | None = None
    window_records: int = 0
    """Records currently in the model's sliding window (not only the last evaluated one)."""
    last_evaluation: float | None = None
    ingested: int = 0
    rejected: Mapping[str, int] = field(default_factory=dict)
    """Rejected records by reason (e.g. `invalid_json`, `schema_mismatch`, `unknown_model`)."""
