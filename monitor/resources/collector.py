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

from monitor.core.config import Config, ModelConfig
from monitor.resources.gpu import DeviceReading, NvmlSampler, usage_for_pids
from monitor.resources.kubernetes import PodMetricsSource, label_selector
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


STOP_GRACE_SECONDS = 1.0
"""How long `stop()` waits for a round in flight (a hung API call is bounded by its own timeout,
but shutdown must fit Kubernetes' 30 s grace beside everything else)."""


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
        self._targets = {m.key: t for m in config.models if (t := _target(m, pids.get(m.key))) is not None}
        self._interval = interval
        self._kubernetes: PodMetricsSource | None = kubernetes or PodMetricsSource()
        self._gpu: NvmlSampler | None = gpu or NvmlSampler()
        self._errors: Counter[tuple[str, str]] = Counter()
        self._failing: dict[tuple[str, str], str] = {}
        """(model, source) -> reason, for logging only state changes."""
        self._gpu_failing: dict[tuple[int, str], str] = {}
        """(device index, field) -> reason NVML gave last round."""
        self._matched: dict[str, bool] = {}
        """Model -> whether its selector matched any pod last time (a typo matches none, silently)."""
        self._snapshot = ResourceSnapshot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def snapshot(self) -> ResourceSnapshot:
        return self._snapshot

    def collect_once(self) -> ResourceSnapshot:
        """One round over every model; also what the background thread runs."""
        snapshot = self._round(None)
        assert snapshot is not None  # only a stop event ends a round early
        return snapshot

    def _round(self, stop: threading.Event | None) -> ResourceSnapshot | None:
        """A round; None, with nothing published or logged, once `stop` is set."""
        pods: dict[str, tuple[PodUsage, ...]] = {}
        gpus: dict[str, tuple[GpuUsage, ...]] = {}
        devices: list[DeviceReading] | None = None
        for model, target in self._targets.items():
            if stop is not None and stop.is_set():
                return None
            if isinstance(target, _Pods):
                if self._kubernetes is not None:
                    result = self._guard(stop, model, "kubernetes", self._kubernetes.pod_usage, target.namespace, target.selector)
                    if result is not None:
                        self._note_matches(model, target, len(result))
                        pods[model] = tuple(result)
                continue
            sampled = self._guard(stop, model, "local", target.sampler.sample)
            if sampled is None:
                continue
            usage, tree = sampled
            pods[model] = (usage,)
            if self._gpu is not None:
                if devices is None:
                    devices = self._read_gpus(stop, model, self._gpu)
                gpus[model] = tuple(usage_for_pids(devices, tree, usage.pod))
        if stop is not None and stop.is_set():
            return None
        self._snapshot = ResourceSnapshot(pods=pods, gpus=gpus, errors=dict(self._errors))
        return self._snapshot

    def _guard(
        self, stop: threading.Event | None, model: str, source: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T | None:
        """Run one source for one model; a failure is counted, logged on change, and gives None.

        A call that ends after `stop` (a hung request outliving shutdown) gives None and leaves no trace.
        """
        key = (model, source)
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            if stop is None or not stop.is_set():
                self._failure(key, source, exc)
            return None
        if stop is not None and stop.is_set():
            return None
        if self._failing.pop(key, None) is not None:
            log.info("resource_collection_recovered model=%s source=%s", model, source)
        return result

    def _failure(self, key: tuple[str, str], source: str, exc: Exception) -> None:
        if isinstance(exc, CollectionError):
            self._failed(key, exc.source, exc.reason, str(exc), exc.permanent)
            return
        # A source bug must not stop collection for everyone else; its traceback is logged on change.
        if self._failing.get(key) != "unexpected":
            log.error("resource_collection_bug model=%s source=%s", key[0], source, exc_info=exc)
        self._failed(key, source, "unexpected", repr(exc), permanent=False)

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

    def _read_gpus(self, stop: threading.Event | None, model: str, gpu: NvmlSampler) -> list[DeviceReading]:
        """Every device, once per round (under the first local model's name when NVML fails as a whole)."""
        devices = self._guard(stop, model, "gpu", gpu.read)
        if devices is None:
            return []
        self._note_gpu_failures(devices)
        return devices

    def _note_gpu_failures(self, devices: list[DeviceReading]) -> None:
        """Fields NVML cannot read (every round, on a MIG GPU) are counted and logged once per change."""
        failing = {(d.index, name): reason for d in devices for name, reason in d.failures.items()}
        for (index, name), reason in sorted(failing.items()):
            if self._gpu_failing.get((index, name)) != reason:
                self._errors[("gpu", reason)] += 1
                log.warning("gpu_field_unreadable gpu=%d field=%s reason=%s", index, name, reason)
        for index, name in sorted(self._gpu_failing.keys() - failing.keys()):
            log.info("gpu_field_readable gpu=%d field=%s", index, name)
        self._gpu_failing = failing

    def _note_matches(self, model: str, target: _Pods, count: int) -> None:
        """A selector that matches no pod is not an error, but is usually a typo: say so on each change."""
        matched = count > 0
        previous = self._matched.get(model)
        self._matched[model] = matched
        if not matched and previous is not False:
            log.warning(
                "resource_selector_matches_no_pods model=%s namespace=%s selector=%s",
                model, target.namespace, label_selector(target.selector),
            )
        elif matched and previous is False:
            log.info(
                "resource_selector_matches_pods model=%s namespace=%s selector=%s pods=%d",
                model, target.namespace, label_selector(target.selector), count,
            )

    def _run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                self._round(stop)
                stop.wait(self._interval)
        finally:
            self._close_gpu()

    def _close_gpu(self) -> None:
        if self._gpu is not None:
            self._gpu.close()

    def start(self) -> ResourceCollector:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, args=(self._stop,), name="driftwatch-resources", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Returns within `STOP_GRACE_SECONDS`: a round still in flight then (a hung API call) ends on
        its own in the daemon thread, publishing and logging nothing, and closes NVML itself."""
        self._stop.set()
        if self._thread is None:
            self._close_gpu()
            return
        self._thread.join(timeout=STOP_GRACE_SECONDS)
        self._thread = None

    def __enter__(self) -> ResourceCollector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
