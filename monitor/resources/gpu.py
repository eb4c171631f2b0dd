"""GPU utilisation and memory per GPU through NVML (`pynvml` from nvidia-ml-py, optional).

NVML sees the GPUs of the node it runs on, and the PIDs of their compute processes in its own PID
namespace, so it can attribute GPUs to a model server it can see as a process (the local mode).
Clusters attribute GPUs to pods with NVIDIA's DCGM exporter instead; docs/metrics.md maps its
metrics onto ours. Values are device-wide, like DCGM's: `DCGM_FI_DEV_GPU_UTIL` / 100 is our
utilisation ratio and `DCGM_FI_DEV_FB_USED` (MiB) * 2**20 our memory bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TypeVar

from monitor.resources.usage import CollectionError, GpuUsage

__all__ = ["DeviceReading", "NvmlSampler", "nvml_reason", "usage_for_pids"]

SOURCE = "gpu"
T = TypeVar("T")
log = logging.getLogger("driftwatch.resources.gpu")


_REASONS_BY_CODE = {3: "not_supported", 4: "no_permission", 15: "gpu_lost"}
"""nvml.h's nvmlReturn_t values (a stable C ABI) for the failures worth telling apart; others are
`nvml_error`. NOT_SUPPORTED is what a MIG-enabled GPU answers for device utilisation."""


def nvml_reason(exc: Exception) -> str:
    return _REASONS_BY_CODE.get(getattr(exc, "value", None), "nvml_error")  # type: ignore[arg-type]


@dataclass(frozen=True)
class DeviceReading:
    index: int
    utilization_percent: float | None
    """None when NVML cannot read it (MIG mode: not supported)."""
    memory_used_bytes: int | None
    pids: frozenset[int]
    """Processes with a compute or graphics context on the device."""
    failures: Mapping[str, str] = field(default_factory=dict)
    """Field (`handle`, `processes`, `utilization`, `memory`) -> reason, for what could not be read."""


def usage_for_pids(readings: Collection[DeviceReading], pids: Collection[int], pod: str) -> list[GpuUsage]:
    """The devices any of `pids` runs on, as the pod's GPU usage (by device index)."""
    wanted = set(pids)
    return [
        GpuUsage(
            pod=pod,
            gpu=str(r.index),
            utilization_ratio=None if r.utilization_percent is None else r.utilization_percent / 100.0,
            memory_used_bytes=r.memory_used_bytes,
        )
        for r in sorted(readings, key=lambda r: r.index)
        if r.pids & wanted
    ]


def _import_pynvml() -> ModuleType:
    import pynvml

    return pynvml


class NvmlSampler:
    """Reads every device once per call; NVML missing or failing to initialise is permanent."""

    def __init__(self, loader: Callable[[], ModuleType] = _import_pynvml) -> None:
        self._loader = loader
        self._nvml: ModuleType | None = None

    def _init(self) -> ModuleType:
        if self._nvml is not None:
            return self._nvml
        try:
            nvml = self._loader()
        except ImportError:
            raise CollectionError(SOURCE, "unavailable", "pynvml is not installed (pip install nvidia-ml-py)", permanent=True) from None
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            raise CollectionError(SOURCE, "unavailable", f"NVML did not initialise: {exc}", permanent=True) from None
        self._nvml = nvml
        return nvml

    def read(self) -> list[DeviceReading]:
        """Every device, each field read on its own: one GPU or field NVML cannot read (a MIG
        device's utilisation, a lost GPU) leaves the others' readings intact."""
        nvml = self._init()
        try:
            count = nvml.nvmlDeviceGetCount()
        except nvml.NVMLError as exc:
            raise CollectionError(SOURCE, "nvml_error", f"NVML could not count devices: {exc}") from None
        return [self._read_device(nvml, index) for index in range(count)]

    @staticmethod
    def _read_device(nvml: ModuleType, index: int) -> DeviceReading:
        failures: dict[str, str] = {}

        def attempt(name: str, read: Callable[[], T]) -> T | None:
            try:
                return read()
            except nvml.NVMLError as exc:
                failures[name] = nvml_reason(exc)
                return None

        handle = attempt("handle", lambda: nvml.nvmlDeviceGetHandleByIndex(index))
        if handle is None:
            return DeviceReading(index=index, utilization_percent=None, memory_used_bytes=None, pids=frozenset(), failures=failures)
        processes = attempt(
            "processes",
            lambda: [*nvml.nvmlDeviceGetComputeRunningProcesses(handle), *nvml.nvmlDeviceGetGraphicsRunningProcesses(handle)],
        )
        return DeviceReading(
            index=index,
            utilization_percent=attempt("utilization", lambda: float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)),
            memory_used_bytes=attempt("memory", lambda: int(nvml.nvmlDeviceGetMemoryInfo(handle).used)),
            pids=frozenset(int(p.pid) for p in processes or ()),
            failures=failures,
        )

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError as exc:
                log.debug("nvml_shutdown_failed error=%s", exc)
            self._nvml = None
