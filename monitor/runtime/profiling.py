"""Start-up profiling: every model's reference profile, calibrated detector, restored result and
performance profile, made in this process or in a short-lived child process.

Profiling needs pandas and scipy (~140 MiB resident once imported, and CPython never gives a loaded
module back). `driftwatch serve` profiles in a spawned child instead (`in_child`), which pickles
each model's products: the monitor keeps them pickled (`ModelState.packed`) until the model's first
window is evaluated, so the idle monitor never loads pandas or scipy (docs/architecture.md, "The
idle process"). The products are the same objects either way: the child runs `in_process` itself.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import pickle
import queue
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from monitor.capture import ModelSchema, Record
from monitor.core.config import Config, ModelConfig
from monitor.runtime.performance import performance_profiles
from monitor.runtime.recovery import restore_result
from monitor.runtime.reference import profile_references
from monitor.runtime.state import ModelState
from monitor.windows import SlidingWindow

__all__ = ["Profiles", "in_child", "in_process"]

log = logging.getLogger("driftwatch.monitor")


@dataclass
class Profiles:
    """What start-up profiling made, per model name."""

    engines: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    """(reference profile, calibrated detector or None), the detector's CUSUM restored."""
    restored: dict[str, Any] = field(default_factory=dict)
    """The last stored window's `DriftResult`, evaluated again (None when there is none)."""
    performance: dict[str, Any] = field(default_factory=dict)
    """`PerformanceProfile`s of the models with a `performance` section."""
    packed: dict[str, bytes] = field(default_factory=dict)
    """From the child: `engines` pickled, one pickle per model (its detector and the model share one profile)."""
    packed_performance: dict[str, bytes] = field(default_factory=dict)
    """From the child: `performance` pickled."""
    profile_errors: dict[str, str] = field(default_factory=dict)
    performance_errors: dict[str, str] = field(default_factory=dict)


def in_process(config: Config, models: Mapping[str, ModelState]) -> Profiles:
    """Profile every model here; each model's `restore` records are used (and released)."""
    engines, profile_errors = profile_references(config, [m.config for m in models.values()])
    restored = {name: restore_result(models[name], *engine) for name, engine in engines.items()}
    performance, performance_errors = performance_profiles(config, [m.config for m in models.values()])
    return Profiles(engines, restored, performance, profile_errors=profile_errors, performance_errors=performance_errors)


def in_child(config: Config, models: Mapping[str, ModelState]) -> Profiles:
    """`in_process` in a spawned child; its log lines are handled here as if logged here.

    A child that dies (killed, out of memory) leaves every model unprofiled, with the reason."""
    work = {name: (m.restore, m.cusum, m.config) for name, m in models.items()}  # a stored reference is in m.config
    for m in models.values():
        m.restore = None  # the child has them: do not hold a window's records
    context = multiprocessing.get_context("spawn")  # never fork a process that runs threads
    try:
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            records, profiles = pool.submit(_child, config, work).result()
    except Exception as exc:
        reason = f"profiling process failed: {type(exc).__name__}: {exc}"
        log.error("reference_profile_failed models=%s error=%s", ",".join(models), type(exc).__name__)
        return Profiles(profile_errors=dict.fromkeys(models, reason))
    for record in records:
        logging.getLogger(record.name).handle(record)
    return profiles  # type: ignore[no-any-return]


def _child(
    config: Config,
    work: Mapping[str, tuple[list[Record] | None, tuple[dict[str, Any], dict[str, Any]], ModelConfig]],
) -> tuple[list[logging.LogRecord], Profiles]:
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()  # kept to hand back with the result
    root = logging.getLogger()
    root.addHandler(logging.handlers.QueueHandler(records))
    root.setLevel(logging.INFO)
    models = {}
    for name, (restore, cusum, m) in work.items():
        models[name] = ModelState(m, ModelSchema.from_config(m), SlidingWindow(m.window), restore=restore, cusum=cusum)
    made = in_process(config, models)
    return [records.get() for _ in range(records.qsize())], Profiles(
        restored=made.restored,
        packed={name: _pickle(engine) for name, engine in made.engines.items()},
        packed_performance={name: _pickle(profile) for name, profile in made.performance.items()},
        profile_errors=made.profile_errors,
        performance_errors=made.performance_errors,
    )


def _pickle(value: Any) -> bytes:
    return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
