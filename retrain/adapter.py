"""The runtime's verdict on a window, as the retraining policy's input.

The runtime (`monitor.runtime`) knows nothing of retraining: it hands every listener a
`WindowVerdict`. This adapter adds what only retraining cares about, from the config: which of the
drifted columns are critical, and the link to the model's report that a launched run carries.
"""

from __future__ import annotations

from monitor.core.config import Config
from monitor.core.names import report_path
from monitor.runtime import WindowVerdict, track_key
from retrain.policy import WindowEvaluation

__all__ = ["window_evaluation"]


def window_evaluation(verdict: WindowVerdict, config: Config) -> WindowEvaluation:
    """The policy's view of one evaluated window (a model the config does not know has no critical columns)."""
    try:
        critical = {c.name for c in config.model(verdict.model).columns if c.critical}
    except KeyError:
        critical = set()
    drifted = verdict.drifted_columns
    base = config.server.public_url
    retrain = config.retrain_named(verdict.model)
    perf, on = verdict.performance, retrain.on_performance if retrain is not None else "none"
    degraded = perf is not None and (
        (on in ("estimated", "either") and bool(perf.estimated_degraded))
        or (on in ("realized", "either") and bool(perf.realized_degraded))
    )
    return WindowEvaluation(
        window_start=verdict.window_start,
        window_end=verdict.window_end,
        n_records=verdict.n_records,
        drift_share=verdict.result.dataset.drift_share,
        dataset_drifted=verdict.result.dataset.drifted,
        drifted_features=drifted,
        critical_drifted=tuple(n for n in drifted if n in critical),
        report_url=base.rstrip("/") + report_path(track_key(verdict.model, verdict.version)) if base else None,
        # a version's ordinals are its own track's: staleness across versions is judged on time
        point=verdict.point if verdict.version is None else None,
        performance_degraded=degraded,
        reference_id=verdict.reference_id,
        version=verdict.version,
    )
