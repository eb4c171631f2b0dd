"""GPU utilisation and memory per GPU through NVML (`pynvml` from nvidia-ml-py, optional).

NVML sees the GPUs of the node it runs on, and the PIDs of their compute processes in its own PID
namespace, so it can attribute GPUs to a model server it can see as a process (the local mode).
Clusters attribute GPUs to pods with NVIDIA's DCGM exporter instead; docs/metrics.md maps its
metrics onto ours. Values are device-wide, like DCGM's: `DCGM_FI_DEV_GPU_UTIL` / 100 is our
utilisation ratio and `DCGM_FI_DEV_FB_USED` (MiB) * 2**20 our memory bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from types import ModuleType

from monitor.resources.usage import CollectionError, GpuUsage

__all__ = ["DeviceReading", "NvmlSampler", "usage_for_pids"]

SOURCE = "gpu"
log = logging.getLogger("driftwatch.resources.gpu")


@dataclass(frozen=True)
class DeviceReading:
    index: int
    utilization_percent: float
    memory_used_bytes: int
    pids: frozenset[int]
    """Processes with a compute or graphics context on the device."""


def usage_for_pids(readings: Collection[DeviceReading], pids: Collection[int], pod: str) -> list[GpuUsage]:
    """The devices any of `pids` runs on, as the pod's GPU usage (by device index)."""
    wanted = set(pids)
    return [
        GpuUsage(pod=pod, gpu=str(r.index), utilization_ratio=r.utilization_percent / 100.0, memory_used_bytes=r.memory_used_bytes)
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
        nvml = self._init()
        try:
            readings = []
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                processes = [
                    *nvml.nvmlDeviceGetComputeRunningProcesses(handle),
                    *nvml.nvmlDeviceGetGraphicsRunningProcesses(handle),
                ]
                readings.append(
                    DeviceReading(
                        index=index,
                        utilization_percent=float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu),
                        memory_used_bytes=int(nvml.nvmlDeviceGetMemoryInfo(handle).used),
                        pids=frozenset(int(p.pid) for p in processes),
                    )
                )
        except nvml.NVMLError as exc:
            raise CollectionError(SOURCE, "nvml_error", f"NVML read failed: {exc}") from None
        return readings

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError as exc:
                log.debug("nvml_shutdown_failed error=%s", exc)
            self._nvml = None
