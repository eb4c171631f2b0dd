"""Periodic resource collection for every configured model, in a background thread.

Per model: a local process (a PID given programmatically, or `resources.pid_file`) is sampled with
psutil, plus NVML for the GPUs it runs on; otherwise pods matching a non-empty
`resources.selector` are read from the metrics API. Nothing here is ever fatal: each failure is
counted by (source, reason) and logged when a model's state changes (not every round), a permanent
failure (no cluster config, no NVML) disables its source after being counted once, and a model
whose collection failed this round has no values rather than stale ones.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from monitor.config import Config, ModelConfig
from monitor.resources.gpu import DeviceReading, NvmlSampler, usage_for_pids
from monitor.resources.kubernetes import PodMetricsSource
from monitor.resources.local import ProcessSampler
from monitor.resources.usage import CollectionError, GpuUsage, PodUsage, ResourceSnapshot

__all__ = ["ResourceCollector"]

log = logging.getLogger("driftwatch.resources")
P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class _Local:
    sampler: ProcessSampler


@dataclass(frozen=True)
class _Pods:
    namespace: str
    selector: Mapping[str, str]


def _target(model: ModelConfig, pid: int | None) -> _Local | _Pods | None:
    if pid is not None:
        return _Local(ProcessSampler(pid=pid))
    if model.resources.pid_file is not None:
        return _Local(ProcessSampler(pid_file=model.resources.pid_file))
    if model.resources.selector:
        return _Pods(model.resources.namespace, dict(model.resources.selector))
    return None


class ResourceCollector:
    """`start()` collects every `interval` seconds until `stop()`; `snapshot()` never blocks."""

    def __init__(
        self,
        config: Config,
        *,
        interval: float = 15.0,
        pids: Mapping[str, int] | None = None,
        kubernetes: PodMetricsSource | None = None,
        gpu: NvmlSampler | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be > 0")
        pids = pids or {}
        self._targets = {m.name: t for m in config.models if (t := _target(m, pids.get(m.name))) is not None}
        self._interval = interval
        self._kubernetes: PodMetricsSource | None = kubernetes or PodMetricsSource()
        self._gpu: NvmlSampler | None = gpu or NvmlSampler()
        self._errors: Counter[tuple[str, str]] = Counter()
        self._failing: dict[tuple[str, str], str] = {}
        """(model, source) -> reason, for logging only state changes."""
        self._snapshot = ResourceSnapshot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def snapshot(self) -> ResourceSnapshot:
        return self._snapshot

    def collect_once(self) -> ResourceSnapshot:
        """One round over every model; also what the background thread runs."""
        pods: dict[str, tuple[PodUsage, ...]] = {}
        gpus: dict[str, tuple[GpuUsage, ...]] = {}
        devices: list[DeviceReading] | None = None
        for model, target in self._targets.items():
            if isinstance(target, _Pods):
                if self._kubernetes is not None:
                    result = self._guard(model, "kubernetes", self._kubernetes.pod_usage, target.namespace, target.selector)
                    if result is not None:
                        pods[model] = tuple(result)
                continue
            sampled = self._guard(model, "local", target.sampler.sample)
            if sampled is None:
                continue
            usage, tree = sampled
            pods[model] = (usage,)
            if self._gpu is not None:
                if devices is None:
                    devices = self._guard(model, "gpu", self._gpu.read) or []
                gpus[model] = tuple(usage_for_pids(devices, tree, usage.pod))
        self._snapshot = ResourceSnapshot(pods=pods, gpus=gpus, errors=dict(self._errors))
        return self._snapshot

    def _guard(self, model: str, source: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
        """Run one source for one model; a failure is counted, logged on change, and gives None."""
        key = (model, source)
        try:
            result = fn(*args, **kwargs)
        except CollectionError as exc:
            self._failed(key, exc.source, exc.reason, str(exc), exc.permanent)
            return None
        except Exception as exc:  # a source bug must not stop collection for everyone else
            log.exception("resource_collection_bug model=%s source=%s", model, source)
            self._failed(key, source, "unexpected", repr(exc), permanent=False)
            return None
        if self._failing.pop(key, None) is not None:
            log.info("resource_collection_recovered model=%s source=%s", model, source)
        return result

    def _failed(self, key: tuple[str, str], source: str, reason: str, message: str, permanent: bool) -> None:
        self._errors[(source, reason)] += 1
        if self._failing.get(key) != reason:
            log.warning(
                "resource_collection_failed model=%s source=%s reason=%s permanent=%s message=%r",
                key[0], source, reason, permanent, message,
            )
        self._failing[key] = reason
        if permanent and source == "kubernetes":
            self._kubernetes = None
        elif permanent and source == "gpu":
            self._gpu = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.collect_once()
            self._stop.wait(self._interval)

    def start(self) -> ResourceCollector:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="driftwatch-resources", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._interval + 10)
            self._thread = None
        if self._gpu is not None:
            self._gpu.close()

    def __enter__(self) -> ResourceCollector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
