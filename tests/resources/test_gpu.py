"""NVML: attribution of devices to a process tree, and a GPU-less machine reported once."""

from types import ModuleType

import pynvml
import pytest

from monitor.resources.gpu import DeviceReading, NvmlSampler, usage_for_pids
from monitor.resources.usage import CollectionError, GpuUsage

READINGS = [
    DeviceReading(index=1, utilization_percent=87.0, memory_used_bytes=12 * 2**30, pids=frozenset({4242, 4243})),
    DeviceReading(index=0, utilization_percent=3.0, memory_used_bytes=2**30, pids=frozenset({999})),
    DeviceReading(index=2, utilization_percent=0.0, memory_used_bytes=0, pids=frozenset()),
]


def test_devices_of_the_process_tree_only() -> None:
    assert usage_for_pids(READINGS, (4243, 5000), "local-4242") == [
        GpuUsage(pod="local-4242", gpu="1", utilization_ratio=0.87, memory_used_bytes=12 * 2**30)
    ]
    assert [g.gpu for g in usage_for_pids(READINGS, (999, 4242), "p")] == ["0", "1"]
    assert usage_for_pids(READINGS, (1,), "p") == []


def test_real_nvml() -> None:
    """Here (no NVIDIA driver) NVML fails to initialise: one permanent `unavailable`; on a GPU node it reads every device."""
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        with pytest.raises(CollectionError) as err:
            NvmlSampler().read()
        assert (err.value.source, err.value.reason, err.value.permanent) == ("gpu", "unavailable", True)
        return
    count = pynvml.nvmlDeviceGetCount()
    pynvml.nvmlShutdown()
    sampler = NvmlSampler()
    readings = sampler.read()
    sampler.close()
    assert [r.index for r in readings] == list(range(count))
    assert all(0 <= r.utilization_percent <= 100 and r.memory_used_bytes >= 0 for r in readings)


def test_missing_pynvml_is_permanently_unavailable() -> None:
    def absent() -> ModuleType:
        raise ImportError("No module named 'pynvml'")

    with pytest.raises(CollectionError) as err:
        NvmlSampler(loader=absent).read()
    assert (err.value.reason, err.value.permanent) == ("unavailable", True)
    assert "nvidia-ml-py" in str(err.value)
