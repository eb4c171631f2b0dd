"""The runtime: the running monitor behind a thin `Monitor` facade.

Layer rule: runtime imports only monitor's core and pure layers (config, errors, store, drift,
capture, windows, snapshot), never retrain/alerts/dashboards/reports/resources/sidecar/api, not
even lazily inside a function. It emits its own `WindowVerdict` to `VerdictListener`s; consumers
(retraining, for one) adapt it to their own types. Import from this package, not its modules.

Its modules, one concept each:
- `monitor`   the `Monitor` facade: lifecycle, the background loop, snapshots;
- `retention` the store's age and size limits: the periodic pass and size steps between passes;
- `state`     what the parts share: config, clock, per-model state, the writer thread, the store;
- `ingest`    group-commit ingest of `/v1/events` batches (`IngestResult`);
- `joining`   KServe CloudEvents request/response halves joined on `ce-id` (`CloudEventOutcome`);
- `labels`    delayed ground truth joined to its predictions by event id (`LabelResult`);
- `performance` each window's model performance, and its refresh when labels land;
- `evaluator` reference profiles and the evaluation of due windows, handed to the listeners;
- `recovery`  restart recovery: windows and the last result rebuilt from the store;
- `reference` loading a model's reference data;
- `reference_switch` a new reference while running: checked, profiled, stored, swapped in with the windows restarted;
- `eventlog`  fleet mode's Kafka topic: the producer ingest appends to (`KafkaUnavailable`);
- `fleet`     fleet mode's `FleetMonitor`: a consumer-group replica over shared PostgreSQL;
- `tracks`    model versions judged apart: track keys, each model's tracks, `reference_engine`;
- `snapshot`  the read-only views (`ModelSnapshot`, `WindowInfo`) the exporter and API read;
- `verdict`   `WindowVerdict` and the `VerdictListener` protocol.
"""

from monitor.core.pgstore import PgUnavailable
from monitor.core.store import StoreFull
from monitor.runtime.eventlog import KafkaUnavailable, client_settings
from monitor.runtime.ingest import IngestResult
from monitor.runtime.joining import CloudEventOutcome
from monitor.runtime.labels import OUTCOMES as LABEL_OUTCOMES
from monitor.runtime.labels import LabelError, LabelResult
from monitor.runtime.mlflow_reference import MlflowReferenceError, reference_provenance
from monitor.runtime.monitor import Monitor
from monitor.runtime.recovery import window_selection
from monitor.runtime.reference import load_reference, load_reference_texts
from monitor.runtime.reference_switch import stored_model
from monitor.runtime.snapshot import LABEL_LAG_BUCKETS, ModelSnapshot, PerformanceSnapshot, WindowInfo
from monitor.runtime.state import UnknownModel
from monitor.runtime.tracks import SEPARATOR, reference_engine, split_track, track_key
from monitor.runtime.verdict import PerformanceListener, PerformanceVerdict, VerdictListener, WindowVerdict

__all__ = [
    "LABEL_LAG_BUCKETS",
    "LABEL_OUTCOMES",
    "SEPARATOR",
    "CloudEventOutcome",
    "IngestResult",
    "KafkaUnavailable",
    "LabelError",
    "LabelResult",
    "MlflowReferenceError",
    "ModelSnapshot",
    "Monitor",
    "PerformanceListener",
    "PerformanceSnapshot",
    "PerformanceVerdict",
    "PgUnavailable",
    "StoreFull",
    "UnknownModel",
    "VerdictListener",
    "WindowInfo",
    "WindowVerdict",
    "client_settings",
    "load_reference",
    "load_reference_texts",
    "reference_engine",
    "reference_provenance",
    "split_track",
    "stored_model",
    "track_key",
    "window_selection",
]
